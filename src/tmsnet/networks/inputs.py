"""Reading the inputs of the network jobs: matrices, connectome folders, participants tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError

__all__ = [
    "find_connectome",
    "load_matrix",
    "networks_for_labels",
    "read_confounds_table",
    "read_participants",
]


def load_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """A square matrix from a ``.tsv``, ``.npy`` or ``.mat``.

    Parameters
    ----------
    path : path
        The file.
    key : str, optional
        Variable of a ``.mat`` file (needed when it holds several).

    Returns
    -------
    ndarray of float, shape (n, n)

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    InvalidParameterError
        A ``.mat`` without ``key``, or a matrix that is not square and symmetric.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"Matrix file {path} does not exist.")
    if path.suffix == ".mat":
        from scipy.io import loadmat

        content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        if key is None and len(content) == 1:
            key = next(iter(content))
        if key not in content:
            raise InvalidParameterError(f"{path.name} holds {sorted(content)}; choose one with --mat-key.")
        return np.asarray(content[key], dtype=float)
    from tmsnet.networks.connectomes import read_connectome

    return read_connectome(path)[0]


def read_confounds_table(path: str | Path | None) -> pd.DataFrame | None:
    """A confounds TSV (``n/a`` as NaN), or None for None."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputFileNotFoundError(f"Confounds file {path} does not exist.")
    return pd.read_csv(path, sep="\t", na_values=["n/a"])


def find_connectome(folder: Path, sub: str, ses: str | None, kind: str) -> Path:
    """The one ``*_relmat.tsv`` of a participant (and session) and measure under ``folder``.

    Raises
    ------
    InputFileNotFoundError
        None or several match.
    """
    sub = sub if sub.startswith("sub-") else f"sub-{sub}"
    pattern = f"{sub}_{'ses-' + ses + '_' if ses else ''}*meas-{kind.replace(' ', '')}*_relmat.tsv"
    hits = sorted(p for p in Path(folder).rglob(pattern) if ses is not None or "_ses-" not in p.name)
    if len(hits) != 1:
        raise InputFileNotFoundError(
            f"Expected one connectome {pattern} under {folder}, found {len(hits)}"
            f"{': ' + ', '.join(p.name for p in hits[:3]) if hits else ''}. Run `tmsnet connectome` for "
            "every participant/session, or pass --kind."
        )
    return hits[0]


def networks_for_labels(labels: list[str], folder: Path, networks_tsv: Path | None) -> np.ndarray:
    """Network of each region: from ``networks_tsv``, ``folder/networks.tsv`` or the Schaefer-100 names.

    Raises
    ------
    InvalidParameterError
        The table lacks regions, or there is no table and the regions are not Schaefer-100's.
    """
    from tmsnet.networks.atlases import load_schaefer100

    table_path = networks_tsv or (Path(folder) / "networks.tsv")
    if table_path.is_file():
        table = pd.read_csv(table_path, sep="\t")
        mapping = dict(zip(table["name"].astype(str), table["network"].astype(str), strict=True))
        missing = [lab for lab in labels if lab not in mapping]
        if missing:
            raise InvalidParameterError(f"{table_path.name} lacks regions {missing[:5]}.")
        return np.array([mapping[lab] for lab in labels])
    atlas = load_schaefer100()
    if labels == atlas.labels:
        return atlas.networks
    raise InvalidParameterError(
        "Cannot tell the network of each region: give --networks TSV (columns name, network)."
    )


def read_participants(path: str | Path) -> pd.DataFrame:
    """A BIDS ``participants.tsv`` (``n/a`` as NaN) with its ``participant_id`` column checked."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"participants file {path} does not exist.")
    participants = pd.read_csv(path, sep="\t", na_values=["n/a"])
    if "participant_id" not in participants.columns:
        raise InvalidParameterError("participants.tsv needs a participant_id column (BIDS).")
    return participants
