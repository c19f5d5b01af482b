"""End-to-end: the reports open offline in a real headless Chromium.

The browser is the system's Chromium (Debian's ``chromium`` package; ``.ci/run``
installs it), driven by Playwright with ``executable_path`` (no browser
download). Every test here is skipped, with the reason, only when no browser
is installed. Network is off: the browser context is offline and any request
that is not ``file:`` / ``data:`` / ``blob:`` is aborted and fails the test.
"""

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MAX_REPORT_BYTES = 15 * 1024 * 1024
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def find_browser() -> str | None:
    """The system Chromium/Chrome: $TMSNET_CHROMIUM, then the usual names on PATH."""
    candidates = [os.environ.get("TMSNET_CHROMIUM"), "chromium", "chromium-browser",
                  "google-chrome", "google-chrome-stable", "/usr/bin/chromium"]
    for name in candidates:
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    executable = find_browser()
    if executable is None:
        pytest.skip("No Chromium found (looked for $TMSNET_CHROMIUM, chromium, chromium-browser, "
                    "google-chrome): install it with `apt-get install chromium` to run the report "
                    "browser tests.")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageLog:
    """Console errors, page errors and non-local requests of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.remote: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

        def route(r):
            if r.request.url.startswith(LOCAL_SCHEMES):
                r.continue_()
            else:
                self.remote.append(r.request.url)
                r.abort()

        page.route("**/*", route)


def open_report(browser, path: Path, *, javascript: bool = True, wait_viewer: bool = True):
    context = browser.new_context(offline=True, java_script_enabled=javascript,
                                  viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    log = PageLog(page)
    start = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load")
    if javascript and wait_viewer:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.tmsnet-viewer')]"
            ".every(v => v.dataset.state !== 'loading')", timeout=60_000)
    elapsed = time.perf_counter() - start
    return context, page, log, elapsed


@pytest.fixture(scope="module")
def demo_outputs(short_subject, tmp_path_factory):
    """The demo job on a short generated subject: (result, written paths)."""
    from tmsnet.jobs.target import demo_annotation, run_target
    from tmsnet.targeting.workflow import TargetingParameters

    out = tmp_path_factory.mktemp("report_demo")
    job = run_target(short_subject.bold_path, short_subject.confounds_path,
                     TargetingParameters(methods=("cluster", "peak")), out_dir=out, progress=False,
                     annotate=lambda result: demo_annotation(result, short_subject.truth))
    return job.result, job.written


@pytest.fixture(scope="module")
def demo_page(browser, demo_outputs):
    """The demo report opened once (offline) for the tests that only read or click."""
    context, page, log, elapsed = open_report(browser, demo_outputs[1]["report"])
    yield page, log, elapsed
    context.close()


def test_demo_report_opens_offline_with_working_viewer(demo_page, demo_outputs, tmp_path):
    result, written = demo_outputs
    report = written["report"]
    size = report.stat().st_size
    assert size < MAX_REPORT_BYTES, f"report is {size / 1e6:.1f} MB"
    target_json = json.loads(written["target_cluster"].read_text())

    page, log, elapsed = demo_page
    viewer = page.locator("#targeting-1 .tmsnet-viewer, .tmsnet-viewer").first
    assert viewer.get_attribute("data-state") == "ready", page.inner_text(".viewer-status")
    assert log.errors == [], log.errors
    assert log.remote == [], log.remote
    assert page.locator("canvas#targeting-1-viewer-canvas").is_visible()
    box = page.locator("canvas#targeting-1-viewer-canvas").bounding_box()
    assert box["width"] > 300 and box["height"] > 300
    # The viewer painted the brain: the WebGL canvas is far from one flat colour.
    shot = Image.open(io.BytesIO(page.locator("canvas#targeting-1-viewer-canvas").screenshot()))
    assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20)) > 200

    card = page.locator("#target-coordinates")
    shown = [float(card.get_attribute(f"data-{k}")) for k in "xyz"]
    np.testing.assert_allclose(shown, [target_json[k] for k in "xyz"], atol=0.005)
    text = card.inner_text()
    assert f"({target_json['x']:.1f}, {target_json['y']:.1f}, {target_json['z']:.1f}) mm" in text
    assert target_json["space"] in text

    ready_ms = float(viewer.get_attribute("data-ready-ms"))
    page.screenshot(path=str(tmp_path / "demo_report.png"), full_page=False)
    page.locator("#targeting-1").screenshot(path=str(tmp_path / "demo_viewer.png"))
    assert (tmp_path / "demo_report.png").stat().st_size > 10_000
    print(f"\nreport {size / 1e6:.2f} MB; viewer ready {ready_ms / 1000:.2f} s after navigation; "
          f"load + viewer {elapsed:.2f} s (wall); screenshots in {tmp_path}")


def test_clicking_a_target_shows_its_values(demo_page, demo_outputs):
    result, _ = demo_outputs
    page, log, _ = demo_page
    for index, target in enumerate(result.targets):
        page.click(f"#targeting-1 button.viewer-goto[data-point='{index}']")
        page.wait_for_function(
            f"document.querySelector('#targeting-1-viewer').dataset.selected === 'target ({target.method})'")
        info = page.inner_text("#targeting-1-viewer .viewer-info")
        assert f"target ({target.method})" in info
        assert f"{target.r_at_target:.3f}" in info
        # The map value the viewer reads under the crosshair is the target's r
        # (checks that the crosshair sits on the target voxel of the right map).
        lines = info.splitlines()
        here = float(lines[lines.index("connectivity (r) here") + 1])
        assert here == pytest.approx(target.r_at_target, abs=0.005)
        assert lines[lines.index("in search region") + 1] == "yes"
    assert log.errors == []


def test_report_prints_to_pdf_with_static_images(demo_page, tmp_path):
    page, log, _ = demo_page
    page.emulate_media(media="print")
    try:
        assert page.locator("#targeting-1 .viewer-fallback img").is_visible()
        assert not page.locator("canvas#targeting-1-viewer-canvas").is_visible()
        assert not page.locator("nav.toc").is_visible()
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.emulate_media(media="screen")
    assert pdf[:5] == b"%PDF-"
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 3
    (tmp_path / "demo_report.pdf").write_bytes(pdf)


def test_report_reads_without_javascript(browser, demo_outputs):
    _, written = demo_outputs
    context, page, log, _ = open_report(browser, written["report"], javascript=False)
    try:
        fallback = page.locator("#targeting-1 .viewer-fallback img")
        assert fallback.is_visible()
        assert not page.locator("canvas#targeting-1-viewer-canvas").is_visible()
        assert page.locator("#target-coordinates").is_visible()
        assert log.remote == []
    finally:
        context.close()


def test_subject_report_assembles_and_opens(browser, demo_outputs):
    from tmsnet.report.subject import write_subject_report

    result, written = demo_outputs
    path = write_subject_report(written["report"].parent, result.entities["sub"])
    assert path.stat().st_size < MAX_REPORT_BYTES
    context, page, log, _ = open_report(browser, path)
    try:
        assert page.locator(".tmsnet-viewer").first.get_attribute("data-state") == "ready"
        card = page.locator("#target-coordinates")
        first = result.targets[0].coordinate_mm
        np.testing.assert_allclose([float(card.get_attribute(f"data-{k}")) for k in "xyz"], first,
                                   atol=0.006)
        assert log.errors == [] and log.remote == []
    finally:
        context.close()


def test_cohort_report_viewer_shows_subject_values(browser, tmp_path):
    from tmsnet.report.cohort import render_cohort_report

    targets = pd.DataFrame({
        "subject": ["01", "02", "03"], "session": [None, None, None], "method": ["cluster"] * 3,
        "x": [-40.0, -44.0, -36.0], "y": [40.0, 36.0, 44.0], "z": [28.0, 30.0, 26.0],
        "space": ["MNI152NLin2009cAsym"] * 3, "r_at_target": [-0.41, -0.22, -0.35],
        "p95_radius_mm": [4.0, 12.5, 6.0],
    })
    path = tmp_path / "cohort.html"
    path.write_text(render_cohort_report(targets))
    context, page, log, _ = open_report(browser, path)
    try:
        assert page.locator(".tmsnet-viewer").get_attribute("data-state") == "ready"
        page.click("button.viewer-goto[data-point='1']")
        page.wait_for_function("document.querySelector('.tmsnet-viewer').dataset.selected === "
                               "'sub-02 cluster'")
        info = page.inner_text(".viewer-info")
        assert "-0.220" in info and "unstable target" in info
        assert log.errors == [] and log.remote == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def combined_report(demo_outputs, tmp_path_factory):
    """The demo targeting outputs plus a treatment plan and a connectome of the same subject.

    The jobs run through the CLI on the demo's target (``tmsnet plan``) and on
    a generated Schaefer-100 ROI table (``tmsnet connectome``); then
    ``tmsnet report`` writes the combined page.
    """
    from tmsnet.cli import main
    from tmsnet.networks.atlases import load_schaefer100

    result, written = demo_outputs
    sub = result.entities["sub"]
    root = tmp_path_factory.mktemp("combined") / "derivatives"
    shutil.copytree(written["report"].parent, root)
    target = json.loads(written[f"target_{result.targets[0].method}"].read_text())
    assert main(["plan", "--target", *(str(target[k]) for k in "xyz"), "--space", target["space"],
                 "--mt", "50", "--subject", sub, "--out", str(root)]) == 0
    atlas = load_schaefer100()
    rng = np.random.default_rng(3)
    shared = rng.standard_normal((200, 7))[:, [atlas.networks_order.index(n) for n in atlas.networks]]
    table = root.parent / f"sub-{sub}_task-rest_timeseries.tsv"
    pd.DataFrame(100 + shared + rng.standard_normal(shared.shape), columns=atlas.labels).to_csv(
        table, sep="\t", index=False)
    assert main(["connectome", "--timeseries", str(table), "--t-r", "2", "--confound-strategy", "none",
                 "--no-gsr", "--kind", "correlation", "--no-report", "--out", str(root)]) == 0
    assert main(["report", str(root), "--participant-label", sub]) == 0
    plan = json.loads(next(root.glob(f"sub-{sub}/nibs/*_desc-plan_target.json")).read_text())
    return root / f"sub-{sub}_report.html", target, plan


def test_combined_subject_report_opens_offline_with_coordinates_from_the_jobs(browser, combined_report,
                                                                              tmp_path):
    path, target, plan = combined_report
    size = path.stat().st_size
    assert size < MAX_REPORT_BYTES, f"report is {size / 1e6:.1f} MB"
    context, page, log, elapsed = open_report(browser, path)
    try:
        assert page.locator(".tmsnet-viewer").first.get_attribute("data-state") == "ready"
        for anchor in ("targeting-1", "plan-1", "connectome-1"):
            assert page.locator(f"section#{anchor}").is_visible(), anchor
        # Every inlined figure decoded (no broken image).
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.alt)")
        assert broken == []

        def shown(label, space):
            row = page.locator(f"#summary-coordinates tr[data-label='{label}'][data-space='{space}']")
            assert row.count() == 1, (label, space)
            assert row.is_visible()
            return [float(row.get_attribute(f"data-{k}")) for k in "xyz"], row.inner_text()

        xyz, text = shown(f"Target ({target['method']})", target["space"])
        np.testing.assert_allclose(xyz, [target[k] for k in "xyz"], atol=0.005)
        assert f"{target['x']:.1f}" in text and f"{target['z']:.1f}" in text
        xyz, _ = shown("Plan target", plan["space"])
        np.testing.assert_allclose(xyz, plan["target_mm"], atol=0.005)
        xyz, text = shown("Plan scalp point (coil centre)", plan["space"])
        np.testing.assert_allclose(xyz, plan["scalp_point_mm"], atol=0.005)
        assert f"{plan['scalp_point_mm'][1]:.1f}" in text
        card = page.inner_text("#summary")
        assert f"depth-adjusted (Stokes) {plan['dose']['stokes_adjusted_mt_percent']:.0f} %MSO" in card
        assert "Check before use" in card and "Short scan" in card
        assert log.errors == [], log.errors
        assert log.remote == [], log.remote
        page.screenshot(path=str(tmp_path / "combined_report.png"), full_page=False)
        assert (tmp_path / "combined_report.png").stat().st_size > 10_000
        print(f"\ncombined report {size / 1e6:.2f} MB; load + viewer {elapsed:.2f} s (wall)")
    finally:
        context.close()


def test_realistic_plan_page_shows_the_field_in_the_interactive_viewer(browser, tmp_path):
    """The plan page of a realistic-head plan (template head, 2 mm): the |E| viewer loads offline
    and paints the head, and its overlay is the field map the plan wrote, in the brain (grey and
    white matter of the written labels: the same maximum, nothing outside the brain)."""
    import base64
    import gzip
    import re

    import nibabel as nib

    from tmsnet.jobs.plan import plan
    from tmsnet.navigation.plan import PlanParameters
    from tmsnet.navigation.realistic_plan import RealisticParameters

    params = PlanParameters(head_model="realistic", realistic=RealisticParameters(template_voxel_mm=2))
    _, written = plan((-38.0, 44.0, 26.0), "MNI152NLin2009cAsym", tmp_path, params)
    html_text = written["plan_html"].read_text(encoding="utf-8")
    config = json.loads(re.search(r'<script type="application/json" id="plan-1-field-viewer-config">'
                                  r'(.*?)</script>', html_text, re.S).group(1))
    overlay = next(layer for layer in config["layers"] if layer["role"] == "map")
    shown = nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(overlay["data"])))
    written_map = np.asarray(nib.load(written["efield_map"]).dataobj)
    brain = np.asarray(nib.load(written["head_labels"]).dataobj) >= 4
    assert float(np.max(shown.get_fdata())) == pytest.approx(float(written_map[brain].max()), rel=1e-4)
    assert float(written_map[~brain].max()) > float(written_map[brain].max())  # the skull's, left out
    context, page, log, _ = open_report(browser, written["plan_html"])
    try:
        viewer = page.locator("#plan-1-field .tmsnet-viewer")
        assert viewer.get_attribute("data-state") == "ready", page.inner_text(".viewer-status")
        assert log.errors == [] and log.remote == [], (log.errors, log.remote)
        shot = Image.open(io.BytesIO(page.locator("canvas#plan-1-field-viewer-canvas").screenshot()))
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20)) > 200
    finally:
        context.close()
