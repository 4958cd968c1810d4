"""KO against its defining properties: exactness at gamma = 0, the two-row closed form,
orthogonal rows, conservation laws of hard collisions, state_dict round trips, devices."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gdrepro.papers.ko import method as M

torch.set_num_threads(1)


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                               torch.nn.ReLU(), torch.nn.Linear(16, 3))


def _train(model, opt, steps: int, seed: int = 1, device: str = "cpu") -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 6, generator=g).to(device)
        y = torch.randint(0, 3, (32,), generator=g).to(device)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


@pytest.mark.parametrize("base,kwargs", [("sgd", {"lr": 0.1, "momentum": 0.9}), ("adam", {"lr": 1e-2}),
                                         ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3})])
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_zero_coll_coef_is_the_base_optimizer_bit_for_bit(base, kwargs, mode):
    a, b = _net(), _net()
    _train(a, M.BASES[base](a.parameters(), **kwargs), 25)
    _train(b, M.KO(b.parameters(), base=base, coll_coef=0.0, mode=mode, **kwargs), 25)
    assert torch.equal(_flat(a), _flat(b))


def test_zero_coll_coef_leaves_the_gradient_exactly():
    w, g = torch.randn(8, 5), torch.randn(8, 5)
    for normalize in M.NORMALIZE:
        assert torch.equal(M.soft_collision(w, g, 0.0, normalize), g)
    assert torch.equal(M.hard_collision(w, g, 0.0), g)


@pytest.mark.parametrize("normalize", ["mean", "sum"])
def test_two_rows_separate_by_one_plus_gamma_k(normalize):
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        w, g = torch.randn(2, 7, generator=gen, dtype=torch.float64), torch.randn(2, 7, generator=gen, dtype=torch.float64)
        gamma = 0.7
        new = M.soft_collision(w, g, gamma, normalize)
        k = torch.nn.functional.cosine_similarity(w[0], w[1], dim=0) * torch.nn.functional.cosine_similarity(g[0], g[1], dim=0)
        torch.testing.assert_close(new[0] - new[1], (1 + gamma * k) * (g[0] - g[1]), rtol=1e-12, atol=1e-12)
        # the centre of mass moves by -gamma K times itself: g~1 + g~2 = (1 - gamma K)(g1 + g2)
        torch.testing.assert_close(new[0] + new[1], (1 - gamma * k) * (g[0] + g[1]), rtol=1e-12, atol=1e-12)


def test_thresh_collides_only_pairs_above_one_minus_gamma():
    w = torch.tensor([[1.0, 0.0], [1.0, 0.1]], dtype=torch.float64)  # cos ~ 0.995
    g = torch.tensor([[1.0, 0.2], [1.0, 0.0]], dtype=torch.float64)
    k = float(M.collision_kernel(w, g)[0, 1])
    assert 0.9 < k < 1
    torch.testing.assert_close(M.soft_collision(w, g, 1 - k - 1e-3, "thresh"), g)  # K < 1 - gamma: none
    new = M.soft_collision(w, g, 0.5, "thresh")  # K > 0.5: the two-row law with one partner
    torch.testing.assert_close(new[0] - new[1], (1 + 0.5 * k) * (g[0] - g[1]))


def test_gamma_as_threshold_only_scales_the_same_collision_term():
    # reading R2: coef replaces gamma as the coefficient, the threshold 1 - gamma stays
    g_ = torch.Generator().manual_seed(3)
    w = torch.randn(9, 4, generator=g_, dtype=torch.float64) + 2.0  # rows share a direction: many pairs collide
    g = torch.randn(9, 4, generator=g_, dtype=torch.float64) + 1.0
    primary, unit = M.soft_collision(w, g, 0.5, "thresh"), M.soft_collision(w, g, 0.5, "thresh", coef=1.0)
    torch.testing.assert_close(unit - g, (primary - g) / 0.5)
    two = M.soft_collision(w[:2], g[:2], 0.5, "thresh", coef=1.0)
    k = float(M.collision_kernel(w[:2], g[:2])[0, 1])
    assert k > 0.5
    torch.testing.assert_close(two[0] - two[1], (1 + k) * (g[0] - g[1]))


def test_collision_counter_counts_the_pairs_above_the_threshold():
    g_ = torch.Generator().manual_seed(4)
    w, g = torch.randn(12, 5, generator=g_, dtype=torch.float64), torch.randn(12, 5, generator=g_, dtype=torch.float64)
    k = M.collision_kernel(w, g)
    for gamma in (0.3, 0.6, 0.9):
        counter = M.CollisionCounter()
        M.soft_collision(w, g, gamma, "thresh", counter=counter)
        above = sum(float(k[i, j]) > 1 - gamma for i in range(12) for j in range(12) if i != j)
        assert counter.state() == (above, 12 * 11) and counter.rate == above / 132
    counter = M.CollisionCounter()
    M.soft_collision(w, g, 1.0, "mean", counter=counter)
    assert counter.rate == 1.0  # mean: every pair with a non-zero kernel
    counter = M.CollisionCounter()
    M.hard_collision(w * 0.01, g, 1.0, torch.Generator().manual_seed(0), counter=counter)
    assert counter.state() == (6, 6)  # coll_coef 1: every one of the N/2 pairs collides
    assert np.isnan(M.CollisionCounter().rate)


@pytest.mark.parametrize("normalize", M.NORMALIZE)
def test_orthogonal_weight_rows_get_no_collision(normalize):
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    g = torch.randn(12, 30, dtype=torch.float64)
    w = torch.cat([q, torch.zeros(12, 18, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(M.soft_collision(w, g, 1.0, normalize), g, rtol=0, atol=1e-13)


def test_literal_sum_flips_an_aligned_cluster_and_mean_does_not():
    """m identical rows: sum gives g (1 - gamma (m - 1)), mean gives g (1 - gamma)."""
    m, gamma = 11, 0.2
    w, g = torch.ones(m, 4), torch.ones(m, 4) * torch.tensor([1.0, 2.0, -1.0, 0.5])
    torch.testing.assert_close(M.soft_collision(w, g, gamma, "sum"), g * (1 - gamma * (m - 1)))
    torch.testing.assert_close(M.soft_collision(w, g, gamma, "mean"), g * (1 - gamma))


def test_pairwise_cosine_is_the_row_by_row_cosine():
    x = torch.randn(9, 4, dtype=torch.float64)
    x[3] = 0  # a zero row has cosine 0 with everything
    c = M.pairwise_cosine(x)
    for i in range(9):
        for j in range(9):
            expect = 0.0 if 3 in (i, j) else float(F.cosine_similarity(x[i], x[j], dim=0))
            assert c[i, j].item() == pytest.approx(expect, abs=1e-12)


def test_hard_collision_conserves_momentum_and_energy():
    gen = torch.Generator().manual_seed(0)
    w, g = torch.randn(40, 9, dtype=torch.float64) * 1e-3, torch.randn(40, 9, dtype=torch.float64)
    new = M.hard_collision(w, g, 1.0, gen)
    assert (new != g).any(dim=1).all()  # gamma 1, nearby particles: every pair collides
    torch.testing.assert_close(new.sum(0), g.sum(0))
    torch.testing.assert_close((new**2).sum(), (g**2).sum())


def test_hard_collision_spares_distant_particles():
    w, g = torch.arange(10.0)[:, None] * torch.full((10, 3), 100.0), torch.randn(10, 3)
    torch.testing.assert_close(M.hard_collision(w, g, 0.5, torch.Generator().manual_seed(0)), g)


@pytest.mark.parametrize("base,mode", [("sgd", "soft"), ("adam", "soft"), ("sgd", "hard"), ("adam", "hard")])
def test_state_dict_round_trip_resumes_exactly(base, mode):
    kwargs = {"lr": 0.05, "momentum": 0.9} if base == "sgd" else {"lr": 1e-2}
    model = _net()
    opt = M.KO(model.parameters(), base=base, coll_coef=0.5, mode=mode, normalize="thresh", seed=7, **kwargs)
    _train(model, opt, 10, seed=1)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    _train(model, opt, 10, seed=2)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    twin = _net(seed=99)
    twin.load_state_dict(saved["model"])
    twin_opt = M.KO(twin.parameters(), base=base, coll_coef=0.1, mode="soft", seed=0, **kwargs)
    twin_opt.load_state_dict(saved["opt"])
    assert twin_opt.param_groups[0]["coll_coef"] == 0.5 and twin_opt.param_groups[0]["mode"] == mode
    assert twin_opt.state is twin_opt.base.state and twin_opt.param_groups is twin_opt.base.param_groups
    _train(twin, twin_opt, 10, seed=2)
    assert torch.equal(_flat(model), _flat(twin))
    assert twin_opt.collisions.state() == opt.collisions.state() and opt.collisions.state()[1] > 0


def test_accepts_an_optimizer_class_per_group_settings_and_a_scheduler():
    model = _net()
    groups = [{"params": model[0].parameters(), "coll_coef": 0.0}, {"params": model[2].parameters()}]
    opt = M.KO(groups, base=torch.optim.RMSprop, coll_coef=0.5, lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    _train(model, opt, 2)
    sched.step()
    assert opt.param_groups[0]["coll_coef"] == 0.0 and opt.param_groups[1]["coll_coef"] == 0.5
    assert opt.base.param_groups[0]["lr"] == pytest.approx(5e-3)
    with pytest.raises(ValueError, match="base"):
        M.KO(model.parameters(), base="lbfgs-ish")
    with pytest.raises(ValueError, match="mode"):
        M.KO(model.parameters(), mode="elastic")


def test_weight_correlation_of_clones_orthogonal_rows_and_signs():
    w = torch.ones(5, 3)
    w[1::2] *= -1  # |cos| ignores sign
    assert M.weight_correlation(w) == pytest.approx(1.0)
    assert M.weight_correlation(torch.eye(6)) == pytest.approx(0.0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.ones(4, 3))
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    assert M.model_weight_correlation(model) == pytest.approx(0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_cuda_matches_cpu(mode):
    cpu, gpu = _net(), _net().cuda()
    _train(cpu, M.KO(cpu.parameters(), coll_coef=0.5, mode=mode, lr=0.05, momentum=0.9, seed=3), 10)
    opt = M.KO(gpu.parameters(), coll_coef=0.5, mode=mode, lr=0.05, momentum=0.9, seed=3)
    _train(gpu, opt, 10, device="cuda")
    torch.testing.assert_close(_flat(gpu), _flat(cpu), rtol=1e-4, atol=1e-5)
    state = opt.state_dict()
    twin = M.KO(copy.deepcopy(gpu).parameters(), coll_coef=0.5, mode=mode, lr=0.05, momentum=0.9)
    twin.load_state_dict(state)
    assert next(iter(twin.state.values()))["momentum_buffer"].is_cuda
