"""The six quantile figures. Each ``draw_*`` fills one axes from the evaluated results.

The paper's own figures were not available to us; each figure shows the quantity a claim is
about, on the axes the paper's statements use (level tau, sample size n, standardised error).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from gdrepro.papers.quantile import method as M
from gdrepro.plotting import reference_band, reference_line


def draw_curves(ax, exps, first, **_) -> None:
    """One stream, 99 levels, at the checkpoint where plain SGD crosses most: both curves vs truth."""
    fine = exps["fine"]
    taus, q = np.array(fine["taus"]), np.array(fine["quantile"])
    plain = first["fine"]["plain"]["last_path"]  # (checkpoints, reps, levels)
    crossed = np.diff(plain, axis=-1) < 0
    k, rep = np.unravel_index(np.argmax(crossed.sum(axis=-1)), crossed.shape[:2])
    n_k = int(first["fine"]["plain"]["checkpoints"][k])
    ax.plot(taus, q, color="black", lw=1, label="true quantile")
    ax.plot(taus, first["fine"]["smoothed"]["last_path"][k, rep], label="smoothed SGD")
    ax.plot(taus, plain[k, rep], lw=1, label="plain SGD")
    bad = np.flatnonzero(crossed[k, rep])
    ax.scatter(taus[bad + 1], plain[k, rep, bad + 1], s=14, color="C1", zorder=3,
               label=f"plain: crossing ({bad.size} of {taus.size - 1} pairs)")
    ax.set(xlabel=r"level $\tau$", ylabel=r"estimate $Y_k(\tau)$",
           title=f"Quantile curves on one N(0,1) stream after k = {n_k:,} samples")
    ax.legend(loc="upper left")


def draw_crossings(ax, exps, details, **_) -> None:
    """Share of adjacent level pairs out of order, against the number of samples seen."""
    for method, style in (("smoothed", "o-"), ("plain", "s--")):
        curve = details["crossings_vs_n"][method]
        ax.semilogx(curve["n"], curve["rate"], style, ms=3, label=f"{method} SGD (last iterate)")
    ax.set(xlabel="samples seen k", ylabel="share of adjacent pairs crossed",
           title=f"Crossings on 99 levels, {details['fine_reps_total']} N(0,1) streams")
    ax.legend()


def draw_efficiency(ax, exps, details, **_) -> None:
    """RMSE of the averaged estimator over the theoretical sd, per level (root-n efficiency)."""
    rows = details["levels"]
    taus = [r["tau"] for r in rows]
    reference_band(ax, 0.9, 1.15, "claimed range [0.9, 1.15]")
    reference_line(ax, 1.0, r"$\sqrt{\tau(1-\tau)/n}\,/\,f(q_\tau)$")
    ax.plot(taus, [r["rmse_ratio_smoothed"] for r in rows], "o-", ms=3, label="smoothed SGD (averaged)")
    ax.plot(taus, [r["rmse_ratio_plain"] for r in rows], "s--", ms=3, label="plain SGD (averaged)")
    main = exps["main"]
    ax.set(xlabel=r"level $\tau$", ylabel="RMSE / theoretical sd",
           title=f"Root-n efficiency, N(0,1), n = {main['n']:,}, {details['reps_total']} reps")
    ax.legend()


def draw_convergence(ax, exps, details, **_) -> None:
    """RMSE (mean over levels) of the averaged estimator against n, with the root-n rate."""
    main = exps["main"]
    sd = M.asymptotic_sd(main["taus"], main["density"])
    for method, style in (("smoothed", "o-"), ("plain", "s--")):
        curve = details["rmse_vs_n"][method]
        ax.loglog(curve["n"], np.mean(curve["rmse"], axis=1), style, ms=3, label=f"{method} SGD")
    n = np.array(details["rmse_vs_n"]["smoothed"]["n"], dtype=float)
    ax.loglog(n, sd.mean() / np.sqrt(n), color="black", lw=1, label=r"theory: mean$_\tau$ sd$/\sqrt{n}$")
    ax.set(xlabel="sample size n", ylabel="RMSE (mean over levels)", title="Convergence of the averaged estimator")
    ax.legend()


def draw_coverage(ax, exps, details, scores, **_) -> None:
    """Pointwise coverage of 95% CIs per level; simultaneous band and stress tests as markers."""
    rows = details["levels"]
    taus = np.array([r["tau"] for r in rows])
    reps = details["reps_total"]
    mc = 1.96 * np.sqrt(0.95 * 0.05 / reps)
    reference_band(ax, 0.92, 0.98, "claimed range [0.92, 0.98]")
    reference_line(ax, 0.95, "nominal 0.95")
    ax.fill_between(taus, 0.95 - mc, 0.95 + mc, color="C5", alpha=0.2, lw=0, label="Monte Carlo ±1.96 se")
    ax.plot(taus, [r["coverage_true_density"] for r in rows], "o-", ms=3, label="N(0,1), true density")
    ax.plot(taus, [r["coverage_plugin_density"] for r in rows], "s-", ms=3, label="N(0,1), plug-in density")
    ax.plot(taus, [r["coverage_heavy_tail"] for r in rows], "^:", ms=3, label="t3 (stress test)")
    hits = scores["extreme"]["hit_true"].mean(axis=0)
    ax.plot(exps["extreme"]["taus"], hits, "D", ms=5, color="C3", label="extreme levels (stress test)")
    ax.set(xlabel=r"level $\tau$", ylabel="coverage", ylim=(min(0.5, hits.min() - 0.05), 1.02),
           title="Coverage of pointwise 95% confidence intervals")
    ax.legend(fontsize=6.5, loc="center", ncol=2)


def draw_gaussian(ax, scores, **_) -> None:
    """Histogram of the standardised error sqrt(n)(Ybar_n - q) f / sqrt(tau(1-tau)) vs N(0,1)."""
    z = scores["main"]["z"].ravel()
    grid = np.linspace(-4, 4, 400)
    ax.hist(z, bins=60, range=(-4, 4), density=True, alpha=0.6, label=f"{z.size:,} errors")
    ax.plot(grid, stats.norm.pdf(grid), color="black", lw=1.2, label="N(0, 1)")
    ax.set(xlabel=r"$\sqrt{n}\,(\bar Y_n - q_\tau)\,f(q_\tau)/\sqrt{\tau(1-\tau)}$", ylabel="density",
           title="Gaussian approximation, all levels pooled")
    ax.legend(loc="upper left")


def draw_tails(ax, scores, **_) -> None:
    """Empirical tail P(|Z| > t) of the standardised error against the sub-Gaussian bound."""
    z = np.abs(scores["main"]["z"].ravel())
    t = np.linspace(0, 4.5, 200)
    tail = np.array([(z > s).mean() for s in t])
    ax.semilogy(t[tail > 0], tail[tail > 0], label="empirical tail, averaged SGD")
    ax.semilogy(t, 2 * stats.norm.sf(t), color="black", lw=1, label="Gaussian limit 2(1-Φ(t))")
    ax.semilogy(t, 2 * np.exp(-(t**2) / 2), color="gray", ls="--", lw=1, label=r"bound $2e^{-t^2/2}$")
    ax.set(xlabel="t", ylabel=r"P(|Z| > t)", ylim=(0.5 / z.size, 2.5), title="Tail of the standardised error")
    ax.legend()

