"""The quantile evaluation on synthetic estimates whose distribution we know exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from gdrepro import papers, runs, stages
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
from gdrepro.papers.quantile.experiment import SETTINGS, standardised_scores


def _hall_sheather(tau: float, n: int, alpha: float = 0.05) -> float:
    """Koenker (2005) Hall-Sheather bandwidth, capped at min(tau, 1 - tau) / 2 (written out here)."""
    z = stats.norm.ppf(tau)
    rule = n ** (-1 / 3) * stats.norm.ppf(1 - alpha / 2) ** (2 / 3) * (1.5 * stats.norm.pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3)
    return min(rule, min(tau, 1 - tau) / 2)


@pytest.fixture(scope="module")
def gaussian_run():
    """Averages = q + B(tau) / (f(q) sqrt(n)) with B a Brownian bridge, the Gaussian limit, exactly.

    Built without the method: B(t) = W(t) - t W(1) from independent Gaussian increments of a
    Brownian motion W, and the curve at tau -+ h is the exact N(0, 1) quantile there.
    """
    taus = np.round(np.linspace(0.05, 0.95, 19), 2)
    n, reps = 10_000, 6_000
    q, f = stats.norm.ppf(taus), stats.norm.pdf(stats.norm.ppf(taus))
    knots = np.append(taus, 1.0)
    steps = np.diff(knots, prepend=0.0)
    W = np.cumsum(np.random.default_rng(0).standard_normal((reps, knots.size)) * np.sqrt(steps), axis=1)
    bridge = W[:, :-1] - taus * W[:, -1:]
    estimate = q + bridge / f / np.sqrt(n)
    h = np.array([_hall_sheather(t, n) for t in taus])
    levels = np.concatenate([taus, taus - h, taus + h])
    exact_sides = np.broadcast_to(stats.norm.ppf(levels[19:]), (reps, 38))  # tau -+ h without noise
    exp = {"taus": taus.tolist(), "quantile": q.tolist(), "density": f.tolist(), "n": n, "levels": levels.tolist()}
    return exp, {"average": np.concatenate([estimate, exact_sides], axis=1)}


def test_scores_by_hand_at_the_edges_of_the_intervals():
    """One level tau = 1/2 of N(0, 1), n = 100: z = sqrt(n)(estimate - q)/sd_true with
    sd_true = sqrt(1/4)/phi(0); |z| = 1.95 is inside the 95% CI, 1.97 is outside; the curve at
    tau -+ h has the true slope, so the plug-in interval is the true one."""
    n, f = 100, stats.norm.pdf(0.0)
    sd = 0.5 / f
    z = np.array([1.95, -1.95, 1.97, -1.97, 0.3])
    h = _hall_sheather(0.5, n)
    average = np.column_stack([z * sd / np.sqrt(n), np.full(5, -h / f), np.full(5, h / f)])
    exp = {"taus": [0.5], "quantile": [0.0], "density": [f], "n": n}
    scores = standardised_scores(exp, {"average": average})
    np.testing.assert_allclose(scores["z"][:, 0], z, rtol=1e-12)
    np.testing.assert_allclose(scores["rmse_ratio"], np.sqrt((z**2).mean()), rtol=1e-12)
    assert scores["hit_true"][:, 0].tolist() == [True, True, False, False, True]
    assert scores["hit_plugin"][:, 0].tolist() == [True, True, False, False, True]
    # one level: the band is the pointwise interval (critical value 1.96 up to Monte Carlo error)
    far = np.column_stack([np.array([1.9, 2.03]) * sd / np.sqrt(n), np.full(2, -h / f), np.full(2, h / f)])
    assert standardised_scores(exp, {"average": far})["band_true"].tolist() == [True, False]


def test_scores_of_the_gaussian_limit_are_nominal(gaussian_run):
    exp, run = gaussian_run
    scores = standardised_scores(exp, run)
    se = np.sqrt(0.95 * 0.05 / 6000)
    np.testing.assert_allclose(scores["rmse_ratio"], 1.0, atol=0.04)
    np.testing.assert_allclose(scores["hit_true"].mean(axis=0), 0.95, atol=4 * se)
    assert abs(scores["band_true"].mean() - 0.95) < 4 * se  # the band's critical value is right
    # exact curve at tau -+ h: the plug-in density is the true one up to O(h^2)
    assert abs(scores["hit_plugin"].mean() - scores["hit_true"].mean()) < 0.01


def test_scores_detect_a_wrong_variance(gaussian_run):
    exp, run = gaussian_run
    q = np.array(exp["quantile"])
    inflated = {"average": run["average"].copy()}
    inflated["average"][:, :19] = q + 1.5 * (run["average"][:, :19] - q)
    scores = standardised_scores(exp, inflated)
    np.testing.assert_allclose(scores["rmse_ratio"], 1.5, atol=0.06)
    assert scores["hit_true"].mean() < 0.85 and scores["band_true"].mean() < 0.85


def test_seeds_pool_as_one_run_of_all_replications(tmp_path):
    """Two seeds of a tiny design through the house: replications join, timings average, the
    checkpoint grid is shared, and the two seeds' streams differ."""
    from dataclasses import replace

    from gdrepro import data

    paper = papers.get("quantile")
    settings = replace(SETTINGS["smoke"], reps=3, n=200, fine_reps=2, fine_n=100, stress_reps=2, stress_n=100)
    data.build(tmp_path / "data", paper.dataset_builders())

    def ctx(stage, seed=None):
        return StageContext("quantile", "smoke", settings, (0, 1), tmp_path / "out", tmp_path / "data", seed, stage)

    stages.run_stage(paper, "prepare", ctx("prepare"))
    for seed in (0, 1):
        stages.run_stage(paper, "simulate", ctx("simulate", seed))
    seed_runs, pooled = ctx("evaluate").runs(), ctx("evaluate").pooled()
    main = [r["main"]["smoothed"] for r in seed_runs]
    assert not np.array_equal(main[0]["last"], main[1]["last"])
    np.testing.assert_array_equal(pooled["main"]["smoothed"]["last"], np.concatenate([m["last"] for m in main]))
    assert pooled["main"]["smoothed"]["average_path"].shape[-2] == 6
    assert pooled["main"]["plain"]["seconds"] == np.mean([r["main"]["plain"]["seconds"] for r in seed_runs])
    np.testing.assert_array_equal(pooled["fine"]["plain"]["checkpoints"], seed_runs[0]["fine"]["plain"]["checkpoints"])
    assert runs.load(ctx("evaluate").run_path(0)).rules["heavy/smoothed/last"] == ("concat", -2)
    # both extreme-level experiments read the same streams: from the same start they coincide
    truth = replace(settings, start="truth")
    tctx = StageContext("quantile", "smoke", truth, (0,), tmp_path / "truth", tmp_path / "data", None, "prepare")
    stages.run_stage(paper, "prepare", tctx)
    stages.run_stage(paper, "simulate", StageContext("quantile", "smoke", truth, (0,), tmp_path / "truth",
                                                      tmp_path / "data", 0, "simulate"))
    run = tctx.read_run(0)
    np.testing.assert_array_equal(run["extreme"]["smoothed"]["last"], run["extreme_truth"]["smoothed"]["last"])
    assert not np.array_equal(seed_runs[0]["extreme"]["smoothed"]["last"], seed_runs[0]["extreme_truth"]["smoothed"]["last"])


def test_default_scale_has_hundreds_of_replications_for_coverage_claims():
    s = SETTINGS["default"]
    assert s.reps * len(default_seeds()) >= 500 and s.n >= 100_000


def test_path_scores_standardise_both_iterates_at_the_last_two_decades():
    """Errors built from known draws at the theoretical scales come back as those draws; the
    RMSE slopes are -1/2 and -beta/2 exactly when the same draws are used at every checkpoint."""
    from gdrepro.papers.quantile import method as M
    from gdrepro.papers.quantile.experiment import path_scores

    taus = np.array([0.1, 0.5, 0.9])
    q, f = stats.norm.ppf(taus), stats.norm.pdf(stats.norm.ppf(taus))
    k = np.array([10, 50, 100, 1000, 10_000])
    z = np.random.default_rng(2).standard_normal((1, 40, 3))
    c, beta = 1.5, 0.7
    gamma = c * k.astype(float) ** -beta
    exp = {"taus": taus.tolist(), "quantile": q.tolist(), "density": f.tolist(), "n": 10_000}
    sd = M.asymptotic_sd(taus, f)
    extra = np.zeros((k.size, 40, 6))  # tau -+ h columns, ignored here
    run = {"checkpoints": k,
           "average_path": np.concatenate([q + z * sd / np.sqrt(k)[:, None, None], extra], axis=-1),
           "last_path": np.concatenate([q + z * np.sqrt(gamma[:, None, None] * taus * (1 - taus) / (2 * f)), extra], axis=-1)}
    out = path_scores(exp, run, c, beta)
    assert out["k"].tolist() == [100, 1000, 10_000]  # k >= n / 100
    np.testing.assert_allclose(out["z_average"], np.broadcast_to(z, (3, 40, 3)), atol=1e-9)
    np.testing.assert_allclose(out["z_last"], np.broadcast_to(z, (3, 40, 3)), atol=1e-9)
    np.testing.assert_allclose(M.log_log_slope(out["k"], out["rmse_average"]), -0.5, atol=1e-9)
    np.testing.assert_allclose(M.log_log_slope(out["k"], out["rmse_last"]), -beta / 2, atol=1e-9)


def test_start_values_are_zero_or_the_true_quantiles_in_order():
    from gdrepro.papers.quantile.experiment import start_values

    levels = np.array([0.01, 0.0085, 0.0115])
    assert start_values("normal", levels, "zero").tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(start_values("t3", levels, "truth"), stats.t(3).ppf(levels))
    with pytest.raises(ValueError, match="start"):
        dataclasses.replace(SETTINGS["smoke"], start="median")
