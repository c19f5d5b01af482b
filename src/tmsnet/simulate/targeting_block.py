"""A small block of cleaned "brain" with a planted sgACC-anticorrelated patch.

The full simulator (:mod:`tmsnet.simulate.fmri`) writes whole fMRIPrep-like
scans; generating and cleaning one takes seconds. Statistical checks of the
targeting *methods* and of their *uncertainty* need many repeated scans of the
same person, which this module makes in milliseconds: a 2 mm grid block of
already-cleaned data (what :func:`tmsnet.targeting.workflow.load_and_clean`
returns) holding

* a seed region (sphere) that carries the source ``s(t)``;
* a search region (a slab) with the planted target patch (loading ``-s(t)``,
  Gaussian taper), a weaker anticorrelated decoy patch and a positively
  correlated decoy patch;
* spatially smooth (Gaussian, FWHM ``noise_fwhm_mm``), temporally
  autocorrelated (AR(1)) noise everywhere.

``snr`` is the ratio of the planted signal's standard deviation at the patch
centre to the noise standard deviation there, as in the full simulator. The
layout (patch positions) depends only on ``seed``; the time series also depend
on ``repeat``, so two repeats are two scans of one person (test-retest).

The block is returned as plain arrays; the caller builds the
:class:`tmsnet.targeting.methods.TargetingContext` the methods take
(``TargetingContext(**block.context_kwargs())``), so that the simulator imports
none of the targeting code it is used to test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from tmsnet.exceptions import InvalidParameterError

_SHAPE = (30, 30, 20)  # voxels of 2 mm
#: Draws of one layout before starting it again (a fitting layout needs a handful).
_MAX_LAYOUT_TRIES = 10_000
_VOXEL_MM = 2.0


@dataclass
class TargetingBlock:
    """A generated block: cleaned data, masks, grid and the planted truth, as plain arrays.

    Attributes
    ----------
    data : ndarray, shape (n_frames, n_voxels), float32
        Cleaned (standardized) time series of the brain voxels (C order of
        ``brain_mask.nonzero()``).
    brain_mask : ndarray of bool, shape (30, 30, 20)
        The block's grid (all voxels are brain).
    affine : ndarray, shape (4, 4)
        Voxel-to-mm affine (2 mm voxels).
    seed_voxels, search_voxels : ndarray of bool, shape (n_voxels,)
        The seed sphere and the search slab among the brain voxels.
    space : str
        ``"synthetic"``.
    target_mm : ndarray, shape (3,)
        Centre of the planted anticorrelated patch (mm).
    t_r : float
        Repetition time (s).
    """

    data: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    seed_voxels: np.ndarray
    search_voxels: np.ndarray
    space: str
    target_mm: np.ndarray
    t_r: float

    def context_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``TargetingContext`` (data, masks, affine, space)."""
        return {"data": self.data, "brain_mask": self.brain_mask, "affine": self.affine,
                "seed_voxels": self.seed_voxels, "search_voxels": self.search_voxels,
                "space": self.space}


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """AR(1) series along axis 0 with unit variance."""
    e = rng.standard_normal(shape).astype(np.float32)
    out = np.empty_like(e)
    out[0] = e[0]
    scale = np.float32(np.sqrt(1 - phi**2))
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + scale * e[t]
    return out


def simulate_targeting_block(
    *,
    n_frames: int = 300,
    t_r: float = 2.0,
    snr: float = 0.35,
    noise_fwhm_mm: float = 8.5,
    patch_radius_mm: float = 8.0,
    seed: int = 0,
    repeat: int = 0,
) -> TargetingBlock:
    """Generate one scan of the block.

    Parameters
    ----------
    n_frames : int
        Frames (>= 20).
    t_r : float
        Repetition time (s), used for minutes only.
    snr : float
        Planted signal std / noise std at the patch centre (> 0).
    noise_fwhm_mm : float
        Spatial smoothness of the noise (mm); default 8.5 mm, that of 6 mm
        intrinsic smoothness after the pipeline's 6 mm smoothing
        (sqrt(6^2 + 6^2)), since the block stands for *cleaned* data.
    patch_radius_mm : float
        Patch radius (mm); loading tapers as a Gaussian with sigma 0.75 radius.
    seed : int
        Layout seed (patch positions): one seed = one person.
    repeat : int
        Scan repeat of that person (new time series, same layout).

    Returns
    -------
    TargetingBlock
    """
    if n_frames < 20:
        raise InvalidParameterError(f"n_frames must be >= 20, got {n_frames}.")
    if not snr > 0:
        raise InvalidParameterError(f"snr must be > 0, got {snr}.")
    layout = np.random.default_rng([seed, 0])
    rng = np.random.default_rng([seed, 1, repeat])
    ijk = np.indices(_SHAPE).reshape(3, -1).T
    xyz = ijk * _VOXEL_MM
    brain = np.ones(_SHAPE, dtype=bool)
    # Seed: 10 mm sphere near one end; search region: the slab z >= 16 mm.
    seed_centre = np.array([30.0, 8.0, 8.0])
    seed_voxels = np.linalg.norm(xyz - seed_centre, axis=1) <= 10.0
    search_voxels = (xyz[:, 2] >= 16.0) & (xyz[:, 1] >= 20.0)
    # Target and decoys inside the search slab, >= 20 mm apart.
    centres: list[np.ndarray] = []
    tries = 0
    while len(centres) < 3:
        c = np.array([layout.uniform(10, 50), layout.uniform(30, 50), layout.uniform(22, 30)])
        tries += 1
        if all(np.linalg.norm(c - o) >= 20.0 for o in centres):
            centres.append(c)
        elif tries > _MAX_LAYOUT_TRIES:
            # The first two left no room for a third 20 mm away: draw the layout again
            # (same generator, so still deterministic; layouts that fit are unchanged).
            centres, tries = [], 0
    sigma = 0.75 * patch_radius_mm

    def taper(c: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * np.sum((xyz - c) ** 2, axis=1) / sigma**2)

    source = _ar1(rng, (n_frames,), 0.5)
    source = (source - source.mean()) / source.std()
    loading = -taper(centres[0]) + 0.5 * -taper(centres[1]) + 1.0 * taper(centres[2])
    loading[seed_voxels] = 2.0  # the seed carries s(t) (as the sgACC in the full simulator)
    noise = _ar1(rng, (n_frames, *_SHAPE), 0.5)
    noise_sigma = noise_fwhm_mm / (_VOXEL_MM * np.sqrt(8 * np.log(2)))
    if noise_sigma > 0:
        noise = ndimage.gaussian_filter(noise, sigma=(0, noise_sigma, noise_sigma, noise_sigma))
    noise = noise.reshape(n_frames, -1)
    noise /= noise.std(axis=0, keepdims=True)
    data = noise + snr * source[:, None] * loading[None, :].astype(np.float32)
    data -= data.mean(axis=0)
    data /= data.std(axis=0, ddof=1)
    return TargetingBlock(
        data=data.astype(np.float32), brain_mask=brain, affine=np.diag([_VOXEL_MM] * 3 + [1.0]),
        seed_voxels=seed_voxels, search_voxels=search_voxels, space="synthetic",
        target_mm=centres[0], t_r=float(t_r),
    )
