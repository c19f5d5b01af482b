"""Record the outputs of the user-facing commands and compare two recordings.

Used to prove that a refactor changes no result (issue 12): record once on the
old code, once on the new, then compare::

    python tools/compare_outputs.py record /tmp/cmp/before     # on the old commit
    python tools/compare_outputs.py record /tmp/cmp/after      # on the new one
    python tools/compare_outputs.py compare /tmp/cmp/before /tmp/cmp/after

Every command writes into the same absolute working folder (``--work``), which is
then moved to the recording folder, so paths inside JSON files are equal in both
recordings. Generated inputs (a 3-subject BIDS dataset, a connectome cohort) are
made once under ``--inputs`` and reused, so both recordings read the same bytes.

The comparison: NIfTI files byte-identical after decompression (the gzip header
holds a time stamp) and as stored; TSV, FIF, XML, TXT and other files byte-identical;
JSON equal after dropping version and time fields (:data:`VOLATILE_KEYS`).
HTML reports and figures (``.html``, ``.png``, ``.svg``) are not compared: the
report is allowed to change.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: JSON keys whose values may differ between two runs of the same computation.
VOLATILE_KEYS = ("version", "time", "date", "created", "elapsed", "duration_s", "wall_s",
                 "seconds", "timestamp", "codeurl", "generatedby", "pid", "host")
#: Suffixes not compared (reports and figures may change).
SKIPPED_SUFFIXES = (".html", ".png", ".svg", ".log")


def _tmsnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "tmsnet.cli", *args]


def _make_inputs(inputs: Path) -> None:
    """Generated inputs shared by both recordings (made once, by the first recording's code)."""
    if (inputs / "done").is_file():
        return
    inputs.mkdir(parents=True, exist_ok=True)
    code = f"""
from pathlib import Path
from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
from tmsnet.simulate.bids import simulate_bids_dataset
from tmsnet.simulate.connectome import simulate_connectome_cohort, write_connectome_cohort
root = Path({str(inputs)!r})
if not (root / "bids").exists():
    simulate_bids_dataset(root / "bids", n_subjects=3, seed=5, params=SimulationParameters(n_frames=60))
if not (root / "groups").exists():
    try:  # the same cohort from code before and after simulate_connectome_cohort took parameters
        from tmsnet.simulate.connectome import ConnectomeSimulationParameters
        cohort = simulate_connectome_cohort(
            ConnectomeSimulationParameters(n_per_group=12, n_regions=40, delta=0.3), seed=4)
    except ImportError:
        cohort = simulate_connectome_cohort(n_per_group=12, n_regions=40, delta=0.3, seed=4)
    write_connectome_cohort(cohort, root / "groups")
simulate_fmriprep_dataset(root / "demo", n_subjects=1, seed=1)
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    (inputs / "done").write_text("ok\n")


def _scenarios(work: Path, inputs: Path) -> dict[str, list[list[str]]]:
    demo_bold = inputs / "demo" / "sub-01" / "func"
    bids = inputs / "bids"
    return {
        "target_demo": [_tmsnet("target", "--demo", "--out", str(work / "target_demo"), "--json",
                                "--quiet")],
        "target_demo_all": [_tmsnet("target", "--demo", "--method", "all", "--out",
                                    str(work / "target_demo_all"), "--json", "--quiet")],
        "bids_app": [
            _tmsnet(str(bids), str(work / "bids_app"), "participant", "--method", "peak", "cluster",
                    "--n-bootstrap", "10", "--random-seed", "7", "--quiet"),
            _tmsnet(str(bids), str(work / "bids_app"), "group"),
        ],
        "plan": [_tmsnet("plan", "--target", "-38", "44", "26", "--space", "MNI152NLin2009cAsym",
                         "--mt", "50", "--out", str(work / "plan"), "--json")],
        "tep_demo": [_tmsnet("tep", "--demo", "--out", str(work / "tep_demo"), "--json")],
        "connectome": [_tmsnet("connectome", "--bold", str(demo_bold / "BOLD"), "--confounds",
                               str(demo_bold / "CONFOUNDS"), "--kind", "correlation", "partial",
                               "--out", str(work / "connectome"), "--json")],
        "compare": [_tmsnet("compare", "--participants", str(inputs / "groups" / "participants.tsv"),
                            "--connectomes", str(inputs / "groups"), "--contrast", "patient", "control",
                            "--covariates", "age", "sex", "mean_fd", "--n-permutations", "200",
                            "--seed", "0", "--out", str(work / "compare"), "--json")],
    }


def _resolve_demo_files(command: list[str]) -> list[str]:
    """Replace the BOLD/CONFOUNDS placeholders with the demo subject's files."""
    out = []
    for arg in command:
        if arg.endswith("/BOLD"):
            arg = str(next(Path(arg).parent.glob("*_desc-preproc_bold.nii.gz")))
        elif arg.endswith("/CONFOUNDS"):
            arg = str(next(Path(arg).parent.glob("*_desc-confounds_timeseries.tsv")))
        out.append(arg)
    return out


def record(dest: Path, work: Path, inputs: Path, only: list[str] | None) -> int:
    _make_inputs(inputs)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    dest.mkdir(parents=True, exist_ok=True)
    log = {}
    for name, commands in _scenarios(work, inputs).items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        for command in commands:
            command = _resolve_demo_files(command)
            run = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
            (work / f"{name}.stdout").write_text(run.stdout)
            if run.returncode != 0:
                print(f"{name}: exit {run.returncode}\n{run.stderr[-2000:]}", file=sys.stderr)
                return 1
        log[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: {log[name]} s", file=sys.stderr)
    (work / "work_root.txt").write_text(str(work))
    for item in work.iterdir():
        target = dest / item.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(item), target)
    return 0


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if not any(word in k.lower() for word in VOLATILE_KEYS)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _normalized_text(path: Path) -> str:
    """The file's text with the recording's working folder replaced by ``<WORK>``."""
    text = path.read_text()
    root_file = next((p / "work_root.txt" for p in path.parents if (p / "work_root.txt").is_file()), None)
    if root_file is not None:
        text = text.replace(root_file.read_text().strip(), "<WORK>")
    # Where the package itself sits (bundled atlases, seedmaps) is not a result.
    return re.sub(r"[^\s\"']*/src/tmsnet/", "<TMSNET>/", text)


def _load_json(path: Path):
    text = _normalized_text(path)
    if path.suffix == ".stdout":
        text = text.strip().splitlines()[-1] if text.strip() else "null"
    return _strip(json.loads(text))


def _contains(before, after) -> bool:
    """Whether ``after`` holds everything ``before`` does (dicts may have gained keys)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return all(k in after and _contains(v, after[k]) for k, v in before.items())
    if isinstance(before, list) and isinstance(after, list):
        return len(before) == len(after) and all(_contains(x, y) for x, y in zip(before, after, strict=True))
    return before == after


def _same(a: Path, b: Path) -> tuple[bool, str]:
    if a.name.endswith(".nii.gz") or a.suffix == ".gz":
        raw_a, raw_b = a.read_bytes(), b.read_bytes()
        if raw_a == raw_b:
            return True, "bytes"
        if gzip.decompress(raw_a) == gzip.decompress(raw_b):
            return True, "decompressed bytes (gzip header differs)"
        return False, "decompressed bytes differ"
    if a.suffix in (".json", ".stdout"):
        try:
            old, new = _load_json(a), _load_json(b)
        except (json.JSONDecodeError, IndexError):
            return _normalized_text(a) == _normalized_text(b), "text with the working folder normalized"
        if old == new:
            return True, "JSON without version/time fields"
        if _contains(old, new):
            return True, "JSON equal on every old key, with keys added (new outputs listed)"
        return False, "JSON without version/time fields"
    if a.read_bytes() == b.read_bytes():
        return True, "bytes"
    try:
        return _normalized_text(a) == _normalized_text(b), "text with the working folder normalized"
    except UnicodeDecodeError:
        return False, "bytes"


def _files(root: Path, only: list[str] | None) -> set[Path]:
    files = {p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != "work_root.txt"}
    if only:
        files = {p for p in files if p.parts[0] in only or p.name.split(".")[0] in only}
    return files


def compare(before: Path, after: Path, only: list[str] | None = None) -> int:
    files_a, files_b = _files(before, only), _files(after, only)
    compared = sorted(p for p in files_a & files_b if not str(p).endswith(SKIPPED_SUFFIXES))
    failures = [f"only before: {p}" for p in sorted(files_a - files_b)]
    added = [f"new file: {p}" for p in sorted(files_b - files_a)]
    kinds: dict[str, int] = {}
    for rel in compared:
        same, how = _same(before / rel, after / rel)
        kinds[how] = kinds.get(how, 0) + 1
        if not same:
            failures.append(f"differs ({how}): {rel}")
    skipped = len([p for p in files_a & files_b if str(p).endswith(SKIPPED_SUFFIXES)])
    print(f"compared {len(compared)} files ({skipped} reports/figures not compared)")
    for how, n in sorted(kinds.items()):
        print(f"  {n:4d} by {how}")
    for line in added:
        print(line)
    for line in failures:
        print(line)
    verdict = "IDENTICAL" if not added else f"IDENTICAL on every old file ({len(added)} new files)"
    print(verdict if not failures else f"{len(failures)} DIFFERENCES")
    return 0 if not failures else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("dest", type=Path)
    rec.add_argument("--work", type=Path, default=Path("/tmp/tmsnet_compare_work"))
    rec.add_argument("--inputs", type=Path, default=Path("/tmp/tmsnet_compare_inputs"))
    rec.add_argument("--only", nargs="+", default=None)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    cmp_.add_argument("--only", nargs="+", default=None, help="scenarios to compare")
    args = parser.parse_args(argv)
    if args.action == "record":
        return record(args.dest, args.work, args.inputs, args.only)
    return compare(args.before, args.after, args.only)


if __name__ == "__main__":
    sys.exit(main())
