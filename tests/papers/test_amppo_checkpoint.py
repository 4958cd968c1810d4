"""AM-PPO's smoke train job, killed for real (SIGKILL right after its first checkpoint) and rerun,
writes the same run file, bit for bit, as an uninterrupted job (wall-clock timings aside)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np

from gdrepro.checkpoint import KILL_AFTER_SAVES
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
from gdrepro.papers.amppo import PAPER
from gdrepro.papers.amppo import experiment as E
from tests.conftest import ROOT

TIMINGS = ("steps_per_second", "throughput/")  # wall-clock: differ between any two runs


def _prepared(out):
    ctx = StageContext("amppo", "smoke", E.SETTINGS["smoke"], tuple(default_seeds()), out, out / "data")
    E.prepare(ctx)
    return ctx


def _train(out, kill: bool = False) -> subprocess.CompletedProcess:
    """The smoke train job of seed 0 through the command line, as the workflow runs it."""
    env = {k: v for k, v in os.environ.items() if k != KILL_AFTER_SAVES} | {"GDREPRO_TRACKING": "off"}
    if kill:
        env[KILL_AFTER_SAVES] = "1"
    return subprocess.run([sys.executable, "-m", "gdrepro.cli", "amppo", PAPER.run_label, "--scale", "smoke",
                           "--seed", "0", "--out", str(out), "--no-deps"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    straight, resumed = _prepared(tmp_path / "straight"), _prepared(tmp_path / "resumed")
    done = _train(straight.out)
    assert done.returncode == 0, done.stderr
    assert not straight.checkpoint_path.exists() and not (straight.out / "checkpoints").exists()

    killed = _train(resumed.out, kill=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoint = StageContext("amppo", "smoke", E.SETTINGS["smoke"], (0,), resumed.out, resumed.out, 0).checkpoint_path
    assert checkpoint.exists() and not resumed.run_path(0).exists()

    rerun = _train(resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed at iteration 1/" in rerun.stderr + rerun.stdout
    assert not checkpoint.exists()

    a, b = _arrays(straight.run_path(0)), _arrays(resumed.run_path(0))
    assert set(a) == set(b)
    timed = [k for k in a if any(t in k for t in TIMINGS)]
    assert timed and all(np.isfinite(a[k]).all() and (a[k] > 0).all() for k in timed)
    for k in set(a) - set(timed):
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
