"""The self-contained HTML building blocks."""

import base64

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tmsnet.report.html import (
    ReportSection,
    figure_to_base64_png,
    image_tag,
    key_value_table,
    make_anchor,
    render_report,
    table_html,
    to_jsonable,
)


def test_figure_is_inlined_as_png():
    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    uri = figure_to_base64_png(fig)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        image_tag("http://example.org/a.png", alt="remote")


def test_text_is_escaped_everywhere():
    evil = "<script>alert(1)</script>"
    table = table_html(pd.DataFrame({"name": [evil], "value": [1.234]}))
    assert "<script>" not in table and "&lt;script&gt;" in table
    assert "1.23" in table
    kv = key_value_table({evil: evil})
    assert "<script>" not in kv
    page = render_report(title=evil, summary_html="<p>ok</p>",
                         sections=[ReportSection(evil, "<p>body</p>", "a")])
    assert "<script>" not in page
    assert "http://" not in page and "https://" not in page


def test_sections_need_unique_valid_anchors():
    assert make_anchor("Scan quality (QC)") == "scan-quality-qc"
    with pytest.raises(ValueError):
        ReportSection("x", "", "1bad")
    with pytest.raises(ValueError, match="unique"):
        render_report(title="t", summary_html="", sections=[ReportSection("a", "", "s"),
                                                            ReportSection("b", "", "s")])


def test_to_jsonable_converts_numpy():
    out = to_jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": np.bool_(True)})
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": True}
