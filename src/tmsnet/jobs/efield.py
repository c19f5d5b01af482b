"""The coil-metrics job (``tmsnet efield``): compute -> figure.

Deng et al. 2013 depth and focality of a coil on the 8.5 cm sphere with a
7.0 cm brain, from the analytic spherical-head kernel
(:func:`tmsnet.physics.metrics.deng_metrics`, ``head_model="sphere"``) or
from the realistic path's voxel-head solver on the same sphere
(:func:`tmsnet.physics.realistic_metrics.realistic_deng_metrics`,
``head_model="realistic"``); the two agree to within the solver's
discretisation error, which is what the realistic option shows. The field in
a subject's own head is ``tmsnet plan --head-model realistic``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tmsnet.io.atomic import atomic_write_with
from tmsnet.physics.coils import load_coil
from tmsnet.physics.metrics import EfieldParameters, deng_metrics, plot_brain_surface_field
from tmsnet.physics.realistic_metrics import realistic_deng_metrics

__all__ = ["coil_metrics"]


def coil_metrics(params: EfieldParameters | None = None, *,
                 figure: str | Path | None = None) -> dict[str, Any]:
    """Deng 2013 metrics of a coil, JSON-ready, and optionally the brain-surface figure.

    Parameters
    ----------
    params : EfieldParameters, optional
        Coil, metric set, grid and head model (default: the defaults).
    figure : path, optional
        Write a PNG of |E| on the brain surface there (atomically).

    Returns
    -------
    dict
        :meth:`~tmsnet.physics.metrics.DengMetrics.as_dict` (the field key
        ``e_max_v_per_m_per_a_per_us`` for both head models) plus
        ``head_model``, ``voxel_mm`` (realistic only), ``compute_s``,
        ``n_dipoles``, ``units`` and ``figure`` (when written).
    """
    params = params or EfieldParameters()
    coil = load_coil(params.coil)
    start = time.perf_counter()
    if params.head_model == "realistic":
        metrics = realistic_deng_metrics(coil, voxel_mm=params.voxel_mm, grid_mm=params.grid_mm)
    else:
        metrics = deng_metrics(coil, grid_mm=params.grid_mm)
    result = metrics.as_dict()
    result["head_model"] = params.head_model
    if params.head_model == "realistic":
        result["voxel_mm"] = params.voxel_mm
    result["compute_s"] = round(time.perf_counter() - start, 2)
    result["n_dipoles"] = coil.n_dipoles
    result["units"] = {"e_max": "V/m per A/us", "d_half": "cm", "s_half": "cm2", "v_half": "cm3"}
    if figure is not None:
        fig = plot_brain_surface_field(metrics)
        atomic_write_with(figure, lambda tmp: fig.savefig(tmp, format="png", dpi=110), suffix=".tmp.png")
        result["figure"] = str(figure)
    return result
