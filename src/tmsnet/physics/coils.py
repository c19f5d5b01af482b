"""TMS coils as sets of magnetic dipoles: read, generate, bundle.

Coil frame (the SimNIBS ``.ccd`` convention): origin at the centre of the
coil's bottom (the casing surface that touches the scalp), ``+z`` pointing
into the head, the windings at ``z < 0``. Positions are in metres, moments in
A·m² per ampere of coil current.

A flat winding of radius ``a`` carrying current ``I`` has the magnetic field
(outside the winding plane) of a uniform sheet of magnetic dipoles over the
disc it encloses, with moment density ``I`` per unit area. A spiral of
several turns is a stack of such discs, so the moment density at radius
``rho`` is ``I`` times the number of turns enclosing ``rho``.
:func:`round_coil` and :func:`figure8_coil` discretise that density (of a
:class:`Winding`) into annular sectors of at most ``element_mm`` on a side,
one dipole per sector at its area centroid. This is the construction behind the legacy SimNIBS coil
models (Thielscher & Kammer 2004, Clin Neurophysiol 115:1697) and Deng et al.
2013's sphere-model coils (``../shared/REFERENCES.md`` section 3).

Bundled generated models: ``tmsnet/data/coils/<name>.json`` holds each one's
winding geometry and its source (:func:`bundled_coil_parameters` reads it), and
:func:`write_bundled_coils` regenerates ``<name>.ccd`` from it; :func:`load_coil`
accepts their names or the path of any ``.ccd`` file.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import MISSING, dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.utils.params import param

__all__ = [
    "DEFAULT_COIL",
    "Coil",
    "Winding",
    "bundled_coil_names",
    "bundled_coil_parameters",
    "check_coil",
    "coil_from_parameters",
    "coil_param",
    "figure8_coil",
    "load_coil",
    "read_ccd",
    "round_coil",
    "write_bundled_coils",
    "write_ccd",
]

#: Typical maximum dI/dt (A/µs) assumed when a coil file does not state one
#: (order of magnitude of MagStim/MagVenture stimulators at 100 % MSO; *unverified*,
#: REFERENCES.md section 3: "coil-specific"). Always shown where it is used.
DEFAULT_DIDT_MAX_A_PER_US = 100.0
#: The coil of ``tmsnet efield`` and ``tmsnet plan`` when none is named.
DEFAULT_COIL = "fig8-70mm"


@dataclass
class Coil:
    """A coil model: magnetic dipoles in the coil frame.

    Attributes
    ----------
    name : str
        Short name.
    positions_m : numpy.ndarray, shape (m, 3)
        Dipole positions in metres (coil frame, +z into the head).
    moments : numpy.ndarray, shape (m, 3)
        Dipole moments in A·m² per ampere of coil current.
    didt_max_a_per_us : float or None
        Maximum dI/dt of the stimulator with this coil at 100 % output (A/µs),
        when known.
    parameters : dict
        How the model was made (winding geometry) or where it was read from.
    """

    name: str
    positions_m: np.ndarray
    moments: np.ndarray
    didt_max_a_per_us: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.positions_m = np.ascontiguousarray(self.positions_m, dtype=np.float64)
        self.moments = np.ascontiguousarray(self.moments, dtype=np.float64)
        if self.positions_m.ndim != 2 or self.positions_m.shape[1] != 3 or (
            self.positions_m.shape != self.moments.shape
        ):
            raise InvalidParameterError(
                f"Coil {self.name!r}: positions {self.positions_m.shape} and moments "
                f"{self.moments.shape} must both be (m, 3)."
            )
        if self.positions_m.shape[0] == 0:
            raise InvalidParameterError(f"Coil {self.name!r} has no dipoles.")

    @property
    def n_dipoles(self) -> int:
        """Number of dipoles."""
        return int(self.positions_m.shape[0])

    def summary(self) -> dict[str, Any]:
        """Name, dipole count, dI/dt max and parameters, JSON-ready."""
        return {
            "name": self.name,
            "n_dipoles": self.n_dipoles,
            "didt_max_a_per_us": self.didt_max_a_per_us,
            "parameters": self.parameters,
        }


_KEYVAL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^;]+);")


def read_ccd(path: str | Path, *, name: str | None = None) -> Coil:
    """Read a SimNIBS ``.ccd`` dipole file.

    Format: a ``#`` comment line (newer files hold ``key=value;`` metadata
    there, e.g. ``dIdtmax=147;`` in A/µs), the number of dipoles, a ``#``
    comment line, then one dipole per line ``x y z mx my mz`` (metres,
    A·m²/A).

    Parameters
    ----------
    path : str or Path
        The file.
    name : str, optional
        Coil name (default: the file stem).

    Returns
    -------
    Coil

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    InvalidParameterError
        If it is not a valid ``.ccd`` file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"Coil file {p} does not exist; give an existing .ccd file.")
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        header = lines[0]
        n = int(lines[1].split()[0])
        data = np.array([[float(v) for v in line.split()[:6]] for line in lines[3:3 + n]])
    except (IndexError, ValueError) as exc:
        raise InvalidParameterError(
            f"{p} is not a SimNIBS .ccd coil file (expected a comment line, the dipole count, a "
            "comment line, then 'x y z mx my mz' per line)."
        ) from exc
    if data.shape != (n, 6):
        raise InvalidParameterError(f"{p} announces {n} dipoles but holds {data.shape[0]} valid lines.")
    meta = {k: v.strip() for k, v in _KEYVAL.findall(header)}
    didt = None
    if "dIdtmax" in meta:
        try:
            didt = float(meta["dIdtmax"].strip("[]").split(",")[0])
        except ValueError:
            didt = None
    params: dict[str, Any] = {"source_file": str(p.resolve()), "header": header.lstrip("# ").strip()}
    params.update({k: v for k, v in meta.items() if k != "dIdtmax"})
    return Coil(name or p.stem, data[:, :3], data[:, 3:], didt, params)


def write_ccd(coil: Coil, path: str | Path) -> Path:
    """Write a coil in the SimNIBS ``.ccd`` text format (atomically).

    Parameters
    ----------
    coil : Coil
        The model.
    path : str or Path
        Destination file.

    Returns
    -------
    Path
    """
    from tmsnet.io.atomic import atomic_write_text

    meta = f"# {coil.name}.ccd generated by tmsnet"
    if coil.didt_max_a_per_us is not None:
        meta += f"; dIdtmax={coil.didt_max_a_per_us:g};"
    rows = "\n".join(
        " ".join(f"{v:.6e}" for v in row) for row in np.hstack([coil.positions_m, coil.moments])
    )
    text = f"{meta}\n{coil.n_dipoles}\n# centers and weighted directions of the elements (magnetic dipoles)\n"
    return atomic_write_text(path, text + rows + "\n")


def _turn_radii(inner_mm: float, outer_mm: float, turns: int) -> np.ndarray:
    if turns == 1:
        return np.array([(inner_mm + outer_mm) / 2.0])
    return np.linspace(inner_mm, outer_mm, turns)


def _disc_dipoles(
    inner_mm: float, outer_mm: float, turns_per_layer: int, element_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Planar dipole sheet of one layer: (x, y) positions in mm and moments (m²) along +z."""
    radii = _turn_radii(inner_mm, outer_mm, turns_per_layer)
    edges = [0.0]
    for r_turn in radii:
        start = edges[-1]
        n_sub = max(1, math.ceil((r_turn - start) / element_mm))
        edges.extend(np.linspace(start, r_turn, n_sub + 1)[1:].tolist())
    xy, moment = [], []
    for r1, r2 in zip(edges[:-1], edges[1:], strict=True):
        if r2 - r1 <= 0:
            continue
        mid = 0.5 * (r1 + r2)
        n_turns = int(np.sum(radii >= r2 - 1e-9))
        if n_turns == 0:
            continue
        n_sec = max(6, math.ceil(2 * math.pi * mid / element_mm))
        dphi = 2 * math.pi / n_sec
        phi = (np.arange(n_sec) + 0.5) * dphi
        # Area centroid of an annular sector.
        rc = (2.0 / 3.0) * (r2**3 - r1**3) / (r2**2 - r1**2) * math.sin(dphi / 2) / (dphi / 2)
        area_m2 = 0.5 * dphi * (r2**2 - r1**2) * 1e-6
        xy.append(np.column_stack([rc * np.cos(phi), rc * np.sin(phi)]))
        moment.append(np.full(n_sec, n_turns * area_m2))
    return np.vstack(xy), np.concatenate(moment)


@dataclass(frozen=True)
class Winding:
    """Geometry of a round multi-layer winding centred on the coil's z axis (one wing of a figure-8).

    Checked on construction; :func:`round_coil` and :func:`figure8_coil` build coils from it.

    Attributes
    ----------
    inner_radius_mm, outer_radius_mm : float
        Radii of the innermost and outermost turn (mm); turns are spaced
        evenly between them.
    turns_per_layer : int
        Turns in each layer.
    n_layers : int
        Number of stacked layers (all with the same turns).
    layer_spacing_mm : float
        Distance between layers (mm).
    bottom_distance_mm : float
        Distance from the casing bottom (the coil origin) to the first layer (mm).
    element_mm : float
        Maximum size of a discretisation element (mm).

    Raises
    ------
    InvalidParameterError
        If a radius, count or distance is out of range.
    """

    inner_radius_mm: float
    outer_radius_mm: float
    turns_per_layer: int
    n_layers: int = 1
    layer_spacing_mm: float = 2.0
    bottom_distance_mm: float = 4.0
    element_mm: float = 3.0

    def __post_init__(self) -> None:
        inner, outer = self.inner_radius_mm, self.outer_radius_mm
        if not (0 <= inner <= outer) or outer <= 0:
            raise InvalidParameterError(
                f"Winding radii must satisfy 0 <= inner ({inner}) <= outer ({outer}) mm, outer > 0."
            )
        if self.turns_per_layer < 1 or self.n_layers < 1:
            raise InvalidParameterError("turns_per_layer and n_layers must be at least 1.")
        if self.layer_spacing_mm < 0 or self.bottom_distance_mm < 0 or self.element_mm <= 0:
            raise InvalidParameterError(
                "layer_spacing_mm and bottom_distance_mm must be >= 0 and element_mm > 0."
            )

    @classmethod
    def from_mapping(cls, parameters: dict[str, Any]) -> Winding:
        """The winding described by the matching keys of ``parameters`` (others are ignored).

        Raises
        ------
        InvalidParameterError
            If a required key (the radii, ``turns_per_layer``) is missing.
        """
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [name for name in required if name not in parameters]
        if missing:
            raise InvalidParameterError(f"Coil parameters lack {missing}; a winding needs {required}.")
        return cls(**{f.name: parameters[f.name] for f in fields(cls) if f.name in parameters})

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as given (for :attr:`Coil.parameters`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def dipoles(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (mm) and moments (m², +z) of the winding."""
        xy, mom = _disc_dipoles(self.inner_radius_mm, self.outer_radius_mm, self.turns_per_layer,
                                self.element_mm)
        pos, mz = [], []
        for layer in range(self.n_layers):
            z = -(self.bottom_distance_mm + layer * self.layer_spacing_mm)
            pos.append(np.column_stack([xy, np.full(len(xy), z)]))
            mz.append(mom)
        positions = np.vstack(pos)
        moments = np.zeros_like(positions)
        moments[:, 2] = np.concatenate(mz)
        return positions, moments


def round_coil(winding: Winding, *, name: str = "round", didt_max_a_per_us: float | None = None) -> Coil:
    """Dipole model of a round (circular) coil from its winding geometry.

    Parameters
    ----------
    winding : Winding
        Radii (mm), turns, layers and discretisation of the winding.
    name : str
        Coil name.
    didt_max_a_per_us : float, optional
        Stimulator dI/dt at 100 % output (A/µs), if known.

    Returns
    -------
    Coil
        Moments along +z (current counter-clockwise seen from the head).
    """
    pos, mom = winding.dipoles()
    params = {"type": "round", **winding.as_dict()}
    return Coil(name, pos * 1e-3, mom, didt_max_a_per_us, params)


def _rot_y(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def figure8_coil(
    winding: Winding,
    *,
    name: str = "figure8",
    wing_separation_mm: float | None = None,
    wing_angle_deg: float = 0.0,
    didt_max_a_per_us: float | None = None,
) -> Coil:
    """Dipole model of a figure-8 (double) coil from its winding geometry.

    Two identical round windings (see :func:`round_coil`) centred at
    ``x = +-wing_separation_mm / 2`` with opposite currents, so that the
    induced field adds up under the centre, along the coil's y axis.

    Parameters
    ----------
    winding : Winding
        The winding of each wing.
    name : str
        Coil name.
    wing_separation_mm : float, optional
        Distance between the wing centres (default: ``2 * outer_radius_mm``,
        wings touching).
    wing_angle_deg : float
        Tilt of each wing about the coil's y axis through the coil centre;
        positive values bring the outer ends towards the head (+z), as in
        angled coils such as the MagVenture B70.
    didt_max_a_per_us : float, optional
        Stimulator dI/dt at 100 % output (A/µs), if known.

    Returns
    -------
    Coil
        Wing at +x with moments along +z, wing at -x along -z.
    """
    sep = 2.0 * winding.outer_radius_mm if wing_separation_mm is None else float(wing_separation_mm)
    if sep <= 0:
        raise InvalidParameterError("wing_separation_mm must be > 0.")
    pos, mom = winding.dipoles()
    alpha = math.radians(wing_angle_deg)
    parts_p, parts_m = [], []
    for side in (1.0, -1.0):
        p = pos + np.array([side * sep / 2.0, 0.0, 0.0])
        m = mom * side
        rot = _rot_y(-side * alpha)
        # Tilt about the y axis through the first layer's centre line.
        pivot = np.array([0.0, 0.0, -winding.bottom_distance_mm])
        parts_p.append((p - pivot) @ rot.T + pivot)
        parts_m.append(m @ rot.T)
    params = {"type": "figure8", **winding.as_dict()}
    element_mm = params.pop("element_mm")  # keys in the order of the bundled coils' JSON files
    params.update(wing_separation_mm=sep, wing_angle_deg=wing_angle_deg, element_mm=element_mm)
    return Coil(name, np.vstack(parts_p) * 1e-3, np.vstack(parts_m), didt_max_a_per_us, params)


#: Folder of the bundled generated coils: ``<name>.ccd`` and ``<name>.json``, whose
#: ``Parameters`` hold the winding geometry and its "source" (the one place it is written).
_BUNDLED_FOLDER = files("tmsnet.data").joinpath("coils")


@functools.cache
def _bundled_metadata() -> dict[str, dict[str, Any]]:
    return {
        entry.name[: -len(".json")]: json.loads(entry.read_text("utf-8"))
        for entry in sorted(_BUNDLED_FOLDER.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


def bundled_coil_parameters() -> dict[str, dict[str, Any]]:
    """Winding geometry of the bundled generated coils, by name (a copy)."""
    return {name: json.loads(json.dumps(meta["Parameters"])) for name, meta in _bundled_metadata().items()}


def bundled_coil_names() -> list[str]:
    """Names accepted by :func:`load_coil` besides file paths."""
    return sorted(_bundled_metadata())


def coil_param() -> Any:
    """The ``coil`` field of a parameter object (``--coil``; default :data:`DEFAULT_COIL`).

    Validate it in the class's ``check`` with :func:`check_coil`.
    """
    return param(DEFAULT_COIL, kind="any",
                 help=f"bundled coil ({', '.join(bundled_coil_names())}) or a SimNIBS .ccd file")


def check_coil(value: Any, name: str = "--coil (coil)") -> str:
    """A coil given as a bundled name or a ``.ccd`` path, as text (the file is checked on loading)."""
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(f"{name} must be a bundled coil name or a .ccd path, got {value!r}.")
    return value


def coil_from_parameters(name: str, parameters: dict[str, Any]) -> Coil:
    """Generate a coil from a parameter mapping (as in :func:`bundled_coil_parameters`).

    Parameters
    ----------
    name : str
        Coil name.
    parameters : dict
        ``type`` (``"round"`` or ``"figure8"``), the fields of :class:`Winding`, and
        ``didt_max_a_per_us`` and (figure-8) ``wing_separation_mm``, ``wing_angle_deg``
        as in :func:`figure8_coil`; other keys are kept as metadata.

    Returns
    -------
    Coil
    """
    kind = parameters.get("type")
    if kind not in ("round", "figure8"):
        raise InvalidParameterError(f"Coil type {kind!r} unknown; use 'round' or 'figure8'.")
    winding = Winding.from_mapping(parameters)
    didt = parameters.get("didt_max_a_per_us")
    if kind == "round":
        coil = round_coil(winding, name=name, didt_max_a_per_us=didt)
    else:
        wings = {k: parameters[k] for k in ("wing_separation_mm", "wing_angle_deg") if k in parameters}
        coil = figure8_coil(winding, name=name, didt_max_a_per_us=didt, **wings)
    coil.parameters.update({k: v for k, v in parameters.items() if k not in coil.parameters})
    return coil


def write_bundled_coils(folder: str | Path) -> list[Path]:
    """Generate the bundled coils into ``folder`` (``<name>.ccd`` + ``<name>.json``).

    Parameters
    ----------
    folder : str or Path
        Destination folder (``src/tmsnet/data/coils`` for the package).

    Returns
    -------
    list of Path
        The files written.
    """
    from tmsnet.io.atomic import atomic_write_json

    out = Path(folder)
    written = []
    for name, params in bundled_coil_parameters().items():
        coil = coil_from_parameters(name, params)
        written.append(write_ccd(coil, out / f"{name}.ccd"))
        written.append(atomic_write_json(out / f"{name}.json", {
            "Name": name, "NumberOfDipoles": coil.n_dipoles, "Parameters": params,
            "Units": {"positions": "m", "moments": "A*m^2 per A", "frame": "coil, +z into the head"},
            "GeneratedBy": "tmsnet.physics.coils.write_bundled_coils",
        }))
    return written


def load_coil(name_or_path: str | Path) -> Coil:
    """A bundled generated coil by name, or any ``.ccd`` file by path.

    Parameters
    ----------
    name_or_path : str or Path
        One of :func:`bundled_coil_names` or a path to a SimNIBS ``.ccd`` file.

    Returns
    -------
    Coil
        The model; a bundled one carries the parameters of its ``<name>.json``.

    Raises
    ------
    InputFileNotFoundError
        If it is neither a bundled name nor an existing file.
    """
    key = str(name_or_path)
    if key in _bundled_metadata():
        coil = read_ccd(Path(str(_BUNDLED_FOLDER.joinpath(f"{key}.ccd"))), name=key)
        coil.parameters = bundled_coil_parameters()[key]
        return coil
    path = Path(key).expanduser()
    if not path.is_file():
        raise InputFileNotFoundError(
            f"Coil {key!r} is neither a bundled coil ({', '.join(bundled_coil_names())}) nor an "
            "existing .ccd file. Give one of those names or the path of a SimNIBS .ccd file."
        )
    return read_ccd(path)
