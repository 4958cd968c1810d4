"""A paper's smoke per-seed job, run as the workflow runs it, killed for real and rerun: the
shared half of every ``test_<slug>_checkpoint.py`` (gdrepro.checkpoint)."""

from __future__ import annotations

import os
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
