"""Gradual AA-CBR and classic AA-CBR against their definitions and hand-worked cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gdrepro.papers.aacbr import method as M

torch.set_num_threads(1)


def test_blocked_product_matches_the_triple_loop_in_any_chunking():
    g = torch.Generator().manual_seed(0)
    left, right = torch.rand(7, 5, generator=g), torch.rand(5, 6, generator=g)
    left[0, 0], right[0, 0] = 1.0, 1.0  # a saturated factor: 1 - 1*1 = 0, floored at 1e-6
    brute = torch.ones(7, 6)
    for a, b, k in itertools.product(range(7), range(6), range(5)):
        brute[a, b] *= max(1 - left[a, k] * right[k, b], M.FLOOR)
    for chunk in (1, 2, 5, None):
        torch.testing.assert_close(M.blocked_product(left, right, chunk), brute, rtol=1e-5, atol=1e-7)


def _toy(seed=0, n=9, f=3, classes=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, f, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=g)
    X = torch.cat([X, X.mean(0, keepdim=True).expand(classes, -1)])
    labels = torch.cat([labels, torch.arange(classes)])
    is_default = torch.arange(n + classes) >= n
    w = torch.randn(f, generator=g, dtype=torch.float64)
    return X, labels, is_default, w


def test_graph_respects_labels_defaults_and_self_loops():
    X, labels, is_default, w = _toy()
    att, sup = M.casebase_graph(X @ w, labels, is_default, 0.05)
    same = labels[:, None] == labels[None, :]
    assert (att[same] == 0).all() and (sup[~same] == 0).all()  # attacks across, supports within labels
    assert (att[is_default] == 0).all() and (sup[is_default] == 0).all()  # defaults are silent
    assert (torch.diagonal(sup) == 0).all() and (att >= 0).all() and (sup >= 0).all()
    a = M.uni_directional(sup - att)
    assert not ((a != 0) & (a.T != 0)).any()  # at most one direction per pair survives


def test_soft_minimality_blocks_the_non_minimal_attack():
    # s: a = 2 > k = 1 > b = 0, y_a = y_k != y_b: a -> b is blocked by k, k -> b is minimal
    s = torch.tensor([2.0, 1.0, 0.0])
    labels = torch.tensor([0, 0, 1])
    att, _ = M.casebase_graph(s, labels, torch.zeros(3, dtype=torch.bool), temperature=0.02)
    # the k = a factor 1 - W(a,a) Att0(a,b) with W(a,a) = 1/4 stays in, as in the official code
    assert abs(att[1, 2] - 0.75) < 1e-3 and att[0, 2] < 1e-3
    att_nb, _ = M.casebase_graph(s, labels, torch.zeros(3, dtype=torch.bool), 0.02, blockers=False)
    assert att_nb[0, 2] > 0.99  # without blockers every more specific case attacks


def test_relu_semantics_on_a_chain_by_hand():
    # 0 attacks 1 (weight 0.5), 1 supports 2 (weight 0.4): sigma = (b0, relu(b1 - .5 b0), relu(b2 + .4 sigma1))
    a = torch.tensor([[0.0, -0.5, 0.0], [0.0, 0.0, 0.4], [0.0, 0.0, 0.0]])
    base = torch.tensor([[0.6, 0.5, 0.1], [0.2, 0.5, 0.1]])
    out = M.relu_semantics(a, base, iterations=5)
    s1 = torch.relu(base[:, 1] - 0.5 * base[:, 0])
    expect = torch.stack([base[:, 0], s1, base[:, 2] + 0.4 * s1], dim=1)
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(M.relu_semantics(a, base, 2), out)  # converged after the depth (2)


@pytest.mark.parametrize("supports", [True, False])
def test_batched_forward_equals_the_literal_definition(supports):
    X, labels, is_default, w = _toy(seed=3, n=8)
    n, k = 8, 3
    new = torch.randn(5, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    c = torch.tensor(0.7, dtype=torch.float64)
    fast = M.forward_strengths(X, labels, is_default, torch.arange(n, n + k), w, c, new, 0.3, n, supports)
    slow = M.reference_default_strengths(X[:n].numpy(), labels[:n].numpy(), k, w.numpy(), 0.7, new.numpy(),
                                         0.3, n, supports)
    np.testing.assert_allclose(fast.numpy(), slow, atol=1e-9)
    assert fast.abs().max() > 1e-3  # not a vacuous all-zero comparison


def test_new_case_irrelevance_lowers_base_scores():
    tau = torch.tensor([0.8, 0.8])
    s_cases = torch.tensor([0.0, 5.0])  # case 0 less specific than N (relevant), case 1 far more
    out = M.new_case_base_scores(tau, s_cases, torch.tensor([0.6]), torch.tensor([1.0]), 0.05)
    assert abs(out[0, 0] - 0.8) < 1e-6 and abs(out[0, 1] - 0.2) < 1e-6  # 0.8 - 1 * 0.6


@pytest.fixture(scope="module")
def blobs():
    g = np.random.default_rng(0)
    X = np.vstack([g.normal(-1.5, 0.6, (30, 2)), g.normal(1.5, 0.6, (30, 2))]).astype(np.float32)
    y = np.repeat([3, 7], 30)  # non-contiguous labels: classes_ maps them
    model = M.GradualAACBR(epochs=150, iterations=10, seed=0).fit(X, y)
    return X, y, model


def test_classifier_learns_separable_blobs(blobs):
    X, y, model = blobs
    assert model.score(X, y) >= 0.9
    assert model.history[-1] < model.history[0]


def test_sklearn_interface_and_explanation(blobs):
    X, y, model = blobs
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert set(model.predict(X)) <= {3, 7}
    ex = model.explain(X[0])
    assert ex["prediction"] == model.predict(X[:1])[0]
    assert all(v > 0 for _, v in ex["supporters"]) and all(v < 0 for _, v in ex["attackers"])
    assert ex["graph"].shape == (62, 62) and ex["feature_importance"].shape == (2,)
    assert (ex["case_importance"] > 0).all() and (ex["case_importance"] < 1).all()


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
def test_aacbr_matches_the_set_definition(seed):
    g = np.random.default_rng(seed)
    X = (g.random((25, 5)) < 0.35).astype(int)
    y = g.integers(0, 2, 25)
    new = (g.random((30, 5)) < 0.4).astype(int)
    model = M.AACBR(default_outcome=1).fit(X, y)
    expect, att = _brute_aacbr(X, y, 1, new)
    assert {tuple(p) for p in np.argwhere(model.attacks_)} == att
    np.testing.assert_array_equal(model.predict(new), expect)


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
