"""Loading and validating fMRIPrep inputs (tmsnet.io.fmriprep)."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.exceptions import (
    ConfoundsError,
    EmptyRegionError,
    GridMismatchError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    ScanTooShortError,
    SpaceError,
)
from tmsnet.io.fmriprep import (
    MIN_DURATION_MIN,
    MIN_FRAMES,
    BoldData,
    _read_in_mask,
    find_brain_mask,
    load_bold,
    load_confounds_table,
)

SPACE = "MNI152NLin2009cAsym"
PREFIX = f"sub-01_task-rest_space-{SPACE}_res-2"
AFFINE = np.array([[-2.0, 0, 0, 10], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])
SHAPE = (10, 10, 10)


def _sphere_mask(shape=SHAPE, radius=4.0):
    ijk = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    return ((ijk - centre[:, None, None, None]) ** 2).sum(0) <= radius**2


def _write_run(
    folder: Path,
    *,
    n_frames: int = 60,
    t_r: float = 2.0,
    units: str | None = "sec",
    data: np.ndarray | None = None,
    write_mask: bool = True,
    name: str = f"{PREFIX}_desc-preproc_bold.nii.gz",
    seed: int = 0,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a small fMRIPrep-like run; returns (bold path, 4D data, mask)."""
    mask = _sphere_mask()
    if data is None:
        rng = np.random.default_rng(seed)
        data = np.zeros((*SHAPE, n_frames), np.float32)
        data[mask] = 1000 + 10 * rng.standard_normal((int(mask.sum()), n_frames))
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_zooms((2.0, 2.0, 2.0, t_r))
    if units is not None:
        img.header.set_xyzt_units("mm", units)
    bold = folder / name
    nib.save(img, bold)
    if write_mask:
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE),
                 folder / f"{PREFIX}_desc-brain_mask.nii.gz")
    return bold, data, mask


# ------------------------------------------------------------------------- happy path


def test_load_bold_values_order_and_metadata(tmp_path):
    bold_path, data, mask = _write_run(tmp_path)
    bold = load_bold(bold_path)
    assert isinstance(bold, BoldData)
    assert bold.data.dtype == np.float32 and bold.data.flags.c_contiguous
    assert bold.data.shape == (60, int(mask.sum()))
    np.testing.assert_array_equal(bold.mask, mask)
    # Columns in the C order of mask.nonzero().
    np.testing.assert_array_equal(bold.data, data[mask].T)
    assert bold.t_r == 2.0 and bold.t_r_source == "header"
    assert bold.space == SPACE and bold.n_frames == 60
    assert bold.mask_source == "fmriprep"
    assert bold.mask_path == tmp_path / f"{PREFIX}_desc-brain_mask.nii.gz"
    assert bold.n_voxels_excluded == {"nan": 0, "constant": 0}
    assert bold.reference.shape == SHAPE and bold.reference.get_data_dtype() == np.uint8
    np.testing.assert_allclose(bold.reference.affine, AFFINE)
    np.testing.assert_allclose(bold.voxel_size_mm, [2, 2, 2])


def test_unmask_roundtrip(tmp_path):
    bold = load_bold(_write_run(tmp_path)[0])
    values = np.arange(bold.n_voxels, dtype=np.float64)
    img3 = bold.unmask(values)
    assert img3.shape == SHAPE and img3.get_data_dtype() == np.float32
    vol = img3.get_fdata()
    np.testing.assert_array_equal(vol[bold.mask], values)
    assert np.all(vol[~bold.mask] == 0)
    img4 = bold.unmask(bold.data[:3])
    assert img4.shape == (*SHAPE, 3)
    np.testing.assert_array_equal(img4.get_fdata()[bold.mask], bold.data[:3].T)
    with pytest.raises(InvalidParameterError, match="one value per in-mask voxel"):
        bold.unmask(np.zeros(5))


def test_uncompressed_and_scaled_int16(tmp_path):
    mask = _sphere_mask()
    rng = np.random.default_rng(1)
    data = np.zeros((*SHAPE, 60), np.float64)
    data[mask] = 1000 + 10 * rng.standard_normal((int(mask.sum()), 60))
    img = nib.Nifti1Image(data.astype(np.float32), AFFINE)
    img.header.set_zooms((2.0, 2.0, 2.0, 2.0))
    img.set_data_dtype(np.int16)  # nibabel stores with scl_slope/inter
    path = tmp_path / f"{PREFIX}_desc-preproc_bold.nii"
    nib.save(img, path)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE),
             tmp_path / f"{PREFIX}_desc-brain_mask.nii.gz")
    bold = load_bold(path)
    expected = nib.load(path).get_fdata()[mask].T
    np.testing.assert_allclose(bold.data, expected, rtol=1e-6)


def test_in_memory_fallback_reader():
    mask = _sphere_mask()
    data = np.random.default_rng(2).standard_normal((*SHAPE, 7)).astype(np.float32)
    data[mask.nonzero()[0][0], mask.nonzero()[1][0], mask.nonzero()[2][0], 3] = np.nan
    img = nib.Nifti1Image(data, AFFINE)  # dataobj is an ndarray: generic path
    out, nonfinite, constant = _read_in_mask(img, mask, Path("mem.nii"))
    np.testing.assert_array_equal(out, data[mask].T)
    assert nonfinite.sum() == 1 and constant.sum() == 0


def test_nan_and_constant_voxels_are_excluded_and_counted(tmp_path):
    mask = _sphere_mask()
    rng = np.random.default_rng(3)
    data = np.zeros((*SHAPE, 60), np.float32)
    data[mask] = 1000 + 10 * rng.standard_normal((int(mask.sum()), 60))
    idx = np.argwhere(mask)
    data[tuple(idx[0])][5] = np.nan  # one NaN frame
    data[tuple(idx[1])][:] = np.nan  # all NaN
    data[tuple(idx[2])][7] = np.inf  # non-finite
    data[tuple(idx[3])][:] = 500.0  # constant
    data[tuple(idx[4])][:] = 0.0  # constant zero (outside the FOV)
    bold_path, _, _ = _write_run(tmp_path, data=data)
    bold = load_bold(bold_path)
    assert bold.n_voxels_excluded == {"nan": 3, "constant": 2}
    assert bold.mask.sum() == mask.sum() - 5
    assert np.isfinite(bold.data).all()
    for k in range(5):
        assert not bold.mask[tuple(idx[k])]
    np.testing.assert_array_equal(bold.data, data[bold.mask].T)


def test_mask_given_explicitly(tmp_path):
    bold_path, data, mask = _write_run(tmp_path, write_mask=False)
    small = np.zeros(SHAPE, np.uint8)
    small[4:6, 4:6, 4:6] = 1
    mask_path = tmp_path / "roi.nii.gz"
    nib.save(nib.Nifti1Image(small, AFFINE), mask_path)
    bold = load_bold(bold_path, mask_path=mask_path)
    assert bold.mask_source == "given" and bold.mask_path == mask_path
    assert bold.n_voxels == 8


def test_no_mask_uses_varying_voxels_and_warns(tmp_path):
    bold_path, data, mask = _write_run(tmp_path, write_mask=False)
    with pytest.warns(UserWarning, match="No brain mask"):
        bold = load_bold(bold_path)
    assert bold.mask_source == "nonzero-variance" and bold.mask_path is None
    np.testing.assert_array_equal(bold.mask, mask)
    assert bold.n_voxels_excluded == {"nan": 0, "constant": 0}


def test_find_brain_mask_names(tmp_path):
    assert find_brain_mask(tmp_path / "x_desc-preproc_bold.nii.gz") is None
    (tmp_path / "sub-01_task-rest_desc-brain_mask.nii.gz").write_bytes(b"")
    assert find_brain_mask(tmp_path / "sub-01_task-rest_desc-preproc_bold.nii.gz") == (
        tmp_path / "sub-01_task-rest_desc-brain_mask.nii.gz")
    assert find_brain_mask(tmp_path / "sub-01_task-rest_bold.nii.gz") == (
        tmp_path / "sub-01_task-rest_desc-brain_mask.nii.gz")
    assert find_brain_mask(tmp_path / "weird.nii.gz") is None


# ---------------------------------------------------------------------- repetition time


def test_tr_from_sidecar_when_header_has_placeholder(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, t_r=1.0, units=None)
    with pytest.raises(InvalidParameterError, match="t_r"):
        load_bold(bold_path)
    (tmp_path / f"{PREFIX}_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": 2.5}))
    bold = load_bold(bold_path)
    assert bold.t_r == 2.5 and bold.t_r_source == "sidecar"
    bold = load_bold(bold_path, t_r=2.0)
    assert bold.t_r == 2.0 and bold.t_r_source == "argument"


def test_tr_zero_in_header_is_unknown(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, t_r=0.0, units="sec")
    with pytest.raises(InvalidParameterError, match="Pass it explicitly"):
        load_bold(bold_path)


def test_tr_in_milliseconds(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, t_r=2000.0, units="msec")
    assert load_bold(bold_path).t_r == pytest.approx(2.0)


def test_tr_header_and_sidecar_disagree(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, t_r=2.0)
    (tmp_path / f"{PREFIX}_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": 0.8}))
    with pytest.raises(InvalidParameterError, match="Pass the true TR"):
        load_bold(bold_path)


def test_absurd_tr_argument(tmp_path):
    bold_path, _, _ = _write_run(tmp_path)
    with pytest.raises(InvalidParameterError, match="outside 0.05-30 s"):
        load_bold(bold_path, t_r=2000)
    with pytest.raises(InvalidParameterError, match="positive"):
        load_bold(bold_path, t_r=-1)


# ----------------------------------------------------------------------------- errors


def test_missing_bold_and_mask_files(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        load_bold(tmp_path / f"{PREFIX}_desc-preproc_bold.nii.gz")
    bold_path, _, _ = _write_run(tmp_path)
    with pytest.raises(InputFileNotFoundError, match="brain mask"):
        load_bold(bold_path, mask_path=tmp_path / "nope.nii.gz")
    with pytest.raises(InputFileNotFoundError, match="folder"):
        load_bold(tmp_path)


def test_not_a_nifti(tmp_path):
    path = tmp_path / f"{PREFIX}_desc-preproc_bold.nii.gz"
    path.write_text("this is not an image")
    with pytest.raises(InvalidImageError, match="as a NIfTI image"):
        load_bold(path)


def test_truncated_file(tmp_path):
    bold_path, _, _ = _write_run(tmp_path)
    raw = gzip.decompress(bold_path.read_bytes())
    bold_path.write_bytes(gzip.compress(raw[: len(raw) * 2 // 3]))
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        load_bold(bold_path)


def test_3d_image_is_refused(tmp_path):
    path = tmp_path / f"{PREFIX}_boldref.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), path)
    with pytest.raises(InvalidImageError, match=r"is 3D \(shape \(10, 10, 10\)\).*4D "
                                                 r"preprocessed BOLD.*desc-preproc_bold"):
        load_bold(path)


def test_grid_mismatch_shape(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, write_mask=False)
    mask_path = tmp_path / "mask_other.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((12, 10, 10), np.uint8), AFFINE), mask_path)
    with pytest.raises(GridMismatchError, match="resample_to_img") as info:
        load_bold(bold_path, mask_path=mask_path)
    msg = str(info.value)
    assert "(12, 10, 10)" in msg and "(10, 10, 10)" in msg and "interpolation='nearest'" in msg


def test_grid_mismatch_affine(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, write_mask=False)
    shifted = AFFINE.copy()
    shifted[:3, :3] *= 1.5
    mask_path = tmp_path / "mask_3mm.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.uint8), shifted), mask_path)
    with pytest.raises(GridMismatchError, match=r"different affine.*same space and resolution"):
        load_bold(bold_path, mask_path=mask_path)


def test_empty_mask(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, write_mask=False)
    mask_path = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE), mask_path)
    with pytest.raises(EmptyRegionError, match="no non-zero voxel"):
        load_bold(bold_path, mask_path=mask_path)


def test_mask_over_dead_voxels_only(tmp_path):
    data = np.zeros((*SHAPE, 60), np.float32)
    bold_path, _, _ = _write_run(tmp_path, data=data)
    with pytest.raises(EmptyRegionError, match="usable signal"):
        load_bold(bold_path)


def test_scan_too_short_frames_and_duration(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, n_frames=30)
    with pytest.raises(ScanTooShortError,
                       match=rf"30 frames.*at least {MIN_FRAMES} frames and "
                             rf"{MIN_DURATION_MIN:g} min"):
        load_bold(bold_path)
    assert load_bold(bold_path, min_frames=20, min_duration_min=0.5).n_frames == 30


def test_scan_too_short_in_minutes(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, n_frames=60, t_r=1.0)  # 1 minute
    with pytest.raises(ScanTooShortError, match=r"1\.0 min at TR 1 s"):
        load_bold(bold_path)
    assert load_bold(bold_path, min_duration_min=1.0).n_frames == 60


def test_space_is_resolved(tmp_path):
    bold_path, _, _ = _write_run(tmp_path, name="sub-01_task-rest_desc-preproc_bold.nii.gz",
                                 write_mask=False)
    with pytest.raises(SpaceError, match="--space"):
        load_bold(bold_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_bold(bold_path, space="MNI152NLin6Asym").space == "MNI152NLin6Asym"
    t1w, _, _ = _write_run(tmp_path, name="sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz")
    with pytest.raises(SpaceError, match="output-spaces"):
        load_bold(t1w)


# --------------------------------------------------------------------- confounds table


def _confounds(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"csf": rng.standard_normal(n), "white_matter": rng.standard_normal(n),
                       "framewise_displacement": np.abs(rng.standard_normal(n))})
    df.loc[0, "framewise_displacement"] = np.nan
    return df


def test_load_confounds_table(tmp_path):
    path = tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    _confounds(60).to_csv(path, sep="\t", na_rep="n/a", index=False)
    table = load_confounds_table(path, n_frames=60)
    assert table.shape == (60, 3)
    assert np.isnan(table.loc[0, "framewise_displacement"])
    assert table["csf"].dtype == np.float64


def test_confounds_table_errors(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="confounds"):
        load_confounds_table(tmp_path / "nope.tsv", n_frames=60)
    path = tmp_path / "c.tsv"
    _confounds(58).to_csv(path, sep="\t", na_rep="n/a", index=False)
    with pytest.raises(ConfoundsError,
                       match="has 58 rows but the BOLD has 60 frames; use the confounds file "
                             "fMRIPrep wrote for this run"):
        load_confounds_table(path, n_frames=60)
    csv = tmp_path / "c.csv"
    _confounds(60).to_csv(csv, sep=",", index=False)
    with pytest.raises(ConfoundsError, match="comma-separated"):
        load_confounds_table(csv, n_frames=60)
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(ConfoundsError, match="tab-separated"):
        load_confounds_table(empty, n_frames=60)
