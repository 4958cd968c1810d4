"""AM-PPO's smoke train job, killed for real (SIGKILL right after its first checkpoint) and rerun,
writes the same run file, bit for bit, as an uninterrupted job (wall-clock timings aside)."""

from __future__ import annotations

import signal

import numpy as np

from gdrepro.paper import StageContext
from gdrepro.papers.amppo import experiment as E
from tests.papers.seed_job import npz_arrays, prepared, run_seed_job, start_seed_job

TIMINGS = ("steps_per_second", "throughput/")  # wall-clock: differ between any two runs


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    straight, resumed = prepared("amppo", tmp_path / "straight"), prepared("amppo", tmp_path / "resumed")
    straight_job = start_seed_job("amppo", straight.out)  # beside the killed and resumed jobs

    killed = run_seed_job("amppo", resumed.out, kill_after=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoint = StageContext("amppo", "smoke", E.SETTINGS["smoke"], (0,), resumed.out, resumed.out, 0).checkpoint_path
    assert checkpoint.exists() and not resumed.run_path(0).exists()

    rerun = run_seed_job("amppo", resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed at iteration 1/" in rerun.stderr + rerun.stdout
    assert not checkpoint.exists()

    done = straight_job()
    assert done.returncode == 0, done.stderr
    assert not straight.checkpoint_path.exists() and not (straight.out / "checkpoints").exists()
    a, b = npz_arrays(straight.run_path(0)), npz_arrays(resumed.run_path(0))
    assert set(a) == set(b)
    timed = [k for k in a if any(t in k for t in TIMINGS)]
    assert timed and all(np.isfinite(a[k]).all() and (a[k] > 0).all() for k in timed)
    for k in set(a) - set(timed):
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
