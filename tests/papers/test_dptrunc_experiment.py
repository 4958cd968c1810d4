"""The dptrunc evaluation on synthetic error arrays whose rates we know exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gdrepro import papers, stages
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
from gdrepro.papers.dptrunc.experiment import MEAN_METHODS, SETTINGS, compute_metrics, excess, rmse, slope


def test_slope_recovers_a_power_law():
    n = np.array([1e3, 1e4, 1e5])
    assert slope(n, 3.0 * n**-0.5) == pytest.approx(-0.5)
    assert slope(n, 2.0 / n) == pytest.approx(-1.0)


def test_excess_removes_the_non_private_part_of_the_error():
    rng = np.random.default_rng(0)
    stat, priv = rng.normal(size=(1, 200_000)) * 0.3, rng.normal(size=(1, 200_000)) * 0.4
    assert excess(np.abs(stat + priv), np.abs(stat))[0] == pytest.approx(0.4, rel=0.01)


def _synthetic_run(s) -> dict:
    """Errors following error = sqrt(d/n + (30 d/(n eps))^2), clip stuck at 0.1, cov trunc ~ n^-1/2."""
    rng = np.random.default_rng(1)
    dims, ns = np.array(s.dims, float), np.array(s.ns, float)
    eps = np.array([*s.epsilons, np.inf])
    scale = np.abs(rng.normal(size=s.reps)) / np.sqrt(np.mean(rng.normal(size=100_000) ** 2))
    scale /= np.sqrt(np.mean(scale**2))  # rms exactly 1 over replications
    stat = np.sqrt(dims[:, None, None] / ns[None, :, None]) * np.ones(eps.size)
    priv = 30 * dims[:, None, None] / (ns[None, :, None] * eps[None, None, :])
    trunc = (np.sqrt(stat**2 + priv**2))[..., None] * scale
    clip = np.sqrt(0.1**2 + priv**2)[..., None] * scale
    cov_ns, cov_eps = np.array(s.cov_ns, float), np.array([*s.cov_epsilons, np.inf])
    cov_t = (2 / np.sqrt(cov_ns)[:, None] * np.ones(cov_eps.size))[..., None] * scale
    target = np.array([0.5, 1.0])
    return {
        "mean": {"err": {"trunc": trunc, "trunc_private": 1.2 * trunc, "clip": clip, "drop": 3 * clip,
                         "empirical": stat[..., 0, None] * scale}},
        "cov": {"err": {"trunc": cov_t, "clip": np.full_like(cov_t, 0.3),
                        "empirical": np.ones((cov_ns.size, s.reps))}},
        "privacy": {"target": target, "zcdp": target * (1 - 1e-9), "rdp": 0.8 * target, "dpacc": 0.8 * target},
    }


def test_metrics_read_the_rates_of_a_known_error_model():
    s = dataclasses.replace(SETTINGS["default"], reps=50)
    m = compute_metrics(_synthetic_run(s), s)
    assert m["slope_n_statistical"] == pytest.approx(-0.5, abs=1e-9)
    assert m["slope_d_statistical"] == pytest.approx(0.5, abs=1e-9)
    assert m["slope_eps_privacy"] == pytest.approx(-1.0, abs=1e-6)
    assert m["slope_d_privacy"] == pytest.approx(1.0, abs=1e-6)
    assert -1.0 < m["slope_n_privacy"] < -0.9  # d/(n eps) dominates but sqrt(d/n) bends it
    assert m["mean_clip_last_decade_ratio"] > 0.95 and m["mean_trunc_last_decade_ratio"] < 0.35
    assert m["mean_trunc_private_over_public_max_n"] == pytest.approx(1.2)
    assert m["cov_trunc_slope_n"] == pytest.approx(-0.5, abs=1e-9)
    assert m["eps_over_target_max"] <= 1 and m["dpacc_over_zcdp_min"] == pytest.approx(0.8, rel=1e-6)


def test_seeds_pool_by_joining_replications_and_privacy_rows(tmp_path, no_tracking):
    """Two smoke seeds through the house: replications (the errors' last axis) and privacy rows
    join, the kept fraction and the timings average."""
    s = SETTINGS["smoke"]
    paper = papers.get("dptrunc")

    def ctx(stage: str, seed: int | None = None) -> StageContext:
        return StageContext("dptrunc", "smoke", s, (0, 1), tmp_path, tmp_path / "data", seed, stage)

    stages.run_stage(paper, "prepare", ctx("prepare"))
    for seed in (0, 1):
        stages.run_stage(paper, "simulate", ctx("simulate", seed))
    a, b = ctx("evaluate").runs()
    pooled = ctx("evaluate").pooled()
    eps = len(s.epsilons) + 1
    assert set(pooled["mean"]["err"]) == {*MEAN_METHODS, "empirical"}
    trunc = pooled["mean"]["err"]["trunc"]
    assert trunc.shape == (len(s.dims), len(s.ns), eps, 2 * s.reps)
    np.testing.assert_array_equal(trunc, np.concatenate([a["mean"]["err"]["trunc"], b["mean"]["err"]["trunc"]], -1))
    assert not np.array_equal(a["mean"]["err"]["trunc"], b["mean"]["err"]["trunc"])  # different data per seed
    assert pooled["cov"]["err"]["empirical"].shape == (len(s.cov_ns), 2 * s.reps)
    rows = a["privacy"]["target"].size
    assert rows > 0 and pooled["privacy"]["zcdp"].size == 2 * rows
    np.testing.assert_array_equal(pooled["mean"]["kept"], (a["mean"]["kept"] + b["mean"]["kept"]) / 2)
    assert pooled["mean"]["kept"].shape == (len(s.dims), len(s.ns))
    for name, timed in pooled["timing"].items():
        assert timed["seconds"] == pytest.approx((a["timing"][name]["seconds"] + b["timing"][name]["seconds"]) / 2)
        assert timed["samples"] > 0
    assert rmse(trunc)[0, 0, 0] == pytest.approx(np.sqrt(np.mean(trunc[0, 0, 0] ** 2)))


def test_default_scale_has_twenty_replications_and_the_note_grid():
    s = SETTINGS["default"]
    assert s.reps * len(default_seeds()) >= 20
    assert set(s.dims) == {5, 10, 20} and min(s.ns) == 1_000 and max(s.ns) == 100_000
    assert {0.25, 0.5, 1.0, 2.0} <= set(s.epsilons)
    assert max(SETTINGS["paper"].dims) == 100 and max(SETTINGS["paper"].ns) == 1_000_000


def test_settings_reject_bad_numbers():
    with pytest.raises(ValueError):
        dataclasses.replace(SETTINGS["smoke"], delta=1.5)
    with pytest.raises(ValueError):
        dataclasses.replace(SETTINGS["smoke"], epsilons=(0.0,))
