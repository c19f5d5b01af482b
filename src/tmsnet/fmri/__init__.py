"""Resting-state fMRI processing.

:mod:`tmsnet.fmri.cleaning`
    ``select_confounds`` (fMRIPrep confound strategies) and ``clean_bold``
    (smoothing, censoring, detrending, band-pass, confound regression,
    z-scoring), every choice returned for the provenance sidecar.
"""
