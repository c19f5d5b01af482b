"""The small public API: every name resolves, and each job documents every argument."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

import tmsnet

JOBS = ("target", "plan", "connectome", "compare", "propagate", "tep")


def test_every_public_name_resolves_and_is_listed():
    assert set(JOBS) <= set(tmsnet.__all__)
    for name in tmsnet.__all__:
        assert getattr(tmsnet, name) is not None
    with pytest.raises(AttributeError):
        tmsnet.not_a_function  # noqa: B018


def test_import_tmsnet_loads_no_science():
    code = "import sys, tmsnet; print(sorted(m for m in sys.modules if m.startswith('tmsnet')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tmsnet']"


@pytest.mark.parametrize("name", JOBS)
def test_jobs_document_every_argument(name):
    function = getattr(tmsnet, name)
    doc = inspect.getdoc(function)
    assert doc and "Parameters\n----------" in doc and "Returns\n-------" in doc
    section = doc.split("Parameters\n----------", 1)[1].split("Returns\n-------", 1)[0]
    documented = set()
    for line in section.splitlines():
        match = re.match(r"^(\*{0,2}[A-Za-z_][\w, *]*?)\s*(?::|$)", line)
        if match and not line.startswith(" "):
            documented |= {n.strip().lstrip("*") for n in match.group(1).split(",")}
    arguments = set(inspect.signature(function).parameters)
    assert arguments <= documented, f"{name}: undocumented {sorted(arguments - documented)}"
