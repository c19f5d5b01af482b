"""Loading surface BOLD and headerless confound matrices (tmsnet.io.surface)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel import cifti2

from tmsnet.exceptions import (
    ConfoundsError,
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    SpaceError,
)
from tmsnet.io.surface import (
    SURFACE_SPACES,
    SurfaceBold,
    load_cifti_volume_part,
    load_confounds_matrix,
    load_surface_bold,
)

N_FS5 = 10242
N_FRAMES = 30
GIFTI_NAME = "sub-01_task-rest_hemi-{h}_space-fsaverage5_bold.func.gii"
LEMON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lemon_fsaverage5"
LEMON_STEM = "sub-010188_ses-02_task-rest_acq-AP_run-01"


def _series(n_vertices: int, n_frames: int, seed: int, constant: np.ndarray) -> np.ndarray:
    """(n_frames, n_vertices) float32 noise with the ``constant`` columns set to 0."""
    values = np.random.default_rng(seed).standard_normal((n_frames, n_vertices)).astype(np.float32)
    values[:, constant] = 0.0
    return values


def _write_gifti(path: Path, values: np.ndarray, *, time_step: str | None = "2000.000000",
                 structure: str | None = None) -> Path:
    meta = {} if time_step is None else {"TimeStep": time_step}
    arrays = [nib.gifti.GiftiDataArray(frame, intent="NIFTI_INTENT_TIME_SERIES",
                                       datatype="NIFTI_TYPE_FLOAT32", meta=meta)
              for frame in values]
    img = nib.gifti.GiftiImage(darrays=arrays)
    if structure is not None:
        img.meta["AnatomicalStructurePrimary"] = structure
    img.to_filename(path)
    return path


def _gifti_pair(folder: Path, *, n_vertices: int = N_FS5, n_frames: int = N_FRAMES,
                name: str = GIFTI_NAME, right_frames: int | None = None, **kwargs):
    """Left and right GIFTI files; returns (left path, left data, right data, constant masks)."""
    const_l = np.zeros(n_vertices, dtype=bool)
    const_l[100:150] = True
    const_r = np.zeros(n_vertices, dtype=bool)
    const_r[[0, 7, n_vertices - 1]] = True
    left = _series(n_vertices, n_frames, 1, const_l)
    right = _series(n_vertices, right_frames or n_frames, 2, const_r)
    path = _write_gifti(folder / name.format(h="L"), left, **kwargs)
    _write_gifti(folder / name.format(h="R"), right, **kwargs)
    return path, left, right, (const_l, const_r)


def _write_mgh(path: Path, values: np.ndarray, tr_ms: float) -> Path:
    img = nib.MGHImage(values.T.reshape(values.shape[1], 1, 1, values.shape[0]), np.eye(4))
    img.header["tr"] = tr_ms
    img.to_filename(path)
    return path


def _cifti(folder: Path, *, unit: str = "SECOND", step: float = 0.8, with_right: bool = True,
           mesh: int = 32492) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A small dtseries: a few cortex vertices per hemisphere plus 4 thalamus voxels."""
    vertex_l = np.array([3, 10, 11, 500, 32000])
    vertex_r = np.array([0, 2, 7, 31999])
    models = cifti2.BrainModelAxis.from_surface(vertex_l, mesh, "CortexLeft")
    if with_right:
        models = models + cifti2.BrainModelAxis.from_surface(vertex_r, mesh, "CortexRight")
    voxels = np.zeros((3, 3, 3), dtype=bool)
    voxels[1, 1, :] = True
    voxels[0, 0, 0] = True
    models = models + cifti2.BrainModelAxis.from_mask(voxels, name="thalamus_left", affine=np.eye(4))
    series = cifti2.SeriesAxis(start=0.0, step=step, size=N_FRAMES, unit=unit)
    constant = np.zeros(len(models), dtype=bool)
    constant[1] = True  # a constant left-cortex grayordinate
    data = _series(len(models), N_FRAMES, 3, constant)
    path = folder / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    cifti2.Cifti2Image(data, cifti2.Cifti2Header.from_axes((series, models))).to_filename(path)
    return path, data, vertex_l, vertex_r


# ---------------------------------------------------------------------------------- GIFTI


def test_gifti_pair_round_trips_left_first(tmp_path):
    path, left, right, (const_l, const_r) = _gifti_pair(tmp_path)
    bold = load_surface_bold(path)
    assert isinstance(bold, SurfaceBold)
    assert bold.source_format == "gifti" and bold.space == "fsaverage5"
    assert bold.n_frames == N_FRAMES and bold.data.dtype == np.float32
    assert bold.n_mesh_vertices == {"L": N_FS5, "R": N_FS5}
    assert bold.excluded == {"L": {"constant": 50, "nonfinite": 0},
                             "R": {"constant": 3, "nonfinite": 0}}
    assert bold.n_excluded == {"L": 50, "R": 3}
    expected = np.concatenate([left[:, ~const_l], right[:, ~const_r]], axis=1)
    np.testing.assert_array_equal(bold.data, expected)
    assert bold.n_vertices == 2 * N_FS5 - 53
    np.testing.assert_array_equal(bold.hemisphere[: N_FS5 - 50], "L")
    np.testing.assert_array_equal(bold.hemisphere[N_FS5 - 50 :], "R")
    np.testing.assert_array_equal(bold.vertex[bold.columns("L")], np.flatnonzero(~const_l))
    np.testing.assert_array_equal(bold.vertex[bold.columns("R")], np.flatnonzero(~const_r))
    assert bold.t_r == 2.0 and bold.t_r_source == "file" and bold.t_r_file == 2.0
    assert bold.inputs == {"left": path, "right": tmp_path / GIFTI_NAME.format(h="R")}
    assert bold.n_subcortical == 0


def test_nonfinite_vertices_are_dropped_and_counted(tmp_path):
    const = np.zeros(N_FS5, dtype=bool)
    left = _series(N_FS5, N_FRAMES, 4, const)
    left[5, 20] = np.nan
    left[:, 21] = np.inf
    path = _write_gifti(tmp_path / GIFTI_NAME.format(h="L"), left)
    _write_gifti(tmp_path / GIFTI_NAME.format(h="R"), _series(N_FS5, N_FRAMES, 5, const))
    bold = load_surface_bold(path)
    assert bold.excluded["L"] == {"constant": 0, "nonfinite": 2}
    assert 20 not in bold.vertex[bold.columns("L")] and 21 not in bold.vertex[bold.columns("L")]
    assert np.isfinite(bold.data).all()


def test_gifti_tr_from_sidecar_and_argument(tmp_path):
    path, *_ = _gifti_pair(tmp_path, time_step=None)
    sidecar = tmp_path / "sub-01_task-rest_hemi-L_space-fsaverage5_bold.json"
    sidecar.write_text(json.dumps({"RepetitionTime": 1.5}))
    bold = load_surface_bold(path)
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (1.5, "sidecar", None)
    assert bold.inputs["sidecar"] == sidecar
    given = load_surface_bold(path, t_r=0.72)
    assert (given.t_r, given.t_r_source, given.t_r_file) == (0.72, "argument", None)
    assert "sidecar" not in given.inputs


def test_argument_overrides_file_and_records_it(tmp_path):
    path, *_ = _gifti_pair(tmp_path)
    bold = load_surface_bold(path, t_r=1.4)
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (1.4, "argument", 2.0)
    with pytest.raises(InvalidParameterError, match="positive number of seconds"):
        load_surface_bold(path, t_r=-1.0)


def test_file_and_sidecar_must_agree(tmp_path):
    path, *_ = _gifti_pair(tmp_path)
    sidecar = tmp_path / "sub-01_task-rest_hemi-L_space-fsaverage5_bold.json"
    sidecar.write_text(json.dumps({"RepetitionTime": 2.01}))  # within 1 %
    bold = load_surface_bold(path)
    assert (bold.t_r, bold.t_r_source) == (2.0, "file") and bold.inputs["sidecar"] == sidecar
    sidecar.write_text(json.dumps({"RepetitionTime": 2.5}))
    with pytest.raises(InvalidParameterError, match=r"2 s in the GIFTI TimeStep.*2\.5 s in .*--t-r"):
        load_surface_bold(path)
    assert load_surface_bold(path, t_r=2.5).t_r == 2.5
    sidecar.write_text("{not json")
    with pytest.raises(InvalidImageError, match="not readable JSON"):
        load_surface_bold(path)


def test_no_tr_anywhere_or_implausible_tr_is_refused(tmp_path):
    path, *_ = _gifti_pair(tmp_path, time_step=None)
    with pytest.raises(InvalidParameterError, match=r"Cannot tell the repetition time.*--t-r"):
        load_surface_bold(path)
    (tmp_path / "s").mkdir()
    seconds, *_ = _gifti_pair(tmp_path / "s", time_step="2.0")  # TimeStep written in s, not ms
    with pytest.raises(InvalidParameterError, match=r"0\.002 s .*milliseconds.*--t-r"):
        load_surface_bold(seconds)
    (tmp_path / "g").mkdir()
    garbage, *_ = _gifti_pair(tmp_path / "g", time_step="two")
    with pytest.raises(InvalidParameterError, match="not a positive number"):
        load_surface_bold(garbage)
    assert load_surface_bold(garbage, t_r=2.0).t_r_file is None


def test_missing_partner_is_named(tmp_path):
    path, *_ = _gifti_pair(tmp_path)
    right = tmp_path / GIFTI_NAME.format(h="R")
    right.unlink()
    with pytest.raises(InputFileNotFoundError, match=right.name):
        load_surface_bold(path)


def test_right_file_or_unnamed_hemisphere_is_refused(tmp_path):
    _gifti_pair(tmp_path)
    with pytest.raises(InvalidParameterError, match="give the LEFT one"):
        load_surface_bold(tmp_path / GIFTI_NAME.format(h="R"))
    plain = _write_gifti(tmp_path / "sub-01_space-fsaverage5_bold.func.gii",
                         _series(N_FS5, N_FRAMES, 0, np.zeros(N_FS5, dtype=bool)))
    with pytest.raises(InvalidParameterError, match="Cannot tell the hemisphere"):
        load_surface_bold(plain)


def test_space_rules(tmp_path):
    path, *_ = _gifti_pair(tmp_path)
    assert load_surface_bold(path, space="fsaverage5").space == "fsaverage5"
    with pytest.raises(SpaceError, match="says space-fsaverage5 but space 'fsaverage6'"):
        load_surface_bold(path, space="fsaverage6")
    nameless, *_ = _gifti_pair(tmp_path, name="sub-01_task-rest_hemi-{h}_bold.func.gii")
    with pytest.raises(SpaceError, match=r"--space fsaverage5\|fsaverage6\|fsaverage\|fsLR"):
        load_surface_bold(nameless)
    assert load_surface_bold(nameless, space="fsaverage5").space == "fsaverage5"
    with pytest.raises(SpaceError, match="not a surface space"):
        load_surface_bold(nameless, space="MNI152NLin2009cAsym")


def test_wrong_vertex_count_for_the_space(tmp_path):
    path, *_ = _gifti_pair(tmp_path, name="sub-01_hemi-{h}_space-fsaverage6_bold.func.gii")
    with pytest.raises(SpaceError, match=r"10242 mesh vertices.*fsaverage6 has 40962"):
        load_surface_bold(path)
    odd, *_ = _gifti_pair(tmp_path, n_vertices=500, name="sub-01_hemi-{h}_space-fsLR_bold.func.gii")
    with pytest.raises(SpaceError, match=r"500 mesh vertices, but fsLR has 32492"):
        load_surface_bold(odd)


def test_hemispheres_must_have_the_same_frames(tmp_path):
    path, *_ = _gifti_pair(tmp_path, right_frames=N_FRAMES + 2)
    with pytest.raises(InvalidImageError, match=rf"has {N_FRAMES} frames but .* has {N_FRAMES + 2}"):
        load_surface_bold(path)


def test_mislabelled_or_mesh_gifti_is_refused(tmp_path):
    path, *_ = _gifti_pair(tmp_path, structure="CortexRight")
    with pytest.raises(InvalidImageError, match="AnatomicalStructurePrimary=CortexRight"):
        load_surface_bold(path)
    mesh = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(np.zeros((N_FS5, 3), np.float32), intent="NIFTI_INTENT_POINTSET")])
    for prefix in ("lh", "rh"):
        mesh.to_filename(tmp_path / f"{prefix}.pial.func.gii")
    with pytest.raises(InvalidImageError, match="surface mesh"):
        load_surface_bold(tmp_path / "lh.pial.func.gii", space="fsaverage5")


def test_one_2d_data_array_and_single_frames(tmp_path):
    const = np.zeros(N_FS5, dtype=bool)
    left, right = _series(N_FS5, N_FRAMES, 10, const), _series(N_FS5, N_FRAMES, 11, const)
    for hemi, values in (("L", left), ("R", right)):
        array = nib.gifti.GiftiDataArray(np.ascontiguousarray(values.T), meta={"TimeStep": "800"})
        nib.gifti.GiftiImage(darrays=[array]).to_filename(tmp_path / GIFTI_NAME.format(h=hemi))
    bold = load_surface_bold(tmp_path / GIFTI_NAME.format(h="L"))
    np.testing.assert_array_equal(bold.data, np.concatenate([left, right], axis=1))
    assert bold.t_r == pytest.approx(0.8) and bold.n_frames == N_FRAMES
    (tmp_path / "one").mkdir()
    single, *_ = _gifti_pair(tmp_path / "one", n_frames=1)
    with pytest.raises(InvalidImageError, match="1 frame"):
        load_surface_bold(single)


def test_all_constant_hemisphere_is_refused(tmp_path):
    path = _write_gifti(tmp_path / GIFTI_NAME.format(h="L"), np.zeros((N_FRAMES, N_FS5), np.float32))
    _write_gifti(tmp_path / GIFTI_NAME.format(h="R"), _series(N_FS5, N_FRAMES, 0, np.zeros(N_FS5, bool)))
    with pytest.raises(EmptyRegionError, match=f"left hemisphere.*{N_FS5} constant"):
        load_surface_bold(path)


def test_volumes_and_unknown_formats_are_refused(tmp_path):
    volume = tmp_path / "sub-01_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    volume.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="load_bold"):
        load_surface_bold(volume)
    other = tmp_path / "lh.bold.txt"
    other.write_text("1 2 3")
    with pytest.raises(InvalidImageError, match="Cannot tell the format"):
        load_surface_bold(other)
    with pytest.raises(InputFileNotFoundError):
        load_surface_bold(tmp_path / "absent_hemi-L_space-fsaverage5_bold.func.gii")


# ------------------------------------------------------------------------------------ MGH


@pytest.mark.parametrize("left_name, right_name", [
    ("lh.rest.fsaverage5.mgz", "rh.rest.fsaverage5.mgz"),
    ("sub-01_run-01.fsa5.lh.mgz", "sub-01_run-01.fsa5.rh.mgz"),
    ("sub-01_hemi-L_space-fsaverage5_bold.mgh", "sub-01_hemi-R_space-fsaverage5_bold.mgh"),
])
def test_mgh_pair_round_trips(tmp_path, left_name, right_name):
    const_l = np.zeros(N_FS5, dtype=bool)
    const_l[:40] = True
    const_r = np.zeros(N_FS5, dtype=bool)
    const_r[-5:] = True
    left = _series(N_FS5, N_FRAMES, 6, const_l)
    right = _series(N_FS5, N_FRAMES, 7, const_r)
    path = _write_mgh(tmp_path / left_name, left, 2500.0)
    _write_mgh(tmp_path / right_name, right, 2500.0)
    bold = load_surface_bold(path, space="fsaverage5")
    assert bold.source_format == "mgh" and bold.inputs["right"] == tmp_path / right_name
    np.testing.assert_array_equal(bold.data, np.concatenate([left[:, ~const_l], right[:, ~const_r]], 1))
    assert bold.excluded == {"L": {"constant": 40, "nonfinite": 0}, "R": {"constant": 5, "nonfinite": 0}}
    np.testing.assert_array_equal(bold.vertex[bold.columns("R")], np.flatnonzero(~const_r))
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (2.5, "file", 2.5)


def test_mgh_without_tr_and_missing_partner(tmp_path):
    const = np.zeros(N_FS5, dtype=bool)
    path = _write_mgh(tmp_path / "lh.rest.mgz", _series(N_FS5, N_FRAMES, 8, const), 0.0)
    with pytest.raises(InputFileNotFoundError, match=r"rh\.rest\.mgz"):
        load_surface_bold(path, space="fsaverage5")
    _write_mgh(tmp_path / "rh.rest.mgz", _series(N_FS5, N_FRAMES, 9, const), 0.0)
    with pytest.raises(InvalidParameterError, match=r"MGH header's tr field states none.*--t-r"):
        load_surface_bold(path, space="fsaverage5")
    bold = load_surface_bold(path, space="fsaverage5", t_r=2.0)
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (2.0, "argument", None)
    (tmp_path / "lh.rest.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    assert load_surface_bold(path, space="fsaverage5").t_r_source == "sidecar"


def test_mgh_hemispheres_stating_different_trs_are_refused(tmp_path):
    const = np.zeros(N_FS5, dtype=bool)
    path = _write_mgh(tmp_path / "lh.rest.mgz", _series(N_FS5, N_FRAMES, 8, const), 2000.0)
    _write_mgh(tmp_path / "rh.rest.mgz", _series(N_FS5, N_FRAMES, 9, const), 1000.0)
    with pytest.raises(InvalidParameterError, match=r"TR of 2 s but rh\.rest\.mgz 1 s"):
        load_surface_bold(path, space="fsaverage5")
    assert load_surface_bold(path, space="fsaverage5", t_r=2.0).t_r_file == 2.0


def test_mgh_volume_shape_is_refused(tmp_path):
    img = nib.MGHImage(np.zeros((4, 4, 4, 3), np.float32), np.eye(4))
    for name in ("lh.vol.mgz", "rh.vol.mgz"):
        img.to_filename(tmp_path / name)
    with pytest.raises(InvalidImageError, match=r"\(n_vertices, 1, 1, n_frames\)"):
        load_surface_bold(tmp_path / "lh.vol.mgz", space="fsaverage5")


# ---------------------------------------------------------------------------------- CIFTI


def test_cifti_cortex_models_become_the_hemispheres(tmp_path):
    path, data, vertex_l, vertex_r = _cifti(tmp_path)
    bold = load_surface_bold(path)
    assert bold.source_format == "cifti" and bold.space == "fsLR"
    assert bold.inputs == {"cifti": path}
    assert bold.n_mesh_vertices == {"L": 32492, "R": 32492}
    assert bold.n_subcortical == 4
    assert bold.excluded == {"L": {"constant": 1, "nonfinite": 0}, "R": {"constant": 0, "nonfinite": 0}}
    keep = np.ones(len(vertex_l) + len(vertex_r), dtype=bool)
    keep[1] = False
    np.testing.assert_array_equal(bold.data, data[:, : keep.size][:, keep])
    np.testing.assert_array_equal(bold.vertex, np.concatenate([vertex_l, vertex_r])[keep])
    assert list(bold.hemisphere) == ["L"] * 4 + ["R"] * 4
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (pytest.approx(0.8), "file", pytest.approx(0.8))
    (tmp_path / "sub-01_task-rest_space-fsLR_den-91k_bold.json").write_text(
        json.dumps({"RepetitionTime": 2.0}))
    with pytest.raises(InvalidParameterError, match="CIFTI series-axis step"):
        load_surface_bold(path)


def test_cifti_refusals(tmp_path):
    (tmp_path / "a").mkdir()
    path, *_ = _cifti(tmp_path / "a", with_right=False)
    with pytest.raises(InvalidImageError, match="no CIFTI_STRUCTURE_CORTEX_RIGHT"):
        load_surface_bold(path)
    (tmp_path / "b").mkdir()
    path, *_ = _cifti(tmp_path / "b", unit="HERTZ")
    with pytest.raises(InvalidImageError, match="in HERTZ, not SECOND"):
        load_surface_bold(path)
    (tmp_path / "c").mkdir()
    path, *_ = _cifti(tmp_path / "c", mesh=40962)
    with pytest.raises(SpaceError, match=r"40962 mesh vertices \(40962 is the count of fsaverage6\)"):
        load_surface_bold(path)
    with pytest.raises(SpaceError, match="says space-fsLR"):  # never re-labelled from the count
        load_surface_bold(path, space="fsaverage6")


def test_cifti_volume_part_positions_and_data(tmp_path):
    path, data, vertex_l, vertex_r = _cifti(tmp_path)
    volume = load_cifti_volume_part(path)
    n_cortex = len(vertex_l) + len(vertex_r)
    assert volume.n_voxels == 4 and volume.volume_shape == (3, 3, 3)
    np.testing.assert_array_equal(volume.columns, np.arange(n_cortex, n_cortex + 4))
    # from_mask lists the voxels in C order of the mask: (0,0,0), then (1,1,0..2)
    np.testing.assert_array_equal(volume.ijk, [[0, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 2]])
    np.testing.assert_allclose(volume.coords_mm, volume.ijk)              # identity affine
    assert set(volume.structure) == {"CIFTI_STRUCTURE_THALAMUS_LEFT"}
    np.testing.assert_array_equal(volume.read(), data[:, n_cortex:])
    np.testing.assert_array_equal(volume.read(np.array([3, 0])), data[:, [n_cortex + 3, n_cortex]])
    cortex_only = cifti2.BrainModelAxis.from_surface(vertex_l, 32492, "CortexLeft")
    series = cifti2.SeriesAxis(start=0.0, step=0.8, size=N_FRAMES, unit="SECOND")
    other = tmp_path / "cortex_only.dtseries.nii"
    cifti2.Cifti2Image(data[:, : len(vertex_l)], cifti2.Cifti2Header.from_axes(
        (series, cortex_only))).to_filename(other)
    with pytest.raises(InvalidImageError, match="no volume brain model"):
        load_cifti_volume_part(other)


def test_surface_spaces_table():
    assert SURFACE_SPACES == {"fsaverage5": 10242, "fsaverage6": 40962, "fsaverage": 163842,
                              "fsLR": 32492}


# ------------------------------------------------------------------------------- confounds


def test_confounds_matrix_reads_whitespace_and_tabs(tmp_path):
    values = np.random.default_rng(0).standard_normal((12, 3))
    path = tmp_path / "confounds.txt"
    lines = [f"{a:.10f}\t{b:.10f}   {c:.10f}" for a, b, c in values]
    path.write_text("\n".join(lines) + "\n\n")
    table = load_confounds_matrix(path, n_frames=12)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == ["c00", "c01", "c02"]
    np.testing.assert_allclose(table.to_numpy(), values, atol=1e-10)
    wide = tmp_path / "wide.txt"
    wide.write_text("\n".join(" ".join(["1"] * 120) for _ in range(4)))
    assert list(load_confounds_matrix(wide, n_frames=4).columns[[0, -1]]) == ["c000", "c119"]


@pytest.mark.parametrize("text, match", [
    ("", "is empty"),
    ("  \n\n", "is empty"),
    ("a b\n1 2\n", "line 1, column 1.*looks like a header.*load_confounds_table"),
    ("1 2\n3 x\n", "'x' on line 2, column 2.*give numbers only"),
    ("1,2\n3,4\n", "comma-separated"),
    ("1 2\n3\n", "Line 2 .* has 1 values but the first row has 2"),
    ("1 2\nnan 4\n", "'nan' on line 2, column 1.*finite number"),
    ("1 2\n3 4\n5 6\n", "has 3 rows but the BOLD has 2 frames"),
])
def test_bad_confounds_matrices_are_refused(tmp_path, text, match):
    path = tmp_path / "conf.txt"
    path.write_text(text)
    with pytest.raises(ConfoundsError, match=match):
        load_confounds_matrix(path, n_frames=2)


def test_binary_or_missing_confounds(tmp_path):
    path = tmp_path / "conf.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfoundsError, match="as text"):
        load_confounds_matrix(path, n_frames=2)
    with pytest.raises(InputFileNotFoundError):
        load_confounds_matrix(tmp_path / "absent.txt", n_frames=2)


# ---------------------------------------------------------------------- the real LEMON scan


@pytest.mark.skipif(not LEMON.is_dir(), reason=f"the LEMON fsaverage5 scan is not here ({LEMON})")
def test_real_lemon_scan():
    bold = load_surface_bold(LEMON / f"{LEMON_STEM}.fsa5.lh.mgz", space="fsaverage5", t_r=1.4)
    assert bold.n_frames == 652 and bold.data.shape[0] == 652
    assert bold.n_mesh_vertices == {"L": 10242, "R": 10242}
    assert bold.excluded == {"L": {"constant": 888, "nonfinite": 0},
                             "R": {"constant": 881, "nonfinite": 0}}
    assert all(800 <= n <= 1000 for n in bold.n_excluded.values())
    assert bold.n_vertices == 2 * 10242 - 888 - 881
    assert (bold.t_r, bold.t_r_source, bold.t_r_file) == (1.4, "argument", 1.0)
    assert bold.inputs["right"] == LEMON / f"{LEMON_STEM}.fsa5.rh.mgz"
    assert np.isfinite(bold.data).all() and (bold.data.std(axis=0) > 0).all()
    confounds = load_confounds_matrix(LEMON / f"{LEMON_STEM}_confounds.txt", n_frames=bold.n_frames)
    assert confounds.shape == (652, 29) and confounds.columns[-1] == "c28"
