"""Round 2 (issue 27) of localpl: the measurements that check the local constants, the constant
steps certified on their own runs, the tail monotonicity of the step and prior work's assumptions.

Oracles: the Hessian of ``L(W1, W2) = l(W1 W2)`` from torch's autograd (dense, eigvalsh), counts by
hand, and initialisations built to meet or break a prior assumption exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdrepro.papers.localpl import method as M

torch.set_num_threads(1)
LOSSES = ("square", "huber", "logistic")


def _problem(kind: str, seed: int = 0, N: int = 30, D: int = 4, m: int = 2, X=None):
    g = np.random.default_rng(seed)
    X = g.standard_normal((N, D)) if X is None else X
    theta = g.standard_normal((X.shape[1], m))
    return M.make_loss(kind, X, theta, np.random.default_rng(seed + 1)), g


def _torch_hessian(loss: M.Loss, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Dense Hessian of l(W1 W2) in the flattened (W1, W2), from torch autograd."""
    X, Y = torch.as_tensor(loss.X), torch.as_tensor(loss.Y)
    n1 = w1.size

    def L(v):
        a, b = v[:n1].reshape(w1.shape), v[n1:].reshape(w2.shape)
        z = X @ a @ b
        if loss.kind == "square":
            return 0.5 * ((z - Y) ** 2).sum() / X.shape[0]
        if loss.kind == "huber":
            return torch.nn.functional.huber_loss(z, Y, reduction="sum", delta=loss.delta) / X.shape[0]
        return torch.nn.functional.softplus(-Y * z).sum() / X.shape[0]

    v = torch.as_tensor(np.concatenate([w1.ravel(), w2.ravel()]))
    return torch.autograd.functional.hessian(L, v).numpy()


@pytest.mark.parametrize("kind", LOSSES)
def test_hessian_vector_products_and_sharpness_match_torch(kind):
    loss, g = _problem(kind, seed=3)
    D, m, h = 4, 2, 6
    W1 = g.standard_normal((2, D, h)) * 0.7
    W2 = g.standard_normal((2, h, m)) * 0.7
    E1, E2 = g.standard_normal(W1.shape), g.standard_normal(W2.shape)
    a, b = M.hessian_vector_product(loss, W1, W2, E1, E2)
    lam = M.sharpness(loss, W1, W2, np.array([h, h]))
    for i in range(2):
        H = _torch_hessian(loss, W1[i], W2[i])
        want = H @ np.concatenate([E1[i].ravel(), E2[i].ravel()])
        np.testing.assert_allclose(np.concatenate([a[i].ravel(), b[i].ravel()]), want, rtol=1e-9, atol=1e-12)
        assert lam[i] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-8)


def test_sharpness_ignores_zero_padding_and_respects_the_curvature_bound():
    """Padded columns of W1 / rows of W2 would add +-sigma(G) directions; the width slices them off.
    The measured sharpness never exceeds K s^2 + sqrt(2 K (L - L*)) (the bound C7 checks)."""
    loss, g = _problem("square", seed=4)
    W1, W2 = M.init_weights(g, 6, 4, 5, 2, np.array([0.05, 0.3, 1, 2, 3, 0.1]), np.array([1, 1, 4, 0.25, 1, 3]), h_pad=9)
    lam = M.sharpness(loss, W1, W2, np.full(6, 5))
    lam_unpadded = M.sharpness(loss, W1[:, :, :5].copy(), W2[:, :5, :].copy(), np.full(6, 5))
    np.testing.assert_allclose(lam, lam_unpadded, rtol=1e-9)
    st = M.state(loss, W1, W2)
    assert np.all(lam <= M.note_smoothness(st["s2"], st["r"], loss.K))
    assert np.all(lam > 0)


def test_constant_step_certificate_by_hand():
    nan = np.nan
    eta = np.array([[0.1, 0.1, nan], [0.1, 0.1, 0.1], [nan, nan, nan], [0.5, 0.5, nan]])
    K = np.array([[9.0, 10.0, nan], [9.0, 10.5, 8.0], [nan, nan, nan], [3.0, 3.9, nan]])
    np.testing.assert_array_equal(M.constant_step_certified(eta, K, 1.0), [True, False, False, False])
    np.testing.assert_array_equal(M.constant_step_certified(eta, K, 2.0), [True, True, False, True])


def test_pl_violations_count_steps_below_the_bound():
    gap = np.array([[1.0, 0.5, 0.25, np.nan]])
    mu = np.array([[0.5, 0.5, 0.5]])
    g2 = np.array([[1.0, 0.4, 0.25]])  # bounds 2 mu gap = 1, 0.5, 0.25: the middle one falls short
    assert M.pl_violations(g2, mu, gap)[0] == 1
    assert M.pl_violations(g2 * 1.25, mu, gap)[0] == 0


@pytest.mark.parametrize("kind", LOSSES)
def test_measured_gradient_norm_meets_the_local_pl_bound_along_gd(kind):
    loss, g = _problem(kind, seed=5)
    W1, W2 = M.init_weights(g, 4, 4, 8, 2, np.array([0.1, 0.5, 1.0, 2.0]), np.array([1.0, 1.0, 4.0, 1.0]))
    tr = M.gradient_descent(loss, W1, W2, ["adaptive"] * 4, steps=150)
    assert np.isfinite(tr.gradnorm2[:, 0]).all()
    assert M.pl_violations(tr.gradnorm2, tr.mu_t, tr.gap).sum() == 0
    # a PL constant inflated just past the tightest step is caught there, and only there
    with np.errstate(invalid="ignore", divide="ignore"):
        slack = tr.gradnorm2 / (2 * tr.mu_t * tr.gap[:, :-1])
    assert M.pl_violations(tr.gradnorm2, np.nanmax(slack) * 1.001 * tr.mu_t, tr.gap).sum() >= 1
    # the stored last iterate is where each run stopped
    last = np.array([g_[np.isfinite(g_)][-1] for g_ in tr.gap])
    np.testing.assert_allclose(M.state(loss, tr.W1, tr.W2)["gap"], last, rtol=1e-9)


def test_step_falls_in_tail_by_hand():
    gap = np.array([[1.0, 1e-2, 1e-4, 1e-5, 1e-6], [1.0, 0.5, 0.2, 0.1, 0.05], [1.0, 1e-4, 1e-5, 1e-6, np.nan]])
    eta = np.array([[1.0, 0.9, 1.0, 0.99], [1.0, 1.1, 1.2, 1.3], [1.0, 0.5, 0.6, np.nan]])
    falls = M.step_falls_in_tail(eta, gap, tail=1e-3)
    # row 0: tail from t = 2; eta 1.0 -> 0.99 falls once. Row 1: never below 1e-3. Row 2: tail from
    # t = 1; 0.5 -> 0.6 rises.
    assert falls[0] == 1 and np.isnan(falls[1]) and falls[2] == 0


def test_prior_assumptions_on_inits_built_to_meet_or_break_them():
    N, D, m = 40, 3, 3
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((N, D)))
    X = Q * np.sqrt(N)  # whitened: X^T X / N = I, kappa = 1
    loss, g = _problem("square", X=X, m=m)
    theta = loss.theta_star
    U, s, Vt = np.linalg.svd(theta)
    A = U @ np.diag(np.sqrt(s))  # balanced factorisation of Theta* (D = m): W1 = A, W2 = A^T-like
    W1 = np.zeros((3, D, 5))
    W2 = np.zeros((3, 5, m))
    W1[0, :, :D], W2[0, :D, :] = A, np.diag(np.sqrt(s)) @ Vt  # exactly balanced, at the optimum
    W1[1, :, :D], W2[1, :D, :] = 4 * A, np.diag(np.sqrt(s)) @ Vt / 4  # same product, imbalanced
    W1[2], W2[2] = 1e-3 * g.standard_normal((D, 5)), 1e-3 * g.standard_normal((5, m))  # ~0: no margin
    p = M.prior_assumptions(loss, W1, W2, np.array([5, 5, 10]))
    assert p["imbalance"][0] == pytest.approx(0, abs=1e-12) and p["imbalance"][1] > 0.5
    np.testing.assert_array_equal(p["balanced"], [True, False, False])
    np.testing.assert_array_equal(p["margin"], [True, True, False])
    np.testing.assert_array_equal(p["arora_ok"], [True, False, False])
    assert p["du_hu_width"][0] == pytest.approx(D * m)  # r kappa^3 d_y with kappa = 1
    np.testing.assert_array_equal(p["du_hu_ok"], [False, False, True])  # widths 5, 5, 10 vs 9
    # an unwhitened X: Arora et al.'s assumptions fail whatever the init; other losses have no margin
    loss2, _ = _problem("square", X=X * np.linspace(1, 2, D), m=m)
    assert not M.prior_assumptions(loss2, W1, W2, np.full(3, 5))["arora_ok"].any()
    loss3, _ = _problem("huber", X=X, m=m)
    assert not M.prior_assumptions(loss3, W1, W2, np.full(3, 5))["margin"].any()
