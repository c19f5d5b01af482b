"""The connectome job (``tmsnet connectome``): inputs -> connectomes and summaries -> write -> report.

:func:`run_connectomes` is the one place that composes the science
(:func:`tmsnet.networks.connectome_workflow.analyze_connectomes`), the writer
(:func:`tmsnet.networks.outputs.write_connectome_results`) and the report
(:func:`tmsnet.report.write_job_report`, drawn from the files just written).
Every connectome is computed before the first file is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tmsnet.io.atomic import ensure_output_dir
from tmsnet.io.staging import staged_output_dir
from tmsnet.networks.connectome_workflow import analyze_connectomes
from tmsnet.networks.outputs import report_path, write_connectome_results
from tmsnet.networks.results import ConnectomeResults

__all__ = ["run_connectomes"]


def _write_report(results: ConnectomeResults, out_dir: Path) -> Path:
    from tmsnet.io.provenance import make_sidecar
    from tmsnet.report import write_job_report

    cleaning = results.cleaning
    title = "tmsnet connectomes"
    parameters = {
        "kinds": results.kinds,
        "strategy": cleaning.confound_strategy,
        "global_signal": cleaning.global_signal_regression,
        "low_pass_hz": cleaning.low_pass_hz,
        "high_pass_hz": cleaning.high_pass_hz,
        "discard_frames": cleaning.discard_frames,
    }
    inputs = {f"input_{k}": p for k, p in enumerate(results.inputs)}
    return write_job_report(
        out_dir, providers=("connectome",), filename=report_path(results, out_dir).name, title=title,
        sidecar=make_sidecar(description=title, parameters=parameters, inputs=inputs, space=results.space),
    )


def run_connectomes(out_dir: str | Path, *, report: bool = True, **analysis: Any) -> ConnectomeResults:
    """Compute, write and report the connectomes of several inputs.

    Parameters
    ----------
    out_dir : path
        Derivatives root (created; checked for writability first).
    report : bool
        Write ``tmsnet_connectome_report.html``.
    **analysis
        The inputs and parameters, passed on to
        :func:`tmsnet.networks.connectome_workflow.analyze_connectomes` (which
        declares and documents them): ``bold``, ``timeseries``, ``confounds``,
        ``t_r``, ``atlas``, ``parameters``, ``cleaning``.

    Returns
    -------
    ConnectomeResults
        With each connectome's ``outputs`` and, with ``report``, ``outputs["report"]``.
    """
    ensure_output_dir(out_dir)
    results = analyze_connectomes(**analysis)
    with staged_output_dir(out_dir) as staging:  # all or nothing
        write_connectome_results(results, staging.path)
        if report:
            results.outputs["report"] = _write_report(results, staging.path)
    for item in results.connectomes:
        item.outputs = staging.final_all(item.outputs)
    results.outputs = staging.final_all(results.outputs)
    return results
