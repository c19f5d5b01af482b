"""``tmsnet tep``: the demo end to end, a raw file with an events file, and error paths."""

import json

import pandas as pd
import pytest

from tmsnet.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run(["tep", "--demo", "--demo-trials", "30", "--out", out, "--json", "--quiet"],
                            capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["n_trials"] == 30
    assert summary["pcist"]["convention"] == "reference"
    assert {"gmfp_peaks_ms", "natural_frequency", "propagation", "removed_components"} <= set(summary)
    outputs = {k: out.joinpath(v) if not v.startswith("/") else v for k, v in summary["outputs"].items()}
    for role in ("epochs", "evoked", "peaks", "measures", "report", "components"):
        assert pd.io.common.file_exists(outputs[role]), role
    peaks = pd.read_csv(outputs["peaks"], sep="\t")
    assert set(peaks["component"]) == {"N15", "P30", "N45", "P60", "N100", "P180"}
    side = json.loads(open(str(outputs["peaks"]).replace(".tsv", ".json")).read())
    assert side["Parameters"]["cleaning"]["ica_method"] == "fastica"
    assert "sha256" in side["Sources"]["raw"]
    # What the report draws the ERSP/ITC and the removed components' topographies from
    tfr = pd.read_csv(outputs["tfr"], sep="\t")
    assert list(tfr.columns) == ["freq_hz", "time_ms", "ersp_db", "itc"]
    assert tfr["itc"].between(0, 1).all() and tfr["time_ms"].min() < 0 < tfr["time_ms"].max()
    patterns = pd.read_csv(outputs["patterns"], sep="\t")
    removed = summary["removed_components"]
    assert sorted(patterns.columns[1:]) == sorted(f"{c['round']}_{c['component']}" for c in removed)
    assert len(patterns) >= 30 and patterns.iloc[:, 1:].abs().to_numpy().max() > 0
    html = open(outputs["report"]).read()
    assert "ERSP and inter-trial coherence over the ROI" in html
    assert ("Scalp topographies of the removed ICA components" in html) == bool(removed)


def test_raw_file_with_events_and_no_ica(tmp_path, capsys):
    from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg

    sim = simulate_tms_eeg(EegSimulationParameters(n_trials=12, sfreq=1000.0, annotate=False), seed=2)
    raw_path = tmp_path / "sub-05_task-tms_eeg.fif"
    sim.raw.save(raw_path, verbose=False)
    events = tmp_path / "events.tsv"
    pd.DataFrame({"onset": sim.truth.pulse_samples / 1000.0, "duration": 0.0}).to_csv(
        events, sep="\t", index=False)
    out = tmp_path / "out"
    code, stdout, err = run(["tep", raw_path, "--events", events, "--no-ica1", "--no-ica2",
                             "--no-report", "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "GMFP peaks" in stdout
    folder = out / "sub-05" / "eeg"
    assert (folder / "sub-05_task-tms_desc-clean_epo.fif").exists()
    measures = json.loads((folder / "sub-05_task-tms_desc-tep_measures.json").read_text())
    assert measures["Measures"]["pulse_source"].startswith("events file")
    assert "events" in measures["Sources"]


@pytest.mark.parametrize("args,phrase", [
    (["tep", "missing.vhdr", "--out", "OUT"], "does not exist"),
    (["tep", "--demo", "--demo-trials", "3", "--out", "OUT"], "demo-trials"),
    (["tep", "--demo", "--resample", "-1", "--out", "OUT"], "resample"),
])
def test_errors(tmp_path, capsys, args, phrase):
    args = [str(tmp_path / "OUT") if a == "OUT" else str(tmp_path / a) if a.endswith(".vhdr") else a
            for a in args]
    code, _, err = run(args, capsys)
    assert code == 1
    assert err.startswith("tmsnet: error:") and phrase in err
    assert not [p for p in (tmp_path / "OUT").rglob("*") if p.is_file()]


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tep", "--out", "x"])
    assert exc.value.code == 2
