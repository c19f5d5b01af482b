"""Deterministic synthetic resting-state fMRI with a planted sgACC-anticorrelated target.

The generator writes an fMRIPrep-like derivatives folder (BOLD in
``MNI152NLin2009cAsym`` at 2 mm, brain mask, confounds table) whose ground
truth is known: a band-limited source ``s(t)`` is carried with positive loading
by the sgACC seed (10 mm sphere at MNI (6, 16, -10); Fox et al. 2012, Biol
Psychiatry 72:595) and with *negative* loading by a small gray-matter patch in
the left-DLPFC search region (the planted target). The data are made to be
realistically hard rather than clean:

* a weaker anticorrelated decoy patch and a strong *positively* correlated
  decoy patch elsewhere in the search region;
* 3-5 large-scale networks (default-mode, fronto-parietal reaching the DLPFC,
  sensorimotor, visual, salience) driven by their own sources;
* a strong global signal with spatially varying positive weight;
* rigid-body motion (slow random walk plus sudden jerks) with a residual
  artifact that is a linear combination of the six parameters and their
  derivatives (so 24-parameter regression removes it);
* linear and quadratic drifts, a susceptibility-like intensity drop in ventral
  frontal and temporal cortex, and spatially smooth temporally autocorrelated
  noise plus a little thermal (white) noise.

All temporal sources are band-limited to 0.01-0.1 Hz. Every random number of
subject ``i`` is drawn from ``numpy.random.default_rng([seed, i, stream])``
streams, so a subject depends only on ``(seed, i, params)``.

Units: coordinates and distances in mm (MNI152), time in s, fluctuations in
percent signal change (PSC) of the voxel's baseline intensity (~1000).

References
----------
Power J.D. et al. (2012) Spurious but systematic correlations in functional
connectivity MRI networks arise from subject motion. NeuroImage 59:2142
(framewise displacement).
fMRIPrep confounds documentation, "Confounds estimated from BOLD"
(https://fmriprep.org/en/stable/outputs.html#confounds): column names,
``n/a`` in the first row of derivatives and FD, cosine (DCT) regressors for a
128 s high-pass.
Nichols T.E. (2013) Notes on creating a standardized version of DVARS,
arXiv:1704.01469 (``std_dvars``; as computed by nipype's ComputeDVARS).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage, signal

from tmsnet.data import load_brain_mask, load_gray_matter_mask, load_white_matter_mask
from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.atomic import (
    atomic_write_nifti,
    atomic_write_text,
    atomic_write_with,
    ensure_output_dir,
)
from tmsnet.io.bids import bids_name, derivatives_description, subject_folder

__all__ = [
    "BAND_HZ",
    "SimulatedSubject",
    "SimulationParameters",
    "band_limited_series",
    "cosine_basis",
    "framewise_displacement",
    "simulate_fmriprep_dataset",
    "simulate_subject_arrays",
]

#: Pass band (Hz) of every simulated neural / global / noise-free source.
BAND_HZ: tuple[float, float] = (0.01, 0.1)

#: Smallest number of frames accepted (the 0.01 Hz band edge is a 100 s period).
MIN_FRAMES = 50

#: Radius (mm) of the sphere on which rotations become displacements for FD
#: (Power et al. 2012).
FD_RADIUS_MM = 50.0

#: fMRIPrep's high-pass cut-off for the ``cosine*`` regressors (s).
COSINE_CUTOFF_S = 128.0

# ---------------------------------------------------------------------------
# Fixed generative constants (documented, not user parameters).
# ---------------------------------------------------------------------------
_BASELINE = 1000.0  # scanner units for a gray-matter voxel
_NOISE_PSC = 1.0  # std (PSC) of the smooth noise in a typical gray-matter voxel
_NOISE_AR1 = 0.5  # lag-1 autocorrelation of the smooth noise (TR-independent)
_WHITE_FRACTION = 0.35  # thermal noise std / _NOISE_PSC, in scanner units at baseline
_SEED_RADIUS_MM = 10.0  # sgACC sphere (Fox 2012)
_SEARCH_RADIUS_MM = 20.0  # DLPFC search spheres (as contarg's DLPFCspheres; REFERENCES.md section 1)
_SEED_GAIN = 2.0  # sgACC loading of s(t) relative to the target's (s is sgACC activity)
_POSITIVE_DECOY_STRENGTH = 1.0  # loading of the +s(t) decoy relative to the target
_MIN_SEPARATION_MM = 25.0  # target/decoy distances
_TARGET_DEPTH_MM = 7.0  # patch centres lie this deep inside the search spheres
_DECOY_DEPTH_MM = 5.0
_TAPER_SIGMA_FRACTION = 0.75  # Gaussian taper sigma of a patch / its radius
_TEXTURE_SD = 0.7  # log-sd of the loading texture of the patches (cortical heterogeneity)
_TEXTURE_SIGMA_MM = 4.5  # spatial sigma of that texture (mm)
_GM_FULL = 0.6  # gray-matter probability at which a voxel carries full neural loading
_NETWORK_PSC = 0.6  # peak loading (PSC) of a network source
_MOTION_PSC_PER_MM = 0.6  # residual motion artifact (PSC per mm of displacement)
_DRIFT_PSC = (1.5, 0.8)  # linear and quadratic drift amplitudes (PSC)

# Random stream identifiers: rng = default_rng([seed, subject_index, stream]).
_STREAM_PLACEMENT = 1
_STREAM_SOURCES = 2
_STREAM_MOTION = 3
_STREAM_FIELDS = 4
_STREAM_NOISE = 5
_STREAM_WHITE = 6
_STREAM_PHYSIO = 7
_STREAM_PARCELS = 8

# ---------------------------------------------------------------------------
# Published coordinates of what is planted (independent truth).
# ---------------------------------------------------------------------------
# The simulator holds its own copy of the published numbers instead of taking them
# from tmsnet.targeting (or the package's coordinate table), so that a wrong seed or
# search region in the code under test cannot move the planted truth with it.
# Source: ../shared/REFERENCES.md section 1, Fox et al. (2012) Biol Psychiatry 72:595.

#: sgACC seed centre (MNI152 mm), right hemisphere (Fox 2012).
_SGACC_MM: tuple[float, float, float] = (6.0, 16.0, -10.0)

#: The four standard left-DLPFC targets (MNI152 mm; Fox 2012 Table 1): the search
#: region is the union of ``_SEARCH_RADIUS_MM`` spheres around them, in gray matter.
_DLPFC_STANDARD_MM: dict[str, tuple[float, float, float]] = {
    "five_cm_rule": (-41.0, 16.0, 54.0),  # group mean of the 5-cm rule
    "ba9": (-36.0, 39.0, 43.0),
    "ba46": (-44.0, 40.0, 29.0),
    "f3_beam": (-37.0, 26.0, 49.0),  # F3, Beam method
}

#: Networks: name -> blob centres (MNI mm), blob sigma (mm). Centres are jittered
#: per subject. The fronto-parietal network reaches the left DLPFC on purpose.
_NETWORKS: dict[str, tuple[tuple[tuple[float, float, float], ...], float]] = {
    "default_mode": (((0, -54, 28), (0, 52, 8), (-46, -66, 32), (46, -66, 32)), 10.0),
    "frontoparietal": (((-44, 30, 34), (44, 30, 34), (-44, -54, 46), (44, -54, 46)), 9.0),
    "sensorimotor": (((-38, -24, 56), (38, -24, 56), (0, -12, 60)), 10.0),
    "visual": (((0, -84, 6), (-22, -90, 0), (22, -90, 0)), 10.0),
    "salience": (((0, 22, 36), (-38, 14, 0), (38, 14, 0)), 8.0),
}

#: Susceptibility-like intensity drop: centre (mm), sigma (mm), depth (0-1).
_DROPOUTS: tuple[tuple[tuple[float, float, float], float, float], ...] = (
    ((0.0, 32.0, -24.0), 12.0, 0.55),
    ((-42.0, -8.0, -34.0), 12.0, 0.45),
    ((42.0, -8.0, -34.0), 12.0, 0.45),
)


@dataclass(frozen=True)
class SimulationParameters:
    """Parameters of the synthetic resting-state scan.

    Parameters
    ----------
    n_frames : int
        Number of volumes (default 300 = 10 min at TR 2 s); at least 50.
    t_r : float
        Repetition time in s (0.2-4.9 s so that 0.1 Hz is below Nyquist).
    snr : float
        Standard deviation of the planted source's signal at the target patch
        centre divided by the standard deviation of the smooth noise there
        (same definition for the sgACC seed). Default 0.3: the target is
        invisible in a single voxel's raw time series and only emerges from
        averaging over the seed and over the patch, as in real data.
    noise_fwhm_mm : float
        Spatial smoothness (FWHM, mm) of the structured noise; 0 = white.
    global_signal_scale : float
        Std of the global signal in a gray-matter voxel relative to the smooth
        noise std (default 1.0: as strong as the noise, so that correlations
        without global signal regression are shifted strongly positive).
    motion_scale : float
        Multiplier of the default head motion (1.0 gives a mean framewise
        displacement of roughly 0.1-0.2 mm, a compliant adult); 0 = no motion.
    target_radius_mm : float
        Radius of the planted patches (mm); loading tapers as a Gaussian with
        sigma = 0.75 * radius.
    decoy_strength : float
        Loading of the weaker anticorrelated decoy relative to the target
        (default 0.5), in [0, 1).
    space : str
        Space label written in file names (``space-`` entity).
    task : str
        Task label written in file names (``task-`` entity).
    parcel_strength : float
        Each planted patch (target and decoys) is also a coherent cortical
        parcel with its own local fluctuation, independent of the planted
        source: the std of that parcel signal at the patch centre relative to
        the smooth-noise std (default 1.0; 0 = none). Real cortex is organised
        in such parcels; without them, voxel-to-voxel coherence inside the DLPFC
        comes from noise alone and clustering methods (SNT) see no patch.
    scan_repeat : int
        Which repeated scan of the same subject (default 0). The anatomy, the
        planted target, the decoys and the network layout depend only on
        ``(seed, subject_index)``; the neural sources, physiology, motion and
        noise also depend on ``scan_repeat``. So two repeats are two sessions of
        one person with the same true target (test-retest).
    """

    n_frames: int = 300
    t_r: float = 2.0
    snr: float = 0.33
    noise_fwhm_mm: float = 6.0
    global_signal_scale: float = 1.0
    motion_scale: float = 1.0
    target_radius_mm: float = 8.0
    decoy_strength: float = 0.5
    space: str = "MNI152NLin2009cAsym"
    task: str = "rest"
    parcel_strength: float = 1.0
    scan_repeat: int = 0

    def validate(self) -> None:
        """Check every value; raise :class:`InvalidParameterError` if one is out of range."""
        if not isinstance(self.n_frames, int | np.integer) or isinstance(self.n_frames, bool):
            raise InvalidParameterError(f"n_frames must be an integer, got {self.n_frames!r}.")
        if self.n_frames < MIN_FRAMES:
            raise InvalidParameterError(
                f"n_frames must be >= {MIN_FRAMES} (the 0.01 Hz band edge needs >= 100 s of "
                f"data), got {self.n_frames}."
            )
        if not (0.2 <= self.t_r < 5.0):
            raise InvalidParameterError(
                f"t_r must be in [0.2, 5) s so that 0.1 Hz lies below the Nyquist frequency, "
                f"got {self.t_r}."
            )
        checks = {
            "snr": (self.snr, 0.0, 100.0, False),
            "noise_fwhm_mm": (self.noise_fwhm_mm, 0.0, 20.0, True),
            "global_signal_scale": (self.global_signal_scale, 0.0, 20.0, True),
            "motion_scale": (self.motion_scale, 0.0, 20.0, True),
            "target_radius_mm": (self.target_radius_mm, 2.0, 12.0, True),
            "parcel_strength": (self.parcel_strength, 0.0, 10.0, True),
        }
        for name, (value, low, high, closed_low) in checks.items():
            ok = np.isfinite(value) and (value >= low if closed_low else value > low)
            if not ok or value > high:
                bound = "[" if closed_low else "("
                raise InvalidParameterError(
                    f"{name} must be in {bound}{low}, {high}], got {value!r}."
                )
        if not (np.isfinite(self.decoy_strength) and 0.0 <= self.decoy_strength < 1.0):
            raise InvalidParameterError(
                "decoy_strength must be in [0, 1) (the decoy is weaker than the target), "
                f"got {self.decoy_strength!r}."
            )
        if not isinstance(self.scan_repeat, int | np.integer) or self.scan_repeat < 0:
            raise InvalidParameterError(
                f"scan_repeat must be a non-negative integer, got {self.scan_repeat!r}."
            )
        for name in ("space", "task"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isalnum():
                raise InvalidParameterError(
                    f"{name} must be a non-empty alphanumeric BIDS label, got {value!r}."
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary of all fields."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class SimulatedSubject:
    """One simulated subject written to disk.

    Attributes
    ----------
    subject : str
        BIDS label without ``sub-`` (``"01"``).
    bold_path, mask_path, confounds_path : Path
        The fMRIPrep-like files.
    target_mm : tuple of float
        Planted target (mm): loading-weighted centroid of the target patch
        voxels inside the search region.
    truth : dict
        This subject's entry of ``ground_truth.json``.
    """

    subject: str
    bold_path: Path
    mask_path: Path
    confounds_path: Path
    target_mm: tuple[float, float, float]
    truth: dict


# ---------------------------------------------------------------------------
# Small public helpers (also used by the tests).
# ---------------------------------------------------------------------------
def band_limited_series(
    rng: np.random.Generator,
    n_frames: int,
    t_r: float,
    *,
    n_series: int = 1,
    band: Sequence[float] = BAND_HZ,
    order: int = 4,
) -> np.ndarray:
    """Gaussian noise band-pass filtered to ``band`` (Hz), unit variance.

    A zero-phase Butterworth filter (``scipy.signal.sosfiltfilt``) is run on a
    longer series (three periods of the lowest frequency are added on each
    side) and the middle is kept, so the result is stationary with no edge
    transient.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    n_frames : int
        Length of each series.
    t_r : float
        Sampling interval (s).
    n_series : int
        Number of independent series.
    band : (low, high)
        Pass band in Hz.
    order : int
        Butterworth order.

    Returns
    -------
    ndarray, shape (n_series, n_frames)
        float64, each row zero-mean and unit standard deviation.
    """
    nyquist = 0.5 / t_r
    sos = signal.butter(order, [band[0] / nyquist, band[1] / nyquist], btype="bandpass",
                        output="sos")
    pad = int(np.ceil(3.0 / (band[0] * t_r)))
    raw = rng.standard_normal((n_series, n_frames + 2 * pad))
    series = signal.sosfiltfilt(sos, raw, axis=-1)[:, pad : pad + n_frames]
    series -= series.mean(axis=1, keepdims=True)
    series /= series.std(axis=1, keepdims=True)
    return series


def framewise_displacement(motion: np.ndarray, radius_mm: float = FD_RADIUS_MM) -> np.ndarray:
    """Framewise displacement (Power et al. 2012, NeuroImage 59:2142).

    ``FD_t = sum |diff(trans_xyz)| + radius * sum |diff(rot_xyz)|``.

    Parameters
    ----------
    motion : ndarray, shape (n_frames, 6)
        ``trans_x, trans_y, trans_z`` (mm) then ``rot_x, rot_y, rot_z`` (rad).
    radius_mm : float
        Head radius used to turn rotations into arc lengths (50 mm).

    Returns
    -------
    ndarray, shape (n_frames,)
        FD in mm; the first value is NaN (fMRIPrep writes ``n/a``).
    """
    motion = np.asarray(motion, dtype=float)
    diff = np.abs(np.diff(motion, axis=0))
    fd = diff[:, :3].sum(axis=1) + radius_mm * diff[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def cosine_basis(n_frames: int, t_r: float, cutoff_s: float = COSINE_CUTOFF_S) -> np.ndarray:
    """Discrete cosine (DCT-II) high-pass regressors, as fMRIPrep's ``cosine*`` columns.

    The number of regressors is ``floor(2 * n_frames * t_r / cutoff_s)``; column
    ``k`` is ``sqrt(2 / n) * cos(pi / n * (t + 0.5) * (k + 1))`` (the constant is
    left out), following nipype's/nilearn's cosine drift model used by fMRIPrep.

    Parameters
    ----------
    n_frames : int
        Number of volumes.
    t_r : float
        Repetition time (s).
    cutoff_s : float
        High-pass period (s); fMRIPrep uses 128 s.

    Returns
    -------
    ndarray, shape (n_frames, n_regressors)
    """
    order = min(n_frames - 1, int(np.floor(2.0 * n_frames * t_r / cutoff_s)))
    t = np.arange(n_frames)[:, None] + 0.5
    k = np.arange(1, order + 1)[None, :]
    return np.sqrt(2.0 / n_frames) * np.cos(np.pi / n_frames * t * k)


def _orthonormal_rows(series: np.ndarray) -> np.ndarray:
    """Make rows exactly uncorrelated in the sample (Gram-Schmidt in row order), unit std.

    Linear combinations of band-limited series stay band-limited. The planted
    source (row 0) is unchanged up to scale; the global signal and networks are
    made orthogonal to it so that a chance sample correlation between them
    cannot cancel or fake the planted anticorrelation.
    """
    centred = series - series.mean(axis=1, keepdims=True)
    q, r = np.linalg.qr(centred.T)
    q = q * np.sign(np.diag(r))[None, :]
    out = q.T / q.T.std(axis=1, keepdims=True)
    return out


# ---------------------------------------------------------------------------
# Anatomy (computed once per process).
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Anatomy:
    reference: nib.Nifti1Image  # 3D brain-mask image (grid + header)
    brain: np.ndarray  # bool, grid
    index: np.ndarray  # int, grid -> row in the in-mask arrays (-1 outside)
    xyz: np.ndarray  # (V, 3) mm of brain voxels
    p_gm: np.ndarray  # (V,) gray-matter probability
    p_wm: np.ndarray  # (V,)
    p_csf: np.ndarray  # (V,)
    gm_mask: np.ndarray  # (V,) bool, nilearn GM mask (as used by the search region)
    search: np.ndarray  # (V,) bool, default DLPFC search region
    search_depth_mm: np.ndarray  # (V,) depth inside the union of search spheres (mm)
    seed: np.ndarray  # (V,) bool, sgACC 10 mm sphere
    wm_region: np.ndarray  # (V,) bool, white-matter confound region
    csf_region: np.ndarray  # (V,) bool, CSF confound region
    bbox: tuple[slice, slice, slice]
    edge: np.ndarray  # (V,) 0-1, closeness to the brain surface


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _voxel_coordinates_mm(shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm), shape ``(*shape, 3)``, of every voxel centre of a 3D grid."""
    ijk = np.moveaxis(np.indices(tuple(shape[:3]), dtype=np.float64), 0, -1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _spheres(coords: np.ndarray, centres_mm: Sequence[Sequence[float]], radius_mm: float) -> np.ndarray:
    """Voxels (bool, grid) whose centre lies within ``radius_mm`` of any of ``centres_mm``."""
    mask = np.zeros(coords.shape[:-1], dtype=bool)
    for centre in centres_mm:
        mask |= np.sum((coords - np.asarray(centre, dtype=float)) ** 2, axis=-1) <= radius_mm**2
    return mask


def _gray_matter_on(reference: nib.Nifti1Image) -> np.ndarray:
    """Nilearn's MNI152 gray-matter mask (bool, grid); it shares the brain mask's 2 mm grid."""
    gm = load_gray_matter_mask(resolution=2)
    if gm.shape != reference.shape or not np.allclose(gm.affine, reference.affine):  # pragma: no cover
        raise RuntimeError("nilearn's MNI152 gray-matter mask is not on the brain-mask grid")
    return np.asarray(gm.dataobj) > 0


@lru_cache(maxsize=1)
def _anatomy() -> _Anatomy:
    from nilearn.datasets import load_mni152_gm_template, load_mni152_wm_template

    ref = load_brain_mask(2)
    brain = np.asarray(ref.dataobj) > 0
    shape, affine = brain.shape, ref.affine
    index = np.full(shape, -1, dtype=np.int64)
    index[brain] = np.arange(int(brain.sum()))
    coords = _voxel_coordinates_mm(shape, affine)
    xyz = coords[brain]

    gm_prob = np.asarray(load_mni152_gm_template(resolution=2).get_fdata(), dtype=np.float64)
    wm_prob = np.asarray(load_mni152_wm_template(resolution=2).get_fdata(), dtype=np.float64)
    if gm_prob.shape != shape:  # pragma: no cover - nilearn ships both on one grid
        raise RuntimeError("nilearn's MNI152 templates are not on the brain-mask grid")
    p_gm = np.clip(gm_prob[brain], 0.0, 1.0)
    p_wm = np.clip(wm_prob[brain], 0.0, 1.0 - p_gm)
    p_csf = 1.0 - p_gm - p_wm

    # Search region: spheres at the published standard targets, in brain and gray matter.
    gray = _gray_matter_on(ref)
    spheres = _spheres(coords, list(_DLPFC_STANDARD_MM.values()), _SEARCH_RADIUS_MM)
    search3d = spheres & brain & gray
    seed3d = _spheres(coords, [_SGACC_MM], _SEED_RADIUS_MM) & brain
    depth = ndimage.distance_transform_edt(spheres, sampling=np.abs(np.diag(affine)[:3]))

    brain_depth = ndimage.distance_transform_edt(brain, sampling=np.abs(np.diag(affine)[:3]))
    wm3d = (np.asarray(load_white_matter_mask(2).dataobj) > 0) & brain
    wm_region = wm3d[brain] & (p_wm >= 0.9)
    csf_region = (p_csf >= 0.5) & (brain_depth[brain] >= 12.0)
    edge = np.exp(-np.maximum(brain_depth[brain] - 2.0, 0.0) / 8.0)

    nz = np.argwhere(brain)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    bbox = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    return _Anatomy(
        reference=ref,
        brain=_readonly(brain),
        index=_readonly(index),
        xyz=_readonly(xyz),
        p_gm=_readonly(p_gm),
        p_wm=_readonly(p_wm),
        p_csf=_readonly(p_csf),
        gm_mask=_readonly(gray[brain]),
        search=_readonly(search3d[brain]),
        search_depth_mm=_readonly(depth[brain]),
        seed=_readonly(seed3d[brain]),
        wm_region=_readonly(wm_region),
        csf_region=_readonly(csf_region),
        bbox=bbox,  # type: ignore[arg-type]
        edge=_readonly(edge),
    )


# ---------------------------------------------------------------------------
# Random fields and noise.
# ---------------------------------------------------------------------------
def _rng(seed: int, subject_index: int, stream: int, repeat: int = 0) -> np.random.Generator:
    key = [seed, subject_index, stream] if repeat == 0 else [seed, subject_index, stream, repeat]
    return np.random.default_rng(key)


def _blas_single_thread():
    """Context limiting BLAS to one thread.

    The separable smoothing runs many mid-sized matrix products; multi-threaded
    OpenBLAS on a busy machine can be ~10x slower than one thread, and one
    thread also makes the floating-point results independent of the core count.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _kernel_matrix(fine: np.ndarray, coarse: np.ndarray, sigma_mm: float) -> np.ndarray:
    """Gaussian interpolation matrix from coarse to fine positions, unit row energy."""
    if sigma_mm <= 0:
        k = (np.abs(fine[:, None] - coarse[None, :]) < 1e-6).astype(np.float64)
    else:
        k = np.exp(-0.5 * ((fine[:, None] - coarse[None, :]) / sigma_mm) ** 2)
        k[k < 1e-4] = 0.0
    k /= np.sqrt((k**2).sum(axis=1, keepdims=True))
    return k.astype(np.float32)


def _separable_gaussian_noise(
    rng: np.random.Generator,
    anat: _Anatomy,
    n: int,
    sigma_mm: float,
    *,
    ar1: float | None = None,
) -> np.ndarray:
    """Spatially smooth Gaussian noise on the brain voxels, unit variance per voxel.

    White noise on a coarse grid (2, 4 or 8 mm depending on ``sigma_mm``) is
    mapped to the 2 mm grid by a separable Gaussian kernel of standard
    deviation ``sigma_mm``: three large matrix products, far cheaper than
    filtering ~3e8 values. Each kernel row has unit energy, so every voxel has
    unit variance (no ripple from the coarse sampling). Optionally the last
    axis (time) follows an AR(1) recursion with a stationary start.

    Returns
    -------
    ndarray, shape (V, n), float32
    """
    voxel = 2.0
    if sigma_mm <= 0:
        step = voxel
    elif sigma_mm < 2.0:
        step = 2.0
    elif sigma_mm < 6.0:
        step = 4.0
    else:
        step = 8.0
    axes_fine = [np.arange(sl.start, sl.stop) * voxel for sl in anat.bbox]
    margin = 3.0 * sigma_mm
    if sigma_mm <= 0:
        axes_coarse = axes_fine
    else:
        axes_coarse = [np.arange(f[0] - margin, f[-1] + margin + step / 2, step)
                       for f in axes_fine]
    kx, ky, kz = (_kernel_matrix(f, c, sigma_mm)
                  for f, c in zip(axes_fine, axes_coarse, strict=True))
    nxc, nyc, nzc = (len(c) for c in axes_coarse)
    nxf, nyf, nzf = kx.shape[0], ky.shape[0], kz.shape[0]
    # Coarse white noise laid out (z, y, x, n) so that each contraction is one GEMM
    # on the leading axis followed by one transpose.
    white = rng.standard_normal((nzc, nyc, nxc, n), dtype=np.float32)
    if ar1 is not None and ar1 != 0.0:
        white[..., 0] /= np.float32(np.sqrt(1.0 - ar1**2))
        white = signal.lfilter([np.sqrt(1.0 - ar1**2)], [1.0, -ar1], white, axis=-1)
        white = white.astype(np.float32, copy=False)
    with _blas_single_thread():
        a = (kz @ white.reshape(nzc, -1)).reshape(nzf, nyc, nxc, n)  # (zf, yc, xc, n)
        del white
        a = np.ascontiguousarray(a.transpose(1, 0, 2, 3))  # (yc, zf, xc, n)
        b = (ky @ a.reshape(nyc, -1)).reshape(nyf, nzf, nxc, n)  # (yf, zf, xc, n)
        del a
        b = np.ascontiguousarray(b.transpose(2, 0, 1, 3))  # (xc, yf, zf, n)
        c = (kx @ b.reshape(nxc, -1)).reshape(nxf, nyf, nzf, n)  # (xf, yf, zf, n)
        del b
    return c[anat.brain[anat.bbox]]


def _smooth_fields(
    rng: np.random.Generator, anat: _Anatomy, sigma_mm: float, n: int
) -> np.ndarray:
    """``n`` smooth random fields on the brain voxels, each zero-mean, unit-std.

    Returns
    -------
    ndarray, shape (n, V), float64
    """
    fields_ = _separable_gaussian_noise(rng, anat, n, sigma_mm).T.astype(np.float64)
    fields_ -= fields_.mean(axis=1, keepdims=True)
    fields_ /= fields_.std(axis=1, keepdims=True)
    return fields_


# ---------------------------------------------------------------------------
# Planted patches.
# ---------------------------------------------------------------------------
def _gm_weight(anat: _Anatomy) -> np.ndarray:
    """Neural loading weight 0-1 from the gray-matter probability (partial volume)."""
    return np.clip(anat.p_gm / _GM_FULL, 0.0, 1.0)


def _patch(
    anat: _Anatomy, centre: np.ndarray, radius: float, texture: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Voxel rows and relative loadings of a gray-matter patch.

    Loading = Gaussian taper from the centre x gray-matter weight x a positive
    fine-grained texture (cortical heterogeneity), so that the patch has several
    local maxima rather than one perfect peak at its centre.
    """
    d2 = np.sum((anat.xyz - centre) ** 2, axis=1)
    rows = np.flatnonzero((d2 <= radius**2) & anat.gm_mask)
    sigma = radius * _TAPER_SIGMA_FRACTION
    smooth = np.exp(-0.5 * d2[rows] / sigma**2) * _gm_weight(anat)[rows]
    w = smooth * texture[rows]
    # The texture moves loading around inside the patch but keeps its total, so
    # that patch strengths (target vs decoys) compare as specified.
    if w.sum() > 0:
        w *= smooth.sum() / w.sum()
    keep = w > 0
    return rows[keep], w[keep]


def _centroid(xyz: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (xyz * weights[:, None]).sum(axis=0) / weights.sum()


def _place_patches(
    rng: np.random.Generator, anat: _Anatomy, radius: float, texture: np.ndarray
) -> list[dict[str, Any]]:
    """Draw target, anticorrelated decoy and correlated decoy centres."""
    gmw = _gm_weight(anat)
    base = anat.search & (gmw >= 1.0)
    target_pool = np.flatnonzero(base & (anat.search_depth_mm >= _TARGET_DEPTH_MM))
    decoy_pool = np.flatnonzero(base & (anat.search_depth_mm >= _DECOY_DEPTH_MM))
    for _attempt in range(200):
        chosen: list[dict[str, Any]] = []
        for role, pool in (("target", target_pool), ("anticorrelated_decoy", decoy_pool),
                           ("correlated_decoy", decoy_pool)):
            ok = np.ones(pool.size, dtype=bool)
            for other in chosen:
                dist = np.linalg.norm(anat.xyz[pool] - other["center"], axis=1)
                ok &= dist >= _MIN_SEPARATION_MM + 2.0
            candidates = pool[ok]
            if candidates.size == 0:
                break
            row = int(candidates[rng.integers(candidates.size)])
            centre = anat.xyz[row].copy()
            rows, w = _patch(anat, centre, radius, texture)
            inside = anat.search[rows]
            centroid = _centroid(anat.xyz[rows][inside], w[inside])
            chosen.append({"role": role, "center": centre, "rows": rows, "weights": w,
                           "centroid": centroid})
        if len(chosen) == 3:
            cents = [c["centroid"] for c in chosen]
            apart = all(np.linalg.norm(cents[i] - cents[j]) >= _MIN_SEPARATION_MM
                        for i in range(3) for j in range(i + 1, 3))
            if apart:
                return chosen
    raise InvalidParameterError(  # pragma: no cover - cannot happen with the default region
        "Could not place the target and two decoys >= 25 mm apart in the search region; "
        "use a smaller target_radius_mm."
    )


# ---------------------------------------------------------------------------
# Motion.
# ---------------------------------------------------------------------------
def _motion(rng: np.random.Generator, n_frames: int, scale: float) -> tuple[np.ndarray, list]:
    """Six rigid-body parameters: slow random walk plus a few sudden jerks.

    Returns
    -------
    motion : ndarray, shape (n_frames, 6)
        trans (mm), rot (rad).
    jerks : list of dict
        Frame, kind (``step`` or ``spike``) and duration of each jerk.
    """
    walk_sd = np.array([0.03, 0.04, 0.05, 0.0007, 0.0005, 0.0005])  # per frame (mm, rad)
    steps = rng.standard_normal((n_frames, 6)) * walk_sd
    steps[0] = 0.0
    walk = np.cumsum(steps, axis=0)
    # Slow smoothing of the walk (a few frames) so it looks like head drift.
    walk = ndimage.uniform_filter1d(walk, size=3, axis=0, mode="nearest")
    jerk_sd = np.array([0.15, 0.25, 0.3, 0.004, 0.003, 0.003])
    n_jerks = int(rng.integers(2, 6)) if n_frames >= 100 else int(rng.integers(1, 3))
    frames = np.sort(rng.choice(np.arange(5, n_frames - 2), size=n_jerks, replace=False))
    jerks = []
    for f in frames:
        amp = rng.standard_normal(6) * jerk_sd
        if rng.random() < 0.5:
            walk[f:] += amp
            jerks.append({"frame": int(f), "kind": "step", "n_frames": int(n_frames - f)})
        else:
            dur = int(rng.integers(1, 4))
            walk[f : f + dur] += amp
            jerks.append({"frame": int(f), "kind": "spike", "n_frames": dur})
    motion = (walk - walk[0]) * scale
    return motion, jerks


# ---------------------------------------------------------------------------
# The simulation.
# ---------------------------------------------------------------------------
@dataclass
class _Result:
    data: np.ndarray  # (V, T) int16 quantized BOLD of brain voxels
    slope: float  # scanner value = data * slope
    confounds: pd.DataFrame
    truth: dict


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _mm(v: np.ndarray) -> list[float]:
    return [round(float(x), 4) for x in v]


def _check_seed_and_index(seed: int, subject_index: int) -> None:
    """Raise :class:`InvalidParameterError` unless both are non-negative integers."""
    for name, value in (("seed", seed), ("subject_index", subject_index)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise InvalidParameterError(f"{name} must be a non-negative integer, got {value!r}.")


def _check_params(params: SimulationParameters) -> None:
    """Raise :class:`InvalidParameterError` unless ``params`` is a valid SimulationParameters."""
    if not isinstance(params, SimulationParameters):
        raise InvalidParameterError(
            f"params must be a SimulationParameters instance, got {type(params).__name__}."
        )
    params.validate()


@dataclass
class _Fields:
    """Random smooth spatial fields of one subject (unitless, about unit SD over voxels)."""

    bias: np.ndarray  # (V,) multiplicative bias of the baseline
    noise_var: np.ndarray  # (V,) log-scale variation of the noise SD
    global_signal: np.ndarray  # (V,) variation of the global-signal loading
    drift: np.ndarray  # (2, V) loadings of the Legendre drifts
    motion: np.ndarray  # (12, V) loadings of the motion parameters and their differences
    texture: np.ndarray  # (V,) fine texture of the seed and the patches (sigma _TEXTURE_SIGMA_MM)
    network_jitter: np.ndarray  # (n_networks, 4, 3) shifts of the network centres (mm)


def _spatial_fields(seed: int, subject_index: int, anat: _Anatomy) -> _Fields:
    """Draw the subject's smooth spatial fields (stream ``_STREAM_FIELDS``)."""
    frng = _rng(seed, subject_index, _STREAM_FIELDS)
    broad = _smooth_fields(frng, anat, 15.0, 17)  # sigma 15 mm (FWHM ~35 mm)
    texture = _smooth_fields(frng, anat, _TEXTURE_SIGMA_MM, 1)[0]  # seed/patch texture
    network_jitter = frng.normal(0.0, 4.0, size=(len(_NETWORKS), 4, 3))
    return _Fields(bias=broad[0], noise_var=broad[1], global_signal=broad[2], drift=broad[3:5],
                   motion=broad[5:17], texture=texture, network_jitter=network_jitter)


def _baseline(anat: _Anatomy, rand: _Fields) -> np.ndarray:
    """Baseline intensity (T2*-weighted EPI: CSF > GM > WM) with bias field and dropouts."""
    baseline = _BASELINE * (1.0 * anat.p_gm + 0.8 * anat.p_wm + 1.25 * anat.p_csf)
    baseline *= 1.0 + 0.06 * rand.bias
    for centre, sig, depth in _DROPOUTS:
        d2 = np.sum((anat.xyz - np.asarray(centre)) ** 2, axis=1)
        baseline *= 1.0 - depth * np.exp(-0.5 * d2 / sig**2)
    return baseline


def _noise_sd(anat: _Anatomy, rand: _Fields) -> np.ndarray:
    """Smooth-noise SD (PSC): larger in CSF, smaller in WM, smoothly varying."""
    noise_sd = _NOISE_PSC * (1.0 * anat.p_gm + 0.7 * anat.p_wm + 1.8 * anat.p_csf)
    noise_sd *= np.exp(0.12 * rand.noise_var)
    return noise_sd


@dataclass
class _Planted:
    """The planted target, decoys and seed of one subject."""

    patches: list[dict[str, Any]]  # target first, then the two decoys (see _place_patches)
    centre_row: int  # brain row nearest the target centre
    amplitude: float  # loading (PSC) at the target centre
    strengths: dict[str, float]  # relative loading of each patch role
    seed_rows: np.ndarray  # brain rows of the sgACC seed
    seed_load: np.ndarray  # their loading (PSC)


def _plant(seed: int, subject_index: int, params: SimulationParameters, anat: _Anatomy,
           rand: _Fields, noise_sd: np.ndarray) -> _Planted:
    """Place the target and the decoys (stream ``_STREAM_PLACEMENT``) and load the seed."""
    prng = _rng(seed, subject_index, _STREAM_PLACEMENT)
    texture = np.exp(_TEXTURE_SD * rand.texture - 0.5 * _TEXTURE_SD**2)
    patches = _place_patches(prng, anat, float(params.target_radius_mm), texture)
    centre_row = int(np.argmin(np.sum((anat.xyz - patches[0]["center"]) ** 2, axis=1)))
    amplitude = float(params.snr) * float(noise_sd[centre_row])  # PSC at patch centre
    seed_rows, seed_load = _seed_loading(params, anat, rand, noise_sd)
    strengths = {"target": -1.0, "anticorrelated_decoy": -float(params.decoy_strength),
                 "correlated_decoy": _POSITIVE_DECOY_STRENGTH}
    return _Planted(patches=patches, centre_row=centre_row, amplitude=amplitude,
                    strengths=strengths, seed_rows=seed_rows, seed_load=seed_load)


def _seed_loading(params: SimulationParameters, anat: _Anatomy, rand: _Fields,
                  noise_sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brain rows of the sgACC seed and their loading (PSC) on the target source."""
    gmw = _gm_weight(anat)
    seed_rows = np.flatnonzero(anat.seed)
    d_seed = np.linalg.norm(anat.xyz[seed_rows] - np.asarray(_SGACC_MM), axis=1)
    seed_profile = (0.75 + 0.25 * np.exp(-0.5 * (d_seed / 6.0) ** 2)) * np.exp(
        0.1 * rand.texture[seed_rows]
    )
    seed_load = _SEED_GAIN * float(params.snr) * noise_sd[seed_rows] * seed_profile * np.maximum(
        gmw[seed_rows], 0.3
    )
    return seed_rows, seed_load


def _sources(seed: int, subject_index: int, params: SimulationParameters,
             n_patches: int) -> tuple[np.ndarray, np.ndarray]:
    """Neural time courses: target, global and network sources, and the patches' parcel signals.

    Returns
    -------
    sources : ndarray, shape (2 + n_networks, T)
        Orthonormal band-limited rows: target source, global signal, one per network.
    parcels : ndarray, shape (n_patches, T)
        Band-limited parcel signals, exactly uncorrelated with every source
        (Gram-Schmidt after them, which leaves those unchanged).
    """
    n_t, t_r = int(params.n_frames), float(params.t_r)
    srng = _rng(seed, subject_index, _STREAM_SOURCES, params.scan_repeat)
    sources = _orthonormal_rows(band_limited_series(srng, n_t, t_r, n_series=2 + len(_NETWORKS)))
    parcel_raw = band_limited_series(_rng(seed, subject_index, _STREAM_PARCELS, params.scan_repeat),
                                     n_t, t_r, n_series=n_patches)
    parcels = _orthonormal_rows(np.vstack([sources, parcel_raw]))[sources.shape[0]:]
    return sources, parcels


def _loadings(params: SimulationParameters, anat: _Anatomy, rand: _Fields,
              planted: _Planted) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Loadings (PSC, V x sources) of the target, global and network sources; network truth."""
    n_vox = anat.xyz.shape[0]
    gmw = _gm_weight(anat)
    loadings = np.zeros((n_vox, 1 + 1 + len(_NETWORKS)), dtype=np.float64)
    loadings[planted.seed_rows, 0] += planted.seed_load
    for p in planted.patches:
        loadings[p["rows"], 0] += planted.strengths[p["role"]] * planted.amplitude * p["weights"]
    loadings[:, 1] = (
        float(params.global_signal_scale) * _NOISE_PSC * (0.75 + 0.2 * rand.global_signal).clip(0.2)
        * (0.2 + 0.8 * gmw)
    )
    network_truth = []
    for k, (name, (centres, sig)) in enumerate(_NETWORKS.items()):
        blob = np.zeros(n_vox)
        jittered = []
        for j, c in enumerate(centres):
            cj = np.asarray(c, dtype=float) + rand.network_jitter[k, j]
            jittered.append(_mm(cj))
            d2 = np.sum((anat.xyz - cj) ** 2, axis=1)
            blob = np.maximum(blob, np.exp(-0.5 * d2 / sig**2))
        loadings[:, 2 + k] = _NETWORK_PSC * blob * (0.15 + 0.85 * gmw)
        network_truth.append({"name": name, "centers_mm": jittered, "sigma_mm": sig,
                              "peak_loading_psc": _NETWORK_PSC})
    return loadings, network_truth


def _parcel_loadings(params: SimulationParameters, anat: _Anatomy, patches: list[dict[str, Any]],
                     noise_sd: np.ndarray) -> np.ndarray:
    """Loadings (PSC, V x patches) of each patch's own parcel signal."""
    parcel_w = np.zeros((anat.xyz.shape[0], len(patches)), dtype=np.float64)
    for k, p in enumerate(patches):
        row = int(np.argmin(np.sum((anat.xyz - p["center"]) ** 2, axis=1)))
        parcel_w[p["rows"], k] = float(params.parcel_strength) * float(noise_sd[row]) * p["weights"]
    return parcel_w


def _physiology(seed: int, subject_index: int, params: SimulationParameters,
                anat: _Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """White-matter and CSF physiological signals (2, T) and their loadings (PSC, V x 2).

    Slow white-matter fluctuations and aliased cardiac/respiratory pulsation
    in CSF, one band-limited source each. They make the WM/CSF confounds
    differ from the global signal, as in real data, so global signal
    regression removes variance that WM/CSF regression does not (Power et al.
    2017, NeuroImage 146:609).
    """
    physio = band_limited_series(_rng(seed, subject_index, _STREAM_PHYSIO, params.scan_repeat),
                                 int(params.n_frames), float(params.t_r), n_series=2)
    physio_scale = float(params.global_signal_scale) * _NOISE_PSC
    physio_w = np.stack([physio_scale * anat.p_wm**4, 1.5 * physio_scale * anat.p_csf**4],
                        axis=1)
    return physio, physio_w


def _motion_regressors(seed: int, subject_index: int, params: SimulationParameters,
                       anat: _Anatomy, rand: _Fields
                       ) -> tuple[np.ndarray, list, np.ndarray, np.ndarray]:
    """Head motion (stream ``_STREAM_MOTION``) and its signal in the brain.

    Returns
    -------
    motion : ndarray, shape (T, 6)
        trans (mm), rot (rad).
    jerks : list of dict
        See :func:`_motion`.
    series : ndarray, shape (12, T)
        The six parameters and their frame-to-frame differences.
    weights : ndarray, shape (V, 12)
        Their loadings (PSC), larger at the brain's edge.
    """
    n_t = int(params.n_frames)
    mrng = _rng(seed, subject_index, _STREAM_MOTION, params.scan_repeat)
    motion, jerks = _motion(mrng, n_t, float(params.motion_scale))
    dmotion = np.vstack([np.zeros((1, 6)), np.diff(motion, axis=0)])
    unit = np.array([1.0, 1.0, 1.0, FD_RADIUS_MM, FD_RADIUS_MM, FD_RADIUS_MM])  # -> mm
    edge_gain = 0.4 + 1.6 * anat.edge
    motion_w = np.stack(
        [_MOTION_PSC_PER_MM * (0.5 + 0.5 * rand.motion[k]) * edge_gain * unit[k % 6]
         * (1.0 if k < 6 else 1.5) for k in range(12)],
        axis=1,
    )
    return motion, jerks, np.vstack([motion.T, dmotion.T]), motion_w


def _drift_regressors(rand: _Fields, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """Slow scanner drift: Legendre P1, P2 time courses (2, T) and their loadings (PSC, V x 2)."""
    tt = np.linspace(-1.0, 1.0, n_t)
    drift_t = np.stack([tt, 1.5 * tt**2 - 0.5])  # Legendre P1, P2
    drift_w = np.stack([_DRIFT_PSC[0] * rand.drift[0], _DRIFT_PSC[1] * rand.drift[1]],
                       axis=1)
    return drift_t, drift_w


def _scanner_bold(seed: int, subject_index: int, params: SimulationParameters, anat: _Anatomy,
                  spatial: np.ndarray, temporal: np.ndarray, noise_sd: np.ndarray,
                  baseline: np.ndarray) -> np.ndarray:
    """BOLD (V, T, float32, scanner units): smooth noise + low-rank signal on the baseline + white noise."""
    n_vox, n_t = anat.xyz.shape[0], int(params.n_frames)
    nrng = _rng(seed, subject_index, _STREAM_NOISE, params.scan_repeat)
    fwhm_to_sigma = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    psc = _separable_gaussian_noise(nrng, anat, n_t, float(params.noise_fwhm_mm) * fwhm_to_sigma,
                                    ar1=_NOISE_AR1)
    psc *= noise_sd.astype(np.float32)[:, None]
    psc += spatial @ temporal
    base32 = baseline.astype(np.float32)[:, None]
    bold = psc
    bold *= base32 * np.float32(0.01)
    bold += base32
    wrng = _rng(seed, subject_index, _STREAM_WHITE, params.scan_repeat)
    white_sd = np.float32(_WHITE_FRACTION * _NOISE_PSC * 0.01 * _BASELINE)
    bold += white_sd * wrng.standard_normal((n_vox, n_t), dtype=np.float32)
    return bold


def _quantize(bold: np.ndarray) -> tuple[np.ndarray, float]:
    """int16 data and the power-of-two slope (exact in float32) that scales them back."""
    peak = float(np.abs(bold).max())
    slope = float(2.0 ** np.ceil(np.log2(max(peak, 1e-6) / 32000.0)))
    return np.rint(bold / np.float32(slope)).astype(np.int16), slope


def _simulate(subject_index: int, seed: int, params: SimulationParameters) -> _Result:
    """Simulate one subject: quantized BOLD of the brain voxels, confounds and truth."""
    _check_seed_and_index(seed, subject_index)
    _check_params(params)
    anat = _anatomy()
    rand = _spatial_fields(seed, subject_index, anat)
    baseline = _baseline(anat, rand)
    noise_sd = _noise_sd(anat, rand)
    planted = _plant(seed, subject_index, params, anat, rand, noise_sd)
    sources, parcels = _sources(seed, subject_index, params, len(planted.patches))
    loadings, network_truth = _loadings(params, anat, rand, planted)
    parcel_w = _parcel_loadings(params, anat, planted.patches, noise_sd)
    physio, physio_w = _physiology(seed, subject_index, params, anat)
    motion, jerks, motion_t, motion_w = _motion_regressors(seed, subject_index, params, anat, rand)
    drift_t, drift_w = _drift_regressors(rand, int(params.n_frames))

    # Assemble (V, T) in PSC then scanner units; quantize to int16.
    temporal = np.vstack([sources, motion_t, drift_t, physio, parcels]).astype(np.float32)
    spatial = np.hstack([loadings, motion_w, drift_w, physio_w, parcel_w]).astype(np.float32)
    q, slope = _quantize(_scanner_bold(seed, subject_index, params, anat, spatial, temporal,
                                       noise_sd, baseline))
    values = q.astype(np.float32) * np.float32(slope)
    confounds = _confounds(values, anat, motion, float(params.t_r))
    del values
    truth = _truth(subject_index, seed, params, anat, planted, noise_sd, network_truth,
                   confounds, jerks, slope, sources[0])
    return _Result(data=q, slope=slope, confounds=confounds, truth=_jsonable(truth))


def _decoy_truth(planted: _Planted) -> list[dict[str, Any]]:
    """Truth of each decoy: role, sign, relative loading, centre, size, distance to the target."""
    target = planted.patches[0]
    decoys = []
    for p in planted.patches[1:]:
        decoys.append({
            "role": p["role"],
            "sign": -1 if p["role"] == "anticorrelated_decoy" else 1,
            "relative_loading": planted.strengths[p["role"]],
            "center_mm": _mm(p["center"]),
            "centroid_mm": _mm(p["centroid"]),
            "n_voxels": int(p["rows"].size),
            "distance_to_target_mm": round(float(np.linalg.norm(p["centroid"]
                                                                - target["centroid"])), 3),
        })
    return decoys


def _truth(subject_index: int, seed: int, params: SimulationParameters, anat: _Anatomy,
           planted: _Planted, noise_sd: np.ndarray, network_truth: list[dict[str, Any]],
           confounds: pd.DataFrame, jerks: list, slope: float,
           s_target: np.ndarray) -> dict[str, Any]:
    """The subject's ground truth (see :func:`simulate_fmriprep_dataset`)."""
    target = planted.patches[0]
    fd = confounds["framewise_displacement"].to_numpy()
    return {
        "subject": f"{subject_index + 1:02d}",
        "subject_index": int(subject_index),
        "seed": int(seed),
        "space": params.space,
        "target_mm": _mm(target["centroid"]),
        "target_center_mm": _mm(target["center"]),
        "target_radius_mm": float(params.target_radius_mm),
        "target_sigma_mm": float(params.target_radius_mm) * _TAPER_SIGMA_FRACTION,
        "target_n_voxels": int(target["rows"].size),
        "target_n_voxels_in_search": int(anat.search[target["rows"]].sum()),
        "target_amplitude_psc": round(planted.amplitude, 6),
        "target_sign": -1,
        "snr": float(params.snr),
        "noise_std_psc_at_target": round(float(noise_sd[planted.centre_row]), 6),
        "decoys": _decoy_truth(planted),
        "seed_region": {
            "name": "sgacc",
            "center_mm": _mm(np.asarray(_SGACC_MM)),
            "radius_mm": _SEED_RADIUS_MM,
            "n_voxels": int(planted.seed_rows.size),
            "mean_loading_psc": round(float(planted.seed_load.mean()), 6),
            "sign": 1,
        },
        "search_region": {"n_voxels": int(anat.search.sum()),
                          "centers": list(_DLPFC_STANDARD_MM),
                          "radius_mm": _SEARCH_RADIUS_MM},
        "networks": network_truth,
        "global_signal_scale": float(params.global_signal_scale),
        "motion": {
            "mean_fd_mm": round(float(np.nanmean(fd)), 6),
            "max_fd_mm": round(float(np.nanmax(fd)), 6),
            "jerks": jerks,
        },
        "bold_scale_slope": slope,
        "band_hz": list(BAND_HZ),
        "target_source": [float(v) for v in s_target],
    }


def _with_expansions(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    d = np.concatenate([[np.nan], np.diff(x)])
    return {name: x, f"{name}_derivative1": d, f"{name}_power2": x**2,
            f"{name}_derivative1_power2": d**2}


def _iqr_rows(data: np.ndarray) -> np.ndarray:
    """Inter-quartile range of each row (numpy's linear percentile), via one partition."""
    n = data.shape[1]
    pos = np.array([0.25, 0.75]) * (n - 1)
    lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    part = np.partition(data, sorted({*lo.tolist(), *hi.tolist()}), axis=1)
    q = part[:, lo] + (part[:, hi] - part[:, lo]) * (pos - lo)
    return (q[:, 1] - q[:, 0]).astype(np.float64)


def _dvars(values: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """DVARS and standardized DVARS, first row NaN.

    Follows nipype's ``ComputeDVARS`` (Nichols 2013, arXiv:1704.01469): data
    scaled so that the median voxel mean is 1000; DVARS is the RMS over voxels
    of the temporal difference; the standardized version divides by the mean
    over voxels of the expected difference SD, ``sqrt(2 (1 - ar1)) * IQR / 1.349``.

    Parameters
    ----------
    values : ndarray, shape (V, T)
        BOLD of the brain voxels.
    chunk : int
        Voxels processed at once.
    """
    n_vox, n_t = values.shape
    means = values.mean(axis=1, dtype=np.float64)
    scale = 1000.0 / float(np.median(means[means > 0])) if np.any(means > 0) else 1.0
    sq_sum = np.zeros(n_t - 1)
    diff_sd = np.zeros(n_vox)
    for start in range(0, n_vox, chunk):
        block = values[start : start + chunk]
        centred = block - means[start : start + chunk, None].astype(np.float32)
        denom = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)
        num = np.einsum("ij,ij->i", centred[:, 1:], centred[:, :-1], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ar1 = np.where(denom > 0, num / denom, 0.0)
        sd = _iqr_rows(block) / 1.349 * scale
        diff_sd[start : start + chunk] = np.sqrt(np.clip(2.0 * (1.0 - ar1), 0.0, None)) * sd
        diffs = np.diff(block, axis=1)
        sq_sum += np.einsum("ij,ij->j", diffs, diffs, dtype=np.float64)
    dvars = np.sqrt(sq_sum / n_vox) * scale
    expected = diff_sd.mean()
    std = dvars / expected if expected > 0 else np.full_like(dvars, np.nan)
    return np.concatenate([[np.nan], dvars]), np.concatenate([[np.nan], std])


def _confounds(values: np.ndarray, anat: _Anatomy, motion: np.ndarray, t_r: float
               ) -> pd.DataFrame:
    """fMRIPrep-style confounds table from the (quantized) BOLD and motion."""
    n_t = values.shape[1]
    cols: dict[str, np.ndarray] = {}
    cols.update(_with_expansions("global_signal", values.mean(axis=0, dtype=np.float64)))
    cols.update(_with_expansions("csf", values[anat.csf_region].mean(axis=0, dtype=np.float64)))
    cols.update(_with_expansions("white_matter",
                                 values[anat.wm_region].mean(axis=0, dtype=np.float64)))
    dvars, std_dvars = _dvars(values)
    cols["std_dvars"] = std_dvars
    cols["dvars"] = dvars
    cols["framewise_displacement"] = framewise_displacement(motion)
    for j, name in enumerate(("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")):
        cols.update(_with_expansions(name, motion[:, j]))
    cos = cosine_basis(n_t, t_r)
    for k in range(cos.shape[1]):
        cols[f"cosine{k:02d}"] = cos[:, k]
    return pd.DataFrame(cols)


# ---------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------
def _header(anat: _Anatomy, n_frames: int, t_r: float, dtype: type) -> nib.Nifti1Header:
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape((*anat.brain.shape, n_frames))
    hdr.set_zooms((2.0, 2.0, 2.0, float(t_r)))
    hdr.set_xyzt_units("mm", "sec")
    hdr.set_qform(anat.reference.affine, code=4)
    hdr.set_sform(anat.reference.affine, code=4)
    return hdr


def _mask_image(anat: _Anatomy) -> nib.Nifti1Image:
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.uint8)
    hdr.set_xyzt_units("mm")
    img = nib.Nifti1Image(anat.brain.astype(np.uint8), anat.reference.affine, hdr)
    img.set_qform(anat.reference.affine, code=4)
    img.set_sform(anat.reference.affine, code=4)
    return img


def _full_volume(anat: _Anatomy, rows: np.ndarray, dtype: type) -> np.ndarray:
    """Scatter (V, T) brain rows into a Fortran-ordered 4D grid (zero outside)."""
    n_t = rows.shape[1]
    full = np.zeros((*anat.brain.shape, n_t), dtype=dtype, order="F")
    full[anat.brain] = rows
    return full


def simulate_subject_arrays(
    *,
    subject_index: int,
    seed: int = 0,
    params: SimulationParameters = SimulationParameters(),  # noqa: B008 - frozen dataclass
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, pd.DataFrame, dict]:
    """Simulate one subject in memory.

    Parameters
    ----------
    subject_index : int
        0-based subject number (subject label ``f"{subject_index + 1:02d}"``).
    seed : int
        Dataset seed; the subject depends only on ``(seed, subject_index, params)``.
    params : SimulationParameters
        Simulation settings.

    Returns
    -------
    bold : Nifti1Image
        4D float32 BOLD on nilearn's MNI152 2 mm grid, zooms (2, 2, 2, t_r) mm/s,
        zero outside the brain mask. Values are exactly the ones written by
        :func:`simulate_fmriprep_dataset` (int16 times a power-of-two slope).
    mask : Nifti1Image
        uint8 brain mask.
    confounds : pandas.DataFrame
        fMRIPrep-style confounds (NaN in the first row of derivatives, FD, DVARS).
    truth : dict
        Ground truth (JSON-serializable), see :func:`simulate_fmriprep_dataset`.

    Raises
    ------
    InvalidParameterError
        If an argument is out of range.
    """
    result = _simulate(subject_index, seed, params)
    anat = _anatomy()
    values = result.data.astype(np.float32) * np.float32(result.slope)
    full = _full_volume(anat, values, np.float32)
    bold = nib.Nifti1Image(full, anat.reference.affine,
                           _header(anat, params.n_frames, params.t_r, np.float32))
    return bold, _mask_image(anat), result.confounds, result.truth


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def _confounds_sidecar(columns: Sequence[str]) -> dict[str, dict[str, str]]:
    desc = {
        "global_signal": "Mean BOLD signal within the brain mask.",
        "csf": "Mean BOLD signal within a deep CSF (ventricular) region.",
        "white_matter": "Mean BOLD signal within white matter (probability >= 0.9).",
        "framewise_displacement": "Framewise displacement (Power et al. 2012), 50 mm sphere.",
        "dvars": "DVARS (RMS of the temporal derivative over the brain; Nichols 2013).",
        "std_dvars": "Standardized DVARS (Nichols 2013; nipype ComputeDVARS).",
    }
    out = {}
    for c in columns:
        base = c.split("_derivative1")[0].split("_power2")[0]
        text = desc.get(base, "")
        if c.startswith("trans_"):
            text = "Translation (mm) from rigid-body realignment."
        elif c.startswith("rot_"):
            text = "Rotation (rad) from rigid-body realignment."
        elif c.startswith("cosine"):
            text = "Discrete cosine basis regressor for a 128 s high-pass filter."
        if c != base and not c.startswith("cosine"):
            text += " Expansion: " + c[len(base) + 1:] + "."
        out[c] = {"Description": text, "Method": "tmsnet.simulate (synthetic)"}
    return out


def _check_n_subjects(n_subjects: int) -> None:
    """Raise :class:`InvalidParameterError` unless 1 <= ``n_subjects`` <= 99 (an integer)."""
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, int | np.integer):
        raise InvalidParameterError(f"n_subjects must be an integer, got {n_subjects!r}.")
    if n_subjects < 1:
        raise InvalidParameterError(f"n_subjects must be >= 1, got {n_subjects}.")
    if n_subjects > 99:
        raise InvalidParameterError(
            f"n_subjects must be <= 99 (two-digit subject labels), got {n_subjects}."
        )


def _write_subject(out: Path, anat: _Anatomy, result: _Result, subject_index: int,
                   params: SimulationParameters) -> SimulatedSubject:
    """Write one subject's BOLD (+ sidecar), brain mask and confounds (+ sidecar) under ``out``."""
    space, task = params.space, params.task
    label = f"{subject_index + 1:02d}"
    entities = {"sub": label, "task": task}
    func = subject_folder(out, entities, "func")
    func.mkdir(parents=True, exist_ok=True)
    grid = {**entities, "space": space, "res": "2"}
    bold_path = func / bids_name({**grid, "desc": "preproc"}, "bold", ".nii.gz")
    mask_path = func / bids_name({**grid, "desc": "brain"}, "mask", ".nii.gz")
    conf_path = func / bids_name({**entities, "desc": "confounds"}, "timeseries", ".tsv")

    full = _full_volume(anat, result.data, np.int16)
    img = nib.Nifti1Image(full, anat.reference.affine,
                          _header(anat, params.n_frames, params.t_r, np.int16))
    img.header.set_slope_inter(result.slope, 0.0)
    # nibabel writes the int16 data with the slope set above (not rescaled).
    atomic_write_with(bold_path, img.to_filename, suffix=".tmp.nii.gz")
    del full, img
    _write_json(bold_path.with_name(bold_path.name.replace(".nii.gz", ".json")), {
        "RepetitionTime": float(params.t_r),
        "SkullStripped": False,
        "TaskName": task,
        "SliceTimingCorrected": False,
        "Sources": ["synthetic: tmsnet.simulate"],
    })
    atomic_write_nifti(mask_path, _mask_image(anat))
    atomic_write_text(conf_path, result.confounds.to_csv(sep="\t", index=False, na_rep="n/a",
                                                    lineterminator="\n"))
    _write_json(conf_path.with_suffix(".json"), _confounds_sidecar(list(result.confounds.columns)))
    return SimulatedSubject(
        subject=label,
        bold_path=bold_path,
        mask_path=mask_path,
        confounds_path=conf_path,
        target_mm=tuple(float(v) for v in result.truth["target_mm"]),  # type: ignore[arg-type]
        truth=result.truth,
    )


def simulate_fmriprep_dataset(
    out_dir: str | os.PathLike,
    *,
    n_subjects: int = 1,
    seed: int = 0,
    params: SimulationParameters = SimulationParameters(),  # noqa: B008 - frozen dataclass
    progress: bool = False,
) -> list[SimulatedSubject]:
    """Write an fMRIPrep-like derivatives folder of simulated resting-state scans.

    Layout (BIDS-Derivatives / fMRIPrep naming)::

        out_dir/dataset_description.json
        out_dir/ground_truth.json
        out_dir/sub-01/func/sub-01_task-rest_space-<space>_res-2_desc-preproc_bold.nii.gz (+ .json)
        out_dir/sub-01/func/sub-01_task-rest_space-<space>_res-2_desc-brain_mask.nii.gz
        out_dir/sub-01/func/sub-01_task-rest_desc-confounds_timeseries.tsv (+ .json)

    The BOLD is stored as int16 with a power-of-two ``scl_slope``: the data are
    ~1000 +/- a few %, so 16 bits keep a quantization step of ~0.06 (1/100 of
    the thermal noise) while halving the file size and the gzip time compared
    with float32 (gzip of random float32 mantissas is slow and barely shrinks).
    Files are written atomically (temporary name, then ``os.replace``) and
    deterministically (gzip without time stamp), so the same inputs give
    bit-identical files.

    Parameters
    ----------
    out_dir : path
        Output folder (created if missing).
    n_subjects : int
        Number of subjects (>= 1); subject ``i`` gets label ``f"{i + 1:02d}"``.
    seed : int
        Dataset seed (non-negative).
    params : SimulationParameters
        Simulation settings.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    list of SimulatedSubject

    Raises
    ------
    InvalidParameterError
        If an argument is out of range.
    OutputNotWritableError
        If ``out_dir`` cannot be created or written.
    """
    _check_n_subjects(n_subjects)
    _check_seed_and_index(seed, 0)
    _check_params(params)
    out = ensure_output_dir(out_dir)

    _write_json(out / "dataset_description.json", derivatives_description(
        "tmsnet simulated resting-state fMRI (planted sgACC-anticorrelated target)",
        generated_by="tmsnet.simulate"))

    anat = _anatomy()
    indices = range(int(n_subjects))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="simulating subjects", unit="subject")
    subjects: list[SimulatedSubject] = []
    truths: dict[str, dict] = {}
    for i in indices:
        result = _simulate(i, seed, params)
        subject = _write_subject(out, anat, result, i, params)
        truths[subject.subject] = result.truth
        subjects.append(subject)
        del result

    parameters = params.to_dict()
    parameters["seed"] = int(seed)
    _write_json(out / "ground_truth.json", {"parameters": parameters, "subjects": truths})
    return subjects

