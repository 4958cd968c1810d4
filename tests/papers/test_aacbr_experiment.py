"""Data loaders (the shipped UCI files), splits, the NN comparator, ties, and the evaluation's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from gdrepro import runs
from gdrepro.errors import GdreproError
from gdrepro.papers.aacbr import data as D
from gdrepro.papers.aacbr import experiment as E


def test_iris_and_wdbc_have_the_papers_split_sizes_and_scaling():
    iris, wdbc = D.iris(), D.wdbc()
    assert (len(iris.y_train), len(iris.y_val), len(iris.y_test)) == (96, 24, 30)
    assert (len(wdbc.y_train), len(wdbc.y_val), len(wdbc.y_test)) == (364, 91, 114)  # the notebook's sizes
    np.testing.assert_allclose(wdbc.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(wdbc.X_train.std(0, ddof=1), 1, atol=1e-5)
    assert np.bincount(wdbc.y_train)[0] > np.bincount(wdbc.y_train)[1]  # B = 0 is the majority


def test_glioma_is_the_shipped_uci_file_with_the_papers_split():
    split = D.load("glioma")
    assert split.binary and split.X_train.shape[1] == 21 and split.feature_names[:2] == ("Gender", "IDH1")
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (536, 135, 168)  # 839 rows, 64/16/20
    assert set(np.unique(split.X_train)) <= {0.0, 1.0}
    assert 0.4 < split.y_train.mean() < 0.5  # GBM share of the real data (~42%)
    text = D.packaged_text(D.GLIOMA_FILE)
    with pytest.raises(GdreproError, match="header"):
        D.parse_glioma(text.replace("Grade,Gender", "Grade,Sex", 1))


def test_mushroom_is_the_shipped_uci_file_one_hot_with_the_notebooks_split():
    split = D.load("mushroom")
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (200, 50, 8124 - 250)
    assert split.X_train.shape[1] == 117  # one-hot of the 22 attributes, '?' a category
    np.testing.assert_array_equal(split.X_train.sum(1), 22)  # one category per attribute
    X, y, _ = D.parse_mushroom("p,x,s,n,t,p,f,c,n,k,e,e,s,s,w,w,p,w,o,p,k,s,u\ne,x,s,y,t,a,f,c,b,k,e,c,s,s,w,w,p,w,o,p,n,n,g")
    assert y.tolist() == [1, 0] and X.shape == (2, 22 + 7)  # p = 1, e = 0; 7 attributes differ


def test_a_changed_data_file_fails_its_md5(tmp_path, monkeypatch):
    (tmp_path / D.GLIOMA_FILE).write_text(D.packaged_text(D.GLIOMA_FILE).replace("51.3", "51.4", 1))
    monkeypatch.setattr(D, "DATA_DIR", tmp_path)
    with pytest.raises(GdreproError, match="MD5"):
        D.load("glioma")
    with pytest.raises(GdreproError, match="missing"):
        D.load("mushroom")


def test_wine_is_split_and_scaled_as_iris():
    wine = D.load("wine")
    assert (len(wine.y_train), len(wine.y_val), len(wine.y_test)) == (113, 29, 36) and wine.n_classes == 3
    np.testing.assert_allclose(wine.X_train.std(0, ddof=1), 1, atol=1e-5)


def test_casebase_subsample_keeps_every_class_and_is_seeded():
    split = D.iris()
    a = E._casebase(split, 12, ("aacbr", "iris", "casebase", 0))
    b = E._casebase(split, 12, ("aacbr", "iris", "casebase", 0))
    np.testing.assert_array_equal(a, b)
    assert len(a) == 12 and len(np.unique(split.y_train[a])) == 3
    assert len(E._casebase(split, 0, ("x",))) == 96


def test_compute_gaps_margins_and_worst_seed_structure(tmp_path):
    run = {}
    for d in E.DATASETS:
        run[d] = {m: {part: np.array(0.9 if m == "logreg" else 0.8 if m == "gradual" else 0.6)
                      for part in ("test", "val")}
                  for m in ("gradual",) + E.BASELINES + (("aacbr",) if d in E.BINARY else ())}
        run[d]["gradual"] |= {k: np.array(0.0) for k in ("default_out", "cyclic", "cyclic_above_0.1", "upward_mass",
                                                         "tie_rate", "all_zero_rate", "tie_correct")}
        run[d]["gradual"]["loss"] = np.arange(3.0) + len(d)
    run["check"] = {"fast_slow_diff": np.array(1e-9)}
    out = E.compute(run)
    assert out["gap_iris"] == pytest.approx(0.1) and out["margin_glioma"] == pytest.approx(0.2)
    assert out["gap_nn_wdbc"] == pytest.approx(-0.2)  # nn 0.6 - gradual 0.8

    other = {d: {m: dict(v) for m, v in run[d].items()} for d in E.DATASETS} | {"check": {"fast_slow_diff": np.array(2e-9)}}
    other["glioma"]["gradual"]["cyclic"] = np.array(1.0)
    other["iris"]["gradual"]["test"] = np.array(0.6)
    other["wdbc"]["gradual"]["loss"] = np.zeros(3)
    for k, r in enumerate((run, other)):  # the rules run_seed declares
        runs.save(tmp_path / f"seed{k}.npz", {
            **{d: {m: {q: E._pooled(q, v) if m == "gradual" else runs.mean(v) for q, v in parts.items()}
                   for m, parts in r[d].items()} for d in E.DATASETS},
            "check": {"fast_slow_diff": runs.worst(r["check"]["fast_slow_diff"])}})
    pooled = runs.pool([runs.load(tmp_path / f"seed{k}.npz") for k in (0, 1)])
    assert pooled["glioma"]["gradual"]["cyclic"] == 1.0  # structural checks: worst seed
    assert pooled["iris"]["gradual"]["test"] == pytest.approx(0.7)  # accuracies: mean
    assert pooled["check"]["fast_slow_diff"] == 2e-9
    np.testing.assert_array_equal(pooled["wdbc"]["gradual"]["loss"], run["wdbc"]["gradual"]["loss"])  # arrays: first seed


def test_scale_settings():
    s, p = E.SETTINGS["default"], E.SETTINGS["paper"]
    assert s.K("iris", 96) == 96 and s.K("glioma", 100) == 95 and s.K("wine", 113) == 113  # K as the paper
    assert (p.iris_epochs, p.wdbc_epochs, p.glioma_epochs, p.mushroom_epochs) == (3000, 2500, 6000, 500)
    assert p.cases("wdbc") == 0 and p.K("wdbc", 364) == 364 and p.wine_epochs == 3000
    with pytest.raises(ValueError):
        E.AacbrSettings(0, 0, 0, 0, 0, 1, 1, 1, iterations=0)


def test_ties_are_counted_and_broken_to_the_lowest_class():
    strengths = np.array([[0.0, 0.0, 0.0], [0.2, 0.5, 0.5], [0.9, 0.1, 0.0], [0.3, 0.3, 0.1]])
    out = E.ties(strengths, np.array([0, 2, 0, 0]))
    assert out == {"tie_rate": 0.75, "all_zero_rate": 0.25, "tie_correct": 0.5}  # rows 0 and 3 tie right


def test_linear_nn_is_one_softmax_layer_trained_by_adamw():
    import torch

    split = D.load("iris")
    acc = E.linear_nn(split, 500, torch.Generator().manual_seed(0))
    assert acc["test"] >= 0.9  # multinomial logistic regression on iris
    again = E.linear_nn(split, 500, torch.Generator().manual_seed(0))
    assert again == acc
    one = E.linear_nn(split, 1, torch.Generator().manual_seed(0))
    assert one["test"] < acc["test"]


def _fake_run(datasets) -> dict:
    run = {}
    for d in datasets:
        run[d] = {m: {part: np.array(0.9 if m == "logreg" else 0.8 if m == "gradual" else 0.6) for part in ("test", "val")}
                  for m in E.methods(d)}
        run[d]["gradual"] |= {k: np.array(0.0) for k in ("default_out", "cyclic", "cyclic_above_0.1", "upward_mass",
                                                         "tie_rate", "all_zero_rate", "tie_correct")}
    run["check"] = {"fast_slow_diff": np.array(1e-9)}
    return run


def test_a_subset_of_datasets_is_a_setting_and_leaves_out_their_metrics():
    from gdrepro.config import apply_overrides

    s = apply_overrides(E.SETTINGS["paper"], {"datasets": ["wine", "iris", "mushroom"]}, "aacbr")
    assert s.datasets == ("wine", "iris", "mushroom") and s.run_datasets() == ("iris", "mushroom", "wine")
    assert E.SETTINGS["smoke"].run_datasets() == E.DATASETS == E.SETTINGS["paper"].datasets  # presets: all five
    for bad in ([], ["iris", "cifar"], ["iris", "iris"]):
        with pytest.raises(GdreproError, match="datasets"):
            apply_overrides(E.SETTINGS["paper"], {"datasets": bad}, "aacbr")
    full, part = E.compute(_fake_run(E.DATASETS)), E.compute(_fake_run(("iris", "mushroom")))
    assert set(part) < set(full)
    assert not any("wdbc" in k or "glioma" in k or "wine" in k for k in part)
    assert part["gap_iris"] == full["gap_iris"] and part["margin_mushroom"] == full["margin_mushroom"]
    assert part["cyclic_graphs"] == 0 and "fast_slow_max_diff" in part
    assert "default_out_edges" not in E.compute(_fake_run(("wine",)))  # no paper dataset ran


def test_claims_of_datasets_a_run_left_out_are_not_in_this_run():
    from gdrepro import claims, papers

    metrics = E.compute(_fake_run(("iris", "mushroom", "wine")))
    doc = {"scale": "paper", "overrides": {"datasets": ["iris", "mushroom", "wine"]},
           "metrics": {k: {"value": v, "per_seed": [v, v + 1e-3, v - 1e-3]} for k, v in metrics.items()}}
    judged = {c["id"]: c for c in claims.judge(claims.load_claims(papers.claims_file("aacbr")), doc, "paper")}
    for cid in ("C1-comparable-wdbc", "C1-comparable-wdbc-nn", "C2-multiclass-continuous", "C3-beats-aacbr-glioma"):
        assert not judged[cid]["applicable"] and "not in this run" in judged[cid]["verdict_text"]
    for cid in ("C1-comparable-iris", "C3-beats-aacbr-mushroom", "S1-heldout-wine", "C4-fast-equals-slow"):
        assert judged[cid]["applicable"]
