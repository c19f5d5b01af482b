"""Per-subject report sections of each job, built from the jobs' real outputs.

One derivatives folder for sub-01 holds what the jobs wrote on small
generated data: the treatment plan (``tmsnet plan`` on a spherical T1w
phantom with a known MNI -> T1w shift), a connectome (``tmsnet connectome``
on an ROI table with planted network structure), a TMS-EEG analysis
(``tmsnet tep`` on a simulated recording with planted TEP peaks) and targeting
outputs written like ``tmsnet target`` writes them (a stable and an unstable
target; the targeting job itself runs in test_report_browser.py).
"""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.report.subject import build_subject_report

TARGET_MNI = (-38.0, 44.0, 26.0)
SHIFT = np.array([-2.0, 15.0, 12.0])  # T1w point p -> MNI point p + SHIFT
SPACE = "MNI152NLin2009cAsym"
N_TRIALS = 12


def _phantom(folder):
    """A spherical head (radius 85 mm, 2 mm voxels), its brain mask (70 mm) and an MNI -> T1w shift."""
    from tmsnet.navigation.transforms import write_itk_composite_h5

    vox, n = 2.0, 100
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = -vox * (n - 1) / 2
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    r = np.linalg.norm(ijk * vox + affine[:3, 3], axis=-1)
    t1w = folder / "sub-01_desc-preproc_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.where(r <= 85, 300.0, 0.0).astype(np.float32), affine), t1w)
    mask = folder / "sub-01_desc-brain_mask.nii.gz"
    nib.save(nib.Nifti1Image((r <= 70).astype(np.uint8), affine), mask)
    shift = np.eye(4)
    shift[:3, 3] = SHIFT
    xfm = write_itk_composite_h5(folder / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5", shift)
    return t1w, mask, xfm


def _network_timeseries(path, n_frames=240, seed=0):
    """Schaefer-100 ROI means with one shared signal per network (planted: within > between)."""
    from tmsnet.networks.atlases import load_schaefer100

    atlas = load_schaefer100()
    rng = np.random.default_rng(seed)
    nets = atlas.networks
    names = list(dict.fromkeys(nets))
    factors = rng.standard_normal((n_frames, len(names)))
    loading = np.array([names.index(n) for n in nets])
    data = 100.0 + factors[:, loading] + 0.8 * rng.standard_normal((n_frames, len(nets)))
    pd.DataFrame(data, columns=atlas.labels).to_csv(path, sep="\t", index=False)
    return atlas


def _targeting_outputs(root):
    """Targets as ``tmsnet target`` writes them: a stable peak and an unstable cluster target."""
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    prefix = f"sub-01_task-rest_space-{SPACE}"
    cluster = {"x": TARGET_MNI[0], "y": TARGET_MNI[1], "z": TARGET_MNI[2], "space": SPACE, "units": "mm",
               "method": "cluster", "r_at_target": -0.31,
               "uncertainty": {"p95_radius_mm": 23.4, "share_within_10mm": 0.41, "median_distance_mm": 8.0},
               "scan_length_advice": None}
    peak = {"x": -42.0, "y": 40.0, "z": 30.0, "space": SPACE, "units": "mm", "method": "peak",
            "r_at_target": -0.45,
            "uncertainty": {"p95_radius_mm": 4.2, "share_within_10mm": 0.99, "median_distance_mm": 1.0},
            "scan_length_advice": None}
    for t in (cluster, peak):
        (func / f"{prefix}_desc-{t['method']}_target.json").write_text(json.dumps(t))
    cloud = pd.DataFrame({"method": ["cluster"] * 20 + ["peak"] * 20, "resample": list(range(20)) * 2,
                          "x": np.r_[np.full(20, -38.0), np.full(20, -42.0)] + np.tile(np.arange(20) % 5, 2),
                          "y": 40.0, "z": 28.0})
    cloud.to_csv(func / f"{prefix}_desc-bootstrap_targets.tsv", sep="\t", index=False)
    (root / "sub-01_task-rest_report.json").write_text(json.dumps({"Summary": {
        "qc": {"n_frames": 150, "duration_min": 5.0, "mean_framewise_displacement_mm": 0.31},
        "warnings": ["Short scan: 5.0 min. Targets from less than 10 min of resting-state data move more "
                     "between sessions; consider a longer acquisition.",
                     "High motion: mean framewise displacement 0.31 mm (above 0.25 mm). Interpret the "
                     "target with caution."]}}))
    return cluster, peak


def _run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture(scope="module")
def derivatives(tmp_path_factory):
    from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg

    work = tmp_path_factory.mktemp("provider_inputs")
    root = tmp_path_factory.mktemp("provider_derivatives")
    cluster, peak = _targeting_outputs(root)

    t1w, mask, xfm = _phantom(work)
    assert main(["plan", "--target", *map(str, TARGET_MNI), "--space", SPACE, "--t1w", str(t1w),
                 "--xfm", str(xfm), "--brain-mask", str(mask), "--mt", "50", "--subject", "01",
                 "--out", str(root)]) == 0

    ts = work / "sub-01_task-rest_timeseries.tsv"
    atlas = _network_timeseries(ts)
    assert main(["connectome", "--timeseries", str(ts), "--t-r", "2", "--confound-strategy", "none",
                 "--no-gsr", "--kind", "correlation", "--no-report", "--out", str(root)]) == 0

    sim = simulate_tms_eeg(EegSimulationParameters(n_trials=N_TRIALS, natural_frequency_hz=25.0,
                                                   natural_frequency_uv=6.0), seed=0)
    raw = work / "sub-01_task-tms_eeg.fif"
    sim.raw.save(raw, verbose=False)
    assert main(["tep", str(raw), "--ica-components", "6", "--no-report", "--out", str(root),
                 "--quiet"]) == 0
    report = build_subject_report(root, "01")
    return {"root": root, "report": report, "cluster": cluster, "peak": peak, "atlas": atlas,
            "truth": sim.truth}


def _rows(report):
    return {(c.label, c.space): np.array(c.xyz_mm) for c in report.coordinates}


def test_every_job_has_a_section_and_the_card_has_each_space(derivatives):
    report, root = derivatives["report"], derivatives["root"]
    assert report.jobs == ["targeting", "plan", "connectome", "tep"]
    page = report.html
    for anchor in ("targeting-1", "plan-1", "connectome-1", "tep-1"):
        assert f'id="{anchor}"' in page
    plan = json.loads(next(root.glob("sub-01/nibs/sub-01_space-T1w_desc-plan_target.json")).read_text())
    rows = _rows(report)
    # MNI from the targeting JSON and as given to the plan; T1w where the planted shift puts it.
    np.testing.assert_allclose(rows[("Target (cluster)", SPACE)], TARGET_MNI)
    np.testing.assert_allclose(rows[("Plan target as given", SPACE)], TARGET_MNI)
    np.testing.assert_allclose(rows[("Plan target", "T1w")], np.array(TARGET_MNI) - SHIFT, atol=1e-3)
    np.testing.assert_allclose(rows[("Plan scalp point (coil centre)", "T1w")], plan["scalp_point_mm"])
    # The card renders the same numbers (2 decimals in data attributes) and the dose from the JSON.
    card = page.split('id="summary"', 1)[1].split("</section>", 1)[0]
    assert 'data-label="Plan target" data-space="T1w" data-x="-36.00" data-y="29.00" data-z="14.00"' in card
    sx, sy, sz = plan["scalp_point_mm"]
    assert f'data-space="T1w" data-x="{sx:.2f}" data-y="{sy:.2f}" data-z="{sz:.2f}"' in card
    assert f"depth-adjusted (Stokes) {plan['dose']['stokes_adjusted_mt_percent']:.0f} %MSO" in card
    assert f"E-field-matched {plan['dose']['efield_matched_mt_percent']:.0f} %MSO" in card
    assert plan["nearest_electrode_1010"]["label"] in card
    assert "No motor threshold" not in card and "not a targeting result" not in card


def test_plain_language_qc_flags(derivatives):
    warnings = derivatives["report"].warnings
    text = "\n".join(warnings)
    assert "Short scan: 5.0 min" in text and "High motion" in text
    unstable = [w for w in warnings if w.startswith("Unstable target")]
    assert len(unstable) == 1 and "(cluster)" in unstable[0] and "23 mm" in unstable[0]  # not the 4 mm peak
    assert any("scan shorter than advised (8.0 min" in w for w in warnings)  # 240 frames x 2 s
    assert any(f"few trials ({N_TRIALS} clean trials" in w for w in warnings)
    page = derivatives["report"].html
    assert "Check before use" in page and "Unstable target (cluster)" in page
    # The targeting section shows the bootstrap cloud and how far apart the methods are (4 * sqrt(3) mm).
    section = page.split('id="targeting-1"', 1)[1].split('id="plan-1"', 1)[0]  # the run's sections
    assert 'alt="Bootstrap cloud of targets of each method' in section and "40 block-bootstrap" in section
    assert "Distance between methods" in section and f"<td class=\"num\">{4 * np.sqrt(3):.1f}</td>" in section


def test_plan_field_figure_reproduces_the_plan(derivatives):
    from tmsnet.navigation.outputs import read_plan_field

    path = next(derivatives["root"].glob("sub-01/nibs/*_desc-plan_target.json"))
    plan = json.loads(path.read_text())
    patch = read_plan_field(str(path).replace("_desc-plan_target.json", "_desc-plan_efield.tsv")).patch
    # The field written beside the plan: at the target it is the plan's (same kernel, same placement) ...
    assert patch.e_at_target == pytest.approx(plan["e_at_target_v_per_m_per_a_per_us"], rel=1e-6)
    # ... and the half-maximum area is the plan's focality (computed there on a 1.5 mm grid).
    assert patch.half_max_area_cm2 == pytest.approx(plan["focality_cm2"], rel=0.05)
    # The target lies under the coil: within a few mm of the patch's maximum.
    i, j = np.unravel_index(np.argmax(patch.e), patch.e.shape)
    assert np.hypot(patch.u_mm[i, j] - patch.target_uv_mm[0], patch.v_mm[i, j] - patch.target_uv_mm[1]) < 10
    section = derivatives["report"].html.split('id="plan-1"', 1)[1]
    assert "Induced field magnitude of the fig8-70mm coil" in section
    assert "Brainsight targets" in section and "Localite InstrumentMarker" in section


def test_plan_for_another_point_is_flagged(derivatives, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(derivatives["root"] / "sub-01" / "nibs", root / "sub-01" / "nibs")
    shutil.copytree(derivatives["root"] / "sub-01" / "func", root / "sub-01" / "func")
    path = next((root / "sub-01" / "nibs").glob("*_desc-plan_target.json"))
    plan = json.loads(path.read_text())
    plan["target_input_mm"] = [-46.0, 45.0, 38.0]  # Fitzgerald 2009, 10.2 mm from the peak target
    path.write_text(json.dumps(plan))
    report = build_subject_report(root, "01", providers=["targeting", "plan"])
    flagged = [w for w in report.warnings if "not a targeting result" in w]
    assert len(flagged) == 1 and "nearest: peak, 10.2 mm away" in flagged[0]


def test_connectome_section_matches_the_matrix(derivatives):
    from tmsnet.networks.connectomes import read_connectome
    from tmsnet.networks.summaries import mean_within_between, within_between

    root, atlas = derivatives["root"], derivatives["atlas"]
    path = next(root.glob("sub-01/func/*_meas-correlation_relmat.tsv"))
    matrix, labels = read_connectome(path)
    assert labels == atlas.labels
    reference = within_between(matrix, atlas.networks)
    # planted: every network's regions share a signal
    assert (reference["within"] > reference["between"] + 0.2).all()
    within, between = mean_within_between(matrix, atlas.networks)
    iu = np.triu_indices(100, 1)
    same = atlas.networks[iu[0]] == atlas.networks[iu[1]]
    assert within == pytest.approx(matrix[iu][same].mean())
    assert between == pytest.approx(matrix[iu][~same].mean())
    summary = dict(derivatives["report"].summary)
    assert summary["Connectome correlation (sub-01_task-rest)"].startswith("100 regions (Schaefer2018x100x7)")
    assert f"within-network mean r {within:.2f} vs between {between:.2f}" in summary[
        "Connectome correlation (sub-01_task-rest)"]
    section = derivatives["report"].html.split('id="connectome-1"', 1)[1].split("<section", 1)[0]
    assert "ordered by network" in section and "data:image/png;base64," in section
    for row in reference.itertuples():
        assert f"<td>{row.network}</td>" in section and f"{row.within:.3f}" in section


def test_tep_section_reads_back_the_planted_peaks(derivatives):
    from tmsnet.report.providers.tep import read_tep_curves

    root, truth = derivatives["root"], derivatives["truth"]
    peaks = pd.read_csv(next(root.glob("sub-01/eeg/*_desc-tep_peaks.tsv")), sep="\t", na_values=["n/a"])
    curves = read_tep_curves(next(root.glob("sub-01/eeg/*_desc-clean_ave.fif")))
    gp = peaks[(peaks["measure"] == "gmfp") & peaks["latency_ms"].notna()]
    for row in gp.itertuples():
        # The GMFP drawn in the report (from the evoked file) is the job's at each peak.
        k = int(np.argmin(np.abs(curves.times_ms - row.latency_ms)))
        assert curves.gmfp_uv[k] == pytest.approx(row.amplitude_uv, rel=1e-3)
    latency = dict(zip(gp["component"], gp["latency_ms"], strict=True))
    for name in ("N45", "P60", "N100", "P180"):  # planted latencies (simulator's own parameters);
        shift = truth.gmfp_peaks_ms[name] - truth.latencies_ms[name]  # overlap moves the GMFP maximum
        assert abs(latency[name] - truth.latencies_ms[name]) <= abs(shift) + 4.0, (name, latency[name])
    summary = dict(derivatives["report"].summary)
    facts = summary["TMS-EEG (sub-01_task-tms)"]
    measures = json.loads(next(root.glob("sub-01/eeg/*_desc-tep_measures.json")).read_text())["Measures"]
    assert facts.startswith(f"{N_TRIALS} trials; PCIst {measures['pcist']['value']:.1f}")
    assert f"N100 {latency['N100']:.0f} ms" in facts
    removed = summary["TMS-EEG cleaning (sub-01_task-tms)"]
    assert removed.startswith(f"removed {len(measures['removed_components'])} ICA component(s)")
    section = derivatives["report"].html.split('id="tep-1"', 1)[1]
    assert "global mean field power" in section and "What cleaning removed" in section
    for comp in measures["removed_components"]:
        assert comp["reason"].split(":")[0] in section


def test_report_command(derivatives, capsys, tmp_path):
    root = derivatives["root"]
    out = _run(["report", root, "--participant-label", "sub-01", "--out", tmp_path, "--json"], capsys)
    facts = json.loads(out)["reports"][0]
    assert facts["jobs"] == ["targeting", "plan", "connectome", "tep"]
    path = tmp_path / "sub-01_report.html"
    assert facts["report"] == str(path) and path.stat().st_size == facts["size_bytes"]
    coords = {(c["label"], c["space"]): (c["x"], c["y"], c["z"]) for c in facts["coordinates"]}
    np.testing.assert_allclose(coords[("Plan target", "T1w")], np.array(TARGET_MNI) - SHIFT, atol=1e-3)
    sidecar = json.loads((tmp_path / "sub-01_report.json").read_text())
    assert sidecar["Jobs"] == facts["jobs"] and sidecar["Parameters"]["subject"] == "01"
    # Only some sections; a text summary.
    out = _run(["report", root, "--participant-label", "01", "--providers", "plan", "--out", tmp_path],
               capsys)
    assert "sub-01: " in out and "(jobs: plan;" in out
    # A bad label writes nothing, even next to a good one; errors are one line with status 1.
    (tmp_path / "sub-01_report.html").unlink()
    assert main(["report", str(root), "--participant-label", "01", "99", "--out", str(tmp_path)]) == 1
    assert "No derivatives for sub-99" in capsys.readouterr().err
    assert not (tmp_path / "sub-01_report.html").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_motion_of_concatenated_runs_is_read_run_by_run(tmp_path):
    from types import SimpleNamespace

    from tmsnet.report.providers.targeting import _framewise_displacement

    fd = {2: [np.nan, 0.5, 0.7], 1: [np.nan, 0.1, 0.2, 0.3]}
    sources = {}
    for run in (2, 1):                       # provenance order need not be run order
        path = tmp_path / f"run-{run}_confounds.tsv"
        pd.DataFrame({"framewise_displacement": fd[run]}).to_csv(path, sep="\t", index=False)
        sources[f"confounds_{run}"] = {"path": str(path)}
    sources["confounds_10x"] = {"path": "not a run"}
    values = _framewise_displacement(SimpleNamespace(sources=sources))
    np.testing.assert_array_equal(values, [np.nan, 0.1, 0.2, 0.3, np.nan, 0.5, 0.7])
    assert _framewise_displacement(SimpleNamespace(sources={"bold": {}})) is None
