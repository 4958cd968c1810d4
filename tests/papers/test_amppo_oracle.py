"""AM-PPO / PPO against independent oracles: the paper's and CleanRL's constants written out here,
the controller and the gate re-derived from the paper's formulas (float64 numpy), and one whole
PPO iteration (GAE, alpha-modulation, clipped policy and value losses, gradient-norm clipping,
Adam with the annealed learning rate) re-implemented in this file with torch.distributions.Normal
and torch.optim.Adam, compared parameter by parameter with ``PPOTrainer.iterate``.

No helper of ``method.py`` is used to build an expected value."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.distributions.normal import Normal

from gdrepro.papers.amppo import method as M
from gdrepro.papers.amppo.envs import evaluate_policy

torch.set_num_threads(1)

# The paper's / official AMPPO.py hyperparameters and CleanRL's ppo_continuous_action defaults,
# written out (not read from the code under test).
KAPPA, TAU, P_STAR, ETA, RHO, RHO_SAT, EPS = 2.0, 1.25, 0.10, 0.3, 0.1, 0.98, 1e-5
ALPHA_INIT, S_INIT = 1.0, 0.10
GAMMA, LAM, CLIP, VF, ENT, MAX_GN, ADAM_EPS = 0.99, 0.95, 0.2, 0.5, 0.0, 0.5, 1e-5


def test_defaults_are_the_papers_and_cleanrls_hyperparameters():
    am = M.AMConfig()
    assert (am.kappa, am.tau, am.p_star, am.eta, am.rho, am.rho_sat, am.eps) == (
        KAPPA, TAU, P_STAR, ETA, RHO, RHO_SAT, EPS)
    assert (am.alpha_init, am.s_init, am.alpha_min, am.alpha_max, am.gating_norm) == (
        ALPHA_INIT, S_INIT, 1e-12, 1e12, "minibatch")
    c = M.PPOConfig()
    assert (c.learning_rate, c.adam_eps, c.anneal_lr, c.num_steps, c.num_minibatches, c.update_epochs) == (
        3e-4, ADAM_EPS, True, 2048, 32, 10)
    assert (c.gamma, c.gae_lambda, c.clip_coef, c.clip_vloss, c.norm_adv, c.ent_coef, c.vf_coef,
            c.max_grad_norm, c.hidden, c.obs_clip, c.reward_clip) == (
        GAMMA, LAM, CLIP, True, True, ENT, VF, MAX_GN, 64, 10.0, 10.0)
    assert c.minibatch_size == 64
    assert M.make_transform("amppo").cfg.gating_norm == "minibatch"
    assert M.make_transform("amppo_batchnorm").cfg.gating_norm == "batch"


# --- the controller and the gate, from the paper's formulas ----------------------------------------


def _controller_oracle(batches: list[np.ndarray], alpha=ALPHA_INIT, s=S_INIT):
    """The paper's controller (Sec. 3), float64, once per batch; returns the state history."""
    hist = []
    for a in batches:
        n = math.sqrt(float(np.sum(a * a)))
        sigma = float(np.std(a, ddof=1)) + EPS
        alpha_hat = KAPPA * (n + EPS) / (sigma + EPS) * (P_STAR / (s + EPS)) ** ETA
        alpha = min(max((1 - RHO) * alpha + RHO * alpha_hat, 1e-12), 1e12)
        s_obs = float(np.mean(np.abs(alpha * a / (n + EPS)) > TAU))
        s = (1 - RHO_SAT) * s + RHO_SAT * s_obs
        hist.append((alpha, s, s_obs, alpha_hat, n))
    return hist


def _batches(k: int = 6, n: int = 2048) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    # heavy tails (Student t) so the saturation share moves between iterations; scales differ
    return [(rng.standard_t(3, n) * (0.3 + i) + 0.1 * i).astype(np.float32).astype(np.float64) for i in range(k)]


def test_controller_follows_the_papers_recursion_over_several_iterations():
    mod = M.AlphaModulator()
    hist = _controller_oracle(_batches())
    s_obs_seen = set()
    for a, (alpha, s, s_obs, alpha_hat, n) in zip(_batches(), hist, strict=True):
        mod.update(torch.from_numpy(a.astype(np.float32)))
        assert mod.alpha == pytest.approx(alpha, rel=1e-10)
        assert mod.s_ema == pytest.approx(s, rel=1e-10, abs=1e-14)
        assert mod.last["s_obs"] == pytest.approx(s_obs, abs=1e-12)
        assert mod.last["alpha_hat"] == pytest.approx(alpha_hat, rel=1e-10)
        assert mod.batch_norm == pytest.approx(n, rel=1e-12)
        s_obs_seen.add(round(s_obs, 6))
    assert len(s_obs_seen) >= 3 and max(s_obs_seen) > 0  # the saturation feedback is exercised


def test_alpha_hat_closed_form_on_a_hand_made_batch():
    """A = (3, -1, 1, 1): ||A|| = sqrt(12), mean 1, unbiased sd sqrt(8/3); one controller step by hand."""
    a = torch.tensor([3.0, -1.0, 1.0, 1.0])
    n = math.sqrt(12.0)
    mean = 1.0
    sd = math.sqrt(((3 - mean) ** 2 + (-1 - mean) ** 2 + 0 + 0) / 3)  # = sqrt(8/3)
    alpha_hat = 2.0 * (n + 1e-5) / (sd + 2e-5) * (0.1 / 0.10001) ** 0.3
    alpha = 0.9 + 0.1 * alpha_hat
    z = [alpha * v / (n + 1e-5) for v in (3.0, -1.0, 1.0, 1.0)]
    s_obs = sum(abs(v) > 1.25 for v in z) / 4
    mod = M.AlphaModulator()
    mod.update(a)
    assert mod.last["alpha_hat"] == pytest.approx(alpha_hat, rel=1e-12)
    assert mod.alpha == pytest.approx(alpha, rel=1e-12)
    assert mod.s_ema == pytest.approx(0.002 + 0.98 * s_obs, rel=1e-12)


def _gate_oracle(alpha: float, mb: np.ndarray, norm: np.ndarray | float) -> np.ndarray:
    z = alpha * mb / (norm + EPS)
    return np.abs(mb) * KAPPA * np.tanh(z)


@pytest.mark.parametrize("norm", ["minibatch", "batch"])
def test_gate_is_the_papers_formula(norm):
    batches = _batches(3)
    mod = M.AlphaModulator(M.AMConfig(gating_norm=norm))
    for a in batches:
        mod.update(torch.from_numpy(a))
    alpha = _controller_oracle(batches)[-1][0]
    a = batches[-1]
    mb = a[np.random.default_rng(0).permutation(2048)].reshape(32, 64)
    denom = np.linalg.norm(mb, axis=1, keepdims=True) if norm == "minibatch" else np.linalg.norm(a)
    expect = _gate_oracle(alpha, mb, denom)
    out = mod.gate(torch.from_numpy(mb)).numpy()
    np.testing.assert_allclose(out, expect, rtol=1e-9, atol=1e-12)
    z = alpha * mb / (denom + EPS)
    np.testing.assert_allclose(mod.z(torch.from_numpy(mb)).numpy(), z, rtol=1e-9)
    # both regimes present: saturated entries (|Z| > 2) and nearly linear ones (|Z| < 0.3)
    assert (np.abs(z) > 2).mean() > 0.01 and (np.abs(z) < 0.3).mean() > 0.01


def test_gating_diagnostics_against_hand_computed_statistics():
    batches = _batches(4)
    mod = M.AlphaModulator()
    for a in batches:
        mod.update(torch.from_numpy(a))
    alpha = _controller_oracle(batches)[-1][0]
    a = batches[-1]
    mb = a[np.random.default_rng(1).permutation(2048)].reshape(32, 64)
    d = M.gating_diagnostics(mod, torch.from_numpy(a), torch.from_numpy(mb))
    for label, denom in (("mb", np.linalg.norm(mb, axis=1, keepdims=True)), ("batch", np.linalg.norm(a))):
        z = alpha * mb / (denom + EPS)
        amod = _gate_oracle(alpha, mb, denom)
        assert d[f"sat_{label}"] == pytest.approx(np.mean(np.abs(z) > TAU), abs=1e-12)
        assert d[f"gain_{label}"] == pytest.approx(np.mean(np.abs(amod) / np.abs(mb)), rel=1e-9)
        corr = [np.corrcoef(amod[i], mb[i])[0, 1] for i in range(32)]
        assert d[f"corr_{label}"] == pytest.approx(np.mean(corr), rel=1e-9)


# --- network init -------------------------------------------------------------------------------


def test_agent_init_is_cleanrls_orthogonal_init():
    agent = M.Agent(11, 3, generator=torch.Generator().manual_seed(0))
    lins = [m for m in agent.critic if isinstance(m, torch.nn.Linear)] + [
        m for m in agent.actor_mean if isinstance(m, torch.nn.Linear)]
    gains = [math.sqrt(2), math.sqrt(2), 1.0, math.sqrt(2), math.sqrt(2), 0.01]
    shapes = [(64, 11), (64, 64), (1, 64), (64, 11), (64, 64), (3, 64)]
    for lin, gain, shape in zip(lins, gains, shapes, strict=True):
        w = lin.weight.detach().double().numpy()
        assert w.shape == shape
        np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), gain, rtol=1e-5)  # gain x orthogonal
        assert not lin.bias.detach().any()
    assert agent.actor_logstd.shape == (1, 3) and not agent.actor_logstd.detach().any()


# --- one whole PPO iteration against a re-implementation -----------------------------------------


def _synthetic(n: int, obs_dim: int, act_dim: int, seed: int):
    rng = np.random.default_rng(seed)
    batch = {
        "obs": rng.standard_normal((n, obs_dim)).astype(np.float32),
        "act": (0.7 * rng.standard_normal((n, act_dim))).astype(np.float32),
        "rew": (0.1 * rng.standard_normal(n) + 0.05).astype(np.float32),
        "done": (rng.random(n) < 0.04).astype(np.float32),
    }
    return batch, rng.standard_normal(obs_dim).astype(np.float32)


def _reference_iteration(agent: M.Agent, batch, next_obs, last_done, perm_rng, method, lr, n, nmb, epochs,
                         max_gn=MAX_GN):
    """CleanRL's update, written independently: returns per-update stats, mutates ``agent``."""
    obs, act = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["act"])
    rew, done = batch["rew"].astype(np.float64), batch["done"].astype(np.float64)
    with torch.no_grad():
        old = Normal(agent.actor_mean(obs), agent.actor_logstd.exp().expand(n, -1))
        old_lp = old.log_prob(act).sum(1)
        values = agent.critic(obs)[:, 0]
        next_v = float(agent.critic(torch.from_numpy(next_obs)[None])[0, 0])
    v = values.double().numpy()
    adv = np.zeros(n)
    last = 0.0
    for t in reversed(range(n)):
        nonterm = 1.0 - (last_done if t == n - 1 else done[t + 1])
        nextv = next_v if t == n - 1 else v[t + 1]
        delta = rew[t] + GAMMA * nextv * nonterm - v[t]
        last = delta + GAMMA * LAM * nonterm * last
        adv[t] = last
    if method != "ppo":
        alpha = _controller_oracle([adv])[0][0]
    opt = torch.optim.Adam(agent.parameters(), lr=lr, eps=ADAM_EPS, foreach=False)
    stats = {"pg": [], "v": [], "loss": [], "norm": [], "ratio_clip": [], "vclip": []}
    m = n // nmb
    for _ in range(epochs):
        perm = perm_rng.permutation(n)[: nmb * m].reshape(nmb, m)
        for k in range(nmb):
            idx = perm[k]
            a = adv[idx]
            if method == "amppo":
                a = _gate_oracle(alpha, a, np.linalg.norm(a))
            elif method == "amppo_batchnorm":
                a = _gate_oracle(alpha, a, np.linalg.norm(adv))
            target = torch.from_numpy(a + v[idx]).float()
            pa = torch.from_numpy((a - a.mean()) / (a.std(ddof=1) + 1e-8)).float()
            ti = torch.from_numpy(idx)
            dist = Normal(agent.actor_mean(obs[ti]), agent.actor_logstd.exp().expand(m, -1))
            ratio = (dist.log_prob(act[ti]).sum(1) - old_lp[ti]).exp()
            pg = torch.maximum(-pa * ratio, -pa * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)).mean()
            newv = agent.critic(obs[ti])[:, 0]
            vold = values[ti]
            vclipped = vold + torch.clamp(newv - vold, -CLIP, CLIP)
            vl = 0.5 * torch.maximum((newv - target) ** 2, (vclipped - target) ** 2).mean()
            loss = pg - ENT * dist.entropy().sum(1).mean() + VF * vl
            opt.zero_grad()
            loss.backward()
            norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in agent.parameters()))
            if norm > max_gn:
                for p in agent.parameters():
                    p.grad.mul_(max_gn / (norm + 1e-6))
            opt.step()
            stats["pg"].append(float(pg.detach()))
            stats["v"].append(float(vl.detach()))
            stats["loss"].append(float(loss.detach()))
            stats["norm"].append(norm)
            stats["ratio_clip"].append(float(((ratio - 1).abs() > CLIP).float().mean()))
            stats["vclip"].append(float(((newv - vold).abs() > CLIP).float().mean()))
    return stats, adv


@pytest.mark.parametrize("method,last_done,max_gn", [("ppo", 1.0, None), ("amppo", 0.0, None),
                                                    ("amppo_batchnorm", 0.0, 1.5)])
def test_one_iteration_equals_an_independent_ppo_update(method, last_done, max_gn):
    """PPOTrainer.iterate on a fixed synthetic rollout (the env is bypassed) against the update written
    out in this file. max_gn=None keeps CleanRL's 0.5 (clipping fires on every update here); 1.5 puts
    the pre-clip norms on both sides of the threshold."""
    n, nmb, epochs, base_lr = 256, 4, 2, 0.004
    cfg = dataclasses.replace(M.PPOConfig(), num_steps=n, num_minibatches=nmb, update_epochs=epochs,
                              learning_rate=base_lr)
    if max_gn is not None:
        cfg = dataclasses.replace(cfg, max_grad_norm=max_gn)
    tr = M.PPOTrainer("Hopper-v5", 4 * n, M.make_transform(method), cfg, np.random.default_rng(5),
                      torch.Generator().manual_seed(5), 5)
    batch, next_obs = _synthetic(n, tr.obs_dim, tr.act_dim, seed=7)
    with torch.no_grad():  # a policy far enough from init for the ratio clipping to act within 8 updates
        tr.agent.actor_mean[-1].weight.mul_(3.0)
        tr.agent.actor_logstd.fill_(-0.5)
    tr.iteration = 1  # annealed lr: (1 - 1/4) base_lr
    tr.rollout = lambda: {k: v.copy() for k, v in batch.items()}
    tr.obs, tr.done = next_obs.copy(), last_done
    ref_agent = copy.deepcopy(tr.agent)
    perm_rng = np.random.default_rng()
    perm_rng.bit_generator.state = tr.rng.bit_generator.state
    mgn = MAX_GN if max_gn is None else max_gn

    diag = tr.iterate()
    stats, adv = _reference_iteration(ref_agent, batch, next_obs, last_done, perm_rng, method, 0.75 * base_lr,
                                      n, nmb, epochs, mgn)

    np.testing.assert_allclose(tr.last_adv.numpy(), adv, rtol=1e-4, atol=1e-6)
    for (name, p), q in zip(tr.agent.named_parameters(), ref_agent.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=2e-5,
                                   msg=lambda m, name=name: f"parameter {name}: {m}")
    assert diag["pg_loss"] == pytest.approx(np.mean(stats["pg"]), rel=1e-4, abs=1e-6)
    assert diag["v_loss"] == pytest.approx(np.mean(stats["v"]), rel=1e-4)
    assert diag["loss"] == pytest.approx(np.mean(stats["loss"]), rel=1e-4, abs=1e-6)
    assert diag["grad_norm_mean"] == pytest.approx(np.mean(stats["norm"]), rel=1e-4)
    assert diag["clip_fraction"] == pytest.approx(np.mean(np.array(stats["norm"]) > mgn), abs=1e-12)
    assert diag["ratio_clipfrac"] == pytest.approx(np.mean(stats["ratio_clip"]), abs=1e-6)
    assert diag["adv_mean"] == pytest.approx(adv.mean(), rel=1e-4)
    assert diag["adv_std"] == pytest.approx(adv.std(ddof=1), rel=1e-4)
    if method != "ppo":
        alpha, s, *_ = _controller_oracle([adv])[0]
        assert diag["alpha"] == pytest.approx(alpha, rel=1e-4) and diag["s_ema"] == pytest.approx(s, rel=1e-4)
    # the comparison exercises every branch: ratio clipping, value clipping, grad-norm clipping
    assert np.mean(stats["ratio_clip"]) > 0.05 and np.mean(stats["vclip"]) > 0.1
    frac = np.mean(np.array(stats["norm"]) > mgn)
    assert frac == 1.0 if max_gn is None else 0 < frac < 1


# --- the deterministic evaluation -----------------------------------------------------------------


def test_evaluate_policy_against_a_hand_written_episode_loop():
    import gymnasium as gym

    rng = np.random.default_rng(3)
    shapes = [(11, 64), (64,), (64, 64), (64,), (64, 3), (3,)]
    params = [(rng.standard_normal(s) / math.sqrt(s[0])).astype(np.float32) for s in shapes]
    obs_mean = rng.standard_normal(11) * 0.5
    obs_var = rng.random(11) * 2 + 0.05
    policy = dict(zip(("w1", "b1", "w2", "b2", "w3", "b3"), params, strict=True)) | {
        "logstd": np.zeros(3, np.float32), "obs_mean": obs_mean, "obs_var": obs_var}
    got, _ = evaluate_policy(policy, "Hopper-v5", 2, seed=9)
    env = gym.make("Hopper-v5")
    expect = []
    for ep in range(2):
        raw, _ = env.reset(seed=9 + ep)
        total, done = 0.0, False
        while not done:
            o = np.clip(((raw - obs_mean) / np.sqrt(obs_var + 1e-8)).astype(np.float32), -10, 10)
            h = np.tanh(np.tanh(o @ params[0] + params[1]) @ params[2] + params[3])
            raw, r, term, trunc, _ = env.step(np.clip(h @ params[4] + params[5], -1, 1))
            total += r
            done = term or trunc
        expect.append(total)
    np.testing.assert_allclose(got, expect, rtol=1e-6)
