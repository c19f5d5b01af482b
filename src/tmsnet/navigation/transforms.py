"""MNI <-> native T1w coordinates of points with fMRIPrep's ITK transforms.

fMRIPrep writes two composite transforms (ITK HDF5, an affine followed by a
nonlinear displacement field) per subject::

    sub-XX_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5
    sub-XX_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5

**Direction.** ``mode-image`` transforms move *images*: the
``from-MNI_to-T1w`` file resamples an MNI image onto the T1w grid, so what
it computes is, for every T1w voxel, where to sample in MNI. As a point
mapping it therefore goes **T1w -> MNI** (ITK maps points from the fixed,
output space to the moving, input space). Points travel the opposite way to
images (``../shared/REFERENCES.md`` section 1). Hence:

* MNI point -> T1w point: apply ``from-T1w_to-MNI...`` as a point mapping,
  or numerically invert ``from-MNI..._to-T1w``;
* T1w point -> MNI point: apply ``from-MNI..._to-T1w``, or invert the other.

:func:`mni_to_t1w` and :func:`t1w_to_mni` accept either file and decide from
its ``from-``/``to-`` entities (or an explicit ``xfm_from``/``xfm_to``)
whether to apply it or invert it. Files are read with
``nitransforms.manip.load(path, fmt="itk")``, which converts ITK's LPS
convention to RAS; inversion is Newton's method on nitransforms' forward
mapping (finite-difference Jacobian), to ``tol_mm``.

:func:`write_itk_composite_h5` writes an affine + displacement-field
composite in the same layout as ANTs/fMRIPrep (used by the tests to build a
transform with a known answer).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError, SpaceError

__all__ = [
    "load_transform",
    "mni_to_t1w",
    "t1w_to_mni",
    "transform_direction",
    "transform_points",
    "write_itk_composite_h5",
]

_FROM_TO = re.compile(r"from-([A-Za-z0-9]+)_to-([A-Za-z0-9]+)")
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def transform_direction(path: str | Path) -> tuple[str, str] | None:
    """The ``(from, to)`` entities of a transform file name, or None."""
    match = _FROM_TO.search(Path(path).name)
    return (match.group(1), match.group(2)) if match else None


def load_transform(path: str | Path) -> Any:
    """Load an ITK transform (``.h5`` composite, or ``.txt``/``.mat`` affine) with nitransforms.

    Parameters
    ----------
    path : str or Path
        The transform file.

    Returns
    -------
    nitransforms object
        Has ``.map(points)`` mapping RAS points (mm) in the image-resampling
        (fixed -> moving) direction.

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    InvalidParameterError
        If nitransforms cannot read it.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(
            f"Transform file {p} does not exist. Give fMRIPrep's "
            "*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5 (or the from-T1w_to-... one)."
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Reference space not set")
            return _load(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        raise InvalidParameterError(
            f"nitransforms could not read {p} as an ITK transform ({type(exc).__name__}: {exc}). "
            "Give an ITK .h5 composite or an ITK affine text/.mat file."
        ) from exc


def _load(p: Path) -> Any:
    if p.name.endswith(".h5"):
        from nitransforms.manip import load

        return load(str(p), fmt="itk")
    from nitransforms.linear import load as load_linear

    return load_linear(str(p), fmt="itk")


def _forward(xfm: Any, points: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # points need no reference grid
        warnings.filterwarnings("ignore", message="Reference space not set")
        out = np.asarray(xfm.map(points), dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InvalidParameterError(
            "Some points fall outside the transform's displacement field (mapped to NaN); check "
            "that the coordinates are in the space the transform expects."
        )
    return out


def _invert(xfm: Any, targets: np.ndarray, *, tol_mm: float, max_iter: int = 50,
            step_mm: float = 0.5) -> np.ndarray:
    """Solve ``xfm.map(x) = targets`` for x by Newton's method."""
    x = targets.copy()
    eye = np.eye(3)
    for _ in range(max_iter):
        fx = _forward(xfm, x)
        resid = fx - targets
        if np.max(np.linalg.norm(resid, axis=1)) < tol_mm:
            return x
        jac = np.empty((len(x), 3, 3))
        for k in range(3):
            jac[:, :, k] = (_forward(xfm, x + step_mm * eye[k]) - fx) / step_mm
        x = x - np.linalg.solve(jac, resid[..., None])[..., 0]
    fx = _forward(xfm, x)
    if np.max(np.linalg.norm(fx - targets, axis=1)) >= tol_mm:
        raise InvalidParameterError(
            "Could not invert the transform at these points (no convergence); use the opposite "
            "fMRIPrep transform file, which maps in the needed direction directly."
        )
    return x


def transform_points(points_mm: np.ndarray, xfm_path: str | Path, *, inverse: bool = False,
                     tol_mm: float = 1e-3) -> np.ndarray:
    """Map points with a transform file as a point mapping (fixed -> moving), or its inverse.

    Parameters
    ----------
    points_mm : array, shape (n, 3) or (3,)
        RAS points in mm.
    xfm_path : str or Path
        ITK transform file.
    inverse : bool
        Invert the mapping numerically (moving -> fixed).
    tol_mm : float
        Inversion tolerance (mm).

    Returns
    -------
    numpy.ndarray
        Mapped points, same shape as the input.
    """
    pts = np.asarray(points_mm, dtype=np.float64)
    single = pts.ndim == 1
    pts2 = pts.reshape(-1, 3)
    if not np.all(np.isfinite(pts2)):
        raise InvalidParameterError("Points must be finite x, y, z values in mm.")
    xfm = load_transform(xfm_path)
    out = _invert(xfm, pts2, tol_mm=tol_mm) if inverse else _forward(xfm, pts2)
    return out[0] if single else out


def _resolve(xfm_path: str | Path, xfm_from: str | None, xfm_to: str | None) -> tuple[str, str]:
    entities = transform_direction(xfm_path)
    src = xfm_from or (entities[0] if entities else None)
    dst = xfm_to or (entities[1] if entities else None)
    if src is None or dst is None:
        raise SpaceError(
            f"Cannot tell the direction of {Path(xfm_path).name}: its name has no from-X_to-Y "
            "entities. Keep fMRIPrep's file name or pass xfm_from/xfm_to (e.g. 'MNI152NLin2009cAsym', "
            "'T1w')."
        )
    return src, dst


def mni_to_t1w(points_mm: np.ndarray, xfm_path: str | Path, *, xfm_from: str | None = None,
               xfm_to: str | None = None, tol_mm: float = 1e-3) -> np.ndarray:
    """Map template (MNI) points to the native T1w space.

    Parameters
    ----------
    points_mm : array, shape (n, 3) or (3,)
        Points in the template space (mm, RAS).
    xfm_path : str or Path
        fMRIPrep ``*_from-<MNI>_to-T1w_mode-image_xfm.h5`` (inverted
        numerically) or ``*_from-T1w_to-<MNI>_mode-image_xfm.h5`` (applied).
    xfm_from, xfm_to : str, optional
        The file's ``from``/``to`` spaces when its name does not carry them.
    tol_mm : float
        Inversion tolerance (mm).

    Returns
    -------
    numpy.ndarray
        Points in T1w space (mm, RAS), same shape as the input.

    Raises
    ------
    SpaceError
        If the transform does not connect T1w with another space.
    """
    src, dst = _resolve(xfm_path, xfm_from, xfm_to)
    if dst == "T1w" and src != "T1w":
        return transform_points(points_mm, xfm_path, inverse=True, tol_mm=tol_mm)
    if src == "T1w" and dst != "T1w":
        return transform_points(points_mm, xfm_path)
    raise SpaceError(f"{Path(xfm_path).name} maps {src} -> {dst}; need a transform between MNI and T1w.")


def t1w_to_mni(points_mm: np.ndarray, xfm_path: str | Path, *, xfm_from: str | None = None,
               xfm_to: str | None = None, tol_mm: float = 1e-3) -> np.ndarray:
    """Map native T1w points to the template (MNI) space (inverse of :func:`mni_to_t1w`).

    Parameters
    ----------
    points_mm, xfm_path, xfm_from, xfm_to, tol_mm
        As in :func:`mni_to_t1w`.

    Returns
    -------
    numpy.ndarray
        Points in the template space (mm, RAS).
    """
    src, dst = _resolve(xfm_path, xfm_from, xfm_to)
    if dst == "T1w" and src != "T1w":
        return transform_points(points_mm, xfm_path)
    if src == "T1w" and dst != "T1w":
        return transform_points(points_mm, xfm_path, inverse=True, tol_mm=tol_mm)
    raise SpaceError(f"{Path(xfm_path).name} maps {src} -> {dst}; need a transform between MNI and T1w.")


def write_itk_composite_h5(
    path: str | Path,
    affine_ras: np.ndarray,
    displacement_ras: np.ndarray | None = None,
    field_affine_ras: np.ndarray | None = None,
) -> Path:
    """Write an ITK HDF5 composite transform: ``y = A (x + d(x))`` for points x (RAS, mm).

    The layout is that of ANTs/fMRIPrep ``*_xfm.h5`` files: ``TransformGroup/0``
    the composite, ``/1`` an ``AffineTransform_double_3_3`` and ``/2`` a
    ``DisplacementFieldTransform_float_3_3`` (applied first, as ITK applies a
    composite's transforms last to first). Values are converted to ITK's LPS
    convention.

    Parameters
    ----------
    path : str or Path
        Destination ``.h5`` file.
    affine_ras : array, shape (4, 4)
        Point mapping A in RAS mm.
    displacement_ras : array, shape (i, j, k, 3), optional
        Displacements d (RAS mm) sampled on a grid; omit for an affine-only file.
    field_affine_ras : array, shape (4, 4), optional
        Voxel-to-RAS affine of that grid (diagonal spacing, RAS-oriented axes).

    Returns
    -------
    Path
    """
    import h5py

    from tmsnet.io.atomic import atomic_write_with

    a_lps = _LPS @ np.asarray(affine_ras, dtype=np.float64) @ _LPS

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            group = f.create_group("TransformGroup")
            g0 = group.create_group("0")
            g0.create_dataset("TransformType", data=[b"CompositeTransform_double_3_3"])
            g1 = group.create_group("1")
            g1.create_dataset("TransformType", data=[b"AffineTransform_double_3_3"])
            g1.create_dataset("TransformParameters",
                              data=np.concatenate([a_lps[:3, :3].ravel(), a_lps[:3, 3]]))
            g1.create_dataset("TransformFixedParameters", data=np.zeros(3))
            if displacement_ras is not None:
                field = np.asarray(displacement_ras, dtype=np.float64)
                aff = np.asarray(field_affine_ras, dtype=np.float64)
                spacing = np.abs(np.diag(aff)[:3])
                if not np.allclose(aff[:3, :3], np.diag(spacing)):
                    raise InvalidParameterError("field_affine_ras must be diagonal with positive spacing.")
                origin_lps = (_LPS @ aff[:, 3])[:3]
                direction_lps = np.diag([-1.0, -1.0, 1.0])
                fixed = np.concatenate([np.array(field.shape[:3], dtype=float), origin_lps, spacing,
                                        direction_lps.ravel()])
                field_lps = field * np.array([-1.0, -1.0, 1.0])
                params = np.moveaxis(field_lps, -1, 0).ravel(order="F")
                g2 = group.create_group("2")
                g2.create_dataset("TransformType", data=[b"DisplacementFieldTransform_float_3_3"])
                g2.create_dataset("TransformParameters", data=params)
                g2.create_dataset("TransformFixedParameters", data=fixed)

    return atomic_write_with(path, write, suffix=".tmp.h5")
