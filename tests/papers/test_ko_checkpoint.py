"""KO's smoke train job, killed for real (SIGKILL right after a checkpoint: once inside an arm,
once at an arm's end) and rerun, writes the same run file, bit for bit, as an uninterrupted job
(wall-clock timings aside)."""

from __future__ import annotations

import numpy as np

from gdrepro.papers.ko import experiment as E
from tests.papers.seed_job import assert_same_bits, killed_and_resumed

TIMINGS = ("/sec_per_step", "timing/")  # wall-clock: differ between any two runs


def test_smoke_saves_inside_arms_and_after_each():
    s = E.SETTINGS["smoke"]
    assert E.CHECKPOINT_EVERY["smoke"] < min(E.task_steps(t, s) for t in s.tasks)
    assert E.CHECKPOINT_EVERY["paper"] < E.SETTINGS["paper"].image_steps


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    # killed at the first save (step CHECKPOINT_EVERY of the first arm), then, resumed inside that
    # arm, after its remaining save (smoke: 30 steps, every 10) and the one at its end
    a, b = killed_and_resumed("ko", tmp_path, kills=((1, ""), (2, "0 arms done, mlp-small-sgd-base at step 10")),
                              finish="1 arms done")
    timed = [k for k in a if any(t in k for t in TIMINGS)]
    # per arm sec_per_step; MLP timing of 5 optimizers; ResNet-18 timing: forward/backward and 5 steps
    assert len(timed) == len(E.arms(E.SETTINGS["smoke"])) + 5 + 6
    assert all(np.isfinite(a[k]).all() and (a[k] > 0).all() for k in timed)
    assert_same_bits(a, b, timed)
