"""The environment side of AM-PPO's experiments, in numpy (no torch): MuJoCo envs through
gymnasium, gymnasium's running statistics and observation normalisation replicated in numpy,
the exact env state for resuming a run, and deterministic episodes of a saved policy.

``method.PPOTrainer`` rolls out on these; the prepare stage builds the envs with :func:`make_env`
and the saved policies are evaluated (and rendered, see ``render.py``) by :func:`evaluate_policy`, neither
loading torch.
"""

from __future__ import annotations

import numpy as np


def make_env(env_id: str, **render):
    """A raw MuJoCo env with its TimeLimit (no checker); CleanRL's wrappers are replicated in numpy.
    ``render``: gymnasium's render_mode, width, height (rollout videos only)."""
    import gymnasium as gym

    return gym.make(env_id, disable_env_checker=True, **render)


# --- MuJoCo state (for exact resume) ------------------------------------------------------------


def env_state(env) -> dict:
    """Everything needed to continue an episode exactly: MuJoCo integration state, TimeLimit, RNG."""
    import mujoco

    u = env.unwrapped
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, spec))
    mujoco.mj_getState(u.model, u.data, state, spec)
    return {"mj": state, "elapsed": _time_limit(env)._elapsed_steps, "rng": u.np_random.bit_generator.state}


def set_env_state(env, s: dict) -> None:
    import mujoco

    u = env.unwrapped
    mujoco.mj_setState(u.model, u.data, s["mj"], mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(u.model, u.data)
    _time_limit(env)._elapsed_steps = s["elapsed"]
    u.np_random.bit_generator.state = s["rng"]


def _time_limit(env):
    import gymnasium as gym

    e = env
    while not isinstance(e, gym.wrappers.TimeLimit):
        e = e.env
    return e


# --- running statistics (gymnasium's wrappers, in numpy) ----------------------------------------


class RunningMeanStd:
    """gymnasium.wrappers.utils.RunningMeanStd for one sample at a time.

    ``dtype`` is the initial dtype (NormalizeObservation uses float32, which makes the first update
    round in float32; later updates run in float64), kept for bit-equality with gymnasium.
    """

    def __init__(self, shape: tuple[int, ...] = (), dtype=np.float64):
        self.mean = np.zeros(shape, dtype)
        self.var = np.ones(shape, dtype)
        self.count = 1e-4

    def update_one(self, x) -> None:
        delta = x - self.mean
        tot = self.count + 1
        self.mean = self.mean + delta / tot
        self.var = (self.var * self.count + delta * delta * self.count / tot) / tot
        self.count = tot

    def state_dict(self) -> dict:
        return {"mean": np.array(self.mean), "var": np.array(self.var), "count": self.count}

    def load_state_dict(self, s: dict) -> None:
        self.mean, self.var, self.count = np.array(s["mean"]), np.array(s["var"]), s["count"]


def normalize_obs(rms: RunningMeanStd, obs: np.ndarray, clip: float, update: bool = True) -> np.ndarray:
    """NormalizeObservation (eps 1e-8, float32) then TransformObservation clip."""
    if update:
        rms.update_one(obs)
    return np.clip(np.float32((obs - rms.mean) / np.sqrt(rms.var + 1e-8)), -clip, clip)


# --- deterministic evaluation of a saved policy ----------------------------------------------


def actor_mean_np(params: list[np.ndarray], obs: np.ndarray) -> np.ndarray:
    """The actor mean in numpy (float32), for one observation or a batch; ``params`` as
    ``method.Agent.numpy_actor`` returns them (W1, b1, W2, b2, W3, b3)."""
    w1, b1, w2, b2, w3, b3 = params[:6]
    h = np.tanh(obs @ w1 + b1)
    h = np.tanh(h @ w2 + b2)
    return h @ w3 + b3


def evaluate_policy(policy: dict[str, np.ndarray], env_id: str, episodes: int, seed: int,
                    obs_clip: float = 10.0, frames: int = 0, frame_every: int = 1,
                    size: tuple[int, int] = (320, 240)) -> tuple[np.ndarray, list]:
    """Deterministic (mean-action) episodes of a saved policy with frozen obs statistics.

    Returns the raw episode returns and, when ``frames`` > 0, up to ``frames`` rgb frames of the
    first episode, one every ``frame_every`` steps, ``size`` = (width, height) pixels (needs a
    MuJoCo GL backend, see ``render.py``).
    """
    render = {"render_mode": "rgb_array", "width": size[0], "height": size[1]} if frames else {}
    env = make_env(env_id, **render)
    params = [policy[k] for k in ("w1", "b1", "w2", "b2", "w3", "b3")]
    mean, scale = policy["obs_mean"], np.sqrt(policy["obs_var"] + 1e-8)
    low, high = env.action_space.low, env.action_space.high
    returns, images = [], []
    for ep in range(episodes):
        raw, _ = env.reset(seed=seed + ep)
        total, done, t = 0.0, False, 0
        while not done:
            obs = np.clip(np.float32((raw - mean) / scale), -obs_clip, obs_clip)
            raw, r, term, trunc, _ = env.step(np.clip(actor_mean_np(params, obs), low, high))
            total += r
            done = term or trunc
            if ep == 0 and len(images) < frames and t % frame_every == 0:
                images.append(env.render())
            t += 1
        returns.append(total)
    env.close()
    return np.array(returns), images
