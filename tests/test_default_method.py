"""The method the targeting job uses when none is asked for (issue 15 item 7, second bullet).

``tmsnet target`` without ``--method`` runs ``auto``: the first method of
``DEFAULT_METHOD_ORDER`` that runs on the scan (volume: seedmap, then cluster; surface:
cluster), recorded with the reason in ``method_choice``. Tested here: the rule itself on
generated blocks (fast), its records in the files and on the command line, the fall-backs,
and the held-out failure of the old default (cluster) reproduced on a full generated subject
at lower signal with stronger decoys. The cohort figures behind the order are in
``test_target_workflow.py`` (12 random subjects at signal 0.35 and 0.5) and
``benchmarks/bench_accuracy.py --default``.
"""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import scipy.sparse as sp

from accuracy_baselines import nearest_published_errors
from tmsnet.cli import main
from tmsnet.exceptions import EmptyRegionError, InvalidParameterError, SpaceError
from tmsnet.simulate.targeting_block import simulate_targeting_block
from tmsnet.targeting import workflow
from tmsnet.targeting.methods import (
    AUTO_METHOD,
    SurfaceElements,
    TargetingContext,
    cluster_target,
    register_method,
    resolve_methods,
)
from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP, SeedmapOptions, seedmap_target
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import (
    DEFAULT_METHOD_ORDER,
    TargetingParameters,
    choose_method,
    compute_targets,
    load_and_clean,
    run_methods,
)

NO_BOOTSTRAP = UncertaintyParameters(n_bootstrap=0)


@pytest.fixture(scope="module")
def block():
    """One generated block (planted target) and a group map: the seed, as the bundled map is."""
    return simulate_targeting_block(seed=4242, snr=0.5)


def _context(block, *, weights=True, surface=None):
    seed_weights = block.seed_voxels.astype(float) if weights else None
    return TargetingContext(**block.context_kwargs(), seed_weights=seed_weights, surface=surface)


def _grid_surface(context):
    """The block's voxels as a 'mesh' (6-neighbour adjacency): a surface context of known layout."""
    ijk = context.voxel_ijk
    index = {tuple(v): i for i, v in enumerate(ijk)}
    rows, cols = [], []
    for i, v in enumerate(ijk):
        for step in np.eye(3, dtype=int):
            j = index.get(tuple(v + step))
            if j is not None:
                rows += [i, j]
                cols += [j, i]
    n = len(ijk)
    adjacency = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return SurfaceElements(coords_mm=context.voxel_mm(), adjacency=adjacency,
                           hemisphere=np.array(["L"] * n), vertex=np.arange(n))


def test_the_volume_default_is_the_seedmap_target_and_says_why(block):
    target = choose_method(_context(block), TargetingParameters())
    assert target.method == "seedmap" == DEFAULT_METHOD_ORDER["volume"][0]
    # The very target the seedmap method gives (nothing else is changed by choosing it).
    expected = seedmap_target(_context(block))
    np.testing.assert_array_equal(target.coordinate_mm, expected.coordinate_mm)
    np.testing.assert_array_equal(target.connectivity_r, expected.connectivity_r)
    choice = target.details["method_choice"]
    assert choice["rule"] == AUTO_METHOD and choice["scan_kind"] == "volume"
    assert choice["method"] == "seedmap" and choice["passed_over"] == {}
    assert choice["order"] == ["seedmap", "cluster"]
    assert choice["reason"].startswith("Method seedmap was used because")
    assert "cluster" in choice["reason"] and "mm" in choice["reason"]
    # The planted target is found (a chance guess, the slab centre, is ~13 mm off on blocks).
    assert np.linalg.norm(target.coordinate_mm - block.target_mm) < 5.0
    targets, failed = run_methods(_context(block), TargetingParameters())
    assert [t.method for t in targets] == ["seedmap"] and failed == {}


def test_a_method_that_cannot_run_is_passed_over_with_its_reason(block):
    # No group seedmap loaded: the seedmap method cannot run, the next method gives the target.
    target = choose_method(_context(block, weights=False), TargetingParameters())
    assert target.method == "cluster"
    np.testing.assert_array_equal(target.coordinate_mm,
                                  cluster_target(_context(block)).coordinate_mm)
    choice = target.details["method_choice"]
    assert "group seedmap" in choice["passed_over"]["seedmap"]
    assert "could not be used on this scan" in choice["reason"]
    # Inputs that could not be prepared (recorded by the job) are passed over the same way.
    why = "The seedmap x.nii.gz is in MNI152NLin2009cAsym but the BOLD is in MNI152NLin6Asym"
    target = choose_method(_context(block), TargetingParameters(), {"seedmap": why})
    assert target.method == "cluster"
    assert target.details["method_choice"]["passed_over"] == {"seedmap": why}
    assert why in target.details["method_choice"]["reason"]


def test_no_default_method_finding_a_target_is_an_error(block):
    context = _context(block)
    seed = context.data[:, context.seed_voxels].mean(axis=1)
    data = context.data.copy()
    rng = np.random.default_rng(0)
    search = np.flatnonzero(context.search_voxels)
    # Every search voxel follows the seed: nothing is anticorrelated.
    data[:, search] = seed[:, None] + 0.1 * rng.standard_normal((data.shape[0], search.size))
    positive = TargetingContext(**{**block.context_kwargs(), "data": data.astype(np.float32)},
                                seed_weights=context.seed_weights)
    with pytest.raises(EmptyRegionError, match="None of the default methods"):
        choose_method(positive, TargetingParameters())


def test_the_surface_default_is_cluster(block):
    flat = _context(block)
    surface = _grid_surface(flat)
    target = choose_method(_context(block, surface=surface), TargetingParameters())
    # The group seedmap is there, yet on a surface cluster is the default.
    assert target.method == "cluster" == DEFAULT_METHOD_ORDER["surface"][0]
    choice = target.details["method_choice"]
    assert choice["scan_kind"] == "surface" and choice["order"] == ["cluster"]
    assert "surface" in choice["reason"]
    np.testing.assert_array_equal(
        target.coordinate_mm, cluster_target(_context(block, surface=surface)).coordinate_mm)
    assert target.details["hemisphere"] == "L"


def test_auto_is_given_alone_and_is_no_method_name():
    assert resolve_methods([AUTO_METHOD]) == [AUTO_METHOD]
    assert TargetingParameters().methods == (AUTO_METHOD,)
    assert TargetingParameters(methods=AUTO_METHOD).chooses_method
    assert not TargetingParameters(methods=("cluster",)).chooses_method
    assert not TargetingParameters(methods=("all",)).chooses_method
    assert TargetingParameters.from_options({}).chooses_method
    with pytest.raises(InvalidParameterError, match="give it alone"):
        TargetingParameters(methods=(AUTO_METHOD, "cluster"))
    with pytest.raises(ValueError, match="reserved"):
        register_method(AUTO_METHOD)(lambda context: None)


def test_cli_default_records_and_prints_the_choice(short_subject, tmp_path, capsys):
    common = ["target", "--bold", str(short_subject.bold_path), "--confounds",
              str(short_subject.confounds_path), "--quiet", "--n-bootstrap", "0"]
    assert main([*common, "--out", str(tmp_path / "auto"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "seedmap"
    choice = summary["method_choice"]
    assert choice["method"] == "seedmap" and choice["reason"].startswith("Method seedmap")
    written = json.loads(open(summary["outputs"]["target_seedmap"]).read())
    assert written["method_choice"] == choice
    assert "method_choice" not in written["details"]  # one copy in the target itself
    assert written["Provenance"]["Parameters"]["methods"] == [AUTO_METHOD]
    assert written["Provenance"]["Parameters"]["method_choice"] == choice
    # The report shows the job's parameters, the choice and its reason among them.
    report = open(summary["outputs"]["report"]).read()
    assert "method_choice" in report and "was used because" in report
    assert "<dt>Method choice</dt><dd>Method seedmap was used because" in report  # visible too
    # The sgACC map file holds the sgACC map (its sidecar says so), not the seedmap-weighted
    # one, although seedmap is the only method: checked against a direct computation.
    sgacc = nib.load(summary["outputs"]["connectivity_r"]).get_fdata()
    weighted = nib.load(summary["outputs"]["connectivity_r_seedmap"]).get_fdata()
    direct = compute_targets(short_subject.bold_path, short_subject.confounds_path,
                             TargetingParameters(methods=("cluster",),
                                                 uncertainty=UncertaintyParameters(n_bootstrap=0)))
    np.testing.assert_allclose(sgacc, direct.map_image(direct.targets[0].connectivity_r).get_fdata(),
                               atol=1e-6)
    assert not np.allclose(sgacc, weighted)
    # Printed for a user who reads the terminal.
    assert main([*common, "--out", str(tmp_path / "text"), "--no-report"]) == 0
    assert "Method: seedmap (chosen by the job). Method seedmap was used because" in (
        capsys.readouterr().out)
    # An explicit method writes what it wrote before this choice existed: no record of one.
    assert main([*common, "--out", str(tmp_path / "cluster"), "--json", "--no-report",
                 "--method", "cluster"]) == 0
    explicit = json.loads(capsys.readouterr().out)
    body = json.loads(open(explicit["outputs"]["target_cluster"]).read())
    assert list(body) == ["x", "y", "z", "space", "units", "method", "r_at_target",
                          "uncertainty", "scan_length_advice", "voxel_ijk", "details",
                          "parameters", "Provenance"]
    assert body["Provenance"]["Parameters"]["methods"] == ["cluster"]
    assert "method_choice" not in body["Provenance"]["Parameters"]


def _as_space(subject, folder, space):
    """The subject's files copied under another ``space-`` entity (the same grid)."""
    folder.mkdir()
    paths = {}
    for role in ("bold_path", "mask_path", "confounds_path"):
        source = getattr(subject, role)
        paths[role] = folder / source.name.replace("MNI152NLin2009cAsym", space)
        shutil.copy(source, paths[role])
    return paths


def test_the_bundled_seedmap_in_another_space_falls_back_to_cluster(short_subject, tmp_path):
    paths = _as_space(short_subject, tmp_path / "nlin6", "MNI152NLin6Asym")
    args = (paths["bold_path"], paths["confounds_path"])
    result = compute_targets(*args, TargetingParameters(uncertainty=NO_BOOTSTRAP), progress=False)
    assert [t.method for t in result.targets] == ["cluster"]
    choice = result.targets[0].details["method_choice"]
    assert "MNI152NLin6Asym" in choice["passed_over"]["seedmap"]
    assert result.parameters["method_choice"] == choice
    assert result.parameters["seedmap"] is None  # not loaded, not hashed as an input
    explicit = compute_targets(*args, TargetingParameters(methods=("cluster",),
                                                          uncertainty=NO_BOOTSTRAP),
                               progress=False)
    np.testing.assert_array_equal(result.targets[0].coordinate_mm,
                                  explicit.targets[0].coordinate_mm)
    # A seedmap the user names is never replaced silently: its error is raised.
    named = TargetingParameters(uncertainty=NO_BOOTSTRAP,
                                method_options=(SeedmapOptions(seedmap=BUNDLED_SEEDMAP),))
    with pytest.raises(SpaceError, match="MNI152NLin6Asym"):
        compute_targets(*args, named, progress=False)


def test_the_surface_job_default_runs_cluster(tmp_path):
    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.simulate.surface import simulate_surface_dataset
    from tmsnet.targeting.surface_workflow import compute_surface_targets

    subject = simulate_surface_dataset(tmp_path, n_subjects=1, seed=8, snr=0.8,
                                       n_frames=100)[0]
    cleaning = BoldCleaningParameters(confounds_all_columns=True)
    auto = compute_surface_targets(subject.bold_left, subject.confounds,
                                   TargetingParameters(cleaning=cleaning, uncertainty=NO_BOOTSTRAP))
    explicit = compute_surface_targets(subject.bold_left, subject.confounds,
                                       TargetingParameters(methods=("cluster",), cleaning=cleaning,
                                                           uncertainty=NO_BOOTSTRAP))
    assert [t.method for t in auto.targets] == ["cluster"]
    assert auto.targets[0].details["method_choice"]["scan_kind"] == "surface"
    np.testing.assert_array_equal(auto.targets[0].coordinate_mm,
                                  explicit.targets[0].coordinate_mm)


#: The held-out failure reproduced (issue 15 item 7): subject 10 of simulator seed 314159 at
#: signal 0.35 with strong decoys (anticorrelated decoy at 0.85 of the target's loading, global
#: signal 2x), measured before the default changed. It is one of the 12 subjects of that cohort,
#: picked because it shows the held-out pattern: cluster lands ~30 mm off (on another cluster,
#: neither the target nor the decoy), seedmap on the planted target. Over the whole cohort the
#: two tie (medians 4.6 / 4.5 mm; seedmap is worse on subject 1, 25.5 against 3.5 mm).
HELD_OUT_PATTERN = {"seed": 314159, "subject_index": 9,
                    "params": {"snr": 0.35, "decoy_strength": 0.85, "global_signal_scale": 2.0}}


def test_where_cluster_takes_the_decoy_the_default_finds_the_target(tmp_path):
    from tmsnet.simulate import SimulationParameters, simulate_subject_arrays

    bold, mask, confounds, truth = simulate_subject_arrays(
        subject_index=HELD_OUT_PATTERN["subject_index"], seed=HELD_OUT_PATTERN["seed"],
        params=SimulationParameters(**HELD_OUT_PATTERN["params"]))
    stem = tmp_path / "sub-10_task-rest_space-MNI152NLin2009cAsym_res-2"
    bold_path = tmp_path / f"{stem.name}_desc-preproc_bold.nii.gz"
    nib.save(bold, bold_path)
    nib.save(mask, tmp_path / f"{stem.name}_desc-brain_mask.nii.gz")
    confounds_path = tmp_path / "sub-10_task-rest_desc-confounds_timeseries.tsv"
    confounds.to_csv(confounds_path, sep="\t", index=False, na_rep="n/a")
    del bold
    planted = np.asarray(truth["target_mm"])
    decoy_truth = next(d for d in truth["decoys"] if d["role"] == "anticorrelated_decoy")
    assert abs(decoy_truth["relative_loading"]) == pytest.approx(0.85)  # the strong decoy
    decoy = np.asarray(decoy_truth["centroid_mm"])
    chance = float(nearest_published_errors(planted)[0])  # the oracle among published sites
    # One load and cleaning for both (as compute_targets does them): the old default's target
    # and the job's own choice on the same context.
    default = TargetingParameters(uncertainty=NO_BOOTSTRAP)
    regions = workflow._regions_and_context(load_and_clean(bold_path, confounds_path), default)
    old = cluster_target(regions.context)
    new = run_methods(regions.context, default, unavailable=regions.unavailable)[0][0]
    old_error = float(np.linalg.norm(old.coordinate_mm - planted))
    new_error = float(np.linalg.norm(new.coordinate_mm - planted))
    print(f"cluster {old_error:.1f} mm (decoy "
          f"{np.linalg.norm(old.coordinate_mm - decoy):.1f} mm), default ({new.method}) "
          f"{new_error:.1f} mm, nearest published {chance:.1f} mm")
    # Seen: cluster 29.6 mm from the target (13.9 mm from the decoy); seedmap 1.4 mm; the
    # nearest published target 12.7 mm.
    assert old_error > 20.0 and old_error > chance  # the old default: worse than chance here
    assert new.method == "seedmap" and new_error < 0.5 * chance
