"""CLI: tmsnet connectome / compare / propagate end to end on generated and real data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.simulate.connectome import (
    ConnectomeSimulationParameters,
    simulate_connectome_cohort,
    write_connectome_cohort,
)

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
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=15, n_regions=40, delta=0.3), seed=4)
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

    paired = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=15, n_regions=40, delta=0.3), design="paired", seed=5)
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
    cohort = simulate_connectome_cohort(ConnectomeSimulationParameters(n_per_group=4, n_regions=10), seed=4)
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


def _schaefer_region_independently(xyz):
    """Region of the bundled Schaefer-100 image at ``xyz`` (mm), read with nibabel only:
    the label of the voxel containing the point, and the region with the nearest centroid."""
    from importlib.resources import files

    import nibabel as nib

    base = files("tmsnet.data").joinpath("atlases")
    img = nib.load(str(base.joinpath("Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz")))
    rois = pd.read_csv(str(base.joinpath("Schaefer2018_100Parcels_7Networks_rois.tsv")), sep="\t")
    data = np.asarray(img.dataobj)
    ijk = np.rint(np.linalg.inv(img.affine) @ [*xyz, 1.0])[:3].astype(int)
    containing = int(data[tuple(ijk)])
    vox = np.argwhere(data > 0)
    world = vox @ img.affine[:3, :3].T + img.affine[:3, 3]
    labels = data[data > 0]
    centroids = np.array([world[labels == v].mean(axis=0) for v in rois["label_value"]])
    nearest = int(rois["label_value"].iloc[np.argmin(np.linalg.norm(centroids - xyz, axis=1))])
    return containing, nearest, rois


def test_cli_propagate_from_coordinate_on_schaefer(tmp_path, capsys):
    """Fox 2012 group-optimal target (-38, 44, 26) (REFERENCES.md section 1) on a star connectome.

    The stimulated region is found in the test from the atlas image (containing voxel and nearest
    centroid agree: 7Networks_LH_SalVentAttn_PFCl_1, centroid 9.2 mm away); the star (that region
    linked to three others with weights 3, 2, 1, nothing else) has the closed-form steady state
    x_i / x_stim = g tau w_i / rho, rho = sqrt(sum w^2) (x = tau (I - g tau A / rho)^-1 e_stim)."""
    xyz = np.array([-38.0, 44.0, 26.0])
    containing, nearest, rois = _schaefer_region_independently(xyz)
    assert containing == nearest
    stim = int(np.flatnonzero(rois["label_value"].to_numpy() == containing)[0])
    leaves = {34: 3.0, 42: 2.0, 70: 1.0}  # row indices of three other regions: weight
    sc = np.zeros((100, 100))
    for j, w in leaves.items():
        sc[stim, j] = sc[j, stim] = w
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
    assert summary["stimulated_region"] == rois["name"].iloc[stim]
    assert summary["stimulated_network"] == rois["network"].iloc[stim]
    g_tau = summary["parameters"]["gain_g_tau_rho"]
    rho = np.sqrt(sum(w**2 for w in leaves.values()))
    top = summary["top_regions"]
    assert [r["name"] for r in top[:3]] == [rois["name"].iloc[j] for j in leaves]
    np.testing.assert_allclose([r["steady_state_relative"] for r in top[:3]],
                               [g_tau * w / rho for w in leaves.values()], rtol=1e-9)
    assert all(r["steady_state_relative"] == 0 for r in top[3:])
    # networks ranked by their most responsive region: those of the leaves, in weight order
    assert [n["network"] for n in summary["networks"][:3]] == [rois["network"].iloc[j] for j in leaves]
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
