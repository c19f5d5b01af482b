"""Self-contained HTML reports drawn from the derivatives on disk.

Every job's report section is drawn by one *section provider* that reads what
the job wrote (see :mod:`tmsnet.report.subject`). A job's stand-alone report
(:func:`write_job_report`, called by each job's composer after its writer has
finished) and the combined per-subject report (:func:`write_subject_report`,
``tmsnet report``) are the same code.
"""

from tmsnet.report.subject import write_job_report, write_subject_report

__all__ = ["write_job_report", "write_subject_report"]
