"""Shared fixtures: generated fMRIPrep-like subjects (deterministic, with planted truth)."""

import pytest


@pytest.fixture(scope="session")
def short_subject(tmp_path_factory):
    """One small-but-valid subject (100 frames) for CLI, output and error tests."""
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    root = tmp_path_factory.mktemp("short_dataset")
    params = SimulationParameters(n_frames=100)
    return simulate_fmriprep_dataset(root, n_subjects=1, seed=11, params=params)[0]


@pytest.fixture(scope="session")
def sample_cohort(tmp_path_factory):
    """Five subjects with the default sample settings (the acceptance test's cohort)."""
    from tmsnet.simulate import simulate_fmriprep_dataset

    root = tmp_path_factory.mktemp("sample_cohort")
    return simulate_fmriprep_dataset(root, n_subjects=5, seed=0)


@pytest.fixture(scope="session")
def small_bids(tmp_path_factory):
    """A raw BIDS dataset with fMRIPrep derivatives: 2 subjects, one 2-min run each."""
    from tmsnet.simulate import SimulationParameters
    from tmsnet.simulate.bids import simulate_bids_dataset

    root = tmp_path_factory.mktemp("small_bids")
    simulate_bids_dataset(root / "bids", n_subjects=2, seed=9,
                          params=SimulationParameters(n_frames=60))
    return root / "bids"
