"""Gradual AA-CBR's smoke train job, killed for real (SIGKILL right after a checkpoint: once inside
a fit, once after a dataset's fit) and rerun, writes the same run file, bit for bit, as an
uninterrupted job (wall-clock timings aside); and a fit resumed from a saved state is the
uninterrupted fit."""

from __future__ import annotations

import io

import numpy as np
import torch

from gdrepro.papers.aacbr import experiment as E
from gdrepro.papers.aacbr import method as M
from tests.papers.seed_job import assert_same_bits, killed_and_resumed

TIMINGS = ("/seconds", "/predict_seconds")  # wall-clock: differ between any two runs


def test_smoke_saves_inside_every_fit():
    s = E.SETTINGS["smoke"]
    assert all(E.CHECKPOINT_EVERY["smoke"] < s.epochs(d) for d in E.DATASETS)


def test_a_resumed_fit_is_the_uninterrupted_fit():
    g = np.random.default_rng(0)
    X, y = g.normal(size=(20, 3)), np.arange(20) % 3
    kwargs = {"epochs": 12, "iterations": 5, "seed": 2}
    straight = M.GradualAACBR(**kwargs).fit(X, y)
    saved = []
    M.GradualAACBR(**kwargs).fit(X, y, save=lambda state: saved.append(_saved(state)), save_every=5)
    assert [state["epoch"] for state in saved] == [5, 10]
    for state in saved:
        resumed = M.GradualAACBR(**kwargs).fit(X, y, resume=state)
        assert torch.equal(resumed.w_, straight.w_) and torch.equal(resumed.c_, straight.c_)
        assert resumed.history == straight.history


def _saved(state: dict) -> dict:
    """What a checkpoint keeps: the values at the time of the save (torch.save and load)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_a_killed_train_job_resumes_to_the_same_bits(tmp_path):
    # killed at the first save (epoch CHECKPOINT_EVERY of the iris fit), then, resumed inside that
    # fit, after its remaining save (smoke: 25 epochs, every 10) and the one after it
    a, b = killed_and_resumed("aacbr", tmp_path, kills=((1, ""), (2, "0 datasets done, iris at epoch 10")),
                              finish="1 datasets done")
    timed = [k for k in a if k.endswith(TIMINGS)]
    assert len(timed) == 2 * len(E.DATASETS) and all(np.isfinite(a[k]) and a[k] > 0 for k in timed)
    assert_same_bits(a, b, timed)
