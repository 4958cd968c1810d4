"""KO's smoke train job, killed for real (SIGKILL right after a checkpoint: once inside an arm,
once at an arm's end) and rerun, writes the same run file, bit for bit, as an uninterrupted job
(wall-clock timings aside)."""

from __future__ import annotations

import signal

import numpy as np

from gdrepro.papers.ko import experiment as E
from tests.papers.seed_job import npz_arrays, prepared, run_seed_job, start_seed_job

TIMINGS = ("/sec_per_step", "timing/")  # wall-clock: differ between any two runs


def test_smoke_saves_inside_arms_and_after_each():
    s = E.SETTINGS["smoke"]
    assert E.CHECKPOINT_EVERY["smoke"] < min(E.task_steps(t, s) for t in s.tasks)
    assert E.CHECKPOINT_EVERY["paper"] < E.SETTINGS["paper"].image_steps


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    straight, resumed = prepared("ko", tmp_path / "straight"), prepared("ko", tmp_path / "resumed")
    straight_job = start_seed_job("ko", straight.out)  # beside the killed and resumed jobs

    # first save: step CHECKPOINT_EVERY of the first arm
    killed = run_seed_job("ko", resumed.out, kill_after=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert resumed.checkpoint_path.exists() and not resumed.run_path(0).exists()
    # resumed inside the first arm; its remaining save (smoke: 30 steps, every 10) and the one at
    # its end: killed with the first arm done and none in progress
    killed = run_seed_job("ko", resumed.out, kill_after=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "0 arms done, mlp-small-sgd-base at step 10" in killed.stderr + killed.stdout
    assert resumed.checkpoint_path.exists() and not resumed.run_path(0).exists()

    rerun = run_seed_job("ko", resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 arms done" in rerun.stderr + rerun.stdout
    assert not resumed.checkpoint_path.exists()

    done = straight_job()
    assert done.returncode == 0, done.stderr
    assert not straight.checkpoint_path.exists() and not (straight.out / "checkpoints").exists()
    a, b = npz_arrays(straight.run_path(0)), npz_arrays(resumed.run_path(0))
    assert set(a) == set(b)
    timed = [k for k in a if any(t in k for t in TIMINGS)]
    assert len(timed) == len(E.arms(E.SETTINGS["smoke"])) + 5
    assert all(np.isfinite(a[k]).all() and (a[k] > 0).all() for k in timed)
    for k in set(a) - set(timed):
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
