"""Issue 13, must-have 3: the target's uncertainty checked from both sides, against planted truth.

* The bootstrap 95 % radius over repeated scans of several generated layouts:
  it covers the planted target at 90-99 % (not too narrow, not too wide) and
  lies within 0.5-2x the empirical 95th percentile of the repeats' errors.
* Split-half against a planted answer: scans whose two halves carry their
  targets at known, different places.
* The moving-block bootstrap's blocks: contiguous, of the stated length, never
  across a run boundary, from every possible start; and the job really
  resamples (and halves) the frames that way.

The simulator (:mod:`tmsnet.simulate.targeting_block`) plants its targets from
its own random layout; it imports none of the uncertainty code tested here.
The bigger run of the calibration check is benchmarks/check_bootstrap_coverage.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import tmsnet.targeting.resampling as resampling
from tmsnet.simulate.targeting_block import simulate_targeting_block
from tmsnet.targeting.methods import TargetingContext, get_method
from tmsnet.targeting.results import Target
from tmsnet.targeting.uncertainty import (
    UncertaintyParameters,
    block_bootstrap_indices,
    method_uncertainty,
    split_half,
)

N_FRAMES = 300  # 10 min at TR 2 s: a normal-length scan (short scans are issue 14's)


def _context(block, data: np.ndarray | None = None) -> TargetingContext:
    """The block's context, optionally with other data on the same grid and regions."""
    ctx = TargetingContext(**block.context_kwargs())
    if data is None:
        return ctx
    return TargetingContext(data=np.ascontiguousarray(data, dtype=np.float32),
                            brain_mask=ctx.brain_mask, affine=ctx.affine,
                            seed_voxels=ctx.seed_voxels, search_voxels=ctx.search_voxels,
                            space=ctx.space)


# --------------------------------------------------------------------------- 95 % radius


def test_bootstrap_95_radius_is_calibrated_from_both_sides():
    """Several layouts x repeated scans: coverage 0.90-0.99 and radius 0.5-2x the p95 error.

    Each layout (``seed``) is one person with a planted target; each repeat is a
    new 10-minute scan of that person. Per scan: the cluster target, its
    reported 95 % radius (40-resample block bootstrap) and its error against
    the planted target. Too narrow fails the coverage floor; too wide fails
    the coverage ceiling and the width ratio (a coverage-only check passes any
    radius that is too wide).
    """
    layouts, repeats = range(6), range(10)
    covered, ratios = [], []
    for seed in layouts:
        errors, radii = [], []
        for repeat in repeats:
            block = simulate_targeting_block(seed=seed, repeat=repeat, n_frames=N_FRAMES)
            ctx = _context(block)
            target = get_method("cluster")(ctx)
            u = method_uncertainty(ctx, target, t_r=block.t_r, parameters=UncertaintyParameters(
                n_bootstrap=40, scan_length_fractions=None, random_seed=repeat))
            errors.append(float(np.linalg.norm(target.coordinate_mm - block.target_mm)))
            radii.append(u.summary["p95_radius_mm"])
        errors, radii = np.array(errors), np.array(radii)
        covered.extend(errors <= radii)
        # The radius a perfect method would report: the 95th percentile of the errors.
        ratios.append(float(np.median(radii) / np.percentile(errors, 95)))
    # Seen (2026-12-01): 57/60 covered (0.95: 3 scans above the floor of 54, 2 below the
    # ceiling of 59); width ratios 0.97-2.29 by layout, median 1.24 (x1.6 under the ceiling of
    # 2, x2.5 over the floor of 0.5). The radius x3 covers 60/60 with median ratio 3.7.
    # Bigger run (benchmarks/check_bootstrap_coverage.py, 10 other layouts, 100 resamples):
    # coverage 203/210 = 0.967 (Wilson [0.93, 0.98]), width ratio median 1.03 ([0.95, 1.35]).
    coverage = float(np.mean(covered))
    print(f"coverage {coverage:.3f} ({int(np.sum(covered))}/{len(covered)}); width ratios",
          np.round(ratios, 2), "median", round(float(np.median(ratios)), 2))
    assert 0.90 <= coverage <= 0.99, coverage
    assert 0.5 <= float(np.median(ratios)) <= 2.0, ratios


# --------------------------------------------------------------------------- split-half


def _far_pairs(n_pairs: int, min_mm: float = 20.0) -> list[tuple[object, object]]:
    """Disjoint pairs of layouts whose planted targets lie >= ``min_mm`` apart (first found)."""
    pairs, waiting = [], []
    for seed in range(40):
        b = simulate_targeting_block(seed=seed, n_frames=N_FRAMES)
        a = next((a for a in waiting if np.linalg.norm(a.target_mm - b.target_mm) >= min_mm), None)
        if a is None:
            waiting.append(b)
            continue
        waiting = [w for w in waiting if w is not a]
        pairs.append((a, b))
        if len(pairs) == n_pairs:
            return pairs
    raise AssertionError(f"fewer than {n_pairs} pairs of layouts {min_mm} mm apart")


def test_split_half_finds_the_targets_planted_in_each_half():
    """First half = a scan of person A, second half = a scan of person B (10 min each).

    The first-half target must lie nearer A's planted target than B's, the
    second nearer B's, and the split-half distance must be close to the
    distance between the planted targets. A split of interleaved frames (odd
    and even) mixes A and B in both halves, so which half lands on which
    planted target is a coin toss (computed and printed here as the baseline:
    it lands 3 of the 8 halves of the 4 pairs on their own target; all 8 would
    take odds of about 2^-8). With two runs, each run is halved: runs of
    [A/2 B/2 | A/2 B/2] must give the same answer (halving the whole scan
    would mix A and B). Seen: distance within 19 % of the planted one (limit 35 %).
    """
    for a, b in _far_pairs(4):
        truth = float(np.linalg.norm(a.target_mm - b.target_mm))
        whole = _context(a, np.concatenate([a.data, b.data]))
        half = N_FRAMES // 2
        runs = _context(a, np.concatenate([a.data[:half], b.data[:half],
                                           a.data[half:], b.data[half:]]))
        interleaved = [get_method("cluster")(whole.subset(frames=np.arange(k, 2 * N_FRAMES, 2)))
                       for k in (0, 1)]
        baseline = [bool(np.linalg.norm(t.coordinate_mm - own.target_mm)
                         < np.linalg.norm(t.coordinate_mm - other.target_mm))
                    for t, own, other in zip(interleaved, (a, b), (b, a), strict=True)]
        for ctx, run_lengths in ((whole, None), (runs, [N_FRAMES, N_FRAMES])):
            s = split_half(ctx, "cluster", run_lengths=run_lengths)
            first, second = np.array(s["split_half_first_mm"]), np.array(s["split_half_second_mm"])
            print(f"planted {truth:.1f} mm, split-half {s['split_half_distance_mm']:.1f} mm, "
                  f"interleaved split right in halves: {baseline}")
            assert np.linalg.norm(first - a.target_mm) < np.linalg.norm(first - b.target_mm)
            assert np.linalg.norm(second - b.target_mm) < np.linalg.norm(second - a.target_mm)
            assert s["split_half_distance_mm"] == pytest.approx(truth, abs=0.35 * truth)


def test_split_half_of_a_stationary_scan_is_small_against_the_search_region():
    """Two halves of one person's 20-minute scan: median split-half distance << region size."""
    distances = []
    for seed in range(6):
        a = simulate_targeting_block(seed=seed, repeat=0, n_frames=N_FRAMES)
        b = simulate_targeting_block(seed=seed, repeat=1, n_frames=N_FRAMES)
        ctx = _context(a, np.concatenate([a.data, b.data]))
        distances.append(split_half(ctx, "cluster")["split_half_distance_mm"])
    search_mm = ctx.voxel_mm(ctx.search_voxels)
    extent = float(np.linalg.norm(search_mm.max(axis=0) - search_mm.min(axis=0)))
    print("stationary split-half (mm):", np.round(distances, 1), "search region diagonal", extent)
    assert np.median(distances) <= 0.15 * extent, distances


# --------------------------------------------------------------------------- block length


def _parse_blocks(idx: np.ndarray, run_lengths: list[int], block_frames: int) -> list[int]:
    """Cut a resample into its blocks; assert each is contiguous, within one run, full length.

    Returns the block starts. A block starting at frame ``f`` must be
    ``f, f + 1, ..., f + L - 1`` with ``L = min(block_frames, length of f's run)``
    inside ``f``'s run; only the resample's last block may be cut short.
    """
    ends = np.cumsum(run_lengths)
    starts, p = [], 0
    while p < idx.size:
        f = int(idx[p])
        run = int(np.searchsorted(ends, f, side="right"))
        run_start = int(ends[run] - run_lengths[run])
        length = min(block_frames, run_lengths[run])
        assert f + length <= ends[run], f"block at {f} crosses the end of run {run}"
        piece = idx[p:p + length]
        np.testing.assert_array_equal(piece, np.arange(f, f + piece.size),
                                      err_msg=f"block at position {p} is not contiguous")
        assert piece.size == length or p + piece.size == idx.size, "short block inside the resample"
        assert f >= run_start
        starts.append(f)
        p += length
    return starts


@pytest.mark.parametrize(("run_lengths", "block_frames"),
                         [([300], 15), ([40, 25], 10), ([120, 7, 90], 12), ([50], 1)])
def test_block_bootstrap_resamples_contiguous_blocks_of_the_stated_length(run_lengths,
                                                                          block_frames):
    """Every block: consecutive frames, the stated length, within one run; every start is drawn.

    Frame-by-frame resampling, a block length other than the stated one or a
    block straddling two runs fail the parse; over 300 resamples every allowed
    block start (moving blocks, Kuensch 1989) appears and no other does.
    """
    rng = np.random.default_rng(7)
    allowed = set()
    offset = 0
    for n in run_lengths:
        b = min(block_frames, n)
        allowed |= set(range(offset, offset + n - b + 1))
        offset += n
    seen = set()
    for _ in range(300):
        idx = block_bootstrap_indices(run_lengths, block_frames=block_frames, rng=rng)
        assert idx.shape == (sum(run_lengths),)
        seen |= set(_parse_blocks(idx, run_lengths, block_frames))
    assert seen == allowed


def test_the_job_resamples_and_halves_the_frames_it_says(monkeypatch):
    """Through method_uncertainty: which frames does each rerun of the method see?

    The data's first column holds the frame number, and a spy method records
    it. Every bootstrap resample must be blocks of ``bootstrap_block_frames``
    within runs; the split-half pieces the first and second half of each run;
    the scan-length pieces the first fraction of each run.
    """
    run_lengths, block = [80, 60], 15
    n = sum(run_lengths)
    shape = (4, 4, 4)
    seed_voxels = np.zeros(64, bool)
    seed_voxels[:8] = True
    data = np.random.default_rng(0).standard_normal((n, 64)).astype(np.float32)
    data[:, 0] = np.arange(n)  # frame numbers (the first seed voxel: kept by analysis_context)
    ctx = TargetingContext(data=data, brain_mask=np.ones(shape, bool), affine=np.eye(4),
                           seed_voxels=seed_voxels, search_voxels=~seed_voxels, space="synthetic")
    seen: list[np.ndarray] = []

    def spy(context, *options):
        seen.append(np.rint(context.data[:, 0]).astype(int))
        return Target(method="cluster", coordinate_mm=np.zeros(3), space="synthetic",
                      voxel_ijk=(0, 0, 0), r_at_target=0.0, connectivity_r=np.zeros(1))

    monkeypatch.setattr(resampling, "get_method", lambda name: spy)
    point = spy(ctx)
    seen.clear()
    u = method_uncertainty(ctx, point, t_r=2.0, run_lengths=run_lengths,
                           parameters=UncertaintyParameters(
                               n_bootstrap=20, bootstrap_block_frames=block,
                               scan_length_fractions=(0.5, 1.0), scan_length_resamples=5))
    assert u.summary["block_frames"] == block
    resamples, halves, curve = seen[:20], seen[20:22], seen[22:]
    for frames in resamples:
        assert frames.size == n
        _parse_blocks(frames, run_lengths, block)
    np.testing.assert_array_equal(halves[0], np.r_[0:40, 80:110])
    np.testing.assert_array_equal(halves[1], np.r_[40:80, 110:140])
    # Scan-length piece (half of each run): its point estimate, then resamples within it.
    np.testing.assert_array_equal(curve[0], np.r_[0:40, 80:110])
    assert len(curve) == 6
    for frames in curve[1:]:  # blocks within the piece's runs [40, 30], in the piece's frames
        assert set(frames) <= set(np.r_[0:40, 80:110])
        _parse_blocks(np.where(frames < 40, frames, frames - 40), [40, 30], block)
