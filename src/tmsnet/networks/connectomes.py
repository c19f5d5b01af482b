"""Parcellated functional connectomes from a BOLD image or a ROI time-series table.

Pipeline
--------
1. **Region time series.** From a 4D BOLD image: the run is loaded and
   validated by :func:`tmsnet.io.fmriprep.load_bold` and cleaned by
   :func:`tmsnet.fmri.cleaning.clean_bold` -- the *same* code and confound
   strategies as the targeting pipeline (``simple``, ``scrubbing``,
   ``minimal``, ``none``; global signal regression a recorded choice) --
   without smoothing and without the final z-scoring; each region's series is
   then the mean of its cleaned in-mask voxels. Every cleaning step before the
   z-scoring is linear and identical for all voxels, so this equals cleaning
   the region means (what ``nilearn.maskers.NiftiLabelsMasker`` with the same
   cleaning would give). From a table of region means (frames x regions):
   :func:`clean_roi_timeseries` runs the same ``clean_bold`` on the table's
   columns. A table whose confound columns do not follow fMRIPrep's names
   can name them explicitly (``confound_columns``); those are regressed with
   ``nilearn.signal.clean`` -- the reference that ``clean_bold`` reproduces.
2. **Connectivity.** ``nilearn.connectome.ConnectivityMeasure`` with kind
   ``correlation``, ``partial correlation`` or ``tangent`` (Varoquaux et al.
   2010, MICCAI; tangent needs a group: each subject's matrix is expressed in
   the tangent space at the group's geometric mean). Covariances are
   estimated with Ledoit-Wolf shrinkage (nilearn's default) or empirically.

Edges for group statistics are Fisher z values (``arctanh r``) for
correlation and partial correlation, and the tangent-space values themselves
for ``tangent`` (:func:`edge_values`).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.exceptions import (
    ConfoundsError,
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidParameterError,
    UnknownMethodError,
)
from tmsnet.fmri.cleaning import BoldCleaningParameters, clean_bold
from tmsnet.io.fmriprep import BoldData, load_bold, load_confounds_table
from tmsnet.networks.atlases import Atlas
from tmsnet.networks.results import Connectome

__all__ = [
    "CONNECTIVITY_KINDS",
    "Connectome",
    "clean_roi_timeseries",
    "compute_connectomes",
    "connectome_from_bold",
    "edge_values",
    "load_roi_timeseries",
    "plot_connectome_matrix",
    "read_connectome",
    "region_timeseries_from_bold",
    "write_connectome",
]

#: Connectivity kinds (nilearn ``ConnectivityMeasure``).
CONNECTIVITY_KINDS: tuple[str, ...] = ("correlation", "partial correlation", "tangent")
_COV_ESTIMATORS = ("ledoit-wolf", "empirical")


def _check_kind(kind: str) -> str:
    kind = kind.replace("_", " ").replace("-", " ")
    if kind == "partial":
        kind = "partial correlation"
    if kind not in CONNECTIVITY_KINDS:
        raise UnknownMethodError(
            f"Unknown connectivity kind {kind!r}; choose one of {', '.join(CONNECTIVITY_KINDS)}."
        )
    return kind


def load_roi_timeseries(path: str | Path) -> pd.DataFrame:
    """Read a table of region time series (frames x regions, tab-separated, header).

    Parameters
    ----------
    path : str or Path
        TSV with one column per region (header = region label values or
        names) and one row per frame.

    Returns
    -------
    pandas.DataFrame
        Float values; ``n/a`` read as NaN.

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    InvalidParameterError
        Non-numeric or missing values.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"Time-series table {p} does not exist.")
    table = pd.read_csv(p, sep="\t", na_values=["n/a"])
    try:
        table = table.apply(pd.to_numeric, errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"{p.name} must hold numbers only (frames x regions, tab-separated, header row): {exc}"
        ) from exc
    if table.isna().any().any():
        bad = table.columns[table.isna().any()].tolist()[:10]
        raise InvalidParameterError(f"{p.name} has missing values in columns {bad}; fill or drop them.")
    return table


def _as_bold(values: np.ndarray, t_r: float, path: Path | None) -> BoldData:
    """Wrap a (frames x regions) array as BoldData so clean_bold can run on it."""
    n_frames, n_cols = values.shape
    ref = nib.Nifti1Image(np.zeros((n_cols, 1, 1), dtype=np.uint8), np.eye(4))
    return BoldData(
        path=path or Path("<roi-table>"),
        reference=ref,
        mask=np.ones((n_cols, 1, 1), dtype=bool),
        data=np.ascontiguousarray(values, dtype=np.float32),
        t_r=float(t_r),
        space="n/a",
        n_frames=n_frames,
        n_voxels_excluded={"nan": 0, "constant": 0},
        mask_path=None,
        mask_source="roi-table",
        t_r_source="argument",
    )


def clean_roi_timeseries(
    timeseries: np.ndarray | pd.DataFrame,
    confounds: pd.DataFrame | None,
    *,
    t_r: float,
    cleaning: BoldCleaningParameters | None = None,
    confound_columns: list[str] | tuple[str, ...] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Denoise region time series with the targeting pipeline's cleaning.

    Parameters
    ----------
    timeseries : array or DataFrame, shape (n_frames, n_regions)
        Raw region means.
    confounds : DataFrame or None
        Confounds table, one row per frame (fMRIPrep names unless
        ``confound_columns`` is given).
    t_r : float
        Repetition time (s).
    cleaning : BoldCleaningParameters, optional
        The targeting pipeline's cleaning (confound strategy, global signal
        regression, band-pass edges in Hz, discarded frames, censoring,
        shortest scan); default its defaults. No smoothing is applied (its
        ``smoothing_fwhm_mm`` is not used: regions are averages already).
    confound_columns : list of str, optional
        Regress exactly these columns instead of a strategy (for tables that
        are not fMRIPrep's); cleaned with ``nilearn.signal.clean``
        (detrend, Butterworth band-pass, confounds standardised, z-score);
        the band, discarded frames and shortest scan come from ``cleaning``.

    Returns
    -------
    cleaned : ndarray of float64, shape (n_kept, n_regions)
        z-scored cleaned series.
    parameters : dict
        Every cleaning choice.

    Raises
    ------
    ConfoundsError
        Missing columns, wrong row count.
    UnknownMethodError
        Unknown strategy.
    """
    values = np.asarray(timeseries, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise InvalidParameterError(
            f"timeseries must be a 2D (frames x regions) array with >= 2 regions, got shape {values.shape}."
        )
    cleaning = (cleaning or BoldCleaningParameters()).replace(smoothing_fwhm_mm=None)
    if confound_columns is not None:
        return _clean_with_columns(values, confounds, list(confound_columns), t_r=t_r, cleaning=cleaning)
    bold = _as_bold(values, t_r, None)
    cleaned, params = clean_bold(bold, confounds, cleaning)
    params.pop("smoothing_sigma_voxels", None)
    return cleaned.astype(np.float64), params


def _clean_with_columns(
    values: np.ndarray,
    confounds: pd.DataFrame | None,
    confound_columns: list[str],
    *,
    t_r: float,
    cleaning: BoldCleaningParameters,
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`clean_roi_timeseries` with named confound columns (``nilearn.signal.clean``)."""
    from nilearn.signal import clean

    from tmsnet.io.fmriprep import check_scan_length

    if confounds is None:
        raise ConfoundsError("confound_columns were given but no confounds table; give the table.")
    if len(confounds) != values.shape[0]:
        raise ConfoundsError(
            f"The confounds table has {len(confounds)} rows but the time series has {values.shape[0]} "
            "frames; give the table of the same run."
        )
    missing = [c for c in confound_columns if c not in confounds.columns]
    if missing:
        raise ConfoundsError(
            f"Confound columns {missing} are not in the table (it has {list(confounds.columns)[:20]}...)."
        )
    low_pass_hz, high_pass_hz = cleaning.low_pass_hz, cleaning.high_pass_hz
    discard_frames = cleaning.discard_frames
    if not 0 <= discard_frames < values.shape[0]:
        raise InvalidParameterError(f"discard_frames must be in 0..{values.shape[0] - 1}.")
    conf = confounds[confound_columns].iloc[discard_frames:].to_numpy(dtype=float)
    if np.isnan(conf).any():
        raise ConfoundsError(
            f"Confound columns {confound_columns} hold missing values after discarding {discard_frames} "
            "frames; discard more frames or choose other columns."
        )
    data = values[discard_frames:]
    check_scan_length(data.shape[0], t_r, min_frames=cleaning.min_frames,
                      min_duration_min=cleaning.min_duration_min)
    cleaned = clean(
        data,
        confounds=conf,
        t_r=t_r,
        detrend=True,
        standardize="zscore_sample",
        standardize_confounds=True,
        filter="butterworth",
        low_pass=low_pass_hz,
        high_pass=high_pass_hz,
    )
    params = {
        "confound_strategy": "custom-columns",
        "confound_columns": list(confound_columns),
        "n_confounds": len(confound_columns),
        "global_signal": "global_signal" in confound_columns,
        "discarded_frames": int(discard_frames),
        "n_frames_total": int(values.shape[0]),
        "n_frames_kept": int(data.shape[0]),
        "t_r_s": float(t_r),
        "high_pass_hz": high_pass_hz,
        "low_pass_hz": low_pass_hz,
        "detrend": True,
        "standardize": "zscore_sample",
        "implementation": "nilearn.signal.clean (butterworth, standardize_confounds=True)",
    }
    return np.asarray(cleaned, dtype=np.float64), params


def region_timeseries_from_bold(
    bold: BoldData,
    atlas: Atlas,
    cleaned: np.ndarray,
    *,
    min_voxels: int = 1,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Mean cleaned time series of each atlas region.

    Parameters
    ----------
    bold : BoldData
        The loaded run (its mask and grid).
    atlas : Atlas
        Parcellation; resampled to the BOLD grid (nearest neighbour) when the
        grids differ.
    cleaned : ndarray, shape (n_kept, n_voxels)
        Cleaned in-mask data (columns as ``bold.data``).
    min_voxels : int
        Fewest in-mask voxels a region must have.

    Returns
    -------
    ndarray of float64, shape (n_kept, n_regions)
        Region means, in atlas order.
    dict
        Voxel count per region and whether the atlas was resampled.

    Raises
    ------
    EmptyRegionError
        A region has fewer than ``min_voxels`` voxels inside the brain mask.
    """
    ref = bold.reference
    atlas_img = atlas.image
    resampled = False
    if atlas_img.shape[:3] != ref.shape[:3] or not np.allclose(atlas_img.affine, ref.affine, atol=1e-3):
        from nilearn.image import resample_to_img

        atlas_img = resample_to_img(
            atlas_img, ref, interpolation="nearest", force_resample=True, copy_header=True
        )
        resampled = True
    labels_grid = np.round(np.asanyarray(atlas_img.dataobj)).astype(np.int64)
    vox_labels = labels_grid[bold.mask]
    values = atlas.regions["label_value"].to_numpy()
    lookup = {int(v): i for i, v in enumerate(values)}
    index = np.array([lookup.get(int(v), -1) for v in range(int(vox_labels.max(initial=0)) + 1)])
    region_of_voxel = index[vox_labels]
    keep = region_of_voxel >= 0
    counts = np.bincount(region_of_voxel[keep], minlength=len(values))
    empty = np.flatnonzero(counts < min_voxels)
    if empty.size:
        names = [atlas.labels[i] for i in empty[:10]]
        raise EmptyRegionError(
            f"{empty.size} atlas regions have fewer than {min_voxels} voxels inside the brain mask "
            f"({names}...). Check that the BOLD and atlas are in the same space and the BOLD covers "
            "the whole brain, or use an atlas restricted to the field of view."
        )
    from scipy import sparse

    cols = np.flatnonzero(keep)
    averaging = sparse.csr_matrix(
        (1.0 / counts[region_of_voxel[cols]], (cols, region_of_voxel[cols])),
        shape=(cleaned.shape[1], len(values)),
    )
    means = np.asarray(averaging.T @ np.asarray(cleaned, dtype=np.float64).T).T
    return means, {"voxels_per_region": counts.tolist(), "atlas_resampled_to_bold": resampled}


def _measure(kind: str, cov_estimator: str) -> Any:
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance, LedoitWolf

    if cov_estimator not in _COV_ESTIMATORS:
        raise InvalidParameterError(f"cov_estimator must be one of {_COV_ESTIMATORS}, got {cov_estimator!r}.")
    est = LedoitWolf(store_precision=False) if cov_estimator == "ledoit-wolf" else EmpiricalCovariance()
    return ConnectivityMeasure(kind=kind, cov_estimator=est, standardize="zscore_sample")


def compute_connectomes(
    timeseries: list[np.ndarray],
    *,
    kind: str = "correlation",
    cov_estimator: str = "ledoit-wolf",
) -> np.ndarray:
    """Connectivity matrices of one or more subjects (nilearn ``ConnectivityMeasure``).

    Parameters
    ----------
    timeseries : list of ndarray, each (n_frames, n_regions)
        Cleaned region time series, same regions for all.
    kind : {"correlation", "partial correlation", "tangent"}
        Connectivity measure; ``tangent`` needs at least 2 subjects.
    cov_estimator : {"ledoit-wolf", "empirical"}
        Covariance estimator (Ledoit-Wolf shrinkage is nilearn's default;
        ``empirical`` gives plain Pearson correlations).

    Returns
    -------
    ndarray, shape (n_subjects, n_regions, n_regions)

    Raises
    ------
    UnknownMethodError
        Unknown kind.
    InvalidParameterError
        Tangent with one subject, or inconsistent region counts.
    """
    kind = _check_kind(kind)
    if not timeseries:
        raise InvalidParameterError("compute_connectomes needs at least one time series.")
    n_regions = {np.asarray(t).shape[1] for t in timeseries}
    if len(n_regions) != 1:
        raise InvalidParameterError(f"All subjects need the same regions; got region counts {n_regions}.")
    if kind == "tangent" and len(timeseries) < 2:
        raise InvalidParameterError(
            "The tangent kind describes each subject relative to the group mean and needs >= 2 subjects; "
            "give several time series, or use 'correlation' / 'partial correlation'."
        )
    return np.asarray(_measure(kind, cov_estimator).fit_transform([np.asarray(t) for t in timeseries]))


def edge_values(matrix: np.ndarray, kind: str) -> np.ndarray:
    """Values used for statistics: Fisher z for correlation kinds, tangent values as is.

    Parameters
    ----------
    matrix : ndarray, shape (..., n, n)
        Connectivity matrices.
    kind : str
        Their kind.

    Returns
    -------
    ndarray, same shape; the diagonal is set to 0.
    """
    kind = _check_kind(kind)
    out = np.array(matrix, dtype=np.float64)
    if kind != "tangent":
        out = np.arctanh(np.clip(out, -0.999999, 0.999999))
    idx = np.arange(out.shape[-1])
    out[..., idx, idx] = 0.0
    return out


def connectome_from_bold(
    bold_path: str | Path,
    confounds_path: str | Path | None,
    atlas: Atlas,
    *,
    kind: str = "correlation",
    cov_estimator: str = "ledoit-wolf",
    mask_path: str | Path | None = None,
    space: str | None = None,
    t_r: float | None = None,
    cleaning: BoldCleaningParameters | None = None,
) -> tuple[Connectome, np.ndarray]:
    """A subject's parcellated connectome from an fMRIPrep BOLD run.

    Parameters
    ----------
    bold_path, confounds_path : path
        fMRIPrep BOLD (4D) and its confounds TSV (None only with
        ``confound_strategy="none"`` and no GSR).
    atlas : Atlas
        Parcellation (e.g. :func:`tmsnet.networks.atlases.load_schaefer100`).
    kind : str
        ``correlation`` or ``partial correlation`` (tangent needs a group:
        use :func:`compute_connectomes` on several subjects' series).
    cov_estimator : {"ledoit-wolf", "empirical"}
        Covariance estimator.
    mask_path, space, t_r :
        As :func:`tmsnet.io.fmriprep.load_bold`.
    cleaning : BoldCleaningParameters, optional
        The targeting pipeline's cleaning (default its defaults), applied
        without smoothing and without the final z-scoring (each region's mean
        series is z-scored instead).

    Returns
    -------
    Connectome
    ndarray, shape (n_kept, n_regions)
        The cleaned region time series (z-scored).
    """
    kind = _check_kind(kind)
    bold = load_bold(bold_path, mask_path=mask_path, space=space, t_r=t_r)
    table = None if confounds_path is None else load_confounds_table(confounds_path, n_frames=bold.n_frames)
    cleaning = (cleaning or BoldCleaningParameters()).replace(smoothing_fwhm_mm=None, standardize=None)
    cleaned, params = clean_bold(bold, table, cleaning)
    series, region_info = region_timeseries_from_bold(bold, atlas, cleaned)
    del cleaned
    series = (series - series.mean(0)) / series.std(0, ddof=1)
    if atlas.space and atlas.space != bold.space:
        warnings.warn(
            f"The atlas is in {atlas.space} and the BOLD in {bold.space}; regions are taken on the BOLD "
            "grid without a template-to-template transform (differences of a few mm).",
            UserWarning,
            stacklevel=2,
        )
    matrix = compute_connectomes([series], kind=kind, cov_estimator=cov_estimator)[0]
    parameters = {
        "cleaning": params,
        "region_extraction": "mean of cleaned in-mask voxels per atlas label (unsmoothed)",
        **region_info,
        "atlas": atlas.name,
        "atlas_space": atlas.space,
        "kind": kind,
        "cov_estimator": cov_estimator,
        "connectivity_implementation": "nilearn.connectome.ConnectivityMeasure",
    }
    conn = Connectome(
        matrix=matrix,
        kind=kind,
        labels=atlas.labels,
        networks=atlas.networks,
        parameters=parameters,
        space=bold.space,
        inputs={
            "bold": bold.path,
            "confounds": None if confounds_path is None else Path(confounds_path),
            "mask": bold.mask_path,
            "atlas": atlas.path,
        },
    )
    return conn, series


def network_order(networks: np.ndarray, order: tuple[str, ...] | None = None) -> np.ndarray:
    """Stable permutation sorting regions by network (given order, then first appearance)."""
    nets = np.asarray(networks).astype(str)
    seen = list(dict.fromkeys(nets.tolist()))
    order = tuple(n for n in (order or ()) if n in seen) + tuple(n for n in seen if n not in (order or ()))
    rank = {n: i for i, n in enumerate(order)}
    return np.argsort(np.array([rank[n] for n in nets]), kind="stable")


def plot_connectome_matrix(
    matrix: np.ndarray,
    networks: np.ndarray,
    *,
    title: str = "",
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    label: str = "r",
) -> Any:
    """Matrix figure with regions ordered by network and network blocks outlined.

    Parameters
    ----------
    matrix : ndarray, shape (n, n)
        Values to show (diagonal hidden).
    networks : ndarray of str
        Network of each region.
    title : str
        Figure title.
    vmax : float, optional
        Colour limit (symmetric); default the 98th percentile of |values|.
    cmap : str
        Matplotlib colour map.
    label : str
        Colour-bar label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from tmsnet.networks.atlases import SCHAEFER_NETWORKS

    order = network_order(networks, SCHAEFER_NETWORKS)
    m = np.array(matrix, dtype=float)[np.ix_(order, order)]
    np.fill_diagonal(m, np.nan)
    nets = np.asarray(networks).astype(str)[order]
    if vmax is None:
        finite = np.abs(m[np.isfinite(m)])
        vmax = float(np.percentile(finite, 98)) if finite.size else 1.0
        vmax = vmax or 1.0
    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot(111)
    im = ax.imshow(m, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    bounds = np.flatnonzero(nets[1:] != nets[:-1]) + 1
    for b in bounds:
        ax.axhline(b - 0.5, color="k", lw=0.6)
        ax.axvline(b - 0.5, color="k", lw=0.6)
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [nets.size]))
    centers = (starts + ends - 1) / 2.0
    ax.set_xticks(centers)
    ax.set_xticklabels(nets[starts], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(centers)
    ax.set_yticklabels(nets[starts], fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    fig.tight_layout()
    return fig


def figure_png_bytes(fig: Any, *, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def write_connectome(
    connectome: Connectome,
    out_dir: str | Path,
    *,
    stem: str,
) -> dict[str, Path]:
    """Write a connectome as TSV, NPY and PNG, each with a JSON sidecar.

    Parameters
    ----------
    connectome : Connectome
        The result.
    out_dir : path
        Destination folder (created).
    stem : str
        BIDS-style file stem, e.g. ``sub-01_task-rest_atlas-Schaefer2018x100x7_meas-correlation``.

    Returns
    -------
    dict of str to Path
        ``{"tsv", "npy", "figure"}`` and their sidecars (``*_json``).

    Notes
    -----
    The TSV's header row holds the region names; row ``i`` is region ``i``.
    """
    from tmsnet.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_tsv, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for

    folder = ensure_output_dir(out_dir)
    written: dict[str, Path] = {}
    base = f"{stem}_relmat"
    table = pd.DataFrame(connectome.matrix, columns=connectome.labels)
    written["tsv"] = atomic_write_tsv(folder / f"{base}.tsv", table)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(connectome.matrix, dtype=np.float64))
    written["npy"] = atomic_write_bytes(folder / f"{base}.npy", buffer.getvalue())
    fig = plot_connectome_matrix(
        connectome.matrix,
        connectome.networks,
        title=f"{stem} ({connectome.kind})",
        label="tangent" if connectome.kind == "tangent" else "r",
    )
    written["figure"] = atomic_write_bytes(folder / f"{base}.png", figure_png_bytes(fig))
    extra = {
        "RegionNames": connectome.labels,
        "Networks": connectome.networks.tolist(),
        "Measure": connectome.kind,
    }
    for role in ("tsv", "npy", "figure"):
        sidecar = make_sidecar(
            description=f"{connectome.kind} connectivity matrix between atlas regions "
            f"({'region names in the header row' if role == 'tsv' else role}); "
            "regions ordered as RegionNames.",
            parameters=connectome.parameters,
            inputs=connectome.inputs,
            space=connectome.space,
            extra=extra,
        )
        path = sidecar_path_for(written[role]) if role != "npy" else written[role].with_suffix(".npy.json")
        if role == "figure":
            path = written[role].with_suffix(".png.json")
        written[f"{role}_json"] = atomic_write_json(path, sidecar)
    return written


def read_connectome(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Read a connectome TSV written by :func:`write_connectome` (or a headerless square TSV / NPY).

    Parameters
    ----------
    path : path
        ``*_relmat.tsv`` (header = region names) or ``.npy``.

    Returns
    -------
    matrix : ndarray, shape (n, n)
    labels : list of str

    Raises
    ------
    InputFileNotFoundError, InvalidParameterError
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"Connectome file {p} does not exist.")
    if p.suffix == ".npy":
        m = np.load(p)
        labels = [str(i) for i in range(m.shape[0])]
    else:
        table = pd.read_csv(p, sep="\t", na_values=["n/a"])
        m = table.to_numpy(dtype=float)
        labels = [str(c) for c in table.columns]
        if m.shape[0] == m.shape[1] - 1 or m.shape[0] != m.shape[1]:
            raw = pd.read_csv(p, sep="\t", header=None).to_numpy(dtype=float)
            m, labels = raw, [str(i) for i in range(raw.shape[0])]
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidParameterError(f"{p.name} is not a square matrix (shape {m.shape}).")
    if not np.allclose(m, m.T, atol=1e-6, equal_nan=True):
        raise InvalidParameterError(f"{p.name} is not symmetric; give an undirected connectome.")
    return m, labels
