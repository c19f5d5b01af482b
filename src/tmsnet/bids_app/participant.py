"""The participant level: one targeting job per participant and session.

A job (:class:`ParticipantJob`) wraps :func:`tmsnet.jobs.target.run_target`
for the runs of one session and is a pure function of its inputs, so
:mod:`tmsnet.parallel` may run it anywhere. Its guarantees:

* **All or nothing.** Everything is written to a private staging folder
  ``OUTPUT_DIR/.tmsnet-work/<label>.<random>/`` and the finished
  ``sub-<label>[/ses-<label>]`` folder is then renamed into place
  (:func:`os.replace`, atomic on one file system). A killed run leaves no
  partial subject folder; a rename interrupted between "old folder out" and
  "new folder in" is undone by :func:`recover_staging` on the next run.
* **Resumable.** The folder holds ``<label>_task-<task>_provenance.json``:
  input SHA-256, parameters, tmsnet version (the *fingerprint*), the outputs
  and a summary of every target. A re-run skips the job when the fingerprint
  is unchanged and every listed output exists.
* **Failures are recorded, not fatal.** Any exception becomes
  ``OUTPUT_DIR/logs/<label>_task-<task>_crash.json`` (error, traceback,
  inputs, parameters) and a ``failed`` outcome; the other jobs go on. A later
  success removes the crash file.
* **Reproducible.** Linear algebra runs with a fixed number of BLAS threads
  (``n_threads``, default 1) in every backend, so coordinates and maps are
  bit-identical whether the job runs serially, on local processes or on Dask.

Runs of one session are either concatenated after per-run cleaning
(``runs="concat"``) or targeted one by one (``runs="each"``); ``run_labels`` selects runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmsnet import __version__
from tmsnet.bids_app.derivatives import derivatives_description
from tmsnet.bids_app.layout import (
    SessionInputs,
    collect_sessions,
    is_surface_space,
    list_participants,
    normalize_labels,
    resolve_fmriprep_dir,
)
from tmsnet.exceptions import InvalidParameterError, TmsnetError
from tmsnet.io.atomic import atomic_write_json, atomic_write_text, ensure_output_dir, json_compatible
from tmsnet.io.bids import check_label, subject_folder, write_dataset_description
from tmsnet.io.lock import output_lock
from tmsnet.io.provenance import file_sha256, make_sidecar
from tmsnet.io.surface import right_hemisphere_file
from tmsnet.parallel import Backend, TaskResult, map_tasks
from tmsnet.surface.mesh import mesh_pair_files
from tmsnet.targeting.workflow import TargetingParameters
from tmsnet.utils.params import Parameters, param, parameter_specs

__all__ = [
    "ParticipantJob",
    "ParticipantOutcome",
    "ParticipantPlan",
    "job_fingerprint",
    "recover_staging",
    "run_participant_job",
    "run_participants",
]

#: Name of the hidden staging folder inside OUTPUT_DIR.
STAGING_DIR = ".tmsnet-work"
RUN_POLICIES = ("concat", "each")
#: Options recorded under the names of earlier releases, so that a participant finished
#: before a rename (same results) is still recognised as up to date.
_RECORDED_NAMES = {"seed_region": "seed"}


@dataclass(frozen=True)
class ParticipantPlan(Parameters):
    """What a participant-level run selects and how its jobs run (see :func:`plan_jobs`).

    Every default is declared here once: the BIDS-App command line
    (:func:`tmsnet.bids_app.commands.build_parser`) and :class:`ParticipantJob` take
    theirs from these fields. The command-line options are written by hand there
    (``--participant_label`` alias, ``--no-report`` switch), not generated.

    Attributes
    ----------
    participant_labels, session_labels : tuple of str or None
        Participants / sessions to process (``01`` or ``sub-01``); None for all.
    fmriprep_dir : Path or None
        fMRIPrep outputs; None for ``BIDS_DIR/derivatives/fmriprep``.
    task, space : str
        BIDS ``task-`` and ``space-`` labels of the fMRIPrep BOLD. A surface space
        (``fsaverage5``, ``fsaverage6``, ``fsaverage``, ``fsLR``) takes fMRIPrep's surface
        BOLD (``*_hemi-L_space-<space>_bold.func.gii`` and its ``hemi-R`` partner, or the
        ``*_space-fsLR_den-91k_bold.dtseries.nii``) through the surface job; its runs are
        concatenated or targeted one by one as volume runs are (``runs``).
    res : str or None
        ``res-`` label, if fMRIPrep wrote several resolutions.
    surface_mesh : Path or None
        The left template surface (the right one beside it) for fsaverage6 and fsaverage.
    runs : {"concat", "each"}
        Concatenate a session's runs after per-run cleaning, or target each run.
    run_labels : tuple or None
        Only these runs (``1`` or ``run-1``); None for all.
    options : dict or None
        Targeting options by field name (see
        :meth:`tmsnet.targeting.workflow.TargetingParameters.from_options`).
    report : bool
        Write the per-subject HTML reports.
    force : bool
        Recompute jobs whose outputs are up to date.
    n_threads : int
        BLAS threads per job (count; same in every backend, for bit-identical results).
    """

    participant_labels: tuple[str, ...] | None = param(
        None, help="participants to process (01 or sub-01); default all", kind="tuple",
        flag="--participant-label")
    session_labels: tuple[str, ...] | None = param(
        None, help="sessions to process; default all", kind="tuple", flag="--session-label")
    fmriprep_dir: Path | None = param(
        None, help="fMRIPrep outputs (default BIDS_DIR/derivatives/fmriprep)", kind="path")
    task: str = param("rest", help="BIDS task label of the resting-state scan")
    space: str = param("MNI152NLin2009cAsym",
                       help="template space of the fMRIPrep BOLD (space- entity)")
    res: str | None = param(None, help="res- label, if fMRIPrep wrote several resolutions",
                            kind="str")
    surface_mesh: Path | None = param(
        None, kind="path",
        help="surface spaces without a shipped mesh (fsaverage6, fsaverage): the left template "
             "surface, e.g. $FREESURFER_HOME/subjects/fsaverage6/surf/lh.pial")
    runs: str = param("concat", choices=RUN_POLICIES,
                      help="several runs in a session: concatenate after per-run cleaning, or "
                           "one target per run")
    run_labels: tuple[Any, ...] | None = param(
        None, help="use only these runs (e.g. 1 or 1 2)", kind="tuple", flag="--run-label")
    options: dict[str, Any] | None = param(
        None, help="targeting options by field name", kind="any", flag="--option")
    report: bool = param(True, help="write the HTML reports", flag="--no-report")
    force: bool = param(False, help="recompute participants whose outputs are up to date")
    n_threads: int = param(1, help="BLAS threads per job (fixed for bit-identical results on "
                                   "any backend)", flag="--threads-per-job", low=1, high=1024)

    @classmethod
    def from_keywords(cls, keywords: dict[str, Any]) -> ParticipantPlan:
        """Build the plan from keyword arguments, refusing unknown ones by name.

        Raises
        ------
        InvalidParameterError
            A keyword that is not a field (e.g. a typo such as ``participant_label``).
        """
        valid = list(parameter_specs(cls))
        unknown = sorted(set(keywords) - set(valid))
        if unknown:
            raise InvalidParameterError(
                f"{cls.__name__} has no field {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(valid)}.")
        return cls(**keywords)


@dataclass(frozen=True)
class ParticipantJob:
    """One unit of work: the runs of one participant's session.

    Attributes
    ----------
    inputs : SessionInputs
        The fMRIPrep files (see :func:`tmsnet.bids_app.layout.collect_sessions`).
    output_dir : Path
        The derivatives dataset root (``OUTPUT_DIR``).
    options : dict
        Targeting options by field name (``methods`` and any field of the
        parameter objects; see
        :meth:`tmsnet.targeting.workflow.TargetingParameters.from_options`).
    runs : {"concat", "each"}
        Concatenate the runs after per-run cleaning, or target each run.
    surface_mesh : Path or None
        The left template surface for surface data on an unshipped mesh (fsaverage6,
        fsaverage); hashed in the fingerprint.
    report : bool
        Write the per-subject HTML report.
    force : bool
        Recompute even if the outputs are up to date.
    n_threads : int
        BLAS threads of the job (same in every backend, for bit-identical results).
    """

    inputs: SessionInputs
    output_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    runs: str = ParticipantPlan.runs  # the defaults are ParticipantPlan's (declared once)
    surface_mesh: Path | None = ParticipantPlan.surface_mesh
    report: bool = ParticipantPlan.report
    force: bool = ParticipantPlan.force
    n_threads: int = ParticipantPlan.n_threads

    @property
    def label(self) -> str:
        """``sub-01`` or ``sub-01_ses-1``."""
        return self.inputs.label

    @property
    def unit_dir(self) -> Path:
        """``OUTPUT_DIR/sub-<label>[/ses-<label>]``: the folder this job owns."""
        session = {"ses": self.inputs.session} if self.inputs.session else {}
        return subject_folder(self.output_dir, {"sub": self.inputs.subject, **session})

    @property
    def provenance_path(self) -> Path:
        """The job's provenance sidecar (its completion marker)."""
        return self.unit_dir / f"{self.label}_task-{self.inputs.task}_provenance.json"

    @property
    def crash_path(self) -> Path:
        """Where a failure of this job is recorded."""
        return self.output_dir / "logs" / f"{self.label}_task-{self.inputs.task}_crash.json"


@dataclass
class ParticipantOutcome:
    """What happened to one job (small: sent back from the workers).

    Attributes
    ----------
    label : str
        ``sub-01`` or ``sub-01_ses-1``.
    status : {"done", "skipped", "failed"}
        Computed now, up to date from an earlier run, or failed.
    seconds : float
        Wall time of the job (s).
    error : str or None
        ``"ExceptionType: message"`` of a failure.
    crash_file : Path or None
        The crash record of a failure.
    provenance : Path or None
        The provenance sidecar of a successful job.
    """

    label: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    crash_file: Path | None = None
    provenance: Path | None = None


def _recorded_options(options: dict[str, Any], *, sort: bool = False) -> dict[str, Any]:
    """The options as recorded in the provenance (given order) or the fingerprint (sorted)."""
    return {_RECORDED_NAMES.get(k, k): options[k] for k in (sorted(options) if sort else options)}


def _run_files(run: Any) -> list[tuple[str, Path]]:
    """The files one run is read from (a surface GIFTI pair: both hemispheres)."""
    files = [("bold", run.bold)]
    if run.bold.name.endswith(".func.gii"):  # a GIFTI pair; a CIFTI file holds both
        files.append(("bold_right", right_hemisphere_file(run.bold)))
    files.append(("confounds", run.confounds))
    return files + ([("mask", run.mask)] if run.mask is not None else [])


def _mesh_files(job: ParticipantJob) -> list[tuple[str, Path]]:
    return [] if job.surface_mesh is None else list(mesh_pair_files(job.surface_mesh).items())


def job_fingerprint(job: ParticipantJob) -> dict[str, Any]:
    """Everything that decides a job's outputs: input hashes, parameters, version.

    File names and SHA-256 are recorded (not absolute paths), so a dataset
    that moved is still recognised as unchanged.
    """
    inputs = []
    for run in job.inputs.runs:
        for role, path in _run_files(run):
            inputs.append({"run": run.run, "role": role, "name": path.name,
                           "sha256": file_sha256(path)})
    for role, path in _mesh_files(job):
        inputs.append({"run": None, "role": role, "name": path.name, "sha256": file_sha256(path)})
    return json_compatible({
        "tmsnet_version": __version__,
        "task": job.inputs.task,
        "space": job.inputs.space,
        "runs": job.runs,
        "report": job.report,
        "parameters": _recorded_options(job.options, sort=True),
        "inputs": inputs,
    })


def _is_up_to_date(job: ParticipantJob, fingerprint: dict[str, Any]) -> bool:
    try:
        stored = json.loads(job.provenance_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stored.get("Fingerprint") != fingerprint:
        return False
    return all((job.output_dir / rel).is_file() for rel in stored.get("Outputs", []))


def _run_groups(job: ParticipantJob) -> list[tuple[Any, Any]]:
    runs = job.inputs.runs
    if job.runs == "each" or len(runs) == 1:
        return [(run.bold, run.confounds) for run in runs]
    return [([run.bold for run in runs], [run.confounds for run in runs])]


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _commit(staged: Path, final: Path, stage_root: Path, keep: Callable[[str], bool]) -> None:
    """Rename ``staged`` to ``final``; files of ``final`` for which ``keep`` is true survive."""
    final.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stage_root / "destination.txt", str(final))
    if final.exists():
        for path in sorted(final.rglob("*")):
            if path.is_file() and keep(path.name):
                target = staged / path.relative_to(final)
                if not target.exists():
                    _link_or_copy(path, target)
        os.replace(final, stage_root / "previous")
    os.replace(staged, final)


def recover_staging(output_dir: str | Path) -> list[Path]:
    """Undo half-finished commits of a killed run and delete its staging folders.

    A job killed between moving the old subject folder out and the new one in
    left the old folder in ``.tmsnet-work/<label>.*/previous``; it is moved back.

    Returns
    -------
    list of Path
        Subject folders restored.
    """
    work = Path(output_dir) / STAGING_DIR
    restored: list[Path] = []
    if not work.is_dir():
        return restored
    for stage in sorted(work.iterdir()):
        previous, marker = stage / "previous", stage / "destination.txt"
        if previous.is_dir() and marker.is_file():
            final = Path(marker.read_text(encoding="utf-8").strip())
            if not final.exists():
                os.replace(previous, final)
                restored.append(final)
        shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return restored


def _target_one(job: ParticipantJob, bold: Any, confounds: Any, parameters: TargetingParameters,
                stage: Path) -> tuple[dict[str, str], dict[str, Path], dict[str, Any]]:
    """One run group through the volume or the surface job: its entities, files and summary."""
    from tmsnet.jobs.target import run_surface_target, run_target
    from tmsnet.targeting.surface_outputs import surface_entities

    if not is_surface_space(job.inputs.space):
        done = run_target(bold, confounds, parameters, out_dir=stage, report=job.report,
                          n_jobs=job.n_threads, progress=False)
        return dict(done.result.entities), done.written, done.summary
    done = run_surface_target(bold, confounds, parameters, out_dir=stage, report=job.report,
                              mesh=job.surface_mesh, n_jobs=job.n_threads)
    return surface_entities(bold), done.written, done.summary


def _compute_and_commit(job: ParticipantJob, fingerprint: dict[str, Any]) -> Path:
    from threadpoolctl import threadpool_limits

    work = job.output_dir / STAGING_DIR
    work.mkdir(parents=True, exist_ok=True)
    stage_root = Path(tempfile.mkdtemp(prefix=f"{job.label}.", dir=work))
    try:
        stage = stage_root / "out"
        stage.mkdir()
        staged_unit = stage / job.unit_dir.relative_to(job.output_dir)
        results = []
        parameters = TargetingParameters.from_options(job.options)
        with threadpool_limits(limits=job.n_threads):
            for bold, confounds in _run_groups(job):
                results.append(_target_one(job, bold, confounds, parameters, stage))
        staged_unit.mkdir(parents=True, exist_ok=True)
        outputs: list[str] = []
        summaries = []
        for entities, written, run_summary in results:
            paths = {}
            for role, path in written.items():
                if role == "dataset_description":
                    continue
                path = Path(path)
                if path.parent == stage:  # report: keep it inside the subject folder
                    for sibling in stage.glob(path.name.split(".")[0] + ".*"):
                        os.replace(sibling, staged_unit / sibling.name)
                        outputs.append(str((staged_unit / sibling.name).relative_to(stage)))
                    path = staged_unit / path.name
                else:
                    outputs.append(str(path.relative_to(stage)))
                paths[role] = str(path.relative_to(stage))
            summary = dict(run_summary)
            summary["entities"] = dict(entities)
            summary["space"] = job.inputs.space
            summary["outputs"] = paths
            summaries.append(summary)
        outputs += [str(p.relative_to(stage)) for p in staged_unit.rglob("*.json")
                    if str(p.relative_to(stage)) not in outputs]
        inputs: dict[str, Path | None] = dict(_mesh_files(job))
        for run in job.inputs.runs:
            tag = f"_run-{run.run}" if run.run else ""
            inputs.update({f"{role}{tag}": path for role, path in _run_files(run)
                           if role != "mask"})
        provenance = make_sidecar(
            description=(f"tmsnet participant-level job {job.label} (task-{job.inputs.task}): "
                         "fingerprint, outputs and target summaries."),
            parameters={"options": _recorded_options(job.options), "runs": job.runs,
                        "report": job.report, "n_threads": job.n_threads},
            inputs=inputs, space=job.inputs.space,
            extra={"Fingerprint": fingerprint,
                   "Participant": {"subject": job.inputs.subject, "session": job.inputs.session,
                                   "task": job.inputs.task,
                                   "runs": [r.run for r in job.inputs.runs]},
                   "Outputs": sorted(set(outputs)),
                   "Results": summaries},
        )
        atomic_write_json(stage / job.provenance_path.relative_to(job.output_dir), provenance)
        task_tag = f"_task-{job.inputs.task}_"
        _commit(staged_unit, job.unit_dir, stage_root, keep=lambda name: task_tag not in name)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    return job.provenance_path


def write_crash_file(job: ParticipantJob, error: str, trace: str | None) -> Path:
    """Record a failed job in ``OUTPUT_DIR/logs`` (JSON, atomic)."""
    path = job.crash_path
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {
        "Participant": job.label,
        "Subject": job.inputs.subject,
        "Session": job.inputs.session,
        "Task": job.inputs.task,
        "Error": error,
        "Traceback": trace,
        "Inputs": [{"run": r.run, "bold": str(r.bold), "confounds": str(r.confounds)}
                   for r in job.inputs.runs],
        "Parameters": {"options": _recorded_options(job.options), "runs": job.runs,
                       "report": job.report},
        "GeneratedBy": [{"Name": "tmsnet", "Version": __version__}],
        "Hint": "Fix the input or parameter named in Error, then run the participant level "
                "again: finished participants are skipped, this one is computed.",
    })
    return path


def run_participant_job(job: ParticipantJob) -> ParticipantOutcome:
    """Run one job; never raises for a failure of the job itself (see module docstring).

    Parameters
    ----------
    job : ParticipantJob
        The job (picklable; built by :func:`plan_jobs`).

    Returns
    -------
    ParticipantOutcome
    """
    t0 = time.perf_counter()
    try:
        fingerprint = job_fingerprint(job)
        if not job.force and _is_up_to_date(job, fingerprint):
            status = "skipped"
        else:
            _compute_and_commit(job, fingerprint)
            status = "done"
        if job.crash_path.exists():
            job.crash_path.unlink()
        return ParticipantOutcome(label=job.label, status=status, provenance=job.provenance_path,
                                  seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - recorded in a crash file; other jobs go on
        error = f"{type(exc).__name__}: {exc}"
        crash = write_crash_file(job, error, "".join(traceback.format_exception(exc)))
        return ParticipantOutcome(label=job.label, status="failed", error=error, crash_file=crash,
                                  seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class _LayoutFailure:
    job: ParticipantJob
    error: str


def plan_jobs(
    bids_dir: str | Path,
    output_dir: str | Path,
    plan: ParticipantPlan | None = None,
) -> tuple[list[ParticipantJob], list[_LayoutFailure], Path]:
    """The jobs of a participant-level run (and participants whose files are unusable).

    Parameters
    ----------
    bids_dir, output_dir : path
        Raw BIDS dataset and derivatives output folder (not created here).
    plan : ParticipantPlan, optional
        Selection and execution settings; default ``ParticipantPlan()``.

    Returns
    -------
    jobs : list of ParticipantJob
        One per participant and session found.
    failures : list
        Participants whose fMRIPrep files could not be collected (recorded as failed).
    fmriprep : Path
        The fMRIPrep folder used.

    Raises
    ------
    InvalidParameterError
        A bad option or label, or ``output_dir`` equal to an input folder; before any
        file is written.
    """
    if plan is None:
        plan = ParticipantPlan()
    elif not isinstance(plan, ParticipantPlan):
        raise InvalidParameterError(f"plan must be a ParticipantPlan, got {type(plan).__name__}.")
    task, space, res, runs = plan.task, plan.space, plan.res, plan.runs
    options = dict(plan.options or {})
    TargetingParameters.from_options(options)  # fail fast on unknown options and bad values
    for value, flag in ((task, "--task"), (space, "--space"), (res, "--res")):
        if value is not None:  # BIDS labels, before any path is built (issue 14, item 9)
            check_label(value, flag)
    if plan.surface_mesh is not None:
        mesh_pair_files(plan.surface_mesh)  # both files exist, before any job runs
    fmriprep = resolve_fmriprep_dir(bids_dir, plan.fmriprep_dir)
    out = Path(output_dir).expanduser().absolute()
    for source in (Path(bids_dir).expanduser().absolute(), fmriprep):
        if out == source:
            raise InvalidParameterError(
                f"OUTPUT_DIR {out} is an input folder; choose another (e.g. "
                f"{source / 'derivatives' / 'tmsnet'})."
            )
    labels = list_participants(bids_dir, fmriprep, normalize_labels(plan.participant_labels, "sub"))
    sessions = normalize_labels(plan.session_labels, "ses")
    wanted_runs = None if plan.run_labels is None else [
        check_label(str(r).removeprefix("run-"), "--run-label") for r in plan.run_labels]
    jobs: list[ParticipantJob] = []
    failures: list[_LayoutFailure] = []
    for subject in labels:
        try:
            found = collect_sessions(fmriprep, subject, task=task, space=space, res=res,
                                     sessions=sessions, runs=wanted_runs)
        except TmsnetError as exc:
            placeholder = SessionInputs(subject=subject, session=None, task=task, space=space,
                                        runs=())
            failures.append(_LayoutFailure(
                ParticipantJob(inputs=placeholder, output_dir=out, options=options),
                f"{type(exc).__name__}: {exc}"))
            continue
        for inputs in found:
            jobs.append(ParticipantJob(inputs=inputs, output_dir=out, options=options, runs=runs,
                                       surface_mesh=plan.surface_mesh, report=plan.report,
                                       force=plan.force, n_threads=plan.n_threads))
    return jobs, failures, fmriprep


def run_participants(
    bids_dir: str | Path,
    output_dir: str | Path,
    *,
    backend: Backend | None = None,
    client: Any = None,
    progress: bool = True,
    on_outcome: Callable[[ParticipantOutcome], None] | None = None,
    **plan: Any,
) -> list[ParticipantOutcome]:
    """Run the participant level of the BIDS-App.

    Parameters
    ----------
    bids_dir, output_dir : path
        Raw BIDS dataset and derivatives output folder (created if needed).
    backend : Backend, optional
        Where jobs run (:func:`tmsnet.parallel.choose_backend`); default serial.
    client : distributed.Client, optional
        An existing Dask client (overrides ``backend``).
    progress : bool
        Progress bar with ETA on stderr.
    on_outcome : callable, optional
        Called with each :class:`ParticipantOutcome` as soon as its job ends.
    **plan
        The fields of :class:`ParticipantPlan`: ``participant_labels``,
        ``session_labels``, ``fmriprep_dir``, ``task``, ``space``, ``res``, ``runs``,
        ``run_labels``, ``options`` (targeting options), ``report``, ``force``,
        ``n_threads``.

    Returns
    -------
    list of ParticipantOutcome
        Sorted by label; ``status`` tells done / skipped / failed.

    Raises
    ------
    InvalidParameterError
        An unknown keyword in ``plan`` (named in the message) or a bad value; before any
        file is written.
    """
    jobs, failures, fmriprep = plan_jobs(bids_dir, output_dir, ParticipantPlan.from_keywords(plan))
    out = ensure_output_dir(output_dir)
    with output_lock(out):  # one writer: recover_staging below must not hit a live run
        write_dataset_description(
            out, derivatives_description(source_dirs={"raw": Path(bids_dir), "fmriprep": fmriprep}),
            overwrite=True, refuse_foreign=True)
        recover_staging(out)
        return _run_jobs(jobs, failures, out, backend=backend, client=client, progress=progress,
                         on_outcome=on_outcome)


def _run_jobs(jobs: list[ParticipantJob], failures: list[Any], out: Path, *, backend: Any,
              client: Any, progress: bool,
              on_outcome: Callable[[ParticipantOutcome], None] | None,
              ) -> list[ParticipantOutcome]:
    """Record the planning failures, run the jobs, collect the outcomes (lock held)."""
    outcomes: list[ParticipantOutcome] = []
    for failure in failures:
        crash = write_crash_file(failure.job, failure.error, None)
        outcome = ParticipantOutcome(label=failure.job.label, status="failed",
                                     error=failure.error, crash_file=crash)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    def collect(task: TaskResult) -> None:
        job = jobs[task.index]
        if task.ok:
            outcome = task.value
        else:  # the worker itself died (killed, out of memory...)
            crash = write_crash_file(job, task.error or "worker failed", task.traceback)
            outcome = ParticipantOutcome(label=job.label, status="failed", error=task.error,
                                         crash_file=crash, seconds=task.seconds)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    map_tasks(run_participant_job, jobs, backend=backend, client=client,
              labels=[j.label for j in jobs], on_result=collect, progress=progress,
              desc="tmsnet participant", unit="subject")
    work = out / STAGING_DIR
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    return sorted(outcomes, key=lambda o: o.label)
