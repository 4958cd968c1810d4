"""The localpl method against independent oracles.

Expected values never come from ``method.py``: losses and their gradients with respect to ``W1`` and
``W2`` come from torch (``huber_loss``, ``softplus``, autograd), the global constants ``mu``, ``K``
from the singular values of ``X``, the local constants from the singular values of ``W1``, ``W2``,
the adaptive step from a bracketing root finder on the cubic written out below, the logistic
minimiser from scipy's BFGS, and gradient descent (every step-size rule, Armijo included) is
re-implemented here as a plain loop on torch tensors. The constants are our reconstruction of the
paper (see ``method.py``'s docstring): the oracles re-derive them from those formulas, so a changed
constant, a dropped term or a halved factor in ``method.py`` fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from gdrepro.papers.localpl import method as M

torch.set_num_threads(1)
LOSSES = ("square", "huber", "logistic")


def _problem(kind: str, seed: int = 0, N: int = 40, D: int = 5, m: int = 3, delta: float = 1.0):
    g = np.random.default_rng(seed)
    X = g.standard_normal((N, D))
    theta = g.standard_normal((D, m))
    return M.make_loss(kind, X, theta, np.random.default_rng(seed + 100), delta=delta), g


def _weights(g, B: int, D: int, h: int, m: int, lo: float = 0.1, hi: float = 2.0):
    W1 = g.standard_normal((B, D, h)) * np.exp(g.uniform(np.log(lo), np.log(hi), (B, 1, 1))) / np.sqrt(h)
    W2 = g.standard_normal((B, h, m)) * np.exp(g.uniform(np.log(lo), np.log(hi), (B, 1, 1))) / np.sqrt(h)
    return W1, W2


# --- torch oracles --------------------------------------------------------------------------------


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _torch_loss(kind: str, X, Y, theta, delta: float = 1.0):
    """l(Theta) per batch element, from torch's own loss functions."""
    z = _t(X) @ theta
    Y = _t(Y)
    N = X.shape[0]
    if kind == "square":
        return 0.5 * ((z - Y) ** 2).sum(dim=(1, 2)) / N
    if kind == "huber":
        return torch.nn.functional.huber_loss(z, Y.expand_as(z), reduction="none", delta=delta).sum(dim=(1, 2)) / N
    return torch.nn.functional.softplus(-Y * z).sum(dim=(1, 2)) / N


def _torch_value_and_grads(loss: M.Loss, W1, W2):
    a = _t(W1).requires_grad_(True)
    b = _t(W2).requires_grad_(True)
    value = _torch_loss(loss.kind, loss.X, loss.Y, a @ b, loss.delta)
    g1, g2 = torch.autograd.grad(value.sum(), (a, b))
    return value.detach().numpy(), g1.numpy(), g2.numpy()


def _svals(W):
    return np.linalg.svd(W, compute_uv=False)  # descending, min(rows, cols) of them


def _cubic_root(s2: float, r: float, K: float) -> float:
    """eta with eta (K s^2 + r + K eta s^2 r + K eta^2 s^2 r^2 / 4) = 1, by bracketing."""
    def f(eta):
        return eta * (K * s2 + r + K * eta * s2 * r + K * eta**2 * s2 * r**2 / 4) - 1

    return optimize.brentq(f, 0.0, 1.0 / (K * s2), xtol=1e-300, rtol=4 * np.finfo(float).eps)


# --- losses and global constants -------------------------------------------------------------------


@pytest.mark.parametrize("kind", LOSSES)
def test_loss_value_and_gradient_match_torch(kind):
    loss, g = _problem(kind, delta=0.7)
    theta = g.standard_normal((4, 5, 3)) * 0.8 + loss.theta_star
    v, G, _ = loss.evaluate(theta)
    t = _t(theta).requires_grad_(True)
    tv = _torch_loss(kind, loss.X, loss.Y, t, 0.7)
    (tg,) = torch.autograd.grad(tv.sum(), t)
    np.testing.assert_allclose(v, tv.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(G, tg.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(loss.value(theta), v, rtol=0, atol=0)
    np.testing.assert_allclose(loss.grad(theta), G, rtol=0, atol=0)


def test_huber_default_threshold_is_one():
    g = np.random.default_rng(1)
    X, theta = g.standard_normal((30, 4)), g.standard_normal((4, 2))
    loss = M.make_loss("huber", X, theta, g)
    assert loss.delta == 1.0
    th = theta[None] + 2.0 * g.standard_normal((1, 4, 2))
    want = torch.nn.functional.huber_loss(_t(X @ th[0]), _t(loss.Y), reduction="sum", delta=1.0) / 30
    assert loss.value(th)[0] == pytest.approx(float(want), rel=1e-12)


@pytest.mark.parametrize("kind", LOSSES)
def test_global_constants_are_the_extreme_singular_values_of_x(kind):
    """mu = sigma_min(X)^2 / N, K = sigma_max(X)^2 / N (square, Huber) and / (4 N) (logistic)."""
    loss, _ = _problem(kind, seed=2, N=50, D=6)
    s = _svals(loss.X)
    assert loss.mu_global == pytest.approx(s[-1] ** 2 / 50, rel=1e-12)
    assert loss.K == pytest.approx(s[0] ** 2 / 50 / (4 if kind == "logistic" else 1), rel=1e-12)


def test_square_and_huber_are_realizable_with_zero_minimum():
    g = np.random.default_rng(3)
    X, theta = g.standard_normal((25, 4)), g.standard_normal((4, 2))
    for kind in ("square", "huber"):
        loss = M.make_loss(kind, X, theta, g)
        np.testing.assert_allclose(loss.Y, X @ theta, rtol=1e-15)
        np.testing.assert_allclose(loss.theta_star, theta, rtol=0)
        assert loss.l_star == 0.0


def test_logistic_labels_minimiser_and_minimum_from_scipy():
    """Labels: sign(X Theta/||col|| + noise * eps) with eps from the given generator; Theta* from BFGS."""
    g = np.random.default_rng(4)
    X, theta = g.standard_normal((80, 4)), g.standard_normal((4, 2))
    loss = M.make_loss("logistic", X, theta, np.random.default_rng(7))
    eps = np.random.default_rng(7).standard_normal((80, 2))
    np.testing.assert_array_equal(loss.Y, np.where(X @ (theta / np.linalg.norm(theta, axis=0)) + eps >= 0, 1.0, -1.0))
    total = 0.0
    for j in range(2):
        y = loss.Y[:, j]

        def f(w, y=y):
            z = y * (X @ w)
            return np.logaddexp(0, -z).mean(), -(X.T @ (y * stats.logistic.cdf(-z))) / 80

        res = optimize.minimize(f, np.zeros(4), jac=True, method="BFGS", options={"gtol": 1e-12})
        np.testing.assert_allclose(loss.theta_star[:, j], res.x, rtol=1e-6, atol=1e-8)
        total += res.fun
    assert loss.l_star == pytest.approx(total, rel=1e-10)  # sum over the m binary tasks / N


# --- local PL constants -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LOSSES)
def test_mu_of_the_loss_by_hand(kind):
    loss, g = _problem(kind, seed=5, delta=0.5)
    near = loss.theta_star + 1e-3 * g.standard_normal((1, 5, 3))
    far = loss.theta_star + 3.0 * g.standard_normal((1, 5, 3))
    d = g.standard_normal((1, 5, 3))
    mid = loss.theta_star + 1.5 * 0.5 * d / np.abs(loss.X @ d[0]).max()  # max residual 1.5 delta
    small = 0.05 * loss.theta_star[None]  # |X Theta| below |X Theta*|: the edge is Theta*'s
    for theta in (near, far, mid, small, np.zeros((1, 5, 3))):
        z = loss.X @ theta[0]
        if kind == "square":
            want = loss.mu_global
        elif kind == "huber":
            R = np.abs(z - loss.Y).max()
            want = loss.mu_global if R <= 0.5 else loss.mu_global * 0.5 / (4 * R)
        else:
            e = np.maximum(np.abs(z), np.abs(loss.X @ loss.theta_star)).max()
            p = 1 / (1 + np.exp(-e))
            want = loss.mu_global * p * (1 - p)
        assert loss.mu(theta)[0] == pytest.approx(want, rel=1e-12)
    if kind == "huber":
        assert loss.mu(near)[0] == loss.mu_global and loss.mu(far)[0] < loss.mu_global
        assert loss.mu(mid)[0] == pytest.approx(loss.mu_global * 0.5 / (4 * 0.75), rel=1e-12)
    if kind == "logistic":
        edge = np.abs(loss.X @ loss.theta_star).max()
        assert loss.mu(small)[0] == pytest.approx(loss.mu_global * np.exp(-edge) / (1 + np.exp(-edge)) ** 2, rel=1e-10)


def test_square_pl_constant_is_attained_along_the_smallest_eigenvector():
    """||grad l||^2 = 2 mu (l - l*) exactly for Theta - Theta* = v e_1^T, v the bottom eigenvector."""
    loss, _ = _problem("square", seed=6)
    v = np.linalg.svd(loss.X)[2][-1]
    theta = loss.theta_star.copy()
    theta[:, 0] += 0.3 * v
    val, G, mu = loss.evaluate(theta[None])
    assert (G**2).sum() == pytest.approx(2 * mu[0] * val[0], rel=1e-9)


@pytest.mark.parametrize(("D", "h", "m"), [(5, 9, 3), (4, 4, 4), (6, 3, 2)])
def test_gram_extremes_are_squared_singular_values(D, h, m):
    g = np.random.default_rng(7)
    W1, W2 = g.standard_normal((3, D, h)), g.standard_normal((3, h, m))
    smin1, smax1, smin2, smax2 = M.gram_extremes(W1, W2)
    for b in range(3):
        s1, s2 = _svals(W1[b]), _svals(W2[b])
        # sigma_min of W1 (D x h) is the D-th singular value: zero when h < D
        want_min1 = s1[D - 1] ** 2 if h >= D else 0.0
        want_min2 = s2[m - 1] ** 2 if h >= m else 0.0
        np.testing.assert_allclose([smin1[b], smax1[b], smin2[b], smax2[b]],
                                   [want_min1, s1[0] ** 2, want_min2, s2[0] ** 2], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", LOSSES)
def test_state_matches_torch_gradients_and_singular_values(kind):
    loss, g = _problem(kind, seed=8)
    W1, W2 = _weights(g, 5, 5, 11, 3)
    st = M.state(loss, W1, W2)
    value, g1, g2 = _torch_value_and_grads(loss, W1, W2)
    np.testing.assert_allclose(st["gap"], value - loss.l_star, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(st["g1"], g1, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(st["g2"], g2, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(st["gradnorm2"], (g1**2).sum((1, 2)) + (g2**2).sum((1, 2)), rtol=1e-10)
    np.testing.assert_allclose(st["r"], np.sqrt(2 * loss.K * (value - loss.l_star)), rtol=1e-10)
    for b in range(5):
        s1, s2 = _svals(W1[b]), _svals(W2[b])
        mu_l = loss.mu((W1[b] @ W2[b])[None])[0]
        assert st["mu_t"][b] == pytest.approx(mu_l * (s1[-1] ** 2 + s2[-1] ** 2), rel=1e-9)
        assert st["s2"][b] == pytest.approx(s1[0] ** 2 + s2[0] ** 2, rel=1e-10)


# --- local smoothness, steps and predicted factors ---------------------------------------------------


def test_local_smoothness_and_the_notes_form_by_hand():
    # K = 2, s^2 = 3, r = 0.5, eta = 0.1: 6 + 0.5 + 0.3 + 0.00375
    assert M.local_smoothness(np.array(0.1), np.array(3.0), np.array(0.5), 2.0) == pytest.approx(6.80375, rel=1e-14)
    assert M.local_smoothness(np.array(0.0), np.array(3.0), np.array(0.5), 2.0) == pytest.approx(6.5, rel=1e-14)
    assert M.note_smoothness(np.array(3.0), np.array(0.5), 2.0) == pytest.approx(6.5, rel=1e-14)


def test_adaptive_step_is_the_root_of_the_cubic():
    g = np.random.default_rng(9)
    s2, r, K = g.uniform(0.01, 20, 300), g.uniform(0, 30, 300), 1.7
    want = [_cubic_root(a, b, K) for a, b in zip(s2, r)]
    np.testing.assert_allclose(M.adaptive_step(s2, r, K), want, rtol=1e-12)


def test_predicted_factor_by_hand_and_at_the_edge_of_the_guarantee():
    mu = np.array([0.2, 0.2, 0.2])
    eta = np.array([0.5, 0.5, 0.5])
    Kt = np.array([3.0, 4.0, 4.0 + 1e-9])  # eta K_t = 1.5, exactly 2, just above 2
    rho = M.predicted_factor(eta, mu, Kt)
    assert rho[0] == pytest.approx(1 - 2 * 0.2 * 0.5 + 0.2 * 3.0 * 0.25, rel=1e-14)
    assert rho[1] == pytest.approx(1.0, rel=1e-14) and np.isnan(rho[2])


def test_admissible_step_is_the_smallest_step_of_the_pilot():
    pilot = np.array([[0.3, 0.2, 0.25, np.nan], [0.1, 0.4, np.nan, np.nan]])
    np.testing.assert_array_equal(M.admissible_step(pilot), [0.2, 0.1])


def test_init_weights_scales_and_padding():
    """W1 entries N(0, (s ratio)^2 / h), W2 entries N(0, (s / ratio)^2 / h), zero beyond width h."""
    s, ratio, D, h, m = np.array([0.7, 2.0]), np.array([1.0, 4.0]), 40, 300, 35
    W1, W2 = M.init_weights(np.random.default_rng(10), 2, D, h, m, s, ratio, h_pad=320)
    assert W1.shape == (2, D, 320) and W2.shape == (2, 320, m)
    assert not W1[:, :, h:].any() and not W2[:, h:, :].any()
    for b in range(2):
        # 12000 / 10500 entries: the sample variance has relative se ~1.4%; 6% is > 4 se
        assert W1[b, :, :h].var() == pytest.approx((s[b] * ratio[b]) ** 2 / h, rel=0.06)
        assert W2[b, :h].var() == pytest.approx((s[b] / ratio[b]) ** 2 / h, rel=0.06)
        assert abs(W1[b, :, :h].mean()) < 5 * s[b] * ratio[b] / np.sqrt(h * D * h)


# --- gradient descent, written out ---------------------------------------------------------------------


def _oracle_gd(loss: M.Loss, W1, W2, rule: str, eta_fixed: float = 0.0, steps: int = 40, stop: float = 1e-10,
               armijo_c: float = 0.5):
    """GD on one element: torch gradients, singular values, the cubic root, Armijo from 2 x last step."""
    K = loss.K
    rec = {"gap": [], "eta": [], "mu_t": [], "K_t": [], "rho": []}
    evals = 1
    value, g1, g2 = _torch_value_and_grads(loss, W1[None], W2[None])
    gap0 = value[0] - loss.l_star

    def consts(W1, W2, gap):
        s1, s2 = _svals(W1), _svals(W2)
        mu_l = loss.mu((W1 @ W2)[None])[0]
        return mu_l * (s1[-1] ** 2 + s2[-1] ** 2), s1[0] ** 2 + s2[0] ** 2, np.sqrt(2 * K * max(gap, 0.0))

    gap = gap0
    rec["gap"].append(gap)
    mu_t, s2, r = consts(W1, W2, gap)
    last = _cubic_root(s2, r, K)
    for _ in range(steps):
        mu_t, s2, r = consts(W1, W2, gap)

        def Kfun(e, s2=s2, r=r):  # this step's K_t(eta)
            return K * s2 + r + K * e * s2 * r + K * e**2 * s2 * r**2 / 4

        if rule == "fixed":
            eta = eta_fixed
        elif rule == "adaptive":
            eta = _cubic_root(s2, r, K)
        elif rule == "adaptive_note":
            eta = 1 / (K * s2 + r)
        else:  # Armijo: try 2 x the last accepted step, halve until sufficient decrease
            eta = 2 * last
            need = armijo_c * ((g1[0] ** 2).sum() + (g2[0] ** 2).sum())
            while True:
                trial = _torch_value_and_grads(loss, (W1 - eta * g1[0])[None], (W2 - eta * g2[0])[None])[0][0]
                evals += 1
                if trial <= gap + loss.l_star - eta * need:
                    break
                eta /= 2
            last = eta
        Kt = K * s2 + r if rule == "adaptive_note" else Kfun(eta)
        rho = 1 - 2 * mu_t * eta + mu_t * Kt * eta**2 if eta * Kt <= 2 else np.nan
        for k, v in (("eta", eta), ("mu_t", mu_t), ("K_t", Kt), ("rho", rho)):
            rec[k].append(v)
        W1, W2 = W1 - eta * g1[0], W2 - eta * g2[0]
        value, g1, g2 = _torch_value_and_grads(loss, W1[None], W2[None])
        gap = value[0] - loss.l_star
        evals += rule != "armijo"
        rec["gap"].append(gap)
        if gap <= stop * gap0 or not gap < 1e9 * gap0:  # target reached, or far past any divergence cut
            break
    return {k: np.array(v) for k, v in rec.items()}, evals


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("rule", ["fixed", "adaptive", "adaptive_note", "armijo"])
def test_gradient_descent_matches_the_loop_written_out(kind, rule):
    loss, g = _problem(kind, seed=11)
    W1, W2 = _weights(g, 2, 5, 8, 3, lo=0.3, hi=1.5)
    start = M.state(loss, W1, W2)
    eta_fixed = 0.8 * M.adaptive_step(start["s2"], start["r"], loss.K) if rule == "fixed" else np.zeros(2)
    tr = M.gradient_descent(loss, W1, W2, [rule] * 2, eta_fixed, steps=25)
    for b in range(2):
        want, evals = _oracle_gd(loss, W1[b], W2[b], rule, float(eta_fixed[b]), steps=25)
        n = want["eta"].size
        np.testing.assert_allclose(tr.gap[b, : n + 1], want["gap"], rtol=1e-8, atol=1e-13)
        np.testing.assert_allclose(tr.eta[b, :n], want["eta"], rtol=1e-9)
        np.testing.assert_allclose(tr.mu_t[b, :n], want["mu_t"], rtol=1e-8)
        np.testing.assert_allclose(tr.K_t[b, :n], want["K_t"], rtol=1e-9)
        np.testing.assert_allclose(tr.rho_pred[b, :n], want["rho"], rtol=1e-9)
        assert tr.evals[b] == evals


def test_gradient_descent_stops_at_the_target_and_flags_divergence():
    loss, g = _problem("square", seed=12)
    W1, W2 = _weights(g, 3, 5, 10, 3, lo=0.8, hi=1.2)
    st = M.state(loss, W1, W2)
    eta = M.adaptive_step(st["s2"], st["r"], loss.K) * np.array([1.0, 1.0, 6.0])
    tr = M.gradient_descent(loss, W1, W2, ["fixed"] * 3, eta, steps=400, stop=1e-3)
    for b in range(2):
        want, _ = _oracle_gd(loss, W1[b], W2[b], "fixed", float(eta[b]), steps=400, stop=1e-3)
        n = want["eta"].size
        assert want["gap"][-1] <= 1e-3 * want["gap"][0] < want["gap"][-2]
        assert np.isfinite(tr.eta[b, :n]).all() and np.isnan(tr.eta[b, n:]).all()
        assert np.isnan(tr.gap[b, n + 1:]).all() and not tr.diverged[b]
    # 6 x the adaptive step: the loss grows through 1e3 L_0 to past 1e6 L_0; the element is flagged
    # and stopped at the first step above 1e6 L_0, not before
    want, _ = _oracle_gd(loss, W1[2], W2[2], "fixed", float(eta[2]), steps=60, stop=0.0)
    ratio = want["gap"] / want["gap"][0]
    t = int(np.argmax(ratio > 1e6))
    assert t > 0 and ((ratio > 1e3) & (ratio <= 1e6)).any()
    assert tr.diverged[2]
    np.testing.assert_allclose(tr.gap[2, : t + 1], want["gap"][: t + 1], rtol=1e-7)
    assert np.isnan(tr.gap[2, t + 1:]).all() and np.isnan(tr.eta[2, t:]).all()


# --- trajectory summaries ---------------------------------------------------------------------------


def test_iterations_to_and_measured_factor_by_hand():
    gap = np.array([[8.0, 4.0, 1.0, 0.008, 0.001], [8.0, 9.0, 7.0, 6.0, np.nan]])
    # ratio 1e-3: first t with gap_t <= 0.008 (t = 3, equality counts); never in row 2
    np.testing.assert_array_equal(M.iterations_to(gap, 1e-3), [3.0, np.nan])
    np.testing.assert_array_equal(M.iterations_to(gap, 0.5), [1.0, np.nan])
    np.testing.assert_allclose(M.measured_factor(gap)[0], [0.5, 0.25, 0.008, 0.125])


def test_bound_violations_noise_allowance():
    """Allowance 1e-12 (L_t - L*) + 64 eps max(1, |L*|): just inside does not count, just outside does."""
    eps = np.finfo(float).eps
    rho = np.full((1, 1), 0.5)

    def count(now, nxt, scale):
        return int(M.bound_violations(np.array([[now, nxt]]), rho, scale)[0])

    assert count(0.0, 60 * eps, 0.0) == 0 and count(0.0, 70 * eps, 0.0) == 1
    assert count(0.0, 60 * eps * 1e3, -1e3) == 0 and count(0.0, 70 * eps * 1e3, 1e3) == 1
    assert count(1e6, 0.5e6 + 0.9e-6, 0.0) == 0 and count(1e6, 0.5e6 + 1.1e-6, 0.0) == 1
    assert int(M.bound_violations(np.array([[1.0, 0.9]]), np.full((1, 1), np.nan), 0.0)[0]) == 0


def test_tail_fit_is_least_squares_on_the_second_half():
    g = np.random.default_rng(13)
    logs = -0.07 * np.arange(41) + 0.2 * g.standard_normal(41)
    gap = np.full((1, 50), np.nan)
    gap[0, :41] = 10**logs
    slope, r2 = M.tail_fit(gap)
    t = np.arange(20, 41)  # t >= 40 / 2
    fit = stats.linregress(t, logs[t])
    assert slope[0] == pytest.approx(fit.slope, rel=1e-10)
    assert r2[0] == pytest.approx(fit.rvalue**2, rel=1e-10)
