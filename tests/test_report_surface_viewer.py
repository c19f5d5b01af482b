"""The surface viewer of the targeting report (issue 15 item 5): NiiVue showing the template
mesh, both hemispheres, with the sgACC map per vertex and the targets, inlined in the page.

The inlined GIFTI text is decoded here with nibabel (an independent reader) and compared with
the template mesh and with the map files the job wrote; the browser tests open the report in
headless Chromium with every non-local request aborted and read the viewer's own state.
"""

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from test_report_browser import browser, open_report  # noqa: F401 - the browser fixture
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.report.html import ReportSection, asset, render_report
from tmsnet.report.viewer import (
    MESH_COORDINATE_STEP_MM,
    POINT_RADIUS_MM,
    ViewerPoint,
    ViewerSurface,
    niivue_source,
    surface_viewer_html,
)
from tmsnet.simulate.surface import simulate_surface_dataset
from tmsnet.surface.mesh import load_template_mesh
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

HEMIS = {"L": "left", "R": "right"}
#: The report of one fsaverage5 scan: NiiVue (2.3 MB) + two inflated meshes with their maps
#: and sulcal shading (0.6 MB) + the static figures. Seen: 3.26 MB on the LEMON scan.
MAX_REPORT_BYTES = 4_000_000


def decode(text):
    return nib.gifti.GiftiImage.from_bytes(text.encode("ascii"))


def config_of(html_text, viewer_id):
    found = re.search(rf'<script type="application/json" id="{viewer_id}-config">(.*?)</script>',
                      html_text, re.S)
    assert found, f"no config of {viewer_id}"
    return json.loads(found.group(1))


def planted_values(n, hemi, seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.6, 0.6, n)
    values[rng.choice(n, 800, replace=False)] = np.nan  # a "medial wall"
    return values if hemi == "L" else -values


@pytest.fixture(scope="module")
def inflated():
    return {h: load_template_mesh("fsaverage5", name, "inflated") for h, name in HEMIS.items()}


def surfaces_on(meshes):
    return [ViewerSurface(h, m.coords_mm, m.faces, planted_values(m.n_vertices, h, i),
                          background=np.linspace(-1, 1, m.n_vertices))
            for i, (h, m) in enumerate(meshes.items())]


def test_inlined_meshes_and_maps_decode_to_the_template_and_the_map(inflated):
    surfaces = surfaces_on(inflated)
    point = ViewerPoint("target (cluster)", (-40.0, 30.0, 35.0), group="cluster",
                        values={"r_at_target": -0.4}, hemisphere="L", vertex=8671)
    body, scripts, _ = surface_viewer_html(viewer_id="sv", surfaces=surfaces, points=[point],
                                           fallback_html="<p>static</p>", units="r")
    cfg = config_of(body, "sv")
    assert 'class="tmsnet-viewer tmsnet-surface-viewer"' in body and 'data-state="loading"' in body
    assert [m["role"] for m in cfg["meshes"]] == ["hemisphere", "hemisphere", "point"]
    for entry, surface in zip(cfg["meshes"][:2], surfaces, strict=True):
        mesh = inflated[surface.hemisphere]
        image = decode(entry["gifti"])
        coords, faces = image.agg_data(("pointset", "triangle"))
        assert coords.shape == (10242, 3) and coords.dtype == np.float32
        np.testing.assert_array_equal(faces, mesh.faces)
        shifted = mesh.coords_mm + np.asarray(entry["offset_mm"])
        assert np.abs(coords - shifted).max() <= MESH_COORDINATE_STEP_MM / 2 + 1e-5
        background, overlay = (decode(layer["gifti"]).darrays[0].data for layer in entry["layers"])
        assert [layer["role"] for layer in entry["layers"]] == ["background", "map"]
        expected = surface.values.astype(np.float32)
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(overlay[finite], expected[finite])  # float32 exact
        assert np.all(overlay[~finite] == 0) and (~finite).sum() == 800  # bare, below threshold
        assert background.shape == (10242,)
        assert np.abs(background - surface.background).max() <= 2.0 / 256  # shading, quantized
    # inflated hemispheres are each centred on x = 0: drawn apart, with a gap
    left, right = (decode(m["gifti"]).agg_data("pointset") for m in cfg["meshes"][:2])
    assert 4.0 <= right[:, 0].min() - left[:, 0].max() <= 12.0
    # the target sits at its vertex of the displayed (shifted, inflated) mesh
    shown = inflated["L"].coords_mm[8671] + np.asarray(cfg["meshes"][0]["offset_mm"])
    np.testing.assert_allclose(cfg["points"][0]["display_mm"], shown, atol=1e-3)
    assert cfg["points"][0]["xyz_mm"] == [-40.0, 30.0, 35.0]  # the table keeps the template point
    sphere = decode(cfg["meshes"][2]["gifti"]).agg_data("pointset")
    np.testing.assert_allclose(np.linalg.norm(sphere - shown, axis=1), POINT_RADIUS_MM, atol=0.02)
    assert scripts == (niivue_source(), asset("viewer_common.js"), asset("surface_viewer.js"))
    # the threshold: 35 % of the 99.5th percentile of |r| (0.6 * 0.995 here)
    assert cfg["map"]["cal_max"] == pytest.approx(0.597, abs=0.002)
    assert cfg["map"]["cal_min"] == pytest.approx(0.35 * cfg["map"]["cal_max"])


def test_folded_hemispheres_stay_where_they_are():
    pial = {h: load_template_mesh("fsaverage5", name, "pial") for h, name in HEMIS.items()}
    body, _, _ = surface_viewer_html(viewer_id="sv", surfaces=surfaces_on(pial), fallback_html="")
    cfg = config_of(body, "sv")
    assert [m["offset_mm"] for m in cfg["meshes"]] == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert cfg["points"] == []


def test_page_names_no_url_and_loads_nothing(inflated):
    body, scripts, styles = surface_viewer_html(
        viewer_id="surface-viewer", surfaces=surfaces_on(inflated),
        points=[ViewerPoint("t", (0.0, 0.0, 0.0), hemisphere="R", vertex=5)],
        fallback_html="<p>static</p>")
    section = ReportSection("Surface", body, "surface", scripts=scripts, styles=styles)
    page = render_report(title="t", summary_html="", sections=[section])
    assert page.count(niivue_source()) == 1  # the viewer library is inlined, once
    assert not re.search(r"<script[^>]*\bsrc=", page) and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    own = asset("surface_viewer.js") + asset("viewer_common.js") + section.html
    assert "http://" not in own and "https://" not in own and "fetch(" not in own
    assert "<!DOCTYPE GIFTI" not in page  # the GIFTI text is inlined without its DTD URL


def test_bad_surfaces_and_points_are_refused(inflated):
    mesh = inflated["L"]
    with pytest.raises(ValueError, match="one value per vertex"):
        ViewerSurface("L", mesh.coords_mm, mesh.faces, np.zeros(10))
    with pytest.raises(ValueError, match="'L' or 'R'"):
        ViewerSurface("left", mesh.coords_mm, mesh.faces, np.zeros(mesh.n_vertices))
    surface = ViewerSurface("L", mesh.coords_mm, mesh.faces, np.zeros(mesh.n_vertices))
    with pytest.raises(ValueError, match="distinct hemispheres"):
        surface_viewer_html(viewer_id="sv", surfaces=[surface, surface], fallback_html="")
    with pytest.raises(ValueError, match="needs the hemisphere"):
        surface_viewer_html(viewer_id="sv", surfaces=[surface], fallback_html="",
                            points=[ViewerPoint("t", (0.0, 0.0, 0.0), hemisphere="R", vertex=3)])
    with pytest.raises(ValueError, match="is not on the"):
        surface_viewer_html(viewer_id="sv", surfaces=[surface], fallback_html="",
                            points=[ViewerPoint("t", (0.0, 0.0, 0.0), hemisphere="L", vertex=10242)])


@pytest.fixture(scope="module")
def surface_job(tmp_path_factory):
    """The surface job with its report on one generated fsaverage5 subject."""
    from tmsnet.jobs.target import run_surface_target

    root = tmp_path_factory.mktemp("surface_report")
    subject = simulate_surface_dataset(root / "in", n_subjects=1, seed=4, snr=0.8, n_frames=120)[0]
    parameters = TargetingParameters(methods=("cluster", "peak"),
                                     cleaning=BoldCleaningParameters(confounds_all_columns=True),
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    return run_surface_target(subject.bold_left, subject.confounds, parameters, out_dir=root / "out")


def test_job_report_shows_the_written_maps_on_the_inflated_template(surface_job, inflated):
    report = Path(surface_job.written["report"])
    page = report.read_text()
    assert report.stat().st_size < MAX_REPORT_BYTES
    cfg = config_of(page, "targeting-1-viewer")
    hemispheres = [m for m in cfg["meshes"] if m["role"] == "hemisphere"]
    assert [m["hemisphere"] for m in hemispheres] == ["L", "R"]
    for entry in hemispheres:
        hemi = entry["hemisphere"]
        coords = decode(entry["gifti"]).agg_data("pointset")
        assert coords.shape == (10242, 3)
        shifted = inflated[hemi].coords_mm + np.asarray(entry["offset_mm"])
        assert np.abs(coords - shifted).max() <= MESH_COORDINATE_STEP_MM / 2 + 1e-5
        written = nib.load(surface_job.written[f"connectivity_r_{hemi}"]).darrays[0].data
        overlay = decode(entry["layers"][-1]["gifti"]).darrays[0].data
        np.testing.assert_array_equal(overlay, np.nan_to_num(written, nan=0.0))
        assert 500 < int(np.isnan(written).sum()) < 1200  # the generated medial wall, left bare
    targets = {t.method: t for t in surface_job.result.targets}
    assert [p["label"] for p in cfg["points"]] == [f"target ({m})" for m in targets]
    for record in cfg["points"]:
        target = targets[record["values"]["method"]]
        assert (record["hemisphere"], record["vertex"]) == (target.details["hemisphere"],
                                                            target.details["vertex"])
        np.testing.assert_allclose(record["xyz_mm"], np.round(target.coordinate_mm, 2), atol=0.006)
    assert 'alt="sgACC connectivity on the inflated left hemisphere' in page  # static stand-in


def nearest_vertex(cfg, mm):
    """(hemisphere, vertex, r) of the displayed vertex nearest to ``mm`` (numpy, not NiiVue)."""
    best = None
    for entry in (m for m in cfg["meshes"] if m["role"] == "hemisphere"):
        coords = decode(entry["gifti"]).agg_data("pointset")
        distance = np.linalg.norm(coords - np.asarray(mm), axis=1)
        index = int(np.argmin(distance))
        if best is None or distance[index] < best[0]:
            r = float(decode(entry["layers"][-1]["gifti"]).darrays[0].data[index])
            best = (float(distance[index]), entry["hemisphere"], index, r)
    return best


def test_report_viewer_runs_offline_and_reads_the_map_where_clicked(browser, surface_job):  # noqa: F811
    report = Path(surface_job.written["report"])
    cfg = config_of(report.read_text(), "targeting-1-viewer")
    context, page, log, _ = open_report(browser, report)
    try:
        root = page.locator("#targeting-1-viewer")
        assert root.get_attribute("data-state") == "ready", page.locator(".viewer-status").inner_text()
        assert log.remote == [] and log.errors == []
        counts = page.evaluate("() => document.querySelector('#targeting-1-viewer').tmsnetViewer"
                               ".meshes.map(m => m.pts.length / 3)")
        assert counts == [10242, 10242] + [162] * len(cfg["points"])
        # it opens on the first target, facing it, with its values
        assert root.get_attribute("data-selected") == cfg["points"][0]["label"]
        first = cfg["points"][0]
        assert root.get_attribute("data-vertex") == f"{first['hemisphere']} {first['vertex']}"
        # double-click the surface: the read-out is the map at the nearest vertex
        page.evaluate("""() => {
            const nv = document.querySelector('#targeting-1-viewer').tmsnetViewer;
            const show = nv.onLocationChange;
            nv.onLocationChange = (loc) => { window.picked = Array.from(loc.mm).slice(0, 3); show(loc); };
        }""")
        canvas = page.locator("#targeting-1-viewer canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.dblclick(box["x"] + 0.42 * box["width"], box["y"] + 0.45 * box["height"])
        page.wait_for_function("() => window.picked !== undefined", timeout=10_000)
        picked = page.evaluate("() => window.picked")
        distance, hemi, vertex, r = nearest_vertex(cfg, picked)
        assert distance < 3.0  # the picked point lies on the surface
        assert root.get_attribute("data-vertex") == f"{hemi} {vertex}"
        info = root.locator(".viewer-info").inner_text()
        assert f"{r:.3f}" in info
        # a target's Show button turns to it and shows its values
        page.locator("#targeting-1-viewer button.viewer-goto").last.click()
        assert root.get_attribute("data-selected") == cfg["points"][-1]["label"]
        assert log.remote == [] and log.errors == []
    finally:
        context.close()
