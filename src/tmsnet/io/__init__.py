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

from tmsnet.io.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_nifti,
    atomic_write_text,
    atomic_write_tsv,
    ensure_output_dir,
)
from tmsnet.io.provenance import file_sha256, make_sidecar, sidecar_path_for, software_versions

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_nifti",
    "atomic_write_text",
    "atomic_write_tsv",
    "ensure_output_dir",
    "file_sha256",
    "make_sidecar",
    "sidecar_path_for",
    "software_versions",
]
