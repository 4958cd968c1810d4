"""UG-CLU method: the stacked models against independent modules, the mask / weights / clipping
formulas, the fast-slow update against hand-computed steps, and the learner's data bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gdrepro.papers.clu import method as M
from gdrepro.papers.clu import protocol as P

torch.set_num_threads(1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_stacked_mlp_equals_independent_mlps_in_outputs_and_gradients():
    model = M.StackedMLP(3, (5, 7, 4), _gen())
    x, y = torch.randn(3, 6, 5), torch.randint(0, 4, (3, 6))
    loss = M.per_sample_ce(model(x), y).mean(1).sum()
    grads = torch.autograd.grad(loss, model.params)
    for m in range(3):
        net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4))
        with torch.no_grad():
            net[0].weight.copy_(model.params[0][m].T), net[0].bias.copy_(model.params[1][m, 0])
            net[2].weight.copy_(model.params[2][m].T), net[2].bias.copy_(model.params[3][m, 0])
        out = net(x[m])
        torch.testing.assert_close(out, model(x)[m])
        F.cross_entropy(out, y[m]).backward()
        torch.testing.assert_close(net[0].weight.grad.T, grads[0][m])
        torch.testing.assert_close(net[2].bias.grad, grads[3][m, 0])
    shared = torch.randn(9, 5)  # a shared batch broadcasts over models
    torch.testing.assert_close(model(shared), model(shared.expand(3, 9, 5)))
    assert model.params[0].abs().max() <= 1 / np.sqrt(5) and model.params[2].abs().max() <= 1 / np.sqrt(7)


def test_stacked_module_matches_its_template_and_keeps_batchnorm_statistics_per_model():
    def make():
        return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))

    model = M.StackedModule(make, 2, _gen(), sample_dims=1)
    x = torch.randn(2, 8, 4)
    out = model(x)
    for m in range(2):
        net = make()
        with torch.no_grad():
            for p, (_, q) in zip(model.params, net.named_parameters(), strict=True):
                q.copy_(p[m])
        torch.testing.assert_close(net(x[m]), out[m])
    # each model's running mean saw only its own batch
    assert not torch.allclose(model.buffers[0]["1.running_mean"], model.buffers[1]["1.running_mean"])
    state = model.state(0)
    model.load(1, state)
    torch.testing.assert_close(model.buffers[1]["1.running_mean"], model.buffers[0]["1.running_mean"])
    torch.testing.assert_close(model.params[0][1], model.params[0][0])


def test_adaptive_weights_sum_to_batch_size_and_favour_low_loss_samples():
    losses = torch.tensor([[0.1, 1.0, 4.0], [2.0, 2.0, 2.0]])
    w = M.adaptive_weights(losses, 0.5)
    torch.testing.assert_close(w.sum(1), torch.tensor([3.0, 3.0]))
    expected = 1 / np.sqrt([0.1, 1.0, 4.0])
    np.testing.assert_allclose(w[0].numpy(), 3 * expected / expected.sum(), rtol=1e-5)
    torch.testing.assert_close(w[1], torch.ones(3))  # equal losses: plain mean
    torch.testing.assert_close(M.adaptive_weights(losses, 0.0), torch.ones(2, 3))  # lambda 0: no reweighting


def test_balanced_mask_is_the_fisher_ratio_threshold_and_shrinks_with_gamma():
    fu = [torch.tensor([[1.0, 2.0, 0.0, 5.0]])]
    fr = [torch.tensor([[1.0, 4.0, 0.0, 1.0]])]
    assert M.balanced_mask(fu, fr, 1.0)[0].tolist() == [[1.0, 0.0, 1.0, 1.0]]  # 0/0 -> ratio 1
    g = torch.Generator().manual_seed(1)
    fu, fr = [torch.rand(2, 50, generator=g)], [torch.rand(2, 50, generator=g)]
    masks = [M.balanced_mask(fu, fr, gamma)[0] for gamma in (0.5, 1.0, 2.0)]
    assert bool((masks[1] <= masks[0]).all()) and bool((masks[2] <= masks[1]).all())


def test_salun_mask_keeps_the_requested_share_of_largest_gradients_per_model():
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(3, 40, generator=g), torch.randn(3, 1, 20, generator=g)]
    mask = M.salun_mask(grads, keep=0.25)
    kept = sum(mk.flatten(1).sum(1) for mk in mask)
    torch.testing.assert_close(kept, torch.full((3,), 15.0))
    flat = torch.cat([gr.abs().flatten(1) for gr in grads], 1)
    flat_mask = torch.cat([mk.flatten(1) for mk in mask], 1)
    for m in range(3):  # every kept |gradient| exceeds every dropped one
        assert flat[m][flat_mask[m] == 1].min() > flat[m][flat_mask[m] == 0].max()


def test_clip_per_model_caps_each_models_norm_and_keeps_directions():
    grads = [torch.tensor([[3.0, 4.0], [0.3, 0.4]]), torch.tensor([[[12.0]], [[0.0]]])]
    clipped = M.clip_per_model(grads, 6.5)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in clipped))
    torch.testing.assert_close(norms, torch.tensor([6.5, 0.5]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(clipped[0][0] / clipped[0][0].norm(), torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(clipped[0][1], grads[0][1])


def test_sgd_step_equals_torch_sgd_on_active_models_and_leaves_others_alone():
    p = torch.randn(2, 3, 4)
    bufs = [torch.randn(2, 3, 4)]
    g = torch.randn(2, 3, 4)
    ref = nn.Parameter(p[0].clone())
    opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()  # first step initialises the buffer: put ours in
    opt.state[ref]["momentum_buffer"] = bufs[0][0].clone()
    ref.data = p[0].clone()
    ref.grad = g[0].clone()
    opt.step()
    params, before = [p.clone()], bufs[0].clone()
    M.sgd_step(params, [g], bufs, torch.tensor([1.0, 0.0]), 0.1, 0.9, 0.01)
    torch.testing.assert_close(params[0][0], ref.data)
    torch.testing.assert_close(params[0][1], p[1])
    torch.testing.assert_close(bufs[0][1], before[1])


def _phase(M_, pool_f, pool_s, fast_slow: bool, coef: float, two_steps: bool = False) -> M.Phase:
    fp, fl = M.make_pools([pool_f] * M_)
    sp, sl = M.make_pools([pool_s] * M_)
    false = torch.zeros(M_, dtype=torch.bool)
    return M.Phase(steps=torch.ones(M_, dtype=torch.long), fast_pool=fp, fast_len=fl, fast_coef=torch.full((M_,), coef),
                   fast_every=torch.ones(M_, dtype=torch.long), random_labels=false, adaptive=false, slow_pool=sp,
                   slow_len=sl, slow_coef=torch.ones(M_), fast_slow=torch.full((M_,), fast_slow),
                   two_steps=torch.full((M_,), two_steps))


@pytest.mark.parametrize("mode", ["fast_slow", "simultaneous", "two_steps"])
def test_fast_slow_takes_the_preserve_gradient_at_the_fast_weights(mode):
    """One step, no momentum: fast-slow = theta - lr g_U(theta) - lr g_R(theta - lr g_U(theta));
    simultaneous = theta - lr (g_U(theta) + g_R(theta)); two steps (the equal-step control) = the
    same two SGD steps as fast-slow with g_R taken at theta, which without momentum lands where the
    simultaneous step does. Pools of one sample make batches exact."""
    x, y = torch.randn(2, 5), torch.tensor([1, 2])
    model = M.StackedMLP(1, (5, 6, 3), _gen(3))
    theta = [p.detach().clone() for p in model.params]
    hp = M.HParams(batch=4, momentum=0.0, weight_decay=0.0, clip=1e9)
    phase = _phase(1, np.array([0]), np.array([1]), mode == "fast_slow", 1.0, two_steps=mode == "two_steps")
    M.run_phase(model, [torch.zeros_like(p) for p in model.params], x, y, phase, 0.1, hp, 3, _gen(4))
    fast_slow = mode == "fast_slow"

    def grad(params, i):
        ps = [p.clone().requires_grad_(True) for p in params]
        ref = M.StackedMLP(1, (5, 6, 3), _gen(3))
        ref.params = ps
        loss = F.cross_entropy(ref(x[i:i + 1].expand(1, 4, 5))[0], y[i:i + 1].expand(4))
        return torch.autograd.grad(loss, ps)

    lr = 0.1 * (1 + np.cos(0)) / 2  # cosine schedule at step 0 of 1
    g_u = grad(theta, 0)
    if fast_slow:
        fast = [t - lr * g for t, g in zip(theta, g_u, strict=True)]
        expected = [f - lr * g for f, g in zip(fast, grad(fast, 1), strict=True)]
    else:
        expected = [t - lr * (a + b) for t, a, b in zip(theta, g_u, grad(theta, 1), strict=True)]
    for p, e in zip(model.params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e, atol=1e-6, rtol=1e-5)


def test_two_steps_differs_from_one_combined_step_only_through_momentum():
    """With momentum the equal-step control takes two SGD steps: buffer b1 = g_U, step; b2 = 0.9 b1 + g_R(theta),
    step; so theta_end = theta - lr g_U - lr (0.9 g_U + g_R(theta)), not the one combined step."""
    x, y = torch.randn(2, 5), torch.tensor([1, 2])
    model = M.StackedMLP(3, (5, 6, 3), _gen(3))
    with torch.no_grad():
        for p in model.params:
            p.copy_(p[:1].expand_as(p))
    theta = [p[0].detach().clone() for p in model.params]
    hp = M.HParams(batch=4, momentum=0.9, weight_decay=0.0, clip=1e9)
    phase = _phase(3, np.array([0]), np.array([1]), False, 1.0)
    phase.fast_slow = torch.tensor([True, False, False])
    phase.two_steps = torch.tensor([False, False, True])
    M.run_phase(model, [torch.zeros_like(p) for p in model.params], x, y, phase, torch.tensor([0.1, 0.1, 0.1]), hp, 3, _gen(4))

    def grad(params, i):
        ps = [p.clone().unsqueeze(0).requires_grad_(True) for p in params]
        ref = M.StackedMLP(1, (5, 6, 3), _gen(3))
        ref.params = ps
        loss = F.cross_entropy(ref(x[i:i + 1].expand(1, 4, 5))[0], y[i:i + 1].expand(4))
        return [g[0] for g in torch.autograd.grad(loss, ps)]

    g_u, g_r = grad(theta, 0), grad(theta, 1)
    expected = [t - 0.1 * a - 0.1 * (0.9 * a + b) for t, a, b in zip(theta, g_u, g_r, strict=True)]
    for p, e in zip(model.params, expected, strict=True):
        torch.testing.assert_close(p[2].detach(), e, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(p[0].detach(), p[2].detach())  # fast-slow takes g_R elsewhere


def test_sgd_step_takes_one_learning_rate_per_model():
    p, g = torch.randn(2, 3), torch.randn(2, 3)
    params, bufs = [p.clone()], [torch.zeros(2, 3)]
    M.sgd_step(params, [g], bufs, torch.ones(2), torch.tensor([0.1, 0.3]), 0.0, 0.0)
    torch.testing.assert_close(params[0], p - torch.tensor([[0.1], [0.3]]) * g)


def test_repeat_copies_every_model_with_its_state_and_sets_the_grid():
    n = 200
    x, y = torch.randn(n, 6), torch.arange(n) % 10
    methods = [P.METHODS["clpu"], P.METHODS["ugclu"], P.METHODS["ewc"]]
    model = M.StackedMLP(3, (6, 8, 10), _gen(0))
    hp = M.HParams(batch=8, learn_steps=3, unlearn_steps=2, memory_per_class=5, fisher_batches=2)
    learner = M.ContinualUnlearner(model, methods, x, y, 10, 2, hp, _gen(1), np.random.default_rng(0),
                                   learn_lr=[0.05, 0.15, 0.5])
    for r in P.scenario("class")[:2]:
        learner.apply(r)
    before = [model.state(m) for m in range(3)]
    bufs, fisher = [b.clone() for b in learner.bufs], [f.clone() for f in learner.ewc_fisher]
    learner.repeat([[0.01, 0.02], [0.1, 0.2], [1.0, 2.0]])
    assert model.n_models == 6 and [m.name for m in learner.methods] == ["clpu", "clpu", "ugclu", "ugclu", "ewc", "ewc"]
    assert learner.unlearn_lr.tolist() == pytest.approx([0.01, 0.02, 0.1, 0.2, 1.0, 2.0])
    assert learner.learn_lr.tolist() == pytest.approx([0.05, 0.05, 0.15, 0.15, 0.5, 0.5])  # each copy keeps its own
    assert learner.flags["fast_slow"].tolist() == [False, False, True, True, False, False]
    for m in range(6):
        for a, b in zip(model.state(m), before[m // 2], strict=True):
            assert torch.equal(a, b)
        for new, old in zip(learner.bufs + learner.ewc_fisher, bufs + fisher, strict=True):
            assert torch.equal(new[m], old[m // 2])
    assert sorted(learner.snapshots[1]) == [0, 1] and all(p.requires_grad for p in model.params)
    learner.apply(P.Request("forget_class", klass=1))  # the grid trains on
    assert learner.model(x[:4]).shape == (6, 4, 10)


def test_fisher_of_one_full_batch_is_the_squared_batch_gradient():
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    model = M.StackedMLP(2, (5, 4, 3), _gen(5))
    pool, length = M.make_pools([np.arange(8), np.arange(8)])
    sq, mean = M.fisher_diag(model, x, y, pool, length, batch=8, max_batches=5)
    loss = M.per_sample_ce(model(x.expand(2, 8, 5)), y.expand(2, 8)).mean(1).sum()
    grads = torch.autograd.grad(loss, model.params)
    for s, mu, g in zip(sq, mean, grads, strict=True):
        torch.testing.assert_close(s, g**2)
        torch.testing.assert_close(mu, g)


def test_entropy_mia_flags_confident_targets_as_members():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.uniform(0, 0.3, 500), rng.uniform(1.0, 2.0, 500)
    assert P.entropy_mia(members, nonmembers, rng.uniform(0, 0.3, 100)) > 95
    assert P.entropy_mia(members, nonmembers, rng.uniform(1.2, 2.0, 100)) < 5
    np.testing.assert_allclose(P.entropy(np.full((2, 4), 0.25)), np.log(4))


def test_loss_threshold_mia_finds_the_bayes_threshold_of_two_gaussians():
    """Members' losses N(0, 1), non-members' N(2, 1): the threshold maximising TPR - FPR is 1, so a
    target drawn like the members is judged member with probability Phi(1) = 84.1%."""
    from scipy.stats import norm

    r = np.random.default_rng(0)
    share = P.loss_threshold_mia(r.normal(0, 1, 200_000), r.normal(2, 1, 200_000), r.normal(0, 1, 200_000))
    assert 100 * norm.cdf(0.85) < share < 100 * norm.cdf(1.15)  # TPR - FPR is flat near its maximum at 1
    assert P.loss_threshold_mia(np.array([0.1, 0.2]), np.array([1.0, 2.0]), np.array([0.15, 5.0])) == 50.0


def test_loss_mia_reads_confident_wrong_predictions_as_non_members_unlike_the_entropy_attack():
    """Gradient ascent's signature: confident predictions of the wrong class (low entropy, high loss)."""
    r = np.random.default_rng(1)
    right = np.array([[0.9, 0.05, 0.05]])
    members = np.repeat(right, 200, 0) + r.uniform(0, 0.01, (200, 3))
    nonmembers = np.repeat([[0.5, 0.3, 0.2]], 200, 0) + r.uniform(0, 0.01, (200, 3))
    members, nonmembers = members / members.sum(1, keepdims=True), nonmembers / nonmembers.sum(1, keepdims=True)
    wrong = np.repeat([[0.02, 0.96, 0.02]], 50, 0)  # the true label is 0
    y0 = np.zeros(200, int)
    loss_share = P.loss_threshold_mia(P.sample_loss(members, y0), P.sample_loss(nonmembers, y0), P.sample_loss(wrong, y0[:50]))
    ent_share = P.entropy_mia(P.entropy(members), P.entropy(nonmembers), P.entropy(wrong))
    assert loss_share == 0.0 and ent_share == 100.0
    np.testing.assert_allclose(P.sample_loss(members, y0), -np.log(members[:, 0]))


def test_backward_transfer_on_a_hand_made_accuracy_matrix():
    acc = np.array([[90, 0, 0], [70, 80, 0], [60, 70, 95.0]])  # (requests, tasks)
    assert P.backward_transfer(acc, {0: 0, 1: 1, 2: 2}, [0, 1, 2]) == pytest.approx(((60 - 90) + (70 - 80)) / 2)
    assert P.backward_transfer(acc, {0: 0, 1: 1, 2: 2}, [1, 2]) == pytest.approx(-10)


def test_scenarios_follow_clpu_and_cross_task_unlearning():
    labels = [r.label for r in P.scenario("task_aware")]
    assert labels == ["L0R", "L1T", "L2T", "L3R", "K1", "F2", "L4T", "F4"]
    cls = P.scenario("class")
    learned = set()
    for r in cls:  # every forgotten class belongs to an earlier task, learned before the request
        if r.kind == "learn":
            learned.add(r.task)
        else:
            assert r.klass // 2 in learned and r.klass // 2 != max(learned)
    assert sum(r.kind == "forget_samples" and r.fraction == 0.1 for r in P.scenario("samples")) == 2


def test_learner_bookkeeping_never_keeps_unlearned_data_and_clpu_rolls_back():
    g = torch.Generator().manual_seed(0)
    n = 200
    x, y = torch.randn(n, 6), torch.arange(n) % 10
    methods = [P.METHODS["clpu"], P.METHODS["ugclu"]]
    model = M.StackedMLP(2, (6, 8, 10), g)
    hp = M.HParams(batch=8, learn_steps=2, unlearn_steps=2, memory_per_class=5, fisher_batches=2)
    learner = M.ContinualUnlearner(model, methods, x, y, 10, 2, hp, g, np.random.default_rng(0))
    snap_before_task1 = None
    for r in P.scenario("class")[:4]:  # L0 L1 L2 Uc1
        if r.kind == "learn" and r.task == 1:
            snap_before_task1 = model.state(0)
        info = learner.apply(r)
    forget = info["forget"]
    assert set(y[forget].tolist()) == {1} and len(forget) == 20
    assert not learner.data.held[forget].any() and not learner.data.memory[forget].any()
    assert learner.data.classes == {0, 2, 3, 4, 5}
    assert learner.data.memory.sum() == 5 * 5  # memory of the five held classes
    for a, b in zip(learner.snapshots[0][0], snap_before_task1, strict=True):
        assert not torch.equal(a, b)  # snapshots are per task
    torch.testing.assert_close(learner.snapshots[1][0][0], snap_before_task1[0])
    info = learner.apply(P.Request("forget_samples", fraction=0.1))
    assert len(info["forget"]) == round(0.1 * 100) and not learner.data.held[info["forget"]].any()
