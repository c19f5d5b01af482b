"""A raw BIDS dataset with fMRIPrep derivatives, generated with planted targets.

:func:`simulate_bids_dataset` writes what a BIDS-App receives::

    bids_dir/dataset_description.json, README, participants.tsv (+ .json)
    bids_dir/sub-01/[ses-1/]func/sub-01_[ses-1_]task-rest_[run-1_]bold.nii.gz (+ .json)   raw stubs
    bids_dir/derivatives/fmriprep/                       fMRIPrep-like outputs (the real data)
        dataset_description.json, ground_truth.json
        sub-01/[ses-1/]func/sub-01_[ses-1_]task-rest_[run-1_]space-<space>_res-2_desc-preproc_bold.nii.gz
        sub-01/[ses-1/]func/..._desc-brain_mask.nii.gz, ..._desc-confounds_timeseries.tsv (+ .json)

The fMRIPrep-like scans come from :func:`tmsnet.simulate.simulate_fmriprep_dataset`
(one long scan per subject). Sessions and runs are consecutive segments of
that scan, so every run of a subject carries the *same* planted target (the
target of subject ``i`` depends only on ``(seed, i)``) and runs can be cleaned
separately and concatenated, as a lab would do with several short runs.
Per-run confounds are the matching rows, with ``n/a`` in the first row of
derivative columns (as fMRIPrep writes each run) and the cosine regressors
recomputed for the run length.

The raw ``*_bold.nii.gz`` files are stubs: 2 x 2 x 2 voxels with the run's
number of frames and repetition time, enough for BIDS file discovery and the
BIDS validator's file-name rules; analyses read the fMRIPrep derivatives.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.atomic import (
    atomic_write_json,
    atomic_write_nifti,
    atomic_write_tsv,
    atomic_write_with,
    ensure_output_dir,
)
from tmsnet.io.bids import bids_name, derivatives_description, write_dataset_description
from tmsnet.simulate.fmri import (
    MIN_FRAMES,
    SimulationParameters,
    cosine_basis,
    simulate_fmriprep_dataset,
)

__all__ = ["SimulatedRun", "simulate_bids_dataset"]

#: Confound columns whose first value of every run is undefined (fMRIPrep writes ``n/a``).
_DERIVATIVE_PREFIXES = ("framewise_displacement", "dvars", "std_dvars", "rmsd")


@dataclass(frozen=True)
class SimulatedRun:
    """One run written by :func:`simulate_bids_dataset`.

    Attributes
    ----------
    subject : str
        Label without ``sub-``.
    session : str or None
        Label without ``ses-`` (None when the dataset has no session level).
    run : int or None
        Run index (None when subjects have one run).
    bold_path, mask_path, confounds_path : Path
        The fMRIPrep-like files of the run.
    target_mm : tuple of float
        The subject's planted target (mm, template space); the same in every run.
    """

    subject: str
    session: str | None
    run: int | None
    bold_path: Path
    mask_path: Path
    confounds_path: Path
    target_mm: tuple[float, float, float]


def _stem(subject: str, session: str | None, task: str, run: int | None) -> str:
    entities = {"sub": subject, "ses": session, "task": task, "run": None if run is None else str(run)}
    return bids_name({k: v for k, v in entities.items() if v is not None})


def _segment_confounds(table: pd.DataFrame, start: int, stop: int, t_r: float) -> pd.DataFrame:
    """Rows ``start:stop`` of a confounds table, made to look like a separate run."""
    seg = table.iloc[start:stop].reset_index(drop=True).copy()
    derivative = [c for c in seg.columns
                  if c.startswith(_DERIVATIVE_PREFIXES) or c.endswith("_derivative1")
                  or c.endswith("_derivative1_power2")]
    seg.loc[0, derivative] = np.nan
    cosine = [c for c in seg.columns if c.startswith("cosine")]
    seg = seg.drop(columns=cosine)
    basis = cosine_basis(stop - start, t_r)
    for k in range(basis.shape[1]):
        seg[f"cosine{k:02d}"] = basis[:, k]
    return seg


def _write_stub_bold(path: Path, n_frames: int, t_r: float) -> None:
    img = nib.Nifti1Image(np.zeros((2, 2, 2, n_frames), dtype=np.uint8), np.diag([2.0, 2, 2, 1]))
    img.header.set_zooms((2.0, 2.0, 2.0, float(t_r)))
    img.header.set_xyzt_units("mm", "sec")
    atomic_write_nifti(path, img)


def _split_subject(subject, root: Path, fmriprep: Path, params: SimulationParameters,
                   sessions: list[str | None], runs: list[int | None]) -> list[SimulatedRun]:
    """Cut one long simulated scan into the sessions and runs of one subject (files written)."""
    task, space, t_r = params.task, params.space, params.t_r
    written: list[SimulatedRun] = []
    bold = nib.load(subject.bold_path)
    raw = np.asanyarray(bold.dataobj.get_unscaled())
    slope = float(bold.dataobj.slope)
    table = pd.read_csv(subject.confounds_path, sep="\t", na_values="n/a")
    conf_sidecar = json.loads(subject.confounds_path.with_suffix(".json").read_text())
    bold_sidecar = json.loads(
        subject.bold_path.with_name(subject.bold_path.name.replace(".nii.gz", ".json"))
        .read_text())
    segment = 0
    for session in sessions:
        sub_dir = Path(f"sub-{subject.subject}") / (f"ses-{session}" if session else "")
        func = fmriprep / sub_dir / "func"
        raw_func = root / sub_dir / "func"
        func.mkdir(parents=True, exist_ok=True)
        raw_func.mkdir(parents=True, exist_ok=True)
        for run in runs:
            start, stop = segment * params.n_frames, (segment + 1) * params.n_frames
            segment += 1
            stem = _stem(subject.subject, session, task, run)
            bold_path = func / f"{stem}_space-{space}_res-2_desc-preproc_bold.nii.gz"
            mask_path = func / f"{stem}_space-{space}_res-2_desc-brain_mask.nii.gz"
            conf_path = func / f"{stem}_desc-confounds_timeseries.tsv"
            header = bold.header.copy()
            img = nib.Nifti1Image(raw[..., start:stop], bold.affine, header)
            img.header.set_slope_inter(slope, 0.0)
            atomic_write_with(bold_path, img.to_filename, suffix=".tmp.nii.gz")
            atomic_write_json(bold_path.with_name(bold_path.name.replace(".nii.gz", ".json")),
                              bold_sidecar)
            shutil.copyfile(subject.mask_path, mask_path)
            atomic_write_tsv(conf_path, _segment_confounds(table, start, stop, t_r))
            atomic_write_json(conf_path.with_suffix(".json"), conf_sidecar)
            raw_bold = raw_func / f"{stem}_bold.nii.gz"
            _write_stub_bold(raw_bold, params.n_frames, t_r)
            atomic_write_json(raw_bold.with_name(f"{stem}_bold.json"),
                              {"TaskName": task, "RepetitionTime": float(t_r)})
            written.append(SimulatedRun(
                subject=subject.subject, session=session, run=run, bold_path=bold_path,
                mask_path=mask_path, confounds_path=conf_path, target_mm=subject.target_mm,
            ))
    del bold, raw
    return written


def _write_raw_root(root: Path, subjects) -> None:
    """The raw dataset's top-level files: description, README, participants."""
    write_dataset_description(root, derivatives_description(
        "tmsnet simulated cohort (raw stubs + fMRIPrep-like derivatives)",
        generated_by="tmsnet.simulate", dataset_type="raw", authors=["tmsnet.simulate"]),
        overwrite=True)
    atomic_write_with(root / "README", lambda p: p.write_text(
        "Simulated resting-state cohort written by tmsnet.simulate.bids. Raw BOLD files are "
        "2x2x2-voxel stubs; the analysable data are in derivatives/fmriprep.\n", encoding="utf-8"))
    participants = pd.DataFrame({"participant_id": [f"sub-{s.subject}" for s in subjects]})
    atomic_write_tsv(root / "participants.tsv", participants)
    atomic_write_json(root / "participants.json",
                      {"participant_id": {"Description": "Subject label (sub-<label>)."}})


def simulate_bids_dataset(
    bids_dir: str | os.PathLike,
    *,
    n_subjects: int = 2,
    seed: int = 0,
    params: SimulationParameters = SimulationParameters(),  # noqa: B008 - frozen dataclass
    n_sessions: int = 0,
    n_runs: int = 1,
    progress: bool = False,
) -> list[SimulatedRun]:
    """Write a raw BIDS folder with fMRIPrep-like derivatives of simulated scans.

    Parameters
    ----------
    bids_dir : path
        Folder to create (raw dataset root); fMRIPrep outputs go to
        ``bids_dir/derivatives/fmriprep``.
    n_subjects : int
        Number of subjects (labels ``01``, ``02``...).
    seed : int
        Dataset seed; subject ``i`` is the same as subject ``i`` of
        :func:`~tmsnet.simulate.simulate_fmriprep_dataset` with this seed.
    params : SimulationParameters
        Settings of one *run*: ``params.n_frames`` frames per run.
    n_sessions : int
        0 for no session level, else the number of sessions (labels ``1``, ``2``...).
    n_runs : int
        Runs per session (>= 1); with 1 the file names carry no ``run-`` entity.
    progress : bool
        Show the simulator's progress bar.

    Returns
    -------
    list of SimulatedRun
        One per written run, in subject, session, run order.

    Raises
    ------
    InvalidParameterError
        If ``n_sessions`` or ``n_runs`` is out of range.
    """
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, int) or not 0 <= n_sessions <= 9:
        raise InvalidParameterError(f"n_sessions must be an integer in [0, 9], got {n_sessions!r}.")
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or not 1 <= n_runs <= 9:
        raise InvalidParameterError(f"n_runs must be an integer in [1, 9], got {n_runs!r}.")
    n_segments = max(n_sessions, 1) * n_runs
    if n_segments > 1 and params.n_frames < MIN_FRAMES:
        raise InvalidParameterError(
            f"params.n_frames is the length of one run and must be >= {MIN_FRAMES}, "
            f"got {params.n_frames}."
        )
    root = ensure_output_dir(bids_dir)
    fmriprep = root / "derivatives" / "fmriprep"
    scratch = root / "derivatives" / ".tmsnet-simulation"
    if scratch.exists():
        shutil.rmtree(scratch)
    long_params = replace(params, n_frames=params.n_frames * n_segments)
    subjects = simulate_fmriprep_dataset(scratch, n_subjects=n_subjects, seed=seed,
                                         params=long_params, progress=progress)
    fmriprep.mkdir(parents=True, exist_ok=True)
    for name in ("dataset_description.json", "ground_truth.json"):
        os.replace(scratch / name, fmriprep / name)

    sessions: list[str | None] = [str(k + 1) for k in range(n_sessions)] or [None]
    runs: list[int | None] = list(range(1, n_runs + 1)) if n_runs > 1 else [None]
    written: list[SimulatedRun] = []
    for subject in subjects:
        written += _split_subject(subject, root, fmriprep, params, sessions, runs)
    shutil.rmtree(scratch)

    _write_raw_root(root, subjects)
    return written
