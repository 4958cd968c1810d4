"""Properties of the traffic aggregators, stacked models, simulators and loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdrepro.errors import GdreproError
from gdrepro.papers.traffic import data as D
from gdrepro.papers.traffic import method as M
from gdrepro.papers.traffic import objectives as O
from gdrepro.papers.traffic import simulate as S


def _pairs(n: int, p: int = 12, conflict: bool = True, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(n, 2, p, generator=g, dtype=torch.float64)
    if conflict:
        G[:, 1] -= 2.0 * G[:, 0]  # mostly conflicting pairs
    return G


@pytest.mark.parametrize("m", [2, 3, 4])
def test_min_norm_matches_torchjd_mgda(m):
    A = pytest.importorskip("torchjd.aggregation")
    g = torch.Generator().manual_seed(m)
    for _ in range(5):
        G = torch.randn(m, 30, generator=g, dtype=torch.float64)
        G[1] -= 1.5 * G[0]
        ours = M.aggregate(G, "mgda")
        theirs = A.MGDA(epsilon=1e-12, max_iters=5000)(G)
        torch.testing.assert_close(ours, theirs, atol=1e-3 * G.norm(), rtol=0)
        assert ours.norm() <= theirs.norm() + 1e-9  # ours is the exact min-norm point


def test_min_norm_point_is_optimal_over_the_simplex():
    G = _pairs(200)
    d = M.aggregate(G, "mgda")
    for t in np.linspace(0, 1, 21):  # no convex combination is shorter
        other = t * G[:, 0] + (1 - t) * G[:, 1]
        assert (d.norm(dim=-1) <= other.norm(dim=-1) + 1e-10).all()


def test_normalised_two_task_mgda_is_ls_with_weights_one_half():
    G = _pairs(500, conflict=False)
    H = G / G.norm(dim=-1, keepdim=True)
    w = M.min_norm_weights(H @ H.transpose(-1, -2))
    torch.testing.assert_close(w, torch.full_like(w, 0.5), atol=1e-12, rtol=0)
    ls = M.aggregate(G, "ls", torch.full((500, 2), 0.5, dtype=torch.float64))
    torch.testing.assert_close(M.aggregate(G, "mgda_norm"), ls, atol=1e-12, rtol=0)
    # with three objectives the normalised weights are not uniform
    G3 = torch.randn(50, 3, 8, dtype=torch.float64)
    H3 = G3 / G3.norm(dim=-1, keepdim=True)
    assert (M.min_norm_weights(H3 @ H3.transpose(-1, -2)) - 1 / 3).abs().max() > 0.1


@pytest.mark.parametrize("method", ["dcgd_proj", "dcgd_avg", "dcgd_center"])
def test_dcgd_direction_lies_in_the_dual_cone(method):
    G = _pairs(2000)
    d = M.aggregate(G, method)
    inner = (d.unsqueeze(1) * G).sum(-1) / (d.norm(dim=-1, keepdim=True) * G.norm(dim=-1) + 1e-30)
    assert inner.min() >= -1e-12
    assert (d.norm(dim=-1) > 0).all()


@pytest.mark.parametrize("method", ["dcgd_proj", "dcgd_avg"])
def test_dcgd_keeps_the_sum_when_there_is_no_conflict(method):
    G = _pairs(300, conflict=False)
    g = G.sum(1)
    inside = ((g.unsqueeze(1) * G).sum(-1) >= 0).all(-1)
    assert inside.any()
    torch.testing.assert_close(M.aggregate(G, method)[inside], g[inside])


def test_dcgd_proj_is_the_euclidean_projection_onto_the_dual_cone():
    """KKT: d in the cone, g - d = -(l_b g_b + l_r g_r) with l >= 0, and (g - d).d = 0."""
    G = _pairs(300)
    g, d = G.sum(1), M.aggregate(G, "dcgd_proj")
    lam = torch.linalg.lstsq(G.transpose(-1, -2), (d - g).unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close(torch.einsum("nk,nkp->np", lam, G), d - g, atol=1e-9, rtol=0)
    assert lam.min() >= -1e-9
    assert ((g - d) * d).sum(-1).abs().max() < 1e-8


def test_dcgd_proj_is_twice_torchjd_dualproj():
    pytest.importorskip("qpsolvers")
    A = pytest.importorskip("torchjd.aggregation")
    for G in _pairs(10):  # DualProj projects the mean (g/2); its QP regularises the Gramian (~0.2% here)
        ours, theirs = M.aggregate(G, "dcgd_proj"), 2 * A.DualProj()(G)
        assert (ours - theirs).norm() <= 1e-2 * ours.norm()


def test_aggregator_on_a_plain_torch_model_matches_summed_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(50, 3)
    losses = lambda: [model(x).pow(2).mean(), (model(x) - 1).abs().mean()]  # noqa: E731
    sum(w * loss for w, loss in zip((0.3, 0.7), losses())).backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    G = M.Aggregator("ls", (0.3, 0.7)).backward(losses(), model.parameters())
    assert G.shape == (2, sum(p.numel() for p in model.parameters()))
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, e)
    with pytest.raises(ValueError, match="unknown aggregator"):
        M.Aggregator("pcgrad")


def test_stacked_models_are_independent_and_give_per_model_gradients():
    net = M.StackedMLP(3, [3, 7, 1], "sigmoid", torch.Generator().manual_seed(0))
    x = torch.randn(3, 20, 3)
    loss = net(x).squeeze(-1).pow(2).mean(-1)  # (3,)
    G = M.per_model_gradients([loss, loss * 2], list(net.parameters()))
    for r in range(3):
        params = [p[r].detach().clone().requires_grad_(True) for p in net.parameters()]
        h = torch.sigmoid(x[r] @ params[0] + params[2])
        out = (h @ params[1] + params[3]).squeeze(-1).pow(2).mean()
        grads = torch.autograd.grad(out, params)
        flat = torch.cat([g.reshape(-1) for g in grads])  # parameters(): weights, then biases
        torch.testing.assert_close(G[r, 0], flat)
        torch.testing.assert_close(G[r, 1], 2 * flat)


def test_early_stopping_keeps_each_models_best_iterate():
    p = torch.nn.Parameter(torch.zeros(2, 1))
    stop = M.EarlyStopping([p], patience=[2, 5])
    vals = [[3.0, 3.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
    for it, v in enumerate(vals):
        with torch.no_grad():
            p.fill_(float(it))
        stop.update(it, torch.tensor(v, dtype=torch.float64))
    with torch.no_grad():
        p.fill_(9.0)  # the stack keeps stepping stopped models
    stop.to_last()
    assert p[:, 0].tolist() == [3.0, 9.0]  # model 0 stopped at iteration 3; model 1 never stopped
    stop.restore(len(vals) - 1)
    assert p[:, 0].tolist() == [1.0, 2.0]
    assert stop.stop_iter.tolist() == [3, 5]


def test_non_dominated():
    pts = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [1, 5], [6, 6]])
    assert O.non_dominated(pts).tolist() == [True, True, True, False, True, False]


# --- simulators --------------------------------------------------------------------------------


def test_godunov_shock_moves_at_the_rankine_hugoniot_speed_and_keeps_bounds():
    vf, rm, dx = 100.0, 150.0, 0.005
    x = (np.arange(800) + 0.5) * dx
    rho0 = np.where(x < 2.0, 20.0, 100.0)
    t, rho = S.godunov_lwr(rho0, dx, 0.02, vf, rm)
    speed = vf * (1 - (20.0 + 100.0) / rm)  # (q(R) - q(L)) / (R - L) = 20 km/h
    front = x[np.argmax(rho[-1] > 60.0)]
    assert abs(front - (2.0 + speed * t[-1])) < 3 * dx
    assert rho.min() >= 20.0 - 1e-9 and rho.max() <= 100.0 + 1e-9
    # conservation: the mass changes only by the boundary fluxes q(20) in and q(100) out
    q = lambda r: vf * r * (1 - r / rm)  # noqa: E731
    np.testing.assert_allclose((rho[-1].sum() - rho0.sum()) * dx, t[-1] * (q(20.0) - q(100.0)), rtol=1e-9)


def test_idm_is_at_rest_in_equilibrium_and_gaps_stay_positive():
    v = np.linspace(1, 25, 10)
    gap = S.equilibrium_gap(v, S.IDM_NOMINAL)
    np.testing.assert_allclose(S.idm_acceleration(gap, 0 * v, v, S.IDM_NOMINAL), 0, atol=1e-9)
    pairs = S.simulate_pairs(np.random.default_rng(1), 30)
    dx = pairs["x_l"] - pairs["x_f"] - S.VEHICLE_LENGTH
    assert dx.min() >= 0.5 - 1e-9 and pairs["v_f"].min() >= 0 and pairs["v_l"].max() <= 30


def test_idm_calibration_recovers_homogeneous_noise_free_drivers():
    pairs = S.simulate_pairs(np.random.default_rng(2), 20, heterogeneity=0.0, noise=0.0)
    X, a = S.pair_rows(pairs)
    keep = (pairs["v_f"].reshape(-1) > 0.5) & (np.abs(a) < 3.9)  # drop clipped / standing rows
    fit = M.calibrate_idm(X[keep], a[keep], S.IDM_NOMINAL * 1.3)
    pred = S.idm_acceleration(X[keep, 0], X[keep, 1], X[keep, 2], fit)
    assert np.sqrt(np.mean((pred - a[keep]) ** 2)) < 0.02


def test_closed_loop_with_the_true_model_reproduces_the_follower():
    pairs = S.simulate_pairs(np.random.default_rng(3), 4, heterogeneity=0.0, noise=0.0)

    class IDMNet(torch.nn.Module):  # a "network" that is IDM itself, in normalised units
        def forward(self, feats):
            f = feats.double()
            return S.idm_acceleration(f[..., 0], f[..., 1], f[..., 2], torch.tensor(S.IDM_NOMINAL)).unsqueeze(-1)

    t = lambda a: torch.as_tensor(a[None], dtype=torch.float64)  # noqa: E731
    xs, vs = M.closed_loop(IDMNet(), torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                           t(pairs["x_l"]), t(pairs["v_l"]), t(pairs["x_f"][:, 0]), t(pairs["v_f"][:, 0]), 1.0)
    np.testing.assert_allclose(vs[0].numpy(), pairs["v_f"], atol=1e-6)
    np.testing.assert_allclose(xs[0].numpy(), pairs["x_f"], atol=1e-6)


# --- loaders -------------------------------------------------------------------------------------


def test_ngsim_loader_reads_pairs_written_in_the_ngsim_format(tmp_path):
    pairs = S.simulate_pairs(np.random.default_rng(4), 3, seconds=20.0)
    D.write_ngsim_csv(tmp_path / "ngsim.csv", pairs)
    loaded = D.load_ngsim_pairs(tmp_path / "ngsim.csv", min_steps=100)
    assert loaded["x_f"].shape == (3 * 2, 100)  # 201 frames -> two windows of 100 per pair
    X0, _ = S.pair_rows({k: v[:, :200] for k, v in pairs.items() if k != "params"})
    X1, _ = S.pair_rows(loaded)
    np.testing.assert_allclose(X1, X0, atol=1e-6)


def test_loop_loader_roundtrip_and_errors(tmp_path, monkeypatch):
    obs = {"x": np.repeat([0.5, 1.5], 3), "t": np.tile([0.0, 1 / 12, 2 / 12], 2),
           "rho": np.array([20.0, 30, 40, 50, 60, 70]), "u": np.array([90.0, 80, 70, 60, 50, 40])}
    D.write_loop_csv(tmp_path / "loop.csv", obs)
    back = D.load_loop_detectors(tmp_path / "loop.csv")
    for k in obs:
        np.testing.assert_allclose(back[k], obs[k])
    with pytest.raises(GdreproError, match="missing"):
        D.load_loop_detectors(tmp_path / "absent.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(GdreproError, match="lacks column"):
        D.load_ngsim_pairs(tmp_path / "bad.csv")
    monkeypatch.delenv("GDREPRO_TRAFFIC_DATA", raising=False)
    with pytest.raises(GdreproError, match="GDREPRO_TRAFFIC_DATA"):
        D.data_root("")


def test_official_lwr_data_loads_with_density_flow_over_speed_and_checks_its_md5(tmp_path):
    obs = D.load_lwr_npz()
    assert {k: v["x"].size for k, v in obs.items()} == {"train": 42681, "val": 14227, "test": 14228}
    with np.load(D.LWR_NPZ) as z:
        np.testing.assert_allclose(obs["test"]["rho"] * obs["test"]["u"], z["Y_test"][:, 0], rtol=1e-12)
        np.testing.assert_allclose(obs["val"]["t"] * 60.0, z["X_validate"][:, 1], rtol=1e-12)
    assert np.unique(obs["train"]["x"]).size == 19 and (obs["train"]["u"] > 0).all()
    copy = tmp_path / "dataNew.npz"
    raw = bytearray(D.LWR_NPZ.read_bytes())
    raw[-1] ^= 1  # one flipped bit
    copy.write_bytes(bytes(raw))
    with pytest.raises(GdreproError, match="MD5"):
        D.load_lwr_npz(copy)
    with pytest.raises(GdreproError, match="missing"):
        D.load_lwr_npz(tmp_path / "absent.npz")


def test_standin_drivers_react_with_delay_by_helly_and_records_carry_the_stated_noise():
    quiet = dict(heterogeneity=0.0, noise=0.0, helly_share=1.0, delay_s=(0.5, 0.5),
                 position_noise=0.0, speed_noise=0.0, accel_noise=0.0)
    p = S.simulate_standin_pairs(np.random.default_rng(5), 8, seconds=30.0, **quiet)
    assert (p["kind"] == 1).all() and np.allclose(p["delay"], 0.5)
    dx = p["x_l"] - p["x_f"] - S.VEHICLE_LENGTH
    state = np.stack([dx, p["v_l"] - p["v_f"], p["v_f"]])
    lag = 5
    expected = S.helly_acceleration(*state[:, :, :-lag - 1], S.HELLY_NOMINAL)  # a_k from the state at k - 5
    realised = p["a_f"][:, lag:-1]
    free = (np.abs(expected) < 3.9) & (dx[:, lag:-1] > 1.0) & (p["v_f"][:, lag + 1:] > 0)  # no clip, guard or v = 0
    assert free.mean() > 0.9
    np.testing.assert_allclose(realised[free], expected[free], atol=1e-9)
    # measurement noise is drawn last: the same generator state gives the same motion, recorded with noise
    noisy = S.simulate_standin_pairs(np.random.default_rng(5), 8, seconds=30.0,
                                     **quiet | {"position_noise": 0.1, "accel_noise": 0.2})
    assert np.std(noisy["x_f"] - p["x_f"]) == pytest.approx(0.1, rel=0.05)
    assert np.std(noisy["a_f"] - p["a_f"]) == pytest.approx(0.2, rel=0.05)
    np.testing.assert_array_equal(noisy["v_f"], p["v_f"])


def test_conflict_flags_on_known_gradient_pairs():
    G2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],  # orthogonal: no conflict, sum inside the cone
                       [[1.0, 0.0], [-0.3, 1.0]],  # conflict, but the sum stays inside (g.g_r = 0.79)
                       [[1.0, 0.0], [-0.5, 0.1]]])  # conflict and g.g_r = -0.5*0.5 + 0.01 < 0: outside
    conflict, outside = M.conflict_flags(G2)
    assert conflict.tolist() == [False, True, True] and outside.tolist() == [False, False, True]
