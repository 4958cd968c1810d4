"""Grokking experiment plumbing: the per-seed plan, the stacked trainer (a model trained in a stack
is the model trained alone; stopping rules), and the metrics (censoring at the step cap)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gdrepro.papers.grokking import experiment as E
from gdrepro.papers.grokking import method as M
from gdrepro.papers.grokking import trainer as T
from gdrepro.papers.grokking.experiment import SETTINGS, compute_metrics, extras, plan, reading, stack_tag
from gdrepro.runtime import torch_generator

torch.set_num_threads(1)
P = 23


def test_default_plan_runs_the_sweep_and_the_readings_on_three_seeds():
    s = SETTINGS["default"]
    plans = [{r.name for r in plan(s, k)} for k in range(5)]
    for name in ("emb-add-random-c1", "emb-add-random-c10", "emb-mul-random-c1", "emb-mul-random-c10",
                 "emb-add-skewed-c1", "emb-add-uniform-c1", "noemb-add", "noemb-mul", "noemb-add-onehot",
                 "noemb-mul-onehot"):
        assert all(name in p for p in plans)  # headline runs and the primary reading: every seed
    for name in [f"emb-add-random-c{c:g}" for c in s.sweep] + [
            "noemb-add-onehot-adamw", "tf-add-random-c10", "tf-mul-random-c1", "tf-mul-random-c10",
            "tf-add-skewed-c1-bal", "emb-add-skewed-c1-adamw", "emb-add-random-c1-adamw"]:
        assert [name in p for p in plans] == [True] * 3 + [False] * 2
    assert sum("emb-add-random-cadapt" in p for p in plans) == 3
    # the balanced sampler: seed 0 and the round robin's odd seeds (3 seeds), each run once per seed
    assert ["emb-add-skewed-c1-bal" in p for p in plans] == [True, True, False, True, False]
    assert all(len(p) == len(plan(s, k)) for k, p in enumerate(plans))
    every = dataclasses.replace(s, extras_per_seed=0)
    assert {e.name for e in extras(s)} <= {r.name for r in plan(every, 0)}
    runs = {r.name: r for r in plan(s, 0)}  # the split comparison at a common horizon
    assert runs["emb-add-random-c1"].min_steps == runs["emb-add-skewed-c1"].min_steps == s.split_steps
    assert runs["tf-add-random-c1"].min_steps == runs["tf-add-skewed-c1"].min_steps == s.tf_split_steps


def test_readings_of_the_model_without_embeddings_parse_from_their_names():
    assert reading("raw") == {"encoding": "raw"}
    assert reading("onehot-adamw-lr0.001-h128") == {"encoding": "onehot", "decoupled": True, "lr": 0.001,
                                                    "hidden": 128}
    with pytest.raises(ValueError):
        reading("onehot-wide")
    assert E.ENCODINGS == M.ENCODINGS
    assert {stack_tag(r) for r in plan(SETTINGS["default"], 0)} == {
        "emb", "tf", "noemb", "noemb-onehot", "noemb-onehot-h128"}


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


def test_min_steps_holds_a_run_to_a_common_horizon():
    ds, tr, te = _data()
    runs = [T.Run("x", "add", False, tr, te, cap=1000, min_steps=40), T.Run("y", "add", False, tr, te, cap=1000)]
    out = _train(runs, ds, train_target=0.0, test_target=0.0)  # both targets at step 0
    assert out["x"]["stop"] == 40 and out["y"]["stop"] == 10


def test_one_hot_transformer_and_adamw_runs_train_in_their_own_stacks():
    ds, tr, te = _data()
    oh = T.Run("oh", "add", False, tr, te, cap=10, encoding="onehot", decoupled=True, lr=0.003)
    tf = T.Run("tf", "add", True, tr, te, 10.0, cap=10, arch="transformer")
    assert oh.kind != tf.kind != T.Run("e", "add", True, tr, te).kind
    out_oh, out_tf = _train([oh], ds), _train([tf], ds, tf_d=8)
    assert out_oh["oh"]["stop"] == 10 and out_tf["tf"]["norms"].shape == (P + 2,)
    assert out_tf["tf"]["train_loss"][-1] < out_tf["tf"]["train_loss"][0]


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


def test_per_seed_best_c_needs_the_whole_sweep_and_averages_ties_in_log2():
    s = dataclasses.replace(SETTINGS["default"], ops=("add",), splits=(), sweep=(4.0, 16.0))
    steps = {"c1": 1000, "c10": 500, "c4": 800, "c16": 500}
    run = {f"emb-add-random-{k}": _fake_run(300, v, v + 100) for k, v in steps.items()}
    m = compute_metrics([run], s)
    assert m["log2_best_c"] == pytest.approx((np.log2(10) + np.log2(16)) / 2)  # a tie of c = 10 and 16
    del run["emb-add-random-c4"]
    assert np.isnan(compute_metrics([run], s)["log2_best_c"])  # a seed without the whole sweep


def test_balanced_sampler_runs_beside_uniform_batches_in_one_stack():
    ds, tr, te = _data()
    plain = T.Run("plain", "add", True, tr, te, 1.0, cap=15)
    bal = T.Run("bal", "add", True, tr, te, 1.0, tau=1.0, cap=10)
    both = _train([plain, bal], ds)
    alone = _train([plain], ds)
    np.testing.assert_allclose(both["plain"]["train_loss"], alone["plain"]["train_loss"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(both["bal"]["train_loss"][1:], both["plain"]["train_loss"][1:3])  # other batches
    assert both["bal"]["stop"] == 10 and both["plain"]["stop"] == 15


def _curve(test_acc, every=50):
    test = np.asarray(test_acc, dtype=float)
    steps = np.arange(len(test)) * float(every)
    return {"steps": steps, "train_acc": np.ones_like(test), "test_acc": test, "step_train": np.array(50.0),
            "step_test": np.array(np.nan), "stop": np.array(steps[-1])}


def test_split_gaps_and_sampler_gains_read_the_best_test_accuracy_up_to_the_horizon():
    s = dataclasses.replace(SETTINGS["default"], ops=("add",), splits=("skewed",), sweep=(), split_steps=100,
                            tf_split_steps=100)
    late = 0.99  # after the horizon (step 150): must not count
    run = {"emb-add-random-c1": _curve([0.1, 0.9, 0.8, late]), "emb-add-skewed-c1": _curve([0.1, 0.5, 0.7, late]),
           "emb-add-skewed-c1-bal": _curve([0.2, 0.6, 0.75, late]),
           "emb-add-random-c1-adamw": _curve([0.0, 0.3, 0.4, late]),
           "emb-add-skewed-c1-adamw": _curve([0.0, 0.1, 0.2, late]),
           "tf-add-random-c1": _curve([0.0, 0.02, 0.03, late]), "tf-add-skewed-c1": _curve([0.0, 0.5, 0.9, late]),
           "tf-add-skewed-c1-bal": _curve([0.0, 0.6, 0.95, late])}
    m = compute_metrics([run], s)
    assert m["skew_test_gap_h"] == pytest.approx(0.9 - 0.7)
    assert m["balanced_gain_h"] == pytest.approx(0.75 - 0.7)
    assert m["skew_test_gap_h_adamw"] == pytest.approx(0.4 - 0.2)
    assert (m["best_test_h_random_adamw"], m["best_test_h_skewed"]) == pytest.approx((0.4, 0.7))
    assert m["tf_skew_test_gap_h"] == pytest.approx(0.03 - 0.9)  # may be negative: the check can fail
    assert m["tf_balanced_gain_h"] == pytest.approx(0.95 - 0.9)
    assert m["step_test_add_c1_adamw"] == 150  # never reached 95%: censored at its stop


def test_the_transformer_on_mul_is_read_at_tf_steps_and_at_its_longer_cap():
    s = dataclasses.replace(SETTINGS["default"], ops=("add",), splits=(), sweep=())
    assert {r.name: r.cap for r in plan(s, 0) if r.name.startswith("tf-mul")} == {
        "tf-mul-random-c1": s.tf_mul_steps, "tf-mul-random-c10": s.tf_mul_steps}
    run = {"tf-mul-random-c1": _fake_run(600, 3100, 3200), "tf-mul-random-c10": _fake_run(3000, np.nan, 4000)}
    m = compute_metrics([run], s)
    assert s.tf_steps == 2000 and m["tf_speedup_mul"] == 1.0  # both unreached by step 2000
    assert m["tf_delay_mul_c1"] == pytest.approx(2000 / 600)
    assert m["tf_long_speedup_mul"] == pytest.approx(4000 / 3100)  # c = 10 never: censored at its cap
    assert m["tf_long_delay_mul_c1"] == pytest.approx(3100 / 600)
