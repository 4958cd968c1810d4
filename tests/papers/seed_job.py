"""A paper's smoke per-seed job, run as the workflow runs it, killed for real and rerun: the
shared half of every ``test_<slug>_checkpoint.py`` (gdrepro.checkpoint)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gdrepro import papers
from gdrepro.checkpoint import KILL_AFTER_SAVES
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
from tests.conftest import ROOT


def prepared(slug: str, out: Path, seed: int = 0) -> StageContext:
    """The smoke context of ``seed``'s job in ``out``, after the paper's prepare stage."""
    paper = papers.get(slug)
    ctx = StageContext(slug, "smoke", paper.settings["smoke"], tuple(default_seeds()), out, out / "data", seed,
                       paper.run_label)
    paper.experiment.prepare(ctx)
    return ctx


def _job(slug: str, out: Path, seed: int, kill_after: int) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k != KILL_AFTER_SAVES} | {"GDREPRO_TRACKING": "off"}
    if kill_after:
        env[KILL_AFTER_SAVES] = str(kill_after)
    command = [sys.executable, "-m", "gdrepro.cli", slug, papers.get(slug).run_label, "--scale", "smoke",
               "--seed", str(seed), "--out", str(out), "--no-deps"]
    return command, env


def run_seed_job(slug: str, out: Path, seed: int = 0, kill_after: int = 0) -> subprocess.CompletedProcess:
    """``gdrepro <slug> <label> --seed <seed> --no-deps``; with ``kill_after`` it SIGKILLs itself
    right after that many checkpoint saves."""
    command, env = _job(slug, out, seed, kill_after)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def start_seed_job(slug: str, out: Path, seed: int = 0) -> Callable[[], subprocess.CompletedProcess]:
    """The uninterrupted job, started in the background (pytest runs one test at a time, so the
    second core is free while the killed and resumed jobs run); call the result to wait for it."""
    command, env = _job(slug, out, seed, 0)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)

    def wait() -> subprocess.CompletedProcess:
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    return wait


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a run file, by its stored key."""
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def killed_and_resumed(slug: str, tmp_path: Path, kills: tuple[tuple[int, str], ...], finish: str) -> tuple[dict, dict]:
    """Seed 0's smoke job straight through (in the background) and, beside it, a job that is
    SIGKILLed after ``kills[i][0]`` checkpoint saves, rerun from its checkpoint each time (the
    rerun's log shows ``kills[i][1]``, where it resumed), and finally run to the end (its log shows
    ``finish``). Returns both run files' arrays, the straight one first."""
    straight, resumed = prepared(slug, tmp_path / "straight"), prepared(slug, tmp_path / "resumed")
    straight_job = start_seed_job(slug, straight.out)
    for saves, resumed_at in kills:
        killed = run_seed_job(slug, resumed.out, kill_after=saves)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert resumed_at in killed.stderr + killed.stdout, killed.stderr[-2000:]
        assert resumed.checkpoint_path.exists() and not resumed.run_path(0).exists()
    rerun = run_seed_job(slug, resumed.out)
    assert rerun.returncode == 0, rerun.stderr
    assert finish in rerun.stderr + rerun.stdout, rerun.stderr[-2000:]
    assert not resumed.checkpoint_path.exists()
    done = straight_job()
    assert done.returncode == 0, done.stderr
    assert not straight.checkpoint_path.exists() and not (straight.out / "checkpoints").exists()
    return npz_arrays(straight.run_path(0)), npz_arrays(resumed.run_path(0))


def assert_same_bits(straight: dict, resumed: dict, wall_clock: list[str]) -> None:
    """Every array but the wall-clock ones equal bit for bit (NaNs in the same places)."""
    assert set(straight) == set(resumed)
    for k in set(straight) - set(wall_clock):
        assert np.array_equal(straight[k], resumed[k], equal_nan=straight[k].dtype.kind == "f"), k
