"""Benchmark of the TMS-EEG cleaning chain: 64 channels, 5 kHz, 150 trials, both ICA rounds.

Prints the wall time and the peak traced memory (tracemalloc: numpy and Python
allocations) of every step, the total, and a baseline measured in the same run
(epoching + pulse interpolation + resampling alone), as a ratio.

Usage: .venv/bin/python benchmarks/bench_tep.py [--channels 64] [--sfreq 5000] [--trials 150]
"""

import argparse
import platform
import resource
import time
import tracemalloc

import mne
import numpy as np

from tmsnet.eeg.cleaning import CleaningParameters, clean_tms_eeg
from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--sfreq", type=float, default=5000.0)
    ap.add_argument("--trials", type=int, default=150)
    ap.add_argument("--no-tracemalloc", action="store_true")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, mne {mne.__version__}, "
          f"{platform.machine()}")
    t0 = time.perf_counter()
    sim = simulate_tms_eeg(EegSimulationParameters(n_channels=args.channels, sfreq=args.sfreq,
                                                   n_trials=args.trials), seed=0)
    print(f"simulation: {time.perf_counter() - t0:.1f} s "
          f"({sim.raw.n_times} samples x {args.channels} ch, {sim.raw.get_data().nbytes / 2**20:.0f} MiB)")

    # baseline: epoching + cubic interpolation + resampling only
    base = CleaningParameters(bad_channels=False, bad_trials=False, ica1=False, ica2=False,
                              l_freq=None, h_freq=None, line_freq=None, reference=None, baseline=None)
    t0 = time.perf_counter()
    clean_tms_eeg(sim.raw, sim.events, base)
    t_base = time.perf_counter() - t0

    if not args.no_tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    res = clean_tms_eeg(sim.raw, sim.events, CleaningParameters())
    total = time.perf_counter() - t0
    if not args.no_tracemalloc:
        tracemalloc.stop()
    print("\n| step | wall (s) | peak traced memory (MiB) |\n|---|---|---|")
    for s in res.steps:
        peak = f"{s['peak_mib']:.0f}" if s["peak_mib"] is not None else "-"
        print(f"| {s['step']} | {s['seconds']:.2f} | {peak} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| **total** | **{total:.1f}** | max RSS of the process {rss:.0f} MiB |")
    print(f"\nbaseline (epoch + interpolate + resample): {t_base:.1f} s; ratio full / baseline = "
          f"{total / t_base:.1f}")
    for s in res.steps:
        if s["step"].startswith("ica"):
            print(s["step"], "iterations", s["details"].get("iterations"), "removed",
                  [r["label"] for r in s["details"]["removed"]])


if __name__ == "__main__":
    main()
