"""UG-CLU experiment: the paper-scale path
(stacked ResNet-18 on a generated CIFAR-10 stand-in), and the metrics on a hand-made run."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from gdrepro import datasets
from gdrepro.paper import StageContext
from gdrepro.papers.clu import experiment as E
from gdrepro.papers.clu import method as M
from gdrepro.papers.clu import protocol as P
from gdrepro.tracking import Run

torch.set_num_threads(1)


def test_mnist1d_is_procedural_and_deterministic():
    a, b = datasets.mnist1d(300), datasets.mnist1d(300)
    assert a["x"].shape == (240, 40) and a["x_test"].shape == (60, 40)
    assert all(np.array_equal(a[k], b[k]) for k in a) and set(np.unique(a["y"])) <= set(range(10))


def test_paper_scale_path_runs_a_stacked_resnet18_on_a_cifar10_stand_in(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with (folder / f).open("wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}, handle)
    s = dataclasses.replace(E.SETTINGS["paper"], datasets=("cifar10",), data_root=str(tmp_path), batch=4,
                            learn_steps=1, unlearn_steps=1, retrain_steps=1, memory_per_class=2, fisher_batches=1,
                            mia_samples=20, resnet_width=2)
    monkeypatch.setattr(P, "SCENARIOS", ("class",))  # one scenario keeps the test short
    ctx = StageContext("clu", "paper", s, (0,), tmp_path, tmp_path, seed=0, stage="train")
    results = E.run_dataset(ctx, "cifar10", "cpu", Run(None, None))
    assert results["class"]["learned_at"].rule == "first" and results["class"]["rem"].rule == "mean"
    out = {"class": {q: v.value for q, v in results["class"].items()}}
    n_models = len(E.ORDER)
    assert out["class"]["rem"].shape == (n_models, 8) and out["class"]["task_acc"].shape == (n_models, 8, 5)
    assert np.isfinite(out["class"]["fgt_train"][:, 3]).all() and np.isfinite(out["class"]["mia"][:, 3]).all()
    assert out["class"]["learned_at"].tolist() == [0, 1, 2, -1, 3, -1, 4, -1]
    assert float(results["retrain_seconds_per_request"].value) > 0
    stats = E.scenario_stats(out, "class")
    assert np.isfinite(stats["rem_u"]).all() and stats["fgt_test"].shape == (n_models,)


def _fake_run(ug_rem: float) -> dict:
    """A hand-made run of one dataset: Retrain row 0, every approximate method equal to Retrain except UG-CLU."""
    run = {}
    for scen in P.SCENARIOS:
        reqs = P.scenario(scen)
        n, R = len(E.ORDER), len(reqs)
        learn = np.array([r.kind == "learn" for r in reqs])
        forget = np.array([r.kind.startswith("forget") for r in reqs])
        run[scen] = {
            "rem": np.full((n, R), 60.0),
            "new": np.where(learn, 80.0, np.nan) * np.ones((n, 1)),
            "fgt_train": np.where(forget, 0.0, np.nan) * np.ones((n, 1)),
            "fgt_test": np.where(forget & (scen != "samples"), 0.0, np.nan) * np.ones((n, 1)),
            "mia": np.where(forget, 50.0, np.nan) * np.ones((n, 1)),
            "mia_loss": np.where(forget, 30.0, np.nan) * np.ones((n, 1)),
            "task_acc": np.full((n, R, 5), 50.0),
            "learned_at": np.array([r.task if r.kind == "learn" else -1 for r in reqs]),
            "final_tasks": np.arange(5),
        }
        run[scen]["rem"][E.ORDER.index("ugclu"), forget] = ug_rem
    return run


def test_gap_to_retrain_is_the_mean_absolute_difference_over_applicable_metrics():
    m = E.compute_metrics(_fake_run(50.0))
    assert m["gap_retrain"] == 0 and m["gap_finetune"] == 0
    # UG-CLU differs only in remaining accuracy after unlearning, by 10 points: one metric of 5
    # (task-aware and class scenarios: rem_u, new, fgt_train, fgt_test, mia) or of 4 (samples)
    assert m["task_aware_ugclu_gap"] == pytest.approx(2.0) and m["samples_ugclu_gap"] == pytest.approx(2.5)
    assert m["gap_ugclu"] == pytest.approx((2 + 2 + 2.5) / 3)
    assert m["gap_ugclu_minus_best_baseline"] == pytest.approx(m["gap_ugclu"])
    assert m["class_rem_minus_retrain"] == pytest.approx(-10) and m["class_rem_minus_gaft"] == pytest.approx(-10)
    assert m["class_ugclu_bwt"] == 0 and m["class_ugclu_aa"] < 60


def test_like_for_like_metrics_compare_with_the_memory_oracle_in_row_one():
    run = _fake_run(50.0)
    for scen in P.SCENARIOS:
        run[scen]["rem"][E.ORDER.index("retrain_memory")] = 55.0
        run[scen]["mia_loss"][E.ORDER.index("ugclu")] += 12.0
        run[scen]["new"][E.ORDER.index("clpu")] += 4.0
    m = E.compute_metrics(run)
    assert m["ll_class_rem_minus_oracle"] == pytest.approx(-5) and m["class_rem_minus_retrain"] == pytest.approx(-10)
    assert m["class_retrain_minus_memory_rem"] == pytest.approx(5)
    assert m["mia_loss_gap_ugclu_ll"] == pytest.approx(12) and m["mia_loss_gap_ugclu"] == pytest.approx(12)
    assert m["samples_mia_loss_gap_ugclu_ll"] == pytest.approx(12)
    assert m["new_ugclu_minus_best_replay_baseline"] == pytest.approx(-4) and m["new_ugclu_minus_replay"] == 0
    # every method but the memory oracle sits 5 points off it in remaining accuracy: one metric of five
    # (task-aware, class), of four (samples); UG-CLU: 5 (rem_u after unlearning only) and 12 (MIA)
    assert m["llgap_retrain_memory"] == 0 and m["llgap_finetune"] == pytest.approx((1 + 1 + 1.25) / 3)
    assert m["class_ugclu_llgap"] == pytest.approx((5 + 12) / 5)
    assert m["llgap_ugclu_two_steps_minus_ugclu"] == pytest.approx(m["llgap_finetune"] - m["llgap_ugclu"])


def test_oracle_sets_are_all_held_data_and_the_memory_plus_the_new_task():
    held, memory = np.array([1, 1, 1, 1, 0, 1], bool), np.array([1, 0, 0, 0, 0, 0], bool)
    states = [(held, memory, {0}, {"new": np.array([2, 3]), "forget": np.array([], int)}, None),
              (held, memory, {0}, {"new": np.array([], int), "forget": np.array([4])}, None)]
    full, kept = E.oracle_sets(states)
    assert [f.tolist() for f in full] == [[0, 1, 2, 3, 5]] * 2 and [k.tolist() for k in kept] == [[0, 2, 3], [0]]


def test_validation_split_is_stratified_disjoint_and_leaves_the_test_split_out():
    d = {"x": np.arange(100)[:, None].astype(float), "y": np.arange(100) % 4, "y_train": np.arange(100) % 4,
         "x_test": np.zeros((7, 1)), "y_test": np.zeros(7, int)}
    v = E.validation_split(d, 0.2, np.random.default_rng(0))
    assert len(v["x_test"]) == 20 and np.bincount(v["y_test"]).tolist() == [5] * 4
    assert len(v["x"]) == 80 and not set(v["x"][:, 0]) & set(v["x_test"][:, 0])
    assert (v["y"] == v["x"][:, 0] % 4).all() and (v["y_train"] == v["y"]).all()


def test_a_later_dataset_names_its_metrics_with_its_prefix():
    m = E.compute_metrics(_fake_run(50.0), "tinyimagenet_")
    assert m["tinyimagenet_gap_ugclu"] == pytest.approx(E.compute_metrics(_fake_run(50.0))["gap_ugclu"])
    assert all(k.startswith("tinyimagenet_") for k in m)


def test_scales_share_one_code_path_and_default_has_five_seeds_worth_of_work_small():
    d, p = E.SETTINGS["default"], E.SETTINGS["paper"]
    assert d.datasets == ("mnist1d",) and p.datasets == ("cifar10", "tinyimagenet")
    assert E.SETTINGS["smoke"].learn_steps < d.learn_steps < p.learn_steps
    assert p.unlearn_steps == 1500 and p.forget_alpha == 25 and p.forget_every == 5 and p.clip == 7


def test_settings_pass_every_number_to_the_method():
    fields = {f.name for f in dataclasses.fields(M.HParams)} & {f.name for f in dataclasses.fields(E.CLUSettings)}
    assert {"lam", "gamma", "forget_alpha", "clip", "forget_every", "unlearn_lr"} <= fields
    # distinct values (the field's position), so that a swapped or dropped field shows
    s = dataclasses.replace(E.SETTINGS["smoke"], **{k: type(getattr(E.SETTINGS["smoke"], k))(i + 2) for i, k in enumerate(sorted(fields))})
    hp = s.hparams()
    for i, k in enumerate(sorted(fields)):
        assert getattr(hp, k) == i + 2, k


def _tiny_tuning(tmp_path, monkeypatch, scramble_test: bool) -> dict:
    s = dataclasses.replace(E.SETTINGS["smoke"], mnist_samples=300, hidden=8, batch=8, learn_steps=3, unlearn_steps=5,
                            retrain_steps=3, memory_per_class=4, fisher_batches=1, mia_samples=20, lr_grid=(1 / 3, 1.0, 3.0))
    load = E.load

    def loaded(dataset, settings, dev):
        d = load(dataset, settings, dev)
        if scramble_test:  # a test split of noise, other labels: the tuning must not see it
            d["x_test"] = torch.randn(d["x_test"].shape, generator=torch.Generator().manual_seed(9))
            d["y_test"] = (d["y_test"] + 1) % 10
        return d

    monkeypatch.setattr(E, "load", loaded)
    ctx = StageContext("clu", "smoke", s, (0,), tmp_path, tmp_path, stage="prepare")
    return E.tune_learning_rates(ctx, "mnist1d", "cpu")


def test_every_learning_rate_is_tuned_on_the_same_grid_without_the_test_split(tmp_path, monkeypatch):
    tuned = _tiny_tuning(tmp_path, monkeypatch, scramble_test=False)
    grid = [0.05 / 3, 0.05, 0.15]
    assert tuned["learn"]["grid"] == {m: pytest.approx(grid) for m in P.METHODS}
    assert tuned["oracle"]["grid"] == {o: pytest.approx(grid) for o in P.ORACLES}
    assert tuned["unlearn"]["grid"]["ugclu"] == pytest.approx([0.01 / 3, 0.01, 0.03])
    assert tuned["unlearn"]["grid"]["clpu"] == pytest.approx(grid)  # CLPU-style relearns: its grid is on the learn LR
    for part, score, best in (("learn", "shared_validation_accuracy", max), ("oracle", "validation_accuracy", max),
                              ("unlearn", "validation_gap", min)):
        for name, lrs in tuned[part]["grid"].items():
            values = tuned[part][score][name]
            assert len(values) == 3 and tuned[part]["chosen"][name] == lrs[values.index(best(values))]
    # one learn LR per learn phase, chosen on the mean score of the methods that run it
    learn = tuned["learn"]
    assert learn["shared_with"]["ugclu_no_mask"] == ["ugclu", "ugclu_no_mask", "ugclu_no_adaptive"]
    assert learn["shared_with"]["replay"] == ["ga_ft", "salun", "replay", "clpu", "ugclu_no_fastslow"]
    for group in ({"ugclu", "ugclu_no_mask", "ugclu_no_adaptive"}, {"ga_ft", "salun", "replay", "clpu", "ugclu_no_fastslow"}):
        assert len({learn["chosen"][m] for m in group}) == 1
        mean = np.mean([learn["validation_accuracy"][m] for m in sorted(group)], 0)
        assert all(learn["shared_validation_accuracy"][m] == pytest.approx(mean.tolist()) for m in group)
    assert learn["shared_validation_accuracy"]["ewc"] == learn["validation_accuracy"]["ewc"]  # alone in its phase
    assert tuned == _tiny_tuning(tmp_path, monkeypatch, scramble_test=True)


def test_rates_follow_the_method_and_oracle_order():
    tuning = {part: {"chosen": {n: float(i) for i, n in enumerate(names)}}
              for part, names in (("learn", P.METHODS), ("unlearn", P.METHODS), ("oracle", P.ORACLES))}
    r = E.Rates.tuned(tuning)
    assert r.learn == r.unlearn == tuple(float(i) for i in range(len(P.METHODS))) and r.oracle == (0.0, 1.0)
    rows = E.learning_rate_rows({part: {"grid": {n: [1.0] for n in t["chosen"]}, "chosen": t["chosen"],
                                        "validation_accuracy": {n: [50.0] for n in t["chosen"]},
                                        "shared_validation_accuracy": {n: [50.0] for n in t["chosen"]},
                                        "validation_gap": {n: [2.0] for n in t["chosen"]}} for part, t in tuning.items()})
    assert [r["method"] for r in rows] == [P.NAMES[n] for n in (*P.ORACLES, *P.METHODS)]
    assert rows[0]["chosen unlearning LR"] == "n/a" and rows[1]["chosen learn LR"] == "1"


def test_a_tuning_score_picks_the_best_grid_point_and_nan_is_the_worst():
    grid = {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}
    assert E._pick(np.array([5.0, 7.0, 7.0, np.nan, 1.0, np.nan]), grid) == {"a": 2.0, "b": 2.0}  # tie: smaller LR
    assert E._pick(np.array([5.0, 7.0, 4.0, np.nan, 1.0, 0.5]), grid, higher_is_better=False) == {"a": 3.0, "b": 3.0}


def test_a_diverged_model_is_scored_as_the_uniform_predictor():
    probs = np.full((2, 3, 4), 0.1)
    probs[:, :, 2] = 0.7
    probs[1, 1, 0] = np.nan
    out = E._finite(probs, ("test",))
    assert np.array_equal(out[0], probs[0]) and np.all(out[1] == 0.25)
