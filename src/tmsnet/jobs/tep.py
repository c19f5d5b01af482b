"""The TMS-EEG job (``tmsnet tep``): read -> pulses -> clean and measure -> write -> report.

:func:`run_tep` is the one place that composes the science
(:func:`tmsnet.eeg.workflow.analyze_tep`), the report and the writer
(:func:`tmsnet.eeg.workflow.write_tep_outputs`). Every result is computed
before the first file is written; the report is then drawn from the files
written (:func:`tmsnet.report.write_job_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tmsnet.eeg.cleaning import CleaningParameters
from tmsnet.eeg.io import RecordingParameters, find_pulses, read_eeg
from tmsnet.eeg.workflow import (
    TEP_SIDECAR_SPACE,
    TepAnalysis,
    TepMeasureParameters,
    analyze_tep,
    entities_from_path,
    write_tep_outputs,
)
from tmsnet.io.bids import entity_prefix
from tmsnet.io.staging import staged_output_dir

__all__ = ["TepJobResult", "run_tep"]


@dataclass
class TepJobResult:
    """What :func:`run_tep` computed and wrote."""

    analysis: TepAnalysis
    written: dict[str, Path]
    n_pulses: int
    pulse_source: str


def _write_report(analysis: TepAnalysis, out_dir: str | Path, entities: dict[str, str],
                  inputs: dict[str, str | Path | None]) -> Path:
    from tmsnet.io.provenance import make_sidecar
    from tmsnet.report import write_job_report

    prefix = entity_prefix(entities)
    return write_job_report(
        out_dir, providers=("tep",), subject=entities.get("sub", "unknown"), session=entities.get("ses"),
        select=prefix, filename=f"{prefix}_desc-tep_report.html", title=f"TMS-EEG report: {prefix}",
        subtitle="TMS-EEG: cleaning, TEPs, oscillations, propagation, PCIst",
        sidecar=make_sidecar(description="TMS-EEG report (self-contained HTML).",
                             parameters=analysis.parameters, inputs=inputs,
                             space=TEP_SIDECAR_SPACE))


def run_tep(
    raw_path: str | Path,
    out_dir: str | Path,
    *,
    events_file: str | Path | None = None,
    recording: RecordingParameters | None = None,
    cleaning: CleaningParameters | None = None,
    measures: TepMeasureParameters | None = None,
    report: bool = True,
    on_pulses: Callable[[int, str], None] | None = None,
) -> TepJobResult:
    """Run the TMS-EEG job on one recording.

    Parameters
    ----------
    raw_path : str or Path
        Raw recording (any format :func:`tmsnet.eeg.io.read_eeg` reads).
    out_dir : str or Path
        Derivatives root (must exist).
    events_file : str or Path, optional
        Events file of the pulses (BIDS ``events.tsv`` or MNE events).
    recording : RecordingParameters, optional
        Montage and pulse sources.
    cleaning : CleaningParameters, optional
        The cleaning chain (default: TESA's).
    measures : TepMeasureParameters, optional
        Peak windows, ROI and PCIst options.
    report : bool
        Render and write the HTML report.
    on_pulses : callable, optional
        Called with (number of pulses, their source) once they are found
        (progress messages of the command line).

    Returns
    -------
    TepJobResult
    """
    recording = recording or RecordingParameters()
    raw = read_eeg(raw_path, montage=recording.montage)
    events, source = find_pulses(raw, events_file=events_file, **recording.pulse_options())
    if on_pulses is not None:
        on_pulses(len(events), source)
    analysis = analyze_tep(raw, events, cleaning=cleaning, measures=measures, pulse_source=source)
    entities = entities_from_path(raw_path)
    inputs: dict[str, str | Path | None] = {"raw": raw_path if Path(raw_path).is_file() else None}
    if events_file is not None:
        inputs["events"] = events_file
    with staged_output_dir(out_dir) as staging:  # all or nothing
        written = write_tep_outputs(analysis, staging.path, entities=entities, inputs=inputs)
        if report:  # drawn from the files just written (tmsnet.report: one report path)
            written["report"] = _write_report(analysis, staging.path, entities, inputs)
    return TepJobResult(analysis=analysis, written=staging.final_all(written), n_pulses=len(events),
                        pulse_source=source)
