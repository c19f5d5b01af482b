"""``--quiet``: library warnings become one tmsnet line instead of a screenful.

nilearn (resampling notes), numpy (masked elements), MNE and others warn
through :mod:`warnings`. With ``--quiet`` the command layer records them while
the job runs and prints one line at the end naming how many came from which
library; without it they are shown as Python shows them. tmsnet's own
plain-language warnings are part of each job's printed summary and are not
affected.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections import Counter
from collections.abc import Iterator


def _library(message: warnings.WarningMessage) -> str:
    """The top-level package that raised a warning (from its file path)."""
    parts = str(message.filename).replace("\\", "/").split("/")
    if "site-packages" in parts:
        index = parts.index("site-packages")
        if index + 1 < len(parts):
            return parts[index + 1].split(".")[0]
    return parts[-1].removesuffix(".py") if parts else "python"


def summary_line(caught: list[warnings.WarningMessage]) -> str:
    """``tmsnet: 3 library warnings not shown (--quiet): nilearn 2, numpy 1``."""
    counts = Counter(_library(m) for m in caught)
    libraries = ", ".join(f"{name} {n}" for name, n in counts.most_common())
    noun = "warning" if len(caught) == 1 else "warnings"
    return f"tmsnet: {len(caught)} library {noun} not shown (--quiet): {libraries}"


@contextlib.contextmanager
def quiet_warnings(quiet: bool) -> Iterator[None]:
    """Record the warnings of the block when ``quiet``; print one line for them at its end."""
    if not quiet:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            if caught:
                print(summary_line(caught), file=sys.stderr)
