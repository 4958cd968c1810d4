"""dptrunc against mathematics: accounting identities, dp_accounting, sensitivities, truncated
moments in closed form, consistency of the truncated MLE, input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gdrepro.papers.dptrunc import method as M

DELTA = 1e-6


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 4.0])
def test_zcdp_budget_inverts_the_conversion_and_never_exceeds_the_target(eps):
    rho = M.zcdp_budget(eps, DELTA)[0]
    back = float(M.zcdp_to_dp(rho, DELTA))
    assert back <= eps and back == pytest.approx(eps, rel=1e-8)
    # rho-zCDP of a Gaussian mechanism: Delta^2 / (2 sigma^2)
    sigma = float(M.gaussian_sigma(3.0, rho))
    assert M.GaussianRelease("g", 3.0, sigma).rho == pytest.approx(rho, rel=1e-12)


def test_zcdp_composes_additively_and_eps_inf_means_no_noise():
    ledger = M.PrivacyLedger((M.GaussianRelease("a", 1.0, 2.0, 3), M.GaussianRelease("b", 2.0, 1.0)))
    assert ledger.rho == pytest.approx(3 / 8 + 2.0)
    assert M.gaussian_sigma(1.0, M.zcdp_budget(np.inf, DELTA))[0] == 0.0


@pytest.mark.parametrize("z,steps", [(0.8, 1), (5.0, 20), (40.0, 21), (200.0, 30)])
def test_our_rdp_conversion_reproduces_dp_accounting(z, steps):
    """Same ledger, same orders, same conversion: must agree to float precision; the zCDP
    conversion is the looser one (Bun-Steinke vs Canonne-Kamath-Steinke)."""
    ledger = M.PrivacyLedger((M.GaussianRelease("gd", 0.01, 0.01 * z, steps), M.GaussianRelease("c", 1.0, z)))
    ours, theirs = ledger.rdp_epsilon(DELTA), ledger.dp_accounting_epsilon(DELTA)
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert theirs <= ledger.epsilon(DELTA)


def test_mean_gradient_sensitivity_is_2r_over_n_without_clipping():
    """Replace-one neighbours: the data term (1/n) sum_{i in S} (x_i - mu_0) moves by <= 2r/n,
    and two antipodal points on the sphere attain it."""
    rng = np.random.default_rng(1)
    d, n = 4, 50
    r = M.truncation_radius(d)
    centre = np.zeros((1, 1, d))
    worst = 0.0
    for _ in range(200):
        x = rng.normal(size=(1, n, d)) * rng.uniform(0.2, 3)
        y = x.copy()
        y[0, 0] = rng.normal(size=d) * rng.uniform(0.2, 3)
        _, a = M._ball_data_stats(x, centre, r)
        _, b = M._ball_data_stats(y, centre, r)
        worst = max(worst, np.linalg.norm(a - b))
    assert worst <= 2 * r / n + 1e-12
    x = np.zeros((1, n, d))
    y = x.copy()
    x[0, 0, 0], y[0, 0, 0] = r, -r
    gap = np.linalg.norm(M._ball_data_stats(x, centre, r)[1] - M._ball_data_stats(y, centre, r)[1])
    assert gap == pytest.approx(2 * r / n)


@pytest.mark.parametrize("v", [0.0, 0.7, -1.5])
def test_rejection_sampled_moment_matches_the_truncated_normal_mean(v):
    r = 1.2
    pool = np.random.default_rng(3).standard_normal((1, 400_000, 1))
    moment, curvature = M.truncated_mean_moment(np.array([[[v]]]), pool, (pool**2).sum(-1), r, curvature=True)
    truncated = stats.truncnorm(-r - v, r - v, loc=v)
    assert moment[0, 0, 0] == pytest.approx(truncated.mean(), abs=0.006)
    # curvature of the truncated log-likelihood: P(S) Var[y | S]
    mass = stats.norm.cdf(r - v) - stats.norm.cdf(-r - v)
    assert curvature[0, 0] == pytest.approx(mass * truncated.var(), rel=0.02)


def test_truncated_mle_removes_the_bias_that_clipping_and_dropping_keep():
    rng = np.random.default_rng(4)
    d, n, reps = 5, 20_000, 6
    mu = np.zeros((reps, d))
    centre = np.zeros((reps, d))
    centre[:, 0] = 1.0  # ||mu - mu_0|| = 1
    x = rng.normal(size=(reps, n, d))
    eps = np.array([np.inf])
    trunc = M.dp_truncated_mean(x, eps, DELTA, rng, centre).estimate[0]
    clip = M.clip_mean(x, eps, DELTA, rng, centre).estimate[0]
    drop = M.drop_mean(x, eps, DELTA, rng, centre).estimate[0]
    sd = math.sqrt(d / n)
    assert np.linalg.norm(trunc.mean(0) - mu[0]) < 2 * sd  # unbiased up to noise
    assert np.linalg.norm(clip.mean(0)) > 0.1 and np.linalg.norm(drop.mean(0)) > 0.3  # biased towards mu_0
    assert M.mean_error(trunc, mu).max() < 5 * sd


def test_truncated_mle_recovers_a_covariance_that_clipping_shrinks():
    rng = np.random.default_rng(5)
    d, n = 3, 20_000
    sigma = np.diag([0.6, 1.0, 1.8])
    x = rng.normal(size=(2, n, d)) * np.sqrt(np.diag(sigma))
    eps = np.array([np.inf])
    trunc = M.dp_truncated_covariance(x, eps, DELTA, rng, np.eye(d), pad=1.0).estimate[0]
    clip = M.clip_covariance(x, eps, DELTA, rng, np.eye(d), pad=1.0).estimate[0]
    assert M.covariance_error(trunc, sigma).max() < 0.07  # ~ 2x the empirical error at this n
    assert np.all(clip[:, 2, 2] < 0.93 * 1.8)  # clipping shrinks the largest variance
    assert np.all(M.covariance_error(trunc, sigma) < 0.6 * M.covariance_error(clip, sigma))


def test_privacy_noise_shrinks_like_one_over_n_eps():
    rng = np.random.default_rng(6)
    d, reps = 4, 8
    errs = {}
    for n in (2_000, 8_000):
        x = np.zeros((reps, n, d))  # no sampling error: all error is privacy noise
        est = M.clip_mean(x, np.array([0.5]), DELTA, rng, np.zeros(d)).estimate[0]
        errs[n] = np.sqrt((est**2).sum(-1).mean())
    assert errs[2_000] / errs[8_000] == pytest.approx(4.0, rel=0.35)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"eps": 0.0}, "eps must be > 0"), ({"eps": -1.0}, "eps must be > 0"), ({"delta": 0.0}, "delta"),
     ({"delta": 1.0}, "delta"), ({"n": 5}, "too few"), ({"steps": 1}, "steps")],
)
def test_rejects_bad_inputs(kwargs, match):
    eps, delta, n = kwargs.get("eps", 1.0), kwargs.get("delta", DELTA), kwargs.get("n", 100)
    x = np.zeros((n, 3))
    with pytest.raises(ValueError, match=match):
        M.dp_truncated_mean(x, eps, delta, np.random.default_rng(0), np.zeros(3), steps=kwargs.get("steps", 4))
    if "steps" not in kwargs:
        with pytest.raises(ValueError, match=match):
            M.dp_truncated_covariance(np.zeros((max(n, 1), 3)) if n > 5 else np.zeros((5, 3)), eps, delta,
                                      np.random.default_rng(0), np.eye(3))


def test_covariance_rejects_a_bad_coarse_estimate():
    with pytest.raises(ValueError, match="positive definite"):
        M.dp_truncated_covariance(np.ones((100, 2)), 1.0, DELTA, np.random.default_rng(0), -np.eye(2))


def test_newton_step_converges_where_the_fixed_step_is_slow():
    """d = 5, tight ball: the curvature P(S) Cov[y|S] is ~0.2, so 6 fixed steps of size 1 leave a
    visible bias towards mu_0 while the data-free Newton step has converged."""
    rng = np.random.default_rng(7)
    d, n, reps = 5, 20_000, 4
    centre = np.zeros((reps, d))
    centre[:, 0] = 1.0
    x = rng.normal(size=(reps, n, d))
    eps = np.array([np.inf])
    fixed = M.dp_truncated_mean(x, eps, DELTA, rng, centre, steps=6).estimate[0]
    newton = M.dp_truncated_mean(x, eps, DELTA, rng, centre, steps=6, step_size=None).estimate[0]
    assert fixed[:, 0].mean() > 0.1  # still pulled towards mu_0
    assert abs(newton[:, 0].mean()) < 0.05
