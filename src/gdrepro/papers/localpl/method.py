"""Gradient descent on two-layer linear networks with local PL / local smoothness step sizes.

Xu, Min, Tarmoun, Mallada & Vidal (2025), "A Local Polyak-Lojasiewicz and Descent Lemma of
Gradient Descent for Overparametrized Linear Models", arXiv:2505.11664.

Model: ``L(W1, W2) = l(W1 W2)`` with ``W1 in R^{D x h}``, ``W2 in R^{h x m}`` and a loss ``l`` on
``Theta in R^{D x m}`` that is K-smooth and (locally) mu-PL. With ``G = grad l(W1 W2)``,
``grad_W1 L = G W2^T`` and ``grad_W2 L = W1^T G``.

RECONSTRUCTED. The paper's theorem statements were not available to us (only its abstract);
every constant below is our own derivation in the paper's framework (local PL + local descent
lemma, constants from the weights' singular values, the current loss and the global mu, K of
``l``), written out in the docstrings so it can be checked:

* local PL (exact consequence of the chain rule):
  ``||grad L||^2 >= (lmin(W1 W1^T) + lmin(W2^T W2)) ||G||^2 >= 2 mu_t (L - L*)`` with
  ``mu_t = mu_l(Theta) (sigma_min^2(W1) + sigma_min^2(W2))`` (sigma_min = the D-th, resp. m-th
  singular value, zero when the width is too small).
* local descent lemma (ours; the note's simpler form drops the last two terms): one GD step of
  size eta moves ``Theta`` by ``Delta = -eta (G W2^T W2 + W1 W1^T G) + eta^2 G W2^T W1^T G``;
  K-smoothness of ``l`` and ``||G||_2 <= ||G||_F <= r := sqrt(2 K (L - L*))`` give
  ``L(W - eta grad L) <= L - eta (1 - eta K_t(eta) / 2) ||grad L||^2`` with
  ``K_t(eta) = K s^2 + r + K eta s^2 r + K eta^2 s^2 r^2 / 4``, ``s^2 = sigma_max^2(W1) + sigma_max^2(W2)``.
* hence, for ``eta K_t(eta) <= 2``: ``L_{t+1} - L* <= (1 - 2 mu_t eta + mu_t K_t(eta) eta^2)(L_t - L*)``
  (the per-step contraction the note quotes), and the adaptive rule ``eta_t`` solving
  ``eta K_t(eta) = 1`` gives the factor ``1 - mu_t eta_t``; ``K_t`` falls with the loss, so the
  step can grow during training.

Everything is batched: weights are stacks ``(B, D, h)`` / ``(B, h, m)``; widths can be mixed in
one batch by zero-padding ``h`` (padded columns of W1 / rows of W2 get zero gradient and stay
zero, and the Gram matrices ``W1 W1^T``, ``W2^T W2`` are unchanged).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import expit

RULES = ("fixed_k0", "admissible", "adaptive", "adaptive_note", "armijo")
"""Step-size rules: fixed 1/K_0, admissible fixed 1/max_t K_t (from a pilot run), adaptive
1/K_t (ours, solves eta K_t(eta) = 1), the note's adaptive 1/(K s^2 + r), Armijo backtracking."""


# --- losses l(Theta) on the non-overparametrized model ------------------------------------------


@dataclass(frozen=True)
class Loss:
    """A loss ``l(Theta)`` on data ``X (N x D)``, ``Y (N x m)``, batched over ``Theta (B, D, m)``.

    ``K`` is its global smoothness, ``l_star`` its minimum (attained at ``theta_star``), and
    :meth:`mu` a PL constant valid *at* each ``Theta`` (``||grad l||^2 >= 2 mu (l - l*)``).
    """

    kind: str  # "square" | "huber" | "logistic"
    X: np.ndarray
    Y: np.ndarray
    theta_star: np.ndarray
    l_star: float
    K: float
    mu_global: float  # lambda_min(X^T X / N)
    delta: float = 1.0  # Huber threshold

    def residual(self, theta: np.ndarray) -> np.ndarray:
        """``X Theta`` for a stack ``theta (B, D, m)`` -> (B, N, m)."""
        return np.matmul(self.X, theta)

    def value(self, theta: np.ndarray) -> np.ndarray:
        return self.evaluate(theta, "v")[0]

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.evaluate(theta, "g")[1]

    def mu(self, theta: np.ndarray) -> np.ndarray:
        return self.evaluate(theta, "m")[2]

    def evaluate(self, theta: np.ndarray, need: str = "vgm") -> tuple[np.ndarray | None, ...]:
        """Value, gradient and local PL constant at ``theta`` from one residual computation.

        PL constants ``mu`` (``||grad l||^2 >= 2 mu (l - l*)`` at ``theta``):

        * square, realizable ``Y = X Theta*``: ``mu = lambda_min(X^T X / N)`` (strong convexity).
        * Huber (realizable): all residuals ``|r| <= delta``: the square constant; otherwise,
          with ``R = max |r|``, quadratic growth ``l - l* >= (delta/R) mu/2 ||Theta - Theta*||^2``
          and convexity give ``mu (delta / R) / 4``.
        * logistic: strong convexity on the segment [Theta, Theta*]: ``mu * min sigma'(z)`` over
          the segment, ``|z| <= max(|z(Theta)|, |z(Theta*)|)`` entrywise.
        """
        z = self.residual(theta)
        n = self.X.shape[0]
        value = grad = mu = None
        if self.kind == "square":
            d = z - self.Y
            if "v" in need:
                value = 0.5 * np.einsum("bnm,bnm->b", d, d) / n
            if "m" in need:
                mu = np.full(theta.shape[0], self.mu_global)
        elif self.kind == "huber":
            d = z - self.Y
            a = np.abs(d)
            if "v" in need:
                h = np.where(a <= self.delta, 0.5 * a**2, self.delta * (a - 0.5 * self.delta))
                value = h.sum(axis=(1, 2)) / n
            if "m" in need:
                big = a.max(axis=(1, 2))
                far = self.mu_global * self.delta / (4 * np.maximum(big, 1e-300))
                mu = np.where(big <= self.delta, self.mu_global, far)
            if "g" in need:
                d = np.clip(d, -self.delta, self.delta)
        else:
            yz = self.Y * z
            if "v" in need:
                value = np.logaddexp(0.0, -yz).sum(axis=(1, 2)) / n
            if "g" in need:
                d = -self.Y * _sigmoid(-yz)
            if "m" in need:
                edge = np.maximum(np.abs(z), self.z_star_abs).max(axis=(1, 2))
                p = _sigmoid(edge)
                mu = self.mu_global * p * (1 - p)
        if "g" in need:
            grad = np.matmul(self.X.T, d) / n
        return value, grad, mu

    def curvature(self, theta: np.ndarray) -> np.ndarray:
        """Entrywise weights ``w (B, N, m)`` of the Hessian of ``l`` at ``theta``:
        ``grad^2 l(Theta)[Delta] = X^T (w * X Delta) / N`` (square: 1; Huber: 1 where
        ``|r| <= delta``, else 0; logistic: ``sigma'(y z) = sigma(yz) sigma(-yz)`` as ``y^2 = 1``)."""
        z = self.residual(theta)
        if self.kind == "square":
            return np.ones_like(z)
        if self.kind == "huber":
            return (np.abs(z - self.Y) <= self.delta).astype(float)
        p = _sigmoid(self.Y * z)
        return p * (1 - p)

    @cached_property
    def z_star_abs(self) -> np.ndarray:
        return np.abs(self.X @ self.theta_star)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


def make_loss(kind: str, X: np.ndarray, theta_true: np.ndarray, rng: np.random.Generator,
              delta: float = 1.0, label_noise: float = 1.0) -> Loss:
    """Square / Huber on ``Y = X Theta_true`` (realizable, ``l* = 0``); logistic on labels
    ``Y = sign(X Theta_true / ||col|| + label_noise * eps)`` (not separable; ``Theta*`` by Newton)."""
    n = X.shape[0]
    eig = np.linalg.eigvalsh(X.T @ X / n)
    mu, lmax = float(eig[0]), float(eig[-1])
    if kind in ("square", "huber"):
        Y = X @ theta_true
        return Loss(kind, X, Y, theta_true.copy(), 0.0, lmax, mu, delta)
    if kind != "logistic":
        raise ValueError(f"unknown loss {kind!r}")
    scores = X @ (theta_true / np.linalg.norm(theta_true, axis=0))
    Y = np.where(scores + label_noise * rng.standard_normal(scores.shape) >= 0, 1.0, -1.0)
    theta_star = logistic_minimiser(X, Y)
    loss = Loss(kind, X, Y, theta_star, 0.0, lmax / 4, mu, delta)
    return Loss(kind, X, Y, theta_star, float(loss.value(theta_star[None])[0]), lmax / 4, mu, delta)


def logistic_minimiser(X: np.ndarray, Y: np.ndarray, iters: int = 100) -> np.ndarray:
    """Newton's method, one column (binary task) at a time; fails loudly on separable data."""
    n, d = X.shape
    theta = np.zeros((d, Y.shape[1]))
    for j in range(Y.shape[1]):
        w = np.zeros(d)
        converged = False
        for _ in range(iters):
            z = Y[:, j] * (X @ w)
            p = _sigmoid(-z)
            g = -X.T @ (Y[:, j] * p) / n
            H = (X * (p * (1 - p))[:, None]).T @ X / n
            step = np.linalg.solve(H, g)
            w -= step
            if not np.all(np.isfinite(w)) or np.abs(w).max() > 1e3:
                break
            if np.abs(step).max() < 1e-13 * (1 + np.abs(w).max()):
                converged = True
                break
        if not converged:
            raise ValueError("logistic data look separable (Newton found no finite minimiser)")
        theta[:, j] = w
    return theta


# --- local constants -------------------------------------------------------------------------


def gram_extremes(W1: np.ndarray, W2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Smallest and largest eigenvalues of ``W1 W1^T`` (D x D) and ``W2^T W2`` (m x m):
    ``sigma_min^2(W1), sigma_max^2(W1), sigma_min^2(W2), sigma_max^2(W2)``, each (B,)."""
    e1 = np.linalg.eigvalsh(W1 @ W1.transpose(0, 2, 1))
    e2 = np.linalg.eigvalsh(W2.transpose(0, 2, 1) @ W2)
    return np.maximum(e1[:, 0], 0.0), e1[:, -1], np.maximum(e2[:, 0], 0.0), e2[:, -1]


def local_smoothness(eta: np.ndarray, s2: np.ndarray, r: np.ndarray, K: float) -> np.ndarray:
    """``K_t(eta) = K s^2 + r + K eta s^2 r + K eta^2 s^2 r^2 / 4`` (our local descent lemma)."""
    return K * s2 + r + K * eta * s2 * r + K * eta**2 * s2 * r**2 / 4


def note_smoothness(s2: np.ndarray, r: np.ndarray, K: float) -> np.ndarray:
    """The note's reconstruction ``K s^2 + sqrt(2 K (L - L*))`` (no eta-dependent terms)."""
    return K * s2 + r


def adaptive_step(s2: np.ndarray, r: np.ndarray, K: float, newton: int = 8) -> np.ndarray:
    """The positive root of ``eta K_t(eta) = 1`` (convex increasing cubic in eta).

    Newton from ``1/(K s^2 + r)`` (where the cubic is >= 0) decreases monotonically to the root;
    the result satisfies ``eta K_t(eta) >= 1`` up to rounding, never far below it.
    """
    a1, a2, a3 = K * s2 + r, K * s2 * r, K * s2 * r**2 / 4
    eta = 1.0 / a1
    for _ in range(newton):
        f = a3 * eta**3 + a2 * eta**2 + a1 * eta - 1.0
        eta = eta - f / (3 * a3 * eta**2 + 2 * a2 * eta + a1)
    return eta


def predicted_factor(eta: np.ndarray, mu_t: np.ndarray, K_t: np.ndarray) -> np.ndarray:
    """``1 - 2 mu_t eta + mu_t K_t eta^2``; NaN where ``eta K_t > 2`` (no guarantee)."""
    rho = 1 - 2 * mu_t * eta + mu_t * K_t * eta**2
    return np.where(eta * K_t <= 2, rho, np.nan)


def state(loss: Loss, W1: np.ndarray, W2: np.ndarray) -> dict[str, np.ndarray]:
    """Loss gap, gradients and the local constants at ``(W1, W2)``."""
    value, G, mu_l = loss.evaluate(W1 @ W2)
    gap = np.maximum(value - loss.l_star, 0.0)
    g1, g2 = G @ W2.transpose(0, 2, 1), W1.transpose(0, 2, 1) @ G
    smin1, smax1, smin2, smax2 = gram_extremes(W1, W2)
    return {
        "gap": gap,
        "g1": g1,
        "g2": g2,
        "gradnorm2": (g1**2).sum(axis=(1, 2)) + (g2**2).sum(axis=(1, 2)),
        "mu_t": mu_l * (smin1 + smin2),
        "s2": smax1 + smax2,
        "r": np.sqrt(2 * loss.K * gap),
    }


# --- gradient descent ---------------------------------------------------------------------------


@dataclass
class Trajectory:
    """Per-step records, shape (B, steps + 1) for gaps, (B, steps) for the rest; NaN once stopped."""

    gap: np.ndarray  # L_t - L*
    eta: np.ndarray
    mu_t: np.ndarray
    K_t: np.ndarray  # the local smoothness the rule's guarantee uses, at eta_t
    rho_pred: np.ndarray  # predicted contraction factor (NaN: no guarantee)
    gradnorm2: np.ndarray  # ||grad L(W_t)||^2 at the iterate the step starts from
    evals: np.ndarray  # loss evaluations per element (Armijo's trials counted)
    diverged: np.ndarray
    seconds: float
    steps_taken: int
    W1: np.ndarray  # the last iterate of each element (where it stopped)
    W2: np.ndarray


def init_weights(rng: np.random.Generator, batch: int, D: int, h: int, m: int, scale: np.ndarray,
                 ratio: np.ndarray, h_pad: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Entries N(0, (scale * ratio)^2 / h) in W1 and N(0, (scale / ratio)^2 / h) in W2;
    ``ratio = 1`` is the equal-scale ("balanced") init, ``ratio != 1`` an imbalanced one.
    Zero-padded to width ``h_pad`` (exact, see module docstring)."""
    h_pad = h_pad or h
    scale, ratio = np.broadcast_to(scale, batch), np.broadcast_to(ratio, batch)
    W1 = np.zeros((batch, D, h_pad))
    W2 = np.zeros((batch, h_pad, m))
    W1[:, :, :h] = rng.standard_normal((batch, D, h)) * (scale * ratio / np.sqrt(h))[:, None, None]
    W2[:, :h, :] = rng.standard_normal((batch, h, m)) * (scale / ratio / np.sqrt(h))[:, None, None]
    return W1, W2


def gradient_descent(loss: Loss, W1: np.ndarray, W2: np.ndarray, rules: list[str],
                     fixed_eta: np.ndarray | None = None, steps: int = 1000, stop: float = 1e-10,
                     armijo_c: float = 0.5, armijo_max_halvings: int = 60) -> Trajectory:
    """Batched GD on ``L(W1, W2) = l(W1 W2)``, one step-size rule per batch element.

    ``rules[b]`` in ``fixed`` (``fixed_eta[b]``), ``adaptive`` (eta K_t(eta) = 1),
    ``adaptive_note`` (1 / (K s^2 + r)) or ``armijo`` (start at twice the last accepted step,
    halve until ``L_new <= L - c eta ||grad L||^2``). An element stops once
    ``L - L* <= stop (L_0 - L*)`` or when it diverges; later records are NaN.
    """
    start = time.perf_counter()
    B = W1.shape[0]
    rules = np.asarray(rules)
    fixed_eta = np.zeros(B) if fixed_eta is None else np.asarray(fixed_eta, dtype=float)
    known = np.isin(rules, ("fixed", "adaptive", "adaptive_note", "armijo"))
    if not known.all():
        raise ValueError(f"unknown rule(s) {sorted(set(rules[~known]))}")
    rec = {k: np.full((steps, B), np.nan) for k in ("eta", "mu_t", "K_t", "rho_pred", "gradnorm2")}
    final1, final2 = W1.copy(), W2.copy()
    gaps = np.full((steps + 1, B), np.nan)
    evals = np.ones(B)
    diverged = np.zeros(B, dtype=bool)
    st = state(loss, W1, W2)
    gap0 = st["gap"].copy()
    gaps[0] = gap0
    last_eta = adaptive_step(st["s2"], st["r"], loss.K)
    idx = np.arange(B)  # active rows; W1, W2, st hold the active rows only
    t = 0
    for t in range(steps):
        if not idx.size:
            break
        rule = rules[idx]
        s2, r, mu_t = st["s2"], st["r"], st["mu_t"]
        eta = np.where(rule == "fixed", fixed_eta[idx], 0.0)
        eta = np.where(rule == "adaptive", adaptive_step(s2, r, loss.K), eta)
        note_K = note_smoothness(s2, r, loss.K)
        eta = np.where(rule == "adaptive_note", 1.0 / note_K, eta)
        arm = np.flatnonzero(rule == "armijo")
        if arm.size:
            eta[arm], n_eval = _armijo(loss, W1[arm], W2[arm], st, arm, 2 * last_eta[idx[arm]],
                                       armijo_c, armijo_max_halvings)
            evals[idx[arm]] += n_eval
            last_eta[idx[arm]] = eta[arm]
        K_t = np.where(rule == "adaptive_note", note_K, local_smoothness(eta, s2, r, loss.K))
        rec["eta"][t, idx], rec["mu_t"][t, idx], rec["K_t"][t, idx] = eta, mu_t, K_t
        rec["rho_pred"][t, idx] = predicted_factor(eta, mu_t, K_t)
        rec["gradnorm2"][t, idx] = st["gradnorm2"]
        W1 = W1 - eta[:, None, None] * st["g1"]
        W2 = W2 - eta[:, None, None] * st["g2"]
        st = state(loss, W1, W2)
        evals[idx[rule != "armijo"]] += 1
        gaps[t + 1, idx] = st["gap"]
        bad = ~np.isfinite(st["gap"]) | (st["gap"] > 1e6 * np.maximum(gap0[idx], 1e-300))
        diverged[idx[bad]] = True
        keep = ~bad & (st["gap"] > stop * gap0[idx])
        if not keep.all():
            final1[idx[~keep]], final2[idx[~keep]] = W1[~keep], W2[~keep]
            idx, W1, W2 = idx[keep], W1[keep], W2[keep]
            st = {k: v[keep] for k, v in st.items()}
    final1[idx], final2[idx] = W1, W2
    rec = {k: np.ascontiguousarray(v.T) for k, v in rec.items()}
    gaps = np.ascontiguousarray(gaps.T)
    return Trajectory(gaps, rec["eta"], rec["mu_t"], rec["K_t"], rec["rho_pred"], rec["gradnorm2"], evals,
                      diverged, time.perf_counter() - start, t + 1, final1, final2)


def _armijo(loss: Loss, W1: np.ndarray, W2: np.ndarray, st: dict, rows: np.ndarray, eta0: np.ndarray,
            c: float, max_halvings: int) -> tuple[np.ndarray, np.ndarray]:
    """Backtracking line search for the weights ``W1, W2`` = rows ``rows`` of the state ``st``."""
    g1, g2 = st["g1"][rows], st["g2"][rows]
    L0 = st["gap"][rows] + loss.l_star
    need = c * st["gradnorm2"][rows]
    eta = eta0.copy()
    todo = np.ones(rows.size, dtype=bool)
    n_eval = np.zeros(rows.size)
    for _ in range(max_halvings):
        idx = np.flatnonzero(todo)
        if not idx.size:
            break
        e = eta[idx][:, None, None]
        trial = loss.value((W1[idx] - e * g1[idx]) @ (W2[idx] - e * g2[idx]))
        n_eval[idx] += 1
        ok = trial <= L0[idx] - eta[idx] * need[idx]
        todo[idx[ok]] = False
        eta[idx[~ok]] *= 0.5
    return eta, n_eval


def admissible_step(pilot_eta: np.ndarray) -> np.ndarray:
    """Admissible constant step ``1 / max_t K_t`` = the smallest adaptive step of a pilot run
    (the adaptive rule from the same initialisation), per batch element."""
    return np.nanmin(pilot_eta, axis=1)


def constant_step_certified(eta: np.ndarray, K_t: np.ndarray, level: float = 1.0, rtol: float = 1e-9) -> np.ndarray:
    """Whether a constant-step run kept ``eta K_t(eta) <= level`` at every step it took, per row.

    ``level = 1``: the guarantee of the adaptive rule (factor ``<= 1 - mu_t eta``) held all along
    the run's *own* trajectory; ``level = 2``: the descent lemma's guarantee of no increase held.
    This certifies a constant step from the bound on its own iterates, independently of any
    other run (issue 27: not from the adaptive trajectory it is compared with).
    """
    ran = np.isfinite(eta)
    with np.errstate(invalid="ignore"):
        over = ran & (eta * K_t > level * (1 + rtol))
    return ran.any(axis=1) & ~over.any(axis=1)


# --- independent measurements of the local constants ---------------------------------------------


def hessian_vector_product(loss: Loss, W1: np.ndarray, W2: np.ndarray, E1: np.ndarray,
                           E2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``grad^2 L(W1, W2) [E1, E2]`` for ``L = l(W1 W2)`` (stacks over a leading axis):
    with ``J = E1 W2 + W1 E2`` and ``H = grad^2 l(W1 W2)[J]``, the product is
    ``(H W2^T + G E2^T, W1^T H + E1^T G)`` (differentiate ``G W2^T`` and ``W1^T G``)."""
    theta = W1 @ W2
    G = loss.grad(theta)
    Z = np.matmul(loss.X, E1 @ W2 + W1 @ E2)
    H = np.matmul(loss.X.T, loss.curvature(theta) * Z) / loss.X.shape[0]
    return H @ W2.transpose(0, 2, 1) + G @ E2.transpose(0, 2, 1), W1.transpose(0, 2, 1) @ H + E1.transpose(0, 2, 1) @ G


def sharpness(loss: Loss, W1: np.ndarray, W2: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of the Hessian of ``L`` at each ``(W1[b], W2[b])``, restricted to the
    real width ``widths[b]`` (padded zero columns would add spurious ``+-sigma(G)`` directions).

    Lanczos (``scipy.sparse.linalg.eigsh``, largest algebraic) on exact Hessian-vector products:
    a measurement of the curvature that does not use the local smoothness bound it checks.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    out = np.empty(W1.shape[0])
    for b, h in enumerate(np.asarray(widths, dtype=int)):
        w1, w2 = W1[b : b + 1, :, :h], W2[b : b + 1, :h, :]
        n1 = w1.size

        def matvec(v: np.ndarray, w1=w1, w2=w2, n1=n1) -> np.ndarray:
            v = np.ravel(v)
            a, c = hessian_vector_product(loss, w1, w2, v[:n1].reshape(w1.shape), v[n1:].reshape(w2.shape))
            return np.concatenate([a.ravel(), c.ravel()])

        n = n1 + w2.size
        op = LinearOperator((n, n), matvec=matvec, dtype=float)
        v0 = np.ones(n) / np.sqrt(n)  # deterministic start
        out[b] = eigsh(op, k=1, which="LA", v0=v0, return_eigenvectors=False, tol=1e-10)[0]
    return out


def pl_violations(gradnorm2: np.ndarray, mu_t: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Steps where the measured ``||grad L(W_t)||^2`` falls below the local PL bound
    ``2 mu_t (L_t - L*)`` beyond rounding (relative 1e-9), per row; ``gap`` is (B, steps + 1)."""
    now = gap[:, : gradnorm2.shape[1]]
    checked = np.isfinite(gradnorm2) & np.isfinite(mu_t) & np.isfinite(now)
    with np.errstate(invalid="ignore"):
        return (checked & (gradnorm2 < 2 * mu_t * now * (1 - 1e-9))).sum(axis=1)


def step_falls_in_tail(eta: np.ndarray, gap: np.ndarray, tail: float = 1e-3, rtol: float = 1e-9) -> np.ndarray:
    """Per row: the number of steps with ``eta_{t+1} < eta_t`` (beyond ``rtol``) once the gap is
    below ``tail (L_0 - L*)``; NaN for a row that never got there (no tail to judge)."""
    in_tail = gap[:, : eta.shape[1]] <= tail * gap[:, :1]
    both = in_tail[:, :-1] & np.isfinite(eta[:, 1:]) & np.isfinite(eta[:, :-1])
    with np.errstate(invalid="ignore"):
        falls = (both & (eta[:, 1:] < eta[:, :-1] * (1 - rtol))).sum(axis=1).astype(float)
    falls[~both.any(axis=1)] = np.nan
    return falls


# --- what prior analyses assume --------------------------------------------------------------------


def prior_assumptions(loss: Loss, W1: np.ndarray, W2: np.ndarray, widths: np.ndarray,
                      balance_tol: float = 0.1) -> dict[str, np.ndarray]:
    """Which assumptions of prior GD analyses of two-layer linear networks an initialisation meets
    (our reading of their abstracts and theorems; constants we lack are set leniently):

    * Arora, Cohen, Golowich & Hu (ICLR 2019): square loss on *whitened* data, an approximately
      balanced init (``W1^T W1 ~ W2 W2^T``; here: relative imbalance
      ``||W1^T W1 - W2 W2^T||_F / (||W1^T W1||_F + ||W2 W2^T||_F) <= balance_tol``, a far laxer
      cut than their delta -> 0) and a deficiency margin: the initial loss below that of every
      rank-deficient solution, ``l(Theta_0) - l* < sigma_min(S Theta*)^2 / 2`` with
      ``S = (X^T X / N)^{1/2}`` (Eckart-Young for ``l = ||S (Theta - Theta*)||^2 / 2``).
    * Du & Hu (ICML 2019): Gaussian init and width ``h >= C r kappa^3 d_y log(r / delta)``;
      we take ``C = 1`` and drop the log: ``h >= r kappa^3 m`` with ``r = rank X``,
      ``kappa = lambda_max / lambda_min(X^T X)``.
    * gradient-flow analyses (infinitesimal steps) and spectral initialisations exclude every
      GD run from a random init; not recorded per run.

    Returns per element: ``imbalance``, ``balanced``, ``margin`` (square loss only, else False),
    ``arora_ok`` (all of Arora's assumptions, whitening included), ``du_hu_ok`` and the width
    ``du_hu_width``.
    """
    A = W1.transpose(0, 2, 1) @ W1
    Bm = W2 @ W2.transpose(0, 2, 1)
    imbalance = np.linalg.norm(A - Bm, axis=(1, 2)) / (np.linalg.norm(A, axis=(1, 2)) + np.linalg.norm(Bm, axis=(1, 2)))
    n = loss.X.shape[0]
    cov = loss.X.T @ loss.X / n
    eig, vec = np.linalg.eigh(cov)
    whitened = bool(np.allclose(cov, np.eye(cov.shape[0]), atol=1e-8))
    if loss.kind == "square":
        S = (vec * np.sqrt(eig)) @ vec.T
        rank_deficient = 0.5 * np.linalg.svd(S @ loss.theta_star, compute_uv=False)[-1] ** 2
        margin = loss.value(W1 @ W2) - loss.l_star < rank_deficient
    else:
        margin = np.zeros(W1.shape[0], dtype=bool)
    rank = int(np.sum(eig > eig[-1] * 1e-12))
    du_hu_width = rank * (eig[-1] / eig[0]) ** 3 * loss.Y.shape[1]
    balanced = imbalance <= balance_tol
    return {
        "imbalance": imbalance,
        "balanced": balanced,
        "margin": margin,
        "arora_ok": balanced & margin & whitened & (loss.kind == "square"),
        "du_hu_ok": (np.asarray(widths) >= du_hu_width) & (loss.kind == "square"),
        "du_hu_width": np.full(W1.shape[0], du_hu_width),
    }


# --- summaries of a trajectory ------------------------------------------------------------------


def iterations_to(gap: np.ndarray, ratio: float) -> np.ndarray:
    """First t with ``gap_t <= ratio * gap_0`` (NaN if never), per row."""
    hit = gap <= ratio * gap[:, :1]
    first = np.argmax(hit, axis=1).astype(float)
    first[~hit.any(axis=1)] = np.nan
    return first


def measured_factor(gap: np.ndarray) -> np.ndarray:
    """``(L_{t+1} - L*) / (L_t - L*)``, shape (B, steps)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return gap[:, 1:] / gap[:, :-1]


def bound_violations(gap: np.ndarray, rho_pred: np.ndarray, loss_scale: float) -> np.ndarray:
    """Steps where ``L_{t+1} - L* > rho_pred (L_t - L*)`` beyond float noise, per row.

    Noise allowance: ``1e-12 (L_t - L*) + 64 eps max(1, |L*|)`` (rounding of the loss values).
    Only steps with a guarantee (finite ``rho_pred``) count.
    """
    now, nxt = gap[:, :-1], gap[:, 1:]
    slack = 1e-12 * now + 64 * np.finfo(float).eps * max(1.0, abs(loss_scale))
    checked = np.isfinite(rho_pred) & np.isfinite(nxt)
    with np.errstate(invalid="ignore"):
        return (checked & (nxt > rho_pred * now + slack)).sum(axis=1)


def tail_fit(gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (log10 gap per step) and R^2 of a least-squares line through ``log10 gap_t`` on the
    tail = the second half of each run's recorded iterates (NaN with fewer than 3 points)."""
    slope, r2 = np.full(gap.shape[0], np.nan), np.full(gap.shape[0], np.nan)
    for i, g in enumerate(gap):
        t = np.flatnonzero(np.isfinite(g) & (g > 0))
        t = t[t >= t.max() / 2] if t.size else t
        if t.size < 3:
            continue
        y = np.log10(g[t])
        A = np.vstack([t, np.ones_like(t)]).T.astype(float)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        resid = y - A @ coef
        ss = ((y - y.mean()) ** 2).sum()
        slope[i], r2[i] = coef[0], 1 - (resid**2).sum() / ss if ss > 0 else 1.0
    return slope, r2
