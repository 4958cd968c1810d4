"""Grokking library code against independent oracles: hand-computed modular rows and closed-form
label counts, the paper's hyperparameters written out, the models' forward pass and loss in numpy,
Adam written out in float64 numpy, Hessian blocks from torch.autograd.functional.hessian, SVD / FFT
by numpy, the samplers' distributions against their formulas (many draws, > 5 standard errors of
margin), and the stacked trainer against a plain training loop with torch.optim.Adam.

No helper of ``method.py`` builds an expected value here."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gdrepro.papers.grokking import method as M
from gdrepro.papers.grokking import trainer as T
from gdrepro.papers.grokking.experiment import SETTINGS
from gdrepro.runtime import torch_generator

torch.set_num_threads(1)


# --- hyperparameters (paper / note) ---------------------------------------------------------------


def test_defaults_are_the_papers_setup():
    d = SETTINGS["default"]
    assert (d.p, d.d, d.hidden, d.batch, d.lr, d.weight_decay, d.decoupled) == (97, 128, 512, 512, 0.01, 1e-3, False)
    assert d.cs == (1.0, 10.0) and d.skew == 10.0
    sig = inspect.signature(T.train_runs).parameters
    assert {k: sig[k].default for k in ("lr", "weight_decay", "batch", "d", "hidden", "train_target",
                                        "test_target", "decoupled")} == {
        "lr": 0.01, "weight_decay": 1e-3, "batch": 512, "d": 128, "hidden": 512, "train_target": 0.99,
        "test_target": 0.95, "decoupled": False}
    sp = inspect.signature(M.split).parameters
    assert (sp["test_fraction"].default, sp["train_fraction"].default, sp["skew"].default) == (0.2, 0.3, 10.0)
    adam = inspect.signature(M.StackedAdam).parameters
    assert (adam["betas"].default, adam["eps"].default) == ((0.9, 0.999), 1e-8)  # torch.optim.Adam's
    assert inspect.signature(M.numerical_rank).parameters["rtol"].default == 1e-2
    m = M.EmbeddingMLP(97)
    assert tuple(m.embed.weight.shape) == (99, 128)
    assert tuple(m.fc1.weight.shape) == (512, 512) and tuple(m.fc2.weight.shape) == (97, 512)
    n = M.NoEmbeddingMLP(97)
    assert tuple(n.fc1.weight.shape) == (512, 4) and tuple(n.fc2.weight.shape) == (97, 512)
    assert n.input_scale == pytest.approx(1 / 97, rel=1e-15)


# --- data -------------------------------------------------------------------------------------------


def test_hand_computed_rows_mod_5():
    """(a, b) = (3, 4) mod 5: add 2, mul 2, div 3 * 4^-1 = 3 * 4 = 2, sq 9 + 16 = 0; (2, 3): 0, 1, 4, 3."""
    p = 5
    cases = {"add": {(3, 4): 2, (2, 3): 0, (0, 0): 0}, "mul": {(3, 4): 2, (2, 3): 1, (4, 4): 1},
             "div": {(3, 4): 2, (2, 3): 4, (1, 2): 3}, "sq": {(3, 4): 0, (2, 3): 3, (1, 1): 2}}
    for op, rows in cases.items():
        x, y = M.modular_dataset(op, p)
        for (a, b), label in rows.items():
            i = a * (p - 1) + (b - 1) if op == "div" else a * p + b  # rows ordered by (a, b)
            assert x[i].tolist() == [a, 5, b, 6] and int(y[i]) == label, (op, a, b)


@pytest.mark.parametrize("p", [23, 29])  # 23 = 3 mod 4, 29 = 1 mod 4
def test_label_counts_have_the_closed_form(p):
    cnt = {op: np.bincount(M.modular_dataset(op, p)[1].numpy(), minlength=p) for op in M.OPERATIONS}
    assert (cnt["add"] == p).all()
    assert cnt["mul"][0] == 2 * p - 1 and (cnt["mul"][1:] == p - 1).all()
    assert (cnt["div"] == p - 1).all()  # b != 0: a/b = c has one a per b
    # a^2 + b^2 = c: p = 1 mod 4: N(0) = 2p - 1, N(c) = p - 1; p = 3 mod 4: N(0) = 1, N(c) = p + 1
    if p % 4 == 1:
        assert cnt["sq"][0] == 2 * p - 1 and (cnt["sq"][1:] == p - 1).all()
    else:
        assert cnt["sq"][0] == 1 and (cnt["sq"][1:] == p + 1).all()


def test_token_frequency_closed_form_on_the_full_table():
    p = 23
    x, _ = M.modular_dataset("add", p)
    f = M.token_frequency(x, p + 2).numpy()
    assert (f[:p] == 2 * p - 1).all() and f[p] == p * p and f[p + 1] == p * p  # rows with a = t or b = t


def test_token_weights_are_exponential_in_a_random_rank():
    w = M.token_weights(97, 10.0, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(np.sort(w)[::-1], np.exp(-10.0 * np.arange(97) / 97), rtol=1e-12)
    assert not np.all(np.diff(w) <= 0)  # a random rank, not the token order


def test_split_default_skew_is_ten():
    x, _ = M.modular_dataset("add", 97)
    a = M.split(x, 97, "skewed", torch.Generator().manual_seed(3))
    b = M.split(x, 97, "skewed", torch.Generator().manual_seed(3), test_fraction=0.2, train_fraction=0.3, skew=10.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_skewed_split_draws_rows_proportional_to_w_a_w_b():
    """One training row (train_fraction 1/49 of p = 7): Gumbel top-1 is a categorical draw with
    P(a, b) = w_a w_b / sum over the pool. Statistic: the drawn rank sum r_a + r_b minus its exact
    expectation, summed over 800 draws and standardised; |z| < 5 for the correct sampler."""
    p, draws = 7, 800
    x, _ = M.modular_dataset("add", p)
    a_all, b_all = x[:, 0].numpy(), x[:, 2].numpy()
    dev, var = 0.0, 0.0
    for i in range(draws):
        g = torch.Generator().manual_seed(10_000 + i)
        clone = torch.Generator()
        clone.set_state(g.get_state())
        rank = torch.randperm(p, generator=clone).numpy().astype(float)  # the token ranks of this draw
        tr, te = M.split(x, p, "skewed", torch.Generator().manual_seed(i), train_fraction=1 / 49, skew=3.0,
                         train_generator=g)
        pool = np.setdiff1d(np.arange(p * p), te.numpy())
        q = np.exp(-3.0 * (rank[a_all[pool]] + rank[b_all[pool]]) / p)
        q /= q.sum()
        f = rank[a_all[pool]] + rank[b_all[pool]]
        mean = float(q @ f)
        var += float(q @ (f - mean) ** 2)
        (row,) = tr.numpy()
        assert row in pool
        dev += rank[a_all[row]] + rank[b_all[row]] - mean
    assert abs(dev / math.sqrt(var)) < 5


def test_uniform_split_gives_the_extra_rows_to_random_values_of_a():
    """p = 11: 121 rows, 24 test, 36 train = 3 per value of a + 3 extra rows. Over 400 splits every
    value of a should get an extra row equally often (3/11); a fixed assignment would give it
    to the same 3 values every time."""
    p, n_splits = 11, 400
    x, _ = M.modular_dataset("add", p)
    extra = np.zeros(p)
    for i in range(n_splits):
        tr, _ = M.split(x, p, "uniform", torch.Generator().manual_seed(i))
        counts = np.bincount(x[tr, 0].numpy(), minlength=p)
        assert len(tr) == 36 and counts.min() == 3 and counts.max() == 4
        extra += counts == 4
    q = 3 / p
    se = math.sqrt(n_splits * q * (1 - q))
    assert np.all(np.abs(extra - n_splits * q) < 5 * se), extra


# --- models and loss --------------------------------------------------------------------------------


def _np_forward_embedding(e, w1, b1, w2, b2, x):
    h = np.concatenate([e[x[:, k]] for k in range(4)], axis=1)
    return np.maximum(h @ w1.T + b1, 0) @ w2.T + b2


def test_module_forwards_match_numpy():
    torch.manual_seed(0)
    p = 23
    x, _ = M.modular_dataset("mul", p)
    xb = x[torch.randperm(len(x))[:50]]
    m = M.EmbeddingMLP(p, 8, 16)
    par = [t.detach().double().numpy() for t in (m.embed.weight, m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias)]
    np.testing.assert_allclose(m(xb).detach().double().numpy(), _np_forward_embedding(*par, xb.numpy()),
                               rtol=1e-5, atol=1e-5)
    n = M.NoEmbeddingMLP(p, 16)
    w1, b1, w2, b2 = (t.detach().double().numpy() for t in (n.fc1.weight, n.fc1.bias, n.fc2.weight, n.fc2.bias))
    ref = np.maximum((xb.numpy() / p) @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(n(xb).detach().double().numpy(), ref, rtol=1e-5, atol=1e-5)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("embedding", [True, False])
def test_stacked_forward_and_loss_match_numpy(embedding):
    g = torch.Generator().manual_seed(1)
    p, s, n = 23, 3, 40
    params = M.init_stack(s, p, embedding, g, d=8, hidden=16)
    params = {k: v.double() for k, v in params.items()}
    x, y = M.modular_dataset("add", p)
    idx = torch.randint(0, len(x), (s, n), generator=g)
    xb, yb = x[idx], y[idx]
    logits = M.stacked_forward(params, xb, 1.0 / p).numpy()
    loss = float(M.stacked_loss(params, xb, yb, 1.0 / p))
    total = 0.0
    for i in range(s):
        q = {k: v[i].numpy() for k, v in params.items()}
        xi = xb[i].numpy()
        h = np.concatenate([q["E"][xi[:, k]] for k in range(4)], axis=1) if embedding else xi / p
        ref = np.maximum(h @ q["W"] + q["b"], 0) @ q["V"] + q["c"]
        np.testing.assert_allclose(logits[i], ref, rtol=1e-12, atol=1e-12)
        total += -_log_softmax(ref)[np.arange(n), yb[i].numpy()].mean()
    assert loss == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("embedding", [True, False])
def test_init_stack_has_pytorch_default_distributions(embedding):
    p, d, hidden, s = 97, 128, 512, 2
    params = M.init_stack(s, p, embedding, torch.Generator().manual_seed(0), d, hidden)
    n_in = 4 * d if embedding else 4
    fan_in = {"W": n_in, "b": n_in, "V": hidden, "c": hidden}  # nn.Linear: U(+-1/sqrt(in_features))
    bounds = {k: 1 / math.sqrt(f) for k, f in fan_in.items()}
    shapes = {"W": (s, n_in, hidden), "b": (s, hidden), "V": (s, hidden, p), "c": (s, p)}
    for k, bound in bounds.items():
        t = params[k].double()
        assert tuple(t.shape) == shapes[k]
        assert float(t.abs().max()) <= bound and float(t.abs().max()) > 0.97 * bound
        # U(-B, B): mean 0, sd B / sqrt(3); relative s.e. of the sample sd = sqrt((kurtosis - 1) / 4n), kurtosis 9/5
        assert abs(float(t.std()) * math.sqrt(3) / bound - 1) < 5 * math.sqrt(0.8 / (4 * t.numel()))
        assert abs(float(t.mean())) < 5 * bound / math.sqrt(3 * t.numel())
    if embedding:
        e = params["E"].double()
        assert tuple(e.shape) == (s, p + 2, d)
        assert abs(float(e.std()) - 1) < 0.02 and abs(float(e.mean())) < 5 / math.sqrt(e.numel())
    else:
        assert "E" not in params


# --- optimiser ----------------------------------------------------------------------------------


def _numpy_adam(p0, grads, lr, wd, decoupled, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("decoupled", [False, True])
def test_stacked_adam_equals_adam_written_out(decoupled):
    """Two stacked models, per-model and per-block rates; gradients of order 1e-8 make eps matter."""
    rng = np.random.default_rng(0)
    p0 = {"E": rng.standard_normal((2, 5, 3)), "W": rng.standard_normal((2, 4))}
    lr = {"E": np.array([0.01, 0.1]), "W": np.array([0.01, 0.01])}
    steps = 12
    grads = [{k: rng.standard_normal(v.shape) * 10.0 ** rng.integers(-9, 1, v.shape) for k, v in p0.items()}
             for _ in range(steps)]
    params = {k: torch.tensor(v) for k, v in p0.items()}
    opt = M.StackedAdam(params, {k: torch.tensor(v) for k, v in lr.items()}, weight_decay=0.05, decoupled=decoupled)
    for g in grads:
        opt.step({k: torch.tensor(v) for k, v in g.items()})
    for k in p0:
        for i in range(2):
            ref = _numpy_adam(p0[k][i], [g[k][i] for g in grads], lr[k][i], 0.05, decoupled)
            np.testing.assert_allclose(opt.params[k][i].numpy(), ref, rtol=1e-11, atol=1e-13)


def test_adam_lr_param_groups_scale_only_the_embedding():
    m = M.EmbeddingMLP(23, 8, 16)
    groups = M.embedding_lr_param_groups(m, 10.0, lr=0.003, weight_decay=0.1)
    emb = [g for g in groups if any(p is m.embed.weight for p in g["params"])]
    rest = [g for g in groups if g not in emb]
    assert len(emb) == 1 and len(emb[0]["params"]) == 1 and emb[0]["lr"] == pytest.approx(0.03, rel=1e-15)
    assert {id(p) for g in rest for p in g["params"]} == {id(p) for n, p in m.named_parameters() if n != "embed.weight"}
    assert all(g["lr"] == 0.003 and g["weight_decay"] == 0.1 for g in rest) and emb[0]["weight_decay"] == 0.1


# --- Adam-LR ratio ------------------------------------------------------------------------------


def test_adaptive_c_is_the_ratio_of_top_singular_values_times_f_w_over_f_e():
    rng = np.random.default_rng(2)
    e, w = rng.standard_normal((3, 25, 8)), rng.standard_normal((3, 32, 16)) * 0.1
    c = M.adaptive_c(torch.tensor(e), torch.tensor(w), 0.25, 0.5).numpy()
    ref = [np.linalg.svd(e[i], compute_uv=False)[0] / np.linalg.svd(w[i], compute_uv=False)[0] * 0.5 / 0.25
           for i in range(3)]
    np.testing.assert_allclose(c, ref, rtol=1e-10)


def test_adaptive_embedding_lr_recomputes_c_every_k_steps():
    torch.manual_seed(0)
    model = M.EmbeddingMLP(23, 8, 16)
    opt = torch.optim.SGD(M.embedding_lr_param_groups(model, 1.0, lr=0.01), lr=0.01)

    def ratio():
        return (np.linalg.svd(model.embed.weight.detach().numpy(), compute_uv=False)[0]
                / np.linalg.svd(model.fc1.weight.detach().numpy(), compute_uv=False)[0] * 0.5 / 0.25)

    sched = M.AdaptiveEmbeddingLR(opt, model, lr=0.01, every=3, f_e=0.25, f_w=0.5)
    c0 = ratio()
    assert sched.c == pytest.approx(c0, rel=1e-6) and opt.param_groups[0]["lr"] == pytest.approx(0.01 * c0, rel=1e-6)
    with torch.no_grad():
        model.embed.weight.mul_(2.0)
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * c0, rel=1e-6)  # not yet
    sched.step()
    assert sched.c == pytest.approx(2 * c0, rel=1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02 * c0, rel=1e-6)
    assert opt.param_groups[1]["lr"] == 0.01


def test_embedding_update_frequency_closed_form_and_monte_carlo():
    freq = torch.tensor([1, 5, 20, 80])
    f = float(M.embedding_update_frequency(freq, 200, 16))
    ref = np.mean([1 - (1 - k / 200) ** 16 for k in (1, 5, 20, 80)])
    assert f == pytest.approx(ref, rel=1e-12)
    # Monte Carlo: batches of 16 rows with replacement from 200 rows, token k in the first freq[k] rows
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 200, (20_000, 16))
    mc = np.mean([(rows < k).any(1).mean() for k in (1, 5, 20, 80)])
    assert abs(mc - ref) < 5 * 0.5 / math.sqrt(20_000 * 4)


# --- frequency-balanced sampler (ours) ----------------------------------------------------------


def test_balanced_sampler_probabilities_are_its_formula():
    """With running counts n_t set by hand, row (a, b) has probability proportional to
    ((nbar+1)/(n_a+1))^tau ((nbar+1)/(n_b+1))^tau, nbar the mean count over present tokens."""
    p = 7
    x = torch.tensor([[0, p, 1, p + 1], [1, p, 2, p + 1], [2, p, 2, p + 1], [3, p, 0, p + 1], [4, p, 4, p + 1],
                      [1, p, 3, p + 1]])
    tau, n = 2.0, 400_000
    sampler = M.FrequencyBalancedSampler(x.unsqueeze(0), p, tau, torch.Generator().manual_seed(0))
    counts = np.array([0.0, 3, 1, 8, 2, 50, 50])  # tokens 5, 6 are absent from the rows
    sampler.counts[0] = torch.tensor(counts)
    present = np.array([1, 1, 1, 1, 1, 0, 0.0])
    nbar = (counts * present).sum() / present.sum()
    r = ((nbar + 1) / (counts + 1)) ** tau
    w = np.array([r[a] * r[b] for a, b in x[:, [0, 2]].tolist()])
    q = w / w.sum()
    idx = sampler.sample(n)[0].numpy()
    emp = np.bincount(idx, minlength=len(x)) / n
    se = np.sqrt(q * (1 - q) / n)
    assert np.all(np.abs(emp - q) < 5 * se), (emp, q)
    # counts: each drawn row adds one to a and one to b
    after = sampler.counts[0].numpy()
    expect = counts + np.bincount(x[idx, 0].numpy(), minlength=p) + np.bincount(x[idx, 2].numpy(), minlength=p)
    np.testing.assert_array_equal(after, expect)


# --- diagnostics ----------------------------------------------------------------------------------


def test_power_iteration_matches_autograd_hessian_of_a_tiny_stacked_model():
    g = torch.Generator().manual_seed(4)
    p, d, hidden, s = 5, 3, 6, 2
    params = {k: v.double() * (3.0 if k == "E" else 2.0) for k, v in M.init_stack(s, p, True, g, d, hidden).items()}
    x, y = M.modular_dataset("add", p)
    xb, yb = x.expand(s, -1, -1), y.expand(s, -1)
    got = M.top_hessian_eigenvalues(lambda q: M.stacked_loss(q, xb, yb), params, ("E", "W"), iters=60,
                                    generator=torch.Generator().manual_seed(0))
    for block in ("E", "W"):
        for i in range(s):
            def f(flat, block=block, i=i):
                q = {k: v[i:i + 1] for k, v in params.items()}
                q[block] = flat.view_as(params[block][i:i + 1])
                logits = torch.relu(torch.cat([q["E"][0][xb[i, :, k]] for k in range(4)], 1) @ q["W"][0] + q["b"][0])
                return F.cross_entropy(logits @ q["V"][0] + q["c"][0], yb[i])

            h = torch.autograd.functional.hessian(f, params[block][i].flatten().clone())
            ev = np.linalg.eigvalsh(h.numpy())
            top = ev[np.argmax(np.abs(ev))]
            second = np.sort(np.abs(ev))[-2]
            assert second < 0.8 * abs(top)  # a gap: 60 power steps converge to ~0.8^120
            assert float(got[block][i]) == pytest.approx(top, rel=1e-9), (block, i)


def test_numerical_rank_counts_singular_values_above_one_percent():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    v, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    sv = np.array([3.0, 1.0, 0.2, 0.05, 0.031, 0.029, 0.01, 0.001] + [0.0] * 12)
    m = torch.tensor(u[:, :20] @ np.diag(sv) @ v.T)
    assert int(M.numerical_rank(m)) == 5  # > 0.03
    assert int(M.numerical_rank(m, rtol=0.1)) == 2  # > 0.3
    sv2 = np.array([1.0, 0.5, 0.0101, 0.0099] + [0.0] * 16)
    m2 = torch.tensor(u[:, :20] @ np.diag(sv2) @ v.T)
    assert M.numerical_rank(torch.stack([m, m2])).tolist() == [5, 3]  # batched, per-matrix sigma_max


def test_fourier_spectrum_against_numpy_dft():
    p = 23
    t = np.arange(p)
    rng = np.random.default_rng(0)
    e = np.zeros((p + 2, 3))
    e[:p, 0] = np.cos(2 * np.pi * 2 * t / p) + 2 * np.sin(2 * np.pi * 5 * t / p) + 4.0
    e[:p, 1] = 0.5 * np.cos(2 * np.pi * 11 * t / p + 0.3)
    e[:p, 2] = rng.standard_normal(p)
    e[p:] = 100.0  # operator / "=" rows must not enter
    spec = M.fourier_spectrum(torch.tensor(e), p).numpy()
    full = np.abs(np.fft.fft(e[:p] - e[:p].mean(0), axis=0)) ** 2  # (p, 3), all p frequencies
    per_k = full.sum(1)
    ref = np.array([per_k[0]] + [per_k[k] + per_k[p - k] for k in range(1, p // 2 + 1)])
    np.testing.assert_allclose(spec, ref / ref.sum(), rtol=1e-10, atol=1e-14)
    # energies of the pure columns: cos 2 -> 1/2, 2 sin 5 -> 2, 0.5 cos 11 -> 1/8 (per token)
    e2 = e.copy()
    e2[:, 2] = 0.0
    spec2 = M.fourier_spectrum(torch.tensor(e2), p).numpy()
    np.testing.assert_allclose(spec2[[2, 5, 11]], np.array([0.5, 2.0, 0.125]) / 2.625, rtol=1e-10)


def test_embedding_norms_and_effective_embedding_against_numpy():
    rng = np.random.default_rng(5)
    e, w = rng.standard_normal((2, 9, 4)), rng.standard_normal((2, 16, 6))
    np.testing.assert_allclose(M.embedding_norms(torch.tensor(e)).numpy(), np.sqrt((e**2).sum(-1)), rtol=1e-12)
    ew = M.effective_embedding(torch.tensor(e), torch.tensor(w), 7).numpy()
    np.testing.assert_allclose(ew, np.einsum("sti,sih->sth", e[:, :7], w[:, :4]), rtol=1e-12)


# --- the stacked trainer against a plain training loop ------------------------------------------


def _reference_training(op, embedding, tr, te, ds, p, c, gen_for, steps, lr, wd, batch, d, hidden, every,
                        adaptive_every=None):
    """Single-model training with torch.optim.Adam (L2 decay) and param groups E: c lr, rest: lr;
    the same initial draws (E ~ N(0, 1), then U(-1/sqrt(fan_in), .) for W, b, V, c) and batches."""
    g = gen_for("init", int(embedding), op, 0)
    n_in = 4 * d if embedding else 4
    q = {}
    if embedding:
        q["E"] = torch.randn(1, p + 2, d, generator=g)[0]
    for k, shape, fan in (("W", (n_in, hidden), n_in), ("b", (hidden,), n_in), ("V", (hidden, p), hidden),
                          ("c", (p,), hidden)):
        q[k] = ((torch.rand((1, *shape), generator=g) * 2 - 1) / math.sqrt(fan))[0]
    q = {k: v.clone().requires_grad_(True) for k, v in q.items()}

    def forward(xs):
        h = q["E"][xs].flatten(1) if embedding else xs.float() / p
        return torch.relu(h @ q["W"] + q["b"]) @ q["V"] + q["c"]

    def sigma_ratio():
        return float(np.linalg.svd(q["E"].detach().numpy(), compute_uv=False)[0]
                     / np.linalg.svd(q["W"].detach().numpy(), compute_uv=False)[0])

    x, y = ds[op]
    xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    rest = [q[k] for k in ("W", "b", "V", "c")]
    groups = [{"params": rest, "lr": lr}]
    if embedding:
        groups.append({"params": [q["E"]], "lr": (sigma_ratio() if c == "adaptive" else c) * lr})
    opt = torch.optim.Adam(groups, lr=lr, weight_decay=wd, foreach=False)
    bg = gen_for("batches", int(embedding), op, 0)
    curve = {"train_loss": [], "train_acc": [], "test_acc": [], "test_loss": []}
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                for xs, ys, name in ((xtr, ytr, "train"), (xte, yte, "test")):
                    logits = forward(xs)
                    curve[f"{name}_loss"].append(float(F.cross_entropy(logits, ys)))
                    curve[f"{name}_acc"].append(float((logits.argmax(1) == ys).float().mean()))
        if step == steps:
            break
        if c == "adaptive" and adaptive_every and step % adaptive_every == 0:
            opt.param_groups[1]["lr"] = sigma_ratio() * lr
        idx = torch.randint(0, len(tr), (batch,), generator=bg)
        opt.zero_grad()
        F.cross_entropy(forward(xtr[idx]), ytr[idx]).backward()
        opt.step()
    norms = q["E"].detach().norm(dim=1).numpy() if embedding else None
    return curve, norms


@pytest.mark.parametrize("embedding,c,adaptive_every", [(True, 10.0, 10), (True, "adaptive", 10), (True, "adaptive", 0),
                                                      (False, 1.0, 10)])
def test_stacked_trainer_equals_a_plain_adam_training_loop(embedding, c, adaptive_every):
    """adaptive_every=0 keeps the c_t of the initialisation for the whole run. Targets 0.07 / 0.05
    are crossed at different eval steps by the train and the test curve of this tiny run."""
    p, steps, every = 23, 20, 5
    ds = {"add": M.modular_dataset("add", p)}
    tr, te = M.split(ds["add"][0], p, "random", torch.Generator().manual_seed(0))
    gen_for = lambda *k: torch_generator("oracle", *map(str, k))  # noqa: E731
    kw = dict(lr=0.02, wd=0.05, batch=32, d=8, hidden=16)
    targets = {"step_train": 0.07, "step_test": 0.05}
    out = T.train_runs([T.Run("r", "add", embedding, tr, te, c, cap=steps)], ds, p, gen_for, lr=kw["lr"],
                       weight_decay=kw["wd"], batch=kw["batch"], d=kw["d"], hidden=kw["hidden"], eval_every=every,
                       margin=1000, adaptive_every=adaptive_every, train_target=targets["step_train"],
                       test_target=targets["step_test"])["r"]
    curve, norms = _reference_training("add", embedding, tr, te, ds, p, c, gen_for, steps, every=every,
                                       adaptive_every=adaptive_every, **kw)
    np.testing.assert_array_equal(out["steps"], np.arange(0, steps + 1, every))
    for k in curve:
        np.testing.assert_allclose(out[k], curve[k], rtol=2e-5, atol=2e-6, err_msg=k)
    assert len(set(np.round(curve["train_loss"], 6))) == len(curve["train_loss"])  # it did train
    for key, target in targets.items():
        acc = np.array(curve[key.replace("step_", "") + "_acc"])
        hit = np.nonzero(acc >= target)[0]
        expect = hit[0] * every if len(hit) else np.nan
        np.testing.assert_equal(float(out[key]), float(expect))
    assert not np.isnan(out["step_train"])  # the threshold logic is exercised
    assert float(out["stop"]) == steps
    if embedding:
        np.testing.assert_allclose(out["norms"], norms, rtol=2e-5)
