"""Personalized TMS targeting from resting-state fMRI.

The pieces, in the order data flows through them:

- :mod:`tmsnet.targeting.regions` - seed ROIs and the DLPFC search region;
- :mod:`tmsnet.targeting.connectivity` - seed time series and the voxelwise
  seed connectivity map (Pearson r, Fisher z);
- :mod:`tmsnet.targeting.methods` - the rules that turn a map (or the data)
  into one target (``peak``, ``cluster``), behind one registry;
- :mod:`tmsnet.targeting.workflow` - :func:`compute_targets` and
  :func:`run_targeting`, which compose loading, cleaning, the methods and the
  outputs (what the CLI calls);
- :mod:`tmsnet.targeting.outputs` - the BIDS-Derivatives files of a result.
"""
