"""Network-level analysis: connectomes, network summaries, group statistics (NBS), propagation.

Science: :mod:`~tmsnet.networks.atlases` (parcellations with networks),
:mod:`~tmsnet.networks.connectomes` (cleaning shared with targeting + nilearn
connectivity), :mod:`~tmsnet.networks.summaries` (within/between networks,
graph measures), :mod:`~tmsnet.networks.stats` (GLM designs, edge and block
tests, FDR), :mod:`~tmsnet.networks.nbs` (Network-Based Statistic),
:mod:`~tmsnet.networks.propagation` (linear delayed spread model).

Jobs, one direction (parameters -> compute -> write; the composers with the
report are :mod:`tmsnet.jobs.connectome`, :mod:`tmsnet.jobs.compare`,
:mod:`tmsnet.jobs.propagate`): :mod:`~tmsnet.networks.parameters` (frozen
parameter objects, the CLI options come from their fields),
:mod:`~tmsnet.networks.results` (result types, a leaf),
:mod:`~tmsnet.networks.inputs` (reading matrices, connectome folders,
participants), :mod:`~tmsnet.networks.connectome_workflow`,
:mod:`~tmsnet.networks.compare_workflow`,
:mod:`~tmsnet.networks.propagation_workflow` (the computations, no writing),
:mod:`~tmsnet.networks.outputs` (the writers; file names in
``networks/_naming.py`` on :mod:`tmsnet.io.bids`), and
:mod:`~tmsnet.networks.commands` (CLI: parse, call one job, print). Report
sections are in :mod:`tmsnet.report.providers`.
"""
