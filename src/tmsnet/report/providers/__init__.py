"""Section providers of the per-subject report, one module per job.

Each module registers one provider with
:func:`tmsnet.report.subject.register_section_provider` when imported (they are
listed in :data:`tmsnet.report.subject.PROVIDER_MODULES`) and reads only the
BIDS-Derivatives files its job wrote:

* :mod:`~tmsnet.report.providers.plan` -- treatment plan and dose
  (``tmsnet plan`` / ``tmsnet target --plan``), order 20;
* :mod:`~tmsnet.report.providers.connectome` -- connectomes
  (``tmsnet connectome``), order 30;
* :mod:`~tmsnet.report.providers.tep` -- TMS-EEG (``tmsnet tep``), order 40.
"""
