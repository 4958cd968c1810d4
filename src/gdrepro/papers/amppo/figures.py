"""AM-PPO figures from metrics.json; each ``draw_*`` fills the one row of its grid (one panel per env).

The paper plots episodic return against environment steps for PPO and AM-PPO and discusses the
controller (alpha, saturation) and gradient clipping; CleanRL's published 1M-step returns (-v4)
are drawn as bands at paper scale, our probe's 100k-step Hopper-v5 numbers at default scale.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_band, reference_line
from gdrepro.verdicts import seed_interval

PROBE_100K_HOPPER = {"ppo": 727.5, "amppo": 652.5}  # note: mean of 2 seeds, CleanRL-style loop, Hopper-v5
SHORT = {"ppo": "PPO", "amppo": "AM-PPO", "amppo_batchnorm": "AM-PPO\nfull-batch norm"}  # tick labels


def _arr(x) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x], dtype=float)


def draw_learning_curves(axes, metrics, envs, methods, labels, key, fig, **_) -> None:
    """Mean return of the last 10 training episodes vs env steps, mean ± sd over seeds; the last
    third of training (read by C1-noninferior-hopper-last-third and C5) is shaded."""
    fig.set_layout_engine("constrained")  # legends sit below the panels
    for ax, env_id in zip(axes[0], envs, strict=True):
        for x in methods:
            c = metrics["details"]["curves"][f"{env_id}__{x}"]
            steps, mean, sd = _arr(c["steps"]), _arr(c["mean"]), _arr(c["sd"])
            (line,) = ax.plot(steps, mean, label=f"{labels[x]}, mean ± sd")
            ax.fill_between(steps, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        ax.axvspan(steps[-1] * 2 / 3, steps[-1], color="#999999", alpha=0.1, lw=0, label="last third of training")
        e = key(env_id)
        if metrics["scale"] == "paper" and e in metrics["details"]["cleanrl"]:
            m, sd = metrics["details"]["cleanrl"][e]
            reference_band(ax, m - sd, m + sd, "CleanRL PPO 1M (-v4), mean ± sd")
        elif e == "hopper" and metrics["scale"] == "default":
            reference_line(ax, PROBE_100K_HOPPER["ppo"], "probe: CleanRL-style PPO at 100k")
        ax.set_xlim(0, steps[-1])
        ax.set_ylim(bottom=0)
        ax.set(xlabel="environment steps", ylabel="episodic return (last 10 episodes)",
               title=f"{env_id}: PPO vs AM-PPO ({len(metrics['seeds'])} seeds)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def draw_controller(axes, metrics, envs, methods, labels, fig, **_) -> None:
    """alpha_ema (log scale) and saturation: s_ema (the controller's full-batch estimate) and the share
    of minibatch entries with |Z| > tau at gating (minibatch norm for the paper's AM-PPO, full-batch
    norm for the variant): the gap between the two orange-green pairs is the minibatch-norm trap."""
    fig.set_layout_engine("constrained")  # legends sit below the panels
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


def _band(ax, d: dict, label: str, **style) -> None:
    """A per-iteration diagnostic: mean over seeds with a ± sd band."""
    mean, sd = _arr(d["mean"]), _arr(d["sd"])
    it = np.arange(1, len(mean) + 1)
    (line,) = ax.plot(it, mean, label=label, **style)
    ax.fill_between(it, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)


def draw_clipping(axes, metrics, envs, methods, labels, key, fig, **_) -> None:
    """Top row: PPO's ratio clip fraction per iteration (the official code's clipfrac, claim
    C2-reduced-ratio-clipping); bottom row: the median pre-clip gradient norm against max_grad_norm
    (C2-reduced-clipping, the second reading). Mean ± sd over seeds; the legends give run means."""
    fig.set_layout_engine("constrained")  # legends sit below the panels
    m = metrics["metrics"]
    for col, env_id in enumerate(envs):
        e = key(env_id)
        top, bottom = axes[0][col], axes[1][col]
        for x in methods:
            d = metrics["details"]["diagnostics"][f"{env_id}__{x}"]
            _band(top, d["ratio_clipfrac"], f"{labels[x]}: mean {m[f'ratio_clipfrac_{e}_{x}']['value']:.3f}")
            _band(bottom, d["grad_norm_median"],
                  f"{labels[x]}: clipped in {100 * m[f'clip_fraction_{e}_{x}']['value']:.1f}% of updates")
        top.set_ylim(bottom=0)
        top.set(xlabel="PPO iteration", ylabel="ratio clip fraction (|r - 1| > 0.2)",
                title=f"{env_id}: PPO ratio clipping")
        reference_line(bottom, metrics["details"]["max_grad_norm"], "max_grad_norm 0.5")
        bottom.set_ylim(bottom=0)
        bottom.set(xlabel="PPO iteration", ylabel="pre-clip gradient norm (median)",
                   title=f"{env_id}: gradient-norm clipping")
        for ax in (top, bottom):
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)


def draw_evaluation(axes, metrics, envs, methods, labels, fig, **_) -> None:
    """Deterministic evaluation return of the saved policies (bars: mean over seeds with its 95%
    t-interval, dots: seeds), beside the final training return (mean of the last 10 episodes)."""
    fig.set_layout_engine("constrained")  # legends sit below the panels
    for ax, env_id in zip(axes[0], envs, strict=True):
        for i, x in enumerate(methods):
            c = metrics["details"]["curves"][f"{env_id}__{x}"]
            ev, fin = _arr(c["eval_per_seed"]), _arr(c["final_per_seed"])
            est = seed_interval(ev[np.isfinite(ev)].tolist())
            err = None if est.low is None else [[est.mean - est.low], [est.high - est.mean]]
            ax.bar(i, np.nanmean(ev), 0.6, yerr=err, capsize=3, color=f"C{i}", alpha=0.7)
            if i == 0:  # one neutral legend entry for the bars; the tick labels name the methods
                ax.bar(i, 0, 0, color="0.6", alpha=0.7, label="deterministic evaluation: mean, 95% interval")
            ax.plot(np.full(len(ev), i) + np.linspace(-0.15, 0.15, len(ev)), ev, "k.", ms=4,
                    label="one seed" if i == 0 else None)
            ax.plot(i + 0.4, np.nanmean(fin), "kx", label="training return (last 10 ep.), mean" if i == 0 else None)
        ax.set_xticks(range(len(methods)), [labels[x].replace(" (", "\n(") for x in methods], fontsize=7)
        ax.set_ylim(bottom=0)
        ax.set(ylabel="return", title=f"{env_id}: deterministic evaluation of saved policies")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)


def _seeds_with_interval(ax, x: float, values: np.ndarray, color: str, label: str) -> None:
    """Per-seed dots and the mean with its 95% t-interval (the interval the claims are judged on)."""
    values = values[np.isfinite(values)]
    ax.plot(np.full(len(values), x) + np.linspace(-0.12, 0.12, len(values)), values, ".", color=color, ms=5)
    est = seed_interval(values.tolist())
    if est.low is not None:
        ax.errorbar(x + 0.22, est.mean, yerr=[[est.mean - est.low], [est.high - est.mean]], fmt="o", color=color,
                    capsize=3, ms=4, label=label)


def draw_per_seed(axes, metrics, envs, methods, labels, key, fig, **_) -> None:
    """Left: per-seed AM-PPO/PPO return ratios (paired: same initial weights and env seed), for the
    final return (C1-noninferior-hopper) and the last-third mean (C1-...-last-third), with the 0.8
    margin and the 0.7 tolerance boundary. Right: per-seed slope of the training return over the
    last third (C5). Dots: seeds; circle and bar: mean and 95% t-interval over seeds."""
    fig.set_layout_engine("constrained")  # legends sit below the panels
    for row, env_id in enumerate(envs):
        left, right = axes[row][0], axes[row][1]
        curves = {x: metrics["details"]["curves"][f"{env_id}__{x}"] for x in methods}
        ticks = []
        for i, x in enumerate(m for m in methods if m != "ppo"):
            for j, (field, what) in enumerate((("final_per_seed", "final"), ("last_third_per_seed", "last third"))):
                ratio = _arr(curves[x][field]) / _arr(curves["ppo"][field])
                _seeds_with_interval(left, 2 * i + j, ratio, f"C{j}",
                                     {"final": "final return (last 10 episodes)",
                                      "last third": "mean return over the last third"}[what] if i == 0 else None)
                ticks.append(f"{what}\n{SHORT[x]}")
        left.axhline(1.0, color="k", lw=0.8)
        reference_line(left, 0.8, "non-inferiority margin 0.8")
        left.axhline(0.7, color=PAPER_COLOR, ls=":", lw=1, label="margin less tolerance 0.7")
        left.set_xticks(range(len(ticks)), ticks, fontsize=7)
        left.set(ylabel="AM-PPO / PPO return (per seed)", title=f"{env_id}: paired return ratios")
        left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
        for i, x in enumerate(methods):
            _seeds_with_interval(right, i, _arr(curves[x]["slope_per_seed"]), f"C{i}",
                                 "circle and bar: mean, 95% interval" if i == 0 else None)
        right.axhline(0.0, color="k", lw=0.8)
        right.set_xticks(range(len(methods)), [SHORT[x] for x in methods], fontsize=7)
        right.set(ylabel="return per 10k steps", title=f"{env_id}: slope over the last third")
        right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
