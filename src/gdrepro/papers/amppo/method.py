"""PPO for continuous control (CleanRL ``ppo_continuous_action`` semantics) with a pluggable
advantage transform: identity (plain PPO) or AM-PPO's alpha-modulation (Sane 2025, arXiv 2505.15514).

AM-PPO (paper Sec. 3, official ``AMPPO.py``), with raw GAE advantages ``A`` of one rollout:

- controller, once per iteration on the full batch (:meth:`AlphaModulator.update`):
  ``N = ||A||_2``, ``sigma = std(A) + eps``,
  ``alpha_hat = kappa (N + eps)/(sigma + eps) (p*/(s_ema + eps))^eta``,
  ``alpha <- clamp((1 - rho) alpha + rho alpha_hat)``, ``Z = alpha A/(N + eps)``,
  ``s_obs = mean(|Z| > tau)``, ``s_ema <- (1 - rho_sat) s_ema + rho_sat s_obs``;
- gating with alpha frozen (:meth:`AlphaModulator.gate`): ``Z_mb = alpha A_mb/(||A_mb|| + eps)``,
  ``A_mod = |A_mb| kappa tanh(Z_mb)``; the policy loss uses ``A_mod`` normalised within the minibatch,
  the value target is ``A_mod + V_old``.

``gating_norm`` chooses the norm inside ``Z_mb``: ``"minibatch"`` (the paper's formula and the official
code) or ``"batch"`` (the full-batch norm the controller was calibrated on). With minibatch 64 of a
2048 batch the minibatch norm is ~sqrt(32) = 5.7x smaller, so ``Z_mb`` is ~5.7x larger than the
calibrated ``Z`` and most entries saturate (``A_mod ~ kappa A``), see :func:`gating_diagnostics`.

The rollout forward is numpy (actor mean only); values and log-probabilities of the rollout are
computed afterwards in one batched torch pass with the same parameters, which is what CleanRL's
per-step torch forward computes. Observation/reward normalisation replicate gymnasium's
``NormalizeObservation``/``NormalizeReward`` (+ clip 10) bit for bit in numpy, on the running
statistics of ``envs.py`` (which also holds the envs and the deterministic evaluation of a saved policy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from gdrepro.papers.amppo.envs import RunningMeanStd, env_state, make_env, normalize_obs, set_env_state

LOG_2PI = math.log(2 * math.pi)


class NonFiniteError(FloatingPointError):
    """Raised when advantages or losses stop being finite (the run is stopped, not continued)."""


@dataclass(frozen=True)
class PPOConfig:
    """CleanRL ppo_continuous_action defaults."""

    learning_rate: float = 3e-4
    adam_eps: float = 1e-5
    anneal_lr: bool = True
    num_steps: int = 2048
    num_minibatches: int = 32
    update_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_vloss: bool = True
    norm_adv: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    obs_clip: float = 10.0
    reward_clip: float = 10.0

    @property
    def minibatch_size(self) -> int:
        return self.num_steps // self.num_minibatches


@dataclass(frozen=True)
class AMConfig:
    """AM-PPO controller hyperparameters (paper / official code defaults)."""

    kappa: float = 2.0
    tau: float = 1.25
    p_star: float = 0.10
    eta: float = 0.3
    rho: float = 0.1
    rho_sat: float = 0.98
    eps: float = 1e-5
    alpha_min: float = 1e-12
    alpha_max: float = 1e12
    alpha_init: float = 1.0
    s_init: float = 0.10
    gating_norm: str = "minibatch"  # "minibatch" (paper, official code) | "batch"

    def __post_init__(self) -> None:
        if self.gating_norm not in ("minibatch", "batch"):
            raise ValueError(f"gating_norm must be 'minibatch' or 'batch', got {self.gating_norm!r}")


# --- advantage transforms ------------------------------------------------------------------------


class IdentityTransform:
    """Plain PPO: advantages enter the losses unchanged; value targets A + V_old."""

    name = "ppo"

    def update(self, adv: torch.Tensor) -> None:
        pass

    def gate(self, adv_mb: torch.Tensor) -> torch.Tensor:
        return adv_mb

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class AlphaModulator:
    """AM-PPO's controller state (alpha_ema, s_ema), its once-per-iteration update and the gating."""

    name = "amppo"

    def __init__(self, cfg: AMConfig = AMConfig()):
        self.cfg = cfg
        self.alpha = float(cfg.alpha_init)
        self.s_ema = float(cfg.s_init)
        self.batch_norm = float("nan")  # ||A|| of the last update's full batch (gating_norm="batch")
        self.last = {"alpha": self.alpha, "s_ema": self.s_ema, "s_obs": float("nan"), "alpha_hat": float("nan")}

    def update(self, adv: torch.Tensor) -> None:
        """The controller step on the full batch ``adv`` (1-D), in float64 for a stable state."""
        c = self.cfg
        a = adv.detach().double().reshape(-1)
        n = float(torch.linalg.vector_norm(a))
        self.batch_norm = n
        if n < c.eps:  # official code: a vanishing batch leaves the controller alone
            return
        sigma = float(a.std()) + c.eps
        alpha_hat = c.kappa * (n + c.eps) / (sigma + c.eps) * (c.p_star / (self.s_ema + c.eps)) ** c.eta
        self.alpha = min(max((1 - c.rho) * self.alpha + c.rho * alpha_hat, c.alpha_min), c.alpha_max)
        s_obs = float((self.alpha * a / (n + c.eps)).abs().gt(c.tau).double().mean())
        self.s_ema = (1 - c.rho_sat) * self.s_ema + c.rho_sat * s_obs
        self.last = {"alpha": self.alpha, "s_ema": self.s_ema, "s_obs": s_obs, "alpha_hat": alpha_hat}

    def z(self, adv_mb: torch.Tensor) -> torch.Tensor:
        """Gate input Z for minibatches stacked on the last axis (``(..., m)``), alpha frozen."""
        c = self.cfg
        if c.gating_norm == "batch":
            norm = torch.as_tensor(self.batch_norm, dtype=adv_mb.dtype)
        else:
            norm = torch.linalg.vector_norm(adv_mb, dim=-1, keepdim=True)
        return self.alpha * adv_mb / (norm + c.eps)

    def gate(self, adv_mb: torch.Tensor) -> torch.Tensor:
        """A_mod = |A| kappa tanh(Z) per minibatch row (``(..., m)``); no state change."""
        return adv_mb.abs() * (self.cfg.kappa * torch.tanh(self.z(adv_mb)))

    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "s_ema": self.s_ema, "batch_norm": self.batch_norm, "last": dict(self.last)}

    def load_state_dict(self, state: dict) -> None:
        self.alpha, self.s_ema, self.batch_norm = state["alpha"], state["s_ema"], state["batch_norm"]
        self.last = dict(state["last"])


def make_transform(method: str, am: AMConfig = AMConfig()):
    """``"ppo"`` -> identity; ``"amppo"`` -> AlphaModulator(am); ``"amppo_batchnorm"`` -> batch-norm gating."""
    if method == "ppo":
        return IdentityTransform()
    if method == "amppo":
        return AlphaModulator(am)
    if method == "amppo_batchnorm":
        return AlphaModulator(AMConfig(**{**asdict(am), "gating_norm": "batch"}))
    raise ValueError(f"unknown method {method!r}")


def gating_diagnostics(mod: AlphaModulator, adv: torch.Tensor, minibatches: torch.Tensor) -> dict[str, float]:
    """The minibatch-norm trap on one real batch: saturation and effective gain under both norms.

    ``minibatches`` is ``adv`` permuted and reshaped ``(n_mb, m)``. Returns, for gating with the
    minibatch norm (``mb``) and with the full-batch norm (``batch``): the fraction of entries with
    |Z| > tau, the mean gain |A_mod|/|A|, and the correlation between the minibatch-normalised
    A_mod and minibatch-normalised A (1 = the policy loss is plain PPO's).
    """
    out = {}
    for label, norm in (("mb", "minibatch"), ("batch", "batch")):
        m = AlphaModulator(AMConfig(**{**asdict(mod.cfg), "gating_norm": norm}))
        m.load_state_dict(mod.state_dict())
        z = m.z(minibatches.double())
        a_mod = m.gate(minibatches.double())
        nz = minibatches != 0
        out[f"sat_{label}"] = float((z.abs() > m.cfg.tau).double().mean())
        out[f"gain_{label}"] = float((a_mod.abs()[nz] / minibatches.double().abs()[nz]).mean())
        out[f"corr_{label}"] = float(_row_corr(a_mod, minibatches.double()).mean())
    return out


def _row_corr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xc, yc = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    return (xc * yc).sum(-1) / (xc.norm(dim=-1) * yc.norm(dim=-1) + 1e-30)


# --- networks ------------------------------------------------------------------------------------


class Agent(nn.Module):
    """CleanRL's separate 64-64 tanh actor and critic, orthogonal init, state-independent log-std."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 64, generator: torch.Generator | None = None):
        super().__init__()

        def layer(i: int, o: int, gain: float) -> nn.Linear:
            lin = nn.Linear(i, o)
            nn.init.orthogonal_(lin.weight, gain, generator=generator)
            nn.init.zeros_(lin.bias)
            return lin

        r2 = math.sqrt(2)
        self.critic = nn.Sequential(layer(obs_dim, hidden, r2), nn.Tanh(), layer(hidden, hidden, r2), nn.Tanh(),
                                    layer(hidden, 1, 1.0))
        self.actor_mean = nn.Sequential(layer(obs_dim, hidden, r2), nn.Tanh(), layer(hidden, hidden, r2), nn.Tanh(),
                                        layer(hidden, act_dim, 0.01))
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def logprob_entropy_value(self, obs: torch.Tensor, act: torch.Tensor):
        """Diagonal-Gaussian log-prob and entropy of ``act`` (summed over action dims), and V(obs)."""
        mean, logstd = self.actor_mean(obs), self.actor_logstd
        z = (act - mean) * torch.exp(-logstd)
        logprob = (-0.5 * z * z - logstd - 0.5 * LOG_2PI).sum(-1)
        entropy = (0.5 + 0.5 * LOG_2PI + logstd).sum(-1).expand(obs.shape[0])
        return logprob, entropy, self.value(obs)

    def numpy_actor(self) -> list[np.ndarray]:
        """Actor weights as float32 arrays (W1, b1, W2, b2, W3, b3, logstd) for the numpy rollout."""
        with torch.no_grad():
            layers = [m for m in self.actor_mean if isinstance(m, nn.Linear)]
            out = []
            for lin in layers:
                out += [lin.weight.T.contiguous().numpy().copy(), lin.bias.numpy().copy()]
            return out + [self.actor_logstd.numpy()[0].copy()]


# --- the trainer ---------------------------------------------------------------------------------


class PPOTrainer:
    """One PPO / AM-PPO run: ``iterate()`` = one rollout of ``num_steps`` plus the PPO update.

    Randomness: ``rng`` (numpy) draws the action noise and the minibatch permutations, the torch
    ``generator`` the initial weights, the env is reset with ``env_seed`` once (CleanRL). The whole
    state (networks, Adam, normalisers, env, RNG, controller, episode stats) is in :meth:`state_dict`,
    so a run resumed from a checkpoint continues bit for bit.
    """

    def __init__(self, env_id: str, total_steps: int, transform, cfg: PPOConfig, rng: np.random.Generator,
                 generator: torch.Generator, env_seed: int):
        self.cfg, self.transform, self.rng = cfg, transform, rng
        self.env = make_env(env_id)
        self.obs_dim = self.env.observation_space.shape[0]
        self.act_dim = self.env.action_space.shape[0]
        self.low, self.high = self.env.action_space.low, self.env.action_space.high
        self.agent = Agent(self.obs_dim, self.act_dim, cfg.hidden, generator)
        self.opt = torch.optim.Adam(self.agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
        self.num_iterations = max(1, total_steps // cfg.num_steps)
        self.iteration = 0
        self.obs_rms = RunningMeanStd((self.obs_dim,), np.float32)
        self.ret_rms = RunningMeanStd(())
        self.disc_return = 0.0
        raw, _ = self.env.reset(seed=env_seed)
        self.obs = normalize_obs(self.obs_rms, raw, cfg.obs_clip)
        self.done = 0.0
        self.ep_return, self.ep_length = 0.0, 0
        self.episodes: list[tuple[int, float, int]] = []  # (global step at end, return, length)
        self.last_adv = torch.zeros(cfg.num_steps)  # raw advantages of the last iteration

    @property
    def global_step(self) -> int:
        return self.iteration * self.cfg.num_steps

    def rollout(self) -> dict[str, np.ndarray]:
        """``num_steps`` environment steps with the numpy actor; CleanRL's wrapper semantics."""
        c, env = self.cfg, self.env
        params = self.agent.numpy_actor()
        w1, b1, w2, b2, w3, b3, logstd = params
        std = np.exp(logstd)
        n = c.num_steps
        obs_buf = np.empty((n, self.obs_dim), np.float32)
        act_buf = np.empty((n, self.act_dim), np.float32)
        rew_buf = np.empty(n, np.float32)
        done_buf = np.empty(n, np.float32)
        noise = self.rng.standard_normal((n, self.act_dim)).astype(np.float32)
        obs, done, rms, rrms = self.obs, self.done, self.obs_rms, self.ret_rms
        tanh, clip, sqrt = np.tanh, np.clip, math.sqrt  # local names: no attribute look-ups per step
        low, high, gamma = self.low, self.high, c.gamma
        step0 = self.global_step
        for t in range(n):
            obs_buf[t] = obs
            done_buf[t] = done
            action = (tanh(tanh(obs @ w1 + b1) @ w2 + b2) @ w3 + b3) + std * noise[t]
            act_buf[t] = action
            raw, reward, term, trunc, _ = env.step(clip(action, low, high))
            self.ep_return += reward
            self.ep_length += 1
            # NormalizeReward (gymnasium 1.x): discounted return reset on termination only
            self.disc_return = self.disc_return * gamma * (1.0 - term) + reward
            rrms.update_one(self.disc_return)
            r = reward / sqrt(float(rrms.var) + 1e-8)
            rew_buf[t] = min(max(r, -c.reward_clip), c.reward_clip)
            obs = normalize_obs(rms, raw, c.obs_clip)
            done = float(term or trunc)
            if done:  # same-step autoreset: the reset observation also updates the statistics
                self.episodes.append((step0 + t + 1, self.ep_return, self.ep_length))
                self.ep_return, self.ep_length = 0.0, 0
                raw, _ = env.reset()
                obs = normalize_obs(rms, raw, c.obs_clip)
        self.obs, self.done = obs, done
        return {"obs": obs_buf, "act": act_buf, "rew": rew_buf, "done": done_buf}

    def advantages(self, batch: dict, values: torch.Tensor, next_value: torch.Tensor) -> torch.Tensor:
        """GAE(lambda) as in CleanRL (truncation counts as termination)."""
        c = self.cfg
        rew, done = batch["rew"], batch["done"]
        v = values.numpy().astype(np.float32)
        nv = np.append(v[1:], np.float32(next_value))
        nonterm = 1.0 - np.append(done[1:], np.float32(self.done))
        delta = rew + c.gamma * nv * nonterm - v
        adv = np.empty_like(v)
        last = np.float32(0.0)
        coef = np.float32(c.gamma * c.gae_lambda) * nonterm
        for t in range(len(v) - 1, -1, -1):
            last = delta[t] + coef[t] * last
            adv[t] = last
        return torch.from_numpy(adv)

    def iterate(self) -> dict[str, float]:
        """One PPO iteration; returns its diagnostics. Raises NonFiniteError on NaN/inf."""
        c, agent = self.cfg, self.agent
        if c.anneal_lr:
            self.opt.param_groups[0]["lr"] = (1.0 - self.iteration / self.num_iterations) * c.learning_rate
        batch = self.rollout()
        obs = torch.from_numpy(batch["obs"])
        act = torch.from_numpy(batch["act"])
        with torch.no_grad():
            old_logprob, _, values = agent.logprob_entropy_value(obs, act)
            next_value = agent.value(torch.from_numpy(self.obs)[None])[0]
        adv = self.advantages(batch, values, next_value)
        if not torch.isfinite(adv).all():
            raise NonFiniteError(f"non-finite advantages at iteration {self.iteration + 1} "
                                 f"({self.transform.name}); rewards finite: {bool(np.isfinite(batch['rew']).all())}")
        self.last_adv = adv
        self.transform.update(adv)
        diag = {}
        if isinstance(self.transform, AlphaModulator):
            diag |= self.transform.last
        m, nmb = c.minibatch_size, c.num_minibatches
        norms, clipfracs, losses = [], [], []
        for epoch in range(c.update_epochs):
            perm = torch.from_numpy(self.rng.permutation(c.num_steps)[: nmb * m].reshape(nmb, m))
            adv_mb = self.transform.gate(adv[perm])  # (nmb, m), alpha frozen
            if not torch.isfinite(adv_mb).all():
                raise NonFiniteError(f"non-finite modulated advantages at iteration {self.iteration + 1}")
            ret_mb = adv_mb + values[perm]  # value targets A(_mod) + V_old
            pol_mb = adv_mb
            if c.norm_adv:
                pol_mb = (adv_mb - adv_mb.mean(-1, keepdim=True)) / (adv_mb.std(-1, keepdim=True) + 1e-8)
            if epoch == 0 and isinstance(self.transform, AlphaModulator):
                diag |= gating_diagnostics(self.transform, adv, adv[perm])
            for k in range(nmb):
                idx = perm[k]
                logprob, entropy, newv = agent.logprob_entropy_value(obs[idx], act[idx])
                logratio = logprob - old_logprob[idx]
                ratio = logratio.exp()
                a = pol_mb[k]
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef)).mean()
                vold, target = values[idx], ret_mb[k]
                if c.clip_vloss:
                    v_clipped = vold + (newv - vold).clamp(-c.clip_coef, c.clip_coef)
                    v_loss = 0.5 * torch.max((newv - target) ** 2, (v_clipped - target) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newv - target) ** 2).mean()
                loss = pg_loss - c.ent_coef * entropy.mean() + c.vf_coef * v_loss
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                norms.append(nn.utils.clip_grad_norm_(agent.parameters(), c.max_grad_norm, foreach=True))
                self.opt.step()
                with torch.no_grad():
                    clipfracs.append(((ratio - 1.0).abs() > c.clip_coef).float().mean())
                    losses.append(torch.stack([loss.detach(), pg_loss.detach(), v_loss.detach()]))
        losses_t = torch.stack(losses)
        if not torch.isfinite(losses_t).all():
            raise NonFiniteError(f"non-finite loss at iteration {self.iteration + 1} ({self.transform.name}); "
                                 "check the rewards and the advantage transform")
        norms_t = torch.stack(norms)
        self.iteration += 1
        return diag | {
            "grad_norm_mean": float(norms_t.mean()),
            "grad_norm_median": float(norms_t.median()),
            "clip_fraction": float((norms_t > c.max_grad_norm).float().mean()),
            "ratio_clipfrac": float(torch.stack(clipfracs).mean()),
            "loss": float(losses_t[:, 0].mean()),
            "pg_loss": float(losses_t[:, 1].mean()),
            "v_loss": float(losses_t[:, 2].mean()),
            "adv_mean": float(adv.mean()),
            "adv_std": float(adv.std()),
        }

    def state_dict(self) -> dict:
        return {
            "agent": self.agent.state_dict(), "opt": self.opt.state_dict(), "iteration": self.iteration,
            "obs_rms": self.obs_rms.state_dict(), "ret_rms": self.ret_rms.state_dict(),
            "disc_return": self.disc_return, "obs": self.obs, "done": self.done,
            "ep_return": self.ep_return, "ep_length": self.ep_length, "episodes": list(self.episodes),
            "env": env_state(self.env), "rng": self.rng.bit_generator.state, "transform": self.transform.state_dict(),
            "last_adv": self.last_adv.clone(),
        }

    def load_state_dict(self, s: dict) -> None:
        self.agent.load_state_dict(s["agent"])
        self.opt.load_state_dict(s["opt"])
        self.iteration = s["iteration"]
        self.obs_rms.load_state_dict(s["obs_rms"])
        self.ret_rms.load_state_dict(s["ret_rms"])
        self.disc_return, self.obs, self.done = s["disc_return"], s["obs"], s["done"]
        self.ep_return, self.ep_length, self.episodes = s["ep_return"], s["ep_length"], list(s["episodes"])
        set_env_state(self.env, s["env"])
        self.rng.bit_generator.state = s["rng"]
        self.transform.load_state_dict(s["transform"])
        self.last_adv = s["last_adv"].clone()

    def policy(self) -> dict[str, np.ndarray]:
        """The trained deterministic policy: actor weights and the frozen observation statistics."""
        names = ("w1", "b1", "w2", "b2", "w3", "b3", "logstd")
        return dict(zip(names, self.agent.numpy_actor(), strict=True)) | {
            "obs_mean": np.array(self.obs_rms.mean), "obs_var": np.array(self.obs_rms.var)}
