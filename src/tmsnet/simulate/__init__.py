"""Synthetic data with known ground truth (for demos, tests and benchmarks).

:func:`simulate_fmriprep_dataset` writes an fMRIPrep-like resting-state
derivatives folder with a planted sgACC-anticorrelated left-DLPFC target;
:func:`simulate_subject_arrays` returns one subject in memory.
"""

from tmsnet.simulate import fmri
from tmsnet.simulate.fmri import *  # noqa: F403  (the names in fmri.__all__)

#: The package exports what :mod:`tmsnet.simulate.fmri` exports.
__all__ = list(fmri.__all__)
