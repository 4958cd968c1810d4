"""Gradual AA-CBR and classic AA-CBR against independent oracles.

Oracles, none of which calls the code under test:
- ``_literal``: the paper's definitions (shared/papers/aacbr.md) written out again here, one torch
  scalar per pair / blocker / semantics step, differentiable (for the training-step oracle);
- hand-computed numbers for 2-3 argument graphs;
- ``torch.optim.AdamW`` and ``torch.linalg.matrix_norm(ord="nuc")`` for the training loop;
- ``_brute_aacbr``: classic AA-CBR with Python sets and the grounded extension by iteration.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gdrepro.papers.aacbr import method as M

torch.set_num_threads(1)

FLOOR = 1e-6  # blocker factors are floored at 1e-6 (documented in blocked_product)
PAPER = {"temperature": 0.05, "gamma": 0.005, "lr": 2e-2, "c_init": 1.0}  # shared/papers/aacbr.md


# --- the independent literal oracle --------------------------------------------------------------


def _sig(z):
    return 1.0 / (1.0 + torch.exp(-z))


def _literal(cases, labels, n_classes, w, c, new, T, K, supports=True, blockers=True, centre="mean"):
    """Default strengths (B, classes), the post-processed graph A and the raw (Att, Sup), by loops.

    ``cases`` (n, f) torch float64; the class defaults (features = training mean, or zeros) are
    appended here. Everything is built from scalars so that autograd flows through it.
    """
    n = len(cases)
    d = cases.mean(0) if centre == "mean" else torch.zeros(cases.shape[1], dtype=cases.dtype)
    feats = [cases[i] for i in range(n)] + [d] * n_classes
    lab = [int(v) for v in labels] + list(range(n_classes))
    m = len(feats)
    is_def = [i >= n for i in range(m)]
    s = [(f * w).sum() for f in feats]
    P = lambda a, b: _sig((s[a] - s[b]) / T)  # noqa: E731
    zero = torch.zeros((), dtype=cases.dtype)
    W = [[zero if is_def[a] else P(a, b) * (1 - P(b, a)) for b in range(m)] for a in range(m)]
    att = [[zero] * m for _ in range(m)]
    sup = [[zero] * m for _ in range(m)]
    for a in range(m):
        for b in range(m):
            if lab[a] != lab[b]:
                block = torch.ones((), dtype=cases.dtype)
                if blockers:
                    for k in range(m):
                        if lab[k] == lab[a] and lab[k] != lab[b]:
                            block = block * torch.clamp(1 - W[a][k] * W[k][b], min=FLOOR)
                att[a][b] = W[a][b] * block
            elif supports and a != b:
                block = torch.ones((), dtype=cases.dtype)
                if blockers:
                    for k in range(m):
                        block = block * torch.clamp(1 - W[a][k] * W[k][b], min=FLOOR)
                sup[a][b] = W[a][b] * block
    A = [[sup[a][b] - att[a][b] for b in range(m)] for a in range(m)]
    A = [[A[a][b] if abs(float(A[a][b].detach())) > abs(float(A[b][a].detach())) else zero for b in range(m)] for a in range(m)]
    tau = [_sig(c * s[i]) for i in range(m)]
    out, strengths = [], []
    for x in new:
        sn = (x * w).sum()
        tau_n = _sig(c * sn)
        base = [torch.clamp(tau[i] - (1 - _sig((sn - s[i]) / T)) * tau_n, min=0.0) for i in range(m)]
        sigma = list(base)
        for _ in range(K):
            sigma = [torch.clamp(base[b] + sum(A[a][b] * sigma[a] for a in range(m)), min=0.0) for b in range(m)]
        strengths.append(torch.stack(sigma))
        out.append(torch.stack(sigma[n:]))
    stack = lambda rows: torch.stack([torch.stack(r) for r in rows])  # noqa: E731
    return torch.stack(out), stack(A), stack(att), stack(sup), torch.stack(strengths)


def _toy(seed=0, n=7, f=3, classes=3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, f, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=g)
    w = scale * torch.randn(f, generator=g, dtype=torch.float64)
    new = torch.randn(4, f, generator=g, dtype=torch.float64)
    return X, labels, w, new


def _with_defaults(X, labels, classes):
    Xall = torch.cat([X, X.mean(0, keepdim=True).expand(classes, -1)])
    lab = torch.cat([labels, torch.arange(classes)])
    is_default = torch.arange(len(Xall)) >= len(X)
    return Xall, lab, is_default, torch.arange(len(X), len(X) + classes)


# --- the soft casebase graph -----------------------------------------------------------------------


def test_blocked_product_matches_the_triple_loop_in_any_chunking():
    g = torch.Generator().manual_seed(0)
    left, right = torch.rand(7, 5, generator=g, dtype=torch.float64), torch.rand(5, 6, generator=g, dtype=torch.float64)
    left[0, 0], right[0, 0] = 1.0, 1.0  # a saturated factor: 1 - 1*1 = 0, floored at 1e-6
    brute = torch.ones(7, 6, dtype=torch.float64)
    for a, b, k in itertools.product(range(7), range(6), range(5)):
        brute[a, b] *= max(1 - left[a, k] * right[k, b], FLOOR)
    for chunk in (1, 2, 5, None):
        torch.testing.assert_close(M.blocked_product(left, right, chunk), brute, rtol=1e-9, atol=1e-15)


def _unrolled_blocked_product(left, right):
    """The straightforward chunk-free autograd version: prod_k max(1 - l r, FLOOR) by broadcasting."""
    return torch.clamp(1 - left[:, :, None] * right[None, :, :], min=FLOOR).prod(dim=1)


def test_fused_blockers_have_the_straightforward_values_and_gradients():
    g = torch.Generator().manual_seed(1)
    left = torch.rand(9, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    right = torch.rand(7, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    with torch.no_grad():
        left[0, 0], right[0, 0] = 1.0, 1.0  # a floored factor: no gradient through it (clamp's rule)
    weight = torch.rand(9, 5, generator=g, dtype=torch.float64)
    for chunk in (1, 3, None):
        fast = M.blocked_product(left, right, chunk)
        grads = torch.autograd.grad((fast * weight).sum(), (left, right))
        slow = _unrolled_blocked_product(left, right)
        expect = torch.autograd.grad((slow * weight).sum(), (left, right))
        torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-15)
        for got, want in zip(grads, expect):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-13)


def _unrolled_semantics(a, base, iterations):
    sigma = base
    for _ in range(iterations):
        sigma = torch.relu(base + sigma @ a)
    return sigma


@pytest.mark.parametrize("dag", [True, False])
def test_early_stopping_semantics_has_the_unrolled_values_and_gradients(dag):
    # a DAG reaches its fixed point after its depth, so most of K = 40 steps are idle; a graph with
    # a cycle never repeats a step bit for bit, so all K steps run: both must match the unrolled loop
    g = torch.Generator().manual_seed(2)
    n = 8
    a = (torch.rand(n, n, generator=g, dtype=torch.float64) - 0.5) * 0.6
    if dag:
        a = torch.triu(a, diagonal=1)
    a.requires_grad_(True)
    base = torch.rand(5, n, generator=g, dtype=torch.float64).requires_grad_(True)
    weight = torch.rand(5, n, generator=g, dtype=torch.float64)
    fast = M.relu_semantics(a, base, 40)
    slow = _unrolled_semantics(a, base, 40)
    assert torch.equal(fast, slow)  # the forward is the same float operations
    got = torch.autograd.grad((fast * weight).sum(), (a, base))
    want = torch.autograd.grad((slow * weight).sum(), (a, base))
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)
    assert got[0].abs().max() > 1e-3 and (fast == 0).any() and (fast > 0).any()  # ReLU active both ways


def test_back_step_over_the_nonzero_block_is_the_full_product():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(30, 30, generator=g, dtype=torch.float64)
    h = torch.randn(12, 30, generator=g, dtype=torch.float64)
    sparse = h * (torch.rand(12, 1, generator=g) < 0.4) * (torch.rand(1, 30, generator=g) < 0.3)  # rows and columns dead
    for x in (sparse, h, torch.zeros_like(h)):  # the gathered block, the dense fallback, nothing alive
        torch.testing.assert_close(M._back_step(x, a), x @ a.T, rtol=1e-13, atol=1e-14)


def test_semantics_gradient_dying_out_row_by_row_is_the_unrolled_one():
    # a DAG deeper than the forward needs: the backward's tail runs h A^T on ever fewer rows and
    # columns (the pruned products) and must still give the unrolled loop's gradients
    g = torch.Generator().manual_seed(6)
    n = 60
    a = torch.triu((torch.rand(n, n, generator=g, dtype=torch.float64) - 0.4) * 0.3, diagonal=1)
    a = (a * (torch.rand(n, n, generator=g, dtype=torch.float64) < 0.15)).requires_grad_(True)
    base = torch.rand(20, n, generator=g, dtype=torch.float64).requires_grad_(True)
    weight = torch.zeros(20, n, dtype=torch.float64)
    weight[:, -3:] = torch.rand(20, 3, generator=g, dtype=torch.float64)  # the loss reads the last columns only
    fast, slow = M.relu_semantics(a, base, n), _unrolled_semantics(a, base, n)
    assert torch.equal(fast, slow)
    got = torch.autograd.grad((fast * weight).sum(), (a, base))
    want = torch.autograd.grad((slow * weight).sum(), (a, base))
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)
    assert (got[1] != 0).sum() > n  # the gradient reached beyond the read columns


def test_a_fast_epoch_is_the_straightforward_epoch_in_float32():
    """One fit epoch on 40 cases, 3 classes, K = 40, float32: loss and gradient step of the fused code
    equal an epoch of the straightforward graph (broadcast blockers, every pair, unrolled semantics)."""
    g = np.random.default_rng(3)
    X, y = g.normal(size=(40, 5)).astype(np.float32), np.arange(40) % 3
    model = M.GradualAACBR(epochs=1, seed=4).fit(X, y)
    gen = torch.Generator().manual_seed(4)
    w = ((torch.rand(5, generator=gen) * 2 - 1) * math.sqrt(6.0 / 6)).requires_grad_(True)
    c = torch.tensor(1.0, requires_grad=True)
    Xall, lab, is_default, didx = _with_defaults(torch.as_tensor(X), torch.as_tensor(y), 3)
    s = Xall @ w
    p = torch.sigmoid((s[:, None] - s[None, :]) / 0.05)
    wgt = torch.where(is_default[:, None], 0.0, p * (1 - p.T))
    same = lab[:, None] == lab[None, :]
    att0 = torch.where(same, 0.0, wgt)
    att = att0 * _unrolled_blocked_product(torch.where(same, wgt, 0.0), att0)
    sup = torch.where(same & ~torch.eye(43, dtype=torch.bool), wgt, 0.0) * _unrolled_blocked_product(wgt, wgt)
    a = M.uni_directional(sup - att)
    sn = torch.as_tensor(X) @ w
    base = M.new_case_base_scores(torch.sigmoid(c * s), s, torch.sigmoid(c * sn), sn, 0.05)
    logits = _unrolled_semantics(a, base, 40)[:, didx]
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)) + 0.005 * (
        torch.linalg.matrix_norm(att, ord="nuc") + torch.linalg.matrix_norm(sup, ord="nuc"))
    opt = torch.optim.AdamW([w, c], lr=0.02)
    loss.backward()
    opt.step()
    np.testing.assert_allclose(model.history[0], float(loss.detach()), rtol=1e-5)
    torch.testing.assert_close(model.w_.detach(), w.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.c_.detach(), c.detach(), rtol=1e-5, atol=1e-6)


def test_joint_regulariser_is_one_nuclear_norm_of_abs_a():
    s = torch.tensor([0.3, 0.1, -0.2, 0.25, 0.0], dtype=torch.float64)
    labels, is_default = torch.tensor([0, 1, 0, 1, 0]), torch.zeros(5, dtype=torch.bool)
    att, sup = M.casebase_graph(s, labels, is_default, 0.1)
    joint = M.community_regulariser(att, sup, "joint")
    assert abs(float(joint) - float(torch.linalg.matrix_norm((sup - att).abs(), ord="nuc"))) < 1e-12
    separate = M.community_regulariser(att, sup, "separate")
    assert float(separate) > float(joint) + 1e-3  # the triangle inequality, strictly here
    with pytest.raises(ValueError):
        M.GradualAACBR(regulariser="both").fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]))


def test_two_argument_graph_by_hand():
    # s = (1, 0), labels (0, 1), T = 1, no defaults. P(0,1) = sig(1) = p, W(0,1) = p * p; W(a,a) = 1/4.
    # Att(0,1) = W(0,1) * (1 - W(0,0) W(0,1)) (k = 0 has a's label and not b's), Att(1,0) likewise.
    p, q = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))
    att01, att10 = p * p * (1 - 0.25 * p * p), q * q * (1 - 0.25 * q * q)
    s = torch.tensor([1.0, 0.0], dtype=torch.float64)
    att, sup = M.casebase_graph(s, torch.tensor([0, 1]), torch.zeros(2, dtype=torch.bool), 1.0)
    torch.testing.assert_close(att, torch.tensor([[0.0, att01], [att10, 0.0]], dtype=torch.float64), rtol=1e-12, atol=0)
    assert (sup == 0).all()
    a = M.uni_directional(sup - att)
    torch.testing.assert_close(a, torch.tensor([[0.0, -att01], [0.0, 0.0]], dtype=torch.float64), rtol=1e-12, atol=0)
    # same labels: a support with the all-k blocker prod_k (1 - W(0,k) W(k,1)), k = 0 and k = 1
    _, sup = M.casebase_graph(s, torch.tensor([0, 0]), torch.zeros(2, dtype=torch.bool), 1.0)
    sup01 = p * p * (1 - 0.25 * p * p) * (1 - p * p * 0.25)
    sup10 = q * q * (1 - 0.25 * q * q) * (1 - q * q * 0.25)
    torch.testing.assert_close(sup, torch.tensor([[0.0, sup01], [sup10, 0.0]], dtype=torch.float64), rtol=1e-12, atol=0)


def test_soft_minimality_blocks_the_non_minimal_attack():
    # s: a = 2 > k = 1 > b = 0, y_a = y_k != y_b: a -> b is blocked by k, k -> b is minimal
    s = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    att, _ = M.casebase_graph(s, labels, torch.zeros(3, dtype=torch.bool), temperature=0.02)
    # the k = a factor 1 - W(a,a) Att0(a,b) with W(a,a) = 1/4 stays in, as in the official code
    assert abs(att[1, 2] - 0.75) < 1e-3 and att[0, 2] < 1e-3
    att_nb, _ = M.casebase_graph(s, labels, torch.zeros(3, dtype=torch.bool), 0.02, blockers=False)
    assert att_nb[0, 2] > 0.99  # without blockers every more specific case attacks


@pytest.mark.parametrize("T, scale", [(0.05, 0.05), (0.4, 1.0)])
@pytest.mark.parametrize("supports, blockers", [(True, True), (False, True), (True, False)])
def test_graph_equals_the_literal_definition(T, scale, supports, blockers):
    X, labels, w, new = _toy(seed=1, scale=scale)
    Xall, lab, is_default, _ = _with_defaults(X, labels, 3)
    att, sup = M.casebase_graph(Xall @ w, lab, is_default, T, supports, blockers, chunk=2)
    _, A, att_o, sup_o, _ = _literal(X, labels, 3, w, 1.0, new, T, 0, supports, blockers)
    torch.testing.assert_close(att, att_o, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(sup, sup_o, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(M.uni_directional(sup - att), A, rtol=1e-10, atol=1e-14)
    assert att.max() > 0.05 and (sup.max() > 0.05 or not supports)  # not a vacuous comparison
    assert (att[is_default] == 0).all() and (sup[is_default] == 0).all()  # defaults are silent


def test_uni_directional_keeps_the_larger_direction_only():
    a = torch.tensor([[0.0, -0.3, 0.2], [0.1, 0.0, 0.5], [0.2, -0.6, 0.0]])
    expect = torch.tensor([[0.0, -0.3, 0.0], [0.0, 0.0, 0.0], [0.0, -0.6, 0.0]])  # ties (0.2, 0.2) both go
    torch.testing.assert_close(M.uni_directional(a), expect, rtol=0, atol=0)


# --- base scores and semantics ---------------------------------------------------------------------


def test_new_case_base_scores_by_hand():
    tau = torch.tensor([0.8, 0.8, 0.6], dtype=torch.float64)
    s_cases = torch.tensor([0.0, 5.0, 1.2], dtype=torch.float64)
    out = M.new_case_base_scores(tau, s_cases, torch.tensor([0.6], dtype=torch.float64),
                                 torch.tensor([1.0], dtype=torch.float64), 0.5)
    irr = [1 - 1 / (1 + math.exp(-(1.0 - s) / 0.5)) for s in (0.0, 5.0, 1.2)]  # 1 - P(N, i)
    expect = [max(0.0, t - r * 0.6) for t, r in zip((0.8, 0.8, 0.6), irr)]
    assert 0.1 < expect[2] < 0.5 and expect[1] < 0.8 - 0.5 and expect[0] > 0.7  # partly / strongly / barely weakened
    torch.testing.assert_close(out[0], torch.tensor(expect, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def test_relu_semantics_on_a_chain_by_hand():
    # 0 attacks 1 (weight 0.5), 1 supports 2 (weight 0.4): sigma = (b0, relu(b1 - .5 b0), relu(b2 + .4 sigma1))
    a = torch.tensor([[0.0, -0.5, 0.0], [0.0, 0.0, 0.4], [0.0, 0.0, 0.0]])
    base = torch.tensor([[0.6, 0.5, 0.1], [0.2, 0.5, 0.1], [0.9, 0.3, 0.0]])
    out = M.relu_semantics(a, base, iterations=5)
    expect = torch.tensor([[0.6, 0.2, 0.1 + 0.4 * 0.2], [0.2, 0.4, 0.1 + 0.4 * 0.4], [0.9, 0.0, 0.0]])
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(M.relu_semantics(a, base, 2), out)  # converged after the depth (2)
    # one step only: sigma^1 = relu(base + base A), the chain's end not yet updated by sigma^1
    one = torch.tensor([[0.6, 0.2, 0.1 + 0.4 * 0.5], [0.2, 0.4, 0.1 + 0.4 * 0.5], [0.9, 0.0, 0.12]])
    torch.testing.assert_close(M.relu_semantics(a, base, 1), one)


# --- the whole forward pass -------------------------------------------------------------------------


@pytest.mark.parametrize("supports, blockers", [(True, True), (False, True), (True, False)])
def test_batched_forward_equals_the_literal_definition(supports, blockers):
    X, labels, w, new = _toy(seed=3, n=8, scale=0.6)
    Xall, lab, is_default, didx = _with_defaults(X, labels, 3)
    c = torch.tensor(0.7, dtype=torch.float64)
    fast = M.forward_strengths(Xall, lab, is_default, didx, w, c, new, 0.3, 8, supports, blockers)
    slow = _literal(X, labels, 3, w, 0.7, new, 0.3, 8, supports, blockers)[0]
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert fast.abs().max() > 1e-2 and fast.std() > 1e-2  # not a vacuous comparison
    allk = M.forward_strengths(Xall, lab, is_default, didx, w, c, new, 0.3, 8, supports, blockers, all_strengths=True)
    torch.testing.assert_close(allk, _literal(X, labels, 3, w, 0.7, new, 0.3, 8, supports, blockers)[4],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("supports", [True, False])
def test_reference_forward_in_method_equals_the_test_oracle(supports):
    # experiment.py checks every trained model against M.reference_default_strengths: check that too
    X, labels, w, new = _toy(seed=5, n=8, scale=0.6)
    ref = M.reference_default_strengths(X.numpy(), labels.numpy(), 3, w.numpy(), 0.7, new.numpy(), 0.3, 8, supports)
    slow = _literal(X, labels, 3, w, 0.7, new, 0.3, 8, supports, blockers=True)[0]
    np.testing.assert_allclose(ref, slow.numpy(), rtol=1e-9, atol=1e-12)
    assert np.abs(ref).max() > 1e-2


def test_nuclear_norm_is_the_sum_of_singular_values():
    m = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expect = np.sqrt(np.clip(np.linalg.eigvalsh(m.numpy().T @ m.numpy()), 0, None)).sum()
    assert abs(float(M.nuclear_norm(m)) - expect) < 1e-10


# --- the classifier ------------------------------------------------------------------------------


def test_defaults_are_the_papers():
    model = M.GradualAACBR()
    for k, v in PAPER.items():
        assert getattr(model, k) == v, k
    assert model.iterations is None and model.supports and model.blockers and model.default_case == "mean"


def _tiny():
    g = np.random.default_rng(4)
    X = g.normal(size=(6, 2)) * 0.05  # small spread: s/T of order 1 at T = 0.05
    y = np.array([0, 1, 0, 1, 1, 0])
    return X, y


@pytest.mark.parametrize("centre", ["mean", "zeros"])
def test_fit_follows_adamw_on_cross_entropy_plus_nuclear_norms(centre):
    """Two epochs of fit (paper defaults, K = casebase size) against the literal forward + torch AdamW."""
    X, y = _tiny()
    f = X.shape[1]
    model = M.GradualAACBR(epochs=2, seed=0, dtype=torch.float64, default_case=centre).fit(X, y)
    # init: Xavier-uniform for an (f, 1) weight, U(-sqrt(6 / (f + 1)), +), from torch.Generator(seed); c = 1
    g = torch.Generator().manual_seed(0)
    w = ((torch.rand(f, generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(6.0 / (f + 1))).requires_grad_(True)
    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([w, c], lr=0.02)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        logits, _, att, sup, _ = _literal(Xt, yt, 2, w, c, Xt, 0.05, len(X), centre=centre)
        loss = torch.nn.functional.cross_entropy(logits, yt) + 0.005 * (
            torch.linalg.matrix_norm(att, ord="nuc") + torch.linalg.matrix_norm(sup, ord="nuc"))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    np.testing.assert_allclose(model.history, losses, rtol=1e-9)
    torch.testing.assert_close(model.w_.detach(), w.detach(), rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(model.c_.detach(), c.detach(), rtol=1e-7, atol=1e-10)
    assert (model.w_.detach() - ((torch.rand(f, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
                                  * 2 - 1) * math.sqrt(6.0 / (f + 1)))).abs().max() > 1e-3  # it did move
    # inference on unseen cases: logits = literal default strengths, softmax, argmax over classes_
    new = np.random.default_rng(7).normal(size=(5, 2)) * 0.05
    expect = _literal(Xt, yt, 2, model.w_.detach(), model.c_.detach(), torch.as_tensor(new), 0.05, len(X),
                      centre=centre)[0].numpy()
    np.testing.assert_allclose(model.decision_function(new), expect, rtol=1e-9, atol=1e-12)
    soft = np.exp(expect) / np.exp(expect).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(new), soft, rtol=1e-9)
    np.testing.assert_array_equal(model.predict(new), np.unique(y)[expect.argmax(1)])


def test_base_scores_graph_and_explanation_against_the_oracle():
    X, y = _tiny()
    model = M.GradualAACBR(epochs=3, seed=1, dtype=torch.float64).fit(X, y + 4)  # classes 4, 5
    w, c = model.w_.detach(), model.c_.detach()
    Xt = torch.as_tensor(X)
    s = np.concatenate([X @ w.numpy(), np.repeat(X.mean(0) @ w.numpy(), 2)])
    np.testing.assert_allclose(model.projections().detach().numpy(), s, rtol=1e-12)
    np.testing.assert_allclose(model.base_scores(), 1 / (1 + np.exp(-c.item() * s)), rtol=1e-12)
    x = X[2] + 0.01
    _, A, _, _, strengths = _literal(Xt, torch.as_tensor(y), 2, w, c, torch.as_tensor(x[None]), 0.05, 6)
    np.testing.assert_allclose(model.graph(), A.numpy(), rtol=1e-9, atol=1e-14)
    ex = model.explain(x, top=3)
    sig = strengths[0].numpy()
    np.testing.assert_allclose(ex["strengths"], sig, rtol=1e-9, atol=1e-14)
    k = int(sig[6:].argmax())
    assert ex["prediction"] == 4 + k and ex["default"] == 6 + k
    contrib = A.numpy()[:, 6 + k] * sig
    sup = sorted([(i, v) for i, v in enumerate(contrib) if v > 0], key=lambda t: -t[1])[:3]
    att = sorted([(i, v) for i, v in enumerate(contrib) if v < 0], key=lambda t: t[1])[:3]
    assert [i for i, _ in ex["supporters"]] == [i for i, _ in sup]
    assert [i for i, _ in ex["attackers"]] == [i for i, _ in att]
    np.testing.assert_allclose([v for _, v in ex["supporters"] + ex["attackers"]], [v for _, v in sup + att], rtol=1e-9)
    assert len(sup) + len(att) > 0


@pytest.fixture(scope="module")
def blobs():
    g = np.random.default_rng(0)
    X = np.vstack([g.normal(-1.5, 0.6, (20, 2)), g.normal(1.5, 0.6, (20, 2))]).astype(np.float32)
    y = np.repeat([3, 7], 20)  # non-contiguous labels: classes_ maps them
    model = M.GradualAACBR(epochs=100, iterations=10, seed=0).fit(X, y)
    return X, y, model


def test_classifier_learns_separable_blobs(blobs):
    X, y, model = blobs
    assert model.score(X, y) >= 0.9
    assert model.history[-1] < 0.8 * model.history[0]


def test_sklearn_interface_and_explanation(blobs):
    X, y, model = blobs
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), np.array([3, 7])[proba.argmax(1)])
    ex = model.explain(X[0])
    assert ex["prediction"] == model.predict(X[:1])[0]
    assert all(v > 0 for _, v in ex["supporters"]) and all(v < 0 for _, v in ex["attackers"])
    assert ex["graph"].shape == (42, 42) and ex["feature_importance"].shape == (2,)
    assert (ex["graph"][40:] == 0).all()  # no edges leave the defaults


def test_optional_feature_extractor_is_trained_jointly():
    g = np.random.default_rng(1)
    X = g.normal(size=(20, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    before = [p.detach().clone() for p in mlp.parameters()]
    model = M.GradualAACBR(epochs=5, iterations=5, feature_extractor=mlp, extractor_dim=4).fit(X, y)
    assert any((p - b).abs().max() > 0 for p, b in zip(mlp.parameters(), before))
    assert model.w_.shape == (4,) and model.predict_proba(X).shape == (20, 2)
    with torch.no_grad():  # the projection acts on the extracted features
        np.testing.assert_allclose(model.projections().numpy(), (mlp(model.X_) @ model.w_).numpy(), rtol=1e-6)


# --- classic AA-CBR --------------------------------------------------------------------------


def _brute_aacbr(X, y, d, new):
    """AA-CBR straight from the definitions, with Python sets, grounded extension by iteration."""
    cases = [frozenset(np.flatnonzero(x)) for x in X] + [frozenset()]
    out = list(y) + [d]
    m = len(cases)
    strict = lambda a, b: cases[b] < cases[a]  # noqa: E731  b strictly below a
    att = {(a, b) for a in range(m) for b in range(m)
           if out[a] != out[b] and strict(a, b)
           and not any(out[c] == out[a] and strict(a, c) and strict(c, b) for c in range(m))}
    preds = []
    for x in new:
        nset = frozenset(np.flatnonzero(x))
        attackers = {b: {a for a in range(m) if (a, b) in att} for b in range(m)}
        for b in range(m):
            if not cases[b] <= nset:
                attackers[b].add("N")
        ext = set()
        while True:
            defeated = {b for b in range(m) if attackers[b] & (ext | {"N"})}
            nxt = {b for b in range(m) if all(a in defeated for a in attackers[b] if a != "N")
                   and "N" not in attackers[b]}
            if nxt == ext:
                break
            ext = nxt
        preds.append(d if m - 1 in ext else 1 - d)
    return np.array(preds), att


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("default", [0, 1])
def test_aacbr_matches_the_set_definition(seed, default):
    g = np.random.default_rng(seed)
    X = (g.random((25, 5)) < 0.35).astype(int)
    y = g.integers(0, 2, 25)
    new = (g.random((30, 5)) < 0.4).astype(int)
    model = M.AACBR(default_outcome=default).fit(X, y)
    expect, att = _brute_aacbr(X, y, default, new)
    assert {tuple(p) for p in np.argwhere(model.attacks_)} == att
    np.testing.assert_array_equal(model.predict(new), expect)
    assert 0 < expect.mean() < 1  # both outcomes occur
    assert model.score(new, expect) == 1.0 and model.score(new, 1 - expect) == 0.0


def test_aacbr_hand_example():
    # cases: {a}: 0, {a, b}: 1, default (empty): 1. {a} attacks the default; {a,b} attacks {a}.
    X = np.array([[1, 0], [1, 1]])
    model = M.AACBR(default_outcome=1).fit(X, np.array([0, 1]))
    assert model.attacks_[0, 2] and model.attacks_[1, 0] and not model.attacks_[1, 2]
    # N = {a}: {a,b} irrelevant, so {a} stands and defeats the default -> 0
    # N = {a,b}: {a,b} defeats {a}, the default is reinstated -> 1; N = {}: both irrelevant -> 1
    np.testing.assert_array_equal(model.predict(np.array([[1, 0], [1, 1], [0, 0]])), [0, 1, 1])
    with pytest.raises(ValueError):
        M.AACBR().fit(X, np.array([0, 2]))


def test_aacbr_minimality_by_hand():
    # {a}: 0, {a,b}: 0, {a,b,c}: 1, default {}: 1. {a,b,c} attacks {a,b} and {a} (the case between them
    # has the other outcome, so it does not block); {a} attacks the default, {a,b} does not ({a}, with
    # {a,b}'s outcome, lies between).
    X = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    model = M.AACBR(default_outcome=1).fit(X, np.array([0, 0, 1]))
    expect = np.zeros((4, 4), bool)
    expect[0, 3] = expect[2, 1] = expect[2, 0] = True
    np.testing.assert_array_equal(model.attacks_, expect)
    # N = {a,b,c}: {a,b,c} defeats {a} and {a,b}, the default is reinstated -> 1.
    # N = {b}: every case irrelevant -> 1. N = {a}: only {a} relevant, it defeats the default -> 0.
    # N = {a,b}: {a,b,c} irrelevant, {a} stands -> 0.
    np.testing.assert_array_equal(model.predict(np.array([[1, 1, 1], [0, 1, 0], [1, 0, 0], [1, 1, 0]])), [1, 1, 0, 0])


def test_aacbr_long_chain_needs_as_many_rounds_as_its_depth():
    # cases {f1}, {f1,f2}, ..., {f1..f8} with alternating outcomes 0, 1, 0, ...; default {}: 1.
    # Each case attacks the one below it only; for N = {f1..fk} case k is unattacked, so the chain
    # reinstates every other case down to the default: the default is in (predict 1) iff k is even.
    depth = 8
    X = np.tril(np.ones((depth, depth), int))
    y = np.arange(depth) % 2  # case j + 1 has outcome j % 2
    model = M.AACBR(default_outcome=1).fit(X, y)
    expect = np.zeros((depth + 1, depth + 1), bool)
    expect[0, depth] = True  # {f1} attacks the default
    for j in range(1, depth):
        expect[j, j - 1] = True
    np.testing.assert_array_equal(model.attacks_, expect)
    new = np.tril(np.ones((depth + 1, depth), int), -1)  # N = {f1..fk}, k = 0..depth
    np.testing.assert_array_equal(model.predict(new), (np.arange(depth + 1) % 2 == 0).astype(int))
    np.testing.assert_array_equal(model.predict(new), _brute_aacbr(X, y, 1, new)[0])
