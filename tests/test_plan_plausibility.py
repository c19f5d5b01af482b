"""Issue 14 item 7: a plan a clinician could be misled by says so.

Published left-DLPFC targets (REFERENCES.md section 1) lie 10-22 mm below the scalp
point on the template head; the centre of the head is ~79 mm deep and gave a plan with
no warning (|E| 0.029 V/m per A/us).
"""

import numpy as np
import pytest

from tmsnet.navigation.plan import DEEP_TARGET_WARNING_MM, compute_plan

PUBLISHED_LEFT_DLPFC = {  # MNI152, mm (Fox 2012 Table 1; Cash 2021)
    "5cm": (-41, 16, 54), "BA9": (-36, 39, 43), "BA46": (-44, 40, 29), "F3": (-37, 26, 49),
}


def _flags(plan):
    return {"right": any("right hemisphere" in w for w in plan.warnings),
            "deep": any("below the scalp" in w for w in plan.warnings)}


@pytest.mark.parametrize("name", sorted(PUBLISHED_LEFT_DLPFC))
def test_published_targets_plan_without_plausibility_warnings(name):
    plan = compute_plan(PUBLISHED_LEFT_DLPFC[name], "MNI152NLin2009cAsym")
    assert _flags(plan) == {"right": False, "deep": False}, plan.warnings
    assert np.linalg.norm(plan.placement.scalp_point_mm - plan.target_mm) < DEEP_TARGET_WARNING_MM


def test_right_hemisphere_and_deep_targets_are_flagged():
    right = compute_plan((38, 44, 26), "MNI152NLin2009cAsym")
    assert _flags(right) == {"right": True, "deep": False}, right.warnings
    centre = compute_plan((0, 0, 0), "MNI152NLin2009cAsym")
    assert _flags(centre)["deep"], centre.warnings
    assert "79 mm below the scalp" in next(w for w in centre.warnings if "below the scalp" in w)
