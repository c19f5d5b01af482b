"""The targeting job (``tmsnet target``, one BIDS-App participant): compute -> write -> report.

:func:`run_target` is the one place that composes
:func:`tmsnet.targeting.workflow.compute_targets`, the writer
(:func:`tmsnet.targeting.outputs.write_targeting_outputs`) and the report
(:func:`tmsnet.report.write_job_report`, drawn from the files just written).
:func:`demo_annotation` adds a simulated subject's planted target to the run
summary (the ``--demo`` path of :mod:`tmsnet.targeting.commands` generates the
subject; the demo's ground truth never enters the core result).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.io.atomic import ensure_output_dir
from tmsnet.io.bids import entity_prefix
from tmsnet.io.staging import staged_output_dir
from tmsnet.targeting.outputs import write_targeting_outputs
from tmsnet.targeting.results import TargetingResult, result_summary
from tmsnet.targeting.workflow import TargetingParameters, compute_targets
from tmsnet.utils.docs import fill_doc

__all__ = ["PlanRequest", "TargetJobResult", "demo_annotation", "run_target"]


@dataclass(frozen=True)
class PlanRequest:
    """The treatment plan to write for the first target (``tmsnet target --plan``).

    Attributes
    ----------
    parameters : PlanParameters
        Coil, protocol, orientation sweep and dose.
    t1w, xfm : path, optional
        The subject's T1w image and the fMRIPrep template-to-T1w transform.
    """

    parameters: Any
    t1w: Path | None = None
    xfm: Path | None = None


@dataclass
class TargetJobResult:
    """What :func:`run_target` computed and wrote.

    Attributes
    ----------
    result : TargetingResult
        The targets and everything behind them.
    written : dict
        Output paths by role (``report`` when the report was written,
        ``plan_<role>`` for the treatment plan).
    summary : dict
        The run summary (:func:`tmsnet.targeting.results.result_summary`, plus the
        demo's planted target), as recorded beside the report.
    """

    result: TargetingResult
    written: dict[str, Path]
    summary: dict[str, Any] = field(default_factory=dict)


def _write_report(out: Path, entities: Mapping[str, str], subtitle: str,
                  n_jobs: int | None = 1) -> Path:
    """The targeting report of the run named by ``entities``, drawn from ``out``."""
    from tmsnet.report import write_job_report

    prefix = entity_prefix(entities)
    subject = entities.get("sub", "unknown")
    return write_job_report(
        out, providers=("targeting",), subject=subject, session=entities.get("ses"),
        select=prefix, filename=f"{prefix}_report.html",
        title=f"tmsnet targeting report: sub-{subject}", subtitle=subtitle, n_jobs=n_jobs)


def _write_plan(out: Path, target_mm: Any, space: str, plan: PlanRequest,
                subject: str) -> dict[str, Path]:
    """The treatment plan of a target, as ``plan_<role>`` outputs."""
    from tmsnet.jobs.plan import plan as plan_job

    _, files = plan_job(target_mm, space, out, plan.parameters, t1w=plan.t1w, xfm=plan.xfm,
                        subject=subject)
    return {f"plan_{role}": path for role, path in files.items()}


@fill_doc
def run_target(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    parameters: TargetingParameters | None = None,
    *,
    out_dir: str | Path,
    report: bool = True,
    mask: str | Path | Sequence[str | Path] | None = None,
    space: str | None = None,
    t_r: float | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    annotate: Callable[[TargetingResult], Mapping[str, Any]] | None = None,
    plan: PlanRequest | None = None,
) -> TargetJobResult:
    """Compute the target(s) of one scan, write them under ``out_dir`` and draw the report.

    Parameters
    ----------
    %(bold)s
    %(confounds)s
    %(targeting_parameters)s
    %(out_dir)s
    report : bool
        Also write the HTML report and its run summary (default True).
    %(mask)s
    %(space)s
    %(t_r)s
    %(n_jobs_smoothing)s
    %(progress)s
    annotate : callable, optional
        ``annotate(result)`` returns entries added to the run summary (the
        demo's planted target).
    plan : PlanRequest, optional
        Also write the treatment plan of the first target
        (:func:`tmsnet.jobs.plan.plan`).

    Returns
    -------
    TargetJobResult
    """
    ensure_output_dir(out_dir)
    result = compute_targets(bold, confounds, parameters, mask=mask, space=space, t_r=t_r,
                             n_jobs=n_jobs, progress=progress)
    summary = {**result_summary(result), **(annotate(result) if annotate is not None else {})}
    # All or nothing: a failing plan or report leaves no target files behind (issue 14).
    with staged_output_dir(out_dir) as staging:
        stage = staging.path
        written = write_targeting_outputs(result, stage, summary=summary, write_summary=report)
        if report:
            written["report"] = _write_report(
                stage, result.entities,
                "Personalized left-DLPFC target anticorrelated with the subgenual cingulate", n_jobs)
        if plan is not None:
            written.update(_write_plan(stage, result.targets[0].coordinate_mm, result.space,
                                       plan, result.entities.get("sub", "01")))
    written = staging.final_all(written)
    return TargetJobResult(result=result, written=written, summary=summary)


def demo_annotation(result: TargetingResult, truth: Mapping[str, Any]) -> dict[str, Any]:
    """The planted target of a simulated subject and each method's error (mm) against it."""
    planted = np.asarray(truth["target_mm"], dtype=float)
    return {
        "planted_target_mm": truth.get("target_mm"),
        "error_mm": {t.method: round(float(np.linalg.norm(t.coordinate_mm - planted)), 2)
                     for t in result.targets},
    }


@dataclass
class SurfaceTargetJobResult:
    """What :func:`run_surface_target` computed and wrote."""

    result: Any
    written: dict[str, Path]
    summary: dict[str, Any]


def run_surface_target(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    parameters: TargetingParameters | None = None,
    *,
    out_dir: str | Path,
    space: str | None = None,
    t_r: float | None = None,
    mesh: str | Path | None = None,
    plan: PlanRequest | None = None,
    report: bool = True,
    n_jobs: int | None = None,
) -> SurfaceTargetJobResult:
    """The targeting job on surface BOLD: compute, then write (staged: all or nothing).

    See :func:`tmsnet.targeting.surface_workflow.compute_surface_targets` for the steps and
    :mod:`tmsnet.targeting.surface_outputs` for the files (the maps as GIFTI, and for a CIFTI
    input also as CIFTI-2 dscalar). With ``report``, the HTML report: the targeting section
    with the interactive surface viewer (both hemispheres of the template surface, inflated
    where tmsnet has it, with the map and the targets; NiiVue, inlined) and a static view for
    printing; with ``plan``, the treatment plan of the first target at its MNI152 coordinate
    (fsaverage spaces only). ``mesh``: the left file of the template surface pair the data are
    on, needed for fsaverage6 and fsaverage (tmsnet ships only fsaverage5 and fsLR 32k); the
    report's viewer shows it. ``n_jobs``: processes forked for the hierarchical bootstrap and
    the report's figures (default: available CPUs, at most 8; results do not depend on it).
    ``bold`` and ``confounds`` may list several runs of one session: each is cleaned on its
    own, then they are concatenated; the outputs are named without ``run``.
    """
    from tmsnet.exceptions import SpaceError
    from tmsnet.targeting.surface_outputs import (
        MNI152_OF_MNI305,
        surface_entities,
        surface_result_summary,
        surface_target_mni152,
        write_surface_outputs,
    )
    from tmsnet.targeting.surface_workflow import compute_surface_targets

    ensure_output_dir(out_dir)
    result = compute_surface_targets(bold, confounds, parameters, space=space, t_r=t_r,
                                     mesh=mesh, n_jobs=n_jobs)
    mni152 = surface_target_mni152(result.targets[0], result)
    if plan is not None and mni152 is None:
        raise SpaceError(f"A plan needs the target in MNI152; {result.space} coordinates have no "
                         "transform to it in tmsnet (fsaverage and fsLR do).")
    entities = surface_entities(bold)
    with staged_output_dir(out_dir) as staging:
        written = write_surface_outputs(result, staging.path, bold=bold)
        if report:
            written["report"] = _write_report(
                staging.path, entities,
                f"Personalized left-DLPFC target on the {result.space} surface", n_jobs)
        if plan is not None:
            written.update(_write_plan(staging.path, mni152, MNI152_OF_MNI305, plan,
                                       entities.get("sub", "01")))
    return SurfaceTargetJobResult(result=result, written=staging.final_all(written),
                                  summary=surface_result_summary(result))
