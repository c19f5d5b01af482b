"""The scan-length curve resamples only the pieces of a scan that can support a radius.

A piece of the first 25 % of a 10-min scan keeps about a quarter of the cleaning's
effective degrees of freedom (18 of 71 for the default cleaning at TR 2 s), below the
floor at which a bootstrap radius means anything (``MIN_EFFECTIVE_DOF``, the floor the
scan's own advice uses: issue 14). Such a piece is listed without a radius and costs no
run of the method.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

import tmsnet.targeting.resampling as resampling
from tmsnet.fmri.cleaning import _TemporalPipeline
from tmsnet.simulate.targeting_block import simulate_targeting_block
from tmsnet.targeting.methods import TargetingContext
from tmsnet.targeting.uncertainty import (
    MIN_EFFECTIVE_DOF,
    piece_effective_dof,
    scan_length_curve,
)


def _dof(operator: np.ndarray) -> float:
    """(sum s^2)^2 / sum s^4 of the singular values: the cleaning record's definition."""
    s2 = linalg.svdvals(operator) ** 2
    return float(s2.sum() ** 2 / (s2**2).sum())


@pytest.mark.parametrize("n_frames", [150, 300, 600])
@pytest.mark.parametrize("n_confounds", [0, 12, 36])
def test_a_pieces_share_of_the_dof_is_within_a_fifth_of_its_exact_dof_near_the_floor(n_frames, n_confounds):
    rng = np.random.default_rng(n_confounds)
    confounds = rng.standard_normal((n_frames, n_confounds)) if n_confounds else None
    cleaner = _TemporalPipeline(n_window=n_frames, kept=np.arange(n_frames), t_r=2.0,
                                low_pass=0.1, high_pass=0.01, detrend=True,
                                standardize="zscore_sample", confounds=confounds)
    full = _dof(cleaner.operator)
    assert full == pytest.approx(cleaner.effective_dof())
    checked = 0
    for fraction in (0.25, 0.5, 0.75):
        k = int(n_frames * fraction)
        exact = _dof(cleaner.operator[:k])  # the operator's rows of the piece's frames
        if exact < 25:  # far below the floor of 30 either way
            continue
        share = piece_effective_dof(full, n_frames, k)
        assert 0.8 * exact <= share <= 1.2 * exact, (k, share, exact)
        checked += 1
    assert checked >= 1 or full < 40


def test_pieces_below_the_dof_floor_are_listed_without_a_radius_and_not_run(monkeypatch):
    block = simulate_targeting_block(seed=2, snr=0.6, n_frames=300)
    ctx = TargetingContext(**block.context_kwargs())
    lengths = []
    real = resampling.run_method
    monkeypatch.setattr(resampling, "run_method",
                        lambda f, c, o: lengths.append(c.data.shape[0]) or real(f, c, o))
    dof = 71.0  # the default cleaning of 300 frames at TR 2 s
    curve = scan_length_curve(ctx, "peak", t_r=2.0, fractions=(0.25, 0.5, 0.75),
                              n_resamples=5, effective_dof=dof)
    assert list(curve["n_frames"]) == [75, 150, 225]
    np.testing.assert_allclose(curve["effective_dof"], [dof / 4, dof / 2, 3 * dof / 4])
    low = curve["effective_dof"] < MIN_EFFECTIVE_DOF
    assert list(low) == [True, False, False]
    assert curve.loc[low, "p95_radius_mm"].isna().all()
    assert curve.loc[~low, "p95_radius_mm"].notna().all()
    assert 75 not in lengths and lengths.count(150) == 6 and lengths.count(225) == 6
    # without a dof every piece is resampled, as before
    curve = scan_length_curve(ctx, "peak", t_r=2.0, fractions=(0.25, 0.5), n_resamples=5)
    assert curve["p95_radius_mm"].notna().all() and curve["effective_dof"].isna().all()
