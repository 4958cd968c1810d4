"""The seven quantile figures. Each ``draw_*`` fills its axes from the evaluated results.

The paper's own figures were not available to us; each figure shows the quantity a claim is
about, on the axes the paper's statements use (level tau, sample size n, standardised error).
Figures are 7 in wide (a printed column), legends sit beside or below the data, and every
comparison of two methods carries its 95% interval over seeds.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from gdrepro.papers.quantile import method as M
from gdrepro.papers.quantile.experiment import PATH_DECADES, SMALL_N
from gdrepro.plotting import reference_band, reference_line

BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncol": 2}  # a legend under its panel
BESIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}  # a legend right of its panel


def seed_band(per_seed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its two-sided 95% Student-t interval (none from one seed)."""
    x = np.asarray(per_seed, dtype=float)
    mean = x.mean(axis=0)
    if x.shape[0] < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, x.shape[0] - 1) * x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
    return mean, mean - half, mean + half


def _with_band(ax, n, per_seed, style, label, color) -> None:
    """Mean over seeds against n (log axis), its 95% seed interval shaded."""
    mean, low, high = seed_band(per_seed)
    ax.fill_between(n, low, high, color=color, alpha=0.25, lw=0)
    ax.plot(n, mean, style, ms=3, color=color, label=label)
    ax.set_xscale("log")


def _band_key(ax) -> None:
    """A legend entry saying what the shading around a curve is."""
    ax.fill_between([], [], [], color="0.6", alpha=0.4, lw=0, label="shaded: 95% interval over seeds")


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
               label=f"plain: crossing\n({bad.size} of {taus.size - 1} pairs)")
    ax.set(xlabel=r"level $\tau$", ylabel=r"estimate $Y_k(\tau)$",
           title=f"Quantile curves on one N(0,1) stream after k = {n_k:,} samples")
    ax.legend(**BESIDE)


def draw_crossings(ax, exps, details, **_) -> None:
    """Share of adjacent level pairs out of order against the number of samples seen, per seed."""
    for method, style, color in (("smoothed", "o-", "C0"), ("plain", "s--", "C1")):
        curve = details["crossings_vs_n"][method]
        _with_band(ax, curve["n"], curve["per_seed"], style, f"{method} SGD, last iterate", color)
    _band_key(ax)
    ax.set(xlabel="samples seen k", ylabel="share of adjacent\nlevel pairs crossed", ylim=(0, None),
           title=f"Crossings on 99 levels, {details['fine_reps_total']} N(0,1) streams")
    ax.legend(**BESIDE)


def draw_efficiency(axes, exps, details, fig, **_) -> None:
    """Left: RMSE of the averaged estimator over the theoretical sd per level at n. Right: the
    smoothed / plain RMSE ratio against the number of samples, where smoothing's cost would show."""
    left, right = axes
    rows = details["levels"]
    taus = [r["tau"] for r in rows]
    reference_band(left, 0.9, 1.15, "C2 range [0.9, 1.15]")
    reference_line(left, 1.0, "theory")
    left.plot(taus, [r["rmse_ratio_smoothed"] for r in rows], "o-", ms=3, label="smoothed SGD")
    left.plot(taus, [r["rmse_ratio_plain"] for r in rows], "s--", ms=3, label="plain SGD")
    left.set(xlabel=r"level $\tau$", ylabel=r"RMSE / $(\sqrt{\tau(1-\tau)/n}\,/f(q_\tau))$",
             title=f"Efficiency at n = {exps['main']['n']:,}, {details['reps_total']} reps")
    left.legend(**BELOW | {"ncol": 1})
    fig.subplots_adjust(wspace=0.4)
    ratio = details["rmse_vs_n"]["smoothed_over_plain"]
    n = details["rmse_vs_n"]["smoothed"]["n"]
    reference_band(right, 0.97, 1.03, "C3 range at k = n [0.97, 1.03]")
    right.plot(SMALL_N, [1.03] * len(SMALL_N), "_", ms=14, mew=2.5, color="C3", label="S3 bound 1.03 at k = 100, 1000")
    right.fill_between(n, ratio["min"], ratio["max"], color="C2", alpha=0.15, lw=0, label="range over levels (pooled)")
    _with_band(right, n, ratio["per_seed"], "o-", "mean over levels", "C2")
    _band_key(right)
    right.set(xlabel="samples seen k", ylabel="RMSE smoothed / plain", title="Smoothed / plain RMSE against k")
    right.legend(**BELOW | {"ncol": 1})


def draw_convergence(ax, exps, details, settings, **_) -> None:
    """RMSE (mean over levels) of the averaged and the un-averaged iterate against n, with the
    rates of the two tail bounds; the fitted range [n/100, n] shaded."""
    main = exps["main"]
    n = np.array(details["rmse_vs_n"]["smoothed"]["n"], dtype=float)
    for key, label, color in (("average", "averaged", "C0"), ("last", "un-averaged", "C3")):
        for method, style in (("smoothed", "o-"), ("plain", "s--")):
            _with_band(ax, n, details["rmse_vs_n"][method]["per_seed"][key], style, f"{label}, {method}", color)
    sd = M.asymptotic_sd(main["taus"], main["density"]).mean()
    gamma = settings.c * n ** (-settings.beta)
    last_sd = M.last_iterate_sd(np.array(main["taus"])[:, None], np.array(main["density"])[:, None], gamma).mean(axis=0)
    ax.plot(n, sd / np.sqrt(n), color="black", lw=1, label=r"theory, averaged: $n^{-1/2}$")
    ax.plot(n, last_sd, color="black", lw=1, ls=":", label=r"theory, un-averaged: $\sqrt{\gamma_n}$")
    ax.axvspan(n.max() / 10**PATH_DECADES, n.max(), color="0.5", alpha=0.08, lw=0, label="range of the rate fits")
    _band_key(ax)
    ax.set(yscale="log", xlabel="samples seen n", ylabel="RMSE (mean over levels)",
           title="With and without averaging, N(0,1), 19 levels")
    ax.legend(**BESIDE)


def draw_coverage(axes, exps, details, scores, **_) -> None:
    """Left: pointwise coverage per level on N(0,1), on the scale of the claim. Right: the stress
    tests (t3 streams; extreme levels from Y_0 = 0 and from the true quantile)."""
    left, right = axes
    rows = details["levels"]
    taus = np.array([r["tau"] for r in rows])
    reps = details["reps_total"]
    mc = 1.96 * np.sqrt(0.95 * 0.05 / reps)
    reference_band(left, 0.92, 0.98, "claimed range [0.92, 0.98]")
    reference_line(left, 0.95, "nominal 0.95")
    left.fill_between(taus, 0.95 - mc, 0.95 + mc, color="C5", alpha=0.25, lw=0, label=f"binomial ±1.96 se ({reps} reps)")
    left.plot(taus, [r["coverage_true_density"] for r in rows], "o-", ms=3, label="true density")
    left.plot(taus, [r["coverage_plugin_density"] for r in rows], "s-", ms=3, label="plug-in density")
    left.set(xlabel=r"level $\tau$", ylabel="coverage", ylim=(0.86, 1.0),
             title=f"N(0,1), n = {exps['main']['n']:,}")
    left.legend(**BELOW)
    reference_band(right, 0.92, 0.98, "range [0.92, 0.98]")
    right.plot(taus, [r["coverage_heavy_tail"] for r in rows], "^:", ms=3, color="C2",
               label=f"t3, 19 levels (S1), n = {exps['heavy']['n']:,}")
    se = np.sqrt(0.25 / details["stress_reps_total"])  # the widest binomial se
    for name, marker, color, label in (("extreme", "D", "C3", r"$\tau$ = 0.01, 0.99 from $Y_0$ = 0 (S2)"),
                                       ("extreme_truth", "o", "C4", r"same from $Y_0 = q_\tau$ (oracle)")):
        hits = scores[name]["hit_true"].mean(axis=0)
        right.errorbar(exps[name]["taus"], hits, yerr=1.96 * se, fmt=marker, ms=5, color=color, capsize=2, label=label)
    right.set(xlabel=r"level $\tau$", ylabel="coverage", ylim=(0, 1.02), xlim=(-0.03, 1.03),
              title="Stress tests (ours)")
    right.legend(**BELOW | {"ncol": 1})


def draw_gaussian(ax, scores, **_) -> None:
    """Histogram of the standardised error sqrt(n)(Ybar_n - q) f / sqrt(tau(1-tau)) vs N(0,1)."""
    z = scores["main"]["z"].ravel()
    grid = np.linspace(-4, 4, 400)
    ax.hist(z, bins=60, range=(-4, 4), density=True, alpha=0.6, label=f"{z.size:,} errors\n(levels pooled)")
    ax.plot(grid, stats.norm.pdf(grid), color="black", lw=1.2, label="N(0, 1)")
    ax.set(xlabel=r"$\sqrt{n}\,(\bar Y_n - q_\tau)\,f(q_\tau)/\sqrt{\tau(1-\tau)}$", ylabel="density",
           title="Gaussian approximation of the averaged estimator")
    ax.legend(**BESIDE)


def draw_tails(axes, paths, **_) -> None:
    """Empirical tail P(|Z| > t) at three sample sizes, with and without averaging, against the
    Gaussian limit and the sub-Gaussian bound 2exp(-t^2/2)."""
    t = np.linspace(0, 4.5, 200)
    k = paths["k"]
    shown = sorted({0, len(k) // 2, len(k) - 1})
    for ax, key, title in zip(axes, ("z_average", "z_last"), (r"averaged: $Z=\sqrt{k}(\bar Y_k-q)/\sigma$",
                                                              r"un-averaged: $Z=(Y_k-q)/\sigma_k$"), strict=True):
        z = np.abs(paths[key])
        for i, j in enumerate(shown):
            zj = z[j].ravel()
            tail = (zj[None, :] > t[:, None]).mean(axis=1)
            ax.semilogy(t[tail > 0], tail[tail > 0], color=f"C{i}", label=f"k = {int(k[j]):,}")
        ax.semilogy(t, 2 * stats.norm.sf(t), color="black", lw=1, label="N(0,1) limit")
        ax.semilogy(t, 2 * np.exp(-(t**2) / 2), color="gray", ls="--", lw=1, label=r"bound $2e^{-t^2/2}$")
        ax.set(xlabel="t", ylabel=r"P(|Z| > t)", ylim=(0.5 / z[0].size, 2.5), title=title)
        ax.legend(**BELOW)
