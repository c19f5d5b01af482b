"""TMS physics: coil models, the sphere-model E-field, coil metrics, placement and dose.

The realistic head path is exported here (lazily, so that importing a sibling such as
:mod:`tmsnet.physics.coils` does not load it): :mod:`tmsnet.physics.head_model` builds
the five-tissue label volume (from fMRIPrep derivatives, or a phantom) and
:mod:`tmsnet.physics.volume_conductor` solves for the induced field in it.
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
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tmsnet.physics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tmsnet.physics.{_EXPORTS[name]}"), name)
