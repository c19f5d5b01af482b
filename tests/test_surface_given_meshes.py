"""Surface data on meshes tmsnet does not ship (fsaverage6, fsaverage), with the mesh given.

fMRIPrep's ``--output-spaces fsaverage6`` is common, and every fMRIPrep installation holds
FreeSurfer's ``subjects/fsaverage6/surf/lh.pial``: with ``--surface-mesh`` (API: ``mesh=``)
the job runs on that mesh. No real fsaverage6 file is available offline, so the subjects
here live on an ico6-like stand-in from the simulator (fsaverage5's pial surface with every
triangle split at its edge midpoints; :mod:`tmsnet.simulate.surface`), which also writes the
same person's data on the 10242 shared vertices as a fsaverage5 pair. The checks:

- the reader takes GIFTI and FreeSurfer surfaces alike and refuses a wrong vertex count, swapped
  hemispheres and a hemisphere that contradicts the file;
- the same person on the fine mesh (given) and on fsaverage5 (shipped) gets the same target
  within 6 mm with cluster (the volume-vs-surface bound of issue 15) and within 8 mm with
  hierarchical (its accuracy bound), and both beat the fixed guess at the search region's
  centre by at least half;
- the command line: the mesh is hashed among the inputs, the report's viewer shows it, and
  ``tmsnet seedmap build`` takes it too.
"""

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.surface.mesh import (
    TemplateMesh,
    check_template_geometry,
    load_mesh_file,
    load_mesh_pair,
    load_template_mesh,
)
from tmsnet.targeting.group_seedmap import build_group_seedmap
from tmsnet.targeting.surface_workflow import compute_surface_targets
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

#: Published DLPFC targets (MNI152 mm, REFERENCES.md section 1), typed here: the fixed guess is
#: their centroid, which a method must beat.
DLPFC_TARGETS_MM = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                             (-37.0, 26.0, 49.0)])
N_FSA6 = 40962


@pytest.fixture(scope="module")
def fine_subjects(tmp_path_factory):
    from tmsnet.simulate.surface import simulate_surface_dataset

    root = tmp_path_factory.mktemp("fsaverage6")
    return simulate_surface_dataset(root, n_subjects=3, seed=3, snr=1.0, n_frames=150,
                                    subdivide=True)


def _parameters(methods=("cluster",), **kw):
    return TargetingParameters(methods=methods,
                               cleaning=BoldCleaningParameters(confounds_all_columns=True),
                               uncertainty=UncertaintyParameters(n_bootstrap=0,
                                                                 scan_length_advice=False), **kw)


def test_gifti_and_freesurfer_surfaces_read_alike(tmp_path):
    pial = {h: load_template_mesh("fsaverage5", h, "pial") for h in ("left", "right")}
    for h, mesh in pial.items():
        nib.freesurfer.write_geometry(str(tmp_path / f"{h[0]}h.pial"), mesh.coords_mm,
                                      mesh.faces.astype(np.int32))
    meshes = load_mesh_pair(tmp_path / "lh.pial", "fsaverage5")
    for h, name in (("L", "left"), ("R", "right")):
        assert meshes[h].hemisphere == name and meshes[h].kind == "pial"
        assert meshes[h].coordinate_space == "MNI305"
        np.testing.assert_allclose(meshes[h].coords_mm, pial[name].coords_mm, atol=1e-4)
        np.testing.assert_array_equal(meshes[h].faces, pial[name].faces)
    with pytest.raises(SpaceError, match="40962"):
        load_mesh_pair(tmp_path / "lh.pial", "fsaverage6", n_vertices={"L": N_FSA6, "R": N_FSA6})
    with pytest.raises(SpaceError, match="holds the right hemisphere"):
        load_mesh_file(tmp_path / "rh.pial", "fsaverage5", "left")
    # swapped contents: lh.pial holds the right hemisphere's coordinates (no name to tell)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(tmp_path / "rh.pial", swapped / "lh.white")
    shutil.copy(tmp_path / "lh.pial", swapped / "rh.white")
    with pytest.raises(SpaceError, match="swapped"):
        load_mesh_pair(swapped / "lh.white", "fsaverage5")
    (tmp_path / "lh.broken").write_bytes(b"not a surface")
    (tmp_path / "rh.broken").write_bytes(b"not a surface")
    with pytest.raises(Exception, match="neither a GIFTI surface"):
        load_mesh_pair(tmp_path / "lh.broken", "fsaverage5")


def test_a_given_surface_must_be_folded_and_in_the_template_frame(fine_subjects):
    fine = load_mesh_pair(fine_subjects[0].mesh_left, "fsaverage6")
    check_template_geometry(fine)                                       # the stand-in passes
    check_template_geometry({h: load_template_mesh("fsaverage5", n, "white_matter")
                             for h, n in (("L", "left"), ("R", "right"))})
    for kind in ("inflated", "sphere"):
        with pytest.raises(SpaceError, match="folded template surface"):
            check_template_geometry({"L": load_template_mesh("fsaverage5", "left", kind)})
    native = fine["L"].coords_mm + np.array([3.0, -25.0, 18.0])   # a subject's surface RAS offset
    with pytest.raises(SpaceError, match="centroid is 31 mm"):
        check_template_geometry({"L": TemplateMesh(native, fine["L"].faces, "fsaverage6", "left")})


def test_fsaverage6_with_its_mesh_finds_the_same_target_as_fsaverage5(fine_subjects):
    found6, found5, truths = {}, {}, []
    both = _parameters(methods=("cluster", "hierarchical"))
    for subject in fine_subjects:
        fine = compute_surface_targets(subject.bold_left, subject.confounds, both,
                                       mesh=subject.mesh_left, n_jobs=1)
        coarse = compute_surface_targets(subject.bold_left_fsaverage5, subject.confounds, both,
                                         n_jobs=1)
        assert fine.space == "fsaverage6" and fine.n_mesh_vertices == {"L": N_FSA6, "R": N_FSA6}
        assert fine.parameters["cleaning"]["surface"]["mesh_source"].startswith("given")
        assert set(fine.inputs) >= {"mesh_left", "mesh_right"}
        for found, result in ((found6, fine), (found5, coarse)):
            for target in result.targets:
                assert target.details["vertex"] < result.n_mesh_vertices["L"]
                found.setdefault(target.method, []).append(target.coordinate_mm)
        truths.append(subject.target_mm)
    truths = np.asarray(truths)
    guess = np.linalg.norm(truths - DLPFC_TARGETS_MM.mean(axis=0), axis=1)
    for method, limit in (("cluster", 6.0), ("hierarchical", 8.0)):   # issue 15's bounds
        between = np.linalg.norm(np.asarray(found6[method]) - np.asarray(found5[method]), axis=1)
        error6 = np.linalg.norm(np.asarray(found6[method]) - truths, axis=1)
        print(f"{method}: fsaverage6 vs fsaverage5 {np.round(between, 1)} mm; errors fsaverage6 "
              f"{np.round(error6, 1)}, fixed guess {np.round(guess, 1)} mm")
        assert between.max() <= limit
        assert np.median(error6) <= min(limit, 0.5 * np.median(guess))


def test_fsaverage6_needs_its_mesh_and_a_volume_refuses_one(fine_subjects, capsys, tmp_path):
    subject = fine_subjects[0]
    with pytest.raises(SpaceError, match="--surface-mesh"):
        compute_surface_targets(subject.bold_left, subject.confounds, _parameters(), n_jobs=1)
    code = main(["target", "--bold", str(tmp_path / "sub-01_bold.nii.gz"), "--confounds",
                 str(subject.confounds), "--surface-mesh", str(subject.mesh_left),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "--surface-mesh is for surface BOLD" in err and "Traceback" not in err
    with pytest.raises(InvalidParameterError, match="for surface scans"):
        build_group_seedmap([tmp_path / f"sub-0{i}_bold.nii.gz" for i in (1, 2, 3)],
                            [subject.confounds] * 3, out_path=tmp_path / "x_seedmap.nii.gz",
                            mesh=subject.mesh_left)


def test_command_line_records_the_mesh_and_the_report_shows_it(fine_subjects, tmp_path, capsys):
    subject = fine_subjects[0]
    out = tmp_path / "out"
    code = main(["target", "--bold", str(subject.bold_left), "--confounds", str(subject.confounds),
                 "--confounds-all-columns", "--surface-mesh", str(subject.mesh_left),
                 "--method", "cluster", "--n-bootstrap", "0", "--no-scan-length",
                 "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["space"] == "fsaverage6" and "mni152" in summary
    sidecar = json.loads(next(out.rglob("*_target.json")).read_text())
    sources = sidecar["Provenance"]["Sources"]
    assert sources["mesh_left"]["path"] == str(subject.mesh_left.resolve())
    assert len(sources["mesh_right"]["sha256"]) == 64
    report = next(out.rglob("*.html")).read_text()
    assert "Targeting on the surface" in report
    assert "template mesh with these maps' vertices" not in report   # the viewer, not the note
    configs = re.findall(r'<script type="application/json" id="[^"]+-config">(.*?)</script>',
                         report, re.S)
    hemispheres = [m for c in configs for m in json.loads(c).get("meshes", [])
                   if m.get("role") == "hemisphere"]
    assert len(hemispheres) == 2                        # folding shading under both maps
    assert all([la["role"] for la in m["layers"]] == ["background", "map"] for m in hemispheres)


def test_seedmap_build_takes_the_mesh(fine_subjects, tmp_path):
    left = tmp_path / "tpl-fsaverage6_hemi-L_desc-test_seedmap.shape.gii"
    path, sidecar = build_group_seedmap(
        [s.bold_left for s in fine_subjects], [s.confounds for s in fine_subjects],
        out_path=left, cleaning=BoldCleaningParameters(confounds_all_columns=True),
        mesh=fine_subjects[0].mesh_left, progress=False)
    assert sidecar["Space"] == "fsaverage6"
    assert "mesh_left" in sidecar["Sources"]
    values = nib.load(path).darrays[0].data
    assert values.shape == (N_FSA6,)
    # each subject's planted (anticorrelated) patch shows in the group map, the seed itself is
    # strongly positive: the map was computed on the given fine mesh's vertices
    assert all(values[s.target_vertex] < -0.1 for s in fine_subjects)
    right = nib.load(str(path).replace("hemi-L", "hemi-R")).darrays[0].data
    mesh = fine_subjects[0].mesh_left
    coords = load_mesh_file(str(mesh).replace("hemi-L", "hemi-R"), "fsaverage6", "right").coords_mm
    seed = (np.linalg.norm(coords - (6.0, 16.0, -10.0), axis=1) <= 10.0) & (coords[:, 0] >= 4.0)
    assert seed.sum() > 20 and right[seed].mean() > 0.3
