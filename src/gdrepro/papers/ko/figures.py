"""The KO figures, drawn from metrics.json. Each ``draw_*`` fills its axes.

The paper's figures plot weight correlation (condensation) along training for KO and its base
optimizer, and accuracy tables; no numbers were recoverable, so the paper's statements are drawn
as reference lines where they are quantitative ("comparable cost": ratio 1) and our thresholds
are labelled as ours. Figures are 7 in wide, legends sit beside or below the data, and every
comparison carries its 95% interval over seeds (paired per seed where KO and its base share
initialisation and mini-batches).
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_line
from gdrepro.verdicts import seed_interval

BELOW = {"loc": "upper center", "ncol": 3, "fontsize": 8}  # a figure legend under the panels
TASKS = {"mlp": "MNIST-1D MLP", "cnn": "MNIST-1D CNN", "text": "synthetic intents", "cifar10": "CIFAR-10 ResNet-18",
         "cifar100": "CIFAR-100 ResNet-18", "imdb": "IMDB"}
BASES = {"sgd": "SGD", "adam": "Adam"}


def _labels(s: dict) -> dict[str, str]:
    """Readable names of the KO readings (R1 is the primary one)."""
    return {"base": "base optimizer", "ko": f"KO R1 soft/thresh γ={s['gamma']:g} (primary)",
            "ko_unit": f"KO R2 thresh γ={s['gamma']:g}, coef {s.get('unit_coef', 1.0):g}",
            "ko_mean": f"KO R3 soft/mean γ={s['gamma_mean']:g}", "ko_hard": f"KO hard γ={s['gamma_hard']:g}"}


STYLES = {"base": ("k", "-"), "ko": ("C0", "-"), "ko_unit": ("C1", "--"), "ko_mean": ("C2", "-."),
          "ko_hard": ("C3", ":")}


def _n_seeds(metrics: dict) -> int:
    return int(metrics["details"].get("seeds", len(metrics.get("seeds", []))))


def _curve(ax, metrics: dict, name: str, label: str, variant: str) -> None:
    c = metrics["details"]["curves"].get(name)
    if c is None:
        return
    color, ls = STYLES[variant]
    steps = np.array(c["steps"])
    mean, low, high = (np.array(c[k], dtype=float) for k in ("corr", "corr_low", "corr_high"))
    ax.plot(steps, mean, color=color, ls=ls, label=label)
    ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)


def draw_condensation(axes, metrics, **_) -> None:
    """Weight correlation (mean |cos| of weight rows, averaged over layers) vs step, both inits."""
    s = metrics["settings"]
    panels = (
        ("mlp", "small", "sgd", ("base", "ko", "ko_unit", "ko_mean", "ko_hard")),
        ("mlp", "small", "adam", ("base", "ko", "ko_mean")),
        ("cnn", "small", "sgd", ("base", "ko")),
        ("mlp", "standard", "sgd", ("base", "ko", "ko_unit", "ko_mean", "ko_hard")),
    )
    labels = _labels(s)
    for ax, (task, init, base, variants) in zip(axes.flat, panels, strict=True):
        for v in variants:
            _curve(ax, metrics, f"{task}-{init}-{base}-{v}", labels[v], v)
        where = f"init ×{s['init_scale']:g}" if init == "small" else "standard init"
        ax.set(xlabel="training step", ylabel="weight correlation", title=f"{TASKS[task]}, {BASES[base]}, {where}")
        ax.set_ylim(bottom=0)
    fig = axes.flat[0].figure
    fig.suptitle(f"Condensation: mean ± 95% interval over {_n_seeds(metrics)} seeds", fontsize=9)
    fig.tight_layout()
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, bbox_to_anchor=(0.5, 0.0), **BELOW)


READING_ORDER = ("ko", "ko_unit", "ko_mean", "ko_hard")
SHORT = {"ko": "R1", "ko_unit": "R2 coef 1", "ko_mean": "R3 mean", "ko_hard": "hard"}


def _comparisons(metrics: dict, init: str) -> list[tuple[str, str]]:
    """(KO arm, short label) of every paired comparison at ``init`` (sweep and literal sum left
    out), ordered by task, base optimizer and reading; the base optimizer's accuracy in brackets."""
    base_acc = {a["arm"]: a["test_acc"] for a in metrics["details"]["arms"]}
    keyed = []
    for name in metrics["details"]["paired"]:
        task, arm_init, base, variant = name.split("-")
        if arm_init != init or variant not in READING_ORDER:
            continue
        acc = base_acc.get(f"{task}-{init}-{base}-base")
        label = f"{TASKS[task]}, {BASES[base]}, {SHORT[variant]}" + (f" [{acc:.1f}%]" if acc is not None else "")
        keyed.append(((list(TASKS).index(task), base, READING_ORDER.index(variant)), name, label))
    return [(name, label) for _, name, label in sorted(keyed)]


def _interval_rows(ax, rows: list[tuple[str, dict]], color: str = "C0") -> None:
    """One point per row with its 95% interval (horizontal), rows top to bottom."""
    y = np.arange(len(rows))[::-1]
    for yi, (_, est) in zip(y, rows, strict=True):
        if est["mean"] is None:
            continue
        lo, hi = est["low"] if est["low"] is not None else est["mean"], est["high"] if est["high"] is not None else est["mean"]
        ax.errorbar(est["mean"], yi, xerr=[[est["mean"] - lo], [hi - est["mean"]]], fmt="o", ms=4, color=color,
                    capsize=2)
    ax.set_yticks(y, [label for label, _ in rows], fontsize=7)


def draw_accuracy(axes, metrics, **_) -> None:
    """Paired test-accuracy difference KO - base (points) with its 95% interval over seeds, at
    standard and at small initialisation, against the non-inferiority margin (ours)."""
    s, paired, n = metrics["settings"], metrics["details"]["paired"], _n_seeds(metrics)
    for ax, init in zip(axes, ("standard", "small"), strict=True):
        rows = [(label, paired[name]["acc_diff"]) for name, label in _comparisons(metrics, init)]
        _interval_rows(ax, rows)
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(-1, color=PAPER_COLOR, ls="--", lw=1, label="non-inferiority margin −1 (ours)")
        where = "standard initialisation" if init == "standard" else f"small initialisation (×{s['init_scale']:g})"
        ax.set(xlabel="KO − base, test accuracy (points)", title=f"{where}, {n} seeds")
        ax.grid(axis="y", visible=False)
    axes[0].figure.tight_layout()
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.1, -0.16))


def draw_sweep(axes, metrics, **_) -> None:
    """coll_coef sweep (soft/thresh KO on SGD, MLP, small init): per-seed correlation ratio and
    accuracy difference against base SGD, with their 95% intervals (gamma 0 is base SGD itself)."""
    rows = sorted((r for r in metrics["details"]["sweep"] if not r["name"].endswith("-base")), key=lambda r: r["gamma"])
    paired, n = metrics["details"]["paired"], _n_seeds(metrics)
    g = np.array([r["gamma"] for r in rows])
    for ax, key, ref, claim, ylabel in (
        (axes[0], "corr_ratio", 1.0, 0.97, "final weight correlation, KO / SGD"),
        (axes[1], "acc_diff", 0.0, -1.0, "test accuracy, KO − SGD (points)"),
    ):
        est = [paired[r["name"]][key] for r in rows]
        mean = np.array([e["mean"] for e in est], dtype=float)
        low = np.array([e["low"] if e["low"] is not None else np.nan for e in est], dtype=float)
        high = np.array([e["high"] if e["high"] is not None else np.nan for e in est], dtype=float)
        ax.errorbar(g, mean, yerr=[mean - low, high - mean], fmt="o-", ms=4, capsize=2, label="KO soft/thresh")
        ax.plot([0.0], [ref], "ks", ms=4, label="γ = 0: base SGD")
        ax.axhline(ref, color="k", lw=0.8)
        reference_line(ax, claim, f"claim threshold {claim:g} (ours)")
        ax.set(xlabel=r"coll_coef $\gamma_c$", ylabel=ylabel)
    axes[0].set_title(f"Condensation, MNIST-1D MLP, SGD, small init ({n} seeds)")
    axes[1].set_title("Accuracy, same runs")
    axes[0].figure.tight_layout()
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.1, -0.18), ncol=3)


def _ratio_points(ax, metrics: dict, names: list[tuple[str, str]]) -> None:
    rows = []
    for metric, label in names:
        est = seed_interval(metrics["metrics"][metric]["per_seed"])
        rows.append((label, {"mean": est.mean, "low": est.low, "high": est.high}))
    _interval_rows(ax, rows, "C1")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.axvline(1.5, color=PAPER_COLOR, ls="--", lw=1, label="bound 1.5 of C3 claims (ours)")
    ax.set_xlim(left=0.8)
    ax.set_xlabel("time per iteration, KO / base")


def draw_overhead(axes, metrics, **_) -> None:
    """Wall time per training iteration of KO over its base optimizer, MNIST-1D MLP and ResNet-18's
    layer sizes, one value per seed, mean with its 95% interval (measurement spread under load)."""
    s, n = metrics["settings"], _n_seeds(metrics)
    pairs = [("sgd", "SGD + KO soft"), ("sgd_hard", "SGD + KO hard"), ("adam", "Adam + KO soft")]
    _ratio_points(axes[0], metrics, [(f"step_time_ratio_{k}", v) for k, v in pairs])
    axes[0].set_title(f"MNIST-1D MLP (22k parameters), {n} seeds")
    _ratio_points(axes[1], metrics, [(f"step_time_ratio_resnet18_{k}", v) for k, v in pairs])
    axes[1].set_title(f"ResNet-18 (width {s.get('resnet_width', 64)}), batch {s.get('resnet_batch', 128)}, {n} seeds")
    axes[0].figure.tight_layout()
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.1, -0.2))


def draw_collisions(axes, metrics, **_) -> None:
    """Share of row pairs that collide: along training (between evaluation steps) and over the
    whole run, primary reading, small vs standard initialisation (mean and 95% interval)."""
    s, n = metrics["settings"], _n_seeds(metrics)
    ax = axes[0]
    for (task, base), color in zip((("mlp", "sgd"), ("mlp", "adam"), ("cnn", "sgd")), ("C0", "C1", "C2"), strict=True):
        for init, ls in (("small", "-"), ("standard", "--")):
            c = metrics["details"]["curves"].get(f"{task}-{init}-{base}-ko")
            if c is None:
                continue
            rate = 100 * np.array(c["collision"], dtype=float)
            where = f"init ×{s['init_scale']:g}" if init == "small" else "standard init"
            ax.plot(c["steps"][1:], rate, color=color, ls=ls, label=f"{TASKS[task]}, {BASES[base]}, {where}")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(0, 100)
    ax.set_yticks([0, 0.01, 0.1, 1, 10, 100], ["0", "0.01", "0.1", "1", "10", "100"])
    ax.set(xlabel="training step", ylabel="colliding pairs (%)", title=f"KO R1 (γ={s['gamma']:g}) along training")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7)
    rows = []
    for a in metrics["details"]["arms"]:
        task, init, base, variant = a["arm"].split("-")
        if variant not in ("ko", "ko_unit", "ko_hard"):
            continue
        est = seed_interval([100 * v if v is not None else None
                             for v in metrics["metrics"][f"collision_rate_{a['arm'].replace('-', '_')}"]["per_seed"]])
        where = f"init ×{s['init_scale']:g}" if init == "small" else "std init"
        rows.append((f"{TASKS[task]}, {BASES[base]}, {where}, {SHORT[variant]}",
                     {"mean": est.mean, "low": est.low, "high": est.high}))
    _interval_rows(axes[1], rows, "C0")
    axes[1].set_xscale("symlog", linthresh=0.01)
    axes[1].set_xlim(0, 100)
    axes[1].set_xticks([0, 0.01, 1, 100], ["0", "0.01", "1", "100"])
    axes[1].set(xlabel="colliding pairs over the run (%)", title=f"Whole run, {n} seeds")
    axes[0].figure.tight_layout()
