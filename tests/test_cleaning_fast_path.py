"""The fast paths of loading and cleaning (issue 16) give the very numbers of the reference paths.

* Smoothing: the compiled passes of :class:`tmsnet.fmri.cleaning._CompiledSmoothing`
  against the scipy reference (``scipy.ndimage.gaussian_filter1d`` on the mask's box,
  the path tmsnet used before and which tests/test_cleaning.py checks against
  ``nilearn.image.smooth_img``). The stated tolerance is zero: every float32 value is
  bit-identical, because the compiled loops do scipy's float64 arithmetic in scipy's
  order and round to float32 where scipy does; they only skip the values no mask voxel
  depends on.
* Reading: ISA-L's gzip reader against nibabel's (zlib): the same in-mask matrix.
* End to end: targets and bootstrap clouds of generated subjects with the fast paths equal
  those of the reference paths (i.e. of the code before issue 16).
"""

from __future__ import annotations

import numpy as np
import pytest

from tmsnet.fmri import cleaning
from tmsnet.fmri.cleaning import BoldCleaningParameters, clean_bold, smooth_in_mask
from tmsnet.io import fmriprep
from tmsnet.io.fmriprep import load_bold, load_confounds_table

needs_numba = pytest.mark.skipif(
    not cleaning._HAVE_NUMBA,
    reason="numba is not importable or TMSNET_DISABLE_NUMBA is set: the compiled smoothing path is off")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.int32)


def _count_compiled(monkeypatch) -> list:
    """Record each use of the compiled smoothing (so a comparison cannot be scipy vs scipy)."""
    uses: list = []
    original = cleaning._CompiledSmoothing
    monkeypatch.setattr(cleaning, "_CompiledSmoothing",
                        lambda *args: uses.append(args) or original(*args))
    return uses


def _both_paths(monkeypatch, data, mask, affine, fwhm, **kw):
    uses = _count_compiled(monkeypatch)
    monkeypatch.setattr(cleaning, "_HAVE_NUMBA", False)
    reference = smooth_in_mask(data, mask, affine, fwhm, **kw)
    assert not uses
    monkeypatch.setattr(cleaning, "_HAVE_NUMBA", True)
    compiled = smooth_in_mask(data, mask, affine, fwhm, **kw)
    assert len(uses) == 1
    return reference, compiled


@needs_numba
@pytest.mark.parametrize("case", range(24))
def test_compiled_smoothing_is_bit_identical_to_scipy(monkeypatch, case):
    """Random masks, anisotropic voxels, kernels wider than the grid, masks on the grid's edge."""
    rng = np.random.default_rng([16, case])
    shape = tuple(int(n) for n in rng.integers(1, 24, 3))  # 1: a flat grid, reflected onto itself
    mask = rng.random(shape) < rng.uniform(0.03, 0.97)
    if case % 4 == 0:  # a solid block touching the grid's faces: the reflect boundary is read
        mask[:] = False
        mask[: shape[0] // 2 + 1, :, shape[2] // 3 :] = True
    mask.flat[rng.integers(mask.size)] = True
    voxel = rng.uniform(0.8, 4.0, 3) if case % 2 else np.full(3, 2.0)
    affine = np.diag([*voxel, 1.0])
    fwhm = float(rng.choice([0.4, 2.0, 6.0, 14.0])) * float(rng.uniform(0.8, 1.2))
    data = (rng.standard_normal((5, int(mask.sum()))) * 10 + 1000).astype(np.float32)
    reference, compiled = _both_paths(monkeypatch, data, mask, affine, fwhm, n_jobs=2)
    assert np.array_equal(_bits(reference), _bits(compiled))
    # Not vacuous: where the kernel reaches a neighbouring mask voxel, the data did change.
    radius = [int(4.0 * s + 0.5) for s in cleaning.fwhm_to_sigma_voxels(fwhm, affine)]
    pairs = [np.any(np.take(mask, range(1, n), a) & np.take(mask, range(n - 1), a))
             for a, n in enumerate(shape)]
    if any(r >= 1 and p for r, p in zip(radius, pairs, strict=True)):
        assert not np.array_equal(reference, data)


@needs_numba
def test_compiled_smoothing_on_a_brain_mask_rows_and_buffers(monkeypatch):
    """The 2 mm MNI brain mask, a subset of rows into chosen rows of a larger buffer."""
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=2)
    mask = np.asanyarray(img.dataobj) > 0
    rng = np.random.default_rng(3)
    data = (rng.standard_normal((7, int(mask.sum()))) * 5 + 800).astype(np.float32)
    rows, out_rows = np.array([6, 0, 3]), np.array([1, 4, 2])
    outs = []
    for flag in (False, True):
        monkeypatch.setattr(cleaning, "_HAVE_NUMBA", flag)
        out = np.full((5, data.shape[1]), -1.0, dtype=np.float32)
        smooth_in_mask(data, mask, img.affine, 6.0, rows=rows, out=out, out_rows=out_rows)
        outs.append(out)
    assert np.array_equal(_bits(outs[0]), _bits(outs[1]))
    assert np.all(outs[1][[0, 3]] == -1.0)  # rows not named are left alone
    # Against a direct float64 reference: normalised convolution of the frame on the grid.
    from scipy.ndimage import gaussian_filter

    sigma = cleaning.fwhm_to_sigma_voxels(6.0, img.affine)
    volume = np.zeros(mask.shape)
    volume[mask] = data[6]
    direct = gaussian_filter(volume, sigma, truncate=4.0)[mask] / gaussian_filter(
        mask.astype(float), sigma, truncate=4.0)[mask]
    np.testing.assert_allclose(outs[1][1], direct, rtol=2e-6)


@needs_numba
def test_other_dtypes_take_the_reference_path_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(5)
    mask = rng.random((9, 8, 7)) < 0.6
    data = (rng.standard_normal((3, int(mask.sum()))) * 3 + 50).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    monkeypatch.setattr(cleaning, "_HAVE_NUMBA", True)
    uses = _count_compiled(monkeypatch)
    from_f32 = smooth_in_mask(data, mask, affine, 6.0)
    assert len(uses) == 1
    from_f64 = smooth_in_mask(data.astype(np.float64), mask, affine, 6.0)
    assert len(uses) == 1  # float64 input: the scipy path
    assert np.array_equal(_bits(from_f32), _bits(from_f64))


def test_isal_reader_gives_the_same_matrix(monkeypatch, short_subject):
    if fmriprep._isal_gzip is None:
        pytest.skip("isal (a dependency: pip install -e .) is not importable: only Python's zlib reader runs")
    fast = load_bold(short_subject.bold_path)
    monkeypatch.setattr(fmriprep, "_isal_gzip", None)
    reference = load_bold(short_subject.bold_path)
    assert np.array_equal(fast.mask, reference.mask)
    assert np.array_equal(_bits(fast.data), _bits(reference.data))


@pytest.mark.parametrize("reader", ["isal", "zlib"])
def test_corrupt_gzip_is_a_clear_error_with_either_reader(monkeypatch, tmp_path, reader):
    import nibabel as nib

    from tmsnet.exceptions import InvalidImageError

    if reader == "isal" and fmriprep._isal_gzip is None:
        pytest.skip("isal (a dependency: pip install -e .) is not importable: only Python's zlib reader runs")
    if reader == "zlib":
        monkeypatch.setattr(fmriprep, "_isal_gzip", None)
    data = np.random.default_rng(0).integers(0, 1000, (10, 10, 10, 120)).astype(np.int16)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_zooms((2.0, 2.0, 2.0, 2.0))
    path = tmp_path / "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    nib.save(img, path)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 200] = bytes(b ^ 0x5A for b in raw[middle : middle + 200])
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="No brain mask"), \
            pytest.raises(InvalidImageError, match="truncated or corrupt"):
        load_bold(path)


@needs_numba
def test_clean_bold_is_bit_identical(monkeypatch, short_subject):
    bold = load_bold(short_subject.bold_path)
    table = load_confounds_table(short_subject.confounds_path, n_frames=bold.n_frames)
    params = BoldCleaningParameters(confound_strategy="scrubbing", fd_threshold_mm=0.3)
    uses = _count_compiled(monkeypatch)
    results = []
    for flag in (False, True):
        monkeypatch.setattr(cleaning, "_HAVE_NUMBA", flag)
        results.append(clean_bold(bold, table, params, n_jobs=2))
    assert len(uses) == 1  # the second cleaning smoothed with the compiled passes
    assert results[0][1]["n_censored_frames"] > 0  # censored frames: not every frame smoothed
    assert results[0][1] == results[1][1]
    assert np.array_equal(_bits(results[0][0]), _bits(results[1][0]))


@pytest.fixture(scope="module")
def second_subject(tmp_path_factory):
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    root = tmp_path_factory.mktemp("fast_path_subject")
    return simulate_fmriprep_dataset(root, n_subjects=1, seed=1616,
                                     params=SimulationParameters(n_frames=100))[0]


def _targets(monkeypatch, subject, parameters, *, fast: bool):
    from tmsnet.targeting.workflow import compute_targets

    with monkeypatch.context() as patch:
        if not fast:  # the reference paths: scipy's smoothing, nibabel's (zlib) reader
            patch.setattr(cleaning, "_HAVE_NUMBA", False)
            patch.setattr(fmriprep, "_isal_gzip", None)
        return compute_targets(subject.bold_path, subject.confounds_path, parameters,
                               progress=False)


@needs_numba
def test_targets_and_bootstrap_clouds_unchanged(monkeypatch, short_subject, second_subject):
    """Every method's target, map and bootstrap cloud: fast paths against reference paths."""
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters

    parameters = TargetingParameters(
        methods=("peak", "cluster", "seedmap"),
        uncertainty=UncertaintyParameters(n_bootstrap=12, scan_length_advice=False))
    for subject in (short_subject, second_subject):
        reference = _targets(monkeypatch, subject, parameters, fast=False)
        fast = _targets(monkeypatch, subject, parameters, fast=True)
        assert cleaning._HAVE_NUMBA  # restored: the second run took the compiled path
        assert [t.method for t in fast.targets] == ["peak", "cluster", "seedmap"]
        for a, b in zip(reference.targets, fast.targets, strict=True):
            assert np.array_equal(a.coordinate_mm, b.coordinate_mm), a.method
            assert a.r_at_target == b.r_at_target, a.method
            assert np.array_equal(_bits(a.connectivity_r), _bits(b.connectivity_r)), a.method
        assert set(fast.uncertainty) == {"peak", "cluster", "seedmap"}
        for method, u in reference.uncertainty.items():
            assert len(u.cloud) >= 10, method
            assert u.cloud.equals(fast.uncertainty[method].cloud), method
            assert u.summary == fast.uncertainty[method].summary, method
