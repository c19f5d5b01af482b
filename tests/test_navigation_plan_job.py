"""The plan job: compute -> write -> report, the field patch on disk, and the plan options."""

import json

import numpy as np
import pytest

from tmsnet.cli import build_parser
from tmsnet.exceptions import InvalidParameterError
from tmsnet.jobs.plan import plan as plan_job
from tmsnet.navigation.commands import plan_parameters_from_args
from tmsnet.navigation.outputs import read_plan_field
from tmsnet.navigation.plan import PROTOCOLS, PlanParameters
from tmsnet.physics.dose import DoseParameters
from tmsnet.physics.metrics import EfieldParameters
from tmsnet.report.subject import build_subject_report
from tmsnet.utils.params import parameters_from_args

TARGET = (-38.0, 44.0, 26.0)
SPACE = "MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    out = tmp_path_factory.mktemp("planjob")
    params = PlanParameters(protocol="10hz", dose=DoseParameters(mt_percent=48.0))
    return out, *plan_job(TARGET, SPACE, out, params)


def test_field_patch_written_once_and_read_back_exactly(planned):
    out, plan, written = planned
    field = read_plan_field(written["plan_field"])
    patch = plan.field_patch
    for name in ("u_mm", "v_mm", "e"):
        np.testing.assert_array_equal(getattr(field.patch, name), getattr(patch, name))
    assert field.patch.target_uv_mm == patch.target_uv_mm and field.patch.e_at_target == patch.e_at_target
    assert field.patch.half_max_area_cm2 == patch.half_max_area_cm2 and field.patch.grid_mm == patch.grid_mm
    np.testing.assert_array_equal(field.sweep_angles_deg, plan.placement.sweep_angles_deg)
    np.testing.assert_array_equal(field.sweep_e, plan.placement.sweep_e)
    assert field.angle_deg == plan.placement.angle_deg
    # the patch is the plan's field: at the target it is what the sweep chose
    assert patch.e_at_target == pytest.approx(plan.placement.e_at_target, rel=1e-9)
    side = json.loads(written["plan_field"].with_suffix(".json").read_text())
    assert side["Parameters"]["protocol"] == "10hz" and side["Space"] == SPACE
    with pytest.raises(InvalidParameterError, match="not a plan field patch"):
        read_plan_field(written["markers"])


def test_one_page_plan_is_the_reports_plan_section(planned):
    out, plan, written = planned
    page = written["plan_html"].read_text()
    assert "TMS treatment plan" in page and "Decision support" in page and "<script" not in page
    assert "10 Hz rTMS, 3000 pulses" in page and "cannot choose an orientation" in page
    assert "clinical convention: handle 45° from the midline, back and out" in page
    assert plan.summary()["coil_orientation_rule"] == "clinical"
    # the operator reads named quantities with units, not the JSON's field keys
    for key in (*plan.protocol, *plan.dose):
        assert f"<code>{key}</code>" not in page, key
    assert "Session intensity, Stokes (%MSO)" in page and "Field at M1 (V/m per A/µs)" in page
    assert "Induced field magnitude of the fig8-70mm coil" in page and "No field figure" not in page
    # The page's sidecar is the plan's provenance.
    side = json.loads(written["plan_html"].with_suffix(".json").read_text())
    plan_json = json.loads(written["plan_json"].read_text())
    assert side == plan_json["Provenance"]
    # The combined report draws the same section (plus the link to the page, which exists now).
    combined = build_subject_report(out, "01").html

    def section(html):
        return html.split('id="plan-1"', 1)[1].split("</section>", 1)[0]

    link = f"<li>One-page plan (HTML, printable): <code>{written['plan_html'].name}</code></li>"
    assert link in section(combined) and link not in section(page)
    assert section(combined).replace(link, "") == section(page)


def test_plan_options_come_from_the_parameter_objects():
    parser = build_parser()
    args = parser.parse_args(["plan", "--target", "1", "2", "3", "--space", SPACE, "--out", "x"])
    assert plan_parameters_from_args(args) == PlanParameters()
    args = parser.parse_args(["plan", "--target", "1", "2", "3", "--space", SPACE, "--out", "x", "--mt", "55",
                              "--coil", "round-70mm", "--protocol", "10hz", "--stokes-slope", "2.8",
                              "--coil-distance", "2", "--angle-step", "10", "--m1", "-30", "-20", "60",
                              "--m1-space", "T1w", "--projection", "centre"])
    assert plan_parameters_from_args(args) == PlanParameters(
        coil="round-70mm", protocol="10hz", coil_distance_mm=2.0, projection="centre", angle_step_deg=10.0,
        dose=DoseParameters(mt_percent=55.0, stokes_slope=2.8, m1_mm=(-30.0, -20.0, 60.0), m1_space="T1w"))
    assert set(PROTOCOLS) == {"itbs", "10hz"}
    args = parser.parse_args(["efield"])
    assert parameters_from_args(EfieldParameters, args) == EfieldParameters()
    for bad in ({"protocol": "5hz"}, {"angle_step_deg": 0}, {"angle_step_deg": 181}, {"coil_distance_mm": -1},
                {"projection": "up"}, {"dose": {"mt_percent": 50}}):
        with pytest.raises(InvalidParameterError):
            PlanParameters(**bad)
