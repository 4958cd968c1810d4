"""AM-PPO's smoke train job, killed for real (SIGKILL right after its first checkpoint) and rerun,
writes the same run file, bit for bit, as an uninterrupted job (wall-clock timings aside)."""

from __future__ import annotations

import numpy as np

from tests.papers.seed_job import assert_same_bits, killed_and_resumed

TIMINGS = ("steps_per_second", "throughput/")  # wall-clock: differ between any two runs


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    a, b = killed_and_resumed("amppo", tmp_path, kills=((1, ""),), finish="resumed at iteration 1/")
    timed = [k for k in a if any(t in k for t in TIMINGS)]
    assert timed and all(np.isfinite(a[k]).all() and (a[k] > 0).all() for k in timed)
    assert_same_bits(a, b, timed)
