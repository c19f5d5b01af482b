"""The offline viewer's building blocks (no browser needed)."""

import base64
import gzip
import re

import nibabel as nib
import numpy as np
import pytest

from tmsnet.report.html import ReportSection, inline_script, json_script, render_report
from tmsnet.report.viewer import (
    NIIVUE_VERSION,
    ViewerLayer,
    ViewerPoint,
    crop_to_nonzero,
    encode_nifti,
    niivue_source,
    point_label_image,
    viewer_html,
)

AFFINE = np.array([[2.0, 0, 0, -20], [0, 2, 0, -30], [0, 0, 2, -10], [0, 0, 0, 1]])


def decode(text):
    raw = gzip.decompress(base64.b64decode(text))
    return nib.Nifti1Image.from_bytes(raw)


def test_encode_nifti_round_trips_values_and_affine():
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.8, 0.8, (8, 9, 7)).astype(np.float32)
    img = decode(encode_nifti(nib.Nifti1Image(data, AFFINE), dtype=np.int16))
    np.testing.assert_allclose(img.affine, AFFINE)
    # int16 with nibabel's scale factor: error below half a quantization step
    np.testing.assert_allclose(img.get_fdata(), data, atol=0.8 / 32767 + 1e-6)
    assert img.get_data_dtype() == np.int16


def test_point_labels_sit_at_the_points():
    ref = nib.Nifti1Image(np.zeros((30, 30, 30), np.uint8), AFFINE)
    points = [ViewerPoint("a", (0.0, 0.0, 0.0)), ViewerPoint("b", (10.0, 4.0, 20.0))]
    labels = np.asarray(point_label_image(points, ref, radius_mm=3.0).dataobj)
    inv = np.linalg.inv(AFFINE)
    for index, point in enumerate(points, start=1):
        ijk = np.rint(inv[:3, :3] @ point.xyz_mm + inv[:3, 3]).astype(int)
        assert labels[tuple(ijk)] == index
        # a 3 mm sphere on a 2 mm grid: the centre and its 6 face neighbours (2 mm away) = 7;
        # the 12 edge neighbours are 2.83 mm away: 19 voxels in all
        assert (labels == index).sum() == 19
    with pytest.raises(ValueError, match="finite"):
        ViewerPoint("bad", (0.0, np.nan, 1.0))


def test_crop_keeps_every_voxel_at_its_mm_position():
    data = np.zeros((20, 20, 20), np.float32)
    data[5:8, 10:12, 3] = [[1, 2], [3, 4], [5, 6]]
    img = nib.Nifti1Image(data, AFFINE)
    cropped = crop_to_nonzero(img, margin=1)
    assert cropped.shape == (5, 4, 3)
    small = np.asarray(cropped.dataobj)
    for ijk in np.argwhere(small != 0):
        xyz = cropped.affine[:3, :3] @ ijk + cropped.affine[:3, 3]
        orig = np.rint(np.linalg.inv(AFFINE)[:3, :3] @ xyz + np.linalg.inv(AFFINE)[:3, 3]).astype(int)
        assert data[tuple(orig)] == small[tuple(ijk)]


def test_scripts_cannot_break_out_of_the_page():
    tag = inline_script('var s = "</script><b>x</b>";')
    assert tag.count("</script>") == 1 and tag.endswith("</script>")
    data = json_script({"a": "</script><img src=x onerror=alert(1)>"}, element_id="cfg")
    assert data.count("</script>") == 1 and "<img" not in data
    with pytest.raises(ValueError):
        inline_script("<!-- x")


def test_render_report_inlines_each_script_once():
    section = ReportSection("A", "<p>a</p>", "a", scripts=("var x = 1;",), styles=(".a{}",))
    other = ReportSection("B", "<p>b</p>", "b", scripts=("var x = 1;", "var y = 2;"))
    page = render_report(title="t", summary_html="", sections=[section, other])
    assert page.count("var x = 1;") == 1 and page.count("var y = 2;") == 1
    assert page.count(".a{}") == 1


def test_vendored_niivue_is_complete_and_licensed():
    from importlib import resources

    source = niivue_source()
    assert len(source) > 1_000_000 and "NVImage" in source and "loadFromBase64" in source
    assert "<!--" not in source
    folder = resources.files("tmsnet.data").joinpath("js")
    licence = folder.joinpath("LICENSE-niivue.txt").read_text()
    assert "BSD 2-Clause" in licence and NIIVUE_VERSION in licence
    assert "gl-matrix" in folder.joinpath("THIRD_PARTY_LICENSES-niivue.txt").read_text()


def test_viewer_html_is_self_contained_and_has_a_fallback():
    data = np.zeros((20, 20, 20), np.float32)
    data[8:12, 8:12, 8:12] = -0.5
    mask = (data != 0).astype(np.uint8)
    layers = [ViewerLayer("map", nib.Nifti1Image(data, AFFINE), kind="map", units="r"),
              ViewerLayer("mask", nib.Nifti1Image(mask, AFFINE), kind="mask", color="#E69F00")]
    body, scripts, styles = viewer_html(viewer_id="v1", layers=layers,
                                        points=[ViewerPoint("t", (0.0, 0.0, 10.0), values={"r": -0.5})],
                                        fallback_html="<p>static</p>",
                                        background=nib.Nifti1Image(np.ones((20, 20, 20), np.uint8), AFFINE))
    assert 'class="viewer-fallback print-fallback"><p>static</p>' in body
    assert 'data-state="loading"' in body
    config = re.search(r'<script type="application/json" id="v1-config">(.*?)</script>', body).group(1)
    import json

    cfg = json.loads(config)
    assert [layer["role"] for layer in cfg["layers"]] == ["background", "map", "mask", "points"]
    assert cfg["layers"][1]["cal_max"] == pytest.approx(0.5)
    assert "http://" not in body and "https://" not in body
    assert scripts[0] == niivue_source()
    with pytest.raises(ValueError):
        ViewerLayer("x", nib.Nifti1Image(data, AFFINE), kind="surface")
    with pytest.raises(ValueError):
        ViewerLayer("x", nib.Nifti1Image(data, AFFINE), kind="mask", color="orange")
