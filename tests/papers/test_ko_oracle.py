"""KO against oracles written here from the formula in the paper notes (never from method.py's helpers):

- soft collision: a double loop over particle pairs, g~_i = g_i - gamma / Z sum_{j != i} K_ij g_j with
  K_ij = cos(w_i, w_j) cos(g_i, g_j) and Z = 1 (sum), N - 1 (mean) or the number of partners with
  K_ij > 1 - gamma (thresh); plus a 3-row example worked out by hand;
- hard collision: a per-pair loop of the DSMC rule on the same random stream (permutation, then one
  Gaussian direction per pair);
- the optimizer: torch's own SGD / Adam stepped with the oracle's collided gradient;
- condensation: mean |cos| over ordered pairs i != j, by loops in numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gdrepro.papers.ko import method as M
from gdrepro.papers.ko import models

torch.set_num_threads(1)


# --- oracles ----------------------------------------------------------------------------------------


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def soft_oracle(w, g, gamma: float, normalize: str) -> torch.Tensor:
    """Pairwise loops of the soft-collision rule (rows = particles, any >= 2-D shape)."""
    shape, dtype = g.shape, g.dtype
    w = w.detach().reshape(w.shape[0], -1).double().numpy()
    g = g.detach().reshape(g.shape[0], -1).double().numpy()
    n = len(w)
    out = g.copy()
    for i in range(n):
        acc, partners = np.zeros_like(g[i]), 0
        for j in range(n):
            if j == i:
                continue
            k = _cos(w[i], w[j]) * _cos(g[i], g[j])
            if normalize == "thresh" and not k > 1 - gamma:
                continue
            acc += k * g[j]
            partners += k != 0
        z = {"sum": 1, "mean": n - 1, "thresh": max(partners, 1)}[normalize]
        out[i] = g[i] - gamma * acc / z
    return torch.as_tensor(out).to(dtype).reshape(shape)


def hard_oracle(w, g, gamma: float, seed: int) -> torch.Tensor:
    """DSMC rule pair by pair: random disjoint pairs (one permutation), score
    |v_r| / max_pairs |v_r| * exp(-|x_r|) > 1 - gamma collides; g_i, g_j <- v_cm +- |v_r|/2 u."""
    gen = torch.Generator().manual_seed(seed)
    n, d = g.shape
    perm = torch.randperm(n, generator=gen).tolist()
    dirs = torch.randn((n // 2, d), generator=gen, dtype=g.dtype).double().numpy()
    wn, gn = w.double().numpy(), g.double().numpy()
    pairs = [(perm[2 * p], perm[2 * p + 1]) for p in range(n // 2)]
    speeds = [np.linalg.norm(gn[i] - gn[j]) for i, j in pairs]
    out = gn.copy()
    hits = 0
    for p, (i, j) in enumerate(pairs):
        score = speeds[p] / max(speeds) * math.exp(-np.linalg.norm(wn[i] - wn[j]))
        if score > 1 - gamma:
            hits += 1
            u = dirs[p] / np.linalg.norm(dirs[p])
            v_cm = (gn[i] + gn[j]) / 2
            out[i], out[j] = v_cm + speeds[p] / 2 * u, v_cm - speeds[p] / 2 * u
    return torch.as_tensor(out).to(g.dtype), hits


# --- soft collision ---------------------------------------------------------------------------------


def test_three_rows_worked_by_hand():
    """w = [e1, e1, e2], g = [e1, e1 + e2, e2]: only K_01 = 1 * cos(45 deg) = 1/sqrt(2) is nonzero."""
    w = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    k = 1 / math.sqrt(2)
    # mean, gamma 1: Z = N - 1 = 2
    expect = torch.tensor([[1 - k / 2, -k / 2], [1 - k / 2, 1.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(M.soft_collision(w, g, 1.0, "mean"), expect, rtol=0, atol=1e-14)
    # sum, gamma 0.3: Z = 1
    expect = torch.tensor([[1 - 0.3 * k, -0.3 * k], [1 - 0.3 * k, 1.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(M.soft_collision(w, g, 0.3, "sum"), expect, rtol=0, atol=1e-14)
    # thresh, gamma 0.5: K_01 = 0.707 > 0.5 collides with one partner; row 2 has none
    expect = torch.tensor([[1 - 0.5 * k, -0.5 * k], [1 - 0.5 * k, 1.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(M.soft_collision(w, g, 0.5, "thresh"), expect, rtol=0, atol=1e-14)
    # thresh, gamma 0.25: 1 - gamma = 0.75 > K_01: nobody collides
    torch.testing.assert_close(M.soft_collision(w, g, 0.25, "thresh"), g, rtol=0, atol=0)
    torch.testing.assert_close(M.collision_kernel(w, g),
                               torch.tensor([[0, k, 0], [k, 0, 0], [0, 0, 0]], dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("normalize", M.NORMALIZE)
@pytest.mark.parametrize("n", [2, 3, 5])
def test_soft_collision_equals_the_pairwise_loop(normalize, n):
    gen = torch.Generator().manual_seed(10 + n)
    for gamma in (0.3, 0.8, 1.5):
        # correlated rows so that kernels are large and of both signs (thresh: some pairs in, some out)
        base = torch.randn(1, 4, generator=gen, dtype=torch.float64)
        w = base + 0.6 * torch.randn(n, 4, generator=gen, dtype=torch.float64)
        g = base * torch.randn(n, 1, generator=gen, dtype=torch.float64) + 0.5 * torch.randn(n, 4, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(M.soft_collision(w, g, gamma, normalize), soft_oracle(w, g, gamma, normalize),
                                   rtol=1e-12, atol=1e-12)


def test_thresh_mixes_colliding_and_free_pairs_like_the_loop():
    """Six rows in two tight clusters and one loner: partners differ from row to row."""
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    w = torch.stack([a, a, a, b, b, torch.randn(6, generator=gen, dtype=torch.float64)])
    w = w + 0.05 * torch.randn(6, 6, generator=gen, dtype=torch.float64)
    g = w + 0.3 * torch.randn(6, 6, generator=gen, dtype=torch.float64)
    kernel = M.collision_kernel(w, g)
    assert ((kernel > 0.5).sum(1) >= 1).any() and ((kernel > 0.5).sum(1) == 0).any() and (kernel > 0.5).sum(1).max() >= 2
    torch.testing.assert_close(M.soft_collision(w, g, 0.5, "thresh"), soft_oracle(w, g, 0.5, "thresh"), rtol=1e-12, atol=1e-12)


# --- hard collision ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 9])
def test_hard_collision_equals_the_per_pair_dsmc_loop(n):
    gen = torch.Generator().manual_seed(n)
    w = 0.2 * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    partial = 0
    for seed, gamma in [(0, 0.5), (1, 0.6), (2, 0.7), (3, 0.8)]:
        expect, hits = hard_oracle(w, g, gamma, seed)
        got = M.hard_collision(w, g, gamma, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(got, expect, rtol=1e-12, atol=1e-12)
        assert hits > 0  # informative cases: some pairs collide ...
        partial += hits < n // 2  # ... and mostly not all of them
    assert partial >= 2


def test_hard_collision_score_uses_the_distance_between_positions():
    """Two pairs of equal relative speed: the close pair (|x_r| = 0.1, score e^-0.1 = 0.905) collides at
    gamma 0.2 (threshold 0.8), the far pair (|x_r| = 0.5, score 0.607) does not; at gamma 0.45 both do."""
    w = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.5, 0.0]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    for seed in range(8):
        perm = torch.randperm(4, generator=torch.Generator().manual_seed(seed)).tolist()
        if {frozenset(perm[:2]), frozenset(perm[2:])} != {frozenset({0, 1}), frozenset({2, 3})}:
            continue
        out = M.hard_collision(w, g, 0.2, torch.Generator().manual_seed(seed))
        assert not torch.equal(out[:2], g[:2]) and torch.equal(out[2:], g[2:])
        torch.testing.assert_close(out[:2].sum(0), g[:2].sum(0))
        torch.testing.assert_close((out[0] - out[1]).norm(), torch.tensor(2.0, dtype=torch.float64))
        out = M.hard_collision(w, g, 0.45, torch.Generator().manual_seed(seed))
        assert not torch.equal(out[2:], g[2:])
        torch.testing.assert_close(out[2:].sum(0), g[2:].sum(0))
        torch.testing.assert_close((out[2] - out[3]).norm(), torch.tensor(2.0, dtype=torch.float64))
        return
    pytest.fail("no seed paired (0, 1) and (2, 3)")


def test_hard_collision_directions_are_uniform_on_the_sphere():
    """Rows alternate e1 and 0 at one position: a mixed pair (|v_r| = 1, |x_r| = 0) collides at gamma 1
    and leaves with g = e1/2 +- u/2, u uniform on the unit sphere: |u| = 1 and E[u u^T] = I / 3."""
    n, d = 4000, 3
    w = torch.zeros(n, d, dtype=torch.float64)
    g = torch.zeros(n, d, dtype=torch.float64)
    g[0::2, 0] = 1.0
    out = M.hard_collision(w, g, 1.0, torch.Generator().manual_seed(0))
    moved = (out - g).norm(dim=1) > 0
    assert 1500 < int(moved.sum()) < 2500  # about half the pairs are mixed
    u = 2 * (out[moved] - torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(u.norm(dim=1), torch.ones(len(u), dtype=torch.float64))
    torch.testing.assert_close(out.sum(0), g.sum(0))  # momentum of every pair kept
    # entries of u u^T have sd <= 0.3; ~1000 independent pairs (u and -u give the same outer product)
    cov = (u.T @ u / len(u)).numpy()
    np.testing.assert_allclose(cov, np.eye(d) / d, atol=6 * 0.3 / math.sqrt(len(u) / 2))


# --- the optimizer ----------------------------------------------------------------------------------


def _loss(net, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    return F.cross_entropy(net(x), y)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


@pytest.mark.parametrize("base,kwargs,normalize,gamma", [
    ("sgd", {"lr": 0.1}, "mean", 0.7),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2}, "sum", 0.4),
    ("adam", {"lr": 1e-2}, "thresh", 0.6),
    ("adamw", {"lr": 1e-2, "weight_decay": 0.1}, "mean", 1.0),
])
def test_ko_step_is_the_torch_base_step_on_the_oracle_gradient(base, kwargs, normalize, gamma):
    net, ref = _net(), _net()
    opt = M.KO(net.parameters(), base=base, coll_coef=gamma, normalize=normalize, **kwargs)
    ref_opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[base](ref.parameters(), **kwargs)
    for step in range(4):
        opt.zero_grad()
        _loss(net, step).backward()
        opt.step()
        ref_opt.zero_grad()
        _loss(ref, step).backward()
        with torch.no_grad():
            for p in ref.parameters():
                if p.dim() >= 2:
                    p.grad.copy_(soft_oracle(p, p.grad, gamma, normalize))
        ref_opt.step()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_plain_sgd_step_by_hand_and_the_documented_defaults():
    """KO(params, lr) with no other argument: soft collision, gamma 0.5, mean over N - 1 partners;
    one plain SGD step is theta - lr g~ (biases: theta - lr g)."""
    lin = torch.nn.Linear(3, 3, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
        lin.bias.zero_()
    lin.weight.grad = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    lin.bias.grad = torch.tensor([1.0, 2.0, 3.0])
    opt = M.KO(lin.parameters(), lr=0.1)
    opt.step()
    k = 1 / math.sqrt(2)  # only rows 0 and 1 have K != 0 (row 2's weight is orthogonal)
    g_new = torch.tensor([[1 - 0.5 * k / 2, -0.5 * k / 2, 0.0], [1 - 0.5 * k / 2, 1.0, 0.0], [0.0, 1.0, 0.0]])
    w0 = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(lin.weight.detach(), w0 - 0.1 * g_new)
    torch.testing.assert_close(lin.bias.detach(), -0.1 * torch.tensor([1.0, 2.0, 3.0]))
    group = opt.param_groups[0]
    assert (group["coll_coef"], group["mode"], group["normalize"]) == (0.5, "soft", "mean")


@pytest.mark.parametrize("normalize", M.NORMALIZE)
def test_ko_collides_rows_conv_kernels_and_embeddings_like_the_oracle_and_leaves_biases(normalize):
    torch.manual_seed(1)
    conv, conv1, lin, emb = torch.nn.Conv2d(3, 8, 3), torch.nn.Conv1d(2, 4, 3), torch.nn.Linear(5, 4), torch.nn.Embedding(5, 3)
    params = [*conv.parameters(), *conv1.parameters(), *lin.parameters(), emb.weight]
    grads = [torch.randn_like(p) for p in params]
    for p, gr in zip(params, grads, strict=True):
        p.grad = gr.clone()
    M.KO(params, coll_coef=0.9, normalize=normalize, lr=0.1).collide_gradients()
    for p, gr in zip(params, grads, strict=True):
        if p.dim() >= 2:
            torch.testing.assert_close(p.grad, soft_oracle(p, gr, 0.9, normalize), rtol=1e-5, atol=1e-6)
            assert not torch.allclose(p.grad, gr)
        else:
            assert torch.equal(p.grad, gr)


def test_ko_hard_mode_consumes_its_seeded_stream_layer_by_layer():
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Linear(6, 4))
    torch.manual_seed(0)
    grads = [torch.randn_like(p) for p in net.parameters()]
    with torch.no_grad():
        net[0].weight.mul_(0.3)
        net[1].weight.mul_(0.3)
    for p, gr in zip(net.parameters(), grads, strict=True):
        p.grad = gr.clone()
    M.KO(net.parameters(), coll_coef=0.6, mode="hard", seed=11, lr=0.1).collide_gradients()
    # one generator seeded 11, used by layer 0 then layer 2: replay the stream
    gen = torch.Generator().manual_seed(11)
    expected = []
    for p, gr in ((net[0].weight, grads[0]), (net[1].weight, grads[2])):
        n, d = gr.shape
        perm = torch.randperm(n, generator=gen).tolist()
        dirs = torch.randn((n // 2, d), generator=gen).double()
        pairs = [(perm[2 * q], perm[2 * q + 1]) for q in range(n // 2)]
        gd, wd = gr.double(), p.detach().double()
        speeds = torch.stack([(gd[i] - gd[j]).norm() for i, j in pairs])
        out = gd.clone()
        for q, (i, j) in enumerate(pairs):
            if speeds[q] / speeds.max() * torch.exp(-(wd[i] - wd[j]).norm()) > 0.4:
                u = dirs[q] / dirs[q].norm()
                out[i], out[j] = (gd[i] + gd[j]) / 2 + speeds[q] / 2 * u, (gd[i] + gd[j]) / 2 - speeds[q] / 2 * u
        expected.append(out.float())
    torch.testing.assert_close(net[0].weight.grad, expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net[1].weight.grad, expected[1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(net[0].weight.grad, grads[0]) or not torch.equal(net[1].weight.grad, grads[2])
    assert torch.equal(net[0].bias.grad, grads[1])


# --- condensation metric ----------------------------------------------------------------------------


def test_weight_correlation_equals_the_numpy_pair_loop():
    gen = torch.Generator().manual_seed(2)
    conv = torch.nn.Conv1d(3, 5, 2)
    lin = torch.nn.Linear(4, 6)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(5, 3, 2, generator=gen) + 0.5)
        lin.weight.copy_(torch.randn(6, 4, generator=gen) - 0.3)
    model = torch.nn.Sequential(conv, torch.nn.Flatten(), lin)

    def oracle(w):
        w = w.detach().reshape(w.shape[0], -1).double().numpy()
        vals = [abs(_cos(w[i], w[j])) for i in range(len(w)) for j in range(len(w)) if i != j]
        return float(np.mean(vals))

    a, b = oracle(conv.weight), oracle(lin.weight)
    assert M.weight_correlation(conv.weight) == pytest.approx(a, rel=1e-6)
    assert M.weight_correlation(lin.weight) == pytest.approx(b, rel=1e-6)
    assert M.layer_correlations(model) == pytest.approx([a, b], rel=1e-6)
    assert M.model_weight_correlation(model) == pytest.approx((a + b) / 2, rel=1e-6)


def test_models_have_the_documented_sizes():
    """Notes: MLP 40-128-128-10; CNN with 16 and 32 channels, kernel 5."""
    shapes = [tuple(p.shape) for p in models.mlp().parameters()]
    assert shapes == [(128, 40), (128,), (128, 128), (128,), (10, 128), (10,)]
    cnn = models.CNN1d()
    assert cnn.conv1.weight.shape == (16, 1, 5) and cnn.conv2.weight.shape == (32, 16, 5) and cnn.head.in_features == 32 * 20
    bag = models.BagOfEmbeddings(50, 4, dim=6, hidden=7)
    tokens = torch.tensor([[3, 4, 0, 0], [5, 0, 0, 0]])
    with torch.no_grad():
        pooled = torch.stack([(bag.embed.weight[3] + bag.embed.weight[4]) / 2, bag.embed.weight[5]])
        expect = bag.out(torch.relu(bag.fc(pooled)))
    torch.testing.assert_close(bag(tokens), expect)
