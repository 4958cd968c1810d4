"""The traffic paper's maths against oracles that do not reuse the code under test.

- aggregators: the closed forms of shared/papers/traffic.md written again row by row in numpy, a
  Sener-Koltun Frank-Wolfe written again, scipy's SLSQP on the simplex;
- training loops: a second, per-model training loop (plain tensors, autograd, torch Adam);
- the PINN residual: central finite differences instead of autograd;
- simulators: exact Riemann solutions of LWR with the Greenshields flux (Godunov flux by the
  min/max formula, the transonic rarefaction fan), IDM by its formula and by scipy root finding,
  the OU and AR(1) noise's parameters estimated back from the generated data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdrepro.papers.traffic import method as M
from gdrepro.papers.traffic import objectives as O
from gdrepro.papers.traffic import simulate as S

torch.set_num_threads(1)

DT, LENGTH = 0.1, 5.0  # the paper's closed-loop step (v += 0.1 a); bumper-to-bumper gaps, 5 m cars
NOMINAL = (30.0, 1.5, 2.0, 0.73, 1.67)  # IDM (v0, T, s0, a, b), shared/papers/traffic.md


def _pairs(n, p=9, seed=0, conflict=1.0):
    g = np.random.default_rng(seed)
    G = g.standard_normal((n, 2, p))
    G[:, 1] -= conflict * G[:, 0]
    G[:, 1] *= g.uniform(0.2, 5.0, (n, 1))  # unequal norms
    return G


# --- aggregators -----------------------------------------------------------------------------------


def _dcgd(gb, gr, method):
    g = gb + gr
    if method == "center":
        u = gb / np.linalg.norm(gb) + gr / np.linalg.norm(gr)
        return (u @ g) / (u @ u) * u
    conflict = g @ gb < 0 or g @ gr < 0
    if not conflict:
        return g
    if method == "proj":
        if g @ gb < 0:
            return gr - (gr @ gb) / (gb @ gb) * gb
        return gb - (gb @ gr) / (gr @ gr) * gr
    return 0.5 * ((1 - (gb @ gr) / (gb @ gb)) * gb + (1 - (gb @ gr) / (gr @ gr)) * gr)


def _min_norm2(g1, g2):
    w = np.clip(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
    return w * g1 + (1 - w) * g2, w


@pytest.mark.parametrize("method", ["proj", "avg", "center"])
def test_dcgd_equals_the_closed_forms_row_by_row(method):
    G = _pairs(400)
    d = M.aggregate(torch.as_tensor(G), f"dcgd_{method}").numpy()
    expect = np.stack([_dcgd(gb, gr, method) for gb, gr in G])
    np.testing.assert_allclose(d, expect, rtol=1e-10, atol=1e-12)
    g = G.sum(1)
    conflict = ((g[:, None, :] * G).sum(-1) < 0).any(-1)
    assert 0.2 < conflict.mean() < 0.9  # both branches exercised


def test_two_task_mgda_equals_the_closed_form_and_hits_both_clips():
    G = np.concatenate([_pairs(200), _pairs(50, conflict=-3.0, seed=1), _pairs(50, conflict=-3.0, seed=2)])
    G[-100:-50, 1] *= 0.01  # a tiny second gradient along the first: w* = 0
    G[-50:, 0] *= 0.01  # a tiny first gradient along the second: w* = 1
    d = M.aggregate(torch.as_tensor(G), "mgda").numpy()
    expect, w = zip(*(_min_norm2(g1, g2) for g1, g2 in G))
    np.testing.assert_allclose(d, np.stack(expect), rtol=1e-10, atol=1e-12)
    w = np.array(w)
    assert (w == 0).any() and (w == 1).any() and ((w > 0.05) & (w < 0.95)).any()
    ww = M.min_norm_weights(torch.as_tensor(G @ G.transpose(0, 2, 1))).numpy()
    np.testing.assert_allclose(ww[:, 0], w, atol=1e-12)
    np.testing.assert_allclose(ww.sum(1), 1.0, atol=1e-14)


def test_mgda_norm_weights_come_from_unit_vectors_and_apply_to_raw_gradients():
    G = _pairs(100)
    H = G / np.linalg.norm(G, axis=-1, keepdims=True)
    expect = np.stack([_min_norm2(h1, h2)[1] * g1 + (1 - _min_norm2(h1, h2)[1]) * g2 for (h1, h2), (g1, g2) in zip(H, G)])
    np.testing.assert_allclose(M.aggregate(torch.as_tensor(G), "mgda_norm").numpy(), expect, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(expect, 0.5 * G.sum(1), rtol=1e-10, atol=1e-12)  # two unit vectors: w* = 1/2


def _simplex_min(K):
    from scipy.optimize import minimize

    m = len(K)
    best = None
    for start in [np.ones(m) / m] + list(np.eye(m)):
        r = minimize(lambda x: x @ K @ x, start, jac=lambda x: 2 * K @ x, bounds=[(0, 1)] * m, method="SLSQP",
                     constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}], options={"ftol": 1e-15, "maxiter": 500})
        if best is None or r.fun < best.fun:
            best = r
    return best.x, best.fun


@pytest.mark.parametrize("m", [3, 4, 6])
def test_active_set_min_norm_matches_scipy_on_the_simplex(m):
    g = np.random.default_rng(m)
    for _ in range(4):
        G = g.standard_normal((m, 12))
        G[1] -= 1.5 * G[0]
        K = G @ G.T
        w = M.min_norm_weights(torch.as_tensor(K)).numpy()
        x, fun = _simplex_min(K)
        assert w.min() >= 0 and abs(w.sum() - 1) < 1e-12
        assert w @ K @ w <= fun * (1 + 1e-7) + 1e-12  # at least as good as SLSQP
        np.testing.assert_allclose(w, x, atol=1e-4)


def test_frank_wolfe_for_many_tasks_is_sener_koltun_algorithm_2():
    """m > 6: 250 iterations of Frank-Wolfe with exact line search from uniform weights."""
    g = np.random.default_rng(0)
    G = g.standard_normal((8, 15))
    G[1] -= 1.5 * G[0]
    K = G @ G.T
    w = np.full(8, 1 / 8)
    for _ in range(250):
        mw = K @ w
        t = int(np.argmin(mw))
        a, b, c = w @ mw, mw[t], K[t, t]
        gamma = np.clip((a - b) / (a - 2 * b + c), 0.0, 1.0)
        w = (1 - gamma) * w
        w[t] += gamma
    ours = M.min_norm_weights(torch.as_tensor(K)).numpy()
    np.testing.assert_allclose(ours, w, rtol=1e-9, atol=1e-12)
    _, fun = _simplex_min(K)
    assert fun <= ours @ K @ ours <= 1.1 * fun  # close to the optimum, from above


def test_ls_aggregator_is_the_weighted_sum():
    G = _pairs(30)
    w = np.random.default_rng(3).uniform(0, 1, (30, 2))
    np.testing.assert_allclose(M.aggregate(torch.as_tensor(G), "ls", torch.as_tensor(w)).numpy(),
                               w[:, :1] * G[:, 0] + w[:, 1:] * G[:, 1], rtol=1e-12)
    d = M.Aggregator("dcgd_avg")(torch.as_tensor(G[0]))
    np.testing.assert_allclose(d.numpy(), _dcgd(G[0, 0], G[0, 1], "avg"), rtol=1e-10)


def test_stacked_directions_per_model_and_diagnostics():
    G3 = np.random.default_rng(5).standard_normal((6, 3, 7))
    G3[:, 2] -= 1.2 * (G3[:, 0] + G3[:, 1])
    two = np.stack([G3[:, 0] + G3[:, 1], G3[:, 2]], 1)
    cfg = [M.Config("ls", (0.2, 0.3, 0.5)), M.Config("dcgd_proj"), M.Config("mgda_norm"),
           M.Config("ls", (1.0, 1.0, 10.0)), M.Config("dcgd_center"), M.Config("dcgd_avg")]
    D, diag = M.stacked_directions(torch.as_tensor(G3, dtype=torch.float32), cfg, torch.as_tensor(two, dtype=torch.float32))
    assert D.dtype == torch.float32
    D = D.double().numpy()
    np.testing.assert_allclose(D[0], G3[0].T @ [0.2, 0.3, 0.5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(D[3], G3[3].T @ [1.0, 1.0, 10.0], rtol=1e-5, atol=1e-5)
    for r, meth in ((1, "proj"), (4, "center"), (5, "avg")):
        np.testing.assert_allclose(D[r], _dcgd(two[r, 0], two[r, 1], meth), rtol=1e-4, atol=1e-5)
    # mgda_norm on three objectives: min-norm weights of the unit vectors, applied to raw gradients
    H = G3[2] / np.linalg.norm(G3[2], axis=-1, keepdims=True)
    x, _ = _simplex_min(H @ H.T)
    np.testing.assert_allclose(D[2], G3[2].T @ x, rtol=1e-3, atol=1e-3)
    cos = [min((D[r] @ two[r, i]) / (np.linalg.norm(D[r]) * np.linalg.norm(two[r, i])) for i in (0, 1)) for r in (1, 4, 5)]
    assert diag["dcgd_min_cos"] == pytest.approx(min(cos), abs=1e-5)
    assert diag["norm_weight_dev"] == 0.0  # mgda_norm here has three objectives: no two-task check
    _, diag2 = M.stacked_directions(torch.as_tensor(two), [M.Config("mgda_norm")] * 6)
    assert diag2["norm_weight_dev"] < 1e-12


# --- stacked models and the training loops -------------------------------------------------------


def test_stacked_mlp_xavier_init_and_forward_per_model():
    net = M.StackedMLP(40, [3, 30, 20, 1], "tanh", torch.Generator().manual_seed(0))
    for w, (fi, fo) in zip(net.weights, ((3, 30), (30, 20), (20, 1))):
        bound = math.sqrt(6.0 / (fi + fo))  # Xavier-uniform: U(-b, b), variance b^2 / 3
        x = w.detach().numpy().ravel()
        assert np.abs(x).max() <= bound and np.abs(x).max() > 0.97 * bound
        assert abs(x.var() / (bound**2 / 3) - 1) < 5 * math.sqrt(0.8 / x.size) + 0.01
    assert all((b == 0).all() for b in net.biases)
    x = torch.randn(40, 11, 3, generator=torch.Generator().manual_seed(1))
    out = net(x).detach().numpy()
    W = [w.detach().numpy() for w in net.weights]
    for r in (0, 17, 39):
        h = np.tanh(x[r].numpy() @ W[0][r])
        h = np.tanh(h @ W[1][r])
        np.testing.assert_allclose(out[r], h @ W[2][r], rtol=1e-5, atol=1e-6)
    sig = M.StackedMLP(2, [3, 4, 1], "sigmoid", torch.Generator().manual_seed(0))
    h = 1 / (1 + np.exp(-(x[0].numpy() @ sig.weights[0][0].detach().numpy())))
    np.testing.assert_allclose(sig(x[:2])[0].detach().numpy(), h @ sig.weights[1][0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_set_gradients_inverts_the_flattening_of_per_model_gradients():
    net = M.StackedMLP(3, [2, 4, 1], "tanh", torch.Generator().manual_seed(0))
    params = list(net.parameters())
    d = torch.arange(3 * sum(p[0].numel() for p in params), dtype=torch.float32).reshape(3, -1)
    M.set_gradients(params, d)
    for r in range(3):
        np.testing.assert_array_equal(torch.cat([p.grad[r].reshape(-1) for p in params]).numpy(), d[r].numpy())


def _mlp(params, x, act):
    """params = [W0, ..., WL, b0, ..., bL] of one model (StackedMLP.parameters() order)."""
    L = len(params) // 2
    for i in range(L):
        x = x @ params[i] + params[L + i]
        if i < L - 1:
            x = act(x)
    return x


def _direction(cfg, rows):
    rows = [r.detach().numpy() for r in rows]
    if cfg.method == "ls":
        return sum(w * r for w, r in zip(cfg.weights, rows))
    if cfg.method == "mgda":
        return _min_norm2(rows[0], rows[1])[0]
    return _dcgd(rows[0], rows[1], cfg.method.split("_")[1])


def _reference_loop(model_params, losses_fn, val_fn, configs, lr, iterations, eval_every=1, two_task=None):
    """A second training loop: per-model tensors, autograd, the numpy aggregators, torch Adam."""
    R = len(configs)
    flat = [p for ps in model_params for p in ps]
    opt = torch.optim.Adam(flat, lr=lr)
    best = [np.inf] * R
    best_it = [0] * R
    stopped = [False] * R
    stop_it = [-1] * R
    snap = [[p.detach().clone() for p in ps] for ps in model_params]
    it = 0
    for it in range(iterations):
        if it % eval_every == 0:
            for r in range(R):
                with torch.no_grad():
                    v = float(val_fn(r, model_params[r]))
                if v < best[r] and not stopped[r]:
                    best[r], best_it[r] = v, it
                    snap[r] = [p.detach().clone() for p in model_params[r]]
                if not stopped[r] and it - best_it[r] >= configs[r].patience:
                    stopped[r], stop_it[r] = True, it
            if all(stopped):
                break
        for r in range(R):
            losses = losses_fn(r, model_params[r])
            rows = []
            for l_ in losses:
                grads = torch.autograd.grad(l_, model_params[r], retain_graph=True, allow_unused=True)
                rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                       for g, p in zip(grads, model_params[r])]))
            if two_task is not None and configs[r].method.startswith("dcgd"):
                rows = two_task(rows)
            d = torch.as_tensor(_direction(configs[r], rows))
            offset = 0
            for p in model_params[r]:
                p.grad = d[offset : offset + p.numel()].reshape(p.shape).to(p.dtype).clone()
                offset += p.numel()
        opt.step()
    stop_it = [s if s >= 0 else it for s in stop_it]
    with torch.no_grad():
        for ps, sn in zip(model_params, snap):
            for p, s in zip(ps, sn):
                p.copy_(s)
    return best, stop_it


def test_train_micro_equals_an_independent_training_loop():
    R, n, n_extra = 4, 30, 10
    g = torch.Generator().manual_seed(0)
    net = M.StackedMLP(R, [3, 6, 1], "sigmoid", g).double()
    x_train = torch.randn(R, n, 3, generator=g, dtype=torch.float64)
    extra = torch.randn(R, n_extra, 3, generator=g, dtype=torch.float64)
    a_train = torch.randn(R, n, generator=g, dtype=torch.float64) * 1.5
    a_idm = a_train.mean() + torch.randn(R, n + n_extra, generator=g, dtype=torch.float64)
    data = M.MicroData(x_train=x_train, a_train=a_train, x_val=torch.randn(R, 12, 3, generator=g, dtype=torch.float64),
                       a_val=torch.randn(R, 12, generator=g, dtype=torch.float64), x_aux=torch.cat([x_train, extra], 1),
                       a_idm_aux=a_idm, mean=torch.zeros(R, 1, 3), std=torch.ones(R, 1, 3), a_scale=1.7)
    configs = [M.Config("ls", (0.3, 0.7), patience=3), M.Config("mgda", patience=4),
               M.Config("dcgd_avg", patience=50), M.Config("dcgd_proj", patience=50)]
    start = [[p[r].detach().clone().requires_grad_(True) for p in net.parameters()] for r in range(R)]
    # the losses, by the paper: L_data = MSE(NN(X_train), a_train), L_phys = MSE(NN(X_aux), IDM(X_aux))
    f = lambda r, ps, x: _mlp(ps, x, torch.sigmoid).squeeze(-1) * 1.7  # noqa: E731  (m/s^2)
    losses = lambda r, ps: [((f(r, ps, x_train[r]) - a_train[r]) ** 2).mean() / 1.7**2,  # noqa: E731
                            ((f(r, ps, data.x_aux[r]) - a_idm[r]) ** 2).mean() / 1.7**2]
    val = lambda r, ps: ((f(r, ps, data.x_val[r]) - data.a_val[r]) ** 2).mean() / 1.7**2  # noqa: E731
    with torch.no_grad():  # the per-model losses first (micro_losses), then 40 iterations of training
        ld, lp = M.micro_losses(net, data)
        for r in range(R):
            np.testing.assert_allclose([float(ld[r]), float(lp[r])], [float(v) for v in losses(r, start[r])], rtol=1e-12)
    best, stop_it = _reference_loop(start, losses, val, configs, 0.05, 40)
    out = M.train_micro(net, data, configs, lr=0.05, iterations=40)
    np.testing.assert_allclose(out["val"], best, rtol=1e-8)
    np.testing.assert_array_equal(out["stop_iter"], stop_it)
    assert min(stop_it) < 39 and max(stop_it) == 39  # some models stopped early, some ran to the end
    for r in range(R):
        lr_ = losses(r, start[r])
        np.testing.assert_allclose([out["l_data"][r], out["l_phys"][r]], [float(v.detach()) for v in lr_], rtol=1e-8)
        for p, q in zip(net.parameters(), start[r]):
            torch.testing.assert_close(p[r].detach(), q.detach(), rtol=1e-8, atol=1e-10)
    assert out["dcgd_min_cos"] >= -1e-9 and out["norm_weight_dev"] == 0.0


def _macro_data(R_gen, n=25, ncol=16):
    g = torch.Generator().manual_seed(R_gen)
    t = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return M.MacroData(x_train=t(n, 2), rho_train=t(n), u_train=t(n), x_val=t(10, 2), rho_val=t(10), u_val=t(10),
                       x_col=t(ncol, 2), rho_mean=60.0, rho_sd=20.0, u_mean=50.0, u_sd=15.0, q_scale=900.0, k=0.7)


def test_macro_pinn_speed_and_residual_by_finite_differences():
    data = _macro_data(0)
    model = M.MacroPINN(3, 2, 6, 1, 5, torch.Generator().manual_seed(1)).double()
    xt = data.x_col.expand(3, -1, -1)
    with torch.no_grad():
        rho_n, q_n, u_n = model(xt, data)
        rho_raw = model.rho_net(xt)
        np.testing.assert_allclose(q_n.numpy(), model.q_net(rho_raw).squeeze(-1).numpy(), rtol=1e-12)
        u = q_n * 900.0 / (rho_n * 20.0 + 60.0 + 1e-6)  # u = Q / (rho + 1e-6), de-normalised
        np.testing.assert_allclose(u_n.numpy(), ((u - 50.0) / 15.0).numpy(), rtol=1e-10, atol=1e-12)
    # residual rho~_t + k Q~_x by central differences of the networks (column 0 = x, column 1 = t)
    h = 1e-5

    def diff(col, which):
        e = torch.zeros(2, dtype=torch.float64)
        e[col] = h
        with torch.no_grad():
            return (model(xt + e, data)[which] - model(xt - e, data)[which]) / (2 * h)

    res = diff(1, 0) + 0.7 * diff(0, 1)
    l_rho, l_u, l_phys = M.macro_losses(model, data)
    np.testing.assert_allclose(l_phys.detach().numpy(), (res**2).mean(-1).numpy(), rtol=1e-6)
    with torch.no_grad():
        r_, _, u_ = model(data.x_train.expand(3, -1, -1), data)
        np.testing.assert_allclose(l_rho.detach().numpy(), ((r_ - data.rho_train) ** 2).mean(-1).numpy(), rtol=1e-12)
        np.testing.assert_allclose(l_u.detach().numpy(), ((u_ - data.u_train) ** 2).mean(-1).numpy(), rtol=1e-12)
    assert (l_phys > 1e-3).all()


def test_train_macro_equals_an_independent_training_loop():
    data = _macro_data(2, n=20, ncol=12)
    configs = [M.Config("ls", (100.0, 100.0, 10.0), patience=30), M.Config("dcgd_proj", patience=30),
               M.Config("dcgd_center", patience=30), M.Config("ls", (1.0, 1.0, 1.0), patience=2)]
    R = len(configs)
    model = M.MacroPINN(R, 1, 5, 1, 4, torch.Generator().manual_seed(3)).double()
    start = [[p[r].detach().clone().requires_grad_(True) for p in model.parameters()] for r in range(R)]
    n_rho = 2 * len(model.rho_net.weights)

    def fwd(ps, xt):
        rho_n = _mlp(ps[:n_rho], xt, torch.tanh)
        q_n = _mlp(ps[n_rho:], rho_n, torch.tanh)
        u = q_n * data.q_scale / (rho_n * data.rho_sd + data.rho_mean + 1e-6)
        return rho_n.squeeze(-1), q_n.squeeze(-1), ((u - data.u_mean) / data.u_sd).squeeze(-1)

    def losses(r, ps):
        rho, _, u = fwd(ps, data.x_train)
        xc = data.x_col.clone().requires_grad_(True)
        rho_c, q_c, _ = fwd(ps, xc)
        d_rho = torch.autograd.grad(rho_c.sum(), xc, create_graph=True)[0]
        d_q = torch.autograd.grad(q_c.sum(), xc, create_graph=True)[0]
        res = d_rho[:, 1] + data.k * d_q[:, 0]
        return [((rho - data.rho_train) ** 2).mean(), ((u - data.u_train) ** 2).mean(), (res**2).mean()]

    def val(r, ps):
        rho, _, u = fwd(ps, data.x_val)
        return ((rho - data.rho_val) ** 2).mean() + ((u - data.u_val) ** 2).mean()

    best, stop_it = _reference_loop(start, losses, val, configs, 0.02, 12, eval_every=3,
                                    two_task=lambda rows: [rows[0] + rows[1], rows[2]])
    out = M.train_macro(model, data, configs, lr=0.02, iterations=12, eval_every=3)
    np.testing.assert_allclose(out["val"], best, rtol=1e-8)
    np.testing.assert_array_equal(out["stop_iter"], stop_it)
    for r in range(R):
        l_ = [float(v.detach()) for v in losses(r, start[r])]
        np.testing.assert_allclose([out["l_data"][r], out["l_phys"][r]], [l_[0] + l_[1], l_[2]], rtol=1e-8)
        for p, q in zip(model.parameters(), start[r]):
            torch.testing.assert_close(p[r].detach(), q.detach(), rtol=1e-8, atol=1e-10)
    # de-normalised predictions
    rho, u = M.macro_predict(model, data, data.x_val)
    for r in range(R):
        rn, _, un = fwd(start[r], data.x_val)
        np.testing.assert_allclose(rho[r], (rn * 20.0 + 60.0).detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(u[r], (un * 15.0 + 50.0).detach().numpy(), rtol=1e-10)


def test_relative_l2_and_pareto_front_by_brute_force():
    p, t = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 1.0]]), np.array([[1.0, 2.0, 4.0], [3.0, 0.0, 4.0]])
    np.testing.assert_allclose(O.relative_l2(p, t), [2 / math.sqrt(21), math.sqrt(18) / 5])
    pts = np.random.default_rng(0).integers(0, 6, (60, 2)).astype(float)
    brute = [not any((q <= x).all() and (q < x).any() for q in pts) for x in pts]
    np.testing.assert_array_equal(O.non_dominated(pts), brute)
    assert 0 < sum(brute) < 60


# --- closed loop -----------------------------------------------------------------------------------


class _Const(torch.nn.Module):
    """A "network" returning a fixed normalised acceleration and recording its inputs."""

    def __init__(self, a):
        super().__init__()
        self.a, self.seen = a, []

    def forward(self, feats):
        self.seen.append(feats.clone())
        return torch.full((*feats.shape[:-1], 1), self.a, dtype=feats.dtype)


def test_closed_loop_is_semi_implicit_euler_with_step_0_1():
    steps, v0, x0, a_n, scale = 50, 10.0, 0.0, 0.3, 2.0
    t = torch.arange(steps, dtype=torch.float64)
    x_lead, v_lead = (1000.0 + 20.0 * DT * t)[None, None], torch.full((1, 1, steps), 20.0, dtype=torch.float64)
    mean, std = torch.tensor([10.0, 1.0, 5.0], dtype=torch.float64), torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64)
    net = _Const(a_n)
    xs, vs = M.closed_loop(net, mean, std, x_lead, v_lead, torch.tensor([[x0]], dtype=torch.float64),
                           torch.tensor([[v0]], dtype=torch.float64), scale)
    k = np.arange(steps)
    a = a_n * scale
    np.testing.assert_allclose(vs[0, 0].numpy(), v0 + DT * a * k, rtol=1e-12)  # v_{k+1} = v_k + 0.1 a
    np.testing.assert_allclose(xs[0, 0].numpy(), x0 + DT * (k * v0 + DT * a * k * (k + 1) / 2), rtol=1e-12)  # x += 0.1 v_{k+1}
    first = net.seen[0][0, 0].numpy()
    np.testing.assert_allclose(first, (np.array([1000.0 - x0 - LENGTH, 20.0 - v0, v0]) - mean.numpy()) / std.numpy())
    # a stopped leader just ahead: the follower never closes below the minimum gap, speeds stay >= 0
    x_lead = torch.full((1, 1, steps), 30.0, dtype=torch.float64)
    xs, vs = M.closed_loop(_Const(5.0), torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), x_lead,
                           0 * x_lead, torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[8.0]], dtype=torch.float64), 1.0)
    np.testing.assert_allclose(xs[0, 0, -1].item(), 30.0 - LENGTH - 0.5)
    xs, vs = M.closed_loop(_Const(-5.0), torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), x_lead,
                           0 * x_lead, torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64), 1.0)
    assert vs.min() == 0.0 and (np.diff(xs[0, 0].numpy()) >= 0).all()


# --- simulators ------------------------------------------------------------------------------------


def _q(r, vf, rm):
    return vf * r * (1 - r / rm)


def _godunov_flux(L, R, vf, rm):
    """Exact Riemann-problem flux at x/t = 0 for a concave flux: min over [L, R] or max over [R, L]."""
    if L <= R:
        return min(_q(L, vf, rm), _q(R, vf, rm))
    return _q(rm / 2, vf, rm) if R < rm / 2 < L else max(_q(L, vf, rm), _q(R, vf, rm))


def test_greenshields_and_bump_by_formula():
    np.testing.assert_allclose(S.greenshields_flux(np.array([0.0, 30.0, 75.0, 150.0]), 100.0, 150.0),
                               [0.0, 2400.0, 3750.0, 0.0])
    x = np.array([1.0, 1.5, 0.5, 4.0])
    np.testing.assert_allclose(S.bump_initial_condition(x, 25.0, 110.0, 1.0, 0.5),
                               [110.0, 25 + 85 * math.exp(-0.5), 25 + 85 * math.exp(-0.5), 25 + 85 * math.exp(-18)])


def test_godunov_step_uses_the_exact_riemann_flux_and_cfl_0_9():
    vf, rm, dx = 100.0, 150.0, 0.01
    rho0 = np.random.default_rng(0).uniform(0, rm, 40)
    t, rho = S.godunov_lwr(rho0, dx, 1e-9, vf, rm)
    dt = 0.9 * dx / vf
    assert len(t) == 2 and t[1] == pytest.approx(dt, rel=1e-12)
    ghost = np.concatenate([rho0[:1], rho0, rho0[-1:]])
    F = np.array([_godunov_flux(ghost[i], ghost[i + 1], vf, rm) for i in range(41)])
    np.testing.assert_allclose(rho[1], rho0 - dt / dx * (F[1:] - F[:-1]), rtol=1e-12, atol=1e-9)
    t, _ = S.godunov_lwr(rho0, dx, 10.5 * dt, vf, rm)
    assert len(t) == 12  # ceil(10.5) steps + the initial state
    batch = np.stack([rho0, rho0[::-1]])  # leading batch axes: each row on its own
    _, rb = S.godunov_lwr(batch, dx, 3 * dt, vf, rm)
    np.testing.assert_allclose(rb[:, 1], S.godunov_lwr(rho0[::-1], dx, 3 * dt, vf, rm)[1], rtol=1e-12)


def test_godunov_converges_to_the_transonic_rarefaction_fan():
    vf, rm, dx, x0, t_end = 100.0, 150.0, 0.0025, 2.0, 0.008
    x = (np.arange(1600) + 0.5) * dx
    rL, rR = 140.0, 10.0
    t, rho = S.godunov_lwr(np.where(x < x0, rL, rR), dx, t_end, vf, rm)
    xi = (x - x0) / (vf * t[-1])  # fan: q'(rho) = vf (1 - 2 rho / rm) = (x - x0) / t
    exact = np.clip(rm / 2 * (1 - xi), rR, rL)
    fan = np.abs(exact - rho[-1]).sum() * dx / (np.abs(exact - rL).sum() * dx)
    assert fan < 0.02
    centre = rho[-1][np.argmin(np.abs(x - x0))]
    assert abs(centre - rm / 2) < 2.0  # the sonic point keeps rho_c = rho_m / 2 (maximal flux)
    # mass: the boundary cells carry q(rL) in and q(rR) out, equal here (q(140) = q(10))
    assert abs((rho[-1].sum() - rho[0].sum()) * dx) < 1e-9 * rho[0].sum() * dx


def _idm(dx, dv, v, p):
    v0, T, s0, a, b = p
    s_star = max(s0, s0 + v * T - v * dv / (2 * math.sqrt(a * b)))
    return a * (1 - (v / v0) ** 4 - (s_star / dx) ** 2)


def test_idm_by_formula_nominal_values_and_equilibrium_gap_by_root_finding():
    from scipy.optimize import brentq

    np.testing.assert_array_equal(S.IDM_NOMINAL, NOMINAL)
    assert S.DT == DT and S.VEHICLE_LENGTH == LENGTH
    # by hand: dx = 20, dv = -2, v = 10: s* = 2 + 15 + 20 / (2 sqrt(0.73 * 1.67)) = 26.0569...
    s_star = 17 + 20 / (2 * math.sqrt(0.73 * 1.67))
    hand = 0.73 * (1 - (10 / 30) ** 4 - (s_star / 20) ** 2)
    assert S.idm_acceleration(np.array(20.0), np.array(-2.0), np.array(10.0), np.array(NOMINAL)) == pytest.approx(hand, rel=1e-12)
    g = np.random.default_rng(0)
    dx, dv, v = g.uniform(1, 80, 300), g.uniform(-6, 12, 300), g.uniform(0, 28, 300)
    p = np.array(NOMINAL) * np.exp(0.2 * g.standard_normal((300, 5)))
    expect = [_idm(*row, pp) for row, pp in zip(zip(dx, dv, v), p)]
    np.testing.assert_allclose(S.idm_acceleration(dx, dv, v, p), expect, rtol=1e-12, atol=1e-12)
    assert sum(s0 + vv * T - vv * d / (2 * math.sqrt(a * b)) < s0 for d, vv, (_, T, s0, a, b) in zip(dv, v, p)) > 20
    torch_out = S.idm_acceleration(torch.as_tensor(dx), torch.as_tensor(dv), torch.as_tensor(v), torch.as_tensor(p))
    np.testing.assert_allclose(torch_out.numpy(), expect, rtol=1e-12, atol=1e-12)
    vs = np.linspace(0.5, 26, 12)
    roots = [brentq(lambda s, vv=vv: _idm(s, 0.0, vv, NOMINAL), 0.1, 1e4, xtol=1e-13) for vv in vs]
    np.testing.assert_allclose(S.equilibrium_gap(vs, np.array(NOMINAL)), roots, rtol=1e-10)


def test_ou_leader_speed_recovers_theta_sigma_and_clips():
    rng = np.random.default_rng(0)
    v = S.ou_leader_speed(rng, 1000, 800, mean=np.full(1000, 15.0))
    assert (v[:, 0] == 15.0).all() and v.min() >= 0 and v.max() <= 30
    prev, nxt = v[:, :-1].ravel(), v[:, 1:].ravel()
    ok = (nxt > 0) & (nxt < 30)
    z, dv = (15.0 - prev[ok]) * DT, (nxt - prev)[ok]  # dv = theta (mean - v) dt + sigma sqrt(dt) N(0, 1)
    theta = (z @ dv) / (z @ z)
    resid = dv - theta * z
    se = resid.std() / math.sqrt(z @ z)
    assert se < 0.003 and abs(theta - 0.08) < 5 * se
    assert abs(resid.std() / math.sqrt(DT) - 1.6) < 5 * 1.6 / math.sqrt(2 * ok.sum())
    clipped = S.ou_leader_speed(np.random.default_rng(1), 200, 400, mean=np.full(200, 28.0), sigma=4.0)
    assert clipped.max() == 30.0


def test_simulated_pairs_follow_their_drivers_idm_plus_ar1_noise():
    pairs = S.simulate_pairs(np.random.default_rng(0), 120, seconds=40.0)
    p = pairs["params"]
    logp = np.log(p / np.array(NOMINAL))
    assert abs(logp.std() - 0.15) < 5 * 0.15 / math.sqrt(2 * logp.size) and abs(logp.mean()) < 5 * 0.15 / math.sqrt(logp.size)
    assert pairs["x_l"].shape == (120, 401)
    # the leader is integrated with x += 0.1 v_{k+1}, the follower starts at its equilibrium gap
    np.testing.assert_allclose(np.diff(pairs["x_l"], axis=1), DT * pairs["v_l"][:, 1:], rtol=1e-9, atol=1e-9)
    v0 = pairs["v_f"][:, 0]
    gap0 = (p[:, 2] + v0 * p[:, 1]) / np.sqrt(1 - (v0 / p[:, 0]) ** 4)
    np.testing.assert_allclose(pairs["x_l"][:, 0] - pairs["x_f"][:, 0] - LENGTH, gap0, rtol=1e-12)
    np.testing.assert_allclose(v0, pairs["v_l"][:, 0])
    # the noise: realised acceleration - the driver's IDM, where no clip or floor acted
    dx = np.maximum(pairs["x_l"] - pairs["x_f"] - LENGTH, 0.5)[:, :-1]
    dv = (pairs["v_l"] - pairs["v_f"])[:, :-1]
    vf = pairs["v_f"][:, :-1]
    idm = np.array([[_idm(dx[i, k], dv[i, k], vf[i, k], p[i]) for k in range(dx.shape[1])] for i in range(len(p))])
    a = np.diff(pairs["v_f"], axis=1) / DT
    np.testing.assert_allclose(pairs["a_f"][:, :-1], a, rtol=1e-12)
    eps = a - idm
    ok = (pairs["v_f"][:, 1:] > 0) & (a > -9 + 1e-9) & (a < 4 - 1e-9)
    assert ok.mean() > 0.9
    sd = eps[ok].std()
    both = ok[:, 1:] & ok[:, :-1]
    rho = np.corrcoef(eps[:, 1:][both], eps[:, :-1][both])[0, 1]
    # AR(1), sd 0.3, correlation 0.9 per step: effective sample ~ N (1 - rho^2) / (1 + rho^2)
    n_eff = ok.sum() * 0.19 / 1.81
    assert abs(sd - 0.3) < 5 * 0.3 / math.sqrt(2 * n_eff)
    assert abs(rho - 0.9) < 5 * math.sqrt((1 - 0.81) / both.sum()) * 3
