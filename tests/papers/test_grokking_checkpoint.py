"""A grokking train job killed for real (SIGKILL right after a checkpoint save) resumes from its
checkpoint and writes the same bits as a job that was never interrupted: once killed inside the
first stack (models with embeddings), once inside the second with the first one finished."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gdrepro import checkpoint, layout, runs
from gdrepro.papers.grokking import method as M
from gdrepro.papers.grokking import trainer as T
from gdrepro.papers.grokking.experiment import CHECKPOINT_EVERY, SETTINGS
from gdrepro.runtime import torch_generator

# the smoke per-seed stage of seed 0, as the house runs it (data verification aside: no data needed)
JOB = """
import sys
from pathlib import Path

from gdrepro import papers, stages
from gdrepro.paper import StageContext
from gdrepro.runtime import pin_threads

pin_threads(1)
paper = papers.get("grokking")
out = Path(sys.argv[1])
stages.run_stage(paper, "train", StageContext("grokking", "smoke", paper.settings["smoke"], (0,), out, out, 0, "train"))
"""
WALL_CLOCK = {"perf/emb/train_seconds", "perf/noemb/train_seconds", "perf/cpu_seconds", "perf/wall_seconds"}


def _train(out: Path, kill_after_saves: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != checkpoint.KILL_AFTER_SAVES}
    env |= {"GDREPRO_TRACKING": "off", "GDREPRO_THREADS": "1"}
    if kill_after_saves is not None:
        env[checkpoint.KILL_AFTER_SAVES] = str(kill_after_saves)
    return subprocess.run([sys.executable, "-c", JOB, str(out)], env=env, capture_output=True, text=True, timeout=300)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_a_killed_train_job_resumes_bit_for_bit(tmp_path):
    s = SETTINGS["smoke"]
    every = CHECKPOINT_EVERY["smoke"]
    assert max(s.steps, s.noemb_steps) // every >= 2  # smoke saves at least twice per stack
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    ckpt = killed / layout.checkpoint_file(0)

    done = _train(straight)
    assert done.returncode == 0, done.stderr
    assert not (straight / layout.checkpoint_file(0)).exists()  # removed once the run is written

    first = _train(killed, kill_after_saves=1)  # killed right after its first save
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert not (killed / layout.run_file(0)).exists()
    state = checkpoint.load(ckpt)
    assert state["stack"] == "emb" and state["trainer"]["step"] == every and not state["done"]

    # resumed, then killed again in the second stack; saves: steps 200, 300 and 400 (where the capped
    # smoke runs stop), the end of the first stack, step 100 of the second
    second = _train(killed, kill_after_saves=5)
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert f"resumed at step {every}" in second.stderr
    state = checkpoint.load(ckpt)
    assert state["stack"] == "noemb" and state["trainer"]["step"] == every and set(state["done"]) == {"emb"}

    last = _train(killed)  # no kill: runs to the end
    assert last.returncode == 0, last.stderr
    assert f"resumed at step {every}" in last.stderr and not ckpt.exists()

    a, b = _arrays(straight / layout.run_file(0)), _arrays(killed / layout.run_file(0))
    assert a.keys() == b.keys() and WALL_CLOCK <= a.keys()
    assert any(k.startswith("runs/noemb-add/") for k in a) and any(k.startswith("runs/emb-add-random-c10/") for k in a)
    for key in a.keys() - WALL_CLOCK:  # every result bit; timings are wall clock
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind in "fc"), key
    rules = runs.load(killed / layout.run_file(0)).rules  # curves end where a run stopped: per seed only
    assert rules["runs/noemb-add/test_acc"][0] == "own" and rules["runs/noemb-add/step_test"][0] == "stack"
    assert rules["perf/emb/model_steps"][0] == "mean"


@pytest.mark.parametrize("at", [10, 20])
def test_the_trainer_resumes_sampler_adaptive_c_diagnostics_and_dropped_models(at):
    """What smoke does not run: the balanced sampler, the adaptive c_t, Hessian diagnostics, and a
    model dropped at its cap before (at 20) or after (at 10) the resume point."""
    p = 23
    ds = {"add": M.modular_dataset("add", p)}
    tr, te = M.split(ds["add"][0], p, "random", torch.Generator().manual_seed(0))
    stack = [T.Run("adapt", "add", True, tr, te, "adaptive", cap=30, diagnostics=True),
             T.Run("bal", "add", True, tr, te, 1.0, tau=1.0, cap=25, init_key=1),
             T.Run("short", "add", True, tr, te, 10.0, cap=15, init_key=2)]
    saved = {}

    def save(state):  # a copy, as a checkpoint file holds it
        buffer = io.BytesIO()
        torch.save(state, buffer)
        saved[state["step"]] = buffer.getvalue()

    def train(**kw):
        return T.train_runs(stack, ds, p, lambda *k: torch_generator("test", *map(str, k)), d=8, hidden=16, batch=32,
                            eval_every=5, margin=10, diag_steps=(0, 10, 20), hessian_iters=2, adaptive_every=10, **kw)

    straight = train(save=save, save_every=10)
    assert sorted(saved) == [10, 20, 30]
    resumed = train(resume=torch.load(io.BytesIO(saved[at]), weights_only=False), save=save, save_every=10)
    assert resumed.keys() == straight.keys()
    for name in ("adapt", "bal", "short"):
        assert resumed[name].keys() == straight[name].keys()
        for k, v in straight[name].items():
            assert np.array_equal(resumed[name][k], v, equal_nan=True), (name, k)
    assert resumed["__perf__"]["model_steps"] == straight["__perf__"]["model_steps"]
    assert straight["short"]["stop"] == 15 and straight["adapt"]["c_t"][:, 0].tolist() == [0, 10, 20]
    assert straight["adapt"]["diag_steps"].tolist() == [0, 10, 20]
