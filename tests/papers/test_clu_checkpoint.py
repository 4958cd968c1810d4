"""UG-CLU seed jobs resume from their checkpoint bit for bit: the smoke seed job, killed for real
(SIGKILL right after a save, as a pre-empted cluster job), first inside a request sequence and then
inside Retrain, and rerun, gives the same per-seed results as a job that was never interrupted."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gdrepro import checkpoint
from gdrepro.layout import checkpoint_file, run_file
from gdrepro.paper import StageContext
from gdrepro.papers.clu import experiment as E
from gdrepro.papers.clu import method as M
from gdrepro.papers.clu import protocol as P

TIMINGS = ("seconds", "retrain_seconds_per_request")  # wall clock: differs between any two runs

torch.set_num_threads(1)


def _prepare(out: Path) -> None:
    E.prepare(StageContext("clu", "smoke", E.SETTINGS["smoke"], (0,), out, out, stage="prepare"))


def _train(out: Path, kill_after_saves: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != checkpoint.KILL_AFTER_SAVES} | {"GDREPRO_TRACKING": "off"}
    if kill_after_saves is not None:
        env[checkpoint.KILL_AFTER_SAVES] = str(kill_after_saves)
    return subprocess.run([sys.executable, "-m", "gdrepro.cli", "clu", "train", "--scale", "smoke", "--seed", "0",
                           "--seeds", "0", "--out", str(out), "--no-deps"],
                          cwd=out, env=env, capture_output=True, text=True, timeout=600)


def test_a_killed_seed_job_resumes_to_the_same_bits(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for out in (whole, killed):
        _prepare(out)
    ckpt = killed / checkpoint_file(0)
    assert E.CHECKPOINT_EVERY["smoke"] * 2 <= 650  # at least two saves inside the request sequences

    done = _train(whole)
    assert done.returncode == 0, done.stderr
    assert not (whole / checkpoint_file(0)).exists()  # a finished job leaves no checkpoint

    first = _train(killed, kill_after_saves=1)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert ckpt.exists() and not (killed / run_file(0)).exists()
    state = checkpoint.load(ckpt)
    assert state["count"] == E.CHECKPOINT_EVERY["smoke"] and state["scenario"] == "task_aware"
    assert state["pending"] is not None and state["record"]["rows"]  # mid-request, after finished ones

    # resumed inside task_aware, killed again after its 6th save (training step 700 of 730: inside Retrain)
    second = _train(killed, kill_after_saves=6)
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert "resuming from" in second.stderr and "resumed at step" in second.stderr
    state = checkpoint.load(ckpt)
    assert state["count"] == 7 * E.CHECKPOINT_EVERY["smoke"] and state["retrain"]["step"] == 50
    assert set(state["scenarios"]) == set(P.SCENARIOS)

    last = _train(killed)
    assert last.returncode == 0, last.stderr
    assert "retrain: resumed at step 50" in last.stderr
    assert not ckpt.exists()

    with np.load(whole / run_file(0)) as a, np.load(killed / run_file(0)) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key.endswith(TIMINGS):
                assert np.all(np.isfinite(a[key])) and np.all(b[key] > 0), key
                continue
            x, y = a[key], b[key]
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), key


class _Stop(Exception):
    pass


def test_a_learner_with_batchnorm_resumes_mid_phase_to_the_same_bits():
    """The paper-scale path (StackedModule: BatchNorm statistics per model): a learner stopped inside
    a phase, serialised and continued in a fresh learner ends where an uninterrupted one does."""

    def make() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 10))

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 3, 4, 4, generator=gen), torch.arange(60) % 10
    hp = M.HParams(batch=4, learn_steps=3, unlearn_steps=4, memory_per_class=2, fisher_batches=2)
    methods = list(P.METHODS.values())
    requests = [P.Request("learn", 0), P.Request("learn", 1), P.Request("forget_samples", fraction=0.5)]

    def learner() -> M.ContinualUnlearner:
        model = M.StackedModule(make, len(methods), torch.Generator().manual_seed(1))
        return M.ContinualUnlearner(model, methods, x, y, 10, 2, hp, torch.Generator().manual_seed(2),
                                    np.random.default_rng(3))

    whole = learner()
    for r in requests:
        whole.apply(r)

    part = learner()
    for r in requests[:2]:
        part.apply(r)
    pending = part.begin(requests[2])
    assert len(pending.phases) == 2  # CLPU relearns at its own rate: the phase is split
    buffer = io.BytesIO()

    def stop_after_two(k: int) -> None:
        if k == 2:
            torch.save({"learner": part.state_dict(), "pending": pending, "step": k}, buffer)
            raise _Stop

    try:
        part.run(*pending.phases[0], on_step=stop_after_two)
    except _Stop:
        pass
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    resumed = learner()
    resumed.load_state_dict(saved["learner"])
    for i, (phase, lr) in enumerate(saved["pending"].phases):
        resumed.run(phase, lr, start=saved["step"] if i == 0 else 0)
    resumed.finish(saved["pending"])

    def same(a, b) -> bool:
        return a.dtype == b.dtype and a.shape == b.shape and a.cpu().numpy().tobytes() == b.cpu().numpy().tobytes()

    a, b = whole.state_dict(), resumed.state_dict()
    assert all(same(p, q) for p, q in zip(a["model"]["params"], b["model"]["params"], strict=True))
    assert all(same(p, q) for bp, bq in zip(a["model"]["buffers"], b["model"]["buffers"], strict=True)
               for p, q in zip(bp.values(), bq.values(), strict=True))
    assert all(same(p, q) for p, q in zip(a["bufs"], b["bufs"], strict=True))
    assert all(np.array_equal(a["data"][k], b["data"][k]) for k in ("held", "memory"))
    assert a["rng"] == b["rng"] and torch.equal(a["generator"], b["generator"])
