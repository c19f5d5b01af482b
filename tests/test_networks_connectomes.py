"""Connectomes: atlas, shared cleaning, nilearn measures, real data (rest01), outputs."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.exceptions import ConfoundsError, EmptyRegionError, InvalidParameterError, UnknownMethodError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.networks.atlases import load_atlas, load_schaefer100, region_at_coordinate, resolve_region
from tmsnet.networks.connectomes import (
    clean_roi_timeseries,
    compute_connectomes,
    connectome_from_bold,
    edge_values,
    load_roi_timeseries,
    read_connectome,
    write_connectome,
)
from tmsnet.networks.summaries import within_between

DATA = Path(__file__).parents[1].parent / "shared" / "data"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def test_bundled_schaefer_atlas():
    atlas = load_schaefer100()
    assert atlas.n_regions == 100
    assert atlas.image.shape == (91, 109, 91)
    assert set(np.unique(np.asarray(atlas.image.dataobj))) == set(range(101))
    assert atlas.networks_order == ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")
    assert (atlas.networks == "Default").sum() == 24
    # a coordinate inside a parcel maps back to that parcel; the sign of x decides the hemisphere
    k = resolve_region(atlas, "7Networks_LH_Default_PFC_1")
    data = np.asarray(atlas.image.dataobj)
    ijk = np.argwhere(data == atlas.regions.loc[k, "label_value"])[0]
    xyz = nib.affines.apply_affine(atlas.image.affine, ijk)
    assert region_at_coordinate(atlas, xyz) == k
    assert "_LH_" in atlas.labels[region_at_coordinate(atlas, (-40, 30, 30))]
    assert "_RH_" in atlas.labels[region_at_coordinate(atlas, (40, 30, 30))]
    with pytest.raises(EmptyRegionError, match="No region"):
        region_at_coordinate(atlas, (0, 0, 200))
    with pytest.raises(InvalidParameterError, match="did you mean"):
        resolve_region(atlas, "Default_PFC")


def test_custom_atlas_computes_centroids(tmp_path):
    data = np.zeros((6, 6, 6), dtype=np.int16)
    data[:3] = 5
    data[3:] = 9
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    table = pd.DataFrame({"index": [5, 9], "name": ["a", "b"]})
    atlas = load_atlas(img, table)
    assert atlas.regions["network"].tolist() == ["all", "all"]
    assert atlas.regions.loc[0, "x"] == pytest.approx(2.0)  # voxels 0..2 at 0, 2, 4 mm
    assert atlas.regions.loc[1, "x"] == pytest.approx(8.0)
    with pytest.raises(Exception, match="absent from the atlas image"):
        load_atlas(img, pd.DataFrame({"index": [5, 7], "name": ["a", "c"]}))


def _latent_image(tmp_path, *, n_frames=120, seed=0):
    """4 regions on a 8x8x4 grid: regions 1-2 share signal A, 3-4 share signal B, plus motion."""
    rng = np.random.default_rng(seed)
    from tmsnet.simulate import band_limited_series

    shape = (8, 8, 4)
    labels = np.zeros(shape, dtype=np.int16)
    labels[:4, :4] = 1
    labels[4:, :4] = 2
    labels[:4, 4:] = 3
    labels[4:, 4:] = 4
    labels[0, 0, 0] = 0  # a background voxel inside the mask
    a, b = band_limited_series(rng, n_frames, 2.0, n_series=2)
    motion = rng.normal(size=(n_frames, 6)).cumsum(axis=0) * 0.05
    latent = {1: a, 2: a, 3: b, 4: b}
    bold = np.zeros((*shape, n_frames), dtype=np.float32)
    for lab, sig in latent.items():
        idx = np.argwhere(labels == lab)
        for v in idx:
            bold[tuple(v)] = 1000 + 5 * sig + 3 * motion[:, 0] + rng.normal(0, 2.0, n_frames)
    bold[0, 0, 0] = 1000 + rng.normal(0, 2.0, n_frames)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    img = nib.Nifti1Image(bold, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    bold_path = tmp_path / "sub-01_task-rest_space-MNI152NLin6Asym_desc-preproc_bold.nii.gz"
    img.to_filename(bold_path)
    nib.Nifti1Image(np.ones(shape, np.uint8), affine).to_filename(
        tmp_path / "sub-01_task-rest_space-MNI152NLin6Asym_desc-brain_mask.nii.gz"
    )
    conf = pd.DataFrame(motion, columns=MOTION)
    conf["csf"] = rng.normal(size=n_frames)
    conf["white_matter"] = rng.normal(size=n_frames)
    conf["global_signal"] = bold.reshape(-1, n_frames).mean(axis=0)
    conf_path = tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    conf.to_csv(conf_path, sep="\t", index=False)
    atlas = load_atlas(
        nib.Nifti1Image(labels, affine),
        pd.DataFrame(
            {"index": [1, 2, 3, 4], "name": ["A1", "A2", "B1", "B2"], "network": ["A", "A", "B", "B"]}
        ),
        name="toy",
    )
    return bold_path, conf_path, conf, atlas, labels, bold


def test_connectome_from_bold_equals_cleaning_region_means(tmp_path):
    bold_path, conf_path, conf, atlas, labels, bold = _latent_image(tmp_path)
    conn, series = connectome_from_bold(
        bold_path,
        conf_path,
        atlas,
        kind="correlation",
        cov_estimator="empirical",
        cleaning=BoldCleaningParameters(confound_strategy="minimal", global_signal_regression=False),
    )
    m = conn.matrix
    # planted structure: regions sharing a latent signal are strongly correlated, others are not
    assert m[0, 1] > 0.8 and m[2, 3] > 0.8
    assert abs(m[0, 2]) < 0.4 and abs(m[1, 3]) < 0.4
    # linearity: cleaning voxels then averaging == averaging raw voxels then the same cleaning
    raw = np.column_stack([bold[labels == k].mean(axis=0) for k in (1, 2, 3, 4)])
    cleaned, params = clean_roi_timeseries(
        raw, conf, t_r=2.0,
        cleaning=BoldCleaningParameters(confound_strategy="minimal", global_signal_regression=False),
    )
    assert params["confound_columns"] == MOTION + ["csf", "white_matter"]
    np.testing.assert_allclose(series, cleaned, atol=2e-3)
    ref = np.corrcoef(cleaned.T)
    np.testing.assert_allclose(m, ref, atol=1e-3)
    assert conn.parameters["voxels_per_region"] == [63, 64, 64, 64]


def test_custom_confound_columns_match_strategy(tmp_path):
    """The nilearn path for custom columns agrees with clean_bold given the same regressors."""
    *_, conf, atlas, labels, bold = _latent_image(tmp_path, seed=3)
    raw = np.column_stack([bold[labels == k].mean(axis=0) for k in (1, 2, 3, 4)])
    via_strategy, _ = clean_roi_timeseries(
        raw, conf, t_r=2.0,
        cleaning=BoldCleaningParameters(confound_strategy="minimal", global_signal_regression=False),
    )
    via_columns, p = clean_roi_timeseries(
        raw, conf, t_r=2.0, confound_columns=MOTION + ["csf", "white_matter"]
    )
    assert p["confound_strategy"] == "custom-columns"
    np.testing.assert_allclose(via_strategy, via_columns, atol=5e-4)
    with pytest.raises(ConfoundsError, match="not in the table"):
        clean_roi_timeseries(raw, conf, t_r=2.0, confound_columns=["nope"])
    with pytest.raises(UnknownMethodError, match="confound strategy"):
        clean_roi_timeseries(raw, conf, t_r=2.0,
                             cleaning=BoldCleaningParameters(confound_strategy="aggressive"))


def test_measures_correlation_partial_tangent():
    rng = np.random.default_rng(0)
    # chain x0 -> x1 -> x2: x0 and x2 correlate, but not partially given x1
    n = 4000
    x0 = rng.normal(size=n)
    x1 = x0 + rng.normal(size=n)
    x2 = x1 + rng.normal(size=n)
    ts = np.column_stack([x0, x1, x2])
    corr = compute_connectomes([ts], kind="correlation", cov_estimator="empirical")[0]
    np.testing.assert_allclose(corr, np.corrcoef(ts.T), atol=1e-10)
    partial = compute_connectomes([ts], kind="partial", cov_estimator="empirical")[0]
    assert corr[0, 2] > 0.5 and abs(partial[0, 2]) < 0.05 and partial[0, 1] > 0.5
    tangent = compute_connectomes([ts, ts[::-1] * 2], kind="tangent")
    assert tangent.shape == (2, 3, 3)
    with pytest.raises(InvalidParameterError, match="tangent"):
        compute_connectomes([ts], kind="tangent")
    z = edge_values(corr, "correlation")
    assert z[0, 1] == pytest.approx(np.arctanh(corr[0, 1])) and z[0, 0] == 0


def test_write_and_read_connectome(tmp_path):
    atlas = load_schaefer100()
    rng = np.random.default_rng(1)
    ts = rng.normal(size=(200, 100))
    from tmsnet.networks.connectomes import Connectome

    m = compute_connectomes([ts], kind="correlation")[0]
    conn = Connectome(
        matrix=m,
        kind="correlation",
        labels=atlas.labels,
        networks=atlas.networks,
        parameters={"kind": "correlation"},
        space="MNI152NLin6Asym",
    )
    written = write_connectome(
        conn, tmp_path, stem="sub-01_task-rest_atlas-Schaefer2018x100x7_meas-correlation"
    )
    back, labels = read_connectome(written["tsv"])
    np.testing.assert_allclose(back, m, atol=1e-12)
    assert labels == atlas.labels
    np.testing.assert_allclose(np.load(written["npy"]), m)
    side = json.loads(written["tsv_json"].read_text())
    assert side["Measure"] == "correlation" and side["Space"] == "MNI152NLin6Asym"
    assert written["figure"].read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.skipif(not (DATA / "rest01").is_dir(), reason="../shared/data/rest01 not available")
def test_rest01_within_exceeds_between_for_default_and_somatomotor():
    """Real scan (Schaefer-100): Default and SomMot connect more within than between networks."""
    atlas = load_schaefer100()
    ts = load_roi_timeseries(DATA / "rest01" / "timeseries.tsv")
    rois = pd.read_csv(DATA / "rest01" / "rois.tsv", sep="\t")
    assert rois["name"].tolist() == atlas.labels  # same parcel order as the bundled atlas
    conf = pd.read_csv(DATA / "rest01" / "confounds.tsv", sep="\t", na_values=["n/a"])
    columns = [c for c in conf.columns if c.startswith("motion_")] + ["csf", "white_matter"]
    cleaned, params = clean_roi_timeseries(
        ts, conf, t_r=2.0, confound_columns=columns,
        cleaning=BoldCleaningParameters(low_pass_hz=0.08, high_pass_hz=0.01, discard_frames=5),
    )
    assert params["n_frames_kept"] == 145
    m = compute_connectomes([cleaned], kind="correlation", cov_estimator="empirical")[0]
    table = within_between(m, atlas.networks).set_index("network")
    print(table.round(3).to_string())
    for network in ("Default", "SomMot"):
        assert table.loc[network, "within"] > table.loc[network, "between"] + 0.05
    # the difference is specific to the real network labels: shuffled labels lose it
    shuffled = np.random.default_rng(0).permutation(atlas.networks)
    t_shuf = within_between(m, shuffled).set_index("network")
    assert t_shuf.loc["Default", "difference"] < table.loc["Default", "difference"]
