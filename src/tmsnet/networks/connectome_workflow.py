"""The science of ``tmsnet connectome``: inputs -> cleaned region series -> connectomes -> summaries.

:func:`analyze_connectomes` reads fMRIPrep BOLD runs or ROI time-series
tables, cleans them with the targeting pipeline's cleaning, computes one
connectome per input and measure (tangent is fitted on the whole group) and
summarises each: network blocks, within/between means, graph measures and
the target region's network profile. It writes nothing: the writer is
:func:`tmsnet.networks.outputs.write_connectome_results` and the job that
composes both with the report is :func:`tmsnet.jobs.connectome.run_connectomes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.networks._naming import input_entities, input_prefix
from tmsnet.networks.atlases import Atlas, load_schaefer100, region_at_coordinate
from tmsnet.networks.parameters import SGACC_MM, ConnectomeParameters
from tmsnet.networks.results import Connectome, ConnectomeResults, ConnectomeSummary

__all__ = ["analyze_connectomes"]

@dataclass
class _Series:
    """One input's cleaned region series and its provenance."""

    series: np.ndarray
    parameters: dict[str, Any]
    entities: dict[str, str]
    inputs: dict[str, Any]
    space: str | None


def _bold_series(
    path: Path, confounds: Path | None, atlas: Atlas, *, cov_estimator: str, t_r: float | None,
    cleaning: BoldCleaningParameters,
) -> tuple[np.ndarray, dict[str, Any], str]:
    from tmsnet.networks.connectomes import connectome_from_bold

    conn, series = connectome_from_bold(path, confounds, atlas, kind="correlation",
                                        cov_estimator=cov_estimator, t_r=t_r, cleaning=cleaning)
    return series, conn.parameters, conn.space


def _table_series(path: Path, confounds: Path | None, atlas: Atlas, *, cov_estimator: str, t_r: float,
                  confound_columns: tuple[str, ...] | None,
                  cleaning: BoldCleaningParameters) -> tuple[np.ndarray, dict[str, Any]]:
    from tmsnet.networks.connectomes import clean_roi_timeseries, load_roi_timeseries
    from tmsnet.networks.inputs import read_confounds_table

    table = load_roi_timeseries(path)
    if table.shape[1] != atlas.n_regions:
        raise InvalidParameterError(
            f"{path.name} has {table.shape[1]} columns but the atlas has {atlas.n_regions} "
            "regions; give the atlas the table was extracted with (--atlas-image/--atlas-labels)."
        )
    series, clean_params = clean_roi_timeseries(
        table, read_confounds_table(confounds), t_r=t_r, cleaning=cleaning, confound_columns=confound_columns
    )
    params = {
        "cleaning": clean_params,
        "atlas": atlas.name,
        "atlas_space": atlas.space,
        "cov_estimator": cov_estimator,
        "connectivity_implementation": "nilearn.connectome.ConnectivityMeasure",
    }
    return series, params


def _check_inputs(bold: Sequence[Any] | None, timeseries: Sequence[Any] | None,
                  confounds: Sequence[Any] | None, t_r: float | None,
                  parameters: ConnectomeParameters) -> tuple[list[Path], list[Path | None]]:
    if bool(bold) == bool(timeseries):
        raise InvalidParameterError("give either bold (fMRIPrep BOLD images) or timeseries (ROI tables)")
    inputs = [Path(p) for p in (bold or timeseries)]
    conf = [None if c is None else Path(c) for c in (confounds or [None] * len(inputs))]
    if len(conf) != len(inputs):
        raise InvalidParameterError("give one confounds file per input")
    if bold and parameters.confound_columns:
        raise InvalidParameterError(
            "--confound-columns applies to --timeseries tables; BOLD runs use --confound-strategy")
    if timeseries and t_r is None:
        raise InvalidParameterError("--timeseries needs --t-r (repetition time in seconds)")
    return inputs, conf


def _load_series(inputs: list[Path], confounds: list[Path | None], atlas: Atlas, *, from_bold: bool,
                 t_r: float | None, parameters: ConnectomeParameters,
                 cleaning: BoldCleaningParameters) -> list[_Series]:
    loaded = []
    for k, (path, conf) in enumerate(zip(inputs, confounds, strict=True)):
        space = atlas.space
        if from_bold:
            series, params, space = _bold_series(path, conf, atlas, cov_estimator=parameters.cov_estimator,
                                                 t_r=t_r, cleaning=cleaning)
        else:
            series, params = _table_series(path, conf, atlas, cov_estimator=parameters.cov_estimator,
                                           t_r=t_r, confound_columns=parameters.confound_columns,
                                           cleaning=cleaning)
        loaded.append(_Series(
            series=series, parameters=params, entities=input_entities(path, f"{k + 1:02d}"),
            inputs={"bold" if from_bold else "timeseries": path, "confounds": conf, "atlas": atlas.path},
            space=space,
        ))
    return loaded


def _target_regions(atlas: Atlas, target_mm: Sequence[float]) -> tuple[int, int | None]:
    target = region_at_coordinate(atlas, target_mm)
    try:
        sgacc: int | None = region_at_coordinate(atlas, SGACC_MM, max_distance_mm=20.0)
    except EmptyRegionError:  # an atlas without a region near the sgACC
        sgacc = None
    return target, sgacc


def _summarise(matrix: np.ndarray, kind: str, item: _Series, *, atlas: Atlas, space: str | None,
               n_subjects: int, target: int, sgacc: int | None, random_seed: int) -> ConnectomeSummary:
    from tmsnet.networks.summaries import graph_measures, network_blocks, region_profile, within_between

    conn = Connectome(
        matrix=matrix,
        kind=kind,
        labels=atlas.labels,
        networks=atlas.networks,
        parameters={**item.parameters, "kind": kind, "n_subjects_in_fit": n_subjects},
        space=space,
        inputs=item.inputs,
    )
    nodes, graph = graph_measures(matrix, atlas.networks, labels=atlas.labels, random_seed=random_seed)
    profile = region_profile(
        matrix,
        atlas.networks,
        target,
        labels=atlas.labels,
        extra_regions=None if sgacc is None else {f"sgACC ({atlas.labels[sgacc]})": [sgacc]},
        order=atlas.networks_order,
    )
    return ConnectomeSummary(
        connectome=conn,
        entities=item.entities,
        name=input_prefix(item.entities),
        blocks=network_blocks(matrix, atlas.networks, order=atlas.networks_order),
        within_between=within_between(matrix, atlas.networks, order=atlas.networks_order),
        nodes=nodes,
        graph=graph,
        profile=profile,
        random_seed=random_seed,
    )


def analyze_connectomes(
    *,
    bold: Sequence[str | Path] | None = None,
    timeseries: Sequence[str | Path] | None = None,
    confounds: Sequence[str | Path | None] | None = None,
    t_r: float | None = None,
    atlas: Atlas | None = None,
    parameters: ConnectomeParameters | None = None,
    cleaning: BoldCleaningParameters | None = None,
) -> ConnectomeResults:
    """Connectomes and their network summaries, one per input and measure.

    Parameters
    ----------
    bold : sequence of paths, optional
        fMRIPrep ``*_desc-preproc_bold.nii.gz`` runs (one connectome each).
    timeseries : sequence of paths, optional
        ROI time-series tables (frames x regions, the atlas's regions); give
        ``bold`` or ``timeseries``.
    confounds : sequence of paths, optional
        One confounds TSV per input (same order).
    t_r : float, optional
        Repetition time (s); needed for ``timeseries``.
    atlas : Atlas, optional
        Parcellation (default :func:`~tmsnet.networks.atlases.load_schaefer100`).
    parameters : ConnectomeParameters, optional
        Measures, covariance estimator, target coordinate, Louvain seed.
    cleaning : BoldCleaningParameters, optional
        The targeting pipeline's cleaning (default its defaults), applied
        without smoothing.

    Returns
    -------
    ConnectomeResults
        ``outputs`` empty (see :func:`tmsnet.networks.outputs.write_connectome_results`).

    Raises
    ------
    InvalidParameterError
        Both or neither of ``bold``/``timeseries``, a confounds list of another
        length, ``confound_columns`` with BOLD runs, tables without ``t_r`` or
        with another number of regions than the atlas.
    """
    parameters = parameters or ConnectomeParameters()
    cleaning = (cleaning or BoldCleaningParameters()).replace(smoothing_fwhm_mm=None)  # regions: no smoothing
    inputs, conf = _check_inputs(bold, timeseries, confounds, t_r, parameters)
    atlas = atlas or load_schaefer100()
    loaded = _load_series(inputs, conf, atlas, from_bold=bool(bold), t_r=t_r, parameters=parameters,
                          cleaning=cleaning)
    space = loaded[-1].space
    target, sgacc = _target_regions(atlas, parameters.target_coords)
    from tmsnet.networks.connectomes import compute_connectomes

    summaries = []
    for kind in parameters.measures:
        mats = compute_connectomes([s.series for s in loaded], kind=kind,
                                   cov_estimator=parameters.cov_estimator)
        summaries += [
            _summarise(matrix, kind, item, atlas=atlas, space=space, n_subjects=len(loaded), target=target,
                       sgacc=sgacc, random_seed=parameters.random_seed)
            for matrix, item in zip(mats, loaded, strict=True)
        ]
    return ConnectomeResults(
        atlas=atlas, kinds=parameters.measures, connectomes=summaries, target_region=target,
        sgacc_region=sgacc, inputs=inputs, cleaning=cleaning, space=space,
    )
