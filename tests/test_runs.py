"""gdrepro.runs: per-seed results survive the disk bit for bit and pool by the rule they declare."""

from __future__ import annotations

import numpy as np
import pytest

from gdrepro import runs
from gdrepro.errors import GdreproError


def seed_results(seed: int) -> dict:
    g = np.random.default_rng(seed)
    return {
        "main": {
            "smoothed": {"last": runs.concat(g.normal(size=(3, 4)), axis=0), "path": runs.concat(g.normal(size=(5, 3, 4)), axis=-2)},
            "grid": runs.first(np.arange(5) * (seed + 1)),
        },
        "curve": runs.mean(g.normal(size=7)),
        "violation": runs.worst(g.exponential(size=())),
        "final": runs.stack(g.normal(size=2)),
        "policy": runs.own(g.normal(size=(2, 2))),
    }


@pytest.fixture
def saved(tmp_path):
    made = [seed_results(s) for s in (0, 1, 2)]
    for seed, results in enumerate(made):
        runs.save(tmp_path / f"seed{seed}.npz", results)
    return made, [runs.load(tmp_path / f"seed{s}.npz") for s in (0, 1, 2)]


def test_save_and_load_keep_every_array_bit_for_bit(saved):
    made, loaded = saved
    assert loaded[1].results["main"]["smoothed"]["path"].tobytes() == made[1]["main"]["smoothed"]["path"].value.tobytes()
    assert loaded[2].results["policy"].dtype == np.float64
    assert loaded[0].rules["main/smoothed/path"] == ("concat", -2)


def test_each_quantity_pools_by_its_own_rule(saved):
    made, loaded = saved
    pooled = runs.pool(loaded)
    values = [m["main"]["smoothed"]["path"].value for m in made]
    np.testing.assert_array_equal(pooled["main"]["smoothed"]["path"], np.concatenate(values, axis=-2))
    assert pooled["main"]["smoothed"]["last"].shape == (9, 4)
    np.testing.assert_array_equal(pooled["main"]["grid"], np.arange(5))  # seed 0's copy
    np.testing.assert_array_equal(pooled["curve"], np.mean([m["curve"].value for m in made], axis=0))
    assert pooled["violation"] == max(float(m["violation"].value) for m in made)
    assert pooled["final"].shape == (3, 2)
    assert "policy" not in pooled


def test_a_result_must_say_how_it_pools(tmp_path):
    with pytest.raises(TypeError, match="does not say how it pools"):
        runs.save(tmp_path / "x.npz", {"a": {"b": np.zeros(3)}})
    with pytest.raises(ValueError, match="may not contain"):
        runs.save(tmp_path / "x.npz", {"a/b": runs.mean(np.zeros(3))})


def test_seeds_that_hold_different_results_do_not_pool(tmp_path):
    runs.save(tmp_path / "a.npz", {"x": runs.mean(np.zeros(2))})
    runs.save(tmp_path / "b.npz", {"x": runs.concat(np.zeros(2))})
    with pytest.raises(GdreproError, match="hold different results"):
        runs.pool([runs.load(tmp_path / "a.npz"), runs.load(tmp_path / "b.npz")])


def test_metrics_record_the_kernels_the_runs_were_computed_with(tmp_path, monkeypatch):
    # torch's CPU capability is known only in the per-seed job that loaded torch; evaluate does not
    from gdrepro import kernels
    from gdrepro.paper import StageContext

    ctx = StageContext("quantile", "smoke", {}, (0, 1), tmp_path, tmp_path / "data", None, "evaluate")
    for seed, capability in ((0, "AVX2"), (1, "AVX2")):
        monkeypatch.setattr(kernels, "effective", lambda c=capability: {"mode": "portable", "torch_cpu_capability": c})
        runs.save(ctx.run_path(seed), {"x": runs.concat(np.arange(3.0))})
    monkeypatch.setattr(kernels, "effective", lambda: {"mode": "portable"})
    assert ctx.kernels() == {"mode": "portable", "torch_cpu_capability": "AVX2"}
    assert runs.load(ctx.run_path(0)).results["x"].tolist() == [0.0, 1.0, 2.0]  # the record is not a result
