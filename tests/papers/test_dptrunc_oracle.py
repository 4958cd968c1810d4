"""dptrunc against independent oracles.

* Privacy: the noise each estimator ACTUALLY adds, measured empirically (many privacy levels on the
  same data: the difference with the eps = inf run is pure privacy noise), against the sigma that
  the replace-one sensitivity and the zCDP budget demand, both re-derived here from the note's
  formulas (rho = (sqrt(ln(1/delta) + eps) - sqrt(ln(1/delta)))^2, sigma = Delta / sqrt(2 rho),
  zCDP composing over T steps), never from method.py; ``dp_accounting`` then accounts the measured
  noise independently.
* Estimates: the truncated MLE in 1-D against scipy's truncated normal solved with ``brentq``; the
  baselines (clip, drop) against direct re-implementations; the error metrics against scipy.

Sample sizes: every empirical sd below uses >= 3000 independent normal draws (relative standard
error of an sd <= 1.3 %), and tolerances are >= 4.5 standard errors; the mutants they must catch move
the sd by >= 10 %.
"""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
import scipy.linalg
from scipy import optimize, stats

from gdrepro.papers.dptrunc import method as M

DELTA = 1e-6


def rho_of(eps: float, delta: float = DELTA) -> float:
    """zCDP budget whose Bun-Steinke conversion is exactly (eps, delta)."""
    log_inv = math.log(1.0 / delta)
    return (math.sqrt(log_inv + eps) - math.sqrt(log_inv)) ** 2


def sd_ratio(noise: np.ndarray, sigma: float) -> float:
    """Empirical sd around the known mean 0, relative to the expected sigma."""
    return float(np.sqrt(np.mean(np.asarray(noise) ** 2)) / sigma)


# --- the accountant's formulas against literal numbers / dp_accounting -----------------------------


def test_zcdp_budget_is_the_bun_steinke_inverse_in_closed_form():
    for eps in (0.1, 1.0, 8.0):
        assert M.zcdp_budget(eps, DELTA)[0] == pytest.approx(rho_of(eps), rel=1e-8)
        # forward: rho + 2 sqrt(rho ln(1/delta)), evaluated by hand
        rho = 0.03
        assert float(M.zcdp_to_dp(rho, DELTA)) == pytest.approx(0.03 + 2 * math.sqrt(0.03 * math.log(1e6)), rel=1e-12)
    # eps = 1, delta = 1e-6: sqrt(14.8155) - sqrt(13.8155) = 0.132168..., squared
    assert M.zcdp_budget(1.0, DELTA)[0] == pytest.approx(0.0174689, rel=1e-4)
    assert float(M.gaussian_sigma(2.0, 0.5)) == pytest.approx(2.0)  # Delta / sqrt(2 rho)


def test_ledger_rho_composes_count_times_delta2_over_2sigma2():
    ledger = M.PrivacyLedger((M.GaussianRelease("a", 0.5, 2.0, 7), M.GaussianRelease("b", 3.0, 1.5)))
    assert ledger.rho == pytest.approx(7 * 0.25 / 8 + 9 / 4.5, rel=1e-12)
    assert ledger.epsilon(DELTA) == pytest.approx(ledger.rho + 2 * math.sqrt(ledger.rho * math.log(1e6)))


def test_ledger_rdp_conversion_matches_dp_accounting_for_a_single_gaussian():
    """A single Gaussian mechanism with noise multiplier z: dp_accounting's epsilon, by itself."""
    z = 3.0
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), 10)
    acc = dp_accounting.rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    theirs = acc.compose(event).get_epsilon(DELTA)
    ledger = M.PrivacyLedger((M.GaussianRelease("g", 0.2, 0.2 * z, 10),))
    assert ledger.rdp_epsilon(DELTA) == pytest.approx(theirs, rel=1e-9)
    assert ledger.dp_accounting_epsilon(DELTA) == pytest.approx(theirs, rel=1e-9)


# --- the noise actually added ------------------------------------------------------------------------


def test_clip_mean_adds_the_noise_its_sensitivity_and_budget_demand():
    rng = np.random.default_rng(10)
    n_rep, n, d, pad, eps = 20, 400, 4, 0.5, 0.7
    x = rng.normal(size=(n_rep, n, d)) * 1.5
    est = M.clip_mean(x, np.array([eps] * 60 + [np.inf]), DELTA, rng, np.zeros(d), pad=pad).estimate
    r = math.sqrt(d) + pad
    sigma = (2 * r / n) / math.sqrt(2 * rho_of(eps))
    assert sd_ratio(est[:-1] - est[-1], sigma) == pytest.approx(1.0, abs=0.03)  # 4800 draws: se 1 %


def test_truncated_mean_dpgd_adds_the_per_step_noise_of_2r_over_n_and_T_steps():
    """No truncation (huge pad) and step 1: v_{t+1} = (xbar - pbar - mu_0) - noise_t exactly, so the
    output minus the eps = inf output is minus the average of the last T//2 per-step noises:
    sd = sigma_step / sqrt(T//2), sigma_step = (2r/n) sqrt(T / (2 rho))."""
    rng = np.random.default_rng(11)
    n_rep, n, d, pad, steps, eps = 30, 1000, 5, 30.0, 6, 1.0
    x = rng.normal(size=(n_rep, n, d))
    est = M.dp_truncated_mean(x, np.array([eps] * 60 + [np.inf]), DELTA, rng, np.zeros(d), pad=pad,
                              steps=steps, pool_factor=1).estimate
    r = math.sqrt(d) + pad
    sigma_step = (2 * r / n) * math.sqrt(steps / (2 * rho_of(eps)))
    noise = est[:-1] - est[-1]
    assert sd_ratio(noise, sigma_step / math.sqrt(steps // 2)) == pytest.approx(1.0, abs=0.03)  # 9000 draws
    # an independent accountant on the MEASURED noise: T Gaussian releases with noise multiplier z
    z = float(np.sqrt(np.mean(noise**2))) * math.sqrt(steps // 2) / (2 * r / n)
    acc = dp_accounting.rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    spent = acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z * 0.97), steps))
    assert 0.6 * eps < spent.get_epsilon(DELTA) <= eps


def test_truncated_mean_spends_three_quarters_on_dpgd_and_a_quarter_on_the_coarse_mean(monkeypatch):
    rng = np.random.default_rng(12)
    n_rep, n, d, pad, steps, eps, bound = 30, 1000, 5, 30.0, 4, 1.0, 2.0
    x = rng.normal(size=(n_rep, n, d)) + 0.5
    seen = []
    real = M.private_coarse_mean

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out.estimate)
        return out

    monkeypatch.setattr(M, "private_coarse_mean", spy)
    est = M.dp_truncated_mean(x, np.array([eps] * 60 + [np.inf]), DELTA, rng, None, pad=pad, steps=steps,
                              pool_factor=1, coarse_bound=bound).estimate
    r = math.sqrt(d) + pad
    rho = rho_of(eps)
    sigma_gd = (2 * r / n) * math.sqrt(steps / (2 * 0.75 * rho)) / math.sqrt(steps // 2)
    assert sd_ratio(est[:-1] - est[-1], sigma_gd) == pytest.approx(1.0, abs=0.03)
    (coarse,) = seen
    clipped_mean = np.minimum(np.maximum(x, -bound), bound).mean(axis=1)
    np.testing.assert_allclose(coarse[-1], clipped_mean, atol=1e-12)  # eps = inf: no noise
    sigma_coarse = (2 * bound * math.sqrt(d) / n) / math.sqrt(2 * 0.25 * rho)
    assert sd_ratio(coarse[:-1] - clipped_mean, sigma_coarse) == pytest.approx(1.0, abs=0.03)


def test_private_coarse_mean_clips_coordinates_and_adds_2_bound_sqrt_d_over_n():
    rng = np.random.default_rng(13)
    n_rep, n, d, bound, eps = 40, 200, 3, 1.0, 0.5
    x = rng.normal(size=(n_rep, n, d)) * 3
    est = M.private_coarse_mean(x, np.array([eps] * 40 + [np.inf]), DELTA, bound, rng).estimate
    oracle = np.where(x > bound, bound, np.where(x < -bound, -bound, x)).mean(axis=1)
    np.testing.assert_allclose(est[-1], oracle, atol=1e-12)
    sigma = (2 * bound * math.sqrt(d) / n) / math.sqrt(2 * rho_of(eps))
    assert sd_ratio(est[:-1] - oracle, sigma) == pytest.approx(1.0, abs=0.03)  # 4800 draws


def test_drop_mean_noises_the_sum_with_2r_and_the_count_with_1_on_a_90_10_split():
    """All points at one place p = mu_0 + a inside the ball: estimate = mu_0 + (n a + N_s) / (n + N_c),
    so coordinate j has sd ~ sqrt(s_sum^2 + a_j^2 s_count^2) / n (n >> s_count: the ratio is linear)."""
    rng = np.random.default_rng(14)
    n, d, pad, eps, E = 200_000, 3, 0.0, 1.0, 3000
    r = math.sqrt(d) + pad
    a = np.array([0.99 * r, 0.0, 0.0])
    x = np.broadcast_to(a, (1, n, d))
    est = M.drop_mean(x, np.array([eps] * E + [np.inf]), DELTA, rng, np.zeros(d), pad=pad).estimate[:, 0]
    np.testing.assert_allclose(est[-1], a, atol=1e-12)
    rho = rho_of(eps)
    s_sum, s_count = 2 * r / math.sqrt(2 * 0.9 * rho), 1.0 / math.sqrt(2 * 0.1 * rho)
    noise = est[:-1] - a
    assert sd_ratio(noise[:, 1:], s_sum / n) == pytest.approx(1.0, abs=0.04)  # 6000 draws
    assert sd_ratio(noise[:, 0], math.hypot(s_sum, a[0] * s_count) / n) == pytest.approx(1.0, abs=0.06)  # 3000
    # points outside the ball are dropped, not clipped: the eps = inf estimate is the kept points' mean
    y = rng.normal(size=(2, 500, d)) * 2
    kept_mean = [yi[np.linalg.norm(yi - 0.3, axis=1) <= r].mean(0) for yi in y]
    np.testing.assert_allclose(M.drop_mean(y, np.inf, DELTA, rng, np.full(d, 0.3)).estimate[0], kept_mean,
                               atol=1e-12)


def test_clip_covariance_adds_a_symmetrised_gaussian_of_sqrt2_r2_over_n():
    rng = np.random.default_rng(15)
    n_rep, n, d, pad, eps = 10, 20_000, 3, 0.0, 1.0
    x = rng.normal(size=(n_rep, n, d))
    est = M.clip_covariance(x, np.array([eps] * 150 + [np.inf]), DELTA, rng, np.eye(d), pad=pad).estimate
    r = math.sqrt(d) + pad
    sigma = math.sqrt(2) * r**2 / n / math.sqrt(2 * rho_of(eps))
    noise = est[:-1] - est[-1]
    iu = np.triu_indices(d, 1)
    assert sd_ratio(noise[..., range(d), range(d)], sigma) == pytest.approx(1.0, abs=0.05)  # 4500 draws
    assert sd_ratio(noise[..., iu[0], iu[1]], sigma / math.sqrt(2)) == pytest.approx(1.0, abs=0.05)


def test_truncated_covariance_dpgd_noise_is_sqrt2_r2_over_n_per_step():
    """Whitened data ~ N(0, I/2), no truncation (pad), Newton (natural-gradient, step 1) iterations
    converge fast, so to first order lam_{t+1} = lam* + lam* N_t lam* and Sigma_hat moves by minus the
    average of the last T//2 symmetrised noises: diagonal sd sigma / sqrt(T//2), off-diagonal
    sigma / sqrt(2 T//2), sigma = sqrt(2) r^2 / n * sqrt(T / (2 rho)). The inverse adds an
    O(sigma^2) bias on the diagonal, so the sd is taken around each entry's mean over the 250 runs."""
    rng = np.random.default_rng(16)
    n_rep, n, d, pad, steps, eps = 6, 1000, 3, 3.0, 6, 16.0
    x = rng.normal(size=(n_rep, n, d)) * math.sqrt(0.5)  # whitened covariance I / 2: Lambda* = 2 I
    est = M.dp_truncated_covariance(x, np.array([eps] * 250 + [np.inf]), DELTA, rng, np.eye(d), pad=pad,
                                    steps=steps, pool_factor=1).estimate
    r = math.sqrt(d) + pad
    sigma = math.sqrt(2) * r**2 / n * math.sqrt(steps / (2 * rho_of(eps))) / math.sqrt(steps // 2)
    noise = est[:-1] - est[:-1].mean(axis=0)
    iu = np.triu_indices(d, 1)
    assert sd_ratio(noise[..., range(d), range(d)], sigma) == pytest.approx(1.0, abs=0.05)  # 4500 draws
    assert sd_ratio(noise[..., iu[0], iu[1]], sigma / math.sqrt(2)) == pytest.approx(1.0, abs=0.05)
    assert np.abs(est[:-1].mean(axis=0) - est[-1]).max() < 0.5 * sigma  # se 0.063 sigma, plus the O(sigma^2) bias of the inverse


# --- estimates against scipy / re-implementations ----------------------------------------------------


def test_truncated_mean_is_the_1d_truncated_normal_mle():
    """d = 1, S = [mu_0 - r, mu_0 + r]: the MLE solves E_{N(v,1) | S}[y] = mean_{i in S}(x_i - mu_0),
    solved with scipy's truncnorm and brentq; the naive kept mean is 0.2 off."""
    rng = np.random.default_rng(17)
    n, mu0, pad = 20_000, 0.8, 1.0
    r = 1.0 + pad
    x = rng.normal(size=(1, n, 1))
    est = M.dp_truncated_mean(x, np.inf, DELTA, rng, np.array([mu0]), pad=pad, steps=40, step_size=None,
                              pool_factor=50).estimate[0, 0, 0]
    dev = x[0, :, 0] - mu0
    kept_mean = dev[np.abs(dev) <= r].mean()
    v = optimize.brentq(lambda v: stats.truncnorm(-r - v, r - v, loc=v).mean() - kept_mean, -3, 3)
    assert est == pytest.approx(mu0 + v, abs=0.005)
    assert abs(mu0 + kept_mean - est) > 0.15


def test_truncated_covariance_is_the_1d_truncated_normal_mle():
    """d = 1, S = {|z| <= r}: the MLE variance A solves A Var[u | |u| <= r / sqrt(A)] = mean_{i in S} z_i^2."""
    rng = np.random.default_rng(18)
    n, var, pad = 4000, 1.5, 0.5
    r = 1.0 + pad
    x = rng.normal(size=(1, n, 1)) * math.sqrt(var)
    est = M.dp_truncated_covariance(x, np.inf, DELTA, rng, np.eye(1), pad=pad, steps=200,
                                    pool_factor=50).estimate[0, 0, 0, 0]
    z = x[0, :, 0]
    second = (z[np.abs(z) <= r] ** 2).mean()
    a = optimize.brentq(lambda a: a * stats.truncnorm(-r / math.sqrt(a), r / math.sqrt(a)).var() - second, 0.3, 3.5)
    assert est == pytest.approx(a, rel=0.02)
    assert abs(second - est) > 0.5  # the truncated second moment is far off


def test_truncated_covariance_is_the_fixed_point_on_its_own_pool():
    """d = 1, n = 40, exact: with the rejection sampler's pool z_j (replayed: it is the estimator's
    first draw from ``rng``), the truncated MLE A solves
    kept * mean_{j: A z_j^2 <= r^2} A z_j^2 = (1/n) sum_{|x_i| <= r} x_i^2 (bisection here)."""
    n, var, pad, pool_factor = 40, 1.5, 0.5, 1000
    r = 1.0 + pad
    x = np.random.default_rng(3).normal(size=(1, n, 1)) * math.sqrt(var)
    est = M.dp_truncated_covariance(x, np.inf, DELTA, np.random.default_rng(181), np.eye(1), pad=pad, steps=100,
                                    pool_factor=pool_factor).estimate[0, 0, 0, 0]
    z2 = np.random.default_rng(181).standard_normal((1, n * pool_factor, 1), dtype=np.float32)[0, :, 0]
    z2 = z2.astype(float) ** 2
    xs = x[0, :, 0]
    kept, second = np.mean(np.abs(xs) <= r), np.sum(xs[np.abs(xs) <= r] ** 2) / n

    def excess(a):
        acc = a * z2 <= r * r
        return kept * np.mean(a * z2[acc]) - second

    a = optimize.brentq(excess, 0.3, 3.9, xtol=1e-10)
    assert est == pytest.approx(a, rel=2e-3)  # pool jumps: one draw moves the mean by ~ r^2 / 40000


def test_newton_step_of_the_truncated_mean_on_its_own_pool():
    """d = 1, exact replay of DP-GD with the data-free Newton step on the estimator's own pool:
    m(v) = v + mean{z_j : |v + z_j| <= r}, curvature c(v) = P_pool(S) Var_pool[z | S],
    eta = clip(1 / c, 1, 20), v <- clip(v - eta (kept m(v) - data_term), -r, r), output mu_0 plus
    the average of the last T//2 iterates."""
    n, mu0, pad, steps, pool_factor = 400, 0.2, 0.0, 4, 100
    r = 1.0 + pad
    x = np.random.default_rng(190).normal(size=(1, n, 1)) + 1.2
    est = M.dp_truncated_mean(x, np.inf, DELTA, np.random.default_rng(191), np.array([mu0]), pad=pad,
                              steps=steps, step_size=None, pool_factor=pool_factor).estimate[0, 0, 0]
    z = np.random.default_rng(191).standard_normal((1, n * pool_factor, 1), dtype=np.float32)[0, :, 0].astype(float)
    dev = x[0, :, 0] - mu0
    inside = np.abs(dev) <= r
    kept, data_term = inside.mean(), dev[inside].sum() / n
    v, iterates, etas = 0.0, [], []
    for _ in range(steps):
        acc = z[np.abs(v + z) <= r]
        curvature = acc.size / z.size * acc.var()
        eta = min(max(1.0 / curvature, 1.0), 20.0)
        v = min(max(v - eta * (kept * (v + acc.mean()) - data_term), -r), r)
        iterates.append(v)
        etas.append(eta)
    assert est == pytest.approx(mu0 + np.mean(iterates[steps - steps // 2:]), abs=1e-5)
    assert max(etas) > 6  # the Newton step is far from the fixed step 1 here


def test_truncated_covariance_unwhitens_with_the_coarse_estimate():
    """Data N(0, Sigma) with Sigma_0 = Sigma: whitened data is N(0, I) whatever Sigma is, so the
    estimate is Sigma^{1/2} Ahat Sigma^{1/2} with Ahat the (near-identity) whitened MLE."""
    rng = np.random.default_rng(19)
    n, d = 20_000, 2
    sigma = np.array([[2.0, 0.6], [0.6, 0.5]])
    root = scipy.linalg.sqrtm(sigma).real
    x = rng.normal(size=(1, n, d)) @ root
    est = M.dp_truncated_covariance(x, np.inf, DELTA, rng, sigma, pad=1.0, steps=20).estimate[0, 0]
    np.testing.assert_allclose(est, sigma, atol=0.06)
    emp = np.cov(x[0].T)
    rel = np.linalg.inv(root) @ est @ np.linalg.inv(root)
    assert np.linalg.norm(rel - np.eye(d)) == pytest.approx(
        np.linalg.norm(np.linalg.inv(root) @ emp @ np.linalg.inv(root) - np.eye(d)), abs=0.04)


def test_clip_mean_without_noise_is_the_mean_of_points_projected_on_the_ball():
    rng = np.random.default_rng(20)
    d, pad = 3, 0.5
    r = math.sqrt(d) + pad
    x = rng.normal(size=(2, 300, d)) * 2
    c = np.array([0.5, -0.2, 0.1])
    oracle = []
    for xi in x:
        rows = []
        for p in xi:
            dist = math.dist(p, c)
            rows.append(p if dist <= r else c + (p - c) * r / dist)
        oracle.append(np.mean(rows, axis=0))
    np.testing.assert_allclose(M.clip_mean(x, np.inf, DELTA, rng, c, pad=pad).estimate[0], oracle, atol=1e-12)


def test_clip_covariance_without_noise_clips_whitened_points_and_eigenvalues():
    rng = np.random.default_rng(21)
    d, pad, n = 3, 0.0, 400
    sigma0 = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]])
    x = rng.normal(size=(1, n, d)) * np.array([0.2, 3.0, 1.0])  # whitened eigenvalues beyond [1/4, 4]
    inv_root, root = scipy.linalg.inv(scipy.linalg.sqrtm(sigma0).real), scipy.linalg.sqrtm(sigma0).real
    r = math.sqrt(d) + pad
    z = x[0] @ inv_root
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    z = np.where(norms > r, z * r / norms, z)
    w, u = np.linalg.eigh(z.T @ z / n)
    white = u @ np.diag(np.clip(w, 0.25, 4.0)) @ u.T
    est = M.clip_covariance(x, np.inf, DELTA, rng, sigma0, pad=pad).estimate[0, 0]
    np.testing.assert_allclose(est, root @ white @ root, atol=1e-10)
    assert w.min() < 0.25  # the eigenvalue clipping is exercised


def test_ball_stats_against_a_loop():
    rng = np.random.default_rng(22)
    x = rng.normal(size=(2, 50, 3)) * 2
    centres = rng.normal(size=(3, 2, 3))
    r = 2.5
    kept, sums = M._ball_data_stats(x, centres, r)
    for e in range(3):
        for i in range(2):
            inside = [p - centres[e, i] for p in x[i] if np.sum((p - centres[e, i]) ** 2) <= r * r]
            assert kept[e, i] == pytest.approx(len(inside) / 50)
            np.testing.assert_allclose(sums[e, i], np.sum(inside, axis=0) / 50, atol=1e-12)


def test_errors_against_scipy():
    rng = np.random.default_rng(23)
    sigma = np.array([[2.0, 0.4], [0.4, 1.0]])
    est = np.array([[1.5, 0.1], [0.1, 1.4]])
    inv_root = scipy.linalg.inv(scipy.linalg.sqrtm(sigma).real)
    assert M.covariance_error(est, sigma) == pytest.approx(
        scipy.linalg.norm(inv_root @ est @ inv_root - np.eye(2), "fro"), rel=1e-10)
    mu, hat = rng.normal(size=3), rng.normal(size=3)
    assert M.mean_error(hat, mu) == pytest.approx(math.dist(hat, mu))
