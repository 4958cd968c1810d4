"""The localpl figures. Each ``draw_*`` fills a grid of axes (declared in ``__init__.py``, about
7 in wide) from the pooled per-seed runs, puts its legend above the panels (off the data) and
spaces them. Comparisons carry the two-sided 95% Student-t interval of the mean over seeds.

The paper's figures were not available to us; these show the quantities its statements are
about: loss gap vs iteration per step-size rule (log scale), measured vs predicted per-step
contraction, iterations to a target, the adaptive step size over time, constant steps against the
adaptive rule, and the local constants against independent measurements.
"""

from __future__ import annotations

import numpy as np
from matplotlib import ticker
from scipy import stats

from gdrepro.plotting import PAPER_COLOR

STYLE = {
    "fixed_k0": dict(ls="--", color="C1"),
    "admissible": dict(ls=":", color="C2"),
    "adaptive": dict(ls="-", color="C0", lw=1.8),
    "adaptive_note": dict(ls="-.", color="C3"),
    "armijo": dict(ls="-", color="C4", lw=1),
}
LABEL = {
    "fixed_k0": r"fixed $1/K_0$",
    "admissible": r"admissible $1/\max_t K_t$",
    "adaptive": r"adaptive $1/K_t$ (ours)",
    "adaptive_note": r"adaptive, note's $K_t$",
    "armijo": "Armijo (reference)",
}
TITLE = 8  # points: panel titles
SMALL = 7.5  # points: legends, tick labels


def _finish(fig, axes, ncol: int = 3, top: float = 0.8, **spacing) -> None:
    """One legend for the figure, above the panels (off the data); tick labels at SMALL points."""
    handles, labels = {}, {}
    for ax in np.ravel(axes):
        ax.tick_params(labelsize=SMALL)
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles[lab], labels[lab] = h, lab
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=ncol, fontsize=SMALL,
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.subplots_adjust(top=top, **({"wspace": 0.38, "hspace": 0.55} | spacing))


def seed_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its two-sided 95% Student-t interval; NaN where a seed is NaN
    or fewer than two seeds."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    half = stats.t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def _pick(grid: list[dict], settings, scale: float | None = None, init: str = "balanced") -> int:
    """Index of the config with width 5D (or the widest), the given (or nearest-to-1) scale."""
    widths = sorted({c["h"] for c in grid})
    h = 5 * settings.D if 5 * settings.D in widths else widths[-1]
    target = 1.0 if scale is None else scale
    cands = [i for i, c in enumerate(grid) if c["h"] == h and c["init"] == init]
    return min(cands, key=lambda i: abs(np.log(grid[i]["scale"] / target)))


def _log10(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.asarray(a, dtype=float))


def _band(ax, t: np.ndarray, logs: np.ndarray, **style) -> None:
    """Mean over seeds of log10 values as a line, its 95% interval shaded (where every seed ran)."""
    mean, lo, hi = seed_interval(logs)
    ok = np.isfinite(mean)
    line, = ax.plot(t[ok], 10 ** mean[ok], **style)
    ok = ok & np.isfinite(lo)
    ax.fill_between(t[ok], 10 ** lo[ok], 10 ** hi[ok], color=line.get_color(), alpha=0.2, lw=0)


def _loss_columns(axes, settings) -> list[tuple[int, str]]:
    """``(column, loss)`` for each loss; the axes of the columns beyond the losses are hidden."""
    for ax in axes[:, len(settings.losses):].ravel():
        ax.set_visible(False)
    return list(enumerate(settings.losses))


def draw_loss_curves(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Rows: init scale 1 and the smallest scale; columns: losses. Mean of log10 gap over seeds
    (while every seed still runs) with its 95% interval."""
    small = min(settings.scales)
    for row, scale in enumerate((1.0, small)):
        for col, kind in _loss_columns(axes, settings):
            ax = axes[row, col]
            i = _pick(grid, settings, scale)
            c = grid[i]
            gap = pooled[kind]["gap_curve"][:, i].astype(float)  # (seeds, rules, T)
            for j, r in enumerate(rules):
                logs = _log10(gap[:, j] / gap[:, j, :1])
                _band(ax, np.arange(logs.shape[1]) * settings.curve_stride, logs, label=LABEL[r], **STYLE[r])
            ax.axhline(settings.target, color=PAPER_COLOR, lw=0.8, ls="--", label=f"target {settings.target:g}")
            ax.set_yscale("log")
            ax.set_xlabel("iteration t")
            ax.set_ylabel(r"$(L_t - L^*)/(L_0 - L^*)$" if col == 0 else "")
            ax.set_title(f"{kind}, h={c['h']}, s={c['scale']:g}, {c['init']}", fontsize=TITLE)
    _finish(fig, axes, ncol=3, top=0.86)


def draw_contraction(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Top: per-step decrease 1 - rho, measured against predicted, adaptive rule, every step of
    every run (the bound holds on or above the diagonal). Bottom: both along one run over time."""
    j = list(rules).index("adaptive")
    for col, kind in _loss_columns(axes, settings):
        top, bottom = axes[0, col], axes[1, col]
        gap = pooled[kind]["gap_curve"][:, :, j].astype(float)  # (seeds, configs, T)
        rho = pooled[kind]["rho_pred_curve"][:, :, j].astype(float)
        if settings.curve_stride != 1:
            top.set_title(f"{kind}: curves thinned, per-step factors not stored", fontsize=TITLE)
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
        top.set_xlabel(r"predicted $1-\rho_t$")
        top.set_ylabel(r"measured $1 - \frac{L_{t+1}-L^*}{L_t-L^*}$" if col == 0 else "")
        top.set_title(f"{kind}: {ok.sum():,} steps", fontsize=TITLE)
        i = _pick(grid, settings)
        c = grid[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            m1 = 1 - gap[0, i, 1:] / gap[0, i, :-1]
        t = np.arange(m1.size)
        fin = np.isfinite(m1) & (m1 > 0)
        bottom.plot(t[fin], m1[fin], color="C0", label="measured, one run")
        p1 = 1 - rho[0, i]
        bottom.plot(t[np.isfinite(p1)], p1[np.isfinite(p1)], color=PAPER_COLOR, ls=":", label="predicted (bound), one run")
        bottom.set_yscale("log")
        bottom.yaxis.set_minor_formatter(ticker.NullFormatter())
        bottom.set_xlabel("iteration t")
        bottom.set_ylabel(r"per-step decrease $1-\rho_t$" if col == 0 else "")
        bottom.set_title(f"{kind}, h={c['h']}, s={c['scale']:g}, first seed", fontsize=TITLE)
    _finish(fig, axes, ncol=3, top=0.88)


def draw_iterations(axes, settings, grid, pooled, rules, details, fig, **_) -> None:
    """Iterations to the target per rule and init scale (mean over seeds, 95% interval), square
    loss, widths 5D and 20D (balanced) and 5D (imbalanced); x: the note's prototype (other data)."""
    it = pooled["square"]["iters_target"]  # (seeds, configs, rules)
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
        idx = [next(i for i, c in enumerate(grid) if c["h"] == h and c["init"] == init and c["scale"] == sc)
               for sc in scales]
        top = 10.0
        for j, r in enumerate(rules):
            mean, lo, hi = seed_interval(it[:, idx, j])  # NaN where some seed did not reach
            xs = np.arange(len(scales)) + (j - len(rules) / 2 + 0.5) * width
            err = np.where(np.isfinite(lo), [mean - lo, hi - mean], 0)
            ax.bar(xs, mean, width, yerr=err, label=LABEL[r], color=STYLE[r]["color"],
                   error_kw=dict(lw=0.7, capsize=1.5))
            top = max(top, np.nanmax(hi) if np.isfinite(hi).any() else top)
            for x, v in zip(xs, mean):
                if not np.isfinite(v):
                    ax.text(x, 5.5, "n/r", rotation=90, fontsize=SMALL - 0.5, ha="center", va="bottom")
            if init == "balanced":
                for p in details["prototype"]:
                    if r in p and p["h"] == h and p["scale"] in scales and settings.N == 100 and settings.D == 10:
                        k = scales.index(p["scale"])
                        ax.plot(k + (j - len(rules) / 2 + 0.5) * width, p[r], "x", color="black", ms=4)
        ax.plot([], [], "x", color="black", label="note's prototype (other data)")
        ax.set_xticks(range(len(scales)), [f"{s:g}" for s in scales])
        ax.set_yscale("log")
        ax.set_ylim(5, 3 * top)
        ax.set_xlabel("init scale s")
        ax.set_ylabel(f"iterations to {settings.target:g}" if col == 0 else "")
        ax.set_title(f"square loss, h={h}, {init}", fontsize=TITLE)
    _finish(fig, axes, ncol=3, top=0.74)


def draw_step_size(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Adaptive step eta_t / eta_0 against iteration, one line per init scale (mean of log over
    seeds while every seed runs, with its 95% interval)."""
    j = list(rules).index("adaptive")
    for col, kind in _loss_columns(axes, settings):
        ax = axes[0, col]
        for n, sc in enumerate(settings.scales):
            i = _pick(grid, settings, sc)
            eta = pooled[kind]["eta_curve"][:, i, j].astype(float)
            logs = _log10(eta / eta[:, :1])
            _band(ax, np.arange(logs.shape[1]) * settings.curve_stride, logs, color=f"C{n}", label=f"init scale s={sc:g}")
        ax.axhline(1.0, color=PAPER_COLOR, lw=0.8, ls="--")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.set_yticks([y for y in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10) if lo <= y <= hi])
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.set_ylim(lo, hi)
        ax.set_xlabel("iteration t")
        ax.set_ylabel(r"$\eta_t / \eta_0$ (adaptive)" if col == 0 else "")
        ax.set_title(f"{kind}, h={grid[_pick(grid, settings)]['h']}, balanced", fontsize=TITLE)
    _finish(fig, axes, ncol=len(settings.scales), top=0.8)


CONSTANT_RULES = {
    "fixed_k0": (r"fixed $1/K_0$ (no guarantee)", dict(color="C1", marker="s")),
    "certified": (r"best constant, $\eta K_t\leq 1$ on its run (C3b)", dict(color="C2", marker="o")),
    "certified2": (r"best constant, $\eta K_t\leq 2$ on its run (S3)", dict(color="C5", marker="^")),
    "tuned": ("best constant in hindsight (S2)", dict(color="C3", marker="v")),
    "armijo": ("Armijo (reference)", dict(color="C4", marker="d")),
}


def constant_step_iterations(run: dict, rules) -> dict[str, np.ndarray]:
    """Iterations to the target per rule of CONSTANT_RULES and for the adaptive rule, (..., configs)."""
    from gdrepro.papers.localpl.experiment import _best_constant

    it = run["grid_iters"]
    out = {"adaptive": run["iters_target"][..., list(rules).index("adaptive")],
           "fixed_k0": run["iters_target"][..., list(rules).index("fixed_k0")],
           "armijo": run["iters_target"][..., list(rules).index("armijo")],
           "certified": _best_constant(it, run["grid_certified"]),
           "certified2": _best_constant(it, run["grid_certified2"]),
           "tuned": _best_constant(it, np.ones_like(it))}
    return out


def draw_constant_steps(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Iterations of each constant-step choice over the adaptive rule's, per init scale and loss:
    per seed the geometric mean over the configurations where both reached the target, then the
    mean over seeds with its 95% interval (above 1: the adaptive rule is faster)."""
    scales = list(settings.scales)
    offsets = np.linspace(-0.2, 0.2, len(CONSTANT_RULES))
    for col, kind in _loss_columns(axes, settings):
        ax = axes[0, col]
        iters = constant_step_iterations(pooled[kind], rules)
        for (name, (label, style)), dx in zip(CONSTANT_RULES.items(), offsets):
            per_seed = []
            for sc in scales:
                idx = [i for i, c in enumerate(grid) if c["scale"] == sc]
                ratio = _log10(iters[name][:, idx] / iters["adaptive"][:, idx])
                ok = np.isfinite(ratio)
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_seed.append(np.where(ok, ratio, 0).sum(axis=1) / ok.sum(axis=1))
            mean, lo, hi = seed_interval(np.stack(per_seed, axis=1))
            x = np.arange(len(scales)) + dx
            err = np.where(np.isfinite(lo), [mean - lo, hi - mean], 0)
            ax.errorbar(x, mean, yerr=err, ls="none", ms=3.5, lw=0.9, capsize=1.5, label=label, **style)
        ax.axhline(0.0, color=PAPER_COLOR, lw=0.8, ls="--", label="as fast as the adaptive rule")
        ax.set_xticks(range(len(scales)), [f"{s:g}" for s in scales])
        ax.set_xlabel("init scale s")
        ax.set_ylabel(r"$\log_{10}$ iterations / adaptive's" if col == 0 else "")
        ax.set_title(f"{kind} loss, all widths and inits", fontsize=TITLE)
    _finish(fig, axes, ncol=3, top=0.74)


def draw_local_constants(axes, settings, grid, pooled, rules, fig, **_) -> None:
    """Left: the local smoothness bound K s^2 + sqrt(2K(L - L*)) against the Hessian's largest
    eigenvalue measured by Lanczos, at the initial and the adaptive run's last iterate (the bound
    holds on or above the diagonal). Right: share of adaptive runs that reach the target per width,
    mean over seeds with its 95% interval; every width here is below Du & Hu's (see the title)."""
    left, right = axes[0, 0], axes[0, 1]
    markers = {"square": "o", "huber": "s", "logistic": "^"}
    for n, kind in enumerate(settings.losses):
        lam, bound = pooled[kind]["sharpness"], pooled[kind]["curvature_bound"]  # (seeds, configs, 2)
        for p, (where, fill) in enumerate((("initial", "none"), ("last", None))):
            left.scatter(lam[..., p].ravel(), bound[..., p].ravel(), s=9, marker=markers.get(kind, "o"),
                         facecolors=fill or f"C{n}", edgecolors=f"C{n}", lw=0.6, label=f"{kind}, {where} iterate")
    lo = min(float(np.nanmin(pooled[k]["sharpness"])) for k in settings.losses)
    hi = max(float(np.nanmax(pooled[k]["curvature_bound"])) for k in settings.losses)
    left.plot([lo, hi], [lo, hi], color=PAPER_COLOR, ls="--", lw=1, label="bound = measured")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel(r"measured $\lambda_{\max}(\nabla^2 L)$")
    left.set_ylabel(r"bound $K s_t^2 + \sqrt{2K(L_t - L^*)}$")
    left.set_title("local smoothness vs measured curvature", fontsize=TITLE)
    widths = sorted({c["h"] for c in grid})
    ada = list(rules).index("adaptive")
    for n, kind in enumerate(settings.losses):
        reached = np.isfinite(pooled[kind]["iters_target"][..., ada])  # (seeds, configs)
        share = np.stack([reached[:, [i for i, c in enumerate(grid) if c["h"] == h]].mean(axis=1) for h in widths], axis=1)
        mean, lo_, hi_ = seed_interval(share)
        x = np.arange(len(widths)) + (n - 1) * 0.12
        err = np.where(np.isfinite(lo_), [mean - lo_, hi_ - mean], 0)
        right.errorbar(x, mean, yerr=err, marker=markers.get(kind, "o"), ms=3.5, lw=0.9, capsize=1.5,
                       color=f"C{n}", label=f"{kind}: share reaching {settings.target:g}")
    du_hu = float(np.ravel(pooled[settings.losses[0]]["du_hu_width"])[0])
    right.set_xticks(range(len(widths)), [f"{h // settings.D}D" for h in widths])
    right.set_ylim(0, 1.05)
    right.set_xlabel(f"width h (D = {settings.D})")
    right.set_ylabel("share of adaptive runs")
    right.set_title(f"Du & Hu need h >= {du_hu:,.0f} (first seed); no init balanced", fontsize=TITLE)
    _finish(fig, axes, ncol=3, top=0.7)
