"""AM-PPO figures from metrics.json; each ``draw_*`` fills the one row of its grid (one panel per env).

The paper plots episodic return against environment steps for PPO and AM-PPO and discusses the
controller (alpha, saturation) and gradient clipping; CleanRL's published 1M-step returns (-v4)
are drawn as bands at paper scale, our probe's 100k-step Hopper-v5 numbers at default scale.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import reference_band, reference_line

PROBE_100K_HOPPER = {"ppo": 727.5, "amppo": 652.5}  # note: mean of 2 seeds, CleanRL-style loop, Hopper-v5


def _arr(x) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x], dtype=float)


def draw_learning_curves(axes, metrics, envs, methods, labels, key, **_) -> None:
    """Mean return of the last 10 training episodes vs env steps, mean ± sd over seeds."""
    for ax, env_id in zip(axes[0], envs, strict=True):
        for x in methods:
            c = metrics["details"]["curves"][f"{env_id}__{x}"]
            steps, mean, sd = _arr(c["steps"]), _arr(c["mean"]), _arr(c["sd"])
            (line,) = ax.plot(steps, mean, label=labels[x])
            ax.fill_between(steps, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        e = key(env_id)
        if metrics["scale"] == "paper" and e in metrics["details"]["cleanrl"]:
            m, sd = metrics["details"]["cleanrl"][e]
            reference_band(ax, m - sd, m + sd, "CleanRL PPO 1M (-v4), mean ± sd")
        elif e == "hopper" and metrics["scale"] == "default":
            reference_line(ax, PROBE_100K_HOPPER["ppo"], "probe: CleanRL-style PPO at 100k")
        ax.set(xlabel="environment steps", ylabel="episodic return (last 10 episodes)",
               title=f"{env_id}: PPO vs AM-PPO ({len(metrics['seeds'])} seeds)")
        ax.legend(fontsize=7)


def draw_controller(axes, metrics, envs, methods, labels, **_) -> None:
    """alpha_ema (log scale) and saturation: s_ema (the controller's full-batch estimate) and the share
    of minibatch entries with |Z| > tau at gating (minibatch norm for the paper's AM-PPO, full-batch
    norm for the variant): the gap between the two orange-green pairs is the minibatch-norm trap."""
    am = metrics["details"]["am"]
    for ax, env_id in zip(axes[0], envs, strict=True):
        twin = ax.twinx()
        for x, style in (("amppo", "-"), ("amppo_batchnorm", "--")):
            if x not in methods:
                continue
            d = metrics["details"]["diagnostics"][f"{env_id}__{x}"]
            it = np.arange(1, len(d["alpha"]["mean"]) + 1)
            ax.plot(it, _arr(d["alpha"]["mean"]), "k" + style, label=f"alpha, {labels[x]}")
            sat = d["sat_mb" if x == "amppo" else "sat_batch"]["mean"]
            twin.plot(it, _arr(sat), style, color="#D55E00", label=f"|Z|>tau at gating, {labels[x]}")
            twin.plot(it, _arr(d["s_ema"]["mean"]), style, color="#009E73", label=f"s_ema, {labels[x]}")
        twin.axhline(am["p_star"], color="#555555", ls=":", lw=1, label="p* = 0.10")
        ax.set_yscale("log")
        ax.set(xlabel="PPO iteration", ylabel="alpha_ema", title=f"{env_id}: AM-PPO controller (mean over seeds)")
        twin.set_ylabel("saturated fraction")
        twin.set_ylim(0, 1)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)


def draw_clipping(axes, metrics, envs, methods, labels, key, **_) -> None:
    """Median pre-clip gradient norm per iteration; legend: share of updates where clipping fired."""
    for ax, env_id in zip(axes[0], envs, strict=True):
        for x in methods:
            d = metrics["details"]["diagnostics"][f"{env_id}__{x}"]
            it = np.arange(1, len(d["grad_norm_median"]["mean"]) + 1)
            frac = metrics["metrics"][f"clip_fraction_{key(env_id)}_{x}"]["value"]
            ax.plot(it, _arr(d["grad_norm_median"]["mean"]), label=f"{labels[x]}: clipped {100 * frac:.1f}%")
        reference_line(ax, metrics["details"]["max_grad_norm"], "max_grad_norm 0.5")
        ax.set_yscale("log")
        ax.set(xlabel="PPO iteration", ylabel="pre-clip gradient norm (median)",
               title=f"{env_id}: gradient-norm clipping")
        ax.legend(fontsize=7)


def draw_evaluation(axes, metrics, envs, methods, labels, **_) -> None:
    """Deterministic evaluation return of the saved policies (bars, ± sd over seeds), seeds as dots."""
    for ax, env_id in zip(axes[0], envs, strict=True):
        for i, x in enumerate(methods):
            c = metrics["details"]["curves"][f"{env_id}__{x}"]
            ev, fin = _arr(c["eval_per_seed"]), _arr(c["final_per_seed"])
            ax.bar(i, np.nanmean(ev), 0.6, yerr=np.nanstd(ev), capsize=3, label=labels[x] if i == 0 else None,
                   color=f"C{i}", alpha=0.7)
            ax.plot(np.full(len(ev), i) + np.linspace(-0.15, 0.15, len(ev)), ev, "k.", ms=4)
            ax.plot(i + 0.4, np.nanmean(fin), "kx", label="training return (last 10 ep.)" if i == 0 else None)
        ax.set_xticks(range(len(methods)), [labels[x].replace(" (", "\n(") for x in methods], fontsize=7)
        ax.set(ylabel="return", title=f"{env_id}: deterministic evaluation of saved policies")
        ax.legend(fontsize=7)

