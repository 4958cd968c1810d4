"""The quantile evaluation on synthetic estimates whose distribution we know exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gdrepro.config import default_seeds
from gdrepro.papers.quantile import method as M
from gdrepro.papers.quantile.experiment import SETTINGS, _pool, standardised_scores


@pytest.fixture(scope="module")
def gaussian_run():
    """Averages = q + sd/sqrt(n) * B(tau)/sqrt(tau(1-tau)), the Gaussian limit, exactly."""
    taus = np.round(np.linspace(0.05, 0.95, 19), 2)
    n, reps = 10_000, 6_000
    q, f = stats.norm.ppf(taus), stats.norm.pdf(stats.norm.ppf(taus))
    z = np.random.default_rng(0).multivariate_normal(np.zeros(19), M.bridge_correlation(taus), size=reps)
    estimate = q + z * M.asymptotic_sd(taus, f) / np.sqrt(n)
    levels = M.augmented_levels(taus, n)
    exact_sides = np.broadcast_to(stats.norm.ppf(levels[19:]), (reps, 38))  # tau -+ h without noise
    exp = {"taus": taus.tolist(), "quantile": q.tolist(), "density": f.tolist(), "n": n, "levels": levels.tolist()}
    return exp, {"x__average": np.concatenate([estimate, exact_sides], axis=1)}


def test_scores_of_the_gaussian_limit_are_nominal(gaussian_run):
    exp, run = gaussian_run
    scores = standardised_scores(exp, run, "x__")
    se = np.sqrt(0.95 * 0.05 / 6000)
    np.testing.assert_allclose(scores["rmse_ratio"], 1.0, atol=0.04)
    np.testing.assert_allclose(scores["hit_true"].mean(axis=0), 0.95, atol=4 * se)
    assert abs(scores["band_true"].mean() - 0.95) < 4 * se  # the band's critical value is right
    # exact curve at tau -+ h: the plug-in density is the true one up to O(h^2)
    assert abs(scores["hit_plugin"].mean() - scores["hit_true"].mean()) < 0.01


def test_scores_detect_a_wrong_variance(gaussian_run):
    exp, run = gaussian_run
    q = np.array(exp["quantile"])
    inflated = {"x__average": run["x__average"].copy()}
    inflated["x__average"][:, :19] = q + 1.5 * (run["x__average"][:, :19] - q)
    scores = standardised_scores(exp, inflated, "x__")
    np.testing.assert_allclose(scores["rmse_ratio"], 1.5, atol=0.06)
    assert scores["hit_true"].mean() < 0.85 and scores["band_true"].mean() < 0.85


def test_pool_joins_replications_and_averages_timings():
    a = {"k__last": np.zeros((2, 3)), "k__checkpoints": np.arange(4), "k__seconds": np.array(1.0)}
    b = {"k__last": np.ones((5, 3)), "k__checkpoints": np.arange(4), "k__seconds": np.array(3.0)}
    pooled = _pool([a, b])
    assert pooled["k__last"].shape == (7, 3) and pooled["k__last"][2:].all()
    assert pooled["k__seconds"] == 2.0 and pooled["k__checkpoints"].tolist() == [0, 1, 2, 3]


def test_default_scale_has_hundreds_of_replications_for_coverage_claims():
    s = SETTINGS["default"]
    assert s.reps * len(default_seeds()) >= 500 and s.n >= 100_000
