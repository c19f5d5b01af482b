"""Find each participant's fMRIPrep outputs in a BIDS dataset.

A BIDS-App receives the raw dataset (``BIDS_DIR``); the resting-state data
tmsnet analyses are fMRIPrep derivatives, by default in
``BIDS_DIR/derivatives/fmriprep`` (or ``--fmriprep-dir``). For every
participant and session this module collects the runs of one task in one
template space::

    <fmriprep>/sub-<label>/[ses-<label>/]func/
        sub-<label>_[ses-<label>_]task-<task>_[acq-<label>_][run-<index>_]space-<space>[_res-<label>]_desc-preproc_bold.nii.gz
        sub-<label>_[ses-<label>_]task-<task>_[acq-<label>_][run-<index>_]desc-confounds_timeseries.tsv
        ..._space-<space>[_res-<label>]_desc-brain_mask.nii.gz   (optional, beside the BOLD)

For a surface space the BOLD is fMRIPrep's surface output instead (the confounds are the
same file): ``..._hemi-L_space-<fsaverage5|fsaverage6|fsaverage>_bold.func.gii`` (the left
hemisphere; the job finds ``hemi-R`` beside it) or ``..._space-fsLR_den-<den>_bold.dtseries.nii``.

File names are parsed entity by entity (BIDS: ``key-value`` pairs, then a
suffix), not with one fixed pattern, so optional entities (``acq``, ``ce``,
``rec``, ``dir``, ``echo``, ``res``, ``den``...) are tolerated. Every problem
raises a typed error that names the folder, what was found and the option
that fixes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.io.bids import parse_bids_name  # the one BIDS name parser (re-exported here)
from tmsnet.io.surface import SURFACE_SPACES

__all__ = [
    "RunInputs",
    "SessionInputs",
    "bold_suffix",
    "collect_sessions",
    "is_surface_space",
    "list_participants",
    "normalize_labels",
    "parse_bids_name",
    "resolve_fmriprep_dir",
]

_BOLD_SUFFIX = "_desc-preproc_bold.nii.gz"
_GIFTI_SUFFIX, _CIFTI_SUFFIX = "_bold.func.gii", "_bold.dtseries.nii"


def bold_suffix(space: str) -> str:
    """The end of fMRIPrep's BOLD file names in ``space`` (volume or surface output)."""
    if space == "fsLR":
        return _CIFTI_SUFFIX
    return _GIFTI_SUFFIX if space in SURFACE_SPACES else _BOLD_SUFFIX


def is_surface_space(space: str) -> bool:
    """Whether fMRIPrep writes ``space`` as surface data (GIFTI or CIFTI), not a volume."""
    return space in SURFACE_SPACES


@dataclass(frozen=True)
class RunInputs:
    """The fMRIPrep files of one run.

    Attributes
    ----------
    run : str or None
        Run label (``"1"``), None when the file name has no ``run-`` entity.
    acq : str or None
        ``acq-`` label, if any.
    bold, confounds : Path
        Preprocessed BOLD and its confounds table.
    mask : Path or None
        Brain mask beside the BOLD, if present.
    """

    run: str | None
    acq: str | None
    bold: Path
    confounds: Path
    mask: Path | None


@dataclass(frozen=True)
class SessionInputs:
    """All runs of one task, space and session of one participant.

    Attributes
    ----------
    subject : str
        Participant label without ``sub-``.
    session : str or None
        Session label without ``ses-`` (None when the dataset has no sessions).
    task, space : str
        Task and template space of every run.
    runs : tuple of RunInputs
        In run order.
    """

    subject: str
    session: str | None
    task: str
    space: str
    runs: tuple[RunInputs, ...]

    @property
    def label(self) -> str:
        """``sub-01`` or ``sub-01_ses-1``: the name of this unit of work."""
        return f"sub-{self.subject}" + (f"_ses-{self.session}" if self.session else "")


def normalize_labels(labels: Iterable[str] | None, prefix: str) -> list[str] | None:
    """Labels without their ``sub-``/``ses-`` prefix (``sub-01`` and ``01`` both give ``01``)."""
    if labels is None:
        return None
    out = []
    for label in labels:
        text = str(label).strip()
        if text.startswith(f"{prefix}-"):
            text = text[len(prefix) + 1:]
        if not text or not text.replace("+", "").isalnum():
            raise InvalidParameterError(
                f"{prefix} label {label!r} is not a BIDS label (letters and digits only, e.g. "
                f"'{prefix}-01' or '01')."
            )
        out.append(text)
    return list(dict.fromkeys(out))


def resolve_fmriprep_dir(bids_dir: str | Path, fmriprep_dir: str | Path | None = None) -> Path:
    """The folder holding fMRIPrep outputs.

    Parameters
    ----------
    bids_dir : path
        Raw BIDS dataset (must exist).
    fmriprep_dir : path, optional
        fMRIPrep derivatives; default ``bids_dir/derivatives/fmriprep``, or
        ``bids_dir`` itself when it is a derivatives dataset with ``sub-*``
        folders.

    Returns
    -------
    Path
        Absolute folder.

    Raises
    ------
    InputFileNotFoundError
        If a folder is missing.
    """
    bids = Path(bids_dir).expanduser().absolute()
    if not bids.is_dir():
        raise InputFileNotFoundError(
            f"BIDS_DIR {bids} is not a folder. Give the root of the BIDS dataset (the folder "
            "with dataset_description.json and sub-* folders)."
        )
    if fmriprep_dir is not None:
        folder = Path(fmriprep_dir).expanduser().absolute()
        if not folder.is_dir():
            raise InputFileNotFoundError(
                f"--fmriprep-dir {folder} is not a folder. Give the fMRIPrep output folder (with "
                "sub-*/func/*_desc-preproc_bold.nii.gz)."
            )
        return folder
    default = bids / "derivatives" / "fmriprep"
    if default.is_dir():
        return default
    description = bids / "dataset_description.json"
    if description.is_file():
        try:
            kind = json.loads(description.read_text(encoding="utf-8")).get("DatasetType")
        except (ValueError, AttributeError):
            kind = None
        if kind == "derivative" and any(bids.glob("sub-*/**/func/*" + _BOLD_SUFFIX)):
            return bids
    raise InputFileNotFoundError(
        f"No fMRIPrep outputs found: {default} does not exist and {bids} is not an fMRIPrep "
        "derivatives folder. Run fMRIPrep first, or pass --fmriprep-dir DIR."
    )


def list_participants(
    bids_dir: str | Path, fmriprep_dir: Path, participant_labels: Sequence[str] | None = None
) -> list[str]:
    """Participant labels to process (without ``sub-``), sorted.

    Without ``participant_labels``: every ``sub-*`` folder of the fMRIPrep
    output. With them: those labels, each of which must have an fMRIPrep folder.

    Raises
    ------
    InputFileNotFoundError
        If there is no participant, or a requested one has no fMRIPrep folder.
    """
    available = sorted(p.name[4:] for p in fmriprep_dir.glob("sub-*") if p.is_dir())
    if participant_labels is None:
        if not available:
            raise InputFileNotFoundError(
                f"No sub-* folder in the fMRIPrep outputs {fmriprep_dir}. Check --fmriprep-dir."
            )
        return available
    missing = [label for label in participant_labels if label not in available]
    if missing:
        shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
        raise InputFileNotFoundError(
            f"No fMRIPrep outputs for participant(s) {', '.join(missing)} in {fmriprep_dir} "
            f"(found: {shown or 'none'}). Check --participant-label (labels without 'sub-', "
            "e.g. 01) and --fmriprep-dir."
        )
    return sorted(participant_labels)


def _describe_found(func_dirs: Sequence[Path]) -> str:
    """Tasks and spaces of every fMRIPrep BOLD (volume or surface) in the folders."""
    suffixes = (_BOLD_SUFFIX, _GIFTI_SUFFIX, _CIFTI_SUFFIX)
    tasks, spaces = set(), set()
    for path in (p for folder in func_dirs for suffix in suffixes for p in folder.glob("*" + suffix)):
        try:
            entities, _, _ = parse_bids_name(path.name)
        except ValueError:
            continue
        tasks.add(entities.get("task", "?"))
        spaces.add(entities.get("space", "?"))
    if not tasks:
        return ("no fMRIPrep BOLD at all (*_desc-preproc_bold.nii.gz, *_bold.func.gii or "
                "*_bold.dtseries.nii)")
    return f"tasks: {', '.join(sorted(tasks))}; spaces: {', '.join(sorted(spaces))}"


def _run_key(entities: dict[str, str]) -> tuple[str, str]:
    run = entities.get("run", "")
    return (entities.get("acq", ""), run.zfill(6) if run.isdigit() else run)


def _run_inputs(subject: str, space: str, candidates: list[tuple[dict[str, str], Path]]
                ) -> RunInputs:
    """The files of one run: its BOLD (one resolution), confounds and, for volumes, mask."""
    if len(candidates) > 1:
        found = ", ".join(p.name for _, p in candidates)
        raise InvalidParameterError(
            f"sub-{subject}: several BOLD files for one run ({found}), e.g. at several "
            "resolutions. Choose one with --res (e.g. --res 2)."
        )
    entities, bold = candidates[0]
    stem = bold.name[: -len(bold_suffix(space))]
    functional = stem.split("_hemi-")[0].split("_space-")[0]
    confounds = bold.with_name(f"{functional}_desc-confounds_timeseries.tsv")
    if not confounds.is_file():
        raise InputFileNotFoundError(
            f"sub-{subject}: {bold.name} has no confounds table ({confounds.name} is "
            f"missing in {bold.parent}). fMRIPrep writes one per run; re-run fMRIPrep "
            "or restore the file."
        )
    mask = bold.with_name(f"{stem}_desc-brain_mask.nii.gz")
    return RunInputs(run=entities.get("run"), acq=entities.get("acq"), bold=bold,
                     confounds=confounds,
                     mask=mask if mask.is_file() and not is_surface_space(space) else None)


def collect_sessions(
    fmriprep_dir: Path,
    subject: str,
    *,
    task: str = "rest",
    space: str = "MNI152NLin2009cAsym",
    res: str | None = None,
    sessions: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
) -> list[SessionInputs]:
    """The runs of ``task`` in ``space`` of one participant, grouped by session.

    Parameters
    ----------
    fmriprep_dir : Path
        fMRIPrep output folder.
    subject : str
        Participant label without ``sub-``.
    task, space : str
        BIDS ``task-`` and ``space-`` labels to use.
    res : str, optional
        ``res-`` label; needed only when the BOLD exists at several resolutions.
    sessions : sequence of str, optional
        Session labels to keep (default all).
    runs : sequence of str, optional
        Run labels to keep (default all).

    Returns
    -------
    list of SessionInputs
        One per session with at least one matching run (one with
        ``session=None`` for a dataset without sessions), in session order.

    Raises
    ------
    InputFileNotFoundError
        If the participant has no matching BOLD, or a BOLD has no confounds.
    InvalidParameterError
        If a run exists at several resolutions and ``res`` is not given.
    """
    sub_dir = fmriprep_dir / f"sub-{subject}"
    func_dirs = sorted(sub_dir.glob("ses-*/func")) + ([sub_dir / "func"]
                                                      if (sub_dir / "func").is_dir() else [])
    grouped: dict[str | None, dict[tuple[str, str], list[tuple[dict[str, str], Path]]]] = {}
    for folder in func_dirs:
        for path in sorted(folder.glob(f"sub-{subject}_*" + bold_suffix(space))):
            try:
                entities, _, _ = parse_bids_name(path.name)
            except ValueError:
                continue
            if entities.get("task") != task or entities.get("space") != space:
                continue
            if entities.get("hemi", "L") != "L":  # a surface pair is found by its left file
                continue
            if res is not None and entities.get("res") != res:
                continue
            session = entities.get("ses")
            if sessions is not None and session not in sessions:
                continue
            if runs is not None and entities.get("run") not in runs:
                continue
            grouped.setdefault(session, {}).setdefault(_run_key(entities), []).append(
                (entities, path))
    if not grouped:
        wanted = f"task-{task}, space-{space}" + (f", res-{res}" if res else "")
        if sessions is not None:
            wanted += f", session(s) {', '.join(sessions)}"
        if runs is not None:
            wanted += f", run(s) {', '.join(runs)}"
        raise InputFileNotFoundError(
            f"sub-{subject}: no fMRIPrep BOLD ({wanted}) under {sub_dir} "
            f"({_describe_found(func_dirs)}). Check --task, --space, --session-label and --runs."
        )
    out: list[SessionInputs] = []
    for session in sorted(grouped, key=lambda s: (s is not None, s or "")):
        run_inputs = [_run_inputs(subject, space, grouped[session][key])
                      for key in sorted(grouped[session])]
        out.append(SessionInputs(subject=subject, session=session, task=task, space=space,
                                 runs=tuple(run_inputs)))
    return out


def read_participants_table(bids_dir: str | Path) -> pd.DataFrame | None:
    """``participants.tsv`` of the raw dataset, or None if it has none."""
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        return None
    return pd.read_csv(path, sep="\t", dtype=str, na_values="n/a")
