"""A CleanRL-style reference loop, for the throughput comparison only (written by us).

It mirrors the per-step structure of CleanRL's ``ppo_continuous_action.py``: a gymnasium
``SyncVectorEnv`` (one env, same-step autoreset) with the wrappers ClipAction,
NormalizeObservation, TransformObservation(clip 10), NormalizeReward, TransformReward(clip 10),
RecordEpisodeStatistics; a torch forward with ``torch.distributions.Normal`` per environment step
under ``no_grad``; CleanRL's GAE loop and minibatch update. Same hyperparameters as our PPO.
Its returns are not used; it is timed beside our trainer in the same process.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions.normal import Normal

from gdrepro.papers.amppo.method import Agent, PPOConfig


class _CleanAgent(Agent):
    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        mean = self.actor_mean(x)
        std = torch.exp(self.actor_logstd.expand_as(mean))
        dist = Normal(mean, std)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(1), dist.entropy().sum(1), self.critic(x)


def _make_vector_env(env_id: str, gamma: float, clip: float):
    import gymnasium as gym

    def thunk():
        env = gym.make(env_id)
        env = gym.wrappers.FlattenObservation(env)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env = gym.wrappers.ClipAction(env)
        env = gym.wrappers.NormalizeObservation(env)
        env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -clip, clip), env.observation_space)
        env = gym.wrappers.NormalizeReward(env, gamma=gamma)
        env = gym.wrappers.TransformReward(env, lambda r: float(np.clip(r, -clip, clip)))
        return env

    return gym.vector.SyncVectorEnv([thunk], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class CleanRLStyle:
    """CleanRL's loop, one iteration (``num_steps`` env steps + update) per :meth:`iterate`."""

    def __init__(self, env_id: str, cfg: PPOConfig, seed: int):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.envs = _make_vector_env(env_id, cfg.gamma, cfg.obs_clip)
        obs_dim = self.envs.single_observation_space.shape[0]
        act_dim = self.envs.single_action_space.shape[0]
        self.agent = _CleanAgent(obs_dim, act_dim, cfg.hidden)
        self.opt = torch.optim.Adam(self.agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
        obs, _ = self.envs.reset(seed=seed)
        self.next_obs = torch.Tensor(obs)
        self.next_done = torch.zeros(1)
        self.rng = np.random.default_rng(seed)
        self.clipfracs: list[float] = []

    def iterate(self) -> None:
        c, agent, n = self.cfg, self.agent, self.cfg.num_steps
        obs = torch.zeros((n, 1) + self.envs.single_observation_space.shape)
        actions = torch.zeros((n, 1) + self.envs.single_action_space.shape)
        logprobs, rewards, dones, values = (torch.zeros((n, 1)) for _ in range(4))
        for step in range(n):
            obs[step] = self.next_obs
            dones[step] = self.next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(self.next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob
            next_obs, reward, term, trunc, infos = self.envs.step(action.cpu().numpy())
            rewards[step] = torch.tensor(reward).view(-1)
            self.next_obs, self.next_done = torch.Tensor(next_obs), torch.Tensor(np.logical_or(term, trunc))
        with torch.no_grad():
            next_value = agent.get_value(self.next_obs).reshape(1, -1)
            adv = torch.zeros_like(rewards)
            last = 0
            for t in reversed(range(n)):
                if t == n - 1:
                    nonterm, nextv = 1.0 - self.next_done, next_value
                else:
                    nonterm, nextv = 1.0 - dones[t + 1], values[t + 1]
                delta = rewards[t] + c.gamma * nextv * nonterm - values[t]
                adv[t] = last = delta + c.gamma * c.gae_lambda * nonterm * last
            returns = adv + values
        b_obs, b_act = obs.reshape(n, -1), actions.reshape(n, -1)
        b_logp, b_adv, b_ret, b_val = logprobs.reshape(-1), adv.reshape(-1), returns.reshape(-1), values.reshape(-1)
        inds = np.arange(n)
        for _ in range(c.update_epochs):
            self.rng.shuffle(inds)
            for start in range(0, n, c.minibatch_size):
                mb = inds[start : start + c.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_act[mb])
                logratio = newlogprob - b_logp[mb]
                ratio = logratio.exp()
                with torch.no_grad():  # CleanRL's per-minibatch diagnostics
                    _ = ((ratio - 1) - logratio).mean()
                    self.clipfracs.append(((ratio - 1.0).abs() > c.clip_coef).float().mean().item())
                a = b_adv[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - c.clip_coef, 1 + c.clip_coef)).mean()
                newvalue = newvalue.view(-1)
                vc = b_val[mb] + torch.clamp(newvalue - b_val[mb], -c.clip_coef, c.clip_coef)
                v_loss = 0.5 * torch.max((newvalue - b_ret[mb]) ** 2, (vc - b_ret[mb]) ** 2).mean()
                loss = pg - c.ent_coef * entropy.mean() + c.vf_coef * v_loss
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), c.max_grad_norm)
                self.opt.step()
