"""Files for the treatment room: Brainsight, Localite, NIBS-BIDS markers.

Every exporter takes :class:`NavigationTarget` objects: a name, the coil
position (the scalp point, mm), the coil axes in tmsnet/SimNIBS convention
(columns x, y, z; z into the head; for figure-8 coils the induced field
under the centre runs along y) and the cortical target.

* Brainsight "Targets" text export (tab separated, ``NIfTI:Aligned`` or
  another coordinate-system line you give). Brainsight's coil axes differ
  from SimNIBS' by flipping x and z (its z points out of the head); the
  columns ``m0n*``, ``m1n*``, ``m2n*`` are its x, y and z axes.
* Localite TMS Navigator ``InstrumentMarkerList`` XML (``coordinateSpace``
  RAS): a 4x4 ``Matrix4D`` per marker whose axes are Localite's (x = the
  coil normal into the head, y = -y, z = x of the SimNIBS frame).
* NIBS-BIDS (BEP037) ``*_markers.tsv`` + ``*_coordsystem.json``: one row per
  target with the target, the entry (scalp) point and the coil axes.

The axis conventions of the two vendors follow SimNIBS' ``utils/nnav.py``
(read, not copied). Import the files into the navigator and check the coil
orientation visually before the session: tmsnet cannot test a vendor's
import.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.atomic import atomic_write_json, atomic_write_text, atomic_write_tsv

__all__ = [
    "BRAINSIGHT_FROM_TMSNET",
    "LOCALITE_FROM_TMSNET",
    "NavigationTarget",
    "brainsight_text",
    "localite_xml",
    "nibs_bids_coordsystem",
    "nibs_bids_markers",
    "read_brainsight_text",
    "read_localite_xml",
    "write_navigation_files",
]

#: Right-multiply a tmsnet/SimNIBS coil matrix to get Brainsight's axes (its own inverse).
BRAINSIGHT_FROM_TMSNET = np.diag([-1.0, 1.0, -1.0, 1.0])
#: Right-multiply a tmsnet/SimNIBS coil matrix to get Localite's axes (its own inverse).
LOCALITE_FROM_TMSNET = np.array([
    [0.0, 0.0, 1.0, 0.0],
    [0.0, -1.0, 0.0, 0.0],
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])


@dataclass
class NavigationTarget:
    """A coil placement to export.

    Attributes
    ----------
    name : str
        Marker name (letters, digits, ``-`` and ``_``).
    scalp_point_mm : numpy.ndarray, shape (3,)
        Coil centre on the scalp (mm).
    rotation : numpy.ndarray, shape (3, 3)
        Coil axes as columns (x, y, z; z into the head), tmsnet convention.
    target_mm : numpy.ndarray, shape (3,)
        Cortical target (mm).
    space : str
        Coordinate space of all points (e.g. ``T1w``).
    """

    name: str
    scalp_point_mm: np.ndarray
    rotation: np.ndarray
    target_mm: np.ndarray
    space: str

    def matrix(self) -> np.ndarray:
        """4x4 coil matrix (tmsnet/SimNIBS convention), position = scalp point."""
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.rotation, dtype=np.float64)
        m[:3, 3] = np.asarray(self.scalp_point_mm, dtype=np.float64)
        return m


def _check(targets: list[NavigationTarget]) -> None:
    if not targets:
        raise InvalidParameterError("No targets to export.")
    for t in targets:
        r = np.asarray(t.rotation, dtype=np.float64)
        if r.shape != (3, 3) or not np.allclose(r.T @ r, np.eye(3), atol=1e-6):
            raise InvalidParameterError(f"Target {t.name!r}: the coil axes must form a rotation matrix.")
        if any(c in t.name for c in "\t\n\"<>&"):
            raise InvalidParameterError(f"Target name {t.name!r} holds tabs, newlines or XML characters.")


def brainsight_text(targets: list[NavigationTarget], *, coordinate_system: str = "NIfTI:Aligned",
                    created_by: str = "tmsnet") -> str:
    """Brainsight target export text (tab separated).

    Parameters
    ----------
    targets : list of NavigationTarget
        Placements (position = scalp point).
    coordinate_system : str
        The ``# Coordinate system:`` line (``NIfTI:Aligned`` for a NIfTI
        project whose sform/qform is the T1w's).
    created_by : str
        The ``# Created by:`` line.

    Returns
    -------
    str
    """
    _check(targets)
    lines = [
        "# Version: 12",
        f"# Coordinate system: {coordinate_system}",
        f"# Created by: {created_by}",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon.",
        "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1\tm1n2\tm2n0\tm2n1\tm2n2",
    ]
    for t in targets:
        m = t.matrix() @ BRAINSIGHT_FROM_TMSNET
        location = (f"{v:.4f}" for v in m[:3, 3])  # 0.1 µm
        axes = (f"{v:.8f}" for v in (*m[:3, 0], *m[:3, 1], *m[:3, 2]))  # the axes within 1e-8
        lines.append("\t".join([t.name, *location, *axes]))
    return "\n".join(lines) + "\n"


def read_brainsight_text(text: str) -> dict[str, np.ndarray]:
    """Parse a Brainsight target export back into tmsnet coil matrices.

    Parameters
    ----------
    text : str
        File content.

    Returns
    -------
    dict
        Target name -> 4x4 matrix (tmsnet convention).
    """
    out: dict[str, np.ndarray] = {}
    columns: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# Target Name"):
            columns = line[2:].split("\t")
            continue
        if line.startswith("#") or not line.strip():
            if columns is not None and line.startswith("#"):
                columns = None
            continue
        if columns is None:
            continue
        row = dict(zip(columns, line.split("\t"), strict=True))
        m = np.eye(4)
        for axis in range(3):
            m[:3, axis] = [float(row[f"m{axis}n{k}"]) for k in range(3)]
        m[:3, 3] = [float(row[f"Loc. {c}"]) for c in "XYZ"]
        out[row["Target Name"]] = m @ BRAINSIGHT_FROM_TMSNET
    return out


def localite_xml(targets: list[NavigationTarget], *, coordinate_space: str = "RAS") -> str:
    """Localite TMS Navigator InstrumentMarkerList XML.

    Parameters
    ----------
    targets : list of NavigationTarget
        Placements.
    coordinate_space : {"RAS", "LPS"}
        ``coordinateSpace`` attribute (RAS for NIfTI-based sessions).

    Returns
    -------
    str
    """
    _check(targets)
    space = coordinate_space.upper()
    if space not in ("RAS", "LPS"):
        raise InvalidParameterError("coordinate_space must be 'RAS' or 'LPS'.")
    flip = np.diag([-1.0, -1.0, 1.0, 1.0]) if space == "LPS" else np.eye(4)
    root = ET.Element("InstrumentMarkerList", coordinateSpace=space)
    root.append(ET.Comment("This InstrumentMarkerList was written by tmsnet (decision support; check "
                           "the coil orientation in the navigator)"))
    for idx, t in enumerate(targets):
        m = flip @ t.matrix() @ LOCALITE_FROM_TMSNET
        im = ET.SubElement(root, "InstrumentMarker", alwaysVisible="false", index=str(idx), selected="false")
        marker = ET.SubElement(im, "Marker", additionalInformation="", color="#ff0000",
                               description=t.name, set="true")
        ET.SubElement(marker, "Matrix4D",
                      {f"data{i}{j}": f"{m[i, j]:+.17f}" for i in range(4) for j in range(4)})
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def read_localite_xml(text: str) -> dict[str, np.ndarray]:
    """Parse an InstrumentMarkerList back into tmsnet coil matrices (RAS).

    Parameters
    ----------
    text : str
        XML content.

    Returns
    -------
    dict
        Marker description -> 4x4 matrix (tmsnet convention, RAS).
    """
    root = ET.fromstring(text)
    lps = root.get("coordinateSpace", "RAS").upper() == "LPS"
    flip = np.diag([-1.0, -1.0, 1.0, 1.0]) if lps else np.eye(4)
    out = {}
    for im in root.iter("InstrumentMarker"):
        marker = im.find("Marker")
        mat = marker.find("Matrix4D")
        m = np.array([[float(mat.get(f"data{i}{j}")) for j in range(4)] for i in range(4)])
        out[marker.get("description")] = flip @ m @ LOCALITE_FROM_TMSNET
    return out


def nibs_bids_markers(targets: list[NavigationTarget]) -> pd.DataFrame:
    """NIBS-BIDS (BEP037) style ``*_markers.tsv`` table: target, entry point and coil axes (mm)."""
    _check(targets)
    rows = []
    for t in targets:
        r = np.asarray(t.rotation, dtype=np.float64)
        row: dict[str, Any] = {"marker_name": t.name}
        row.update({f"target_{c}": round(float(v), 2) for c, v in zip("xyz", t.target_mm, strict=True)})
        row.update({f"entry_{c}": round(float(v), 2) for c, v in zip("xyz", t.scalp_point_mm, strict=True)})
        for axis, label in enumerate(("coil_x", "coil_y", "coil_z")):
            row.update({f"{label}_{c}": round(float(v), 6) for c, v in zip("xyz", r[:, axis], strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def nibs_bids_coordsystem(space: str, *, description: str | None = None) -> dict[str, Any]:
    """NIBS-BIDS ``*_coordsystem.json`` content for a space."""
    return {
        "NIBSCoordinateSystem": space,
        "NIBSCoordinateUnits": "mm",
        "NIBSCoordinateSystemDescription": description or (
            f"RAS coordinates in {space}. entry_* is the coil centre on the scalp, target_* the cortical "
            "target; coil_x/y/z are the coil axes (z into the head; for a figure-8 coil the induced field "
            "under the centre runs along coil_y)."
        ),
    }


def write_navigation_files(targets: list[NavigationTarget], out_dir: str | Path, prefix: str, *,
                           sidecar: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write Brainsight, Localite and NIBS-BIDS files (atomically) under ``out_dir``.

    Parameters
    ----------
    targets : list of NavigationTarget
        All in the same space.
    out_dir : str or Path
        Existing folder.
    prefix : str
        BIDS prefix, e.g. ``sub-01_space-T1w``.
    sidecar : dict, optional
        Provenance sidecar written beside each file (``*.json``).

    Returns
    -------
    dict
        Paths by role: ``brainsight``, ``localite``, ``markers``, ``coordsystem``.
    """
    from tmsnet.io.provenance import sidecar_path_for

    _check(targets)
    spaces = {t.space for t in targets}
    if len(spaces) != 1:
        raise InvalidParameterError(f"All exported targets must share one space, got {sorted(spaces)}.")
    space = spaces.pop()
    out = Path(out_dir)
    files = {
        "brainsight": out / f"{prefix}_desc-brainsight_targets.txt",
        "localite": out / f"{prefix}_desc-localite_InstrumentMarker.xml",
        "markers": out / f"{prefix}_markers.tsv",
        "coordsystem": out / f"{prefix}_coordsystem.json",
    }
    atomic_write_text(files["brainsight"], brainsight_text(targets))
    atomic_write_text(files["localite"], localite_xml(targets))
    atomic_write_tsv(files["markers"], nibs_bids_markers(targets))
    atomic_write_json(files["coordsystem"], nibs_bids_coordsystem(space))
    if sidecar is not None:
        for role in ("brainsight", "localite", "markers"):
            atomic_write_json(sidecar_path_for(files[role]), sidecar)
    return files
