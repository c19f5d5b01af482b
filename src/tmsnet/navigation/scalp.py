"""Head surface, scalp projection, scalp-to-cortex distance and 10-10 labels.

Head surfaces are triangle meshes in mm (:class:`HeadSurface`):

* :func:`template_head_surface`: MNE's bundled fsaverage head
  (``mne/data/fsaverage/fsaverage-head.fif``, in fsaverage MRI coordinates =
  MNI305) mapped to MNI152 with FreeSurfer's published MNI305 -> MNI152
  affine (:data:`MNI305_TO_MNI152`). An affine only: within a few mm of the
  MNI152 2009c head; no file is bundled.
* :func:`head_surface_from_t1w`: from a T1w image: a low intensity threshold, largest
  component, closing and hole filling give a head mask; its boundary voxel
  faces, smoothed (Taubin), give the mesh.

Projection (``../shared/REFERENCES.md`` section 1, "Target -> treatment"):
``"nearest"`` takes the closest scalp point (the target then lies on the
scalp normal through it); ``"centre"`` intersects the line from the head
centre through the target with the scalp. Scalp-to-cortex distance is
measured from the scalp point towards the target to the first point inside a
brain mask (nilearn's bundled MNI152 brain mask for the template; the
subject's brain mask in T1w space, e.g. fMRIPrep's ``desc-brain_mask``).

10-10 labels: bundled ``tmsnet/data/electrodes/standard_1010_mni.tsv``, made
by :func:`electrode_table_from_mne` from MNE's ``fsaverage_1010`` montage
(electrodes positioned on the fsaverage head) with the same MNI305 -> MNI152
affine. Accuracy: the positions are those of one template head mapped by an
affine; against MNE's Colin27-based ``colin27_1005`` positions of the same
labels they differ by a median of about 10 mm, so the nearest label is a
guide for the operator, not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage, sparse

from tmsnet.exceptions import InvalidImageError, InvalidParameterError
from tmsnet.spaces import MNI305_TO_MNI152

__all__ = [
    "MNI305_TO_MNI152",
    "HeadSurface",
    "electrode_table",
    "electrode_table_from_mne",
    "head_surface_from_mask",
    "head_surface_from_t1w",
    "nearest_electrode",
    "project_to_scalp",
    "scalp_to_cortex_distance",
    "template_head_surface",
]

@dataclass
class HeadSurface:
    """A closed head (scalp) surface.

    Attributes
    ----------
    vertices : numpy.ndarray, shape (n, 3)
        Vertex positions (mm).
    faces : numpy.ndarray, shape (k, 3)
        Triangles (vertex indices).
    space : str
        Coordinate space of the vertices (e.g. ``MNI152NLin2009cAsym``, ``T1w``).
    source : str
        Where the surface comes from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    space: str
    source: str

    @property
    def centre(self) -> np.ndarray:
        """Centre of the sphere fitted to the upper half of the head (mm)."""
        from tmsnet.physics.placement import fit_sphere

        v = self.vertices
        upper = v[v[:, 2] >= np.median(v[:, 2])]
        return fit_sphere(upper)[0]

    def sample_points(self, spacing_mm: float = 2.0) -> np.ndarray:
        """Vertices plus points inside large triangles, no farther apart than ``spacing_mm``."""
        tri = self.vertices[self.faces]
        edge = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
        points = [self.vertices]
        n_sub = np.ceil(edge / spacing_mm).astype(int)
        for n in np.unique(n_sub[n_sub > 1]):
            sel = tri[n_sub == n]
            i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
            keep = (i + j <= n) & ~(((i == 0) & (j == 0)) | ((i == n) & (j == 0)) | ((i == 0) & (j == n)))
            a = (i[keep] / n)[None, :, None]
            b = (j[keep] / n)[None, :, None]
            pts = sel[:, None, 0] * (1 - a - b) + sel[:, None, 1] * a + sel[:, None, 2] * b
            points.append(pts.reshape(-1, 3))
        return np.vstack(points)


@lru_cache(maxsize=1)
def _template_head() -> HeadSurface:
    import mne

    path = files("mne").joinpath("data", "fsaverage", "fsaverage-head.fif")
    surf = mne.read_bem_surfaces(str(path), verbose="error")[0]
    rr = surf["rr"] * 1000.0
    rr = rr @ MNI305_TO_MNI152[:3, :3].T + MNI305_TO_MNI152[:3, 3]
    return HeadSurface(rr, np.asarray(surf["tris"], dtype=np.int64), "MNI152NLin2009cAsym",
                       "MNE fsaverage-head.fif (fsaverage = MNI305) mapped to MNI152 by the FreeSurfer "
                       "MNI305->MNI152 affine")


def template_head_surface() -> HeadSurface:
    """The template head (MNE's fsaverage head mapped to MNI152), cached.

    Returns
    -------
    HeadSurface
        About 2,000 vertices, space ``MNI152NLin2009cAsym`` (an affine
        approximation of it, see the module docstring).
    """
    return _template_head()


def head_mask_from_t1w(img: nib.spatialimages.SpatialImage, *, threshold: float | None = None) -> np.ndarray:
    """Binary head mask of a T1w image.

    Parameters
    ----------
    img : nibabel image
        3D T1-weighted image.
    threshold : float, optional
        Intensity threshold (default: 10 % of the way from the 0.5th to the
        99.5th intensity percentile; air is far below, scalp far above).

    Returns
    -------
    numpy.ndarray of bool
    """
    data = np.asanyarray(img.dataobj).astype(np.float32)
    if data.ndim != 3:
        raise InvalidImageError(f"The T1w image must be 3D, got shape {data.shape}.")
    finite = data[np.isfinite(data)]
    if finite.size == 0 or finite.max() <= finite.min():
        raise InvalidImageError("The T1w image is empty or constant; give a real T1-weighted image.")
    if threshold is None:
        # Background (air) is dark in T1w; scalp fat and muscle are well above 10 % of the robust maximum.
        lo = float(np.percentile(finite, 0.5))
        thr = lo + 0.1 * (float(np.percentile(finite, 99.5)) - lo)
    else:
        thr = float(threshold)
    mask = np.nan_to_num(data) > thr
    # Fill first: the scalp shell encloses the darker skull and the brain.
    mask = ndimage.binary_closing(mask, structure=np.ones((3, 3, 3)), iterations=2, border_value=0)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n == 0:
        raise InvalidImageError("No head found in the T1w image (nothing above the threshold).")
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    mask = labels == (1 + int(np.argmax(sizes)))
    for axis in range(3):  # close cavities open to one side (ear canals, sinuses) slice by slice
        mask = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(mask, axis, 0)], axis=axis)
    return mask


def head_surface_from_mask(mask: np.ndarray, affine: np.ndarray, *, space: str, source: str,
                           smoothing_iterations: int = 10) -> HeadSurface:
    """Surface of a binary head mask: boundary voxel faces, Taubin-smoothed.

    Parameters
    ----------
    mask : numpy.ndarray of bool, 3D
        Head mask.
    affine : array, shape (4, 4)
        Voxel-to-mm affine.
    space : str
        Name of the space (stored in the result).
    source : str
        Description (stored).
    smoothing_iterations : int
        Taubin lambda/mu iterations (shrink-free smoothing).

    Returns
    -------
    HeadSurface
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    quads = []
    # Corner (a, b, c) of the padded grid sits at padded-voxel coordinate (a - 0.5, ...).
    for axis in range(3):
        diff = np.diff(m.astype(np.int8), axis=axis)
        idx = np.argwhere(diff != 0)
        if idx.size == 0:
            continue
        base = idx.copy()
        base[:, axis] += 1
        o1, o2 = [a for a in range(3) if a != axis]
        d1 = np.zeros(3, dtype=np.int64)
        d1[o1] = 1
        d2 = np.zeros(3, dtype=np.int64)
        d2[o2] = 1
        quads.append(np.stack([base, base + d1, base + d1 + d2, base + d2], axis=1))
    if not quads:
        raise InvalidImageError("The head mask is empty.")
    corners = np.concatenate(quads)  # (q, 4, 3)
    shape = np.array(m.shape) + 1
    flat = np.ravel_multi_index(corners.reshape(-1, 3).T, shape)
    uniq, inverse = np.unique(flat, return_inverse=True)
    verts_idx = np.column_stack(np.unravel_index(uniq, shape)).astype(np.float64)
    q = inverse.reshape(-1, 4)
    faces = np.vstack([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    # Taubin smoothing on the vertex adjacency graph.
    edges = np.vstack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = len(verts_idx)
    adj = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    lap = sparse.diags(1.0 / np.maximum(deg, 1)) @ adj
    v = verts_idx
    for _ in range(smoothing_iterations):
        v = v + 0.5 * (lap @ v - v)
        v = v - 0.53 * (lap @ v - v)
    vox = v - 1.5  # padded corner coordinate -> original voxel coordinate
    mm = vox @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    return HeadSurface(mm, faces.astype(np.int64), space, source)


def head_surface_from_t1w(img: nib.spatialimages.SpatialImage | str, *, space: str = "T1w",
                          threshold: float | None = None) -> HeadSurface:
    """Head surface of a T1-weighted image.

    Parameters
    ----------
    img : nibabel image or path
        3D T1w image (e.g. fMRIPrep's ``desc-preproc_T1w``, not skull-stripped).
    space : str
        Name of its space.
    threshold : float, optional
        Intensity threshold of the head mask (default: see :func:`head_mask_from_t1w`).

    Returns
    -------
    HeadSurface
    """
    image = nib.load(str(img)) if not hasattr(img, "dataobj") else img
    mask = head_mask_from_t1w(image, threshold=threshold)
    return head_surface_from_mask(mask, image.affine, space=space,
                                  source=f"head mask of the T1w image {image.get_filename()}")


def _closest_on_triangles(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Closest point to p on each triangle (Ericson, Real-Time Collision Detection 5.1.5)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac, ap = b - a, c - a, p - a
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3 = np.einsum("ij,ij->i", ab, bp)
    d4 = np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5 = np.einsum("ij,ij->i", ab, cp)
    d6 = np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(denom == 0, 1e-300, denom)
    v = vb / denom
    w = vc / denom
    out = a + ab * v[:, None] + ac * w[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Vertex and edge regions.
        m = (d1 <= 0) & (d2 <= 0)
        out[m] = a[m]
        m = (d3 >= 0) & (d4 <= d3)
        out[m] = b[m]
        m = (d6 >= 0) & (d5 <= d6)
        out[m] = c[m]
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t = d1 / (d1 - d3)
        out[m] = a[m] + ab[m] * t[m, None]
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t = d2 / (d2 - d6)
        out[m] = a[m] + ac[m] * t[m, None]
        m = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        out[m] = b[m] + (c[m] - b[m]) * t[m, None]
    return out


def _ray_hits(origin: np.ndarray, direction: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Distances t > 0 along the ray to every triangle it crosses (Moller-Trumbore)."""
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    pvec = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, pvec)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = origin - tri[:, 0]
    u = np.einsum("ij,ij->i", tvec, pvec) * inv
    qvec = np.cross(tvec, e1)
    v = (qvec @ direction) * inv
    t = np.einsum("ij,ij->i", e2, qvec) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return t[hit]


def project_to_scalp(surface: HeadSurface, target_mm: np.ndarray, *, method: str = "nearest",
                     centre_mm: np.ndarray | None = None) -> np.ndarray:
    """The scalp point above a target.

    Parameters
    ----------
    surface : HeadSurface
        Head surface in the target's space.
    target_mm : array, shape (3,)
        Target (mm).
    method : {"nearest", "centre"}
        ``"nearest"``: closest point of the scalp (along the scalp normal);
        ``"centre"``: where the line from the head centre through the target
        leaves the head.
    centre_mm : array, shape (3,), optional
        Head centre for ``"centre"`` (default :attr:`HeadSurface.centre`).

    Returns
    -------
    numpy.ndarray, shape (3,)
        Scalp point (mm).
    """
    target = np.asarray(target_mm, dtype=np.float64).reshape(3)
    tri = surface.vertices[surface.faces]
    if method == "nearest":
        closest = _closest_on_triangles(target, tri)
        return closest[np.argmin(np.linalg.norm(closest - target, axis=1))]
    if method == "centre":
        centre = surface.centre if centre_mm is None else np.asarray(centre_mm, dtype=np.float64)
        direction = target - centre
        norm = np.linalg.norm(direction)
        if norm < 1e-6:
            raise InvalidParameterError("The target is at the head centre; the projection line is undefined.")
        direction /= norm
        hits = _ray_hits(centre, direction, tri)
        if hits.size == 0:
            raise InvalidParameterError("The line from the head centre through the target misses the scalp.")
        return centre + hits.max() * direction
    raise InvalidParameterError(f"Unknown projection method {method!r}; use 'nearest' or 'centre'.")


def scalp_to_cortex_distance(scalp_point_mm: np.ndarray, target_mm: np.ndarray,
                             brain_mask: nib.spatialimages.SpatialImage, *, step_mm: float = 0.25,
                             max_mm: float = 60.0) -> float:
    """Distance from the scalp point to the brain along the line to the target (mm).

    Parameters
    ----------
    scalp_point_mm, target_mm : array, shape (3,)
        Scalp point and target (mm, the mask's space).
    brain_mask : nibabel image
        Brain mask (non-zero = brain).
    step_mm : float
        Sampling step along the line.
    max_mm : float
        Give up beyond this depth.

    Returns
    -------
    float
        Depth (mm) of the first brain point on the line (linear
        interpolation of the mask at 0.5).

    Raises
    ------
    InvalidParameterError
        If no brain is found within ``max_mm``.
    """
    s = np.asarray(scalp_point_mm, dtype=np.float64).reshape(3)
    t = np.asarray(target_mm, dtype=np.float64).reshape(3)
    direction = t - s
    norm = np.linalg.norm(direction)
    if norm < 1e-6:
        raise InvalidParameterError("Scalp point and target coincide; no depth can be measured.")
    direction /= norm
    depths = np.arange(0.0, max_mm + step_mm, step_mm)
    pts = s + depths[:, None] * direction
    inv = np.linalg.inv(brain_mask.affine)
    ijk = pts @ inv[:3, :3].T + inv[:3, 3]
    data = (np.asanyarray(brain_mask.dataobj) > 0).astype(np.float32)
    values = ndimage.map_coordinates(data, ijk.T, order=1, mode="constant", cval=0.0)
    inside = np.nonzero(values >= 0.5)[0]
    if inside.size == 0:
        raise InvalidParameterError(
            f"No brain within {max_mm} mm below the scalp point along the line to the target; check "
            "that the brain mask and the coordinates share a space."
        )
    k = inside[0]
    if k == 0:
        return 0.0
    v0, v1 = values[k - 1], values[k]
    frac = (0.5 - v0) / (v1 - v0) if v1 != v0 else 0.0
    return float(depths[k - 1] + frac * step_mm)


def electrode_table_from_mne() -> pd.DataFrame:
    """10-10 positions in MNI152 from MNE's ``fsaverage_1010`` montage (the bundled table's recipe).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``x``, ``y``, ``z`` (mm, MNI152 via the MNI305 -> MNI152 affine).
    """
    import mne

    montage = mne.channels.make_standard_montage("fsaverage_1010")
    pos = montage.get_positions()["ch_pos"]
    names = list(pos)
    xyz = np.array([pos[n] for n in names]) * 1000.0
    xyz = xyz @ MNI305_TO_MNI152[:3, :3].T + MNI305_TO_MNI152[:3, 3]
    return pd.DataFrame({"name": names, "x": xyz[:, 0].round(2), "y": xyz[:, 1].round(2),
                         "z": xyz[:, 2].round(2)})


@lru_cache(maxsize=1)
def _electrodes() -> pd.DataFrame:
    resource = files("tmsnet.data").joinpath("electrodes", "standard_1010_mni.tsv")
    with resource.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, sep="\t", comment="#")


def electrode_table() -> pd.DataFrame:
    """The bundled 10-10 electrode positions (MNI152, mm; see the module docstring)."""
    return _electrodes().copy()


def nearest_electrode(point_mm: np.ndarray) -> dict[str, Any]:
    """The nearest 10-10 electrode to a point in MNI space.

    Parameters
    ----------
    point_mm : array, shape (3,)
        A point in MNI152 (mm), typically a scalp point.

    Returns
    -------
    dict
        ``label`` and ``distance_mm``.
    """
    table = _electrodes()
    p = np.asarray(point_mm, dtype=np.float64).reshape(3)
    d = np.linalg.norm(table[["x", "y", "z"]].to_numpy() - p, axis=1)
    k = int(np.argmin(d))
    return {"label": str(table["name"].iloc[k]), "distance_mm": float(d[k])}
