"""KO data: the IMDB loader on a tiny stand-in in its public layout, the synthetic text task, the
experiment's pairing of arms and its metrics on a hand-made run (house loaders: tests/test_datasets.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdrepro.errors import GdreproError
from gdrepro.papers.ko import data as D
from gdrepro.papers.ko import experiment as E
from gdrepro.papers.ko import models

torch.set_num_threads(1)


def test_missing_imdb_says_how_to_get_it(tmp_path):
    with pytest.raises(GdreproError, match="aclImdb_v1.tar.gz"):
        D.imdb(tmp_path)


def test_imdb_loader_reads_the_acl_layout(tmp_path):
    reviews = {("train", "pos"): ["A great great film.", "Great fun<br />great cast"],
               ("train", "neg"): ["A bad film", "bad bad awful"],
               ("test", "pos"): ["great"], ("test", "neg"): ["unseen words here"]}
    for (split, label), texts in reviews.items():
        folder = tmp_path / "aclImdb" / split / label
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_7.txt").write_text(text)
    d = D.imdb(tmp_path, vocab=5, length=4)
    assert d["x"].shape == (4, 4) and d["y"].tolist() == [0, 0, 1, 1]
    great, bad = 2, 3  # most frequent training words get the first ids
    assert d["x"][0].tolist() == [4, bad, 1, 0]  # "a bad film": "a" and "film" tie, "a" seen first; vocab 5 keeps 3 words
    assert d["x_test"].tolist() == [[1, 1, 1, 0], [great, 0, 0, 0]]  # neg first; OOV = 1


def test_synthetic_text_is_deterministic_and_its_keywords_give_the_class():
    a = D.synthetic_text(300, 100, np.random.default_rng(5))
    b = D.synthetic_text(300, 100, np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    x, y = a["x"], a["y"]
    assert x.shape == (300, 24) and set(np.unique(y)) == set(range(7)) and x.min() >= 0 and x.max() < 500
    # the class with most keywords in the sequence is the label (ties aside) in most sequences
    kw_class = np.where((x >= 1) & (x <= 56), (x - 1) // 8, -1)
    counts = np.stack([(kw_class == c).sum(1) for c in range(7)], 1)
    assert (counts.argmax(1) == y).mean() > 0.8


def test_ko_models_shapes():
    assert models.CNN1d()(torch.zeros(3, 40)).shape == (3, 10)
    assert models.mlp()(torch.zeros(3, 40)).shape == (3, 10)


def test_every_ko_arm_has_its_paired_base_arm():
    for s in E.SETTINGS.values():
        names = {a.name for a in E.arms(s)}
        for a in E.arms(s):
            assert f"{a.task}-{a.init}-{a.base}-base" in names
        for ko, base in E.CORR_PAIRS.values():
            assert ko in names and base in names


def test_metrics_of_a_hand_made_run():
    s = E.SETTINGS["smoke"]
    trained = {}
    for a in E.arms(s):
        corr = 0.2 if a.variant == "base" else 0.1
        trained[a.name] = {"corr": np.full((3, 2), corr), "acc": np.array(0.5 + 0.01 * (a.variant != "base")),
                           "loss": np.array([np.nan, 1.0, 0.5]),
                           "collision_rate": np.array(np.nan if a.variant == "base" else 0.25 * (a.init == "small"))}
    trained["mlp-small-sgd-ko_sum"]["loss"] = np.array([np.nan, 3.0, np.nan])
    run = {"arms": trained,
           "exactness": {k: np.array(0.0) for k in ("exact_max_abs_diff", "two_row_rel_error", "orthogonal_max_term",
                                                    "hard_momentum_rel_error", "hard_energy_rel_error",
                                                    "hard_changed_fraction")},
           "timing": {"sgd_base": np.array(1.0), "sgd_ko": np.array(1.5), "sgd_ko_hard": np.array(3.0),
                      "adam_base": np.array(2.0), "adam_ko": np.array(2.0)},
           "resnet_timing": {"fwd_bwd": np.array(10.0), "sgd_base": np.array(0.5), "sgd_ko": np.array(1.5),
                             "sgd_ko_hard": np.array(0.5), "adam_base": np.array(1.0), "adam_ko": np.array(2.0)}}
    m = E.compute_metrics(run)
    assert m["corr_ratio_mlp_sgd"] == pytest.approx(0.5) and m["acc_diff_text_adam"] == pytest.approx(1.0)
    assert m["sum_unstable"] == 1.0 and np.isnan(m["acc_diff_cifar10_sgd"])
    assert m["step_time_ratio_sgd"] == 1.5 and m["step_time_ratio_adam"] == 1.0
    assert m["step_time_ratio_sgd_hard"] == 3.0
    # ResNet-18: (forward/backward + KO step) / (forward/backward + base step)
    assert m["step_time_ratio_resnet18_sgd"] == pytest.approx(11.5 / 10.5)
    assert m["step_time_ratio_resnet18_adam"] == pytest.approx(12.0 / 11.0)
    assert m["step_time_ratio_resnet18_sgd_hard"] == 1.0
    # small vs standard initialisation are told apart; every KO arm reports its collision rate
    assert m["corr_ratio_std_mlp_sgd"] == pytest.approx(0.5) and m["acc_diff_small_mlp_sgd"] == pytest.approx(1.0)
    assert m["collision_rate_mlp_small_sgd_ko"] == 0.25 and m["collision_rate_mlp_standard_sgd_ko"] == 0.0
    assert m["corr_ratio_mlp_sgd_unit"] == pytest.approx(0.5)
    assert not any(k.startswith("collision_rate") and k.endswith("_base") for k in m)


def test_collision_rates_over_the_run_and_between_marks():
    counts = [(0.0, 0.0), (5.0, 10.0), (5.0, 30.0), (35.0, 40.0)]
    total, curve = E.collision_rates(counts)
    assert total == 35 / 40 and curve.tolist() == [0.5, 0.0, 3.0]
    total, curve = E.collision_rates([(np.nan, np.nan)] * 3)  # a base optimizer: no counter
    assert np.isnan(total) and np.isnan(curve).all()


def test_small_and_standard_pairs_share_task_and_base_and_differ_in_init():
    for pairs, init in ((E.CORR_PAIRS, "small"), (E.ACC_PAIRS, "standard")):
        for key, (ko, base) in pairs.items():
            want = ("standard" if key.startswith("std_") else "small" if key.startswith("small_") else init)
            assert ko.split("-")[:3] == base.split("-")[:3] and ko.split("-")[1] == want, key


def test_exactness_pools_to_the_worst_seed_and_the_rest_to_the_mean(tmp_path):
    from gdrepro import runs

    for seed, (diff, changed) in enumerate(((0.0, 1.0), (2e-7, 0.5))):
        runs.save(tmp_path / f"{seed}.npz", {
            "exactness": {k: (runs.worst if k in E.MAX_OVER_SEEDS else runs.mean)(v)
                          for k, v in (("exact_max_abs_diff", diff), ("hard_changed_fraction", changed))},
            "arms": {"mlp-small-sgd-ko": {"marks": runs.mean(np.array([0, 15, 30]))}}})
    pooled = runs.pool([runs.load(tmp_path / f"{seed}.npz") for seed in (0, 1)])
    assert pooled["exactness"]["exact_max_abs_diff"] == 2e-7 and pooled["exactness"]["hard_changed_fraction"] == 0.75
    assert pooled["arms"]["mlp-small-sgd-ko"]["marks"].tolist() == [0.0, 15.0, 30.0]  # float, as before
