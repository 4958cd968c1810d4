"""The UG-CLU figures, drawn from metrics.json: accuracy along each request sequence, forgetting
and privacy against both oracles, and the average gap of every method to each oracle (the
paper's tables as bars). The paper's numbers were not available; the oracles are drawn as the
references: Retrain on all held data, and the like-for-like Retrain on what the incremental
methods may keep (the replay memory plus the new task). Every bar and curve carries the 95%
t-interval over seeds."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Patch

from gdrepro.papers.clu.protocol import NAMES, ORACLES
from gdrepro.verdicts import seed_interval

SCENARIO_TITLES = {"task_aware": "task-aware (CLPU sequence)", "class": "cross-task class unlearning",
                   "samples": "random 10% sample unlearning"}
SHOWN = ("retrain", "retrain_memory", "finetune", "ga_ft", "salun", "replay", "clpu", "ugclu")
ORACLE_STYLE = {"retrain": ("k", "--"), "retrain_memory": ("#009E73", ":")}
UGCLU, BASELINE = "#D55E00", "#0072B2"
CURVE_COLORS = {"finetune": "#56B4E9", "ga_ft": "#CC79A7", "salun": "#E69F00", "replay": "#0072B2", "clpu": "#999999"}


def _interval(metrics: dict, name: str) -> tuple[float, float, float]:
    """Mean over seeds and its 95% t-interval of metric ``name`` (nan where absent)."""
    entry = metrics["metrics"].get(name, {})
    est = seed_interval(entry.get("per_seed", []))
    if est.mean is None:
        v = entry.get("value")
        return (np.nan,) * 3 if v is None else (v, v, v)
    low, high = (est.mean, est.mean) if est.low is None else (est.low, est.high)
    return est.mean, low, high


def _bars(ax, metrics: dict, key: str, names: list[str], labels: bool) -> None:
    """Horizontal bars of ``key.format(method)`` with seed intervals; a dot marks every value so
    that a zero bar shows as a dot on the axis, and the oracles are vertical reference lines."""
    stats = np.array([_interval(metrics, key.format(n)) for n in names])
    y = np.arange(len(names))[::-1]
    colors = [UGCLU if n.startswith("ugclu") else BASELINE for n in names]
    ax.barh(y, stats[:, 0], color=colors, alpha=0.8, height=0.7)
    ax.errorbar(stats[:, 0], y, xerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]], fmt="o", ms=2.5,
                color="k", elinewidth=0.8, capsize=2)
    for oracle in ORACLES:
        mean, low, high = _interval(metrics, key.format(oracle))
        color, ls = ORACLE_STYLE[oracle]
        ax.axvline(mean, color=color, ls=ls, lw=1.2)
        ax.axvspan(low, high, color=color, alpha=0.12, lw=0)
    ax.set_yticks(y, [NAMES[n] for n in names] if labels else [""] * len(names), fontsize=7)
    ax.set_xlim(left=0)
    ax.tick_params(axis="x", labelsize=7)


def _legend(fig, extra: bool = True) -> None:
    handles = [Patch(color=UGCLU, alpha=0.8, label="UG-CLU and its ablations"),
               Patch(color=BASELINE, alpha=0.8, label="baselines")]
    if extra:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color=c, ls=ls, label=NAMES[o] + " (band: seed interval)")
                    for o, (c, ls) in ORACLE_STYLE.items()]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=7, frameon=False)


def draw_requests(axes, metrics, **_) -> None:
    """Remaining-test accuracy after each request, per scenario: mean over seeds with its 95% t-interval."""
    d = metrics["details"]
    for ax, scen in zip(np.ravel(axes), SCENARIO_TITLES, strict=True):
        labels = d[f"{scen}_labels"]
        per_seed = d.get(f"{scen}_curves_per_seed", {})
        for name in SHOWN:
            x = np.arange(len(labels))
            if name in per_seed:
                curves = np.array(per_seed[name], dtype=float)
                est = [seed_interval(curves[:, r].tolist()) for r in range(curves.shape[1])]
                mean = np.array([e.mean for e in est], dtype=float)
                low = np.array([np.nan if e.low is None else e.low for e in est], dtype=float)
                high = np.array([np.nan if e.high is None else e.high for e in est], dtype=float)
            else:
                mean = low = high = np.array(d[f"{scen}_curves"][name], dtype=float)
            color, ls = ORACLE_STYLE[name] if name in ORACLE_STYLE else (CURVE_COLORS.get(name, UGCLU), "-")
            ax.plot(x, mean, color=color, ls=ls, marker="o", ms=2.5, label=NAMES[name],
                    lw=1.8 if name in (*ORACLES, "ugclu") else 0.9)
            ax.fill_between(x, low, high, color=color, alpha=0.12, lw=0)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=45)
        ax.set_title(SCENARIO_TITLES[scen], fontsize=8)
        ax.set_xlabel("request", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylim(0, 100)
    np.ravel(axes)[0].set_ylabel("remaining-test accuracy (%)", fontsize=8)
    fig = np.ravel(axes)[0].figure
    handles, names = np.ravel(axes)[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.36, wspace=0.25)


def draw_forgetting(axes, metrics, **_) -> None:
    """Forget-class test accuracy (class unlearning), forget-train accuracy and both MIAs on D_U
    (random samples), every approximate method (bars, seed intervals) against both oracles."""
    names = [n for n in metrics["details"]["methods"] if n not in ORACLES]
    panels = (("class_{}_fgt_test", "forget-class test accuracy (%)", "class unlearning"),
              ("samples_{}_fgt_train", "forget-train accuracy (%)", "random 10% samples"),
              ("samples_{}_mia", "entropy MIA: D_U judged member (%)", "random 10% samples"),
              ("samples_{}_mia_loss", "loss-threshold MIA: D_U judged member (%)", "random 10% samples"))
    for k, (ax, (key, xlabel, title)) in enumerate(zip(np.ravel(axes), panels, strict=True)):
        _bars(ax, metrics, key, names, labels=k % 2 == 0)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_title(title, fontsize=8)
    fig = np.ravel(axes)[0].figure
    _legend(fig)
    fig.subplots_adjust(left=0.27, bottom=0.15, hspace=0.45, wspace=0.08)


def draw_gap(axes, metrics, **_) -> None:
    """Average absolute gap to each oracle over remaining, new-task and forget-train/test accuracy
    and the MIA (entropy MIA for Retrain, loss-threshold MIA for the like-for-like Retrain), mean
    over the three scenarios; seed intervals."""
    names = [n for n in metrics["details"]["methods"] if n not in ORACLES]
    for k, (ax, key, title) in enumerate(zip(np.ravel(axes), ("gap_{}", "llgap_{}"),
                                             ("gap to Retrain (all held data)",
                                              "gap to Retrain (memory + new task)"), strict=True)):
        stats = np.array([_interval(metrics, key.format(n)) for n in names])
        y = np.arange(len(names))[::-1]
        ax.barh(y, stats[:, 0], color=[UGCLU if n.startswith("ugclu") else BASELINE for n in names], alpha=0.8, height=0.7)
        ax.errorbar(stats[:, 0], y, xerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]], fmt="o", ms=2.5,
                    color="k", elinewidth=0.8, capsize=2)
        ax.set_yticks(y, [NAMES[n] for n in names] if k == 0 else [""] * len(names), fontsize=7)
        ax.set_xlim(left=0)
        ax.set_xlabel("average gap (points, lower is better)", fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig = np.ravel(axes)[0].figure
    _legend(fig, extra=False)
    fig.subplots_adjust(left=0.27, bottom=0.25, wspace=0.08)
