"""Several surface runs of one session: each cleaned on its own, then concatenated.

As for volumes (``tmsnet.targeting.workflow.load_and_clean``), the runs are concatenated on
the vertices every run kept. Checked against the single runs cleaned one by one: the two
halves of the concatenation are those runs' cleaned data, column for column by vertex, when
the second run lost five vertices the first kept (a vertex constant in one run); the record,
the run lengths the bootstrap keeps its blocks in, the inputs of each run, and the refusals.
"""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from tmsnet.exceptions import InvalidParameterError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.targeting.surface_workflow import load_and_clean_surface
from tmsnet.targeting.workflow import TargetingParameters

N_FRAMES = 100
LOST = np.array([100, 2000, 3000, 4000, 5000])     # left vertices constant in run 2 only
PARAMETERS = TargetingParameters(cleaning=BoldCleaningParameters(confounds_all_columns=True))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from tmsnet.simulate.surface import simulate_surface_dataset

    root = tmp_path_factory.mktemp("surface_runs")
    subjects = simulate_surface_dataset(root / "gen", n_subjects=2, seed=4, snr=1.0,
                                        n_frames=N_FRAMES)
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    bolds, tables = [], []
    for run, subject in enumerate(subjects, 1):
        left = subject.bold_left
        for hemi in ("L", "R"):
            source = left.with_name(left.name.replace("hemi-L", f"hemi-{hemi}"))
            dest = func / f"sub-01_task-rest_run-{run}_hemi-{hemi}_space-fsaverage5_bold.func.gii"
            shutil.copy(source, dest)
        tables.append(func / f"sub-01_task-rest_run-{run}_confounds.tsv")
        shutil.copy(subject.confounds, tables[-1])
        bolds.append(func / f"sub-01_task-rest_run-{run}_hemi-L_space-fsaverage5_bold.func.gii")
    image = nib.load(bolds[1])
    for array in image.darrays:
        array.data[LOST] = 1000.0
    nib.save(image, bolds[1])
    return bolds, tables


def _columns(scan):
    return {(h, int(v)): i for i, (h, v) in enumerate(zip(scan.bold.hemisphere, scan.bold.vertex,
                                                         strict=True))}


def test_runs_are_cleaned_apart_and_joined_on_shared_vertices(two_runs):
    bolds, tables = two_runs
    joined = load_and_clean_surface(bolds, tables, PARAMETERS)
    singles = [load_and_clean_surface(b, t, PARAMETERS) for b, t in zip(bolds, tables, strict=True)]
    assert singles[0].data.shape[1] == singles[1].data.shape[1] + LOST.size
    assert joined.data.shape == (2 * N_FRAMES, singles[1].data.shape[1])
    assert joined.run_lengths == [N_FRAMES, N_FRAMES] and joined.bold.n_frames == 2 * N_FRAMES
    lost = {("L", int(v)) for v in LOST}
    assert lost <= set(_columns(singles[0])) and not lost & set(_columns(joined))
    kept = _columns(joined)
    for half, single in zip((slice(0, N_FRAMES), slice(N_FRAMES, None)), singles, strict=True):
        own = _columns(single)
        index = [own[key] for key in kept]
        np.testing.assert_array_equal(joined.data[half], single.data[:, index])
    assert joined.cleaning["n_runs"] == 2 and joined.cleaning["vertices_not_in_every_run"] == 5
    assert len(joined.cleaning["runs"]) == 2
    assert set(joined.inputs) == {"left_1", "right_1", "confounds_1", "left_2", "right_2",
                                  "confounds_2"}
    assert joined.inputs["right_2"].name.startswith("sub-01_task-rest_run-2_hemi-R")
    assert set(singles[0].inputs) == {"left", "right", "confounds"}


def test_a_confounds_file_per_run_is_required(two_runs):
    bolds, tables = two_runs
    with pytest.raises(InvalidParameterError, match="one confounds file per surface BOLD run"):
        load_and_clean_surface(bolds, tables[:1], PARAMETERS)
