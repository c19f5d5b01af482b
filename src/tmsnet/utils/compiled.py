"""Whether tmsnet's compiled (numba) paths may run: one switch for every module that has one.

numba is a dependency; each module with a compiled path imports it itself (and keeps a
plain numpy or scipy path with the same values). ``TMSNET_DISABLE_NUMBA=1`` in the
environment selects the plain paths everywhere, to compare them or to rule numba out.
"""

from __future__ import annotations

import os

#: Environment variable that, set to anything non-empty, turns the compiled paths off.
DISABLE_NUMBA_VARIABLE = "TMSNET_DISABLE_NUMBA"


def numba_allowed() -> bool:
    """False when :data:`DISABLE_NUMBA_VARIABLE` is set (read at the call, i.e. at import)."""
    return os.environ.get(DISABLE_NUMBA_VARIABLE, "") == ""
