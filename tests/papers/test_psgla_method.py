"""PSGLA's samplers and tools against mathematics: closed forms, exact posteriors, invariant laws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gdrepro.papers.psgla import method as M

SYMMETRIC = M.GMM.of([[5, 5], [-5, -5]], [np.eye(2), np.eye(2)], [0.5, 0.5])
CROSS = M.GMM.of([[0, 0], [0, 0]], [[[2, 0.5], [0.5, 0.15]], [[0.15, 0.5], [0.5, 2.0]]], [0.5, 0.5])


def _grid_posterior_mean(prior: M.GMM, y, sigma2: float) -> np.ndarray:
    """Posterior mean of x given y = x + n by brute-force quadrature on a fine grid."""
    g = np.linspace(-12, 12, 401)  # step 0.06: exact to ~1e-12 for sd >= 0.18 (trapezoid on Gaussians)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1)
    w = prior.density(X) * np.exp(-((X - y) ** 2).sum(-1) / (2 * sigma2))
    return (w[..., None] * X).sum((0, 1)) / w.sum()


@pytest.mark.parametrize("prior", [SYMMETRIC, CROSS])
@pytest.mark.parametrize("y", [[0.0, -2.0], [-6.0, 6.0]])
def test_gmm_posterior_mean_matches_quadrature(prior, y):
    post = M.gmm_posterior(prior, np.eye(2), np.array(y), 1.0)
    np.testing.assert_allclose(post.weights.sum(), 1.0)
    np.testing.assert_allclose((post.weights[:, None] * post.means).sum(0), _grid_posterior_mean(prior, y, 1.0),
                               atol=1e-4)


@pytest.mark.parametrize("quirk", [False, True])
def test_mmse_denoiser_is_the_posterior_mean_at_the_right_noise_variance(quirk):
    eps = 0.3
    v = np.sqrt(eps) if quirk else eps  # the official code's denoiser uses variance sqrt(eps)
    D = M.gmm_denoiser(CROSS, quirk=quirk)
    x = np.random.default_rng(0).normal(size=(2, 2)) * 2  # more points: test_psgla_oracle.py (scipy)
    expected = [_grid_posterior_mean(CROSS, xi, v) for xi in x]
    np.testing.assert_allclose(D(x, eps), expected, atol=1e-4)


def test_mmse_denoiser_satisfies_tweedie():
    """D(x) - x = v grad log (p * N(0, v I))(x)."""
    eps = 0.5
    D = M.gmm_denoiser(SYMMETRIC, quirk=False)
    smoothed = M.GMM(SYMMETRIC.means, SYMMETRIC.covs + eps * np.eye(2), SYMMETRIC.weights)
    x, h = np.array([0.7, -0.4]), 1e-5
    grad = [(np.log(smoothed.density(x + h * e)) - np.log(smoothed.density(x - h * e))) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(D(x, eps) - x, eps * np.array(grad), atol=1e-6)


def test_batched_denoiser_equals_one_prior_at_a_time():
    D = M.gmm_denoiser([SYMMETRIC, CROSS])
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 2)) * 3
    out = D(x, 0.3)
    np.testing.assert_allclose(out[0], M.gmm_denoiser(SYMMETRIC)(x[0], 0.3))
    np.testing.assert_allclose(out[1], M.gmm_denoiser(CROSS)(x[1], 0.3))


def test_gmm_sampler_has_the_mixture_moments():
    draws = CROSS.sample(np.random.default_rng(2), 200_000)
    np.testing.assert_allclose(np.cov(draws.T), CROSS.covs.mean(0), atol=0.02)


def test_ula_chain_and_quadrature_agree_with_the_ar1_invariant_law():
    """ULA on V = x^2/2: X+ = (1 - g) X + sqrt(2g) Z has invariant law N(0, 2 / (2 - g)), not N(0, 1)."""
    gamma = 0.2
    res = M.ula(np.zeros(20_000), lambda x: x, gamma, 300, np.random.default_rng(3), lipschitz=1.0)
    exact = 2 / (2 - gamma)
    assert abs(res.final.var() / exact - 1) < 0.04
    grid = np.linspace(-7, 7, 701)
    pi = M.ula_invariant_1d(lambda x: x, gamma, grid)
    np.testing.assert_allclose((pi * grid**2).sum(), exact, rtol=1e-4)


def test_psgla_is_exact_on_a_gaussian_where_ula_is_biased():
    """f = g = x^2/2: PSGLA's AR(1) has invariant variance exactly 1/2 = Var(exp(-x^2)) for any step."""
    gamma, rng = 0.4, np.random.default_rng(4)
    res = M.psgla(np.zeros(40_000), lambda x: x, lambda x, t: x / (1 + t), gamma, 200, rng, lipschitz_f=1.0)
    assert abs(res.final.var() - 0.5) < 0.02
    biased = M.ula(np.zeros(40_000), lambda x: 2 * x, gamma, 200, rng)
    assert abs(biased.final.var() - 1 / (2 * (1 - gamma))) < 0.03  # = 0.83, far from 1/2


def test_running_moments_and_checkpoints():
    x = np.arange(3.0)
    res = M.run_chain(lambda x, z: x + 1, x, 4, np.random.default_rng(0), checkpoints=[2, 4], moments=True,
                      keep=lambda x: x[:1])
    assert res.checkpoints.tolist() == [2, 4]
    np.testing.assert_allclose(res.mean[0], x + 1.5)  # mean of X_1, X_2
    np.testing.assert_allclose(res.var[1], np.full(3, 1.25))  # var of 1, 2, 3, 4 (shifted)
    assert res.path[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_step_check_names_step_bound_and_fix():
    with pytest.raises(ValueError, match=r"gamma = 0\.3 .* L = 10 .* 3 > 2.*fix"):
        M.check_step("gamma", 0.3, 10.0)
    assert M.check_step("gamma", 0.1, 10.0) == pytest.approx(1.0)


def test_the_official_tv_defaults_diverge_and_the_check_catches_them():
    """s = 10/255, lambda = 10, sigma = 1/255: data step s^2/(lambda sigma^2) = 10 > 2."""
    s, lam, sigma = 10 / 255, 10.0, 1 / 255
    rng = np.random.default_rng(5)
    truth = rng.random((16, 16))
    op = M.inpainting(rng.random((16, 16)) < 0.5)
    y = op.apply(truth) + sigma * rng.standard_normal(truth.shape)
    grad_f = M.data_gradient(op, y, sigma**2, lam)

    def prox(x, g):
        return M.tv_prox(x, s, 10)

    with pytest.raises(ValueError, match="unstable step"):
        M.psgla(y[None], grad_f, prox, s**2, 30, rng, lipschitz_f=1 / (lam * sigma**2))
    unchecked = M.psgla(y[None], grad_f, prox, s**2, 30, rng)  # what the check prevents
    assert not np.all(np.abs(unchecked.final) < 1e6)
    grad_f = M.data_gradient(op, y, sigma**2, 100.0)  # the fix: lambda = 100 makes the data step 1
    fine = M.psgla(y[None], grad_f, prox, s**2, 30, rng, lipschitz_f=1 / (100 * sigma**2))
    assert np.abs(fine.final).max() < 5


def test_tv_prox_minimises_the_prox_objective():
    rng = np.random.default_rng(6)
    x, w = rng.random((2, 12, 12)), 0.1
    u = M.tv_prox(x, w, 300)

    def obj(v):
        return 0.5 * ((v - x) ** 2).sum(axis=(-2, -1)) + w * M.tv(v)

    assert np.all(obj(u) < obj(x))
    for _ in range(5):
        assert np.all(obj(u + 1e-2 * rng.standard_normal(u.shape)) > obj(u))
    np.testing.assert_allclose(M.tv_prox(np.full((8, 8), 0.3), 0.5), 0.3)  # constants are fixed points


def test_blur_is_self_adjoint_averaging():
    op = M.uniform_blur(9)
    rng = np.random.default_rng(7)
    a, b = rng.random((2, 20, 20))
    assert np.isclose((op.apply(a[None]) * b).sum(), (a * op.apply(b[None])).sum())
    np.testing.assert_allclose(op.apply(np.ones((1, 20, 20))), 1.0)


def test_w2_of_a_shift_is_its_squared_length():
    """(The sliced distance is checked against closed forms in test_psgla_oracle.py.)"""
    a = np.random.default_rng(8).normal(size=(300, 2))
    shift = np.array([0.3, -0.4])
    assert M.w2_squared(a, a + shift) == pytest.approx(0.25, rel=1e-9)


def test_kde_distance_separates_right_from_wrong_samples():
    rng = np.random.default_rng(9)
    post = M.gmm_posterior(SYMMETRIC, np.eye(2), np.zeros(2), 1.0)
    right = M.kde_distance(post.sample(rng, 1000), post.density)
    one_mode = M.kde_distance(post.means[0] + rng.normal(size=(1000, 2)) * np.sqrt(0.5), post.density)
    # Scott's bandwidth over-smooths a bimodal sample (the official distance shares this floor)
    assert right < 0.35 and one_mode > right + 0.15


def test_w2_floor_of_uniform_samples_is_the_order_statistics_closed_form():
    """Two n-point samples of U(0, 1) in 1-D: W2^2 = mean (U_(i) - V_(i))^2, and
    E = (2/n) sum_i Var Beta(i, n + 1 - i) = 1 / (3 (n + 1))."""
    class Uniform:
        def sample(self, g, n):
            return g.uniform(size=(n, 1))

    n, reps, g = 40, 400, np.random.default_rng(3)
    floors = np.array([M.w2_floor(Uniform(), n, g) for _ in range(reps)])
    expected = 1 / (3 * (n + 1))
    assert abs(floors.mean() - expected) < 4 * floors.std() / np.sqrt(reps)
    assert 0.9 * expected < floors.mean() < 1.1 * expected


def test_wasserstein_1d_of_shifted_gaussians_is_the_shift():
    grid = np.linspace(-8, 8, 801)
    for shift in (1e-3, 0.1):
        p, q = stats.norm.pdf(grid), stats.norm.pdf(grid, shift)
        assert M.wasserstein_1d(grid, p, q, 2) == pytest.approx(shift, rel=0.01)
        assert M.wasserstein_1d(grid, p, q, 1) == pytest.approx(shift, rel=0.01)


def test_stability_a_constant_drift_perturbation_shifts_the_invariant_law():
    """b2 = b1 + delta on V = x^2/2: the invariant law moves by exactly delta, so W2 = ||b1 - b2||."""
    grid = np.linspace(-7, 7, 701)
    pi = M.ula_invariant_1d(lambda x: x, 0.1, grid)
    for delta in (0.01, 0.1):
        pd = M.ula_invariant_1d(lambda x, d=delta: x + d, 0.1, grid)
        assert M.wasserstein_1d(grid, pi, pd, 2) == pytest.approx(delta, rel=0.02)


def test_first_reach_interpolates_in_log_iterations():
    it, v = np.array([10, 100, 1000]), np.array([1.0, 2.0, 3.0])
    assert M.first_reach(it, v, 2.5) == pytest.approx(np.sqrt(100 * 1000))
    assert M.first_reach(it, v, 0.5) == 10 and np.isnan(M.first_reach(it, v, 4.0))


def test_patches_average_back_to_the_image():
    x = np.random.default_rng(0).random((2, 12, 10))
    for size, stride in ((4, 1), (4, 2), (3, 3), (1, 1)):
        patches = M.image_patches(x, size, stride)
        assert patches.shape == (2, -(-12 // stride), -(-10 // stride), size * size)
        np.testing.assert_allclose(M.patch_average(patches, (12, 10), size, stride), x)


def test_patch_denoiser_is_the_exact_posterior_mean_for_a_gaussian_patch_prior():
    """Non-overlapping patches (stride = size) under N(m, C): D(x) = m + C (C + v I)^-1 (x - m) per patch."""
    rng = np.random.default_rng(1)
    d = 9
    a = rng.normal(size=(d, d))
    cov, mean = a @ a.T / d + 0.01 * np.eye(d), rng.normal(size=d)
    prior = M.GMM.of(mean[None], cov[None], [1.0])
    x, v = rng.normal(size=(6, 6)), 0.3
    got = M.patch_gmm_denoiser(prior, 3, stride=3)(x, v)
    patches = x.reshape(2, 3, 2, 3).transpose(0, 2, 1, 3).reshape(4, d)
    want = mean + (patches - mean) @ np.linalg.solve(cov + v * np.eye(d), cov)  # C symmetric
    np.testing.assert_allclose(got, want.reshape(2, 2, 3, 3).transpose(0, 2, 1, 3).reshape(6, 6), atol=1e-12)
    # a white Gaussian patch prior shrinks pixelwise, whatever the overlap
    white = M.GMM.of(np.zeros((1, d)), np.eye(d)[None] * 2.0, [1.0])
    np.testing.assert_allclose(M.patch_gmm_denoiser(white, 3, stride=1)(x, v), x * 2 / (2 + v), atol=1e-12)


def test_fitted_patch_gmm_recovers_a_two_cluster_patch_law():
    rng = np.random.default_rng(2)
    images = [np.where(rng.random((30, 30)) < 0.5, 0.2, 0.8) + 0.01 * rng.normal(size=(30, 30)) for _ in range(2)]
    gmm = M.fit_patch_gmm(images, 1, 2, 5000, seed=0)
    np.testing.assert_allclose(np.sort(gmm.means[:, 0]), [0.2, 0.8], atol=0.01)
    np.testing.assert_allclose(gmm.weights, [0.5, 0.5], atol=0.05)


def test_pnp_ula_parameters_and_box_term():
    delta, lam = M.pnp_ula_parameters((1 / 255) ** 2, (2 / 255) ** 2, 1.0)
    assert delta == pytest.approx(8.915e-7, rel=1e-3)  # the paper's ~8.9e-7
    assert delta * (255**2 + 1 / lam + 255**2 / 4) == pytest.approx(1 / 3)
    step = M.pnp_ula_step(lambda x: 0 * x, lambda x, eps: x, delta=0.1, eps=1.0, alpha=1.0, box=(-1.0, 2.0), lam=0.5)
    x = np.array([-3.0, 0.5, 4.0])
    np.testing.assert_allclose(step(x, np.zeros(3)), x + 0.2 * (np.clip(x, -1, 2) - x))
