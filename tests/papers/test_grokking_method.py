"""Grokking method against properties that must hold: modular arithmetic, split invariants, the
stacked models equal the nn.Module ones, StackedAdam equals torch.optim.Adam/AdamW with the
Adam-LR param groups, power iteration finds known Hessian eigenvalues, Fourier/rank diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch.nn import functional as F

from gdrepro.papers.grokking import method as M

torch.set_num_threads(1)
P = 23


@pytest.mark.parametrize("op", M.OPERATIONS)
def test_datasets_compute_the_operation(op):
    x, y = M.modular_dataset(op, P)
    a, b = x[:, 0], x[:, 2]
    assert (x[:, 1] == P).all() and (x[:, 3] == P + 1).all()
    assert len(x) == (P * (P - 1) if op == "div" else P * P)
    expect = {"add": (a + b) % P, "mul": (a * b) % P, "sq": (a * a + b * b) % P}.get(op)
    if op == "div":
        assert (b != 0).all() and ((y * b) % P == a).all()  # y = a / b  <=>  y b = a (mod P)
    else:
        assert torch.equal(y, expect)


@pytest.mark.parametrize("strategy", M.STRATEGIES)
def test_splits_are_disjoint_sized_and_share_the_test_set(strategy):
    x, _ = M.modular_dataset("add", 97)
    tr, te = M.split(x, 97, strategy, torch.Generator().manual_seed(1), train_generator=torch.Generator().manual_seed(2))
    _, te_random = M.split(x, 97, "random", torch.Generator().manual_seed(1), train_generator=torch.Generator().manual_seed(5))
    assert len(tr) == 2823 and len(te) == 1882  # 30% / 20% of 97^2 (the note's 2822/1881 up to rounding)
    assert len(set(tr.tolist()) | set(te.tolist())) == len(tr) + len(te)
    assert torch.equal(te, te_random)  # one test set for every strategy
    counts = torch.bincount(x[tr, 0], minlength=97)
    if strategy == "uniform":
        assert counts.max() - counts.min() <= 1
    if strategy == "skewed":
        freq = M.token_frequency(x[tr], 99)[:97]
        assert (freq < 5).sum() >= 3 and freq.max() > 100  # heavily skewed at skew 10


def test_skew_zero_is_a_random_split_in_distribution():
    x, _ = M.modular_dataset("add", 97)
    tr, _ = M.split(x, 97, "skewed", torch.Generator().manual_seed(0), skew=0.0)
    freq = M.token_frequency(x[tr], 99)[:97].double()
    assert freq.std() / freq.mean() < 0.2  # binomial-like spread, no rare tokens
    assert freq.min() > 25


def test_token_frequency_counts_rows_containing_a_token():
    x = torch.tensor([[0, 5, 1, 6], [2, 5, 2, 6], [1, 5, 3, 6]])
    f = M.token_frequency(x, 7)
    assert f.tolist() == [1, 2, 1, 1, 0, 3, 3]


@pytest.mark.parametrize("kind", ["embedding", "raw", "onehot", "transformer"])
def test_stacked_forward_equals_the_module_models(kind):
    torch.manual_seed(0)
    make = {"embedding": lambda: M.EmbeddingMLP(P, 8, 16), "raw": lambda: M.NoEmbeddingMLP(P, 16),
            "onehot": lambda: M.NoEmbeddingMLP(P, 16, encoding="onehot"), "transformer": lambda: M.TinyTransformer(P, 8)}
    models = [make[kind]() for _ in range(3)]
    params = M.stack_transformers(models) if kind == "transformer" else M.stack_models(models)
    x, _ = M.modular_dataset("add", P)
    xb = torch.stack([x[torch.randperm(len(x))[:40]] for _ in range(3)])
    out = M.stacked_forward(params, xb, 1.0 / P)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(xb[i]), rtol=1e-5, atol=1e-6)


def test_init_stack_matches_pytorch_default_init_scales():
    params = M.init_stack(2, 97, True, torch.Generator().manual_seed(0))
    assert params["E"].shape == (2, 99, 128) and abs(float(params["E"].std()) - 1) < 0.02
    bound = 1 / np.sqrt(512)
    assert float(params["W"].abs().max()) <= bound and float(params["W"].abs().max()) > 0.99 * bound
    assert params["V"].shape == (2, 512, 97)


@pytest.mark.parametrize("decoupled", [False, True])
def test_stacked_adam_is_torch_adam_with_adam_lr_groups(decoupled):
    """Two stacked models with c = 1 and c = 10 follow torch.optim.Adam/AdamW with
    embedding_lr_param_groups step for step (same batches)."""
    torch.manual_seed(0)
    models = [M.EmbeddingMLP(P, 8, 16) for _ in range(2)]
    cs = [1.0, 10.0]
    opt_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opts = [opt_cls(M.embedding_lr_param_groups(m, c, lr=0.01), weight_decay=1e-2) for m, c in zip(models, cs)]
    params = M.stack_models(models)
    lr = {k: torch.tensor([0.01, 0.01]) for k in params}
    lr["E"] = torch.tensor([0.01, 0.1])
    stacked = M.StackedAdam(params, lr, weight_decay=1e-2, decoupled=decoupled)
    x, y = M.modular_dataset("add", P)
    g = torch.Generator().manual_seed(3)
    for _ in range(15):
        idx = torch.randint(0, len(x), (2, 32), generator=g)
        for i, (m, o) in enumerate(zip(models, opts)):
            o.zero_grad()
            F.cross_entropy(m(x[idx[i]]), y[idx[i]]).backward()
            o.step()
        leaves = {k: v.requires_grad_(True) for k, v in stacked.params.items()}
        grads = torch.autograd.grad(M.stacked_loss(leaves, x[idx], y[idx]), list(leaves.values()))
        for v in leaves.values():
            v.requires_grad_(False)
        stacked.step(dict(zip(leaves, grads)))
    expect = M.stack_models(models)
    for k in expect:
        torch.testing.assert_close(stacked.params[k], expect[k], rtol=1e-4, atol=1e-5)


def test_a_mixed_stack_gives_each_model_its_own_weight_decay_form():
    """Coupled (Adam) and decoupled (AdamW) models in one stack follow the stacks of one form each."""
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(4, 5, generator=g)
    grads = [torch.randn(4, 5, generator=g) for _ in range(6)]
    form = torch.tensor([False, True, True, False])
    mixed = M.StackedAdam({"W": p0.clone()}, {"W": torch.full((4,), 0.1)}, weight_decay=0.3, decoupled=form)
    pure = {d: M.StackedAdam({"W": p0.clone()}, {"W": torch.full((4,), 0.1)}, weight_decay=0.3, decoupled=d)
            for d in (False, True)}
    for gr in grads:
        mixed.step({"W": gr})
        for opt in pure.values():
            opt.step({"W": gr})
    for i, d in enumerate(form.tolist()):
        torch.testing.assert_close(mixed.params["W"][i], pure[d].params["W"][i])
    assert not torch.allclose(pure[False].params["W"], pure[True].params["W"])  # the forms differ


def test_stacked_adam_select_keeps_the_chosen_models():
    params = {"W": torch.arange(6.0).view(3, 2)}
    opt = M.StackedAdam(params, {"W": torch.tensor([1.0, 2.0, 3.0])})
    opt.decoupled = torch.tensor([True, False, False])
    opt.select(torch.tensor([0, 2]))
    assert opt.params["W"].tolist() == [[0.0, 1.0], [4.0, 5.0]] and opt.lr["W"].tolist() == [1.0, 3.0]
    assert opt.decoupled.tolist() == [True, False]


def test_power_iteration_finds_the_top_eigenvalue_of_each_block_and_model():
    """Quadratic loss sum_s 0.5 (e_s^T A_s e_s + w_s^T B_s w_s) + coupling: H_EE = A_s, H_WW = B_s."""
    g = torch.Generator().manual_seed(0)
    s, n = 3, 6
    a = torch.randn(s, n, n, generator=g, dtype=torch.float64)
    a = a @ a.transpose(1, 2)
    b = torch.diag_embed(torch.tensor([[5.0, 1, 0.5], [2.0, 0.1, 0.1], [0.3, 0.2, 0.1]], dtype=torch.float64))

    def loss(q):
        e, w = q["E"], q["W"]
        quad = 0.5 * torch.einsum("si,sij,sj->s", e, a, e) + 0.5 * torch.einsum("si,sij,sj->s", w, b, w)
        return (quad + (e[:, :3] * w).sum(1) ** 2).sum()  # an E-W coupling that must not leak into blocks

    params = {"E": torch.zeros(s, n, dtype=torch.float64), "W": torch.zeros(s, 3, dtype=torch.float64)}
    eig = M.top_hessian_eigenvalues(loss, params, iters=200, generator=g)
    torch.testing.assert_close(eig["E"], torch.linalg.eigvalsh(a)[:, -1], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(eig["W"], torch.tensor([5.0, 2.0, 0.3], dtype=torch.float64), rtol=1e-6, atol=1e-8)


def test_fourier_spectrum_puts_a_pure_frequency_in_one_bin():
    t = torch.arange(P, dtype=torch.float64)
    e = torch.zeros(P + 2, 4, dtype=torch.float64)
    e[:P, 0] = torch.cos(2 * torch.pi * 3 * t / P)
    e[:P, 1] = torch.sin(2 * torch.pi * 3 * t / P) + 7.0  # the mean is removed
    spec = M.fourier_spectrum(e, P)
    assert spec.shape == (P // 2 + 1,) and abs(float(spec.sum()) - 1) < 1e-12
    assert float(spec[3]) > 1 - 1e-12


def test_numerical_rank_and_effective_embedding():
    g = torch.Generator().manual_seed(0)
    low = torch.randn(30, 3, generator=g) @ torch.randn(3, 20, generator=g)
    assert int(M.numerical_rank(low)) == 3
    e, w = torch.randn(P + 2, 8, generator=g), torch.randn(32, 16, generator=g)
    ew = M.effective_embedding(e, w, P)
    torch.testing.assert_close(ew, e[:P] @ w[:8])
    assert M.embedding_norms(e).shape == (P + 2,)


def test_adaptive_c_at_default_init_is_about_18():
    """sigma_max(E) / sigma_max(W) at PyTorch's default init of the paper's model (note: c ~ 18)."""
    torch.manual_seed(0)
    model = M.EmbeddingMLP(97)
    c = float(M.adaptive_c(model.embed.weight.detach(), model.fc1.weight.detach()))
    assert 15 < c < 22
    opt = torch.optim.Adam(M.embedding_lr_param_groups(model, 1.0, lr=0.01))
    sched = M.AdaptiveEmbeddingLR(opt, model, lr=0.01, every=2)
    assert abs(opt.param_groups[0]["lr"] - 0.01 * sched.c) < 1e-12 and opt.param_groups[1]["lr"] == 0.01
    # f_E < 1 (a token missing from some batches) raises c by f_W / f_E
    f_e = float(M.embedding_update_frequency(torch.full((97,), 10), 1000, 64))
    assert 0 < f_e < 1
    assert float(M.adaptive_c(model.embed.weight.detach(), model.fc1.weight.detach(), f_e)) == pytest.approx(c / f_e, rel=1e-6)


def test_balanced_sampler_equalises_token_draws_on_a_skewed_split():
    x, _ = M.modular_dataset("add", 97)
    tr, _ = M.split(x, 97, "skewed", torch.Generator().manual_seed(0))
    xt = x[tr].unsqueeze(0)
    stats = {}
    for tau in (0.0, 1.0, 3.0):
        sampler = M.FrequencyBalancedSampler(xt, 97, tau, torch.Generator().manual_seed(1))
        for _ in range(100):
            sampler.sample(512)
        counts = sampler.counts[0][sampler.present[0] > 0]
        stats[tau] = float(counts.std() / counts.mean())
    # more even token update frequencies, the more so the larger tau (rows of 1-row tokens also
    # carry a frequent partner token, so no tau equalises them fully)
    assert stats[3.0] < stats[1.0] < 0.8 * stats[0.0] and stats[3.0] < 0.6 * stats[0.0]


def test_balanced_sampler_with_tau_zero_is_uniform():
    x, _ = M.modular_dataset("add", P)
    sampler = M.FrequencyBalancedSampler(x[:50].unsqueeze(0), P, 0.0, torch.Generator().manual_seed(0))
    idx = torch.cat([sampler.sample(1000) for _ in range(20)], dim=1)
    hist = torch.bincount(idx[0], minlength=50).numpy()
    # chi-square goodness of fit to uniform (49 dof): correct code p ~ U(0, 1); a 2:1 weight on any
    # row would move its count by ~400 (20 sd)
    assert chisquare(hist).pvalue > 1e-4


def test_balanced_sampler_takes_one_tau_per_model():
    """tau per model: a stack with tau (0, 3) draws model 0 as tau = 0 alone would (same generator
    stream aside, its counts stay uneven) and model 1 as evenly as tau = 3 alone."""
    x, _ = M.modular_dataset("add", 97)
    tr, _ = M.split(x, 97, "skewed", torch.Generator().manual_seed(0))
    xt = x[tr].unsqueeze(0).expand(2, -1, -1)
    sampler = M.FrequencyBalancedSampler(xt, 97, torch.tensor([0.0, 3.0]), torch.Generator().manual_seed(1))
    for _ in range(100):
        sampler.sample(512)
    spread = [float(c[p > 0].std() / c[p > 0].mean()) for c, p in zip(sampler.counts, sampler.present)]
    assert spread[1] < 0.6 * spread[0]
    sampler.select(torch.tensor([1]))
    assert sampler.tau.flatten().tolist() == [3.0]


def test_a_balanced_models_batches_do_not_depend_on_what_else_is_stacked():
    """With one generator per model, model A draws the same rows alone and below another model
    (which is not drawn when its generator is None, and whose counts then stay zero)."""
    x, _ = M.modular_dataset("add", 97)
    tr, _ = M.split(x, 97, "skewed", torch.Generator().manual_seed(0))
    xt = x[tr].unsqueeze(0)
    alone = M.FrequencyBalancedSampler(xt, 97, 1.0)
    stacked = M.FrequencyBalancedSampler(xt.expand(3, -1, -1), 97, torch.tensor([1.0, 1.0, 0.0]))
    g_alone, g_stacked, g_other = (torch.Generator().manual_seed(k) for k in (7, 7, 8))
    for _ in range(20):
        a = alone.sample(64, [g_alone])
        b = stacked.sample(64, [g_other, g_stacked, None])
        assert torch.equal(a[0], b[1]) and not torch.equal(b[0], b[1])
    assert torch.equal(alone.counts[0], stacked.counts[1]) and float(stacked.counts[2].sum()) == 0.0
