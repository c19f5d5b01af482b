"""Input and output: fMRIPrep inputs, atomic writers, provenance sidecars.

Submodules
----------
:mod:`tmsnet.io.atomic`
    ``ensure_output_dir`` and ``atomic_write_*`` (text, bytes, JSON, TSV,
    NIfTI): a result file is either complete or absent.
:mod:`tmsnet.io.provenance`
    ``make_sidecar``, ``file_sha256``, ``software_versions``,
    ``sidecar_path_for``: parameters, versions and input hashes of outputs.
:mod:`tmsnet.io.fmriprep`
    ``load_bold`` (-> ``BoldData``) and ``load_confounds_table``: validated
    fMRIPrep BOLD, brain mask, TR and confounds.
"""

from tmsnet.io import atomic, provenance
from tmsnet.io.atomic import *  # noqa: F403  (the names in atomic.__all__)
from tmsnet.io.provenance import *  # noqa: F403  (the names in provenance.__all__)

#: The package exports what its writer and provenance modules export.
__all__ = [*atomic.__all__, *provenance.__all__]
