"""Issue 12: a targeting method is one registration; parameter objects travel as one object each.

A method registered here, in the test, with its own options class, is offered by
``tmsnet target --method`` (with a flag per option field), accepted by the
BIDS-App's option parsing, runs through the job and is listed in the report,
which reads the target files on disk; no other code is edited.
"""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from tmsnet.bids_app import commands as bids_commands
from tmsnet.cli import build_parser, main
from tmsnet.exceptions import InvalidParameterError, UnknownMethodError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.targeting import methods as methods_module
from tmsnet.targeting.methods import (
    ClusterOptions,
    Target,
    available_methods,
    register_method,
    resolve_methods,
)
from tmsnet.targeting.regions import SeedRegion
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters
from tmsnet.utils.params import Parameters, param

NAME = "test-centre"


@dataclass(frozen=True)
class CentreOptions(Parameters):
    """Options of the test method."""

    centre_shift_mm: float = param(0.0, help="test method: shift of the target along x", units="mm")


@pytest.fixture
def centre_method():
    @register_method(NAME, options=(CentreOptions,), description="centre of the search region")
    def centre(context, options=None):
        options = CentreOptions() if options is None else options
        r = context.seed_connectivity()
        index = np.flatnonzero(context.search_voxels)
        xyz = context.voxel_mm(index).mean(axis=0) + [options.centre_shift_mm, 0.0, 0.0]
        voxel = index[int(np.argmin(np.sum((context.voxel_mm(index) - xyz) ** 2, axis=1)))]
        return Target(NAME, xyz, context.space, tuple(int(v) for v in context.voxel_ijk[voxel]),
                      float(r[voxel]), r, parameters={"centre_shift_mm": options.centre_shift_mm})

    try:
        yield centre
    finally:
        methods_module._METHODS.pop(NAME, None)


def _target_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["target"]


def test_a_registered_method_is_offered_run_and_reported(centre_method, short_subject, tmp_path,
                                                        capsys):
    target_parser = _target_parser()
    method_action = next(a for a in target_parser._actions if a.dest == "methods")
    assert NAME in method_action.choices
    assert "--centre-shift-mm" in target_parser._option_string_actions
    assert "centre of the search region" in target_parser.format_help()
    # "all" is one ordered set everywhere: the built-in ones first, then the new one.
    assert resolve_methods(["all"]) == ["cluster", "seedmap", "hierarchical", "peak", NAME]

    out = tmp_path / "out"
    code = main(["target", "--bold", str(short_subject.bold_path), "--confounds",
                 str(short_subject.confounds_path), "--out", str(out), "--json", "--quiet",
                 "--method", "cluster", NAME, "--centre-shift-mm", "4", "--n-bootstrap", "0"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert [t["method"] for t in summary["targets"]] == ["cluster", NAME]
    written = json.loads(next(out.rglob("*_desc-testCentre_target.json")).read_text())
    assert written["parameters"] == {"centre_shift_mm": 4.0}
    assert written["Provenance"]["Parameters"]["methods"] == ["cluster", NAME]
    report = next(out.glob("*_report.html")).read_text()
    assert NAME in report  # the report lists the target files it finds on disk

    # The BIDS-App offers it too and reads its options from --option KEY=VALUE.
    args = bids_commands.build_parser().parse_args(
        ["bids", "out", "participant", "--method", NAME, "--option", "centre_shift_mm=2.5"])
    parameters = TargetingParameters.from_options(bids_commands._targeting_options(args))
    assert parameters.methods == (NAME,)
    assert parameters.options_for(NAME) == (CentreOptions(centre_shift_mm=2.5),)
    all_args = bids_commands.build_parser().parse_args(["bids", "out", "participant", "--method",
                                                        "all"])
    assert bids_commands._targeting_options(all_args)["methods"] == list(available_methods())


def test_options_travel_in_one_object_per_concern():
    parameters = TargetingParameters.from_options({
        "methods": ["peak", "cluster"], "cluster_percentile": 5, "smoothing_fwhm_mm": 0,
        "n_bootstrap": 0, "seed_region": "sgacc-bilateral", "hierarchical_min_voxels": "40",
    })
    assert parameters.methods == ("peak", "cluster")
    assert parameters.cleaning == BoldCleaningParameters(smoothing_fwhm_mm=None)
    assert parameters.seed_region == SeedRegion(seed_region="sgacc-bilateral")
    assert parameters.uncertainty == UncertaintyParameters(n_bootstrap=0)
    assert parameters.options_for("cluster") == (ClusterOptions(cluster_percentile=5.0),)
    assert parameters.options_for("peak") == ()
    with pytest.raises(InvalidParameterError, match="nope"):
        TargetingParameters.from_options({"nope": 1})
    with pytest.raises(UnknownMethodError):
        TargetingParameters(methods=("magic",))
    with pytest.raises(InvalidParameterError):
        TargetingParameters(method_options=(BoldCleaningParameters(),))


def test_bounds_are_declared_once_and_checked_at_construction():
    with pytest.raises(InvalidParameterError, match="n-bootstrap"):
        UncertaintyParameters(n_bootstrap=-1)
    with pytest.raises(InvalidParameterError, match="stability-tolerance"):
        UncertaintyParameters(stability_tolerance_mm=0)
    with pytest.raises(InvalidParameterError, match="scan_length_fractions"):
        UncertaintyParameters(scan_length_fractions=(0.5, 1.5))
    with pytest.raises(InvalidParameterError, match="cluster-percentile"):
        ClusterOptions(cluster_percentile=0)
    assert UncertaintyParameters(scan_length_advice=False).fractions is None


def test_old_spellings_still_work_with_a_warning(capsys):
    args = _target_parser().parse_args(["--out", "x", "--seed", "sgacc-bilateral"])
    assert args.seed_region == "sgacc-bilateral"
    err = capsys.readouterr().err
    assert "tmsnet: warning: --seed is deprecated" in err and "--seed-region" in err
    with pytest.warns(DeprecationWarning):
        parameters = TargetingParameters.from_options({"seed": "sgacc-bilateral"})
    assert parameters.seed_region.seed_region == "sgacc-bilateral"
