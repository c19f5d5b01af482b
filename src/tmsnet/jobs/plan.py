"""The treatment-plan job: compute -> write -> report (``tmsnet plan``, ``tmsnet target --plan``).

1. :func:`tmsnet.navigation.plan.compute_plan`: the plan (physics included);
2. :func:`tmsnet.navigation.outputs.write_plan`: the plan JSON, the field patch
   (sphere model) or the head labels and |E| map (realistic head) and the
   neuronavigation files, each with a sidecar;
3. :func:`tmsnet.report.write_job_report`: the one-page plan
   ``sub-<label>_desc-treatment_plan.html``, drawn by the plan's report
   provider from those files (the same code as the plan's section of the
   per-subject report); its sidecar is the plan's provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tmsnet.io.bids import bids_name, check_label
from tmsnet.io.staging import staged_output_dir
from tmsnet.navigation.outputs import plan_page_name, write_plan
from tmsnet.navigation.plan import PlanParameters, TreatmentPlan, compute_plan
from tmsnet.report import write_job_report
from tmsnet.utils.docs import fill_doc

__all__ = ["plan"]

_TITLE = "TMS treatment plan"
_SUBTITLE = "Decision support to be checked by the operator"


@fill_doc
def plan(
    target_mm: Any,
    space: str,
    out_dir: str | Path,
    params: PlanParameters | None = None,
    *,
    t1w: str | Path | None = None,
    xfm: str | Path | None = None,
    brain_mask: str | Path | None = None,
    subject: str = "01",
    name: str = "target",
    report: bool = True,
) -> tuple[TreatmentPlan, dict[str, Path]]:
    """Compute the treatment plan of a target, write it and its one-page report.

    Parameters
    ----------
    %(plan_target)s
    %(plan_params)s
    %(plan_head)s
    %(plan_output)s
    report : bool
        Also write the one-page plan (HTML).

    Returns
    -------
    plan : TreatmentPlan
    written : dict
        Paths by role: ``plan_json``, ``plan_html`` (with ``report``),
        ``brainsight``, ``localite``, ``markers``, ``coordsystem``,
        ``plan_field`` (sphere model), ``head_labels`` and ``efield_map``
        (``params.head_model == "realistic"``).
    """
    check_label(subject, "--subject")  # before any computing or any folder (issue 14, item 9)
    result = compute_plan(target_mm, space, params, t1w=t1w, xfm=xfm, brain_mask=brain_mask)
    with staged_output_dir(out_dir) as staging:  # all or nothing
        stage = staging.path
        files, sidecar = write_plan(result, stage, subject=subject, name=name)
        written = {"plan_json": files.pop("plan_json")}
        if report:
            written["plan_html"] = write_job_report(
                stage, providers=("plan",), filename=plan_page_name(subject), title=_TITLE,
                subtitle=_SUBTITLE, subject=subject,
                select=bids_name({"sub": subject, "space": result.space}), sidecar=sidecar)
        written.update(files)
    return result, staging.final_all(written)
