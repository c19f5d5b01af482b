"""Benchmark: Network-Based Statistic, 5,000 permutations, 40 subjects x 100 regions (4,950 edges).

Measures wall time and peak Python heap (tracemalloc) of tmsnet's vectorised Freedman-Lane NBS, and,
as the baseline in the same run, a straightforward implementation (refit the GLM on each permuted data
set (precomputed pseudo-inverse), one connected_components call per permutation) timed on a subset
of permutations
and scaled to 5,000. Prints the ratio.

Usage: .venv/bin/python benchmarks/bench_nbs.py [--n-permutations 5000] [--baseline-permutations 200]
"""

import argparse
import os
import platform
import resource
import time
import tracemalloc

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from tmsnet.networks.connectomes import edge_values
from tmsnet.networks.nbs import network_based_statistic
from tmsnet.networks.stats import make_design, upper_triangle
from tmsnet.simulate.connectome import ConnectomeSimulationParameters, simulate_connectome_cohort


def naive_nbs_null(edges, X, n_regions, threshold, perms):
    """Baseline: explicit Freedman-Lane refit + per-permutation component search."""
    Z = X[:, 1:]
    hz = Z @ np.linalg.pinv(Z)
    rz = edges - hz @ edges
    fitted = hz @ edges
    i, j = np.triu_indices(n_regions, 1)
    xtx_inv = np.linalg.inv(X.T @ X)
    pinv = np.linalg.pinv(X)
    df = X.shape[0] - X.shape[1]
    out = []
    for perm in perms:
        y = fitted + rz[perm]
        beta = pinv @ y
        resid = y - X @ beta
        t = beta[0] / np.sqrt((resid**2).sum(0) / df * xtx_inv[0, 0])
        best = 0
        for supra in (t > threshold, t < -threshold):
            if supra.any():
                g = sparse.coo_matrix((np.ones(supra.sum()), (i[supra], j[supra])), shape=(n_regions,) * 2)
                _, lab = connected_components(g.tocsr(), directed=False)
                best = max(best, np.bincount(lab[i[supra]]).max())
        out.append(best)
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-permutations", type=int, default=5000)
    ap.add_argument("--baseline-permutations", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=20, n_regions=100, delta=0.25), seed=1)
    edges, _ = upper_triangle(edge_values(cohort.matrices, "correlation"))
    design = make_design(
        cohort.participants,
        kind="two-sample",
        contrast=("patient", "control"),
        covariates=["age", "sex", "mean_fd"],
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"data: {edges.shape[0]} subjects x {edges.shape[1]} edges (100 regions), design {design.columns}")

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = network_based_statistic(edges, design, n_regions=100, n_permutations=args.n_permutations,
                                         random_seed=0)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    network_based_statistic(edges, design, n_regions=100, n_permutations=args.n_permutations,
                            random_seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    network_based_statistic(
        edges, design, n_regions=100, n_permutations=args.n_permutations, random_seed=0, n_jobs=2
    )
    t_par = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    perms = [rng.permutation(edges.shape[0]) for _ in range(args.baseline_permutations)]
    t0 = time.perf_counter()
    naive_nbs_null(edges, design.X, 100, 3.0, perms)
    t_naive = (time.perf_counter() - t0) * args.n_permutations / args.baseline_permutations
    best = result.components[0]
    print(f"largest component: {best.n_edges} edges, p_FWER = {best.p_fwer:.4f}")
    print(f"tmsnet NBS, {args.n_permutations} permutations, n_jobs=1: median {np.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"tmsnet NBS, n_jobs=2 (joblib loky): {t_par:.2f} s")
    print(f"peak traced memory (tracemalloc): {peak / 2**20:.1f} MiB; process max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"baseline (per-permutation refit + components), scaled from {args.baseline_permutations}: "
          f"{t_naive:.2f} s")
    print(f"ratio baseline / tmsnet: {t_naive / np.median(times):.1f}x")


if __name__ == "__main__":
    main()
