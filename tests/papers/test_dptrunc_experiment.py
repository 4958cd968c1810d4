"""The dptrunc evaluation on synthetic error arrays whose rates we know exactly, and the privacy audit."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gdrepro import papers, stages
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
from gdrepro.papers.dptrunc import experiment as E
from gdrepro.papers.dptrunc import method as M
from gdrepro.papers.dptrunc.experiment import MEAN_METHODS, SETTINGS, compute_metrics, excess, rmse, slope

DELTA = 1e-6


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
    cov_dims, cov_ns = np.array(s.cov_dims, float), np.array(s.cov_ns, float)
    cov_eps = np.array([*s.cov_epsilons, np.inf])
    cov_t = (2 / np.sqrt(cov_ns)[None, :, None] * np.ones((cov_dims.size, 1, cov_eps.size)))[..., None] * scale
    cov_stat = np.sqrt(cov_dims[:, None, None] / cov_ns[None, :, None]) * np.ones(cov_eps.size)
    cov_priv = 5 * cov_dims[:, None, None] ** 1.5 / (cov_ns[None, :, None] * cov_eps[None, None, :])
    target = np.array([0.5, 1.0])
    return {
        "mean": {"err": {"trunc": trunc, "trunc_private": 1.2 * trunc, "clip": clip, "drop": 3 * clip,
                         "empirical": stat[..., 0, None] * scale}},
        "cov": {"err": {"trunc": cov_t, "trunc_private": 0.9 * cov_t, "clip": np.full_like(cov_t, 0.3),
                        "trunc_op": np.sqrt(cov_stat**2 + cov_priv**2)[..., None] * scale,
                        "trunc_privacy_op": cov_priv[..., None] * scale,
                        "empirical": np.ones((cov_dims.size, cov_ns.size, s.reps))}},
        "privacy": {"target": target, "zcdp": target * (1 - 1e-9), "rdp": 0.8 * target, "dpacc": 0.8 * target},
        "audit": {"a": np.array([[90.0, 100, 0.5], [110.0, 100, 1.0]]), "b": np.array([[400.0, 100, 0.25]])},
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
    assert m["cov_trunc_private_over_clip_max_n"] == pytest.approx(0.9 * m["cov_trunc_over_clip_max_n"])
    assert m["cov_slope_d_privacy"] == pytest.approx(1.5, abs=1e-9)
    assert m["cov_slope_d_statistical"] == pytest.approx(0.5, abs=0.01)  # eps = inf: no privacy part
    assert m["audit_noise_sd_ratio_min"] == pytest.approx(1.0) and m["audit_noise_sd_ratio_max"] == pytest.approx(2.0)
    assert m["audit_sensitivity_excess_max"] == pytest.approx(0.0) and m["audit_sensitivity_ratio_min"] == 0.25
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
    assert pooled["cov"]["err"]["empirical"].shape == (len(s.cov_dims), len(s.cov_ns), 2 * s.reps)
    assert all(v.shape == (2, 3) for v in pooled["audit"].values())  # one row per seed
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


# --- the privacy audit -------------------------------------------------------------------------------


def _audited(est):
    return {tr.name: tr for tr in est.transcripts}


def test_audit_sees_the_calibrated_noise_and_the_attained_sensitivity():
    """A real estimator: its noise, recomputed from the data, has the calibrated sd, and the
    adversarial records attain (but never exceed) its sensitivity 2r/n."""
    rng = np.random.default_rng(40)
    x = rng.normal(size=(2, 300, 3)) + 0.3
    est = M.dp_truncated_mean(x, np.repeat([0.5, 1.0], 40), DELTA, rng, np.zeros((2, 3)), steps=10, audit=True)
    tr = _audited(est)["DP-GD gradient"]
    total, count = E.audit_noise(tr, x, calls=10)
    assert count == 10 * 80 * 2 * 3 and math.sqrt(total / count) == pytest.approx(1.0, abs=0.05)  # 4800 draws
    assert 0.99 < E.audit_sensitivity(tr, x) <= 1.0


def test_audit_catches_too_little_noise_and_a_wrong_sensitivity():
    """Mutants: noise at 0.8 sigma, and a statistic normalised by n_S instead of n (its
    sensitivity is then no longer 2r/n)."""
    rng = np.random.default_rng(41)
    x = rng.normal(size=(1, 200, 2))
    centre = np.zeros((1, 1, 2))
    radius = M.truncation_radius(2)
    sigma = np.array([0.1])
    clean = M.clip_mean_statistic(x, centre[0], radius)[None]
    quiet = M.Transcript("quiet", lambda x, centre: M.clip_mean_statistic(x, centre[0], radius), 2 * radius / 200,
                         sigma, M._ball_region(centre, radius))
    for _ in range(2000):
        quiet.states.append({"centre": centre})
        quiet.released.append(clean + 0.8 * sigma[0] * rng.standard_normal(clean.shape))
    total, count = E.audit_noise(quiet, x, calls=2000)
    assert math.sqrt(total / count) == pytest.approx(0.8, abs=0.03)

    def per_kept(x, centre):
        kept, sums = M._ball_data_stats(x, centre, radius)
        return sums / kept[..., None]

    wrong = M.Transcript("per kept", per_kept, 2 * radius / 200, sigma, M._ball_region(centre, radius),
                         states=[{"centre": centre}], released=[np.zeros((1, 1, 2))])
    assert E.audit_sensitivity(wrong, x, calls=(0,)) > 1.2


def test_adversarial_records_lie_on_and_beyond_the_set():
    centre, shape, radius = np.array([1.0, -1.0]), np.diag([2.0, 0.5]), 3.0
    records = E.adversarial_records((centre, shape, radius))
    u = (records[1:] - centre) @ np.linalg.inv(shape).T
    norms = np.linalg.norm(u, axis=1)
    np.testing.assert_allclose(records[0], centre)
    assert np.sum(np.isclose(norms, radius)) == np.sum(np.isclose(norms, 10 * radius)) == (len(records) - 1) // 2
