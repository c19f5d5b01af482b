"""The surface job's map outputs (issue 15 item 5): GIFTI per hemisphere, and for a CIFTI-2
input the same maps as CIFTI-2 dense scalars on the input's brain-model axis.

The dtseries here are generated with nibabel: a few hundred listed vertices of the 32492-vertex
fsLR mesh per hemisphere, with a subcortical voxel model between the two cortex models (so
that the columns of a structure are not simply "left first"), and a few constant columns
(dropped by the reader, NaN in the outputs).
"""

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import scipy.sparse as sp
from nibabel import cifti2

from tmsnet.exceptions import InvalidImageError, OutputNotWritableError
from tmsnet.io.surface import load_surface_bold
from tmsnet.targeting.methods import SurfaceElements
from tmsnet.targeting.results import Target
from tmsnet.targeting.surface_outputs import cifti_dscalar, write_surface_outputs
from tmsnet.targeting.surface_workflow import SurfaceTargetingResult

N_MESH = 32492
STEM = "sub-07_ses-1_task-rest_space-fsLR_den-91k"


def write_dtseries(path: Path, *, n_frames: int = 20, seed: int = 0, n_listed: int = 300,
                   constant: int = 5) -> cifti2.BrainModelAxis:
    """A small fsLR dtseries; the first ``constant`` listed vertices of each cortex are flat."""
    rng = np.random.default_rng(seed)
    left = np.sort(rng.choice(N_MESH, n_listed, replace=False))
    right = np.sort(rng.choice(N_MESH, n_listed + 17, replace=False))
    mask = np.zeros((4, 5, 3), dtype=bool)
    mask[1:3, 2:4, 1] = True
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-4.0, -6.0, -2.0)
    models = (cifti2.BrainModelAxis.from_surface(left, N_MESH, "CortexLeft")
              + cifti2.BrainModelAxis.from_mask(mask, name="thalamus_left", affine=affine)
              + cifti2.BrainModelAxis.from_surface(right, N_MESH, "CortexRight"))
    data = rng.standard_normal((n_frames, len(models))).astype(np.float32)
    for name, columns, _ in models.iter_structures():
        if "CORTEX" in name:
            data[:, columns.start:columns.start + constant] = 1.0
    series = cifti2.SeriesAxis(start=0.0, step=2.5, size=n_frames)
    image = cifti2.Cifti2Image(data, cifti2.Cifti2Header.from_axes((series, models)))
    image.nifti_header.set_intent("ConnDenseSeries")
    nib.save(image, path)
    return models


def planted_map(hemisphere: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """A known value for every (hemisphere, vertex): float64, not exactly float32."""
    return np.where(hemisphere == "L", -1.0, 1.0) * np.sin(vertex / 977.0) / 3.0


def result_from(bold, *, confounds: Path) -> SurfaceTargetingResult:
    """A result on the reader's own vertices (as the job builds it), with the planted map."""
    n = bold.vertex.size
    r = planted_map(bold.hemisphere, bold.vertex)
    first = int(np.flatnonzero(bold.hemisphere == "L")[0])
    target = Target(method="peak", coordinate_mm=np.array([-40.0, 30.0, 30.0]), space=bold.space,
                    voxel_ijk=(first, 0, 0), r_at_target=float(r[first]), connectivity_r=r,
                    details={"hemisphere": "L", "vertex": int(bold.vertex[first])})
    elements = SurfaceElements(coords_mm=np.zeros((n, 3)), adjacency=sp.identity(n, format="csr"),
                               hemisphere=bold.hemisphere, vertex=bold.vertex)
    return SurfaceTargetingResult(
        targets=[target], space=bold.space, elements=elements,
        n_mesh_vertices=dict(bold.n_mesh_vertices), seed_info={"name": "sgACC"},
        search_info={"name": "DLPFC"},
        parameters={"methods": ["peak"], "coordinate_space_note": "test"},
        inputs={**bold.inputs, "confounds": confounds}, warnings=[])


@pytest.fixture
def cifti_case(tmp_path):
    source = tmp_path / "in" / f"{STEM}_bold.dtseries.nii"
    source.parent.mkdir()
    models = write_dtseries(source)
    confounds = tmp_path / "in" / "confounds.txt"
    confounds.write_text("0.1 0.2\n")
    bold = load_surface_bold(source, space="fsLR")
    return source, models, bold, result_from(bold, confounds=confounds)


def test_dscalar_round_trips_values_and_vertex_indices(cifti_case, tmp_path):
    source, models, bold, result = cifti_case
    written = write_surface_outputs(result, tmp_path / "out", bold=source)
    path = written["connectivity_r_dscalar"]
    assert path.name == "sub-07_ses-1_task-rest_space-fsLR_den-91k_stat-r_desc-sgacc_connectivity.dscalar.nii"
    assert path.parent == tmp_path / "out" / "sub-07" / "ses-1" / "func"
    image = nib.load(path)
    assert isinstance(image, cifti2.Cifti2Image)
    assert int(image.nifti_header["intent_code"]) == 3006  # NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS
    scalars, back = image.header.get_axis(0), image.header.get_axis(1)
    assert isinstance(scalars, cifti2.ScalarAxis) and list(scalars.name) == ["sgacc_r"]
    assert back == models  # the input's brain-model axis, vertex lists and volume part unchanged
    values = np.asarray(image.get_fdata(dtype=np.float32))[0]
    assert values.dtype == np.float32 and values.shape == (len(models),)
    usable = {(h, int(v)) for h, v in zip(bold.hemisphere, bold.vertex, strict=True)}
    n_checked = 0
    for name, columns, model in back.iter_structures():
        got = values[columns]
        if "CORTEX" not in name:
            assert np.isnan(got).all()  # the surface job computes nothing on voxels
            continue
        hemi = "L" if name.endswith("LEFT") else "R"
        vertex = np.asarray(model.vertex)
        keep = np.array([(hemi, int(v)) in usable for v in vertex])
        assert (~keep).sum() == 5  # the flat columns of the generated file
        assert np.isnan(got[~keep]).all()
        # exact: the planted value of that very vertex, stored as float32
        expected = planted_map(np.full(vertex.size, hemi), vertex).astype(np.float32)
        np.testing.assert_array_equal(got[keep], expected[keep])
        n_checked += int(keep.sum())
    assert n_checked == bold.vertex.size
    # the GIFTI of each hemisphere holds the same numbers at the same mesh vertices
    for hemi in ("L", "R"):
        gifti = nib.load(written[f"connectivity_r_{hemi}"]).darrays[0].data
        assert gifti.shape == (N_MESH,)
        on = bold.hemisphere == hemi
        np.testing.assert_array_equal(gifti[bold.vertex[on]],
                                      planted_map(bold.hemisphere[on], bold.vertex[on]).astype(np.float32))
        assert int(np.isfinite(gifti).sum()) == int(on.sum())


def test_dscalar_sidecar_carries_what_the_gifti_sidecars_carry(cifti_case, tmp_path):
    source, models, _, result = cifti_case
    written = write_surface_outputs(result, tmp_path / "out", bold=source)
    dscalar = written["connectivity_r_dscalar"]
    sidecar = json.loads(dscalar.with_name(dscalar.name.removesuffix(".dscalar.nii") + ".json")
                         .read_text())
    gifti = written["connectivity_r_L"]
    reference = json.loads(gifti.with_name(gifti.name.removesuffix(".shape.gii") + ".json").read_text())
    for key in reference:
        if key != "Description":
            assert sidecar[key] == reference[key], key
    assert sidecar["Space"] == "fsLR"
    assert sidecar["Sources"]["cifti"]["path"] == str(source.resolve())
    assert sidecar["MapNames"] == ["sgacc_r"]
    assert sidecar["BrainModels"] == {"CIFTI_STRUCTURE_CORTEX_LEFT": 300,
                                      "CIFTI_STRUCTURE_THALAMUS_LEFT": 4,
                                      "CIFTI_STRUCTURE_CORTEX_RIGHT": 317}
    assert "subcortical" in sidecar["Description"]


def test_dscalar_is_reproducible_and_written_atomically(cifti_case, tmp_path, monkeypatch):
    source, _, _, result = cifti_case
    first = write_surface_outputs(result, tmp_path / "a", bold=source)["connectivity_r_dscalar"]
    second = write_surface_outputs(result, tmp_path / "b", bold=source)["connectivity_r_dscalar"]
    assert first.read_bytes() == second.read_bytes()
    # the move into place fails for the dscalar: neither it nor a partial/temporary file remains
    import tmsnet.io.atomic as atomic

    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".dscalar.nii"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    out = tmp_path / "c"
    with pytest.raises(OutputNotWritableError, match="No space left"):
        write_surface_outputs(result, out, bold=source)
    func = out / "sub-07" / "ses-1" / "func"
    assert not list(func.glob("*dscalar*"))
    assert not [p for p in func.iterdir() if p.name.startswith(".")]
    # over an earlier output the old file stays whole (never truncated) when the write fails
    before = first.read_bytes()
    with pytest.raises(OutputNotWritableError):
        write_surface_outputs(result, tmp_path / "a", bold=source)
    assert first.read_bytes() == before


def test_gifti_input_writes_no_dscalar(cifti_case, tmp_path):
    source, _, bold, result = cifti_case
    result.inputs = {"left": source, "confounds": result.inputs["confounds"]}
    written = write_surface_outputs(result, tmp_path / "out", bold=source)
    assert "connectivity_r_dscalar" not in written
    assert not list((tmp_path / "out").rglob("*.dscalar.nii"))


def test_dscalar_refuses_a_brain_model_axis_of_another_mesh(cifti_case):
    _, models, _, result = cifti_case
    result.n_mesh_vertices = {"L": 10242, "R": 10242}
    r = result.targets[0].connectivity_r
    with pytest.raises(InvalidImageError, match="32492-vertex CIFTI_STRUCTURE_CORTEX_LEFT"):
        cifti_dscalar(result, r, models)
    result.n_mesh_vertices = {"L": N_MESH, "R": N_MESH}
    only_left = models[models.name == "CIFTI_STRUCTURE_CORTEX_LEFT"]
    with pytest.raises(InvalidImageError, match="no CIFTI_STRUCTURE_CORTEX_RIGHT"):
        cifti_dscalar(result, r, only_left)


def test_cifti_job_writes_dscalar_and_report_on_fslr(tmp_path):
    """The whole surface job on a generated fsLR dtseries (every cortex model vertex but a
    random 9 %, as the 91k grayordinates leave out the medial wall), with its report."""
    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.jobs.target import run_surface_target
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters

    rng = np.random.default_rng(5)
    models = None
    for structure in ("CortexLeft", "CortexRight"):
        listed = np.flatnonzero(rng.random(N_MESH) > 0.09)
        model = cifti2.BrainModelAxis.from_surface(listed, N_MESH, structure)
        models = model if models is None else models + model
    n_frames = 60
    data = rng.standard_normal((n_frames, len(models))).astype(np.float32)
    image = cifti2.Cifti2Image(data, cifti2.Cifti2Header.from_axes(
        (cifti2.SeriesAxis(start=0.0, step=2.5, size=n_frames), models)))
    image.nifti_header.set_intent("ConnDenseSeries")
    bold = tmp_path / "sub-02_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    nib.save(image, bold)
    confounds = tmp_path / "confounds.txt"
    np.savetxt(confounds, rng.standard_normal((n_frames, 3)))
    parameters = TargetingParameters(methods=("peak",),
                                     cleaning=BoldCleaningParameters(confounds_all_columns=True),
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    job = run_surface_target(bold, confounds, parameters, out_dir=tmp_path / "out")
    dscalar = nib.load(job.written["connectivity_r_dscalar"])
    assert dscalar.header.get_axis(1) == models
    values = np.asarray(dscalar.get_fdata(dtype=np.float32))[0]
    for name, columns, model in models.iter_structures():
        hemi = "L" if name.endswith("LEFT") else "R"
        gifti = nib.load(job.written[f"connectivity_r_{hemi}"]).darrays[0].data
        np.testing.assert_array_equal(values[columns], gifti[np.asarray(model.vertex)])
        assert np.isfinite(values[columns]).all()  # every listed vertex has a signal here
        assert int(np.isfinite(gifti).sum()) == len(model)
    target = json.loads(job.written["target_peak"].read_text())
    assert target["space"] == "fsLR" and target["hemisphere"] == "L"
    # fsLR template coordinates are MNI152NLin6Asym already: the plan's coordinate is the same
    assert target["mni152"]["space"] == "MNI152NLin6Asym"
    assert [target["mni152"][k] for k in "xyz"] == [target[k] for k in "xyz"]
    page = job.written["report"].read_text()
    assert "tmsnet-surface-viewer" in page and "midthickness fsLR" in page

