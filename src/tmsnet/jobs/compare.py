"""The group-comparison job (``tmsnet compare``): connectomes -> statistics -> write -> report.

:func:`run_comparison` composes the science
(:func:`tmsnet.networks.compare_workflow.compare_connectomes`), the writer
(:func:`tmsnet.networks.outputs.write_comparison`) and the report
(:func:`tmsnet.report.write_job_report`, drawn from the files just written).
"""

from __future__ import annotations

from pathlib import Path

from tmsnet.io.atomic import ensure_output_dir
from tmsnet.io.staging import staged_output_dir
from tmsnet.networks.compare_workflow import compare_connectomes
from tmsnet.networks.outputs import report_path, write_comparison
from tmsnet.networks.parameters import ComparisonParameters
from tmsnet.networks.results import ComparisonResult

__all__ = ["run_comparison"]


def _write_report(result: ComparisonResult, out_dir: Path) -> Path:
    from tmsnet.io.provenance import make_sidecar
    from tmsnet.report import write_job_report

    title = "tmsnet group comparison"
    path = report_path(result, out_dir)
    return write_job_report(
        out_dir, providers=("compare",), filename=path.name, title=title,
        select=path.name[: -len("_report.html")],
        sidecar=make_sidecar(description=title, parameters=result.parameters, inputs=result.inputs,
                             space=None),
    )


def run_comparison(
    participants: str | Path,
    connectomes: str | Path,
    out_dir: str | Path,
    *,
    parameters: ComparisonParameters | None = None,
    networks: str | Path | None = None,
    report: bool = True,
) -> ComparisonResult:
    """Compare groups (or sessions) on connectomes, write the tables and the report.

    Parameters
    ----------
    participants, connectomes, parameters, networks :
        As :func:`tmsnet.networks.compare_workflow.compare_connectomes`.
    out_dir : path
        Output folder (created; checked for writability first).
    report : bool
        Write ``group_desc-<groups|prepost>_report.html``.

    Returns
    -------
    ComparisonResult
        With ``outputs`` (``nbs``, ``edges``, ``blocks``, ``nbs_edges`` and ``report``).
    """
    ensure_output_dir(out_dir)
    result = compare_connectomes(participants, connectomes, parameters=parameters, networks=networks)
    with staged_output_dir(out_dir) as staging:  # all or nothing
        write_comparison(result, staging.path)
        if report:
            result.outputs["report"] = _write_report(result, staging.path)
    result.outputs = staging.final_all(result.outputs)
    return result
