"""The grokking figures, drawn from metrics.json (details.curves: per run, per seed); the house lays
out each declared figure's panels (papers/grokking/__init__.py) and calls ``draw_*(axes, metrics=...)``.

They redraw the paper's figure types: train/test accuracy vs step (log x) with and without
embeddings and for c = 1 vs 10; steps to 95% test accuracy vs the Adam-LR factor c; test
accuracy per split strategy; embedding norm vs token frequency; the top Hessian eigenvalue of
the E and W blocks over training; the Fourier spectrum of E and the ranks of E, W, EW.
The paper's figures carry no numbers we could recover; the paper's reference points drawn are
its stated best c = 10 and the 95% / 99% accuracy targets.
"""

from __future__ import annotations

import re

import numpy as np

PAPER_COLOR = "#555555"  # = gdrepro.plotting.PAPER_COLOR (not imported: train stages need no matplotlib)


def reference_line(ax, y: float, label: str) -> None:
    """gdrepro.plotting.reference_line, imported when drawing."""
    from gdrepro.plotting import reference_line as draw

    draw(ax, y, label)


def _runs(metrics: dict, name: str) -> dict:
    return metrics["details"]["curves"].get(name, {})


def _acc(ax, metrics, name, label, color) -> None:
    for i, (_, c) in enumerate(sorted(_runs(metrics, name).items())):
        steps = np.maximum(np.array(c["steps"]), 1)
        ax.plot(steps, c["train_acc"], "--", color=color, lw=0.9, alpha=0.8, label=f"{label} train" if i == 0 else None)
        ax.plot(steps, c["test_acc"], "-", color=color, lw=1.2, alpha=0.9, label=f"{label} test" if i == 0 else None)


def draw_accuracy(axes, metrics, **_) -> None:
    """Train (dashed) / test (solid) accuracy vs step, every seed: add, mul (c = 1 vs 10), no embeddings."""
    c_hi = max(c for c in metrics["settings"]["cs"] if c != 1.0)
    for ax, op in zip(axes[:2], ("add", "mul"), strict=True):
        _acc(ax, metrics, f"emb-{op}-random-c1", "c=1", "C0")
        _acc(ax, metrics, f"emb-{op}-random-c{c_hi:g}", f"c={c_hi:g}", "C1")
        ax.set(title=f"Embedding MLP, (a {'+' if op == 'add' else '*'} b) mod P")
    _acc(axes[2], metrics, "noemb-add", "add", "C2")
    _acc(axes[2], metrics, "noemb-mul", "mul", "C3")
    axes[2].set(title="MLP without embeddings")
    for ax in axes:
        if not ax.lines:
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0.95, color=PAPER_COLOR, ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="training step", ylabel="accuracy", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, loc="upper left")


def draw_c_sweep(axes, metrics, **_) -> None:
    """Steps to 95% test accuracy vs the embedding lr factor c (add); never-reached runs at the cap."""
    ax = axes
    curves = metrics["details"]["curves"]
    cap = metrics["settings"]["steps"]
    xs, med, per_seed = [], [], {}
    for name, seeds in curves.items():
        fixed = re.fullmatch(r"emb-add-random-c([0-9.]+)", name)  # a fixed c, Adam (not c_t, not AdamW)
        if not fixed:
            continue
        c = float(fixed[1])
        vals = []
        for run in seeds.values():
            steps, acc = np.array(run["steps"]), np.array(run["test_acc"])
            hit = steps[acc >= 0.95]
            vals.append(float(hit[0]) if len(hit) else float(cap))
        ax.scatter([c] * len(vals), vals, s=12, color="C0", alpha=0.5)
        xs.append(c)
        med.append(np.median(vals))
        for seed, v in zip(seeds, vals, strict=True):
            per_seed.setdefault(seed, {})[c] = v
    for i, (_, got) in enumerate(sorted(per_seed.items())):
        if len(got) == len(xs) > 2:  # a seed that ran the whole sweep: its own curve
            cs = sorted(got)
            ax.plot(cs, [got[c] for c in cs], "-", color="C0", lw=0.7, alpha=0.35,
                    label="one seed's sweep" if i == 0 else None)
    order = np.argsort(xs)
    ax.plot(np.array(xs)[order], np.array(med)[order], "o-", color="C0", label="median over seeds (ours)")
    if "emb-add-random-cadapt" in curves:
        vals = []
        for run in curves["emb-add-random-cadapt"].values():
            steps, acc = np.array(run["steps"]), np.array(run["test_acc"])
            hit = steps[acc >= 0.95]
            vals.append(float(hit[0]) if len(hit) else float(cap))
        ax.axhline(np.median(vals), color="C1", ls="--", lw=1, label="adaptive c_t (ours)")
    ax.axvline(10, color=PAPER_COLOR, ls="--", lw=1, label="paper: best c = 10")
    ax.set(xscale="log", xlabel="embedding lr factor c", ylabel="steps to 95% test accuracy",
           title="Adam-LR: c sweep, (a + b) mod P")
    ax.legend(fontsize=7)


SPLIT_COLORS = {"random": "C0", "uniform": "C1", "skewed": "C2", "balanced": "C3"}


def _test_curves(ax, metrics, runs: dict[str, tuple[str, str]]) -> None:
    """Test accuracy vs step of each run (name -> (label, split kind in SPLIT_COLORS)), every seed."""
    for name, (label, kind) in runs.items():
        for i, (_, c) in enumerate(sorted(_runs(metrics, name).items())):
            ax.plot(np.maximum(c["steps"], 1), c["test_acc"], color=SPLIT_COLORS[kind], lw=1, alpha=0.8,
                    label=label if i == 0 else None)


def draw_splits(axes, metrics, **_) -> None:
    """Test accuracy vs step per split strategy (add, c = 1), every seed: Adam with coupled L2 decay
    (the primary reading) and decoupled AdamW."""
    skewed = (f"skewed (skew {metrics['settings']['skew']:g})", "skewed")
    _test_curves(axes[0], metrics, {"emb-add-random-c1": ("random", "random"),
                                    "emb-add-uniform-c1": ("uniform over a", "uniform"), "emb-add-skewed-c1": skewed,
                                    "emb-add-skewed-c1-bal": ("skewed + balanced sampler (ours)", "balanced")})
    _test_curves(axes[1], metrics, {"emb-add-random-c1-adamw": ("random", "random"), "emb-add-skewed-c1-adamw": skewed})
    for ax, title in zip(axes, ("Adam (coupled L2 decay)", "AdamW (decoupled decay)"), strict=True):
        if not ax.lines:
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
        reference_line(ax, 0.95, "95% test target")
        ax.set(xscale="log", xlabel="training step", ylim=(-0.02, 1.02), title=f"Splits, a + b, {title}")
        ax.legend(fontsize=7, loc="center left")
    axes[0].set(ylabel="test accuracy")


def draw_norms(axes, metrics, **_) -> None:
    """Final embedding norm vs token frequency (rows containing the token), skewed and random splits."""
    p = metrics["settings"]["p"]
    panels = (("emb-add-skewed-c1", "skewed split"), ("emb-add-random-c1", "random split"),
              ("emb-add-skewed-c1-adamw", "skewed, AdamW"), ("tf-add-skewed-c1", "skewed, transformer"))
    for ax, (name, title) in zip(np.ravel(axes), panels, strict=False):
        for i, (seed, c) in enumerate(sorted(_runs(metrics, name).items())):
            if "norms" not in c:
                continue
            ax.scatter(np.array(c["freq"])[:p], np.array(c["norms"])[:p], s=8, alpha=0.5, color=f"C{i}",
                       label=f"seed {seed}: final")
        inits = [np.mean(c["norms_init"][:p]) for c in _runs(metrics, name).values() if "norms_init" in c]
        if inits:
            reference_line(ax, float(np.mean(inits)), "mean norm at init")
        if not _runs(metrics, name):
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
        ax.set(ylabel="embedding norm |e_i|", title=title)
    for ax in np.ravel(axes)[-2:]:
        ax.set(xlabel="training rows with the token")
        ax.legend(fontsize=7)


def draw_hessian(axes, metrics, **_) -> None:
    """Top Hessian eigenvalue of the E and W blocks vs step (add), c = 1 and c = 10."""
    c_hi = max(c for c in metrics["settings"]["cs"] if c != 1.0)
    for ax, c in zip(axes, (1.0, c_hi), strict=True):
        for i, (_, run) in enumerate(sorted(_runs(metrics, f"emb-add-random-c{c:g}").items())):
            if "diag_steps" not in run:
                continue
            steps = np.maximum(run["diag_steps"], 1)
            ax.plot(steps, np.abs(run["hess_E"]), "-o", ms=2, color="C0", alpha=0.7, label="E block" if i == 0 else None)
            ax.plot(steps, np.abs(run["hess_W"]), "-s", ms=2, color="C1", alpha=0.7, label="W block" if i == 0 else None)
        ax.set(xscale="log", yscale="log", xlabel="training step", ylabel="top Hessian eigenvalue |lambda_max|",
               title=f"Curvature per block, c = {c:g}")
        ax.legend(fontsize=7)


def draw_fourier_ranks(axes, metrics, **_) -> None:
    """Fourier spectrum of E over tokens (init vs final) and ranks of E, W, EW vs step (add)."""
    c_hi = max(c for c in metrics["settings"]["cs"] if c != 1.0)
    ax = axes[0]
    for k, c in enumerate((1.0, c_hi)):
        runs = [r for r in _runs(metrics, f"emb-add-random-c{c:g}").values() if "fourier" in r]
        if runs:
            ax.plot(np.mean([r["fourier"] for r in runs], axis=0), color=f"C{k}", label=f"final, c = {c:g}")
            if k == 0:
                ax.plot(np.mean([r["fourier_init"] for r in runs], axis=0), color=PAPER_COLOR, ls=":", label="init")
    ax.set(xlabel="frequency k", ylabel="share of embedding energy", title="Fourier spectrum of E over tokens")
    ax.legend(fontsize=7)
    for ax, c in zip(axes[1:], (1.0, c_hi), strict=True):
        for i, (_, run) in enumerate(sorted(_runs(metrics, f"emb-add-random-c{c:g}").items())):
            if "diag_steps" not in run:
                continue
            steps = np.maximum(run["diag_steps"], 1)
            for k, key in enumerate(("rank_E", "rank_W", "rank_EW")):
                ax.plot(steps, run[key], color=f"C{k}", alpha=0.7, label=key.removeprefix("rank_") if i == 0 else None)
        ax.set(xscale="log", xlabel="training step", ylabel="numerical rank (sv > 1% of max)",
               title=f"Ranks of E, W, EW, c = {c:g}")
        ax.legend(fontsize=7)


READINGS = {  # run -> panel title (the MLP without embeddings)
    "noemb-add-onehot": "one-hot (primary), a + b", "noemb-mul-onehot": "one-hot (primary), a * b",
    "noemb-add": "raw numbers, a + b", "noemb-add-onehot-adamw": "one-hot, AdamW, a + b",
    "noemb-add-onehot-lr0.001": "one-hot, lr 0.001, a + b", "noemb-add-onehot-h128": "one-hot, width 128, a + b",
}


def draw_noemb_readings(axes, metrics, fig, **_) -> None:
    """Train (dashed) / test (solid) accuracy vs step of each reading of the MLP without embeddings,
    every seed, with the embedding MLP's test accuracy (c = 1) for reference."""
    fig.set_layout_engine("constrained")  # titles clear the tick labels of the row above
    for ax, (name, title) in zip(np.ravel(axes), READINGS.items(), strict=True):
        op = "mul" if "-mul" in name else "add"
        for i, (_, c) in enumerate(sorted(_runs(metrics, f"emb-{op}-random-c1").items())):
            ax.plot(np.maximum(c["steps"], 1), c["test_acc"], color=PAPER_COLOR, lw=0.8, alpha=0.5,
                    label="with embeddings: test" if i == 0 else None)
        _acc(ax, metrics, name, "no embeddings:", "C0")
        if not _runs(metrics, name):
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0.95, color=PAPER_COLOR, ls=":", lw=0.8)
        ax.set(xscale="log", ylim=(-0.02, 1.02), title=title)
    for ax in np.ravel(axes)[-3:]:
        ax.set(xlabel="training step")
    for ax in np.atleast_2d(axes)[:, 0]:
        ax.set(ylabel="accuracy")
    handles, labels = np.ravel(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="outside lower center", ncol=3)


def draw_transformer(axes, metrics, **_) -> None:
    """The small transformer: train / test accuracy with c = 1 and c = 10 on add and on mul; test
    accuracy on add with the random split, the skewed split and the skewed split with our balanced
    sampler (c = 1), every seed."""
    c_hi = max(c for c in metrics["settings"]["cs"] if c != 1.0)
    for ax, op in zip(axes[:2], ("add", "mul"), strict=True):
        _acc(ax, metrics, f"tf-{op}-random-c1", "c=1", "C0")
        _acc(ax, metrics, f"tf-{op}-random-c{c_hi:g}", f"c={c_hi:g}", "C1")
        ax.set(title=f"Adam-LR, a {'+' if op == 'add' else '*'} b")
    axes[0].set(ylabel="accuracy")
    _test_curves(axes[2], metrics, {"tf-add-random-c1": ("random split", "random"),
                                    "tf-add-skewed-c1": ("skewed split", "skewed"),
                                    "tf-add-skewed-c1-bal": ("skewed + balanced (ours)", "balanced")})
    axes[2].set(title="Splits, a + b, c = 1 (test)")
    for ax in axes:
        if not ax.lines:
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0.95, color=PAPER_COLOR, ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="training step", ylim=(-0.02, 1.02))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="center left")
