"""psgla against independent oracles.

* Samplers: each chain on a Gaussian target whose stationary law is known in closed form for the
  DISCRETE chain (linear drift / linear prox: an AR(1) per coordinate), derived here by hand:
  PSGLA with f = a|x - y|^2/2, g = b|x - m|^2/2 has stationary mean (a y + b m)/(a + b) and variance
  2 / (2(a + b) + gamma (b^2 - a^2)); ULA with drift k(x - c) has mean c and variance
  2 / (k (2 - gamma k)); MYULA and PnP-ULA reduce to ULA with k derived below. 20 000 chains: the
  sample variance has relative se 1 %, tolerances are 5.5 se (5.5 %).
* Distances: POT's W2^2 against the optimal assignment (scipy), sliced W2 against the exact 1-D
  quantile formula and the closed form |s| / sqrt(2) of a shift in 2-D, the KDE against
  scipy.stats.gaussian_kde.
* GMM tools against scipy.stats.multivariate_normal, grid quadrature and mixture moments.
* Imaging pieces against hand computations (TV of a ramp, TV prox of a step edge, blur impulse
  response, PSNR of a constant offset).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from gdrepro.papers.psgla import method as M

CHAINS = 20_000


def linear_prox(m, b):
    """prox_{t g} of g = b|x - m|^2/2, by hand: (u + t b m) / (1 + t b)."""
    return lambda u, t: (u + t * b * m) / (1 + t * b)


def gaussian_prox(m, b):
    """prox / MMSE denoiser of the Gaussian prior N(m, diag(1/b)) built with the code's GMM tools
    (for a Gaussian prior, the MMSE denoiser at noise variance t IS prox_{t g}, g = b|x - m|^2/2)."""
    prior = M.GMM.of([m], [np.diag(1.0 / np.asarray(b, float))], [1.0])
    return M.gmm_denoiser(prior, quirk=False)


def check_moments(final, mean, var):
    """Mean within 5 se, variance within 5.5 relative se (sqrt(2 / N)) of the closed form."""
    n = final.shape[0]
    assert np.all(np.abs(final.mean(0) - mean) < 5 * np.sqrt(np.asarray(var) / n)), (final.mean(0), mean)
    np.testing.assert_allclose(final.var(0), var, rtol=5.5 * np.sqrt(2 / n))


# --- samplers against their exact discrete-time stationary laws ------------------------------------


def test_psgla_stationary_law_is_the_ar1_closed_form():
    a, b, m, y, gamma = 1.0, np.array([2.0, 0.5]), np.array([-1.0, 3.0]), np.array([1.0, -2.0]), 0.3
    res = M.psgla(np.zeros((CHAINS, 2)), lambda x: a * (x - y), linear_prox(m, b), gamma, 120,
                  np.random.default_rng(30), lipschitz_f=a)
    mean = (a * y + b * m) / (a + b)  # = the exact posterior mean, for any gamma
    var = 2 / (2 * (a + b) + gamma * (b**2 - a**2))  # 0.290, 0.721 (posterior: 1/3, 2/3)
    check_moments(res.final, mean, var)


def test_the_gaussian_prior_denoiser_is_the_prox():
    m, b, t = np.array([0.5, -1.0]), np.array([2.0, 0.25]), 0.7
    x = np.random.default_rng(31).normal(size=(6, 2)) * 3
    np.testing.assert_allclose(gaussian_prox(m, b)(x, t), (x + t * b * m) / (1 + t * b), rtol=1e-12)


def test_ula_stationary_law_is_the_ar1_closed_form():
    k, c, gamma = 2.0, 1.5, 0.3
    res = M.ula(np.zeros((CHAINS, 1)), lambda x: k * (x - c), gamma, 150, np.random.default_rng(32), lipschitz=k)
    check_moments(res.final, [c], [2 / (k * (2 - gamma * k))])


def test_sgla_is_ula_on_the_moreau_envelope():
    """g = b|x - m|^2/2: grad g_mu(x) = (x - prox_{mu g}(x)) / mu = b (x - m) / (1 + mu b), so the
    drift is linear with k = a + b / (1 + mu b) and centre (a y + b' m) / k."""
    a, b, m, y, gamma, mu = 1.0, np.array([2.0, 0.5]), np.array([-1.0, 3.0]), np.array([1.0, -2.0]), 0.2, 0.4
    res = M.sgla(np.zeros((CHAINS, 2)), lambda x: a * (x - y), linear_prox(m, b), gamma, mu, 150,
                 np.random.default_rng(33), lipschitz_f=a)
    bp = b / (1 + mu * b)
    k = a + bp
    check_moments(res.final, (a * y + bp * m) / k, 2 / (k * (2 - gamma * k)))


def test_pnp_ula_with_a_gaussian_mmse_denoiser():
    """The MMSE denoiser of N(m, diag(1/b)) at noise variance eps, D(x) - x = -(x - m) eps b / (1 + eps b),
    makes the drift linear with k = a + alpha b / (1 + eps b)."""
    a, b, m, y = 1.0, np.array([2.0, 0.5]), np.array([-1.0, 3.0]), np.array([1.0, -2.0])
    delta, eps, alpha = 0.1, 0.5, 1.5
    res = M.pnp_ula(np.zeros((CHAINS, 2)), lambda x: a * (x - y), linear_prox(m, b), delta, eps,
                    alpha, 200, np.random.default_rng(34), lipschitz_f=a)
    bp = alpha * b / (1 + eps * b)
    k = a + bp
    check_moments(res.final, (a * y + bp * m) / k, 2 / (k * (2 - delta * k)))


def test_psgla_with_the_gmm_denoiser_as_prox_on_a_one_component_prior():
    """The experiment's wiring (quirk off): the exact MMSE denoiser is the Gaussian prox, so the
    chain has the same closed-form law (fewer chains: the denoiser is slower)."""
    a, b, m, y, gamma = 1.0, np.array([2.0, 0.5]), np.array([-1.0, 3.0]), np.array([1.0, -2.0]), 0.3
    res = M.psgla(np.zeros((CHAINS // 4, 2)), lambda x: a * (x - y), gaussian_prox(m, b), gamma, 40,
                  np.random.default_rng(36))
    check_moments(res.final, (a * y + b * m) / (a + b), 2 / (2 * (a + b) + gamma * (b**2 - a**2)))


def test_step_checks_use_the_bound_2_and_each_samplers_lipschitz_constant():
    M.check_step("gamma", 0.2, 10.0)  # exactly 2: allowed
    with pytest.raises(ValueError, match="unstable"):
        M.check_step("gamma", 0.21, 10.0)
    x0, rng, grad = np.zeros(3), np.random.default_rng(35), (lambda x: x)
    prox = linear_prox(np.zeros(3), np.ones(3))
    M.sgla(x0, grad, prox, 1 / (1 + 1 / 0.5), 0.5, 1, rng, lipschitz_f=1.0)  # gamma (L + 1/mu) = 1
    with pytest.raises(ValueError, match="unstable"):
        M.sgla(x0, grad, prox, 0.7, 0.5, 1, rng, lipschitz_f=1.0)  # 0.7 * 3 = 2.1
    M.pnp_ula(x0, grad, prox, 2 / 4, 0.5, 1.5, 1, rng, lipschitz_f=1.0)  # delta (L + alpha/eps) = 2
    with pytest.raises(ValueError, match="unstable"):
        M.pnp_ula(x0, grad, prox, 0.55, 0.5, 1.5, 1, rng, lipschitz_f=1.0)  # 0.55 * 4 = 2.2
    with pytest.raises(ValueError, match="unstable"):
        M.psgla(x0, grad, prox, 2.1, 1, rng, lipschitz_f=1.0)
    with pytest.raises(ValueError, match="unstable"):
        M.ula(x0, grad, 2.1, 1, rng, lipschitz=1.0)


# --- distances -------------------------------------------------------------------------------------


def test_w2_squared_is_the_optimal_assignment_cost():
    rng = np.random.default_rng(40)
    a, b = rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) * [2.0, 0.5] + [1.0, 0.0]
    cost = ((a[:, None] - b[None]) ** 2).sum(-1)
    rows, cols = optimize.linear_sum_assignment(cost)
    assert M.w2_squared(a, b) == pytest.approx(cost[rows, cols].mean(), rel=1e-9)


def test_sliced_w2_is_exact_in_1d_and_the_shift_formula_in_2d():
    rng = np.random.default_rng(41)
    a, b = rng.normal(size=(300, 1)), rng.normal(size=(300, 1)) * 2 + 0.3
    exact = np.sqrt(np.mean((np.sort(a[:, 0]) - np.sort(b[:, 0])) ** 2))  # any projection is +-1
    assert M.sliced_w2(a, b) == pytest.approx(exact, rel=1e-9)
    c = rng.normal(size=(300, 2))
    shift = np.array([0.3, -0.4])
    # E_theta (theta . s)^2 = |s|^2 / 2 for theta uniform on the circle; 2000 directions: se 0.8 %
    assert M.sliced_w2(c, c + shift, projections=2000) == pytest.approx(0.5 / np.sqrt(2), rel=0.04)
    # the paper's protocol: 50 projections, p = 2 (POT called directly)
    import ot

    d = rng.normal(size=(200, 2)) * [1.0, 3.0]
    assert M.sliced_w2(c[:200], d) == pytest.approx(
        ot.sliced_wasserstein_distance(c[:200], d, n_projections=50, p=2, seed=0), rel=1e-12)


def test_kde_is_scipys_gaussian_kde_on_the_grid():
    rng = np.random.default_rng(42)
    gmm = M.GMM.of([[2, 2], [-3, -1]], [np.eye(2), np.diag([0.5, 2])], [0.3, 0.7])
    pts = gmm.sample(rng, 1000)
    g = np.linspace(-8, 8, 100)
    X, Y = np.meshgrid(g, g, indexing="ij")
    grid = np.stack([X.ravel(), Y.ravel()])
    q = stats.gaussian_kde(pts.T)(grid).reshape(100, 100)
    q /= q.sum()
    p = M.kde(pts)
    assert 0.5 * np.abs(p - q).sum() < 0.015  # binning only (a 1/5 instead of 1/6 Scott power: 0.055)
    truth = sum(w * stats.multivariate_normal(mu, c).pdf(np.stack([X, Y], -1))
                for mu, c, w in zip(gmm.means, gmm.covs, gmm.weights))
    truth /= truth.sum()
    assert M.kde_distance(pts, gmm.density) == pytest.approx(0.5 * np.abs(q - truth).sum(), abs=0.015)


# --- Gaussian mixtures -------------------------------------------------------------------------------


def test_gmm_density_and_sampler_against_scipy_and_mixture_moments():
    gmm = M.GMM.of([[0, 3], [0, -5]], [np.eye(2), np.eye(2) / 5], [0.3, 0.7])
    x = np.random.default_rng(43).normal(size=(7, 2)) * 3
    ref = 0.3 * stats.multivariate_normal([0, 3], np.eye(2)).pdf(x) + 0.7 * stats.multivariate_normal(
        [0, -5], np.eye(2) / 5).pdf(x)
    np.testing.assert_allclose(gmm.density(x), ref, rtol=1e-10)
    draws = gmm.sample(np.random.default_rng(44), 200_000)
    mean = 0.3 * np.array([0, 3]) + 0.7 * np.array([0, -5])  # (0, -2.6)
    second = 0.3 * (np.eye(2) + np.outer([0, 3], [0, 3])) + 0.7 * (np.eye(2) / 5 + np.outer([0, -5], [0, -5]))
    cov = second - np.outer(mean, mean)  # var_y = 0.3 + 0.14 + 0.21 * 64 = 13.88
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)  # se <= 0.009
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.02, atol=0.01)  # se of var_y 0.4 %


def test_gmm_posterior_with_a_general_operator_and_noise_matches_quadrature():
    prior = M.GMM.of([[0, 3], [0, -5]], [np.eye(2), np.eye(2) / 5], [0.3, 0.7])
    A, y, sigma2 = np.array([[1.0, 0.5], [0.0, 1.5]]), np.array([-0.7, -2.1]), 2.0
    post = M.gmm_posterior(prior, A, y, sigma2)
    g = np.linspace(-9, 9, 361)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1)
    dens = 0.3 * stats.multivariate_normal([0, 3], np.eye(2)).pdf(X) + 0.7 * stats.multivariate_normal(
        [0, -5], np.eye(2) / 5).pdf(X)
    w = dens * np.exp(-(((X @ A.T) - y) ** 2).sum(-1) / (2 * sigma2))
    w /= w.sum()
    q_mean = (w[..., None] * X).sum((0, 1))
    q_cov = np.einsum("ij,ija,ijb->ab", w, X - q_mean, X - q_mean)
    mean = (post.weights[:, None] * post.means).sum(0)
    cov = sum(wk * (ck + np.outer(mk - mean, mk - mean)) for wk, mk, ck in zip(post.weights, post.means, post.covs))
    np.testing.assert_allclose(mean, q_mean, atol=1e-4)
    np.testing.assert_allclose(cov, q_cov, atol=1e-4)
    assert 0.3 < post.weights.min()  # both components matter here (0.46 / 0.54)


@pytest.mark.parametrize("quirk", [False, True])
def test_mmse_denoiser_against_scipy_closed_form(quirk):
    """E[x0 | x] for x = x0 + sqrt(v) n: responsibilities w_k N(x; m_k, C_k + v I) (scipy), component
    means m_k + C_k (C_k + v I)^-1 (x - m_k); v = sqrt(eps) with the quirk."""
    prior = M.GMM.of([[0, 3], [1, -5]], [[[2, 0.5], [0.5, 0.3]], np.eye(2) / 5], [0.3, 0.7])
    eps = 0.3
    v = np.sqrt(eps) if quirk else eps
    x = np.random.default_rng(45).normal(size=(9, 2)) * 4
    resp = np.stack([wk * stats.multivariate_normal(mk, ck + v * np.eye(2)).pdf(x)
                     for wk, mk, ck in zip(prior.weights, prior.means, prior.covs)], -1)
    resp /= resp.sum(-1, keepdims=True)
    comp = np.stack([mk + (x - mk) @ np.linalg.solve(ck + v * np.eye(2), ck)
                     for mk, ck in zip(prior.means, prior.covs)], 1)  # (C (C+vI)^-1)^T, C symmetric
    np.testing.assert_allclose(M.gmm_denoiser(prior, quirk=quirk)(x, eps), (resp[..., None] * comp).sum(1),
                               rtol=1e-9, atol=1e-12)


# --- imaging pieces ------------------------------------------------------------------------------


def test_tv_against_a_loop_and_a_ramp():
    rng = np.random.default_rng(46)
    img = rng.random((5, 6))
    total = 0.0
    for i in range(5):
        for j in range(6):
            dx = img[i, j + 1] - img[i, j] if j + 1 < 6 else 0.0
            dy = img[i + 1, j] - img[i, j] if i + 1 < 5 else 0.0
            total += np.hypot(dx, dy)
    assert M.tv(img) == pytest.approx(total, rel=1e-12)
    ramp = np.tile(np.arange(7.0) * 0.5, (4, 1))
    assert M.tv(ramp) == pytest.approx(4 * 6 * 0.5)


def test_tv_prox_of_a_step_edge_lowers_the_contrast_by_2w_over_width():
    """u = 0 | h on an H x W image (edge between the two halves, L = W/2 columns each): the prox
    of w TV is the step a | h - a, a = w / L (minimise L H (a^2 + (h - b)^2) / 2 + w H |b - a|)."""
    H, W, h, w = 6, 8, 1.0, 0.2
    x = np.zeros((H, W))
    x[:, W // 2:] = h
    u = M.tv_prox(x[None], w, 2000)[0]
    a = w / (W // 2)
    expected = np.where(x > 0, h - a, a)
    np.testing.assert_allclose(u, expected, atol=2e-3)


def test_data_gradient_blur_and_psnr_by_hand():
    rng = np.random.default_rng(47)
    mask = rng.random((6, 6)) < 0.5
    y, x = rng.random((6, 6)), rng.random((1, 6, 6))
    grad = M.data_gradient(M.inpainting(mask), y, 0.04, 5.0)(x)
    np.testing.assert_allclose(grad, mask * (mask * x - y) / (0.04 * 5.0), rtol=1e-12)
    impulse = np.zeros((1, 12, 12))
    impulse[0, 0, 0] = 1.0
    out = M.uniform_blur(3).apply(impulse)[0]
    expected = np.zeros((12, 12))
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            expected[i % 12, j % 12] = 1 / 9  # periodic boundary
    np.testing.assert_allclose(out, expected, atol=1e-12)
    ref = rng.random((8, 8)) * 0.8
    assert M.psnr(ref + 0.1, ref) == pytest.approx(20.0)  # 10 log10(1 / 0.01)


def test_ula_invariant_1d_has_the_ar1_mean_and_variance():
    k, c, gamma = 2.0, 1.0, 0.3
    grid = np.linspace(-6, 8, 701)
    pi = M.ula_invariant_1d(lambda x: k * (x - c), gamma, grid)
    mean = (pi * grid).sum()
    assert mean == pytest.approx(c, abs=1e-6)
    assert (pi * (grid - mean) ** 2).sum() == pytest.approx(2 / (k * (2 - gamma * k)), rel=1e-4)


def test_wasserstein_1d_of_scaled_gaussians_separates_orders():
    """W_p(N(0, 1), N(0, s^2)) = |1 - s| (E|Z|^p)^{1/p}: W2 = |1 - s|, W1 = |1 - s| sqrt(2 / pi)."""
    grid = np.linspace(-12, 12, 1201)
    p, q = stats.norm.pdf(grid), stats.norm.pdf(grid, scale=2.0)
    assert M.wasserstein_1d(grid, p, q, 2) == pytest.approx(1.0, rel=0.01)
    assert M.wasserstein_1d(grid, p, q, 1) == pytest.approx(np.sqrt(2 / np.pi), rel=0.01)


def test_loglog_slope_of_a_power_law():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    assert M.loglog_slope(x, 3 * x**0.5) == pytest.approx(0.5)
