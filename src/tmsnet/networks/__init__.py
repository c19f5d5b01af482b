"""Network-level analysis: connectomes, network summaries, group statistics (NBS), propagation.

Modules: :mod:`~tmsnet.networks.atlases` (parcellations with networks),
:mod:`~tmsnet.networks.connectomes` (cleaning shared with targeting + nilearn
connectivity), :mod:`~tmsnet.networks.summaries` (within/between networks,
graph measures), :mod:`~tmsnet.networks.stats` (GLM designs, edge and block
tests, FDR), :mod:`~tmsnet.networks.nbs` (Network-Based Statistic),
:mod:`~tmsnet.networks.propagation` (linear delayed spread model),
:mod:`~tmsnet.networks.commands` (CLI), :mod:`~tmsnet.networks.report`.
"""
