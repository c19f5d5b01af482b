"""Synthetic data with known ground truth (for demos, tests and benchmarks).

:func:`simulate_fmriprep_dataset` writes an fMRIPrep-like resting-state
derivatives folder with a planted sgACC-anticorrelated left-DLPFC target;
:func:`simulate_subject_arrays` returns one subject in memory.
"""

from tmsnet.simulate.fmri import (
    BAND_HZ,
    SimulatedSubject,
    SimulationParameters,
    band_limited_series,
    cosine_basis,
    framewise_displacement,
    simulate_fmriprep_dataset,
    simulate_subject_arrays,
)

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
