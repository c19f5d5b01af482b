"""Shared numpydoc parameter text (``docdict`` + :func:`fill_doc`, as in MNE and nilearn).

Write ``%(random_seed)s`` in a docstring's Parameters section and decorate the
function with :func:`fill_doc`; the entry is pasted with the docstring's own
indentation. Add an entry once here (or with :func:`add_doc` from the module
that owns the concept) instead of writing "see other_function".

Examples
--------
>>> @fill_doc
... def f(random_seed=0):
...     '''Do something.
...
...     Parameters
...     ----------
...     %(random_seed)s
...     '''
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["add_doc", "docdict", "fill_doc"]

F = TypeVar("F", bound=Callable)

#: Parameter text by key; the first line is ``name : type``, the rest its description.
docdict: dict[str, str] = {
    "random_seed": """random_seed : int
    Seed of every random step (resampling, permutations, ICA, graph
    partitions); the same seed gives byte-identical outputs. Default 0.""",
    "n_jobs": """n_jobs : int
    Worker processes (1 = serial, in this process). Results do not depend on it.""",
    "n_jobs_smoothing": """n_jobs : int, optional
    Threads for the smoothing, and processes forked for the bootstrap of the
    hierarchical method and for the report's figures (default: available CPUs,
    at most 8); set 1 when several subjects run in parallel processes. Results
    do not depend on it.""",
    "targeting_parameters": """parameters : TargetingParameters, optional
    Methods, cleaning, seed and search regions, method options and
    uncertainty (:class:`tmsnet.targeting.workflow.TargetingParameters`;
    default: the cluster method with every default).""",
    "progress": """progress : bool
    Show progress on stderr (default True).""",
    "out_dir": """out_dir : path
    Output folder (a BIDS-Derivatives dataset); created if needed and checked
    for writability before any computation.""",
    "space": """space : str, optional
    Template space of the input (``MNI152NLin2009cAsym``, ``MNI152NLin6Asym``...)
    when its file name has no ``space-`` entity.""",
    "t_r": """t_r : float, optional
    Repetition time in seconds, when neither the image header nor the JSON
    sidecar holds it.""",
    "bold": """bold : path or sequence of paths
    fMRIPrep ``*_desc-preproc_bold.nii.gz`` (4D, template space); several paths
    for the runs of one session (each cleaned, then concatenated).""",
    "confounds": """confounds : path or sequence of paths
    fMRIPrep ``*_desc-confounds_timeseries.tsv``, one per BOLD run, same order.""",
    "mask": """mask : path or sequence of paths, optional
    Brain mask(s) on the BOLD grid; default fMRIPrep's ``*_desc-brain_mask``
    beside each BOLD.""",
}


def add_doc(key: str, text: str) -> None:
    """Register a shared parameter text under ``key`` (refuses to overwrite a different one)."""
    if key in docdict and docdict[key] != text:
        raise KeyError(f"docdict already holds a different {key!r} entry")
    docdict[key] = text


def _indent(text: str, indent: str) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], *[(indent + line) if line.strip() else "" for line in lines[1:]]])


def fill_doc(function: F) -> F:
    """Fill ``%(key)s`` fields of ``function.__doc__`` from :data:`docdict`.

    Raises
    ------
    KeyError
        If the docstring names a key that :data:`docdict` lacks.
    """
    doc = function.__doc__
    if not doc:
        return function
    lines = doc.splitlines()
    body = [line for line in lines[1:] if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in body), default=0) * " "
    function.__doc__ = doc % {key: _indent(text, indent) for key, text in docdict.items()}
    return function
