"""Grokking experiment plumbing: the per-seed plan, the stacked trainer (a model trained in a stack
is the model trained alone; stopping rules), and the metrics (censoring at the step cap)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gdrepro.papers.grokking import method as M
from gdrepro.papers.grokking import trainer as T
from gdrepro.papers.grokking.experiment import SETTINGS, compute_metrics, extras, plan
from gdrepro.runtime import torch_generator

torch.set_num_threads(1)
P = 23


def test_default_plan_spreads_the_sweep_over_two_seeds_each():
    s = SETTINGS["default"]
    plans = [{r.name for r in plan(s, k)} for k in range(5)]
    for name in ("emb-add-random-c1", "emb-add-random-c10", "emb-mul-random-c1", "emb-mul-random-c10",
                 "emb-add-skewed-c1", "emb-add-uniform-c1", "noemb-add", "noemb-mul"):
        assert all(name in p for p in plans)  # headline runs: every seed
    for c in s.sweep:
        assert sum(f"emb-add-random-c{c:g}" in p for p in plans) == 2
    assert sum("emb-add-random-cadapt" in p for p in plans) >= 1
    every = dataclasses.replace(s, extras_per_seed=0)
    assert {e.name for e in extras(s)} <= {r.name for r in plan(every, 0)}


def _data(seed=0):
    ds = {"add": M.modular_dataset("add", P)}
    tr, te = M.split(ds["add"][0], P, "random", torch.Generator().manual_seed(seed))
    return ds, tr, te


def _train(runs, ds, **kw):
    opts = dict(d=8, hidden=16, batch=32, eval_every=5, margin=10)
    return T.train_runs(runs, ds, P, lambda *k: torch_generator("test", *map(str, k)), **(opts | kw))


def test_a_model_trained_in_a_stack_is_the_model_trained_alone():
    ds, tr, te = _data()
    _, tr2, te2 = _data(1)
    a = T.Run("a", "add", True, tr, te, 1.0, cap=30)
    b = T.Run("b", "add", True, tr2, te2, 10.0, cap=20, init_key=1)
    together = _train([a, b], ds)
    alone = _train([a], ds)
    for k in ("train_acc", "test_acc", "train_loss"):
        np.testing.assert_allclose(together["a"][k], alone["a"][k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(together["a"]["norms"], alone["a"]["norms"], rtol=1e-4)
    assert together["b"]["stop"] == 20 and together["a"]["stop"] == 30  # b dropped at its cap, a went on


def test_runs_stop_a_margin_after_reaching_both_targets():
    ds, tr, te = _data()
    runs = [T.Run("x", "add", False, tr, te, cap=1000)]
    out = _train(runs, ds, train_target=0.0, test_target=0.0)  # reached at step 0
    assert out["x"]["step_train"] == 0 and out["x"]["step_test"] == 0 and out["x"]["stop"] == 10
    assert out["__perf__"]["model_steps"] == 10


def test_diagnostics_and_adaptive_c_are_recorded():
    ds, tr, te = _data()
    runs = [T.Run("d", "add", True, tr, te, "adaptive", cap=20, diagnostics=True)]
    out = _train(runs, ds, diag_steps=(0, 10), hessian_iters=3, adaptive_every=10)["d"]
    assert out["diag_steps"].tolist() == [0, 10] and np.all(out["hess_W"] != 0)
    assert out["rank_E"][0] == 8 and out["c_t"].shape == (2, 2) and np.all(out["c_t"][:, 1] > 0)
    assert out["fourier"].shape == (P // 2 + 1,)


def _fake_run(step_train, step_test, stop, gap=0.5):
    steps = np.arange(0, stop + 1, 50.0)
    test = np.linspace(0, 0.9, len(steps))
    return {"steps": steps, "train_acc": np.minimum(test + gap, 1), "test_acc": test,
            "step_train": np.array(step_train), "step_test": np.array(step_test), "stop": np.array(float(stop))}


def test_metrics_censor_never_reached_steps_at_the_cap():
    s = dataclasses.replace(SETTINGS["default"], ops=("add",), splits=(), sweep=())
    runs = []
    for k, (tr, te) in enumerate([(500, 1000), (400, np.nan), (600, 1200)]):
        runs.append({"emb-add-random-c1": _fake_run(tr, te, 3000 if np.isnan(te) else te + 100),
                     "emb-add-random-c10": _fake_run(300, 500 + 50 * k, 600 + 50 * k)})
    m = compute_metrics(runs, s)
    assert m["step_test_add_c1"] == 1200  # median of 1000, 3000 (censored), 1200
    assert m["step_train_add_c1"] == 500 and m["delay_add_c1"] == pytest.approx(1200 / 500)
    assert m["speedup_add"] == pytest.approx(550 / 1200)
    assert m["emb_add_max_gap"] == pytest.approx(0.5)
    assert np.isnan(m["delay_mul_c1"]) and np.isnan(m["skew_test_gap"])


def test_balanced_sampler_runs_beside_uniform_batches_in_one_stack():
    ds, tr, te = _data()
    plain = T.Run("plain", "add", True, tr, te, 1.0, cap=15)
    bal = T.Run("bal", "add", True, tr, te, 1.0, tau=1.0, cap=10)
    both = _train([plain, bal], ds)
    alone = _train([plain], ds)
    np.testing.assert_allclose(both["plain"]["train_loss"], alone["plain"]["train_loss"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(both["bal"]["train_loss"][1:], both["plain"]["train_loss"][1:3])  # other batches
    assert both["bal"]["stop"] == 10 and both["plain"]["stop"] == 15
