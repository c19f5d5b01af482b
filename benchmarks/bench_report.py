"""How fast the demo report opens in headless Chromium, and how big it is.

Renders the targeting report of a short generated subject (100 frames; the
report itself does not depend on the scan length), then opens it N times in
the system Chromium (Playwright, offline, fresh context each time) and prints:

* size of the HTML file (MB);
* time to the ``load`` event and to the interactive viewer being ready
  (``data-ready-ms`` written by the page, ms after navigation start);
* baseline in the same run: the same file opened with JavaScript off (static
  page: text, tables, inlined PNG figures), time to ``load``;
* ratio viewer-ready / static load.

Usage: ``.venv/bin/python benchmarks/bench_report.py [--repeats 5]``
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tmsnet.jobs.target import demo_annotation, run_target
from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
from tmsnet.targeting.workflow import TargetingParameters

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def open_once(browser, path: Path, javascript: bool) -> tuple[float, float | None]:
    context = browser.new_context(offline=True, java_script_enabled=javascript,
                                  viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(path.as_uri(), wait_until="load")
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") if javascript \
        else None
    ready = None
    if javascript:
        page.wait_for_function("document.querySelector('.tmsnet-viewer').dataset.state !== 'loading'",
                               timeout=120_000)
        assert page.get_attribute(".tmsnet-viewer", "data-state") == "ready"
        ready = float(page.get_attribute(".tmsnet-viewer", "data-ready-ms"))
    context.close()
    return load_ms, ready


def open_static(browser, path: Path) -> float:
    context = browser.new_context(offline=True, java_script_enabled=False,
                                  viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load")
    elapsed = (time.perf_counter() - start) * 1000
    context.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subject = simulate_fmriprep_dataset(root / "data", n_subjects=1, seed=11,
                                            params=SimulationParameters(n_frames=100))[0]
        start = time.perf_counter()
        written = run_target(subject.bold_path, subject.confounds_path,
                             TargetingParameters(methods=("cluster", "peak")), out_dir=root / "out",
                             progress=False,
                             annotate=lambda result: demo_annotation(result, subject.truth)).written
        print(f"targeting job incl. report rendering: {time.perf_counter() - start:.1f} s")
        report = written["report"]
        print(f"report size: {report.stat().st_size / 1e6:.2f} MB")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=ARGS)
            print(f"browser: {browser.version}; load average {os.getloadavg()[0]:.2f}")
            open_once(browser, report, True)  # warm-up (disk cache, shader cache)
            loads, readies, statics = [], [], []
            for _ in range(args.repeats):
                load_ms, ready_ms = open_once(browser, report, True)
                loads.append(load_ms)
                readies.append(ready_ms)
                statics.append(open_static(browser, report))
            browser.close()
        print(f"load event (JS on):      median {statistics.median(loads):.0f} ms  "
              f"{[round(v) for v in loads]}")
        print(f"viewer ready:            median {statistics.median(readies):.0f} ms  "
              f"{[round(v) for v in readies]}")
        print(f"baseline, JS off, load:  median {statistics.median(statics):.0f} ms  "
              f"{[round(v) for v in statics]}")
        print(f"ratio viewer ready / static load: "
              f"{statistics.median(readies) / statistics.median(statics):.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
