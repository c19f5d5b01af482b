"""The propagation job (``tmsnet propagate``): connectome files -> predicted spread -> write -> report.

:func:`run_propagation` reads the matrices, composes the science
(:func:`tmsnet.networks.propagation_workflow.predict_propagation`), the writer
(:func:`tmsnet.networks.outputs.write_propagation`) and the report
(:func:`tmsnet.report.write_job_report`, drawn from the files just written).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tmsnet.io.atomic import ensure_output_dir
from tmsnet.io.staging import staged_output_dir
from tmsnet.networks.atlases import Atlas
from tmsnet.networks.inputs import load_matrix
from tmsnet.networks.outputs import DEFAULT_PREFIX, report_path, write_propagation
from tmsnet.networks.parameters import PropagationParameters
from tmsnet.networks.propagation_workflow import predict_propagation
from tmsnet.networks.results import PropagationResult

__all__ = ["run_propagation"]


def _write_report(result: PropagationResult, out_dir: Path, prefix: str) -> Path:
    from tmsnet.io.provenance import make_sidecar
    from tmsnet.report import write_job_report

    title = "tmsnet propagation"
    path = report_path(result, out_dir, prefix=prefix)
    return write_job_report(
        out_dir, providers=("propagation",), filename=path.name, title=title,
        select=path.name[: -len("_report.html")],
        sidecar=make_sidecar(description=title, parameters=result.parameters, inputs=result.inputs,
                             space=result.space),
    )


def run_propagation(
    connectome: str | Path,
    out_dir: str | Path,
    *,
    lengths: str | Path | None = None,
    mat_key: str | None = None,
    mat_key_lengths: str | None = None,
    target_coords: Sequence[float] | None = None,
    target_region: str | int | None = None,
    atlas: Atlas | None = None,
    parameters: PropagationParameters | None = None,
    prefix: str = DEFAULT_PREFIX,
    report: bool = True,
) -> PropagationResult:
    """Predict, write and report the spread of stimulation over a connectome file.

    Parameters
    ----------
    connectome : path
        Structural/functional matrix (``.tsv``, ``.npy``, ``.mat``).
    out_dir : path
        Output folder (created; checked for writability first).
    lengths : path, optional
        Tract lengths in mm (same formats) for conduction delays.
    mat_key, mat_key_lengths : str, optional
        Variables of ``.mat`` files holding several.
    target_coords, target_region, atlas, parameters :
        As :func:`tmsnet.networks.propagation_workflow.predict_propagation`.
    prefix : str
        File-name prefix (BIDS entities).
    report : bool
        Write ``<prefix>_desc-<region>_report.html``.

    Returns
    -------
    PropagationResult
        With ``outputs`` (``regions``, ``networks`` and ``report``).
    """
    connectome = Path(connectome)
    lengths = None if lengths is None else Path(lengths)
    sc = load_matrix(connectome, mat_key)
    lengths_mm = None if lengths is None else load_matrix(lengths, mat_key_lengths)
    ensure_output_dir(out_dir)
    result = predict_propagation(
        sc, lengths_mm=lengths_mm, target_coords=target_coords, target_region=target_region, atlas=atlas,
        parameters=parameters, inputs={"connectome": connectome, "lengths": lengths},
    )
    with staged_output_dir(out_dir) as staging:  # all or nothing
        write_propagation(result, staging.path, prefix=prefix)
        if report:
            result.outputs["report"] = _write_report(result, staging.path, prefix)
    result.outputs = staging.final_all(result.outputs)
    return result
