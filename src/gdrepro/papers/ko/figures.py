"""The KO figures, drawn from metrics.json. Each ``draw_*`` fills a row of axes.

The paper's figures plot weight correlation (condensation) along training for KO and its base
optimizer, and accuracy tables; no numbers were recoverable, so the paper's statements are drawn
as reference lines where they are quantitative ("comparable cost": ratio 1).
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import reference_line


def _arm(metrics: dict, name: str) -> dict | None:
    return next((a for a in metrics["details"]["arms"] if a["arm"] == name), None)


def _curve(ax, metrics: dict, name: str, label: str, style: str = "-") -> None:
    c = metrics["details"]["curves"].get(name)
    if c is None:
        return
    steps, corr, sd = np.array(c["steps"]), np.array(c["corr"]), np.array(c["corr_sd"])
    (line,) = ax.plot(steps, corr, style, label=label)
    ax.fill_between(steps, corr - sd, corr + sd, color=line.get_color(), alpha=0.15, lw=0)


def draw_condensation(axes, metrics, **_) -> None:
    """Weight correlation (mean |cos| of weight rows, averaged over layers) vs step, small init."""
    s = metrics["settings"]
    panels = (
        ("mlp", "sgd", ("base", "ko", "ko_mean", "ko_hard"), "MLP, SGD"),
        ("mlp", "adam", ("base", "ko", "ko_mean"), "MLP, Adam"),
        ("cnn", "sgd", ("base", "ko"), "CNN, SGD"),
    )
    labels = {"base": "base optimizer", "ko": f"KO soft/thresh γ={s['gamma']:g}",
              "ko_mean": f"KO soft/mean γ={s['gamma_mean']:g}", "ko_hard": f"KO hard γ={s['gamma_hard']:g}"}
    for ax, (task, base, variants, title) in zip(axes, panels, strict=True):
        for v, style in zip(variants, ("k-", "-", "--", ":"), strict=False):
            _curve(ax, metrics, f"{task}-small-{base}-{v}", labels[v], style)
        ax.set(xlabel="training step", ylabel="weight correlation",
               title=f"Condensation, MNIST-1D {title}, init x{s['init_scale']:g}")
        ax.legend(fontsize=7)


def draw_accuracy(axes, metrics, **_) -> None:
    """Test accuracy of base vs KO at standard initialisation, per task and base optimizer."""
    arms = metrics["details"]["arms"]
    pairs = sorted({a["arm"].rsplit("-", 1)[0] for a in arms if "-standard-" in a["arm"]})
    ax = axes
    x = np.arange(len(pairs))
    for shift, variant, label in ((-0.2, "base", "base optimizer"), (0.2, "ko", "KO (soft/thresh)")):
        rows = [_arm(metrics, f"{p}-{variant}") for p in pairs]
        ax.bar(x + shift, [r["test_acc"] for r in rows], 0.4, yerr=[r["test_acc_sd"] for r in rows],
               capsize=2, label=label)
    ax.set_xticks(x, [p.replace("-standard-", "\n") for p in pairs], fontsize=7)
    lo = min(a["test_acc"] for a in arms if "-standard-" in a["arm"])
    ax.set(ylabel="test accuracy (%)", ylim=(max(0, lo - 10), 108),
           title="Accuracy at standard initialisation (mean ± sd over seeds)")
    ax.legend(loc="upper center", ncol=2)


def draw_sweep(axes, metrics, **_) -> None:
    """coll_coef sweep (soft/thresh KO on SGD, MLP, small init): correlation and accuracy vs gamma."""
    rows = sorted(metrics["details"]["sweep"], key=lambda r: r["gamma"])
    gammas = [0.0 if r["name"].endswith("-base") else r["gamma"] for r in rows]
    found = [_arm(metrics, r["name"]) for r in rows]
    order = np.argsort(gammas)
    g = np.array(gammas)[order]
    axes[0].plot(g, [found[i]["weight_corr"] for i in order], "o-")
    axes[0].set(xlabel=r"coll_coef $\gamma_c$ (0 = base SGD)", ylabel="final weight correlation",
                title="coll_coef sweep (MLP, SGD, soft/thresh): condensation")
    axes[1].plot(g, [found[i]["test_acc"] for i in order], "s-", color="C1")
    axes[1].set(xlabel=r"coll_coef $\gamma_c$ (0 = base SGD)", ylabel="test accuracy (%)",
                title="coll_coef sweep: accuracy (small init)")


def draw_overhead(axes, metrics, **_) -> None:
    """Wall time per training iteration of KO over its base optimizer (MLP, interleaved timing)."""
    perf = metrics["performance"]
    ax = axes
    pairs = (("sgd_ko", "sgd_base", "SGD + KO soft"), ("sgd_ko_hard", "sgd_base", "SGD + KO hard"),
             ("adam_ko", "adam_base", "Adam + KO soft"))
    ratios = [perf[f"ms_per_iteration_{a}"] / perf[f"ms_per_iteration_{b}"] for a, b, _ in pairs]
    ax.bar(range(len(pairs)), ratios, 0.5)
    for i, r in enumerate(ratios):
        ax.text(i, r, f"{r:.2f}x", ha="center", va="bottom", fontsize=8)
    reference_line(ax, 1.0, "paper: cost comparable to the base")
    ax.set_xticks(range(len(pairs)), [p[2] for p in pairs])
    ax.set(ylabel="time per iteration, KO / base", ylim=(0, 1.35 * max(ratios + [1.0])),
           title="Step-time overhead, MNIST-1D MLP (this machine, CPU)")
    ax.legend(loc="upper center")
