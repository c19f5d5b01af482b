"""TMS physics: coil models, the sphere-model E-field, coil metrics, placement and dose.

The realistic head path is exported here (lazily, so that importing a sibling such as
:mod:`tmsnet.physics.coils` does not load it): :mod:`tmsnet.physics.head_model` builds
the five-tissue label volume (from fMRIPrep derivatives, or a phantom) and
:mod:`tmsnet.physics.volume_conductor` solves for the induced field in it;
:mod:`tmsnet.physics.realistic_placement` searches coil placements in it by reciprocity
(:mod:`tmsnet.physics.reciprocity_table`, :mod:`tmsnet.physics.realistic_geometry`),
:mod:`tmsnet.physics.realistic_dose` sets the dose from its field and
:mod:`tmsnet.physics.realistic_metrics` measures Deng 2013's d½ / S½ on it.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "Conductivities": "head_model",
    "HeadModel": "head_model",
    "HeadModelParameters": "head_model",
    "TISSUE_LABELS": "head_model",
    "check_head_labels": "head_model",
    "ellipsoid_phantom": "head_model",
    "head_model_from_fmriprep": "head_model",
    "sphere_phantom": "head_model",
    "write_head_model": "head_model",
    "FieldSolution": "volume_conductor",
    "SolverParameters": "volume_conductor",
    "VolumeConductor": "volume_conductor",
    "primary_field": "volume_conductor",
    "reciprocal_field": "volume_conductor",
    "solve_field": "volume_conductor",
    "OBJECTIVES": "realistic_placement",
    "PlacementSearchParameters": "realistic_placement",
    "RealisticPlacement": "realistic_placement",
    "patch_measures": "realistic_placement",
    "search_placement": "realistic_placement",
    "solve_placement": "realistic_placement",
    "write_field_map": "realistic_placement",
    "ReciprocityTable": "reciprocity_table",
    "compress_kernel": "reciprocity_table",
    "HeadSurface": "realistic_geometry",
    "cortical_normals": "realistic_geometry",
    "scalp_positions": "realistic_geometry",
    "scalp_projection": "realistic_geometry",
    "target_patch": "realistic_geometry",
    "deng_metrics_from_field": "realistic_metrics",
    "field_magnitude_sampler": "realistic_metrics",
    "realistic_deng_metrics": "realistic_metrics",
    "realistic_dose": "realistic_dose",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tmsnet.physics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tmsnet.physics.{_EXPORTS[name]}"), name)
