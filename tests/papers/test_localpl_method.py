"""The localpl method against mathematics: gradients, local PL, local descent lemma, step rules."""

from __future__ import annotations

import numpy as np
import pytest

from gdrepro.papers.localpl import method as M

LOSSES = ("square", "huber", "logistic")


def _problem(kind: str, seed: int = 0, N: int = 60, D: int = 6, m: int = 3):
    g = np.random.default_rng(seed)
    X = g.standard_normal((N, D))
    theta = g.standard_normal((D, m))
    return M.make_loss(kind, X, theta, g), g


def _weights(g, B: int, D: int, h: int, m: int):
    scale = np.exp(g.uniform(np.log(0.05), np.log(3.0), B))
    ratio = np.exp(g.uniform(-1.5, 1.5, B))
    return M.init_weights(g, B, D, h, m, scale, ratio)


@pytest.mark.parametrize("kind", LOSSES)
def test_gradients_match_finite_differences(kind):
    loss, g = _problem(kind)
    W1, W2 = _weights(g, 2, 6, 9, 3)
    st = M.state(loss, W1, W2)
    E1, E2 = g.standard_normal(W1.shape), g.standard_normal(W2.shape)
    eps = 1e-6
    up = loss.value((W1 + eps * E1) @ (W2 + eps * E2))
    down = loss.value((W1 - eps * E1) @ (W2 - eps * E2))
    directional = (st["g1"] * E1).sum(axis=(1, 2)) + (st["g2"] * E2).sum(axis=(1, 2))
    np.testing.assert_allclose((up - down) / (2 * eps), directional, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", LOSSES)
def test_local_pl_inequality_holds_at_random_weights(kind):
    """||grad L||^2 >= 2 mu_t (L - L*) with mu_t = mu_l(Theta)(sigma_min^2(W1) + sigma_min^2(W2))."""
    loss, g = _problem(kind, seed=1)
    W1, W2 = _weights(g, 400, 6, 12, 3)
    st = M.state(loss, W1, W2)
    assert (st["mu_t"] > 0).all()
    assert (st["gradnorm2"] >= 2 * st["mu_t"] * st["gap"] * (1 - 1e-10)).all()


@pytest.mark.parametrize("kind", LOSSES)
def test_local_descent_lemma_holds_for_any_admissible_step(kind):
    """L(W - eta grad L) <= L - eta (1 - eta K_t(eta)/2) ||grad L||^2 whenever eta K_t(eta) <= 2."""
    loss, g = _problem(kind, seed=2)
    W1, W2 = _weights(g, 400, 6, 12, 3)
    st = M.state(loss, W1, W2)
    eta_max = M.adaptive_step(st["s2"], st["r"], loss.K)  # eta K_t = 1; K_t grows with eta
    eta = eta_max * g.uniform(0.05, 1.9, 400)
    Kt = M.local_smoothness(eta, st["s2"], st["r"], loss.K)
    ok = eta * Kt <= 2
    assert ok.mean() > 0.5
    new = loss.value((W1 - eta[:, None, None] * st["g1"]) @ (W2 - eta[:, None, None] * st["g2"])) - loss.l_star
    bound = st["gap"] - eta * (1 - eta * Kt / 2) * st["gradnorm2"]
    assert (new[ok] <= bound[ok] + 1e-12 * (1 + abs(loss.l_star))).all()


def test_the_bound_is_not_vacuous_a_much_larger_step_breaks_descent():
    loss, g = _problem("square", seed=3)
    W1, W2 = _weights(g, 50, 6, 12, 3)
    st = M.state(loss, W1, W2)
    eta = 50 * M.adaptive_step(st["s2"], st["r"], loss.K)
    new = loss.value((W1 - eta[:, None, None] * st["g1"]) @ (W2 - eta[:, None, None] * st["g2"]))
    assert (new > st["gap"]).any()


def test_adaptive_step_solves_eta_kt_equals_one():
    g = np.random.default_rng(4)
    s2, r, K = g.uniform(0.01, 20, 1000), g.uniform(0, 10, 1000), 2.5
    eta = M.adaptive_step(s2, r, K)
    np.testing.assert_allclose(eta * M.local_smoothness(eta, s2, r, K), 1.0, rtol=1e-12)
    assert (eta <= 1 / M.note_smoothness(s2, r, K)).all()
    # at zero loss the rule is 1 / (K s^2)
    np.testing.assert_allclose(M.adaptive_step(s2, np.zeros_like(s2), K), 1 / (K * s2))


def test_predicted_factor_is_one_minus_mu_eta_at_the_adaptive_step_and_nan_beyond_two():
    mu, eta = np.array([0.3, 0.3]), np.array([0.5, 1.0])
    Kt = 1 / eta[0] * np.array([1.0, 3.0])  # eta K = 1, then 3
    rho = M.predicted_factor(eta, mu, Kt)
    assert rho[0] == pytest.approx(1 - mu[0] * eta[0]) and np.isnan(rho[1])


def test_zero_padding_the_width_changes_nothing():
    loss, g = _problem("huber", seed=5)
    W1, W2 = M.init_weights(np.random.default_rng(9), 1, 6, 8, 3, np.array([0.7]), np.array([1.0]))
    P1, P2 = M.init_weights(np.random.default_rng(9), 1, 6, 8, 3, np.array([0.7]), np.array([1.0]), h_pad=20)
    a = M.gradient_descent(loss, W1, W2, ["adaptive"], steps=60)
    b = M.gradient_descent(loss, P1, P2, ["adaptive"], steps=60)
    np.testing.assert_allclose(a.gap, b.gap, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.eta, b.eta, rtol=1e-12)


@pytest.mark.parametrize("kind", LOSSES)
def test_gd_with_the_adaptive_rule_never_violates_its_bound(kind):
    loss, g = _problem(kind, seed=6)
    W1, W2 = _weights(g, 12, 6, 12, 3)
    tr = M.gradient_descent(loss, W1, W2, ["adaptive"] * 12, steps=300, stop=1e-9)
    assert not tr.diverged.any()
    assert M.bound_violations(tr.gap, tr.rho_pred, loss.l_star).sum() == 0
    assert np.isfinite(tr.rho_pred[np.isfinite(tr.eta)]).all()  # eta K_t = 1 <= 2 always
    assert (np.nanmax(tr.rho_pred, axis=1) < 1).all()


def test_armijo_steps_decrease_the_loss_and_cost_evaluations():
    loss, g = _problem("square", seed=7)
    W1, W2 = _weights(g, 6, 6, 12, 3)
    tr = M.gradient_descent(loss, W1, W2, ["armijo"] * 6, steps=200, stop=1e-9)
    d = np.diff(tr.gap, axis=1)
    assert (d[np.isfinite(d)] <= 0).all()
    assert (tr.evals > np.isfinite(tr.eta).sum(axis=1)).all()  # backtracking costs evaluations


def test_logistic_minimiser_is_stationary_and_separable_data_fail():
    loss, _ = _problem("logistic", seed=8)
    grad = loss.grad(loss.theta_star[None])
    assert np.abs(grad).max() < 1e-10 and loss.l_star > 0
    X = np.random.default_rng(0).standard_normal((30, 2))
    with pytest.raises(ValueError, match="separable"):
        M.logistic_minimiser(X, np.sign(X[:, :1]))


def test_summaries_on_a_geometric_sequence():
    rho = 0.8
    gap = np.array([rho ** np.arange(60.0), 0.5 ** np.arange(60.0)])
    np.testing.assert_array_equal(M.iterations_to(gap, 1e-3), [np.ceil(np.log(1e-3) / np.log(rho)), 10])
    slope, r2 = M.tail_fit(gap)
    np.testing.assert_allclose(slope, np.log10([rho, 0.5]))
    np.testing.assert_allclose(r2, 1.0)
    pred = np.full((2, 59), 0.79)  # predicts faster than measured for the first row
    assert M.bound_violations(gap, pred, 0.0).tolist() == [59, 0]
