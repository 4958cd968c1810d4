"""UG-CLU against oracles written here from the paper notes / SFR-on (never from method.py's helpers):

- one request's phase (run_phase) replayed model by model with plain autograd and torch.optim.SGD:
  ascent with cosine-decayed alpha, adaptive weights c_i = l_i^-lambda normalised to the batch size,
  balanced mask, per-model clipping (torch.nn.utils.clip_grad_norm_), random labels, fast-slow vs
  simultaneous steps, the EWC penalty 0.5 lambda F (theta - theta*)^2, a cosine learning rate;
- the phases the learner builds for learn and unlearn requests (coefficients, pools, masks from an
  independent diagonal-Fisher computation, SalUn's top-|g| mask by sorting);
- the evaluation helpers against numpy / scipy, the sampler against its uniform law.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gdrepro.papers.clu import method as M
from gdrepro.papers.clu import protocol as P

torch.set_num_threads(1)


def _forward(ps, x):
    """A ReLU MLP from (W: in x out, b: 1 x out) pairs, written out."""
    h = x
    for k in range(0, len(ps), 2):
        h = h @ ps[k] + ps[k + 1][0]
        if k < len(ps) - 2:
            h = torch.relu(h)
    return h


def _model_params(model, m):
    return [p[m].detach().clone() for p in model.params]


def _fisher_oracle(ps, x, y, idx, batch, max_batches):
    """SFR-on's diagonal Fisher: mean over batches (walking the pool in order, cycling) of the squared
    gradient of the batch-mean cross-entropy; also the mean gradient."""
    return _fisher_oracle_n(ps, x, y, idx, batch, min(max_batches, math.ceil(len(idx) / batch)))


# --- one phase, replayed model by model ------------------------------------------------------------


def _replay_phase(init, x, y, ph, lr, hp, n_classes, seed):
    """Reference for run_phase: every model on its own, torch.optim.SGD for the steps. The random
    stream is the learner's: per step, fast batch positions (M, B) then label shifts (M, B) when any
    model takes a fast step, then slow batch positions (M, B)."""
    M_ = len(init)
    gen = torch.Generator().manual_seed(seed)
    total = max(ph["steps"])
    leaves = [[p.clone().requires_grad_(True) for p in init[m]] for m in range(M_)]
    norms = [[] for _ in range(M_)]  # pre-clip fast-gradient norms, per model
    opts = [torch.optim.SGD(leaves[m], lr=lr, momentum=hp.momentum, weight_decay=hp.weight_decay) for m in range(M_)]

    def sgd(m, grads, lr_s):
        for p, g in zip(leaves[m], grads, strict=True):
            p.grad = g.clone()
        opts[m].param_groups[0]["lr"] = lr_s
        opts[m].step()

    for s in range(total):
        lr_s = lr * (1 + math.cos(math.pi * s / total)) / 2
        decay = (1 + math.cos(math.pi * s / total)) / 2
        fast_on = [s < ph["steps"][m] and ph["fast_coef"][m] != 0 and s % ph["fast_every"][m] == 0 for m in range(M_)]
        fidx = shift = None
        if any(fast_on):
            u = torch.rand(M_, hp.batch, generator=gen)
            fidx = [[ph["fast"][m][int(v * len(ph["fast"][m]))] for v in u[m]] for m in range(M_)]
            shift = torch.randint(1, n_classes, (M_, hp.batch), generator=gen)
        u = torch.rand(M_, hp.batch, generator=gen)
        sidx = [[ph["slow"][m][int(v * len(ph["slow"][m]))] for v in u[m]] for m in range(M_)]
        for m in range(M_):
            if s >= ph["steps"][m]:
                continue
            stash = None
            if fast_on[m]:
                yb = y[fidx[m]]
                if ph["random_labels"][m]:
                    yb = (yb + shift[m]) % n_classes
                losses = F.cross_entropy(_forward(leaves[m], x[fidx[m]]), yb, reduction="none")
                w = torch.ones_like(losses)
                if ph["adaptive"][m]:
                    c = losses.detach() ** -hp.lam
                    w = len(c) * c / c.sum()
                coef = ph["fast_coef"][m] * (decay if ph["fast_coef"][m] < 0 else 1.0)
                grads = torch.autograd.grad(coef * (w * losses).mean(), leaves[m])
                grads = [g * mk[m] for g, mk in zip(grads, ph["mask"], strict=True)]
                norms[m].append(float(torch.sqrt(sum((g**2).sum() for g in grads))))
                holders = [torch.zeros_like(g, requires_grad=True) for g in grads]
                for h, g in zip(holders, grads, strict=True):
                    h.grad = g.clone()
                torch.nn.utils.clip_grad_norm_(holders, hp.clip)
                grads = [h.grad for h in holders]
                if ph["fast_slow"][m]:
                    sgd(m, grads, lr_s)
                else:
                    stash = grads
            loss = ph["slow_coef"][m] * F.cross_entropy(_forward(leaves[m], x[sidx[m]]), y[sidx[m]])
            for p, fi, a in zip(leaves[m], ph["ewc_fisher"], ph["ewc_anchor"], strict=True):
                loss = loss + 0.5 * ph["ewc"][m] * (fi[m] * (p - a[m]) ** 2).sum()
            grads = torch.autograd.grad(loss, leaves[m])
            if stash is not None:
                grads = [g + st for g, st in zip(grads, stash, strict=True)]
            if ph["slow_coef"][m] > 0 or ph["ewc"][m] > 0 or (fast_on[m] and not ph["fast_slow"][m]):
                sgd(m, grads, lr_s)
    return [[p.detach() for p in leaves[m]] for m in range(M_)], norms


def test_run_phase_equals_the_model_by_model_replay():
    """Four models, four steps, every switch of a phase exercised at once:
    0: UG-CLU (ascent, cosine-decayed alpha, adaptive weights, mask, fast-slow, forget every 2nd step, EWC)
    1: SalUn-like (random labels, descent, simultaneous, every step)
    2: GA+FT (ascent, simultaneous, no adaptive weights), 2 steps only
    3: fine-tune plus a strong EWC penalty, no fast term."""
    gen = torch.Generator().manual_seed(7)
    n_classes, sizes = 4, (5, 6, 4)
    x, y = torch.randn(30, 5, generator=gen), torch.randint(0, n_classes, (30,), generator=gen)
    model = M.StackedMLP(4, sizes, torch.Generator().manual_seed(1))
    init = [_model_params(model, m) for m in range(4)]
    fast, slow = np.arange(0, 7), np.arange(10, 16)
    mask = [(torch.rand(p.shape, generator=gen) < 0.6).float() for p in model.params]
    fisher = [torch.rand(p.shape, generator=gen) for p in model.params]
    anchor = [p.detach() + 0.3 * torch.randn(p.shape, generator=gen) for p in model.params]
    ph = {"steps": [4, 4, 2, 4], "fast_coef": [-3.0, 1.0, -0.3, 0.0], "fast_every": [2, 1, 1, 1],
          "random_labels": [False, True, False, False], "adaptive": [True, False, False, False],
          "slow_coef": [1.0, 1.0, 1.0, 0.5], "fast_slow": [True, False, False, False], "ewc": [0.5, 0.0, 0.0, 20.0],
          "fast": [fast] * 4, "slow": [slow] * 4, "mask": mask, "ewc_fisher": fisher, "ewc_anchor": anchor}
    fp, fl = M.make_pools([fast] * 4)
    sp, sl = M.make_pools([slow] * 4)
    phase = M.Phase(steps=torch.tensor(ph["steps"]), fast_pool=fp, fast_len=fl, fast_coef=torch.tensor(ph["fast_coef"]),
                    fast_every=torch.tensor(ph["fast_every"]), random_labels=torch.tensor(ph["random_labels"]),
                    adaptive=torch.tensor(ph["adaptive"]), slow_pool=sp, slow_len=sl, slow_coef=torch.tensor(ph["slow_coef"]),
                    fast_slow=torch.tensor(ph["fast_slow"]), mask=mask, ewc_coef=torch.tensor(ph["ewc"]),
                    ewc_fisher=fisher, ewc_anchor=anchor)
    hp = M.HParams(batch=6, momentum=0.9, weight_decay=0.02, clip=1.0, lam=0.7)
    M.run_phase(model, [torch.zeros_like(p) for p in model.params], x, y, phase, 0.2, hp, n_classes,
                torch.Generator().manual_seed(3))
    expected, norms = _replay_phase(init, x, y, ph, 0.2, hp, n_classes, seed=3)
    # informative: clipping binds for UG-CLU's alpha-scaled ascent, not for the small GA+FT one
    # (whose second step then shows the cosine decay of alpha)
    assert max(norms[0]) > 1.0 and max(norms[2]) < 1.0 and len(norms[2]) == 2 and len(norms[0]) == 2
    for m in range(4):
        for p, e, p0 in zip(model.params, expected[m], init[m], strict=True):
            assert not torch.allclose(e, p0)  # every model moved
            torch.testing.assert_close(p[m].detach(), e, rtol=1e-5, atol=1e-6)


def test_hparams_are_the_sfr_on_and_salun_defaults():
    hp = M.HParams()
    assert (hp.unlearn_lr, hp.momentum, hp.weight_decay, hp.forget_every, hp.forget_alpha, hp.clip, hp.lam, hp.gamma) == (
        0.01, 0.9, 5e-4, 5, 25.0, 7.0, 0.5, 1.0)
    assert hp.salun_keep == 0.5  # SalUn's default: half of the weights salient


def test_stacked_mlp_init_is_torch_linear_default_uniform():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): max |w| just below the bound, E|w| = bound / 2, sd(|w|) = bound / sqrt(12)."""
    model = M.StackedMLP(2, (50, 40, 30), torch.Generator().manual_seed(0))
    for p, fan_in in zip(model.params, (50, 50, 40, 40), strict=True):
        a = p.detach().abs()
        bound = 1 / math.sqrt(fan_in)
        assert 0.98 * bound < float(a.max()) <= bound
        se = bound / math.sqrt(12) / math.sqrt(a.numel())
        assert abs(float(a.mean()) - bound / 2) < 5 * se


def test_cosine_schedule_closed_form():
    assert M.cosine(0.01, 0, 1500) == pytest.approx(0.01, rel=1e-12)
    assert M.cosine(0.01, 750, 1500) == pytest.approx(0.005, rel=1e-12)
    assert M.cosine(0.01, 500, 1500) == pytest.approx(0.01 * 0.75, rel=1e-12)  # cos(pi/3) = 1/2
    assert M.cosine(25.0, 1500, 1500) == pytest.approx(0.0, abs=1e-12)


# --- the phases the learner builds -----------------------------------------------------------------


def _record(monkeypatch):
    calls = []
    monkeypatch.setattr(M, "run_phase", lambda model, bufs, x, y, phase, lr, hp, *a, **k: calls.append((phase, lr)))
    return calls


def test_learn_and_unlearn_requests_build_the_documented_phases(monkeypatch):
    calls = _record(monkeypatch)  # no training: the model stays at its initialisation
    names = ["ugclu", "ga_ft", "salun", "finetune", "ewc", "ugclu_no_adaptive"]
    methods = [P.METHODS[k] for k in names]
    n = 200
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 6, generator=gen), torch.arange(n) % 10
    model = M.StackedMLP(len(methods), (6, 8, 10), torch.Generator().manual_seed(2))
    hp = M.HParams(batch=5, learn_steps=3, unlearn_steps=4, memory_per_class=5, fisher_batches=50,
                   forget_every=3, forget_alpha=7.0, gamma=1.3, salun_keep=0.4, ewc_lambda=11.0)
    learner = M.ContinualUnlearner(model, methods, x, y, 10, 2, hp, gen, np.random.default_rng(0))
    init = [_model_params(model, m) for m in range(len(methods))]

    learner.apply(P.Request("learn", 0))
    phase, lr = calls[-1]
    new0 = np.flatnonzero(y.numpy() < 2)
    assert lr.tolist() == pytest.approx([hp.learn_lr] * 6) and phase.steps.tolist() == [3] * 6
    assert phase.fast_coef.tolist() == [1.0] * 6
    assert set(phase.fast_pool[0, : int(phase.fast_len[0])].tolist()) == set(new0.tolist())
    assert phase.slow_coef.tolist() == [0.0] * 6 and phase.ewc_coef is None  # empty memory, nothing to protect yet
    # online EWC: the Fisher of task 0's data, walked in batches of 5
    for m in range(6):
        sq, _ = _fisher_oracle(init[m], x, y, new0, 5, 50)
        for f, s in zip(learner.ewc_fisher, sq, strict=True):
            torch.testing.assert_close(f[m], s, rtol=1e-4, atol=1e-9)

    learner.apply(P.Request("learn", 1))
    phase, lr = calls[-1]
    assert phase.slow_coef.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]  # replay on the memory, except fine-tune / EWC
    assert phase.ewc_coef.tolist() == [0.0, 0.0, 0.0, 0.0, 11.0, 0.0]
    assert set(phase.slow_pool[0, : int(phase.slow_len[0])].tolist()) <= set(new0.tolist())  # task 0's memory

    learner.apply(P.Request("learn", 2))
    info = learner.apply(P.Request("forget_class", klass=1))
    phase, lr = calls[-1]
    forget, memory = info["forget"], np.flatnonzero(learner.data.memory)
    assert set(forget.tolist()) == set(np.flatnonzero(y.numpy() == 1).tolist()) and len(memory) == 25
    assert lr.tolist() == pytest.approx([hp.unlearn_lr] * 6) and phase.steps.tolist() == [4] * 6
    assert phase.fast_coef.tolist() == [-7.0, -7.0, 1.0, 0.0, 0.0, -7.0]  # ascent with alpha; SalUn descends on random labels
    assert phase.fast_every.tolist() == [3, 3, 1, 3, 3, 3]
    assert phase.random_labels.tolist() == [False, False, True, False, False, False]
    assert phase.adaptive.tolist() == [True, False, False, False, False, False]
    assert phase.fast_slow.tolist() == [True, False, False, False, False, True]
    assert phase.slow_coef.tolist() == [1.0] * 6
    assert phase.fast_pool[0, : int(phase.fast_len[0])].tolist() == forget.tolist()
    assert phase.slow_pool[0, : int(phase.slow_len[0])].tolist() == memory.tolist()
    for m in range(len(names)):
        f_u, g_u = _fisher_oracle(init[m], x, y, forget, 5, 50)
        f_r, _ = _fisher_oracle(init[m], x, y, memory, 5, 50)
        mask = [mk[m] for mk in phase.mask]
        if methods[m].mask == "fisher":  # M = 1[F_U / F_R >= gamma]
            expect = [(fu / fr >= 1.3).float() for fu, fr in zip(f_u, f_r, strict=True)]
            for a, b in zip(mask, expect, strict=True):
                torch.testing.assert_close(a, b)
            assert 0.05 < float(sum(a.sum() for a in mask) / sum(a.numel() for a in mask)) < 0.95
        elif methods[m].mask == "salun":  # the 40 % largest |mean forget gradient|
            flat = torch.cat([g.flatten() for g in g_u]).abs().numpy()
            keep = np.zeros(flat.size)
            keep[np.argsort(-flat)[: flat.size - int(round(0.6 * flat.size))]] = 1
            np.testing.assert_array_equal(torch.cat([a.flatten() for a in mask]).numpy(), keep)
        else:
            assert all(bool((a == 1).all()) for a in mask)


def test_clpu_rolls_back_and_relearns_at_the_learning_rate(monkeypatch):
    calls = _record(monkeypatch)
    methods = [P.METHODS["clpu"], P.METHODS["replay"]]
    n = 100
    x, y = torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 10
    model = M.StackedMLP(2, (4, 5, 10), torch.Generator().manual_seed(1))
    hp = M.HParams(batch=5, learn_steps=3, unlearn_steps=4, memory_per_class=2, fisher_batches=2)
    learner = M.ContinualUnlearner(model, methods, x, y, 10, 2, hp, torch.Generator().manual_seed(3), np.random.default_rng(0))
    learner.apply(P.Request("learn", 0))
    before_task1 = [_model_params(model, m) for m in range(2)]
    learner.apply(P.Request("learn", 1))
    with torch.no_grad():
        for p in model.params:
            p.add_(1.0)  # pretend both models trained on task 1
    learner.apply(P.Request("forget_task", task=1))
    (p_other, lr_other), (p_rolled, lr_rolled) = calls[-2:]
    assert lr_other.tolist() == lr_rolled.tolist() == pytest.approx([hp.learn_lr, hp.unlearn_lr])  # one LR per model
    assert p_other.steps.tolist() == [0, 4] and p_rolled.steps.tolist() == [3, 0]
    for p, s0, s1 in zip(model.params, before_task1[0], before_task1[1], strict=True):
        torch.testing.assert_close(p[0].detach(), s0)  # CLPU back to the snapshot before task 1
        torch.testing.assert_close(p[1].detach(), s1 + 1.0)


@pytest.mark.parametrize("lr", [None, [0.7, 0.3, 0.3]])
def test_retrain_one_step_by_hand(lr):
    """Retrain with one step on a one-sample pool: theta - lr (grad CE + wd theta) (cos schedule at
    step 0 = lr), at hp's LR or one LR per model."""
    x, y = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 1])
    model = M.StackedMLP(3, (3, 4, 3), torch.Generator().manual_seed(5))
    init = [_model_params(model, m) for m in range(3)]
    hp = M.HParams(batch=3, retrain_steps=1, learn_lr=0.3, weight_decay=0.01)
    M.retrain(model, x, y, [np.array([2]), np.array([], dtype=np.int64), np.array([2])], hp, 3,
              torch.Generator().manual_seed(0), lr=lr)
    rates = [0.3] * 3 if lr is None else lr
    leaves = [p.clone().requires_grad_(True) for p in init[0]]
    grads = torch.autograd.grad(F.cross_entropy(_forward(leaves, x[[2]]), y[[2]]), leaves)
    for p, p0, g in zip(model.params, init[0], grads, strict=True):
        torch.testing.assert_close(p[0].detach(), p0 - rates[0] * (g + 0.01 * p0), rtol=1e-5, atol=1e-7)
    leaves = [p.clone().requires_grad_(True) for p in init[2]]
    grads = torch.autograd.grad(F.cross_entropy(_forward(leaves, x[[2]]), y[[2]]), leaves)
    for p, p0, g in zip(model.params, init[2], grads, strict=True):
        torch.testing.assert_close(p[2].detach(), p0 - rates[2] * (g + 0.01 * p0), rtol=1e-5, atol=1e-7)
    for p, p0 in zip(model.params, init[1], strict=True):
        assert torch.equal(p[1].detach(), p0)  # an empty training set: the model stays at its initialisation


# --- formulas and helpers ---------------------------------------------------------------------------


def test_fisher_over_several_cycling_batches_equals_the_loop():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(30, 5, generator=gen), torch.randint(0, 3, (30,), generator=gen)
    model = M.StackedMLP(2, (5, 4, 3), torch.Generator().manual_seed(5))
    pools = [np.arange(0, 17), np.arange(17, 30)]  # lengths 17 and 13: 4 batches of 5, model 1 cycles
    pool, length = M.make_pools(pools)
    sq, mean = M.fisher_diag(model, x, y, pool, length, batch=5, max_batches=10)
    for m in range(2):
        n_expected = math.ceil(17 / 5)  # both models walk max(lengths) / batch batches
        f, mu = _fisher_oracle_n(_model_params(model, m), x, y, pools[m], 5, n_expected)
        for a, b, c, d in zip(sq, f, mean, mu, strict=True):
            torch.testing.assert_close(a[m], b, rtol=1e-5, atol=1e-8)
            torch.testing.assert_close(c[m], d, rtol=1e-5, atol=1e-7)
    sq2, _ = M.fisher_diag(model, x, y, pool, length, batch=5, max_batches=2)  # capped at 2 batches
    f, _ = _fisher_oracle_n(_model_params(model, 0), x, y, pools[0], 5, 2)
    torch.testing.assert_close(sq2[0][0], f[0], rtol=1e-5, atol=1e-8)


def _fisher_oracle_n(ps, x, y, idx, batch, nb):
    """The same over exactly ``nb`` batches."""
    sq = [torch.zeros_like(p) for p in ps]
    mu = [torch.zeros_like(p) for p in ps]
    for k in range(nb):
        ids = [int(idx[(k * batch + t) % len(idx)]) for t in range(batch)]
        leaves = [p.clone().requires_grad_(True) for p in ps]
        loss = F.cross_entropy(_forward(leaves, x[ids]), y[ids])
        for s, m_, g in zip(sq, mu, torch.autograd.grad(loss, leaves), strict=True):
            s += g**2 / nb
            m_ += g / nb
    return sq, mu


def test_adaptive_weights_and_masks_against_numpy():
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.01, 5.0, (3, 16))
    for lam in (0.5, 1.0, 2.0):
        c = losses**-lam
        expect = 16 * c / c.sum(1, keepdims=True)
        np.testing.assert_allclose(M.adaptive_weights(torch.tensor(losses), lam).numpy(), expect, rtol=1e-9)
    fu, fr = rng.exponential(1, (2, 30)), rng.exponential(1, (2, 30))
    for gamma in (0.5, 1.0, 3.0):
        got = M.balanced_mask([torch.tensor(fu)], [torch.tensor(fr)], gamma)[0].numpy()
        np.testing.assert_array_equal(got, (fu / fr >= gamma).astype(float))


def test_salun_mask_against_argsort():
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(3, 40, generator=g), torch.randn(3, 1, 20, generator=g)]
    for keep in (0.25, 0.5, 0.8):
        mask = M.salun_mask(grads, keep=keep)
        flat = torch.cat([gr.abs().flatten(1) for gr in grads], 1).numpy()
        got = torch.cat([mk.flatten(1) for mk in mask], 1).numpy()
        for m in range(3):
            expect = np.zeros(60)
            expect[np.argsort(-flat[m])[: int(round(keep * 60))]] = 1
            np.testing.assert_array_equal(got[m], expect)


def test_clip_per_model_against_torch_clip_grad_norm():
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(3, 4, 5, generator=g) * torch.tensor([5.0, 0.1, 1.0])[:, None, None],
             torch.randn(3, 1, 5, generator=g)]
    clipped = M.clip_per_model(grads, 2.0)
    for m in range(3):
        holders = [torch.zeros_like(gr[m], requires_grad=True) for gr in grads]
        for h, gr in zip(holders, grads, strict=True):
            h.grad = gr[m].clone()
        torch.nn.utils.clip_grad_norm_(holders, 2.0)
        for h, c in zip(holders, clipped, strict=True):
            torch.testing.assert_close(c[m], h.grad)


def test_per_sample_ce_accuracy_and_entropy_against_scipy_and_numpy():
    from scipy.special import log_softmax
    from scipy.stats import entropy as scipy_entropy

    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(2, 7, 4)), rng.integers(0, 4, (2, 7))
    got = M.per_sample_ce(torch.tensor(logits), torch.tensor(labels)).numpy()
    expect = -np.take_along_axis(log_softmax(logits, -1), labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(got, expect, rtol=1e-10)
    probs = rng.dirichlet(np.full(5, 0.3), (2, 6))  # many small probabilities
    probs[0, 0] = [0.997, 0.002, 0.001, 0.0, 0.0]
    np.testing.assert_allclose(P.entropy(probs), scipy_entropy(probs, axis=-1), rtol=1e-9, atol=1e-9)
    y = rng.integers(0, 5, 6)
    which = np.array([True, True, False, True, False, True])
    expect = [100 * np.mean([probs[m, i].argmax() == y[i] for i in range(6) if which[i]]) for m in range(2)]
    np.testing.assert_allclose(P.accuracy(probs, y, which), expect)
    assert np.isnan(P.accuracy(probs, y, np.zeros(6, bool))).all()


def test_sample_batches_is_uniform_over_each_pool_and_never_reads_padding():
    """Pools of lengths 3 and 8 padded to 8: model 0 draws each of its 3 ids with probability 1/3."""
    pool, length = M.make_pools([np.array([10, 11, 12]), np.arange(20, 28)])
    assert pool.shape == (2, 8) and length.tolist() == [3, 8]
    draws = M.sample_batches(pool, length, 30000, torch.Generator().manual_seed(0))
    for m, ids in ((0, [10, 11, 12]), (1, list(range(20, 28)))):
        counts = np.array([(draws[m] == i).sum().item() for i in ids])
        assert counts.sum() == 30000
        p = 1 / len(ids)
        se = math.sqrt(30000 * p * (1 - p))
        assert np.abs(counts - 30000 * p).max() < 5 * se  # correct code: within 5 se; padding bias: 10+ se
