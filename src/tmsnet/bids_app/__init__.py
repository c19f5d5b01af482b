"""tmsnet as a BIDS-App: ``tmsnet BIDS_DIR OUTPUT_DIR participant|group``.

* :mod:`~tmsnet.bids_app.layout`: find each participant's fMRIPrep outputs.
* :mod:`~tmsnet.bids_app.participant`: one resumable, all-or-nothing job per
  participant and session.
* :mod:`~tmsnet.bids_app.group`: ``targets.tsv``, group figures and report.
* :mod:`~tmsnet.bids_app.derivatives`: ``dataset_description.json`` and the
  BIDS-Derivatives check.
* :mod:`~tmsnet.bids_app.commands`: the command line.

Where jobs run (serially, on local processes, on Dask) is decided in
:mod:`tmsnet.parallel`.
"""
