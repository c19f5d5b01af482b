"""Bad input: a typed error with an actionable message, exit 1, no traceback, no output."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet import exceptions as exc
from tmsnet.cli import main
from tmsnet.jobs.target import run_target
from tmsnet.targeting.regions import SearchRegion
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters, compute_targets

BOLD_NAME = "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
CONF_NAME = "sub-01_task-rest_desc-confounds_timeseries.tsv"


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_failure(code, err, out_dir, *phrases):
    assert code == 1
    assert err.startswith("tmsnet: error:"), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase.lower() in err.lower(), (phrase, err)
    if out_dir.exists():
        assert not [p for p in out_dir.rglob("*") if p.is_file()], "partial output left behind"


@pytest.fixture
def copy_inputs(short_subject, tmp_path):
    """A writable copy of the short subject's BOLD, mask and confounds."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {}
    for key, src in (("bold", short_subject.bold_path), ("mask", short_subject.mask_path),
                     ("confounds", short_subject.confounds_path)):
        paths[key] = folder / src.name
        shutil.copy(src, paths[key])
    return paths


def cli_args(bold, confounds, out, *extra, mask=None):
    args = ["target", "--bold", str(bold), "--confounds", str(confounds), "--out", str(out),
            "--quiet", "--n-bootstrap", "0"]
    if mask is not None:
        args += ["--mask", str(mask)]
    return args + list(extra)


def test_missing_file(copy_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(tmp_path / "nope_bold.nii.gz", copy_inputs["confounds"], out),
                           capsys)
    assert_clean_failure(code, err, out, "nope_bold.nii.gz")
    with pytest.raises(exc.InputFileNotFoundError):
        compute_targets(tmp_path / "nope.nii.gz", copy_inputs["confounds"], progress=False)
    code, _, err = run_cli(cli_args(copy_inputs["bold"], tmp_path / "nope.tsv", out), capsys)
    assert_clean_failure(code, err, out, "nope.tsv")


def test_3d_image_where_4d_needed(copy_inputs, tmp_path, capsys):
    img = nib.load(copy_inputs["bold"])
    three_d = tmp_path / BOLD_NAME
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[..., 0], img.affine), three_d)
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(three_d, copy_inputs["confounds"], out,
                                    mask=copy_inputs["mask"]), capsys)
    assert_clean_failure(code, err, out, "3D", "4D")
    with pytest.raises(exc.InvalidImageError):
        compute_targets(three_d, copy_inputs["confounds"], mask=copy_inputs["mask"],
                        progress=False)


def test_mask_on_another_grid(copy_inputs, tmp_path, capsys):
    mask = nib.load(copy_inputs["mask"])
    cropped = tmp_path / "mask_cropped.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(mask.dataobj)[:-4], mask.affine), cropped)
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(copy_inputs["bold"], copy_inputs["confounds"], out,
                                    mask=cropped), capsys)
    assert_clean_failure(code, err, out, "grid", "resample")
    with pytest.raises(exc.GridMismatchError):
        compute_targets(copy_inputs["bold"], copy_inputs["confounds"], mask=cropped,
                        progress=False)


def test_confounds_with_wrong_number_of_rows(copy_inputs, tmp_path, capsys):
    table = pd.read_csv(copy_inputs["confounds"], sep="\t")
    short = tmp_path / CONF_NAME
    table.iloc[:-5].to_csv(short, sep="\t", index=False, na_rep="n/a")
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(copy_inputs["bold"], short, out), capsys)
    assert_clean_failure(code, err, out, str(len(table) - 5), str(len(table)))
    with pytest.raises(exc.ConfoundsError):
        compute_targets(copy_inputs["bold"], short, progress=False)


def test_missing_confound_column_names_it_and_the_fix(copy_inputs, tmp_path, capsys):
    table = pd.read_csv(copy_inputs["confounds"], sep="\t")
    no_gs = tmp_path / CONF_NAME
    table.drop(columns=[c for c in table if c.startswith("global_signal")]).to_csv(
        no_gs, sep="\t", index=False, na_rep="n/a")
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(copy_inputs["bold"], no_gs, out), capsys)
    assert_clean_failure(code, err, out, "global_signal", "--no-gsr")
    # The suggested fix works.
    code, _, err = run_cli(cli_args(copy_inputs["bold"], no_gs, out, "--no-gsr", "--no-report"),
                           capsys)
    assert code == 0, err


def test_nan_and_constant_voxels_are_excluded_and_counted(copy_inputs, tmp_path, capsys):
    img = nib.load(copy_inputs["bold"])
    data = img.get_fdata(dtype=np.float32)
    mask = np.asanyarray(nib.load(copy_inputs["mask"]).dataobj) > 0
    inside = np.argwhere(mask)
    nan_vox = inside[:7]
    const_vox = inside[-5:]
    data[tuple(nan_vox.T)] = np.nan
    data[tuple(const_vox.T)] = 100.0
    bad = tmp_path / BOLD_NAME
    header = img.header.copy()
    header.set_data_dtype(np.float32)  # NaN needs a float on-disk type
    nib.save(nib.Nifti1Image(data, img.affine, header), bad)
    out = tmp_path / "out"
    code, stdout, err = run_cli(cli_args(bad, copy_inputs["confounds"], out, "--json",
                                         "--no-report", mask=copy_inputs["mask"]), capsys)
    assert code == 0, err
    sidecar = json.loads(next(out.rglob("*stat-r*connectivity.json")).read_text())
    assert sidecar["Parameters"]["excluded_voxels"] == {"nan": 7, "constant": 5}
    r = nib.load(next(out.rglob("*stat-r*connectivity.nii.gz"))).get_fdata()
    assert np.isfinite(r).all()


def test_scan_too_short_states_the_minimum(copy_inputs, tmp_path, capsys):
    img = nib.load(copy_inputs["bold"])
    short = tmp_path / BOLD_NAME
    nib.save(nib.Nifti1Image(img.get_fdata(dtype=np.float32)[..., :20], img.affine, img.header),
             short)
    conf = tmp_path / CONF_NAME
    pd.read_csv(copy_inputs["confounds"], sep="\t").iloc[:20].to_csv(
        conf, sep="\t", index=False, na_rep="n/a")
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(short, conf, out, mask=copy_inputs["mask"]), capsys)
    assert_clean_failure(code, err, out, "20", "minimum")
    with pytest.raises(exc.ScanTooShortError):
        compute_targets(short, conf, mask=copy_inputs["mask"], progress=False)


def test_empty_seed_and_search_region(copy_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(cli_args(copy_inputs["bold"], copy_inputs["confounds"], out,
                                    "--seed-coords", "0", "0", "300"), capsys)
    assert_clean_failure(code, err, out, "seed")
    mask = nib.load(copy_inputs["mask"])
    empty = tmp_path / "empty_roi.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(mask.shape, np.uint8), mask.affine), empty)
    code, _, err = run_cli(cli_args(copy_inputs["bold"], copy_inputs["confounds"], out,
                                    "--search-roi", str(empty)), capsys)
    assert_clean_failure(code, err, out, "search region")
    with pytest.raises(exc.EmptyRegionError):
        compute_targets(copy_inputs["bold"], copy_inputs["confounds"],
                        TargetingParameters(search_region=SearchRegion(search_roi=empty)),
                        progress=False)


def test_unknown_method(copy_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(cli_args(copy_inputs["bold"], copy_inputs["confounds"], out, "--method", "magic"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "cluster" in err and "Traceback" not in err
    with pytest.raises(exc.UnknownMethodError, match="cluster"):
        run_target(copy_inputs["bold"], copy_inputs["confounds"],
                   TargetingParameters(methods=("magic",)), out_dir=out, progress=False)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_output_folder_not_writable(copy_inputs, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "out"
    code, _, err = run_cli(cli_args(copy_inputs["bold"], copy_inputs["confounds"], out), capsys)
    assert_clean_failure(code, err, out, str(out))
    with pytest.raises(exc.OutputNotWritableError):
        run_target(copy_inputs["bold"], copy_inputs["confounds"], out_dir=out, progress=False)


def test_failure_while_writing_leaves_no_partial_result(copy_inputs, tmp_path, monkeypatch):
    """If an output cannot be prepared, nothing at all is written (all are computed first).

    (The report is drawn from the files afterwards, so it can no longer fail first.)
    """
    import tmsnet.targeting.outputs as outputs_module

    def broken(result):
        raise RuntimeError("markers table exploded")

    monkeypatch.setattr(outputs_module, "markers_table", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_target(copy_inputs["bold"], copy_inputs["confounds"], out_dir=out, progress=False)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_a_late_failure_leaves_nothing(copy_inputs, tmp_path, monkeypatch):
    """The report (or the plan) fails after the target files were staged: none reach --out.

    Issue 14 item 5: ``target --plan`` failing at the plan left 13 target files and no report.
    Every job writes into a hidden staging folder inside --out and moves its files into place
    only when every step succeeded.
    """
    import tmsnet.report as report_package

    def broken(*args, **kwargs):
        raise RuntimeError("figure backend exploded")

    monkeypatch.setattr(report_package, "write_job_report", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_target(copy_inputs["bold"], copy_inputs["confounds"],
                   TargetingParameters(uncertainty=UncertaintyParameters(n_bootstrap=0)),
                   out_dir=out, progress=False)
    assert not [p for p in out.rglob("*") if p.is_file()]
    assert not list(out.iterdir())  # no staging folder left either


def test_staged_outputs_land_in_place_and_keep_an_existing_description(copy_inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_description.json").write_text('{"Name": "mine"}')
    job = run_target(copy_inputs["bold"], copy_inputs["confounds"],
                     TargetingParameters(uncertainty=UncertaintyParameters(n_bootstrap=0)),
                     out_dir=out, progress=False)
    assert (out / "dataset_description.json").read_text() == '{"Name": "mine"}'
    for path in job.written.values():
        assert path.is_file() and out in path.parents and ".tmsnet-stage" not in str(path)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmsnet-stage")]
    report = job.written["report"].read_text()
    assert ".tmsnet-stage" not in report and f"derivatives in {out}" in report
