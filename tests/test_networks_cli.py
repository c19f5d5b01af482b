"""CLI: tmsnet connectome / compare / propagate end to end on generated and real data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.simulate.connectome import simulate_connectome_cohort, write_connectome_cohort

DATA = Path(__file__).parents[1].parent / "shared" / "data"


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.skipif(not (DATA / "rest01").is_dir(), reason="../shared/data/rest01 not available")
def test_cli_connectome_on_rest01(tmp_path, capsys):
    ts = tmp_path / "sub-rest01_task-rest_timeseries.tsv"
    ts.write_text((DATA / "rest01" / "timeseries.tsv").read_text())
    conf = pd.read_csv(DATA / "rest01" / "confounds.tsv", sep="\t")
    columns = [c for c in conf.columns if c.startswith("motion_")] + ["csf", "white_matter"]
    out = tmp_path / "out"
    code = main(
        [
            "connectome",
            "--timeseries",
            str(ts),
            "--confounds",
            str(DATA / "rest01" / "confounds.tsv"),
            "--t-r",
            "2",
            "--confound-columns",
            *columns,
            "--discard-frames",
            "5",
            "--low-pass",
            "0.08",
            "--kind",
            "correlation",
            "partial",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = _json(capsys)
    first = summary["connectomes"][0]
    assert first["subject"] == "sub-rest01_task-rest" and first["kind"] == "correlation"
    wb = first["within_between"]
    assert wb["Default"]["within"] > wb["Default"]["between"]
    assert Path(first["outputs"]["tsv"]).is_file() and Path(first["outputs"]["tsv_json"]).is_file()
    assert "Default" in first["target_profile"]
    assert len(summary["connectomes"]) == 2
    html = Path(summary["report"]).read_text()
    assert "Within- vs between-network" in html and "data:image/png;base64" in html


def test_cli_compare_two_sample_and_paired(tmp_path, capsys):
    cohort = simulate_connectome_cohort(n_per_group=15, n_regions=40, delta=0.3, seed=4)
    root = write_connectome_cohort(cohort, tmp_path / "groups")
    code = main(
        [
            "compare",
            "--participants",
            str(root / "participants.tsv"),
            "--connectomes",
            str(root),
            "--contrast",
            "patient",
            "control",
            "--covariates",
            "age",
            "sex",
            "mean_fd",
            "--n-permutations",
            "200",
            "--out",
            str(tmp_path / "cmp"),
            "--json",
        ]
    )
    assert code == 0
    summary = _json(capsys)
    assert summary["n_significant_components"] >= 1 and summary["components"][0]["sign"] == "positive"
    edges = pd.read_csv(summary["outputs"]["nbs_edges"], sep="\t")
    comp1 = {
        (i, j)
        for i, j in zip(
            edges.loc[edges.component == 1, "i"], edges.loc[edges.component == 1, "j"], strict=True
        )
    }
    assert len(comp1 & set(cohort.planted_edges)) >= 0.8 * len(cohort.planted_edges)
    assert Path(summary["outputs"]["report"]).is_file()

    paired = simulate_connectome_cohort(design="paired", n_per_group=15, n_regions=40, delta=0.3, seed=5)
    root = write_connectome_cohort(paired, tmp_path / "prepost")
    code = main(
        [
            "compare",
            "--participants",
            str(root / "participants.tsv"),
            "--connectomes",
            str(root),
            "--sessions",
            "pre",
            "post",
            "--n-permutations",
            "200",
            "--out",
            str(tmp_path / "pp"),
            "--json",
            "--no-report",
        ]
    )
    assert code == 0
    summary = _json(capsys)
    assert summary["design"]["kind"] == "paired" and summary["n_significant_components"] >= 1


def test_cli_compare_errors(tmp_path, capsys):
    cohort = simulate_connectome_cohort(n_per_group=4, n_regions=10, seed=4)
    root = write_connectome_cohort(cohort, tmp_path / "groups")
    code = main(
        [
            "compare",
            "--participants",
            str(root / "participants.tsv"),
            "--connectomes",
            str(root),
            "--sessions",
            "pre",
            "post",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "Expected one connectome" in capsys.readouterr().err
    code = main(
        [
            "compare",
            "--participants",
            str(root / "participants.tsv"),
            "--connectomes",
            str(root),
            "--covariates",
            "height",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "not a column" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "hcp_aal2").is_dir(), reason="../shared/data/hcp_aal2 not available")
def test_cli_propagate_on_hcp(tmp_path, capsys):
    sub = DATA / "hcp_aal2" / "sub-101309"
    code = main(
        [
            "propagate",
            "--connectome",
            str(sub / "DTI_CM.mat"),
            "--lengths",
            str(sub / "DTI_LEN.mat"),
            "--target-region",
            "10",
            "--duration",
            "60",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    summary = _json(capsys)
    top = summary["top_regions"]
    assert len(top) == 10
    rel = [r["steady_state_relative"] for r in top]
    assert rel == sorted(rel, reverse=True) and 0 < rel[0] < 1
    assert Path(summary["outputs"]["report"]).is_file()
    assert (
        json.loads(Path(summary["outputs"]["regions"]).with_suffix(".json").read_text())["Parameters"][
            "delays"
        ]
        is True
    )


def test_cli_propagate_from_coordinate_on_schaefer(tmp_path, capsys):
    rng = np.random.default_rng(0)
    sc = rng.random((100, 100)) ** 4
    sc = sc + sc.T
    np.save(tmp_path / "sc.npy", sc)
    code = main(
        [
            "propagate",
            "--connectome",
            str(tmp_path / "sc.npy"),
            "--target-coords",
            "-38",
            "44",
            "26",
            "--duration",
            "30",
            "--out",
            str(tmp_path / "o"),
            "--json",
            "--no-report",
        ]
    )
    assert code == 0
    summary = _json(capsys)
    assert "_LH_" in summary["stimulated_region"]
    assert {n["network"] for n in summary["networks"]} <= {
        "Vis",
        "SomMot",
        "DorsAttn",
        "SalVentAttn",
        "Limbic",
        "Cont",
        "Default",
    }
    code = main(
        [
            "propagate",
            "--connectome",
            str(tmp_path / "sc.npy"),
            "--target-region",
            "5",
            "--gain",
            "1.5",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
