"""Network jobs as library calls: parameter objects, compute without writing, writers, old CLI spellings."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.jobs.compare import run_comparison
from tmsnet.jobs.connectome import run_connectomes
from tmsnet.jobs.propagate import run_propagation
from tmsnet.networks.atlases import load_schaefer100
from tmsnet.networks.compare_workflow import compare_connectomes
from tmsnet.networks.connectome_workflow import analyze_connectomes
from tmsnet.networks.outputs import IMPULSE_REGIONS, write_connectome_results
from tmsnet.networks.parameters import (
    DEFAULT_TARGET_MM,
    AtlasParameters,
    ComparisonParameters,
    ConnectomeParameters,
    PropagationParameters,
)
from tmsnet.networks.propagation_workflow import predict_propagation
from tmsnet.simulate.connectome import (
    ConnectomeSimulationParameters,
    simulate_connectome_cohort,
    write_connectome_cohort,
)


@pytest.fixture(scope="module")
def cohort_root(tmp_path_factory):
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=6, n_regions=12, delta=0.4), seed=2)
    return write_connectome_cohort(cohort, tmp_path_factory.mktemp("cohort"))


def _structural(n=100, seed=0):
    rng = np.random.default_rng(seed)
    sc = rng.random((n, n)) ** 4
    return sc + sc.T


def test_parameter_objects_validate_once():
    assert ConnectomeParameters().target_coords == DEFAULT_TARGET_MM
    assert ConnectomeParameters(kinds=["correlation", "partial"]).measures == [
        "correlation", "partial correlation"]
    with pytest.raises(InvalidParameterError, match="--kind"):
        ConnectomeParameters(kinds=("covariance",))
    with pytest.raises(InvalidParameterError, match="--target-coords"):
        ConnectomeParameters(target_coords=(1.0, 2.0))
    with pytest.raises(InvalidParameterError, match="--gain"):
        PropagationParameters(gain=1.0)
    with pytest.raises(InvalidParameterError, match="--tau"):
        PropagationParameters(tau_ms=0)
    assert PropagationParameters(gain=0.5, tau_ms=5).coupling_per_ms == pytest.approx(0.1)
    with pytest.raises(InvalidParameterError, match="not both"):
        ComparisonParameters(contrast=("a", "b"), sessions=("pre", "post"))
    with pytest.raises(InvalidParameterError, match="--jobs"):
        ComparisonParameters(n_jobs=0)
    with pytest.raises(InvalidParameterError, match="--tail"):
        ComparisonParameters(tail="left")
    with pytest.raises(InvalidParameterError, match="--atlas-labels"):
        AtlasParameters(atlas_image="atlas.nii.gz")
    assert ComparisonParameters(sessions=["pre", "post"]).paired


def test_compare_library_call_writes_nothing_and_the_job_writes_the_null(cohort_root, tmp_path):
    params = ComparisonParameters(contrast=("patient", "control"), n_permutations=50, random_seed=3)
    result = compare_connectomes(cohort_root / "participants.tsv", cohort_root, parameters=params)
    assert result.outputs == {} and result.nbs.null_max.size == 50 and result.n_subjects == 12
    assert result.parameters["seed"] == 3 and result.design.kind == "two-sample"
    job = run_comparison(cohort_root / "participants.tsv", cohort_root, tmp_path, parameters=params,
                         report=False)
    assert list(job.outputs) == ["nbs", "edges", "blocks", "nbs_edges", "nbs_null"]
    null = pd.read_csv(job.outputs["nbs_null"], sep="\t")
    np.testing.assert_array_equal(null["max_component_edges"].to_numpy(), result.nbs.null_max)
    side = json.loads(job.outputs["nbs_null"].with_suffix(".json").read_text())
    assert side["Alpha"] == params.alpha
    pd.testing.assert_frame_equal(pd.read_csv(job.outputs["edges"], sep="\t"),
                                  result.edges.reset_index(drop=True), check_dtype=False)
    assert not (tmp_path / "group_desc-groups_report.html").exists()


def test_old_seed_and_jobs_spellings_still_work_and_warn(cohort_root, tmp_path, capsys):
    common = ["compare", "--participants", str(cohort_root / "participants.tsv"), "--connectomes",
              str(cohort_root), "--n-permutations", "40", "--no-report"]
    assert main([*common, "--random-seed", "5", "--jobs", "1", "--out", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main([*common, "--seed", "5", "--n-jobs", "1", "--out", str(tmp_path / "old")]) == 0
    err = capsys.readouterr().err
    assert "--seed is deprecated" in err and "--random-seed" in err
    assert "--n-jobs is deprecated" in err and "--jobs" in err
    for name in ("nbs", "edges", "blocks", "nbsnull"):
        file = f"group_desc-groups{name}_stats.tsv"
        assert (tmp_path / "new" / file).read_bytes() == (tmp_path / "old" / file).read_bytes()


def test_propagation_library_call_and_impulse_table(tmp_path):
    sc = _structural()
    params = PropagationParameters(duration_ms=20.0, top=3)
    result = predict_propagation(sc, target_coords=DEFAULT_TARGET_MM, parameters=params)
    assert result.outputs == {} and len(result.top_regions) == 3
    assert result.parameters["target_coordinate_mm"] == list(DEFAULT_TARGET_MM)
    assert "_LH_" in result.stimulated_name and result.regions.iloc[0]["rank"] == 0
    np.save(tmp_path / "sc.npy", sc)
    job = run_propagation(tmp_path / "sc.npy", tmp_path / "out", target_coords=DEFAULT_TARGET_MM,
                          parameters=params, prefix="sub-07", report=False)
    pd.testing.assert_frame_equal(pd.read_csv(job.outputs["regions"], sep="\t"), result.regions,
                                  check_dtype=False)
    impulse = pd.read_csv(job.outputs["impulse"], sep="\t")
    assert job.outputs["impulse"].name.startswith("sub-07_desc-")
    assert list(impulse.columns) == ["time_ms", *result.regions["name"].iloc[: IMPULSE_REGIONS + 1]]
    np.testing.assert_allclose(impulse.iloc[:, 1], result.impulse[:, result.stimulated])
    np.testing.assert_allclose(impulse["time_ms"], result.times_ms)
    with pytest.raises(InvalidParameterError, match="target-coords"):
        predict_propagation(sc, target_coords=DEFAULT_TARGET_MM, target_region=3)
    with pytest.raises(InvalidParameterError, match="atlas"):
        predict_propagation(_structural(30), target_coords=DEFAULT_TARGET_MM)
    with pytest.raises(InvalidParameterError, match="index 0..29"):
        predict_propagation(_structural(30), target_region="30")


def test_connectome_library_call_then_writer(tmp_path):
    atlas = load_schaefer100()
    rng = np.random.default_rng(1)
    latent = rng.standard_normal((150, 7))
    nets = sorted(set(atlas.networks.tolist()))
    loading = np.array([[1.0 if n == m else 0.0 for m in nets] for n in atlas.networks])
    table = pd.DataFrame(latent @ loading.T + rng.standard_normal((150, atlas.n_regions)),
                         columns=atlas.labels)
    path = tmp_path / "sub-05_ses-2_task-rest_timeseries.tsv"
    table.to_csv(path, sep="\t", index=False)
    cleaning = BoldCleaningParameters(confound_strategy="none", global_signal_regression=False)
    results = analyze_connectomes(timeseries=[path], t_r=2.0, parameters=ConnectomeParameters(),
                                  cleaning=cleaning)
    assert not any(tmp_path.rglob("*_relmat.tsv"))
    (item,) = results.connectomes
    assert item.name == "sub-05_ses-2_task-rest" and item.kind == "correlation"
    wb = item.within_between.set_index("network")
    assert (wb["within"] > wb["between"] + 0.2).all()
    written = write_connectome_results(results, tmp_path / "out")
    folder = tmp_path / "out" / "sub-05" / "ses-2" / "func"
    stem = "sub-05_ses-2_task-rest_atlas-Schaefer2018x100x7_meas-correlation"
    assert written[0]["tsv"] == folder / f"{stem}_relmat.tsv"
    summary = results.summary()
    assert summary["connectomes"][0]["outputs"]["graph"].endswith("_desc-graph_stats.tsv")
    assert "report" not in summary
    job = run_connectomes(tmp_path / "job", timeseries=[path], t_r=2.0, cleaning=cleaning, report=False)
    assert (Path(job.connectomes[0].outputs["tsv"]).read_bytes() == written[0]["tsv"].read_bytes())
    with pytest.raises(InvalidParameterError, match="t_r|t-r"):
        analyze_connectomes(timeseries=[path])
    with pytest.raises(InvalidParameterError, match="either"):
        analyze_connectomes(timeseries=[path], bold=[path], t_r=2.0)
