"""The cohort report: table checks, distances (closed form), QC flags, rendering."""

import numpy as np
import pandas as pd
import pytest

from tmsnet.data import COMPARISON_TARGETS, reference_coordinates
from tmsnet.exceptions import InvalidParameterError
from tmsnet.report.cohort import (
    cohort_distances,
    cohort_qc_flags,
    method_spread,
    normalize_cohort_targets,
    render_cohort_report,
)


def table(**extra):
    base = {
        "subject": ["01", "02", "sub-03", "01"],
        "session": [None, "", None, None],
        "method": ["cluster", "cluster", "cluster", "peak"],
        "x": [-40.0, -44.0, -36.0, -42.0], "y": [40.0, 36.0, 44.0, 40.0], "z": [28.0, 28.0, 28.0, 30.0],
        "space": ["MNI152NLin2009cAsym"] * 4,
        "r_at_target": [-0.41, -0.05, -0.35, -0.5],
    }
    base.update(extra)
    return pd.DataFrame(base)


def test_distances_match_closed_form():
    t = normalize_cohort_targets(table())
    d = cohort_distances(t)
    refs = reference_coordinates().loc[list(COMPARISON_TARGETS)]
    for name in refs.index:
        expected = np.sqrt((refs.loc[name, "x"] + 40) ** 2 + (refs.loc[name, "y"] - 40) ** 2
                           + (refs.loc[name, "z"] - 28) ** 2)
        assert d.loc["sub-01 cluster", name] == pytest.approx(expected, abs=0.05)


def test_method_spread_is_mean_distance_to_centroid():
    spread = method_spread(normalize_cohort_targets(table())).set_index("method")
    # cluster targets: (-40,40), (-44,36), (-36,44) at z=28: centroid (-40,40,28); distances 0, 4√2, 4√2
    assert spread.loc["cluster", "n"] == 3
    assert spread.loc["cluster", "mean distance to centroid (mm)"] == pytest.approx(8 * np.sqrt(2) / 3)
    assert spread.loc["peak", "mean distance to centroid (mm)"] == 0.0


def test_bids_app_columns_are_accepted():
    t = table().rename(columns={"subject": "participant_id", "session": "session_id"})
    t["participant_id"] = ["sub-01", "sub-02", "sub-03", "sub-01"]
    t["uncertainty_p95_radius_mm"] = [3.0, 15.0, 4.0, 2.0]
    t["duration_min"] = [12.0, 6.0, 12.0, 12.0]
    t["mean_fd_mm"] = [0.1, 0.1, 0.4, 0.1]
    t["qc_bad_registration"] = [False, False, False, True]
    norm = normalize_cohort_targets(t)
    assert list(norm["subject"]) == ["01", "02", "03", "01"]
    assert list(norm["session"]) == [None, None, None, None]
    flags = cohort_qc_flags(norm)
    assert flags[0] == []
    assert any("shorter than advised" in f for f in flags[1])
    assert any("weak anticorrelation" in f for f in flags[1])
    assert any("unstable target" in f for f in flags[1])
    assert any("high motion" in f for f in flags[2])
    assert flags[3] == ["bad registration"]


def test_bad_tables_get_a_clear_error():
    with pytest.raises(InvalidParameterError, match="lacks column"):
        normalize_cohort_targets(table().drop(columns=["r_at_target"]))
    with pytest.raises(InvalidParameterError, match="mixes coordinate spaces"):
        normalize_cohort_targets(table(space=["MNI152NLin2009cAsym"] * 3 + ["T1w"]))
    with pytest.raises(InvalidParameterError, match="non-finite"):
        normalize_cohort_targets(table(x=[np.nan, 1.0, 2.0, 3.0]))
    with pytest.raises(InvalidParameterError, match="no rows"):
        normalize_cohort_targets(table().iloc[:0])


def test_cohort_report_renders_every_part():
    t = table(p95_radius_mm=[3.0, 15.0, 4.0, 2.0])
    page = render_cohort_report(t, interactive=False)
    assert 'id="cohort-count" data-n-targets="4" data-n-subjects="3"' in page
    for anchor in ("targets", "distances", "methods", "uncertainty", "qc"):
        assert f'id="{anchor}"' in page
    assert "sub-02 cluster" in page and "unstable target" in page
    assert "<script" not in page  # no viewer asked for
    assert "http://" not in page and "https://" not in page
    interactive = render_cohort_report(t)
    assert 'class="tmsnet-viewer"' in interactive and interactive.count("loadFromBase64") >= 1
