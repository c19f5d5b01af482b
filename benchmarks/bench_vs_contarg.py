"""tmsnet against contarg's ``hierarchical run`` on the same generated scans (issue 15 item 7).

Usage::

    python3 -m venv /tmp/contarg-env && /tmp/contarg-env/bin/pip install contarg
    .venv/bin/python benchmarks/bench_vs_contarg.py --contarg-python /tmp/contarg-env/bin/python \
        [--subjects 8] [--seed 271828] [--conditions 0.3:0.8 0.5:0.5] [--workdir DIR]

contarg (PyPI, Cash et al.'s reimplementation of the SNT clustering) runs in its own
environment: it pins pybids 0.15.2 and pulls niworkflows. This script does not import it;
it calls the given Python on itself (``--worker``), which imports only contarg and the
libraries it needs. For each condition ``SNR:DECOY`` (:class:`tmsnet.simulate.SimulationParameters`,
everything else at its default: 300 frames of 2 s, 2 mm, global signal and motion on), N
subjects of the full simulator are written as fMRIPrep derivatives, then:

* tmsnet, as a new user gets it: ``TargetingParameters()`` defaults, the default job
  (``auto``) and each method, on the same cleaned scan (no bootstrap: the point target);
* contarg, as its ``hierarchical run`` CLI does it in MNI space: ``find_target`` with the
  CLI's defaults (average linkage, distance threshold 0.5, no adjacency, no smoothing,
  confounds ``-gs -motion -dummy``, its Spearman "metric"), ``rank_clusters`` with unit
  weights and the centre of mass of the first-ranked cluster (``get_com_in_mm``); the TR
  is given as the CLI requires, and ``--ndummy 1``: contarg's ``-motion`` takes every
  ``trans``/``rot`` column, fMRIPrep's derivatives among them, whose first row is n/a, and
  nilearn refuses NaN confounds, so contarg runs on fMRIPrep confounds only when the first
  frame is dropped. Twice: on contarg's own regions (``DLPFCspheresmasked``
  and ``SGCsphere``, MNI152NLin6Asym 2 mm, resampled to the scan's grid by nearest
  neighbour and intersected with its brain mask, as contarg's ``clean_mask`` does in T1w
  space), and on tmsnet's seed and search masks for the same scan, so that the algorithms
  are compared on one region.

Printed per condition: every subject's error (mm) from the planted target, the median, the
count within 5 mm, the ratio to the best chance baseline of tests/accuracy_baselines.py
(fixed guess, nearest published target), and seconds per subject.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONTARG_ROIS = {"stim": "DLPFCspheresmasked", "ref": "SGCsphere"}


def _contarg_target(bold: str, confounds: str, stim: str, ref: str, t_r: float) -> list[float]:
    """contarg's ``hierarchical run`` steps on one scan; the centre of mass (mm)."""
    import pandas as pd
    from contarg.hierarchical import custom_metric, find_target, get_com_in_mm, rank_clusters

    row = pd.Series({"clnstim_mask": stim, "clnref_mask": ref, "confounds": confounds,
                     "bold_path": bold, "entities": {"subject": "x", "run": "1"}})
    table = find_target(row, "bold_path", None, distance_threshold=0.5, adjacency=False,
                        return_df=True, n_dummy=1, t_r=t_r, smoothing_fwhm=None,
                        confound_selectors=["-gs", "-motion", "-dummy"], metric=custom_metric,
                        linkage="average")
    table["clnstim_mask"] = stim
    ranked = rank_clusters(table, 1.0, 1.0, 1.0)
    best = ranked.query("overall_rank == 1").iloc[0]
    return [float(v) for v in get_com_in_mm(best)]


def _contarg_rois(reference: str, mask: str, out: Path) -> dict[str, str]:
    """contarg's bundled ROIs on the scan's grid (nearest neighbour, inside the brain mask)."""
    from importlib.resources import files

    import nibabel as nib
    from nilearn.image import resample_to_img

    brain = nib.load(mask)
    paths = {}
    for role, name in CONTARG_ROIS.items():
        roi = nib.load(str(files("contarg") / "data" / "rois"
                           / f"{name}_space-MNI152NLin6Asym_res-02.nii.gz"))
        on_grid = resample_to_img(roi, brain, interpolation="nearest", force_resample=True,
                                  copy_header=True)
        data = (np.asarray(on_grid.dataobj) > 0) & (np.asarray(brain.dataobj) > 0)
        paths[role] = str(out / f"contarg_{role}.nii.gz")
        nib.save(nib.Nifti1Image(data.astype(np.uint8), brain.affine), paths[role])
    return paths


def worker(jobs_path: str) -> None:
    """Run contarg on every job of the JSON file; write the targets beside it."""
    jobs = json.loads(Path(jobs_path).read_text())
    results = []
    for job in jobs:
        out = Path(job["bold"]).parent
        rois = _contarg_rois(job["bold"], job["mask"], out)
        entry = {}
        for name, (stim, ref) in {"contarg": (rois["stim"], rois["ref"]),
                                  "contarg on tmsnet's regions": (job["search"], job["seed"])}.items():
            start = time.perf_counter()
            entry[name] = _contarg_target(job["bold"], job["confounds"], stim, ref, job["t_r"])
            entry[f"{name} seconds"] = time.perf_counter() - start
        results.append(entry)
        print(f"contarg: {len(results)}/{len(jobs)}", file=sys.stderr, flush=True)
    Path(jobs_path).with_suffix(".out.json").write_text(json.dumps(results))


def _tmsnet_targets(subjects: list, out: Path) -> tuple[dict[str, list], list[dict]]:
    """tmsnet's default job and each method on each subject; the jobs for the contarg worker."""
    import nibabel as nib

    from tmsnet.targeting import workflow
    from tmsnet.targeting.methods import get_method

    default = workflow.TargetingParameters()
    every = workflow.TargetingParameters(methods=("cluster", "seedmap", "hierarchical", "peak"))
    found: dict[str, list] = {"tmsnet default (auto)": []}
    jobs = []
    for subject in subjects:
        start = time.perf_counter()
        scan = workflow.load_and_clean(subject.bold_path, subject.confounds_path, default.cleaning)
        regions = workflow._regions_and_context(scan, every)
        auto = workflow.choose_method(regions.context, default, regions.unavailable)
        found["tmsnet default (auto)"].append((auto.coordinate_mm, time.perf_counter() - start))
        for name in every.methods:
            start = time.perf_counter()
            target = get_method(name)(regions.context, *every.options_for(name))
            found.setdefault(f"tmsnet {name}", []).append(
                (target.coordinate_mm, time.perf_counter() - start))
        folder = Path(subject.bold_path).parent
        paths = {}
        for role, mask3d in (("seed", regions.seed3d), ("search", regions.search3d)):
            paths[role] = str(folder / f"tmsnet_{role}.nii.gz")
            nib.save(nib.Nifti1Image(mask3d.astype(np.uint8), scan.grid.affine), paths[role])
        jobs.append({"bold": str(subject.bold_path), "mask": str(subject.mask_path),
                     "confounds": str(subject.confounds_path), "t_r": float(scan.t_r), **paths})
    return found, jobs


def _baseline(subjects: list, planted: np.ndarray) -> float:
    import nibabel as nib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from accuracy_baselines import distances, nearest_published_errors, published_search_region

    _, xyz = published_search_region(nib.load(subjects[0].mask_path))
    return min(float(np.median(distances(xyz.mean(axis=0), planted))),
               float(np.median(nearest_published_errors(planted))))


def run_condition(snr: float, decoy: float, n_subjects: int, seed: int, contarg_python: str,
                  workdir: Path) -> None:
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    out = workdir / f"snr{snr}_decoy{decoy}"
    subjects = simulate_fmriprep_dataset(
        out, n_subjects=n_subjects, seed=seed,
        params=SimulationParameters(snr=snr, decoy_strength=decoy), progress=False)
    found, jobs = _tmsnet_targets(subjects, out)
    jobs_path = out / "contarg_jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    subprocess.run([contarg_python, __file__, "--worker", str(jobs_path)], check=True)
    for entry in json.loads(jobs_path.with_suffix(".out.json").read_text()):
        for name in ("contarg", "contarg on tmsnet's regions"):
            found.setdefault(name, []).append((entry[name], entry[f"{name} seconds"]))
    planted = np.array([s.target_mm for s in subjects])
    best = _baseline(subjects, planted)
    print(f"SNR {snr}, decoy {decoy}, {n_subjects} subjects (seed {seed}); best chance "
          f"baseline median {best:.1f} mm")
    for name, rows in found.items():
        error = np.linalg.norm(np.array([r[0] for r in rows]) - planted, axis=1)
        seconds = np.median([r[1] for r in rows])
        print(f"  {name:30s} median {np.median(error):5.1f} mm ({np.median(error) / best:4.2f} x "
              f"baseline), {int(np.sum(error <= 5.0))}/{error.size} within 5 mm, "
              f"{seconds:6.2f} s: " + " ".join(f"{e:5.1f}" for e in error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contarg-python", help="a Python with contarg installed")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--seed", type=int, default=271828)
    parser.add_argument("--conditions", nargs="+", default=["0.3:0.8", "0.5:0.5"])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if not args.contarg_python:
        parser.error("--contarg-python is required (see the module docstring)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tmsnet-vs-contarg-"))
    for condition in args.conditions:
        snr, decoy = (float(v) for v in condition.split(":"))
        run_condition(snr, decoy, args.subjects, args.seed, args.contarg_python, workdir)


if __name__ == "__main__":
    main()
