"""Personalized TMS targeting from resting-state fMRI.

The pieces, in the order data flows through them:

- :mod:`tmsnet.targeting.regions` - seed ROIs and the DLPFC search region;
- :mod:`tmsnet.targeting.connectivity` - seed time series and the voxelwise
  seed connectivity map (Pearson r, Fisher z);
- :mod:`tmsnet.targeting.methods` - the rules that turn a map (or the data)
  into one target (``peak``, ``cluster``), behind one registry (function,
  options class, description); :mod:`tmsnet.targeting.seedmap` (``seedmap``,
  Fox 2013) and :mod:`tmsnet.targeting.hierarchical` (``hierarchical``,
  SNT-style) add to it;
- :mod:`tmsnet.targeting.results` - the result types (a leaf module);
- :mod:`tmsnet.targeting.group_seedmap` - building a group seedmap from a cohort;
- :mod:`tmsnet.targeting.uncertainty` - block bootstrap, split-half and
  scan-length advice for any method;
- :mod:`tmsnet.targeting.workflow` - :class:`TargetingParameters` (one object
  per concern) and :func:`compute_targets`, which composes loading, cleaning,
  regions, the methods and the uncertainty;
- :mod:`tmsnet.targeting.outputs` - the BIDS-Derivatives files of a result;
- :mod:`tmsnet.targeting.commands` - ``tmsnet target`` / ``tmsnet seedmap``,
  whose options are generated from the parameter objects.

The job that computes, writes and reports is :func:`tmsnet.jobs.target.run_target`.
"""

# Register the methods defined outside ``methods.py`` (their rank sets the listing order).
from tmsnet.targeting import hierarchical as _hierarchical  # noqa: E402,F401
from tmsnet.targeting import seedmap as _seedmap  # noqa: E402,F401
