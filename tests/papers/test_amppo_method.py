"""AM-PPO and our PPO against their defining properties (the oracle tests are in
test_amppo_oracle.py): the controller's clamp, the gating invariants, the minibatch-norm trap,
CleanRL/gymnasium semantics of the numpy rollout, GAE, exact resume from a state dict, the NaN guard."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch.distributions.normal import Normal

from gdrepro.papers.amppo import envs
from gdrepro.papers.amppo import method as M

torch.set_num_threads(1)
TINY = M.PPOConfig(num_steps=128, num_minibatches=2, update_epochs=2)


def _adv(n: int = 2048, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.7 + 0.2)


def _trainer(method: str = "ppo", seed: int = 0, total: int = 3 * 128, cfg: M.PPOConfig = TINY) -> M.PPOTrainer:
    return M.PPOTrainer("Hopper-v5", total, M.make_transform(method), cfg, np.random.default_rng(seed),
                        torch.Generator().manual_seed(seed), seed)


def test_controller_clamps_alpha_and_ignores_a_vanishing_batch():
    mod = M.AlphaModulator(M.AMConfig(alpha_max=3.0))
    mod.update(_adv())
    assert mod.alpha == 3.0
    before = mod.state_dict()
    mod.update(torch.zeros(64))
    assert (mod.alpha, mod.s_ema) == (before["alpha"], before["s_ema"])


@pytest.mark.parametrize("norm", ["minibatch", "batch"])
def test_gating_keeps_sign_is_bounded_by_kappa_and_leaves_state_frozen(norm):
    mod = M.AlphaModulator(M.AMConfig(gating_norm=norm))
    adv = _adv()
    for _ in range(5):
        mod.update(adv)
    before = mod.state_dict()
    mb = adv[torch.randperm(2048, generator=torch.Generator().manual_seed(1))].reshape(32, 64)
    out = mod.gate(mb)
    assert torch.equal(torch.sign(out), torch.sign(mb))
    assert bool((out.abs() <= mod.cfg.kappa * mb.abs()).all())
    assert mod.state_dict() == before
    # saturated entries carry ~kappa A; tiny ones the linear regime kappa alpha A |A| / norm
    z = mod.z(mb)
    sat = z.abs() > 4
    assert torch.allclose(out[sat], 2.0 * mb[sat], rtol=1e-3)  # kappa = 2 (paper)


def test_identity_transform_is_plain_ppo():
    t = M.IdentityTransform()
    adv = _adv(64)
    t.update(adv)
    assert torch.equal(t.gate(adv), adv)


def test_minibatch_norm_trap_saturates_far_more_than_the_calibrated_norm():
    """With B = 2048 and m = 64, ||A_mb|| ~ ||A|| / sqrt(32): Z_mb is ~5.7x the calibrated Z."""
    mod = M.AlphaModulator()
    adv = _adv()
    for _ in range(40):
        mod.update(adv)
    mb = adv[torch.randperm(2048, generator=torch.Generator().manual_seed(2))].reshape(32, 64)
    ratio = (torch.linalg.vector_norm(adv) / torch.linalg.vector_norm(mb, dim=1)).mean()
    assert float(ratio) == pytest.approx(math.sqrt(32), rel=0.1)
    d = M.gating_diagnostics(mod, adv, mb)
    assert d["sat_batch"] == pytest.approx(mod.last["s_obs"], abs=1e-12)
    assert d["sat_mb"] > 2 * d["sat_batch"] and d["sat_mb"] > 0.5
    assert d["gain_mb"] > d["gain_batch"]
    assert d["corr_mb"] > 0.9  # the normalised policy advantage is close to plain PPO's


def test_running_mean_std_matches_gymnasium():
    from gymnasium.wrappers.utils import RunningMeanStd

    ref, ours = RunningMeanStd(shape=(3,)), envs.RunningMeanStd((3,))
    for x in np.random.default_rng(0).standard_normal((50, 3)) * 3 + 1:
        ref.update(x[None])
        ours.update_one(x)
    np.testing.assert_allclose(ours.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(ours.var, ref.var, rtol=1e-12)


def test_numpy_rollout_reproduces_cleanrls_wrapper_stack():
    """Same actions into CleanRL's gymnasium wrappers (same-step autoreset) give our obs, rewards, dones."""
    from gdrepro.papers.amppo.reference import _make_vector_env

    tr = _trainer(seed=3, cfg=M.PPOConfig(num_steps=400))
    with torch.no_grad():
        tr.agent.actor_logstd.fill_(0.5)  # wide actions: many early terminations, autoreset exercised
    batch = tr.rollout()
    envs = _make_vector_env("Hopper-v5", 0.99, 10.0)
    obs, _ = envs.reset(seed=3)
    np.testing.assert_array_equal(obs[0], batch["obs"][0])
    dones = 0
    for t in range(399):
        obs, rew, term, trunc, _ = envs.step(batch["act"][t][None])
        np.testing.assert_array_equal(obs[0], batch["obs"][t + 1])
        assert np.float32(rew[0]) == batch["rew"][t]
        assert float(term[0] or trunc[0]) == batch["done"][t + 1]
        dones += batch["done"][t + 1]
    assert dones >= 3


def test_gae_matches_cleanrls_loop():
    rng = np.random.default_rng(4)
    n = 50
    tr = _trainer()
    rew, done = rng.standard_normal(n).astype(np.float32), (rng.random(n) < 0.1).astype(np.float32)
    values, nv = torch.from_numpy(rng.standard_normal(n).astype(np.float32)), torch.tensor(0.3)
    tr.done = 1.0
    adv = tr.advantages({"rew": rew, "done": done}, values, nv).numpy()
    ref, last = np.zeros(n), 0.0
    for t in reversed(range(n)):
        nonterm = 1.0 - (tr.done if t == n - 1 else done[t + 1])
        nextv = float(nv) if t == n - 1 else float(values[t + 1])
        delta = rew[t] + 0.99 * nextv * nonterm - float(values[t])
        ref[t] = last = delta + 0.99 * 0.95 * nonterm * last
    np.testing.assert_allclose(adv, ref, rtol=1e-5, atol=1e-6)


def test_logprob_and_entropy_match_torch_normal():
    agent = M.Agent(11, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([[0.1, -0.4, 0.3]]))
    obs, act = torch.randn(20, 11), torch.randn(20, 3)
    lp, ent, v = agent.logprob_entropy_value(obs, act)
    dist = Normal(agent.actor_mean(obs), agent.actor_logstd.exp().expand(20, 3))
    torch.testing.assert_close(lp, dist.log_prob(act).sum(1))
    torch.testing.assert_close(ent, dist.entropy().sum(1))
    np.testing.assert_allclose(envs.actor_mean_np(agent.numpy_actor(), obs.numpy()),
                               agent.actor_mean(obs).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["ppo", "amppo"])
def test_resume_from_state_dict_is_bit_exact(method):
    straight = _trainer(method)
    for _ in range(3):
        straight.iterate()
    first = _trainer(method)
    for _ in range(2):
        first.iterate()
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = _trainer(method, seed=99)  # a different fresh state, overwritten by the checkpoint
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    resumed.iterate()
    for a, b in zip(straight.agent.parameters(), resumed.agent.parameters(), strict=True):
        assert torch.equal(a, b)
    assert straight.episodes == resumed.episodes
    assert straight.transform.state_dict() == resumed.transform.state_dict()


def test_non_finite_values_stop_the_run_with_a_clear_message():
    tr = _trainer()
    with torch.no_grad():
        tr.agent.critic[0].weight[0, 0] = float("nan")
    with pytest.raises(M.NonFiniteError, match="non-finite advantages"):
        tr.iterate()
    tr = _trainer("amppo")
    with torch.no_grad():
        tr.agent.actor_logstd.fill_(float("inf"))
    with pytest.raises(M.NonFiniteError, match="non-finite"):
        tr.iterate()
