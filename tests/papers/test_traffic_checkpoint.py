"""traffic's smoke train job, killed for real (SIGKILL right after its first checkpoint, inside the
macroscopic training loop) and rerun, writes the same run file, bit for bit, as an uninterrupted
job (wall-clock seconds aside); a checkpoint whose data were drawn differently is refused."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from gdrepro.errors import GdreproError
from gdrepro.papers.traffic import experiment as E
from tests.papers.seed_job import npz_arrays, prepared, run_seed_job, start_seed_job

TIMINGS = ("macro/seconds", "micro/seconds")  # wall-clock: differ between any two runs


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    straight, resumed = prepared("traffic", tmp_path / "straight"), prepared("traffic", tmp_path / "resumed")
    straight_job = start_seed_job("traffic", straight.out)  # beside the killed and resumed jobs

    killed = run_seed_job("traffic", resumed.out, kill_after=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert resumed.checkpoint_path.exists() and not resumed.run_path(0).exists()
    state = E.checkpoint.load(resumed.checkpoint_path)
    every = E.CHECKPOINT_EVERY["smoke"]
    assert state["current"] == "macro" and state["loop"]["it"] == every and not state["done"]

    rerun = run_seed_job("traffic", resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"macro: resuming at iteration {every}" in rerun.stderr
    assert not resumed.checkpoint_path.exists()

    done = straight_job()
    assert done.returncode == 0, done.stderr
    assert not straight.checkpoint_path.exists() and not (straight.out / "checkpoints").exists()
    a, b = npz_arrays(straight.run_path(0)), npz_arrays(resumed.run_path(0))
    assert set(a) == set(b) and set(TIMINGS) <= set(a)
    assert int(a["macro/iterations"]) > every and int(a["micro/iterations"]) > 2 * every  # saved in both loops
    for k in set(a) - set(TIMINGS):
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_a_checkpoint_of_other_draws_is_refused(tmp_path):
    s = E.SETTINGS["smoke"]
    states = []
    E.run_macro(s, 0, save=states.append, save_every=E.CHECKPOINT_EVERY["smoke"])
    assert states and states[0]["it"] == E.CHECKPOINT_EVERY["smoke"]
    with pytest.raises(GdreproError, match="drawn differently"):
        E.run_macro(s, 1, resume=states[0])  # seed 1 draws other observations and weights
