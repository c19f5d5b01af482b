"""Reading TMS-EEG recordings and finding the TMS pulses.

* :func:`read_eeg` reads any raw format MNE reads (BrainVision ``.vhdr``,
  EDF/BDF, EEGLAB ``.set``, FIF...) through :func:`mne.io.read_raw`, and BIDS-EEG
  through :func:`mne_bids.read_raw_bids` (give a file inside a BIDS tree or a
  :class:`mne_bids.BIDSPath`), then makes sure EEG channels have positions (from
  the file, else a standard 10-05 montage).
* :func:`find_pulses` returns MNE events of the pulses from an events file,
  annotations, a stimulus channel, or detection from the pulse artifact itself
  (:func:`detect_pulses`: slope or amplitude rule with a refractory period,
  after TESA ``tesa_findpulse``; Rogasch et al. 2017).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import EEGDataError, InputFileNotFoundError, InvalidParameterError
from tmsnet.utils.params import Parameters, param

__all__ = [
    "RecordingParameters",
    "detect_pulses",
    "ensure_positions",
    "find_pulses",
    "read_eeg",
    "read_events_file",
    "standard_montage",
]

_BIDS_NAME = re.compile(r"sub-[A-Za-z0-9]+.*_eeg\.(vhdr|edf|bdf|set|fif)$")


@dataclass(frozen=True)
class RecordingParameters(Parameters):
    """How a recording is read and where its pulses come from (``tmsnet tep``).

    The pulses come from the first source that has them
    (:func:`find_pulses`): an events file, annotations matching
    ``annotation``, the stimulus channel, or detection from the artifact.
    """

    montage: str = param("auto", help="'auto' (file positions, else standard 10-05), a built-in "
                                      "montage or a file")
    annotation: str = param("TMS", help="regular expression matching the annotation descriptions "
                                        "of the pulses")
    stim_channel: str | None = param(None, kind="str", help="stimulus channel with the pulse triggers")
    detect_pulses: bool = param(False, help="detect pulses from the artifact (slope rule) even if "
                                            "events exist")
    refractory_s: float = param(0.5, flag="--refractory", units="s", low=0, low_inclusive=False,
                                help="minimum interval between detected pulses", high=60)

    def pulse_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`find_pulses` (without the events file)."""
        return {"annotation": self.annotation, "stim_channel": self.stim_channel,
                "detect": True if self.detect_pulses else None, "refractory_s": self.refractory_s}


def standard_montage():
    """The standard 10-05 montage (``colin27_1005``, formerly ``standard_1005``).

    Returns
    -------
    mne.channels.DigMontage
        Positions in metres (MNE head coordinates).
    """
    import mne

    available = mne.channels.get_builtin_montages()
    name = "colin27_1005" if "colin27_1005" in available else "standard_1005"
    return mne.channels.make_standard_montage(name)


def read_eeg(path, *, bids: bool | None = None, montage: str | None = "auto"):
    """Read a raw EEG recording (preloaded) with channel positions.

    Parameters
    ----------
    path : str, Path or mne_bids.BIDSPath
        A file MNE reads, or a BIDS-EEG recording (``sub-*_eeg.*`` inside a
        BIDS folder, or a BIDSPath).
    bids : bool, optional
        Force (True) or forbid (False) the mne-bids reader; by default it is
        used for BIDSPath objects and BIDS-named files.
    montage : str or None
        ``"auto"``: keep the file's positions and use the standard 10-05
        montage for channels without one; a montage name or file: use it;
        None: leave positions as they are.

    Returns
    -------
    mne.io.BaseRaw
        Preloaded raw data.

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    EEGDataError
        If MNE cannot read it or it holds no EEG channel.
    """
    import mne

    try:
        from mne_bids import BIDSPath, get_bids_path_from_fname, read_raw_bids
    except ImportError:  # pragma: no cover - mne-bids is a dependency
        BIDSPath = None  # noqa: N806

    if BIDSPath is not None and isinstance(path, BIDSPath):
        use_bids = True
        bids_path = path
    else:
        p = Path(path)
        if not p.exists():
            raise InputFileNotFoundError(f"EEG recording {p} does not exist. Check the path.")
        use_bids = bool(_BIDS_NAME.search(p.name)) if bids is None else bids
        bids_path = None
        if use_bids:
            try:
                bids_path = get_bids_path_from_fname(p)
            except Exception as exc:  # noqa: BLE001 - any failure means "not BIDS"
                if bids:
                    raise EEGDataError(f"{p} is not a BIDS-EEG file name ({exc}).") from exc
                use_bids = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if use_bids:
                raw = read_raw_bids(bids_path, verbose=False)
                raw.load_data(verbose=False)
            else:
                raw = mne.io.read_raw(Path(path), preload=True, verbose=False)
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        raise EEGDataError(
            f"MNE cannot read {path} ({type(exc).__name__}: {exc}). Give a BrainVision (.vhdr), "
            "EDF/BDF, EEGLAB (.set), FIF or BIDS-EEG recording."
        ) from exc
    if not any(t == "eeg" for t in raw.get_channel_types()):
        raise EEGDataError(f"{path} holds no EEG channel; check the channel types in the file.")
    if montage is not None:
        ensure_positions(raw, montage=montage)
    return raw


def ensure_positions(raw, *, montage: str = "auto"):
    """Give EEG channels positions (in place).

    Parameters
    ----------
    raw : mne.io.BaseRaw or mne.Epochs
        Data whose EEG channels may lack positions.
    montage : str
        ``"auto"`` (standard 10-05 for channels without a position), or a
        montage name / file for :func:`mne.channels.read_custom_montage`.

    Returns
    -------
    list of str
        EEG channels that still have no position.
    """
    import mne

    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=[])]

    def missing() -> list[str]:
        out = []
        for name in eeg:
            loc = raw.info["chs"][raw.ch_names.index(name)]["loc"][:3]
            if not np.all(np.isfinite(loc)) or np.allclose(loc, 0):
                out.append(name)
        return out

    if montage == "auto":
        if not missing():
            return []
        mont = standard_montage()
    elif montage in mne.channels.get_builtin_montages():
        mont = mne.channels.make_standard_montage(montage)
    else:
        mpath = Path(montage)
        if not mpath.exists():
            raise InputFileNotFoundError(
                f"Montage {montage} is neither a built-in montage nor an existing file."
            )
        mont = mne.channels.read_custom_montage(mpath)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if montage == "auto" and len(missing()) < len(eeg):
            # keep the file's positions; place only the channels that lack one
            pos = mont.get_positions()["ch_pos"]
            lower = {k.lower(): k for k in pos}
            known = {n: pos[lower[n.lower()]] for n in missing() if n.lower() in lower}
            if known:
                # positions of the standard montage are in its head frame, like MNE's
                info_tmp = mne.create_info(list(known), 1000.0, "eeg")
                info_tmp.set_montage(mont, match_case=False, on_missing="ignore")
                for i, name in enumerate(known):
                    raw.info["chs"][raw.ch_names.index(name)]["loc"][:3] = info_tmp["chs"][i]["loc"][:3]
        else:
            raw.set_montage(mont, match_case=False, on_missing="ignore")
    still = missing()
    if len(still) == len(eeg):
        raise EEGDataError(
            "No EEG channel has a position and none matches a 10-05 name; give --montage with a "
            "montage file (e.g. .elc, .sfp, .bvef) for this cap."
        )
    return still


def read_events_file(path, *, sfreq: float, first_samp: int = 0) -> np.ndarray:
    """Pulse events from a BIDS ``events.tsv`` (``onset`` in s) or an MNE events file.

    Parameters
    ----------
    path : str or Path
        ``*.tsv`` with an ``onset`` column (seconds from the start of the
        recording), or a file :func:`mne.read_events` reads (``.eve``, ``.fif``,
        ``.txt``, ``.lst``).
    sfreq : float
        Sampling rate of the recording (Hz).
    first_samp : int
        ``raw.first_samp`` (added to TSV onsets; MNE event files include it).

    Returns
    -------
    ndarray, shape (n_events, 3)
        MNE events (sample, 0, 1).
    """
    import mne

    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"Events file {p} does not exist. Check the path.")
    if p.suffix.lower() == ".tsv":
        import pandas as pd

        table = pd.read_csv(p, sep="\t", na_values=["n/a"])
        if "onset" not in table.columns:
            raise EEGDataError(f"{p} has no 'onset' column (BIDS events.tsv, seconds).")
        if "trial_type" in table.columns:
            tms = table["trial_type"].astype(str).str.contains("tms|pulse|stim", case=False)
            if tms.any():
                table = table[tms]
        samples = np.round(table["onset"].to_numpy(float) * sfreq).astype(int) + first_samp
        return np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])
    try:
        events = mne.read_events(p, verbose=False)
    except (ValueError, OSError) as exc:
        raise EEGDataError(f"Cannot read events from {p} ({exc}); give a BIDS events.tsv or an "
                           "MNE events file.") from exc
    return np.asarray(events, dtype=int)


def detect_pulses(
    raw,
    *,
    rule: str = "slope",
    threshold: float | None = None,
    refractory_s: float = 0.5,
    robust_k: float = 30.0,
) -> np.ndarray:
    """Find TMS pulses from the artifact itself.

    The detection signal is the channel mean of the absolute first difference
    (``rule="slope"``, V/s) or of the absolute deviation from each channel's
    median (``rule="amplitude"``, V). A pulse starts where the signal first
    crosses ``threshold``; crossings within ``refractory_s`` after a pulse
    belong to it (TESA ``tesa_findpulse``).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded recording.
    rule : {"slope", "amplitude"}
        Detection signal.
    threshold : float, optional
        In V/s (slope) or V (amplitude); default: median + ``robust_k`` x
        1.4826 x MAD of the detection signal.
    refractory_s : float
        Minimum interval between pulses (s).
    robust_k : float
        Multiplier of the robust SD in the automatic threshold.

    Returns
    -------
    ndarray, shape (n_pulses, 3)
        MNE events (sample including ``raw.first_samp``, 0, 1).

    Raises
    ------
    EEGDataError
        If no pulse is found.
    """
    import mne

    if rule not in ("slope", "amplitude"):
        raise InvalidParameterError(f"rule must be 'slope' or 'amplitude', got {rule!r}.")
    if refractory_s <= 0:
        raise InvalidParameterError("refractory_s must be > 0 s.")
    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    data = raw.get_data(picks=picks)
    sfreq = raw.info["sfreq"]
    if rule == "slope":
        sig = np.abs(np.diff(data, axis=1)).mean(axis=0) * sfreq
        sig = np.concatenate([sig[:1], sig])  # the jump x[i] - x[i-1] belongs to sample i
    else:
        sig = np.abs(data - np.median(data, axis=1, keepdims=True)).mean(axis=0)
    if threshold is None:
        med = float(np.median(sig))
        mad = float(np.median(np.abs(sig - med))) * 1.4826
        threshold = med + robust_k * max(mad, 1e-15)
    above = np.flatnonzero(sig > threshold)
    onsets: list[int] = []
    refractory = int(round(refractory_s * sfreq))
    for idx in above:
        if not onsets or idx - onsets[-1] > refractory:
            onsets.append(int(idx))
    if not onsets:
        raise EEGDataError(
            "No TMS pulse found in the data; give the pulses with --events, or lower the detection "
            "threshold."
        )
    samples = np.asarray(onsets, dtype=int) + raw.first_samp
    return np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])


def find_pulses(
    raw,
    *,
    events_file=None,
    annotation: str | None = "TMS",
    stim_channel: str | None = None,
    detect: bool | None = None,
    **detect_kwargs,
) -> tuple[np.ndarray, str]:
    """TMS pulse events from the first source that has them.

    Order: ``events_file``; annotations whose description matches
    ``annotation`` (regular expression, case-insensitive); a stimulus channel
    (``stim_channel`` or MNE's default); detection from the artifact. With
    ``detect=True`` detection is used directly, with ``detect=False`` never.

    Returns
    -------
    events : ndarray, shape (n_pulses, 3)
    source : str
        Where the pulses came from (recorded in the sidecars).
    """
    import mne

    if detect:
        return detect_pulses(raw, **detect_kwargs), "detected"
    if events_file is not None:
        events = read_events_file(events_file, sfreq=raw.info["sfreq"], first_samp=raw.first_samp)
        if len(events) == 0:
            raise EEGDataError(f"The events file {events_file} lists no pulse.")
        return events, f"events file {Path(events_file).name}"
    if annotation and len(raw.annotations):
        pattern = re.compile(annotation, re.IGNORECASE)
        keep = [i for i, d in enumerate(raw.annotations.description) if pattern.search(d)]
        if keep:
            onsets = raw.annotations.onset[keep]
            samples = raw.time_as_index(onsets, use_rounding=True) + raw.first_samp
            ev = np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])
            return ev.astype(int), f"annotations matching {annotation!r}"
    stim = mne.pick_types(raw.info, stim=True, eeg=False)
    if stim_channel is not None or len(stim):
        try:
            events = mne.find_events(raw, stim_channel=stim_channel, verbose=False)
        except ValueError as exc:
            raise EEGDataError(f"Cannot read events from the stimulus channel ({exc}).") from exc
        if len(events):
            events[:, 2] = 1
            return events, f"stimulus channel {stim_channel or raw.ch_names[stim[0]]}"
    if detect is False:
        raise EEGDataError(
            "The recording has no TMS events (no matching annotation, no stimulus channel); give "
            "--events FILE or allow detection from the pulse artifact (--detect-pulses)."
        )
    return detect_pulses(raw, **detect_kwargs), "detected"
