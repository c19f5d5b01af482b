"""Chance baselines for the targeting accuracy tests (issue 13, "Must have 2").

Every accuracy test compares a method's error against what a method that does
*not* read the subject's scan achieves on the same subjects:

* the fixed guess: the centroid of the DLPFC search region, built here from the
  *published* coordinates (REFERENCES.md section 1: union of 20 mm spheres at
  the 5-cm rule, BA9, BA46 and F3/Beam targets of Fox et al. 2012 Table 1,
  intersected with nilearn's MNI152 gray-matter mask), never from
  :mod:`tmsnet.targeting.regions`;
* the nearest published target: for each subject, the published coordinate
  (the four above plus Fitzgerald 2009 and the Fox 2012 group optimum) nearest
  its planted target, an oracle that knows the answer and picks among the
  published sites;
* for the seedmap method, the group map's own extremum (its most negative voxel
  in the search region), the target a group map gives without the subject.

A method passes when its median error is at most half the best baseline's.
This module is imported by the tests and by ``benchmarks/bench_accuracy.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Published standard DLPFC targets, MNI152 mm (REFERENCES.md section 1; Fox 2012 Table 1).
STANDARD_TARGETS_MM: dict[str, tuple[float, float, float]] = {
    "five_cm_rule": (-41.0, 16.0, 54.0),
    "ba9": (-36.0, 39.0, 43.0),
    "ba46": (-44.0, 40.0, 29.0),
    "f3_beam": (-37.0, 26.0, 49.0),
}
#: Further published targets (REFERENCES.md section 1): Fitzgerald 2009, Fox 2012 optimum.
OTHER_TARGETS_MM: dict[str, tuple[float, float, float]] = {
    "fitzgerald_2009": (-46.0, 45.0, 38.0),
    "fox_2012_optimal": (-38.0, 44.0, 26.0),
}
#: Radius of the search spheres (mm), REFERENCES.md section 1 (contarg ``DLPFCspheres``).
SEARCH_SPHERE_RADIUS_MM = 20.0


def published_search_region(mask_img) -> tuple[np.ndarray, np.ndarray]:
    """The search region from the published spheres on ``mask_img``'s grid.

    Parameters
    ----------
    mask_img : Nifti1Image
        The subject's brain mask (defines the grid).

    Returns
    -------
    region : ndarray of bool, the grid's shape
        Union of the four 20 mm spheres, in gray matter and in the brain.
    xyz : ndarray, shape (n, 3)
        World coordinates (mm) of the region's voxels.
    """
    from nilearn.datasets import load_mni152_gm_mask
    from nilearn.image import resample_to_img

    brain = np.asarray(mask_img.dataobj) > 0
    gm_img = resample_to_img(load_mni152_gm_mask(resolution=2), mask_img,
                             interpolation="nearest", force_resample=True, copy_header=True)
    gm = np.asarray(gm_img.dataobj) > 0
    ijk = np.indices(brain.shape).reshape(3, -1).T
    xyz = ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
    near = np.zeros(len(xyz), dtype=bool)
    for centre in STANDARD_TARGETS_MM.values():
        near |= np.linalg.norm(xyz - np.asarray(centre), axis=1) <= SEARCH_SPHERE_RADIUS_MM
    region = (near & brain.ravel() & gm.ravel()).reshape(brain.shape)
    return region, xyz[region.ravel()]


def fixed_guess_mm(mask_img) -> np.ndarray:
    """Centroid (mm) of :func:`published_search_region`: the same guess for everyone."""
    return published_search_region(mask_img)[1].mean(axis=0)


def nearest_published_errors(planted_mm: np.ndarray) -> np.ndarray:
    """Per subject, the distance (mm) from its planted target to the nearest published one."""
    published = np.array([*STANDARD_TARGETS_MM.values(), *OTHER_TARGETS_MM.values()])
    planted = np.atleast_2d(np.asarray(planted_mm, dtype=float))
    return np.linalg.norm(planted[:, None, :] - published[None, :, :], axis=2).min(axis=1)


def distances(found_mm: np.ndarray, planted_mm: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distances (mm); ``found_mm`` may be one point for all rows."""
    found = np.asarray(found_mm, dtype=float)
    planted = np.atleast_2d(np.asarray(planted_mm, dtype=float))
    return np.linalg.norm(np.broadcast_to(found, planted.shape) - planted, axis=1)


def identified(found_mm: np.ndarray, planted_mm: np.ndarray) -> np.ndarray:
    """Per subject: is its found target nearer its own planted target than any other's?"""
    found = np.atleast_2d(np.asarray(found_mm, dtype=float))
    planted = np.atleast_2d(np.asarray(planted_mm, dtype=float))
    d = np.linalg.norm(found[:, None, :] - planted[None, :, :], axis=2)
    own = np.diag(d).copy()
    d[np.diag_indices_from(d)] = np.inf
    return own < d.min(axis=1)


def check_beats_baselines(method_errors: Mapping[str, Sequence[float]],
                          baseline_errors: Mapping[str, Sequence[float]],
                          factor: float = 0.5) -> dict[str, float]:
    """Assert every method's median error <= ``factor`` x the best baseline's median.

    Returns the medians (methods and baselines) for printing; the assertion
    message names the failing method and every median.
    """
    medians = {name: float(np.median(e)) for name, e in {**method_errors,
                                                         **baseline_errors}.items()}
    best = min(medians[name] for name in baseline_errors)
    for name in method_errors:
        assert medians[name] <= factor * best, (
            f"{name}: median error {medians[name]:.1f} mm is not <= {factor} x the best "
            f"baseline's {best:.1f} mm; medians {medians}")
    return medians
