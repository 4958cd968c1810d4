"""The localpl figures. Each ``draw_*`` fills a grid of axes (declared in ``__init__.py``) from the
pooled per-seed runs and spaces its panels.

The paper's figures were not available to us; these show the quantities its statements are
about: loss gap vs iteration per step-size rule (log scale), measured vs predicted per-step
contraction, iterations to a target, and the adaptive step size over time.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR

STYLE = {
    "fixed_k0": dict(ls="--", color="C1"),
    "admissible": dict(ls=":", color="C2"),
    "adaptive": dict(ls="-", color="C0", lw=1.8),
    "adaptive_note": dict(ls="-.", color="C3"),
    "armijo": dict(ls="-", color="C4", lw=1),
}
SPACING = dict(wspace=0.3, hspace=0.45)  # between the panels of every figure
LABEL = {
    "fixed_k0": r"fixed $1/K_0$",
    "admissible": r"admissible $1/\max_t K_t$",
    "adaptive": r"adaptive $1/K_t$ (ours)",
    "adaptive_note": r"adaptive, note's $K_t$",
    "armijo": "Armijo (reference)",
}


def _pick(grid: list[dict], settings, scale: float | None = None, init: str = "balanced") -> int:
    """Index of the config with width 5D (or the widest), the given (or nearest-to-1) scale."""
    widths = sorted({c["h"] for c in grid})
    h = 5 * settings.D if 5 * settings.D in widths else widths[-1]
    target = 1.0 if scale is None else scale
    cands = [i for i, c in enumerate(grid) if c["h"] == h and c["init"] == init]
    return min(cands, key=lambda i: abs(np.log(grid[i]["scale"] / target)))


def _median_log(curves: np.ndarray) -> np.ndarray:
    """Median over seeds of log10 gap, NaN once any seed has stopped."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(curves.astype(float))
    return np.median(logs, axis=0)


def draw_loss_curves(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Rows: init scale 1 and the smallest scale; columns: losses. Median over seeds."""
    small = min(settings.scales)
    for row, scale in enumerate((1.0, small)):
        for col in range(axes.shape[1]):
            ax = axes[row, col]
            if col >= len(settings.losses):
                ax.set_visible(False)
                continue
            kind = settings.losses[col]
            i = _pick(grid, settings, scale)
            c = grid[i]
            gap = pooled[kind]["gap_curve"][:, i]  # (seeds, rules, T)
            for j, r in enumerate(rules):
                y = _median_log(gap[:, j] / gap[:, j, :1])
                t = np.arange(y.size) * settings.curve_stride
                ax.plot(t[np.isfinite(y)], 10 ** y[np.isfinite(y)], label=LABEL[r], **STYLE[r])
            ax.axhline(settings.target, color=PAPER_COLOR, lw=0.8, ls="--")
            ax.set_yscale("log")
            ax.set(xlabel="iteration t", ylabel=r"$(L_t - L^*)/(L_0 - L^*)$",
                   title=f"{kind}, h={c['h']}, s={c['scale']:g}, {c['init']}")
    axes[0, 0].legend(fontsize=7)
    fig.subplots_adjust(**SPACING)


def draw_contraction(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Top: per-step decrease 1 - rho, measured against predicted, adaptive rule, every step of
    every run (the bound holds on or above the diagonal). Bottom: both along one run over time."""
    j = list(rules).index("adaptive")
    for col in range(axes.shape[1]):
        top, bottom = axes[0, col], axes[1, col]
        if col >= len(settings.losses):
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        kind = settings.losses[col]
        gap = pooled[kind]["gap_curve"][:, :, j].astype(float)  # (seeds, configs, T)
        rho = pooled[kind]["rho_pred_curve"][:, :, j].astype(float)
        if settings.curve_stride != 1:
            top.set_title(f"{kind}: curves thinned, per-step factors not stored")
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            meas = gap[..., 1:] / gap[..., :-1]
        ok = np.isfinite(meas) & np.isfinite(rho) & (meas > 0)
        x, y = 1 - rho[ok], 1 - meas[ok]
        bad = y < x  # a violation of the bound (none expected)
        if x.size > 20000:  # thin deterministically for a readable plot
            keep = np.linspace(0, x.size - 1, 20000).astype(int)
            x, y, bad = x[keep], y[keep], bad[keep]
        floor = 1e-8
        top.scatter(x, np.maximum(y, floor), s=2, alpha=0.3, color="C0", rasterized=True,
                    label="adaptive rule, one GD step")
        if bad.any():
            top.scatter(x[bad], np.maximum(y[bad], floor), s=8, color="C3", label="violation")
        lo = max(floor, min(x.min(), y[y > 0].min()))
        top.plot([lo, 1], [lo, 1], color=PAPER_COLOR, lw=1, ls="--", label="measured = predicted")
        top.set_xscale("log")
        top.set_yscale("log")
        top.set(xlabel=r"predicted decrease $1-\rho_t = 2\mu_t\eta_t - \mu_t K_t\eta_t^2$",
                ylabel=r"measured $1 - \frac{L_{t+1}-L^*}{L_t-L^*}$", title=f"{kind}: {ok.sum():,} steps")
        top.legend(fontsize=7, loc="lower right")
        i = _pick(grid, settings)
        c = grid[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            m1 = 1 - gap[0, i, 1:] / gap[0, i, :-1]
        t = np.arange(m1.size)
        fin = np.isfinite(m1) & (m1 > 0)
        bottom.plot(t[fin], m1[fin], color="C0", label="measured")
        p1 = 1 - rho[0, i]
        bottom.plot(t[np.isfinite(p1)], p1[np.isfinite(p1)], color=PAPER_COLOR, ls="--", label="predicted (bound)")
        bottom.set_yscale("log")
        bottom.set(xlabel="iteration t", ylabel=r"per-step decrease $1-\rho_t$",
                   title=f"{kind}, h={c['h']}, s={c['scale']:g}, {c['init']}, first seed")
        bottom.legend(fontsize=7)
    fig.subplots_adjust(**SPACING)


def draw_iterations(axes, settings, grid, details, rules, fig, **_) -> None:
    """Iterations to the target per rule and init scale (mean over seeds), square loss, for the
    widths 5D and 20D (balanced) and 5D (imbalanced); x: the note's prototype (other data draw)."""
    rows = [r for r in details["iterations"] if r["loss"] == "square"]
    widths = sorted({c["h"] for c in grid})
    panels = [(w, "balanced") for w in (5 * settings.D, 20 * settings.D) if w in widths] or [(widths[-1], "balanced")]
    if "imbalanced" in settings.inits:
        panels.append((panels[0][0], "imbalanced"))
    scales = list(settings.scales)
    width = 0.8 / len(rules)
    for col in range(axes.shape[1]):
        ax = axes[0, col]
        if col >= len(panels):
            ax.set_visible(False)
            continue
        h, init = panels[col]
        top = 1.0
        for j, r in enumerate(rules):
            vals = []
            for sc in scales:
                row = next(x for x in rows if x["scale"] == sc and x["init"] == init and x["h"] == h)
                vals.append(row[r] if isinstance(row[r], float) else np.nan)
            xs = np.arange(len(scales)) + (j - len(rules) / 2 + 0.5) * width
            ax.bar(xs, vals, width, label=LABEL[r], color=STYLE[r]["color"])
            top = max(top, np.nanmax(vals) if np.isfinite(vals).any() else top)
            for x, v in zip(xs, vals):
                if not np.isfinite(v):
                    ax.text(x, 5.5, "n/r", rotation=90, fontsize=6, ha="center", va="bottom")
            if init == "balanced":
                for p in details["prototype"]:
                    if r in p and p["h"] == h and p["scale"] in scales:
                        k = scales.index(p["scale"])
                        ax.plot(k + (j - len(rules) / 2 + 0.5) * width, p[r], "x", color="black", ms=5)
        ax.plot([], [], "x", color="black", label="note's prototype (other data)")
        ax.set_xticks(range(len(scales)), [f"s={s:g}" for s in scales])
        ax.set_yscale("log")
        ax.set_ylim(5, 8 * top)
        ax.set(ylabel=f"iterations to {settings.target:g}", title=f"square loss, h={h}, {init} init")
    axes[0, 0].legend(fontsize=6, loc="upper center", ncol=2)
    fig.subplots_adjust(**SPACING)


def draw_step_size(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Adaptive step eta_t / eta_0 against iteration, one line per init scale (median over seeds)."""
    j = list(rules).index("adaptive")
    for col in range(axes.shape[1]):
        ax = axes[0, col]
        if col >= len(settings.losses):
            ax.set_visible(False)
            continue
        kind = settings.losses[col]
        for n, sc in enumerate(settings.scales):
            i = _pick(grid, settings, sc)
            eta = pooled[kind]["eta_curve"][:, i, j].astype(float)
            y = np.median(eta / eta[:, :1], axis=0)
            t = np.arange(y.size) * settings.curve_stride
            ax.plot(t[np.isfinite(y)], y[np.isfinite(y)], color=f"C{n}", label=f"s={sc:g}")
        ax.axhline(1.0, color=PAPER_COLOR, lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set(xlabel="iteration t", ylabel=r"$\eta_t / \eta_0$ (adaptive)",
               title=f"{kind}, h={grid[_pick(grid, settings)]['h']}, balanced")
        ax.legend(fontsize=7)
    fig.subplots_adjust(**SPACING)
