"""The dptrunc figures. Each ``draw_*`` fills a row of panels (declared in ``__init__.py``, drawn
with ``squeeze=False``: ``axes[0]`` is the row) from the pooled per-seed runs.

The paper's own figures were not readable to us; the figures show error against n and eps (the
axes of the note's prototype table and of the sample-complexity bounds), with the prototype's
numbers from ``shared/papers/dptrunc.md`` drawn in grey where they exist. Error bars are
mean +- sd over replications.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_line

STYLE = {  # method -> (format, label, colour): the same colour for a method in every figure
    "trunc": ("o-", "truncated MLE (DP-GD)", "C0"),
    "trunc_private": ("D-", "truncated MLE, private centre", "C4"),
    "clip": ("s--", "clip + Gaussian noise", "C1"),
    "drop": ("^:", "drop and average", "C2"),
    "empirical": ("x-", "empirical (non-private)", "C3"),
}
# prototype (note): d = 10, offset 1, delta = 1e-6; (n, eps) -> truncated MLE, clip, empirical
PROTOTYPE_MEAN = {(2_000, 0.5): (0.392, 0.173, 0.069), (8_000, 0.5): (0.106, 0.125, 0.033),
                  (32_000, 1.0): (0.042, 0.118, 0.019), (128_000, 1.0): (0.022, 0.119, 0.009)}
PROTOTYPE_COV = {2_000: (0.80, 0.32), 8_000: (0.23, 0.27), 32_000: (0.088, 0.36)}  # d = 5, eps = 1


def _errbar(ax, x, err, style, label, color, **kw) -> None:
    """Mean +- sd over replications (the last axis)."""
    err = np.asarray(err, float)
    mean, sd = np.nanmean(err, axis=-1), np.nanstd(err, axis=-1, ddof=1)
    ax.errorbar(x, mean, yerr=sd, fmt=style, ms=3, capsize=2, label=label, color=color, **kw)


def _eps_ticks(ax, values) -> None:
    """Label the log x axis at the privacy levels only."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(values))
    ax.set_xticklabels([f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _eps_index(values, target=1.0) -> int:
    values = list(values)
    return values.index(target) if target in values else len(values) - 1


def draw_mean_vs_n(axes, settings, pooled, prepared, fig, **_) -> None:
    """Error ||mu_hat - mu|| against n at eps = 1, one panel per dimension."""
    s, axes = settings, axes[0]  # the one row of panels
    k = _eps_index(s.epsilons)
    for ax, (i, d) in zip(axes, enumerate(s.dims), strict=True):
        for m in ("trunc", "trunc_private", "clip", "drop"):
            err = pooled["mean"]["err"][m][i, :, k]
            if np.all(np.isnan(err)):
                continue
            _errbar(ax, s.ns, err, *STYLE[m])
        _errbar(ax, s.ns, pooled["mean"]["err"]["empirical"][i], *STYLE["empirical"])
        reference_line(ax, prepared["mean"]["bias"][str(d)]["clip"], "clipping bias (population)")
        if d == 10:
            pts = [(n, v) for (n, e), v in PROTOTYPE_MEAN.items() if e == s.epsilons[k]]
            if pts:
                ax.scatter([n for n, _ in pts], [v[0] for _, v in pts], marker="*", s=60, color=PAPER_COLOR,
                           zorder=4, label="prototype: truncated MLE")
                ax.scatter([n for n, _ in pts], [v[1] for _, v in pts], marker="P", s=40, color=PAPER_COLOR,
                           zorder=4, label="prototype: clip")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel=r"$\|\hat\mu-\mu\|_2$",
               title=f"Mean, d = {d}, eps = {s.epsilons[k]}, delta = {s.delta:g}")
    legend_at = s.dims.index(s.private_centre_dim) if s.private_centre_dim in s.dims else 0
    axes[legend_at].legend(fontsize=6.5)
    fig.tight_layout()


def draw_mean_vs_eps(axes, settings, pooled, fig, **_) -> None:
    """Error against eps at n = a tenth of the largest n, d = the middle dimension."""
    s, axes = settings, axes[0]  # the one row of panels
    i = s.dims.index(s.private_centre_dim) if s.private_centre_dim in s.dims else len(s.dims) // 2
    j = int(np.argmin(np.abs(np.log(np.array(s.ns) / (s.ns[-1] / 10)))))
    ax = axes[0]
    for m in ("trunc", "trunc_private", "clip", "drop"):
        err = pooled["mean"]["err"][m][i, j]
        if np.all(np.isnan(err)):
            continue
        _errbar(ax, s.epsilons, err[:-1], *STYLE[m])
    reference_line(ax, float(np.sqrt(np.mean(pooled["mean"]["err"]["empirical"][i, j] ** 2))), "empirical (non-private)")
    ax.axhline(float(np.sqrt(np.mean(pooled["mean"]["err"]["trunc"][i, j, -1] ** 2))), color="C0", lw=0.8, ls="-.",
               label="truncated MLE, eps = inf")
    e = np.array(s.epsilons)
    first = np.nanmean(pooled["mean"]["err"]["trunc"][i, j, 0])
    ax.plot(e, first * e[0] / e, color="black", lw=0.8, ls=":", label=r"$\propto 1/\varepsilon$")
    ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$", ylabel=r"$\|\hat\mu-\mu\|_2$",
           title=f"Mean vs privacy, d = {s.dims[i]}, n = {s.ns[j]:,}")
    _eps_ticks(ax, s.epsilons)
    ax.legend(fontsize=6.5)
    fig.tight_layout()


def draw_rates(axes, settings, pooled, metrics, fig, **_) -> None:
    """Left: truncated-MLE RMSE against n per eps with slope -1 / -1/2 guides. Right: against d."""
    s, axes = settings, axes[0]  # the one row of panels
    i = s.dims.index(s.private_centre_dim) if s.private_centre_dim in s.dims else len(s.dims) // 2
    ns = np.array(s.ns, float)
    ax = axes[0]
    for k, e in enumerate([*s.epsilons, np.inf]):
        err = pooled["mean"]["err"]["trunc"][i, :, k]
        ax.loglog(ns, np.sqrt(np.mean(err**2, axis=-1)), "o-", ms=3, label=f"eps = {e:g}")
    top = np.sqrt(np.mean(pooled["mean"]["err"]["trunc"][i, 0, 0] ** 2))
    bottom = np.sqrt(np.mean(pooled["mean"]["err"]["trunc"][i, -1, -1] ** 2))
    ax.loglog(ns, top * ns[0] / ns, "k:", lw=0.8, label=r"slope $-1$ ($d/(n\varepsilon)$)")
    ax.loglog(ns, bottom * np.sqrt(ns[-1] / ns), "k--", lw=0.8, label=r"slope $-1/2$ ($\sqrt{d/n}$)")
    fits = metrics["metrics"]
    fitted = ", ".join(f"{k.split('_')[-1]}: {fits[k]['value']:.2f}"
                       for k in ("slope_n_privacy", "slope_n_statistical")
                       if k in fits and fits[k]["value"] is not None)
    ax.set(xlabel="n", ylabel="RMSE", title=f"Truncated MLE rates, d = {s.dims[i]} (fitted {fitted})")
    ax.legend(fontsize=6.5)
    ax = axes[1]
    dims = np.array(s.dims, float)
    j = int(np.argmin(np.abs(np.log(ns / (ns[-1] / 10)))))
    err = pooled["mean"]["err"]["trunc"]
    priv = np.sqrt(np.maximum(np.mean(err[:, j, 0] ** 2, -1) - np.mean(err[:, j, -1] ** 2, -1), 1e-12))
    stat = np.sqrt(np.mean(err[:, -1, -1] ** 2, -1))
    ax.loglog(dims, priv, "o-", label=f"privacy part, eps = {s.epsilons[0]}, n = {s.ns[j]:,}")
    ax.loglog(dims, stat, "s-", label=f"eps = inf, n = {s.ns[-1]:,}")
    ax.loglog(dims, priv[0] * dims / dims[0], "k:", lw=0.8, label=r"$\propto d$")
    ax.loglog(dims, stat[0] * np.sqrt(dims / dims[0]), "k--", lw=0.8, label=r"$\propto \sqrt{d}$")
    ax.set(xlabel="dimension d", ylabel="RMSE", title="Dimension dependence")
    ax.legend(fontsize=6.5)
    fig.tight_layout()


def draw_bias_floor(axes, settings, pooled, prepared, fig, **_) -> None:
    """Clip and drop plateau at their population bias; the truncated MLE does not (eps = inf and 1)."""
    s, axes = settings, axes[0]  # the one row of panels
    i = s.dims.index(s.private_centre_dim) if s.private_centre_dim in s.dims else len(s.dims) // 2
    d = s.dims[i]
    for ax, k, label in zip(axes, (len(s.epsilons), _eps_index(s.epsilons)), ("inf", "1"), strict=True):
        for m in ("trunc", "clip", "drop"):
            _errbar(ax, s.ns, pooled["mean"]["err"][m][i, :, k], *STYLE[m])
        _errbar(ax, s.ns, pooled["mean"]["err"]["empirical"][i], *STYLE["empirical"])
        bias = prepared["mean"]["bias"][str(d)]
        ax.axhline(bias["clip"], color="C1", lw=0.8, ls="-.", label=f"clip bias {bias['clip']:.3f}")
        ax.axhline(bias["drop"], color="C2", lw=0.8, ls="-.", label=f"drop bias {bias['drop']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel=r"$\|\hat\mu-\mu\|_2$",
               title=f"Bias floor, d = {d}, ||mu - mu_0|| = {s.offset}, eps = {label}")
    axes[0].legend(fontsize=6.5)
    fig.tight_layout()


def draw_covariance(axes, settings, pooled, fig, **_) -> None:
    """Relative Frobenius error against n, one panel per eps."""
    s, axes = settings, axes[0]  # the one row of panels
    for ax, (k, e) in zip(axes, enumerate(s.cov_epsilons), strict=True):
        for m in ("trunc", "clip"):
            _errbar(ax, s.cov_ns, pooled["cov"]["err"][m][:, k], *STYLE[m])
        _errbar(ax, s.cov_ns, pooled["cov"]["err"]["empirical"], *STYLE["empirical"])
        if e == 1.0 and s.cov_dim == 5:
            ns = list(PROTOTYPE_COV)
            ax.scatter(ns, [PROTOTYPE_COV[n][0] for n in ns], marker="*", s=60, color=PAPER_COLOR, zorder=4,
                       label="prototype: truncated MLE")
            ax.scatter(ns, [PROTOTYPE_COV[n][1] for n in ns], marker="P", s=40, color=PAPER_COLOR, zorder=4,
                       label="prototype: clip")
        ax.set(xscale="log", yscale="log", xlabel="n",
               ylabel=r"$\|\Sigma^{-1/2}\hat\Sigma\Sigma^{-1/2}-I\|_F$",
               title=f"Covariance, d = {s.cov_dim}, eps = {e}")
    axes[0].legend(fontsize=6.5)
    fig.tight_layout()


def draw_privacy(axes, settings, pooled, fig, **_) -> None:
    """Recomputed eps of every private run against its target: zCDP (ours) and dp_accounting (RDP)."""
    s, axes = settings, axes[0]  # the one row of panels
    ax = axes[0]
    target = pooled["privacy"]["target"]
    jitter = np.exp(np.linspace(-0.03, 0.03, target.size))
    ax.scatter(target * jitter, pooled["privacy"]["zcdp"], s=6, label="ours: zCDP -> (eps, delta)")
    ax.scatter(target * jitter, pooled["privacy"]["dpacc"], s=6, marker="x", label="dp_accounting RDP accountant")
    grid = np.array([target.min() * 0.8, target.max() * 1.2])
    ax.plot(grid, grid, color=PAPER_COLOR, lw=1, ls="--", label="target eps")
    ax.set(xscale="log", yscale="log", xlabel="target eps", ylabel="recomputed eps",
           title=f"Privacy of all {target.size} private runs (delta = {s.delta:g})")
    _eps_ticks(ax, sorted(set(target.tolist())))
    ax.legend(fontsize=6.5)
    fig.tight_layout()
