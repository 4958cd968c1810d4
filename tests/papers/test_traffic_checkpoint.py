"""traffic's smoke train job, killed for real (SIGKILL right after its first checkpoint, inside the
macroscopic training loop) and rerun, writes the same run file, bit for bit, as an uninterrupted
job (wall-clock seconds aside); a checkpoint whose data were drawn differently is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from gdrepro.checkpoint import KILL_AFTER_SAVES
from gdrepro.config import default_seeds
from gdrepro.errors import GdreproError
from gdrepro.paper import StageContext
from gdrepro.papers.traffic import PAPER
from gdrepro.papers.traffic import experiment as E
from tests.conftest import ROOT

TIMINGS = ("macro/seconds", "micro/seconds")  # wall-clock: differ between any two runs


def _prepared(out) -> StageContext:
    ctx = StageContext("traffic", "smoke", E.SETTINGS["smoke"], tuple(default_seeds()), out, out / "data", 0, "train")
    E.prepare(ctx)
    return ctx


def _train(out, kill: bool = False) -> subprocess.CompletedProcess:
    """The smoke train job of seed 0 through the command line, as the workflow runs it."""
    env = {k: v for k, v in os.environ.items() if k != KILL_AFTER_SAVES} | {"GDREPRO_TRACKING": "off"}
    if kill:
        env[KILL_AFTER_SAVES] = "1"
    return subprocess.run([sys.executable, "-m", "gdrepro.cli", "traffic", PAPER.run_label, "--scale", "smoke",
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
    assert resumed.checkpoint_path.exists() and not resumed.run_path(0).exists()
    state = E.checkpoint.load(resumed.checkpoint_path)
    every = E.CHECKPOINT_EVERY["smoke"]
    assert state["current"] == "macro" and state["loop"]["it"] == every and not state["done"]

    rerun = _train(resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"macro: resuming at iteration {every}" in rerun.stderr
    assert not resumed.checkpoint_path.exists()

    a, b = _arrays(straight.run_path(0)), _arrays(resumed.run_path(0))
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
