"""AM-PPO experiments: prepare -> train (one job per seed) -> evaluate -> figures.

One train job runs, for its seed and every env of the scale, each method in ``settings.methods``:
plain PPO (CleanRL semantics), AM-PPO as in the paper / official code (minibatch-norm gating) and
AM-PPO with the calibrated full-batch norm at gating; then the saved policies are reloaded and run
for deterministic evaluation episodes (the "sampling" part), and the throughput of our trainer
is timed side by side with a CleanRL-style loop (``reference.py``) in the same process.
Every iteration is checkpointed at ``ctx.checkpoint_path``; a killed job resumes there.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gdrepro import checkpoint, runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.amppo.envs import evaluate_policy, make_env
from gdrepro.runtime import log, rng, seed_sequence, torch_generator

METHODS = ("ppo", "amppo", "amppo_batchnorm")
LABELS = {"ppo": "PPO (CleanRL semantics)", "amppo": "AM-PPO (paper: minibatch norm)",
          "amppo_batchnorm": "AM-PPO (full-batch norm)"}
CHECKPOINT_FORMAT = 3  # + last-third return and slope per run (round 2); older checkpoints start afresh
DIAG_KEYS = ("clip_fraction", "grad_norm_median", "grad_norm_mean", "ratio_clipfrac", "loss", "v_loss",
             "alpha", "s_ema", "s_obs", "sat_mb", "sat_batch", "gain_mb", "gain_batch", "corr_mb", "corr_batch")
POLICY_KEYS = ("w1", "b1", "w2", "b2", "w3", "b3", "logstd", "obs_mean", "obs_var")


@dataclass(frozen=True)
class AMPPOSettings:
    """Numbers of one scale; scales change these, never the code path."""

    envs: tuple[str, ...]
    total_steps: int  # env steps per (env, method, seed) run
    methods: tuple[str, ...] = METHODS
    num_steps: int = 2048  # rollout length (1 env), CleanRL
    num_minibatches: int = 32
    update_epochs: int = 10
    last_episodes: int = 10  # final return = mean of the last 10 training episodes
    curve_points: int = 25
    eval_episodes: int = 5  # deterministic evaluation episodes per trained policy
    reference_iterations: int = 2  # CleanRL-style iterations timed beside ours (throughput)
    gif_frames: int = 60  # rollout GIF of seed 0's AM-PPO policy (one frame per 8 steps; 0: none)

    def __post_init__(self) -> None:
        if not set(self.methods) <= set(METHODS) or "ppo" not in self.methods:
            raise ValueError(f"methods {self.methods} must include 'ppo' and lie in {METHODS}")
        if self.total_steps < self.num_steps or self.num_steps % self.num_minibatches:
            raise ValueError("need total_steps >= num_steps and num_minibatches | num_steps")

    def ppo_config(self):
        from gdrepro.papers.amppo.method import PPOConfig

        return PPOConfig(num_steps=self.num_steps, num_minibatches=self.num_minibatches,
                         update_epochs=self.update_epochs)


SETTINGS = {
    "smoke": AMPPOSettings(envs=("Hopper-v5",), total_steps=2048, num_steps=512, num_minibatches=8,
                           update_epochs=2, curve_points=4, eval_episodes=2, reference_iterations=1,
                           gif_frames=10),
    "default": AMPPOSettings(envs=("Hopper-v5",), total_steps=100_000),
    # the paper's recipe: PPO vs AM-PPO (the full-batch-norm arm is our diagnostic, default scale only)
    "paper": AMPPOSettings(envs=("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4"), total_steps=1_000_000,
                           methods=("ppo", "amppo"), curve_points=50, eval_episodes=10),
}

CLEANRL = {"halfcheetah": (1442.6, 46.0), "hopper": (2383.0, 272.0), "walker2d": (2288.0, 572.0)}
"""CleanRL ppo_continuous_action at 1M steps, 3 seeds, -v4 (its docs): mean, sd."""


def env_key(env_id: str) -> str:
    """``Hopper-v5`` -> ``hopper`` (metric names)."""
    return env_id.split("-")[0].lower()


# --- per-seed training ------------------------------------------------------------------------------


def _trainer(s: AMPPOSettings, env_id: str, method: str, seed: int):
    from gdrepro.papers.amppo import method as M

    return M.PPOTrainer(env_id, s.total_steps, M.make_transform(method), s.ppo_config(),
                        rng("amppo", "run", env_id, method, seed),
                        torch_generator("amppo", "init", env_id, seed),  # same init for every method
                        int(seed_sequence("amppo", "env", env_id, seed).generate_state(1)[0] % 2**31))


def _curve(episodes: np.ndarray, grid: np.ndarray, last: int) -> np.ndarray:
    """Mean return of the last ``last`` episodes finished by each grid step (nan before the first)."""
    out = np.full(len(grid), np.nan)
    for i, g in enumerate(grid):
        done = episodes[episodes[:, 0] <= g]
        if len(done):
            out[i] = done[-last:, 1].mean()
    return out


def last_third(episodes: np.ndarray, total_steps: int) -> tuple[float, float]:
    """Mean return and least-squares slope (return per 10k env steps) of the training episodes that
    end in the last third of a run of ``total_steps`` (``episodes``: rows of step at end, return, length)."""
    late = episodes[episodes[:, 0] > total_steps * 2 / 3]
    mean = float(late[:, 1].mean()) if len(late) else float("nan")
    slope = float(np.polyfit(late[:, 0] / 1e4, late[:, 1], 1)[0]) if len(np.unique(late[:, 0])) >= 3 else float("nan")
    return mean, slope


def _invariants(trainer, s: AMPPOSettings) -> dict[str, float]:
    """Claim 3 on the run's last advantage batch: sign kept, |A_mod| <= kappa |A|, frozen pass is pure."""
    tf = trainer.transform
    adv = trainer.last_adv.reshape(s.num_minibatches, -1)
    before = tf.state_dict()
    mod = tf.gate(adv)
    nz = adv != 0
    return {
        "inv_sign_mismatch": float((np.sign(mod.numpy()) != np.sign(adv.numpy()))[nz.numpy()].sum()),
        "inv_bound_excess": float(max(0.0, float((mod.abs() - tf.cfg.kappa * adv.abs()).max()))),
        "inv_frozen_change": float(sum(abs(before[k] - tf.state_dict()[k]) for k in ("alpha", "s_ema"))),
    }


def _run_method(ctx: StageContext, env_id: str, method: str, state: dict) -> dict:
    """Train one (env, method) run, resuming from ``state["trainer"]`` when present; plain arrays."""
    from gdrepro.papers.amppo import method as M

    s: AMPPOSettings = ctx.settings
    trainer = _trainer(s, env_id, method, ctx.seed)
    diags: list[dict] = []
    seconds = 0.0
    if state.get("current") == (env_id, method):
        trainer.load_state_dict(state["trainer"])
        diags, seconds = state["diags"], state["seconds"]
        log(f"seed {ctx.seed} {env_id} {method}: resumed at iteration {trainer.iteration}/{trainer.num_iterations}")
    while trainer.iteration < trainer.num_iterations:
        start = time.perf_counter()
        try:
            diag = trainer.iterate()
        except M.NonFiniteError as error:
            raise GdreproError(f"amppo {env_id} {method} seed {ctx.seed}: {error}; run stopped") from error
        seconds += time.perf_counter() - start
        diags.append(diag)
        state.update(current=(env_id, method), trainer=trainer.state_dict(), diags=diags, seconds=seconds)
        checkpoint.save(ctx.checkpoint_path, state)
        if trainer.iteration % max(1, trainer.num_iterations // 5) == 0:
            ep = trainer.episodes[-s.last_episodes:]
            log(f"seed {ctx.seed} {env_id} {method}: iter {trainer.iteration}/{trainer.num_iterations}, "
                f"return {np.mean([e[1] for e in ep]) if ep else float('nan'):.1f}, "
                f"clip {diag['clip_fraction']:.2f}" + (f", alpha {diag['alpha']:.1f}, sat_mb {diag['sat_mb']:.2f}"
                                                       if "alpha" in diag else ""))
    episodes = np.array(trainer.episodes, dtype=float).reshape(-1, 3)
    grid = np.linspace(0, trainer.global_step, s.curve_points + 1)[1:]
    out = {
        "episodes": episodes,
        "grid": grid,
        "curve": _curve(episodes, grid, s.last_episodes),
        "final_return": np.array(episodes[-s.last_episodes:, 1].mean() if len(episodes) else np.nan),
        **dict(zip(("last_third_return", "last_third_slope"),
                   map(np.array, last_third(episodes, trainer.global_step)), strict=True)),
        "steps_per_second": np.array(trainer.global_step / max(seconds, 1e-9)),
    }
    out["diag"] = {k: np.array([d.get(k, np.nan) for d in diags]) for k in DIAG_KEYS}
    out["policy"] = dict(trainer.policy())
    if method != "ppo":
        out |= {k: np.array(v) for k, v in _invariants(trainer, s).items()}
    return out


def load_policy(run: dict, env_id: str, method: str) -> dict[str, np.ndarray]:
    """The saved policy of (env, method) from a seed's results."""
    return {k: run["train"][env_id][method]["policy"][k] for k in POLICY_KEYS}


INVARIANTS = ("inv_bound_excess", "inv_frozen_change", "inv_sign_mismatch")
"""AM-PPO's invariant violations (0 when the controller behaves): the worst seed counts."""


def _pooling(result: dict) -> dict:
    """One (env, method) run's arrays with their pooling over seeds: means, except the raw episodes
    and the policy (per seed only) and the invariant violations (the worst seed)."""
    out = {k: runs.mean(result[k]) for k in ("grid", "curve", "final_return", "last_third_return", "last_third_slope",
                                             "steps_per_second", "eval_returns")}
    out |= {"episodes": runs.own(result["episodes"]),
            "diag": {k: runs.mean(v) for k, v in result["diag"].items()},
            "policy": {k: runs.own(v) for k, v in result["policy"].items()}}
    out |= {k: runs.worst(result[k]) for k in INVARIANTS if k in result}
    return out


def throughput(s: AMPPOSettings, env_id: str, seed: int) -> dict[str, np.ndarray]:
    """Env steps per second of our PPO and of the CleanRL-style loop, interleaved, same process."""
    if s.reference_iterations < 1:
        return {}
    from gdrepro.papers.amppo.reference import CleanRLStyle

    ref = CleanRLStyle(env_id, s.ppo_config(), seed)
    ours = _trainer(s, env_id, "ppo", seed)
    t_ref = t_ours = 0.0
    for _ in range(s.reference_iterations):
        start = time.perf_counter()
        ref.iterate()
        t_ref += time.perf_counter() - start
        start = time.perf_counter()
        ours.iterate()
        t_ours += time.perf_counter() - start
    steps = s.reference_iterations * s.num_steps
    return {"ours": np.array(steps / t_ours), "cleanrl_style": np.array(steps / t_ref)}


def run_seed(ctx: StageContext) -> dict:
    """Every (env, method) run of this seed, checkpointed per iteration; evaluation; throughput.

    ``{"train": {env: {method: ...}}, "throughput": {env: {"ours", "cleanrl_style"}}}``; see
    :func:`_pooling` for how each quantity pools over seeds.
    """
    s: AMPPOSettings = ctx.settings
    path = ctx.checkpoint_path
    state = checkpoint.load(path) or {}
    if state.get("stamp") != ctx.stamp or state.get("format") != CHECKPOINT_FORMAT:
        state = {"stamp": ctx.stamp, "format": CHECKPOINT_FORMAT, "done": {}}
    trained: dict[str, dict[str, dict]] = {env_id: {} for env_id in s.envs}
    for env_id in s.envs:
        for method in s.methods:
            key = (env_id, method)
            if key not in state["done"]:
                with ctx.tracked_run(method, asdict(s) | {"env": env_id}) as run:
                    result = _run_method(ctx, env_id, method, state)
                    run.log_curve(f"{env_id}.return", result["grid"].astype(int), np.nan_to_num(result["curve"]))
                    run.log_metrics({f"{env_id}.final_return": float(result["final_return"]),
                                     f"{env_id}.clip_fraction": float(np.mean(result["diag"]["clip_fraction"]))})
                state["done"][key] = result
                state.pop("trainer", None)
                state["current"] = None
                checkpoint.save(path, state)
            trained[env_id][method] = dict(state["done"][key])
    # sampling: reload each saved policy and run deterministic evaluation episodes
    for env_id in s.envs:
        for method in s.methods:
            result = trained[env_id][method]
            returns, _ = evaluate_policy(result["policy"], env_id, s.eval_episodes, seed=10_000 + 100 * ctx.seed)
            result["eval_returns"] = returns
            log(f"seed {ctx.seed} {env_id} {method}: final {float(result['final_return']):.1f}, "
                f"deterministic eval {returns.mean():.1f}")
    results = {"train": {env_id: {method: _pooling(result) for method, result in methods.items()}
                         for env_id, methods in trained.items()}}
    timed = {env_id: throughput(s, env_id, ctx.seed) for env_id in s.envs}
    if any(timed.values()):
        results["throughput"] = {env_id: {k: runs.mean(v) for k, v in tp.items()} for env_id, tp in timed.items() if tp}
    return results


# --- evaluate -----------------------------------------------------------------------------------------


def compute_metrics(run: dict) -> dict[str, float]:
    """The numbers the claims read, from one seed's results (or the pooled run: mean over seeds)."""
    m: dict[str, float] = {}
    for env_id in sorted(run["train"]):
        e = env_key(env_id)
        trained = run["train"][env_id]
        methods = [x for x in METHODS if x in trained]
        for x in methods:
            r = trained[x]
            m[f"final_return_{e}_{x}"] = float(r["final_return"])
            m[f"eval_return_{e}_{x}"] = float(np.mean(r["eval_returns"]))
            m[f"last_third_return_{e}_{x}"] = float(r["last_third_return"])
            m[f"slope_last_third_{e}_{x}"] = float(r["last_third_slope"])
            m[f"clip_fraction_{e}_{x}"] = float(np.mean(r["diag"]["clip_fraction"]))
            m[f"ratio_clipfrac_{e}_{x}"] = float(np.mean(r["diag"]["ratio_clipfrac"]))
            m[f"grad_norm_{e}_{x}"] = float(np.median(r["diag"]["grad_norm_median"]))
        base = trained["ppo"]
        for x in methods[1:]:
            r = trained[x]
            suffix = "" if x == "amppo" else "_batchnorm"
            m[f"return_ratio_{e}{suffix}"] = float(r["final_return"] / base["final_return"])
            m[f"clip_fraction_diff_{e}{suffix}"] = float(np.mean(r["diag"]["clip_fraction"])
                                                         - np.mean(base["diag"]["clip_fraction"]))
            m[f"grad_norm_ratio_{e}{suffix}"] = float(np.median(r["diag"]["grad_norm_median"])
                                                      / np.median(base["diag"]["grad_norm_median"]))
            half = slice(len(r["diag"]["alpha"]) // 2, None)  # second half of training: the controller has settled
            for d in ("alpha", "s_ema", "sat_mb", "sat_batch", "gain_mb", "gain_batch", "corr_mb", "corr_batch"):
                m[f"{d}_{e}{suffix}"] = float(np.mean(r["diag"][d][half]))
            for inv in ("inv_sign_mismatch", "inv_bound_excess", "inv_frozen_change"):
                m[inv] = max(m.get(inv, 0.0), float(r[inv]))
    return m


def _json_list(x) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(x, dtype=float).ravel()]


def evaluate(ctx: StageContext) -> None:
    s: AMPPOSettings = ctx.settings
    seed_runs = ctx.runs()
    pooled = ctx.pooled()
    # pooled = mean over seeds, so a pooled ratio is a ratio of seed means (per_seed: per-seed ratios)
    metrics = across_seeds(compute_metrics, seed_runs, pooled)
    curves, diags = {}, {}
    for env_id in s.envs:
        for x in s.methods:
            per_seed = [r["train"][env_id][x] for r in seed_runs]
            curves[f"{env_id}__{x}"] = {
                "steps": _json_list(per_seed[0]["grid"]),
                "mean": _json_list(np.mean([r["curve"] for r in per_seed], axis=0)),
                "sd": _json_list(np.std([r["curve"] for r in per_seed], axis=0, ddof=1)
                                 if len(per_seed) > 1 else np.zeros(s.curve_points)),
                "eval_per_seed": _json_list([np.mean(r["eval_returns"]) for r in per_seed]),
                "final_per_seed": _json_list([r["final_return"] for r in per_seed]),
                "last_third_per_seed": _json_list([r["last_third_return"] for r in per_seed]),
                "slope_per_seed": _json_list([r["last_third_slope"] for r in per_seed])}
            diags[f"{env_id}__{x}"] = {d: {"mean": _json_list(np.mean([r["diag"][d] for r in per_seed], axis=0)),
                                           "sd": _json_list(np.std([r["diag"][d] for r in per_seed], axis=0))}
                                       for d in ("clip_fraction", "ratio_clipfrac", "grad_norm_median", "alpha", "s_ema", "sat_mb",
                                                 "sat_batch", "corr_mb", "corr_batch")}
    details = {"curves": curves, "diagnostics": diags, "cleanrl": CLEANRL,
               "am": {"p_star": 0.10, "tau": 1.25, "kappa": 2.0}, "max_grad_norm": 0.5}
    performance = {}
    for env_id in s.envs:
        e = env_key(env_id)
        for x in s.methods:
            performance[f"train_steps_per_second_{e}_{x}"] = float(
                np.mean([r["train"][env_id][x]["steps_per_second"] for r in seed_runs]))
        if env_id in seed_runs[0].get("throughput", {}):
            tp = [r["throughput"][env_id] for r in seed_runs]
            ours = float(np.mean([t["ours"] for t in tp]))
            ref = float(np.mean([t["cleanrl_style"] for t in tp]))
            performance |= {f"steps_per_second_ours_{e}": ours, f"steps_per_second_cleanrl_style_{e}": ref,
                            f"speedup_vs_cleanrl_style_{e}": ours / ref,
                            f"speedup_vs_cleanrl_style_{e}_per_seed": [float(t["ours"] / t["cleanrl_style"])
                                                                       for t in tp]}
    write_metrics(ctx, metrics, details, performance)
    log(f"wrote {ctx.metrics_path}")


# --- figures -----------------------------------------------------------------------------------------


def figure_inputs(ctx: StageContext) -> dict:
    """What the draw functions take beside metrics.json: the envs and methods of the scale, labels."""
    s: AMPPOSettings = ctx.settings
    return {"envs": s.envs, "methods": s.methods, "labels": LABELS, "key": env_key}


def extra_figures(ctx: StageContext) -> list[Path]:
    """A rollout GIF of seed 0's AM-PPO policy on the first env, when a renderer exists (``render.py``)."""
    from gdrepro.papers.amppo.render import render_rollout

    s: AMPPOSettings = ctx.settings
    gif = ctx.figures_dir / "rollout_amppo.gif"
    if s.gif_frames and render_rollout(load_policy(ctx.read_run(ctx.seeds[0]), s.envs[0], "amppo"), s.envs[0], gif,
                                       s.gif_frames):
        return [gif]
    return []


def prepare(ctx: StageContext) -> None:
    """Check that every env builds (gymnasium[mujoco]); record the design."""
    shapes = {}
    for env_id in ctx.settings.envs:
        try:
            env = make_env(env_id)
        except Exception as error:
            raise GdreproError(f"cannot build {env_id} ({type(error).__name__}: {error}); "
                               "install gymnasium[mujoco] (pip install 'gymnasium[mujoco]')") from error
        shapes[env_id] = {"obs": env.observation_space.shape[0], "act": env.action_space.shape[0]}
        env.close()
    s = ctx.settings
    ctx.write_prepared({"envs": shapes, "methods": list(s.methods),
                        "iterations": s.total_steps // s.num_steps, "steps_per_run": s.total_steps // s.num_steps * s.num_steps})

