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


def test_standard_pool_holds_the_draws_of_one_call_features_major():
    """The pool is drawn in chunks but holds exactly rng.standard_normal((R, M, d)), transposed to (R, d, M)."""
    pool = M.standard_pool(np.random.default_rng(8), 2, 1000, 3, chunk=300)
    draws = np.random.default_rng(8).standard_normal((2, 1000, 3), dtype=np.float32)
    assert pool.shape == (2, 3, 1000) and pool.flags.c_contiguous
    np.testing.assert_array_equal(pool, np.swapaxes(draws, 1, 2))


@pytest.mark.parametrize("v", [0.0, 0.7, -1.5])
def test_rejection_sampled_moment_matches_the_truncated_normal_mean(v):
    r = 1.2
    pool = np.random.default_rng(3).standard_normal((1, 1, 400_000))  # (R, d, M): features-major
    moment, curvature = M.truncated_mean_moment(np.array([[[v]]]), pool, (pool**2).sum(1), r, curvature=True)
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


# --- issue 24: a converged DP-GD, the private coarse covariance, the spectral error ---------------


def test_truncated_fisher_in_one_dimension_is_the_truncated_normal():
    """d = 1: S = [-r, r], y ~ N(delta, 1): the mass and the variance of y | S in closed form (scipy)."""
    r, dist = 1.3, 0.6
    mass, radial, across = M.truncated_mean_fisher(1, r, dist)
    assert mass == pytest.approx(stats.norm.cdf(r - dist) - stats.norm.cdf(-r - dist), rel=1e-9)
    assert radial == pytest.approx(stats.truncnorm(-r - dist, r - dist, loc=dist).var(), rel=1e-7)
    assert across == 0.0


def test_truncated_fisher_matches_monte_carlo_in_three_dimensions():
    rng = np.random.default_rng(30)
    d, r, dist = 3, 1.9, 1.0
    y = rng.normal(size=(400_000, d))
    y[:, 0] += dist
    inside = y[(y**2).sum(1) <= r * r]
    mass, radial, across = M.truncated_mean_fisher(d, r, dist)
    assert mass == pytest.approx(inside.shape[0] / y.shape[0], rel=0.01)
    assert radial == pytest.approx(inside[:, 0].var(), rel=0.02)
    assert across == pytest.approx(inside[:, 1:].var(axis=0).mean(), rel=0.02)
    assert M.truncated_curvature(d, r, dist) == pytest.approx(mass * radial, rel=1e-12)


@pytest.mark.parametrize("curvature", [0.05, 0.24, 0.7])
def test_dpgd_steps_is_the_fewest_even_steps_that_contract_by_tol(curvature):
    steps = M.dpgd_steps(curvature, tol=0.01, minimum=2)
    assert steps % 2 == 0 and (1 - curvature) ** (steps // 2) <= 0.01 < (1 - curvature) ** (steps // 2 - 1)
    assert M.dpgd_steps(curvature, tol=0.01, minimum=200) == 200
    with pytest.raises(ValueError):
        M.dpgd_steps(0.0)


def test_converged_truncated_mle_attains_its_delta_method_rmse():
    """eps = inf, d = 2, ||mu - mu_0|| = 1: over 300 data sets the RMSE of the estimator with the
    curvature rule's T matches sqrt(tr Cov[y|S]^-1 (1 + 1/pool_factor) / (n P(S))) (se ~ 3 %);
    with T = 4 fixed steps it has not converged and is far above."""
    rng = np.random.default_rng(31)
    d, n, reps, pool_factor = 2, 1_000, 300, 4.0
    centre = np.zeros((reps, d))
    centre[:, 0] = 1.0
    x = rng.normal(size=(reps, n, d))
    predicted = M.truncated_mle_rmse(d, math.sqrt(d), 1.0, n, pool_factor)
    est = M.dp_truncated_mean(x, np.inf, DELTA, rng, centre, pool_factor=pool_factor).estimate[0]
    assert np.sqrt(np.mean(M.mean_error(est, 0.0) ** 2)) == pytest.approx(predicted, rel=0.12)
    slow = M.dp_truncated_mean(x, np.inf, DELTA, rng, centre, pool_factor=pool_factor, steps=4).estimate[0]
    assert np.sqrt(np.mean(M.mean_error(slow, 0.0) ** 2)) > 2 * predicted


def test_private_coarse_covariance_is_clipping_at_the_public_scale():
    rng = np.random.default_rng(32)
    x = rng.normal(size=(2, 500, 3)) * 2
    a = M.private_coarse_covariance(x, 1.0, DELTA, np.random.default_rng(1), (0.5, 20.0), pad=1.0).estimate
    b = M.clip_covariance(x, 1.0, DELTA, np.random.default_rng(1), 20 * np.eye(3), pad=1.0, eig_bound=40).estimate
    np.testing.assert_array_equal(a, b)
    assert np.linalg.eigvalsh(a).min() >= 0.5 - 1e-9  # the lower public bound


def test_fully_private_covariance_recovers_sigma_at_large_n():
    """eps = inf: the private coarse step is then exact clipping at a radius no point reaches, so
    Sigma_0 is the empirical second moment and the truncated MLE is as good as with a public Sigma_0."""
    rng = np.random.default_rng(33)
    sigma = np.diag([0.7, 1.5, 4.0])
    x = rng.normal(size=(2, 20_000, 3)) * np.sqrt(np.diag(sigma))
    est = M.dp_truncated_covariance(x, np.inf, DELTA, rng, None, pad=1.0).estimate[0]
    assert M.covariance_error(est, sigma).max() < 0.1


def test_covariance_gradient_sensitivity_is_attained_by_orthogonal_boundary_points():
    """Replace-one: z z^T - z' z'^T for orthogonal z, z' on the sphere of radius r has Frobenius
    norm sqrt(2) r^2; the released statistic moves by exactly that over n."""
    d, n = 3, 40
    r = M.truncation_radius(d)
    x = np.random.default_rng(34).normal(size=(1, n, d)) * 0.3
    moment = np.eye(d)[None, None]
    a, b = x.copy(), x.copy()
    a[0, 0], b[0, 0] = [r * (1 - 1e-12), 0, 0], [0, r * (1 - 1e-12), 0]
    inv_half = np.eye(d)[None, None]
    gap = M.cov_gradient_statistic(a, inv_half, moment, r) - M.cov_gradient_statistic(b, inv_half, moment, r)
    assert np.linalg.norm(gap) == pytest.approx(math.sqrt(2) * r**2 / n, rel=1e-9)


def test_spectral_error_is_the_largest_eigenvalue_gap():
    sigma = np.diag([1.0, 4.0])
    est = np.diag([1.5, 2.0])  # relative: diag(1.5, 0.5) - I
    assert M.covariance_error(est, sigma, "op") == pytest.approx(0.5)
    assert M.covariance_error(est, sigma) == pytest.approx(math.sqrt(0.5))
