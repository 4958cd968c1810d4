"""The dptrunc figures. Each ``draw_*`` fills a row of panels (declared in ``__init__.py``, drawn
with ``squeeze=False``: ``axes[0]`` is the row) from the pooled per-seed runs.

The paper's own figures were not readable to us; the figures show error against n, eps and d
(the axes of the note's prototype table and of the sample-complexity bounds), with the
prototype's numbers from ``shared/papers/dptrunc.md`` drawn in grey where they exist. Every curve
is the mean over seeds of the per-seed RMSE (over that seed's replications) with its two-sided
95% Student-t interval over seeds, the statistic the claims judge. Figures are 7 in wide (one
row of panels) with the legend below the panels, off the data.
"""

from __future__ import annotations

import math

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_line

STYLE = {  # method -> (format, label, colour): the same colour for a method in every figure
    "trunc": ("o-", "truncated MLE (DP-GD)", "C0"),
    "trunc_private": ("D-", "truncated MLE, private coarse step", "C4"),
    "clip": ("s--", "clip + Gaussian noise", "C1"),
    "drop": ("^:", "drop and average", "C2"),
    "empirical": ("x-", "empirical (non-private)", "C3"),
}
# prototype (note): d = 10, offset 1, delta = 1e-6; (n, eps) -> truncated MLE, clip, empirical
PROTOTYPE_MEAN = {(2_000, 0.5): (0.392, 0.173, 0.069), (8_000, 0.5): (0.106, 0.125, 0.033),
                  (32_000, 1.0): (0.042, 0.118, 0.019), (128_000, 1.0): (0.022, 0.119, 0.009)}
PROTOTYPE_COV = {2_000: (0.80, 0.32), 8_000: (0.23, 0.27), 32_000: (0.088, 0.36)}  # d = 5, eps = 1
LEGEND_SIZE = 7.5


def seed_rmse(err, reps: int) -> np.ndarray:
    """Per-seed RMSE: the replications axis (last; seeds' blocks of ``reps`` joined) -> seeds."""
    err = np.asarray(err, float)
    blocks = err.reshape(*err.shape[:-1], err.shape[-1] // reps, reps)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.mean(blocks**2, axis=-1))


def seed_interval(per_seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (last axis) and the half-width of its two-sided 95% t-interval (0 with one seed)."""
    from scipy import stats

    per_seed = np.asarray(per_seed, float)
    k = per_seed.shape[-1]
    mean = per_seed.mean(axis=-1)
    if k < 2:
        return mean, np.zeros_like(mean)
    return mean, stats.t.ppf(0.975, k - 1) * per_seed.std(axis=-1, ddof=1) / math.sqrt(k)


def _curve(ax, x, per_seed, style, label, color, **kw) -> None:
    mean, half = seed_interval(per_seed)
    ax.errorbar(x, mean, yerr=half, fmt=style, ms=3, capsize=2, lw=1.1, label=label, color=color, **kw)


def _method(ax, x, err, reps, method, **kw) -> None:
    """One method's RMSE against x, with its seed interval."""
    _curve(ax, x, seed_rmse(err, reps), *STYLE[method], **kw)


def _plain_log_ticks(ax) -> None:
    """Log-axis tick labels as plain numbers (0.02, 0.1, 1e+03 -> 1000 is left to the x axis)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _legend_below(fig, axes, ncol: int = 3) -> None:
    """One legend for the figure, below the panels (off the data), each label once; plain log ticks."""
    handles = {}
    for ax in np.ravel(axes):
        _plain_log_ticks(ax)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.tight_layout()
    fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
               fontsize=LEGEND_SIZE, frameon=False)


def _value_ticks(ax, values) -> None:
    """Label the log x axis at the given values only (privacy levels, dimensions)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(values))
    ax.set_xticklabels([f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _eps_index(values, target=1.0) -> int:
    values = list(values)
    return values.index(target) if target in values else len(values) - 1


def _mean_dim(s) -> int:
    return s.dims.index(s.private_centre_dim) if s.private_centre_dim in s.dims else len(s.dims) // 2


def _decade(ns) -> int:
    return int(np.argmin(np.abs(np.log(np.array(ns) / (ns[-1] / 10)))))


def draw_mean_vs_n(axes, settings, pooled, prepared, fig, **_) -> None:
    """Error ||mu_hat - mu|| against n at eps = 1, one panel per dimension."""
    s, axes = settings, axes[0]  # the one row of panels
    k = _eps_index(s.epsilons)
    err = pooled["mean"]["err"]
    for ax, (i, d) in zip(axes, enumerate(s.dims), strict=True):
        for m in ("trunc", "trunc_private", "clip", "drop"):
            if not np.all(np.isnan(err[m][i, :, k])):
                _method(ax, s.ns, err[m][i, :, k], s.reps, m)
        _method(ax, s.ns, err["empirical"][i], s.reps, "empirical")
        reference_line(ax, prepared["mean"]["bias"][str(d)]["clip"], "clipping bias (population)")
        pts = [(n, v) for (n, e), v in PROTOTYPE_MEAN.items() if e == s.epsilons[k]] if d == 10 else []
        if pts:
            ax.scatter([n for n, _ in pts], [v[0] for _, v in pts], marker="*", s=45, color=PAPER_COLOR, zorder=4,
                       label="note's prototype: truncated MLE")
            ax.scatter([n for n, _ in pts], [v[1] for _, v in pts], marker="P", s=30, color=PAPER_COLOR, zorder=4,
                       label="note's prototype: clip")
        ax.set(xscale="log", yscale="log", xlabel="n", title=f"d = {d}, eps = {s.epsilons[k]:g}")
    axes[0].set_ylabel(r"RMSE $\|\hat\mu-\mu\|_2$")
    _legend_below(fig, axes)


def draw_mean_vs_eps(axes, settings, pooled, fig, **_) -> None:
    """Error against eps at n = a tenth of the largest n, d = the private-centre dimension."""
    s, ax = settings, axes[0][0]
    i, j = _mean_dim(s), _decade(s.ns)
    err = pooled["mean"]["err"]
    for m in ("trunc", "trunc_private", "clip", "drop"):
        if not np.all(np.isnan(err[m][i, j])):
            _method(ax, s.epsilons, err[m][i, j, :-1], s.reps, m)
    reference_line(ax, float(np.sqrt(np.mean(err["empirical"][i, j] ** 2))), "empirical (non-private)")
    ax.axhline(float(np.sqrt(np.mean(err["trunc"][i, j, -1] ** 2))), color="C0", lw=0.8, ls="-.",
               label="truncated MLE, eps = inf")
    e = np.array(s.epsilons)
    first = float(np.sqrt(np.mean(err["trunc"][i, j, 0] ** 2)))
    ax.plot(e, first * e[0] / e, color="black", lw=0.8, ls=":", label=r"$\propto 1/\varepsilon$")
    ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$", ylabel=r"RMSE $\|\hat\mu-\mu\|_2$",
           title=f"Mean, d = {s.dims[i]}, n = {s.ns[j]:,}")
    _value_ticks(ax, s.epsilons)
    _legend_below(fig, axes, ncol=2)


def _excess_per_seed(err, err_inf, reps: int) -> np.ndarray:
    """Per-seed privacy part sqrt(MSE(eps) - MSE(inf)) (floored at a tiny positive value)."""
    return np.sqrt(np.maximum(seed_rmse(err, reps) ** 2 - seed_rmse(err_inf, reps) ** 2, 1e-12))


def draw_rates(axes, settings, pooled, prepared, metrics, fig, **_) -> None:
    """Left: truncated-MLE RMSE against n per eps with slope -1 / -1/2 guides. Right: against d,
    with the converged estimator's asymptotic (delta-method) RMSE."""
    s, axes = settings, axes[0]  # the one row of panels
    i = _mean_dim(s)
    ns = np.array(s.ns, float)
    trunc = pooled["mean"]["err"]["trunc"]
    ax = axes[0]
    for k, e in enumerate([*s.epsilons, np.inf]):
        _curve(ax, ns, seed_rmse(trunc[i, :, k], s.reps), "o-", f"eps = {e:g}", f"C{k}")
    top = np.sqrt(np.mean(trunc[i, 0, 0] ** 2))
    bottom = np.sqrt(np.mean(trunc[i, -1, -1] ** 2))
    ax.plot(ns, top * ns[0] / ns, "k:", lw=0.8, label=r"slope $-1$ ($d/(n\varepsilon)$)")
    ax.plot(ns, bottom * np.sqrt(ns[-1] / ns), "k--", lw=0.8, label=r"slope $-1/2$ ($\sqrt{d/n}$)")
    fits = metrics["metrics"]
    fitted = ", ".join(f"{k.split('_')[-1][:4]}. {fits[k]['value']:.2f}"
                       for k in ("slope_n_privacy", "slope_n_statistical") if fits.get(k, {}).get("value") is not None)
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="RMSE", title=f"d = {s.dims[i]}; slopes {fitted}")
    ax = axes[1]
    dims = np.array(s.dims, float)
    j = _decade(s.ns)
    _curve(ax, dims, _excess_per_seed(trunc[:, j, 0], trunc[:, j, -1], s.reps), "o-",
           f"privacy part, eps = {s.epsilons[0]:g}, n = {s.ns[j]:,}", "C6")
    _curve(ax, dims, seed_rmse(trunc[:, -1, -1], s.reps), "s-", f"eps = inf, n = {s.ns[-1]:,}", "C5")
    asym = [prepared["asymptotic_rmse"][str(d)] for d in s.dims] if "asymptotic_rmse" in prepared else None
    if asym:
        ax.plot(dims, asym, "x", color=PAPER_COLOR, ms=7, label="converged MLE (delta method)")
    priv0 = float(np.sqrt(max(np.mean(trunc[0, j, 0] ** 2) - np.mean(trunc[0, j, -1] ** 2), 1e-12)))
    stat0 = float(np.sqrt(np.mean(trunc[0, -1, -1] ** 2)))
    ax.plot(dims, priv0 * dims / dims[0], "k:", lw=0.8, label=r"$\propto d$")
    ax.plot(dims, stat0 * np.sqrt(dims / dims[0]), "k--", lw=0.8, label=r"$\propto \sqrt{d}$")
    ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="RMSE", title="Dimension dependence (mean)")
    _value_ticks(ax, s.dims)
    _legend_below(fig, axes, ncol=3)


def draw_bias_floor(axes, settings, pooled, prepared, fig, **_) -> None:
    """Clip and drop plateau at their population bias; the truncated MLE does not (eps = inf and 1)."""
    s, axes = settings, axes[0]  # the one row of panels
    i = _mean_dim(s)
    d = s.dims[i]
    err = pooled["mean"]["err"]
    bias = prepared["mean"]["bias"][str(d)]
    for ax, k, label in zip(axes, (len(s.epsilons), _eps_index(s.epsilons)), ("inf", "1"), strict=True):
        for m in ("trunc", "clip", "drop"):
            _method(ax, s.ns, err[m][i, :, k], s.reps, m)
        _method(ax, s.ns, err["empirical"][i], s.reps, "empirical")
        ax.axhline(bias["clip"], color="C1", lw=0.8, ls="-.", label="clip: population bias")
        ax.axhline(bias["drop"], color="C2", lw=0.8, ls="-.", label="drop: population bias")
        ax.set(xscale="log", yscale="log", xlabel="n", title=f"d = {d}, ||mu - mu_0|| = {s.offset:g}, eps = {label}")
    axes[0].set_ylabel(r"RMSE $\|\hat\mu-\mu\|_2$")
    _legend_below(fig, axes)


def draw_covariance(axes, settings, pooled, fig, **_) -> None:
    """Relative Frobenius error against n, one panel per eps."""
    s, axes = settings, axes[0]  # the one row of panels
    i = s.cov_dims.index(s.cov_dim)
    err = pooled["cov"]["err"]
    for ax, (k, e) in zip(axes, enumerate(s.cov_epsilons), strict=True):
        for m in ("trunc", "trunc_private", "clip"):
            _method(ax, s.cov_ns, err[m][i, :, k], s.reps, m)
        _method(ax, s.cov_ns, err["empirical"][i], s.reps, "empirical")
        if e == 1.0 and s.cov_dim == 5:
            ns = list(PROTOTYPE_COV)
            ax.scatter(ns, [PROTOTYPE_COV[n][0] for n in ns], marker="*", s=45, color=PAPER_COLOR, zorder=4,
                       label="note's prototype: truncated MLE")
            ax.scatter(ns, [PROTOTYPE_COV[n][1] for n in ns], marker="P", s=30, color=PAPER_COLOR, zorder=4,
                       label="note's prototype: clip")
        ax.set(xscale="log", yscale="log", xlabel="n", title=f"d = {s.cov_dim}, eps = {e:g}")
    axes[0].set_ylabel(r"$\|\Sigma^{-1/2}\hat\Sigma\Sigma^{-1/2}-I\|_F$")
    _legend_below(fig, axes)


def draw_covariance_dimension(axes, settings, pooled, fig, **_) -> None:
    """Spectral error against d (public Sigma_0, largest n): its privacy part at the smallest eps
    with d^{3/2} and (sqrt d + pad)^2 sqrt d guides (left), the eps = inf error with sqrt d (right)."""
    s, axes = settings, axes[0]
    err = pooled["cov"]["err"]
    dims = np.array(s.cov_dims, float)
    privacy = seed_rmse(err["trunc_privacy_op"][:, -1, 0], s.reps)
    stat = seed_rmse(err["trunc_op"][:, -1, -1], s.reps)
    p0 = float(np.sqrt(np.mean(err["trunc_privacy_op"][0, -1, 0] ** 2)))
    s0 = float(np.sqrt(np.mean(err["trunc_op"][0, -1, -1] ** 2)))
    sens = (np.sqrt(dims) + s.cov_pad) ** 2 * np.sqrt(dims)
    ax = axes[0]
    _curve(ax, dims, privacy, "o-", f"privacy part, eps = {s.cov_epsilons[0]:g}", "C0")
    ax.plot(dims, p0 * (dims / dims[0]) ** 1.5, "k:", lw=0.8, label=r"$\propto d^{3/2}$ (the bound)")
    ax.plot(dims, p0 * sens / sens[0], "k-.", lw=0.8, label=r"$\propto (\sqrt{d}+1)^2\sqrt{d}$ (our $r^2$)")
    ax.set(title=f"Privacy part, n = {s.cov_ns[-1]:,}")
    ax = axes[1]
    _curve(ax, dims, stat, "s-", "eps = inf", "C5")
    ax.plot(dims, s0 * np.sqrt(dims / dims[0]), "k--", lw=0.8, label=r"$\propto \sqrt{d}$")
    ax.set(title=f"Statistical error, n = {s.cov_ns[-1]:,}")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="dimension d")
        _value_ticks(ax, s.cov_dims)
    axes[0].set_ylabel(r"$\|\Sigma^{-1/2}\hat\Sigma\Sigma^{-1/2}-I\|_{op}$")
    _legend_below(fig, axes, ncol=3)


def draw_privacy(axes, pooled, fig, **_) -> None:
    """Left: recomputed eps of every private run against its target. Right: the audit, per
    release, the noise's sd over the calibrated sigma (95% chi-square interval) and the worst
    replace-one change of the released statistic over its sensitivity."""
    from scipy import stats

    axes = axes[0]  # the one row of panels
    ax = axes[0]
    target = pooled["privacy"]["target"]
    jitter = np.exp(np.linspace(-0.03, 0.03, target.size))
    ax.scatter(target * jitter, pooled["privacy"]["zcdp"], s=5, label="ledger: our zCDP conversion")
    ax.scatter(target * jitter, pooled["privacy"]["dpacc"], s=5, marker="x", label="ledger: dp_accounting RDP")
    grid = np.array([target.min() * 0.8, target.max() * 1.2])
    ax.plot(grid, grid, color=PAPER_COLOR, lw=1, ls="--", label="target eps")
    ax.set(xscale="log", yscale="log", xlabel="target eps", ylabel="recomputed eps",
           title=f"Accounting, {target.size} private runs")
    _value_ticks(ax, sorted(set(target.tolist())))
    ax = axes[1]
    audit = pooled["audit"]
    names = sorted(audit)
    y = np.arange(len(names))
    rows = [np.atleast_2d(audit[k]) for k in names]
    total, count = np.array([r[:, 0].sum() for r in rows]), np.array([r[:, 1].sum() for r in rows])
    sd = np.sqrt(total / count)
    low, high = np.sqrt(total / stats.chi2.ppf(0.975, count)), np.sqrt(total / stats.chi2.ppf(0.025, count))
    ax.errorbar(sd, y, xerr=[sd - low, high - sd], fmt="o", ms=3, capsize=2, color="C0",
                label="noise sd / calibrated sigma (95% interval)")
    ax.plot([np.max(r[:, 2]) for r in rows], y, "x", color="C1", ms=6, label="worst replace-one change / sensitivity")
    ax.axvline(1.0, color=PAPER_COLOR, lw=1, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.set(xlabel="ratio (privacy needs sd >= 1, change <= 1)", title=f"Audit at the smallest n, {len(names)} releases")
    ax.invert_yaxis()
    _legend_below(fig, axes, ncol=2)
