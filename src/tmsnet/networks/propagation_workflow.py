"""The science of ``tmsnet propagate``: connectome + stimulated region -> ranked spread.

:func:`predict_propagation` normalises a structural (or functional)
connectome, builds the linear delayed network model of
:mod:`tmsnet.networks.propagation`, and ranks regions and networks by their
steady-state and impulse response to input at the stimulated region. It
writes nothing: the writer is :func:`tmsnet.networks.outputs.write_propagation`
and the job is :func:`tmsnet.jobs.propagate.run_propagation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.networks.atlases import Atlas, load_schaefer100
from tmsnet.networks.parameters import PropagationParameters
from tmsnet.networks.results import PropagationResult

__all__ = ["predict_propagation"]


def _stimulated_region(atlas: Atlas, n_regions: int, matches_atlas: bool,
                       target_coords: Sequence[float] | None, target_region: str | int | None) -> int:
    """Index of the stimulated region from a coordinate (mm), a name or a 0-based index."""
    from tmsnet.networks.atlases import region_at_coordinate, resolve_region

    if (target_coords is None) == (target_region is None):
        raise InvalidParameterError("give --target-coords X Y Z or --target-region NAME|INDEX")
    if target_coords is not None:
        if not matches_atlas:
            raise InvalidParameterError(
                f"The connectome has {n_regions} regions but the atlas {atlas.n_regions}; give the atlas "
                "it was built with (--atlas-image/--atlas-labels) to place --target-coords."
            )
        return region_at_coordinate(atlas, target_coords)
    text = str(target_region)
    if matches_atlas:
        return resolve_region(atlas, int(text) if text.isdigit() else text)
    if not text.isdigit() or not 0 <= int(text) < n_regions:
        raise InvalidParameterError(f"--target-region must be an index 0..{n_regions - 1}.")
    return int(text)


def predict_propagation(
    connectome: np.ndarray,
    *,
    lengths_mm: np.ndarray | None = None,
    target_coords: Sequence[float] | None = None,
    target_region: str | int | None = None,
    atlas: Atlas | None = None,
    parameters: PropagationParameters | None = None,
    inputs: dict[str, Path | None] | None = None,
) -> PropagationResult:
    """Predicted spread of stimulation at one region over a connectome.

    Parameters
    ----------
    connectome : ndarray, shape (n, n)
        Structural or functional weights (normalised here to spectral radius 1).
    lengths_mm : ndarray, shape (n, n), optional
        Tract lengths (mm) for conduction delays; None = no delays.
    target_coords : sequence of 3 float, optional
        Stimulation site (mm, atlas space); needs a connectome on the atlas's regions.
    target_region : str or int, optional
        Region name or 0-based index (give this or ``target_coords``).
    atlas : Atlas, optional
        Parcellation of the connectome (default Schaefer-100); a connectome with
        another number of regions gets index labels and no networks.
    parameters : PropagationParameters, optional
        Model (tau, gain, velocity), integration (duration, step), clipping, listing.
    inputs : dict, optional
        Input files by role, for the sidecars (``connectome``, ``lengths``).

    Returns
    -------
    PropagationResult
        ``outputs`` empty (see :func:`tmsnet.networks.outputs.write_propagation`).

    Raises
    ------
    InvalidParameterError
        Both or neither of ``target_coords``/``target_region``, a coordinate
        without the matching atlas, an index out of range.
    """
    from tmsnet.networks.propagation import (
        PropagationModel,
        impulse_response,
        normalize_connectome,
        rank_response,
        steady_state_response,
    )

    parameters = parameters or PropagationParameters()
    atlas = atlas or load_schaefer100()
    sc = np.asarray(connectome, dtype=float)
    if parameters.clip_negative:
        sc = np.clip(sc, 0.0, None)
    matches = sc.shape[0] == atlas.n_regions
    labels = atlas.labels if matches else [str(i) for i in range(sc.shape[0])]
    networks = atlas.networks if matches else None
    target = _stimulated_region(atlas, sc.shape[0], matches, target_coords, target_region)
    model = PropagationModel(
        normalize_connectome(sc), tau_ms=parameters.tau_ms, coupling=parameters.coupling_per_ms,
        lengths_mm=lengths_mm, velocity_m_per_s=parameters.velocity_m_per_s,
    )
    steady = steady_state_response(model, target)
    times, impulse = impulse_response(model, target, duration_ms=parameters.duration_ms,
                                      dt_ms=parameters.dt_ms)
    regions, nets = rank_response(steady, times, impulse, stimulated=target, labels=labels, networks=networks)
    run_parameters = {
        **model.as_dict(),
        "normalisation": "spectral radius 1",
        "duration_ms": parameters.duration_ms,
        "dt_ms": parameters.dt_ms,
        "stimulated_region": labels[target],
        "target_coordinate_mm": None if target_coords is None else [float(v) for v in target_coords],
        "atlas": atlas.name,
    }
    return PropagationResult(
        labels=labels, networks=networks, stimulated=target, regions=regions, network_table=nets,
        times_ms=times, impulse=impulse, parameters=run_parameters,
        inputs=dict(inputs or {}), space=atlas.space, top=parameters.top,
    )
