"""Data loaders (UCI formats on tiny generated stand-ins), splits, and the evaluation's arithmetic."""

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


def test_glioma_loader_reads_the_uci_format(tmp_path, monkeypatch):
    text = D.glioma_standin_text(n=60)
    (tmp_path / "aacbr").mkdir()
    (tmp_path / "aacbr" / D.GLIOMA_FILE).write_text(text)
    monkeypatch.setenv("GDREPRO_EXTERNAL_DATA", str(tmp_path))
    split = D.load("glioma", "uci")
    assert split.binary and split.X_train.shape[1] == 21 and split.feature_names[:2] == ("Gender", "IDH1")
    assert len(split.y_train) + len(split.y_val) + len(split.y_test) == 60
    assert set(np.unique(split.X_train)) <= {0.0, 1.0}
    bad = text.replace("Grade,Gender", "Grade,Sex", 1)
    with pytest.raises(GdreproError, match="header"):
        D.parse_glioma(bad)


def test_mushroom_loader_one_hot_and_split(tmp_path, monkeypatch):
    rows = ["p,x,s,n,t,p,f,c,n,k,e,e,s,s,w,w,p,w,o,p,k,s,u", "e,x,s,y,t,a,f,c,b,k,e,c,s,s,w,w,p,w,o,p,n,n,g"] * 150
    (tmp_path / "aacbr").mkdir()
    (tmp_path / "aacbr" / D.MUSHROOM_FILE).write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("GDREPRO_EXTERNAL_DATA", str(tmp_path))
    split = D.load("mushroom", "uci")
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (200, 50, 50)
    np.testing.assert_array_equal(split.X_train.sum(1), 22)  # one category per attribute
    assert split.X_train.shape[1] == 22 + 7  # 7 attributes take two values in these rows
    first = D.parse_mushroom("\n".join(rows))
    assert first[1][0] == 1 and first[1][1] == 0  # p = 1, e = 0


def test_missing_uci_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GDREPRO_EXTERNAL_DATA", str(tmp_path))
    with pytest.raises(GdreproError, match="download it from https://archive.ics.uci.edu"):
        D.load("glioma", "uci")


def test_standins_are_deterministic_and_the_mushroom_one_has_117_features():
    assert D.glioma_standin_text(100) == D.glioma_standin_text(100)
    X, y, names = D.parse_mushroom(D.mushroom_standin_text(2000))
    assert X.shape[1] == 117 and 0.3 < y.mean() < 0.8


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
        run[d]["gradual"] |= {k: np.array(0.0) for k in ("default_out", "cyclic", "cyclic_above_0.1", "upward_mass")}
        run[d]["gradual"]["loss"] = np.arange(3.0) + len(d)
    run["check"] = {"fast_slow_diff": np.array(1e-9)}
    out = E.compute(run)
    assert out["gap_iris"] == pytest.approx(0.1) and out["margin_glioma"] == pytest.approx(0.2)

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


def test_default_scale_settings():
    s = E.SETTINGS["default"]
    assert s.iterations == 30 and max(s.wdbc_cases, s.glioma_cases, s.mushroom_cases) <= 150
    assert E.SETTINGS["paper"].iterations == 0 and E.SETTINGS["paper"].binary_source == "uci"
    with pytest.raises(ValueError):
        E.AacbrSettings("web", 0, 0, 0, 0, 1, 1, 1, 1, iterations=0)
