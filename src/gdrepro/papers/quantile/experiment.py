"""Simulation study for smoothed-SGD quantiles: prepare -> simulate -> evaluate -> figures.

Five experiments, all on streams generated in code (the paper's own simulation tables were not
available to us, so the design below is ours, built from the paper's setting):

- ``main``           N(0,1), 19 levels 0.05..0.95, n samples: efficiency, coverage, tails at several
                     n (smoothed and plain SGD on the *same* streams, so their RMSEs compare pairwise)
- ``fine``           N(0,1), 99 levels 0.01..0.99: crossings of the estimated curve
- ``heavy``          Student t3, 19 levels: coverage under heavy tails (a stress test)
- ``extreme``        N(0,1), levels 0.01 and 0.99: coverage at extreme levels (a stress test)
- ``extreme_truth``  the same streams as ``extreme``, every level started at its true quantile

Every experiment starts from the setting ``start`` (``zero``: Y_0 = 0, the design; ``truth``:
Y_0 = q_tau, an oracle start) except ``extreme_truth``, which always starts at the truth.
Replications are split over seeds; seed ``k`` draws its streams from
``rng("quantile", stream, k)`` (``stream`` is the experiment's name, ``extreme`` for both
extreme-level experiments).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import stats

from gdrepro import runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.quantile import method as M
from gdrepro.runtime import log
from gdrepro.tables import write_table

METHODS = {"smoothed": M.smoothed_sgd_quantiles, "plain": M.sgd_quantiles}
DISTRIBUTIONS = {
    "normal": (stats.norm(), lambda g, size: g.standard_normal(size)),
    "t3": (stats.t(3), lambda g, size: g.standard_t(3, size)),
}
TRUTH_GRID = np.round(np.arange(1, 100) / 100, 2)
TAIL_T = np.round(np.arange(0.25, 4.01, 0.25), 2)
STARTS = ("zero", "truth")
SMALL_N = (100, 1000)  # checkpoints where smoothing's cost at small n is judged (S3)
PATH_DECADES = 2  # tails and rates at several n: the checkpoints k in [n / 10**PATH_DECADES, n]


@dataclass(frozen=True)
class QuantileSettings:
    """Numbers of one scale; scales change these, never the code path."""

    reps: int  # replications per seed in the main / heavy / extreme experiments
    n: int  # stream length, main experiment
    fine_reps: int
    fine_n: int
    stress_reps: int
    stress_n: int
    levels: int = 19  # main grid 0.05..0.95
    a: float = 1.0  # bandwidth factor, a > 1/2
    c: float = 1.0  # step size gamma_k = c k^-beta
    beta: float = 0.6
    checkpoints: int = 13  # log-spaced sample sizes at which the running average is recorded
    start: str = "zero"  # Y_0: "zero" (the design) or "truth" (each level at its true quantile)

    def __post_init__(self) -> None:
        if self.a <= 0.5:
            raise ValueError(f"a={self.a} must exceed 1/2")
        if not 0.5 < self.beta < 1 or self.c <= 0:
            raise ValueError(f"need beta in (1/2, 1) and c > 0, got beta={self.beta}, c={self.c}")
        if not 2 <= self.levels <= 91:
            raise ValueError(f"levels={self.levels} must lie in 2..91 (a 0.01-spaced grid in [0.05, 0.95])")
        if min(self.reps, self.fine_reps, self.stress_reps) < 1 or min(self.n, self.fine_n, self.stress_n) < 10:
            raise ValueError("need at least 1 replication and 10 samples per experiment")
        if self.checkpoints < 2:
            raise ValueError(f"checkpoints={self.checkpoints} must be at least 2")
        if self.start not in STARTS:
            raise ValueError(f"start={self.start!r} must be one of {STARTS}")


SETTINGS = {
    # Per seed job; the default five seeds give 500 (default) and 1000 (paper) replications.
    "smoke": QuantileSettings(reps=32, n=2_000, fine_reps=40, fine_n=2_000, stress_reps=32, stress_n=2_000),
    "default": QuantileSettings(
        reps=100, n=100_000, fine_reps=200, fine_n=10_000, stress_reps=100, stress_n=10_000
    ),
    "paper": QuantileSettings(
        reps=200, n=100_000, fine_reps=200, fine_n=10_000, stress_reps=200, stress_n=100_000
    ),
}


# --- data: the population quantiles and densities (data/quantile/truth.csv) -----------------


def build_truth(path: Path) -> None:
    """Population quantile ``q_tau`` and density ``f(q_tau)`` of each stream distribution."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["distribution", "tau", "quantile", "density"])
        for name, (dist, _) in DISTRIBUTIONS.items():
            for tau in TRUTH_GRID:
                q = dist.ppf(tau)
                # 10 significant digits: far above scipy's last-ulp differences across versions
                writer.writerow([name, f"{tau:.2f}", f"{q:.10g}", f"{dist.pdf(q):.10g}"])


def _truth(data_dir: Path, distribution: str, taus: np.ndarray) -> tuple[list, list]:
    path = data_dir / "quantile" / "truth.csv"
    if not path.exists():
        raise GdreproError(f"missing dataset {path} (run `gdrepro data verify --build-missing`)")
    with path.open() as handle:
        table = {(r["distribution"], r["tau"]): r for r in csv.DictReader(handle)}
    rows = []
    for tau in taus:
        key = (distribution, f"{tau:.2f}")
        if key not in table:
            raise GdreproError(f"{path} has no row for {key}")
        rows.append(table[key])
    return [float(r["quantile"]) for r in rows], [float(r["density"]) for r in rows]


# --- stages -----------------------------------------------------------------------------------


def start_values(distribution: str, levels: np.ndarray, start: str) -> np.ndarray:
    """``Y_0`` for every tracked level: 0, or the level's true quantile (non-decreasing in the
    level either way, so smoothed SGD keeps its non-crossing guarantee)."""
    if start == "zero":
        return np.zeros(len(levels))
    return DISTRIBUTIONS[distribution][0].ppf(np.asarray(levels, dtype=float))


def prepare(ctx: StageContext) -> None:
    """Resolve the five experiments of this scale: distribution, levels, truth, n, reps, start."""
    s: QuantileSettings = ctx.settings
    main_taus = np.unique(np.round(np.linspace(0.05, 0.95, s.levels), 2))
    extremes = np.array([0.01, 0.99])
    design = {  # distribution, levels, n, reps, methods, plug-in, start, stream
        "main": ("normal", main_taus, s.n, s.reps, ["smoothed", "plain"], True, s.start, "main"),
        "fine": ("normal", TRUTH_GRID, s.fine_n, s.fine_reps, ["smoothed", "plain"], False, s.start, "fine"),
        "heavy": ("t3", main_taus, s.stress_n, s.stress_reps, ["smoothed"], True, s.start, "heavy"),
        "extreme": ("normal", extremes, s.stress_n, s.stress_reps, ["smoothed"], True, s.start, "extreme"),
        "extreme_truth": ("normal", extremes, s.stress_n, s.stress_reps, ["smoothed"], True, "truth", "extreme"),
    }
    experiments = {}
    for name, (dist, taus, n, reps, methods, plugin, start, stream) in design.items():
        q, f = _truth(ctx.data_dir, dist, taus)
        levels = M.augmented_levels(taus, n) if plugin else taus
        marks = {int(k) for k in np.geomspace(10, n, s.checkpoints)} | {k for k in SMALL_N if k <= n}
        experiments[name] = {
            "distribution": dist,
            "taus": taus.tolist(),
            "levels": levels.tolist(),  # taus, then tau-h and tau+h for the plug-in density
            "quantile": q,
            "density": f,
            "n": n,
            "reps": reps,
            "methods": methods,
            "checkpoints": sorted(marks),
            "start": start,
            "y0": start_values(dist, levels, start).tolist(),  # per tracked level; plain SGD: the first len(taus)
            "stream": stream,
        }
    ctx.write_prepared({"experiments": experiments})


def run_seed(ctx: StageContext) -> dict:
    """Run every method of every experiment on this seed's streams; one MLflow run per method.

    Replications pool over seeds (axis -2 of the paths, 0 of the estimates); timings average.
    """
    s: QuantileSettings = ctx.settings
    experiments = ctx.read_prepared()["experiments"]
    results: dict[str, dict] = {name: {} for name in experiments}
    for method in ("smoothed", "plain"):
        with ctx.tracked_run(method) as run:
            for name, exp in experiments.items():
                if method not in exp["methods"]:
                    continue
                # smoothed SGD also tracks tau -+ h for the plug-in density; plain SGD the levels only
                kwargs, levels = ({"a": s.a}, exp["levels"]) if method == "smoothed" else ({}, exp["taus"])
                result = METHODS[method](
                    DISTRIBUTIONS[exp["distribution"]][1],
                    levels,
                    c=s.c,
                    beta=s.beta,
                    n=exp["n"],
                    reps=exp["reps"],
                    rng=ctx.rng(exp["stream"]),  # same streams for both methods (and both extreme starts)
                    y0=np.array(exp["y0"][: len(levels)]),
                    checkpoints=exp["checkpoints"],
                    **kwargs,
                )
                log(
                    f"seed {ctx.seed} {name}/{method}: {exp['reps']} reps x n={exp['n']} x "
                    f"{len(levels)} levels in {result.seconds:.1f} s "
                    f"({result.updates_per_second / 1e6:.0f} M updates/s)"
                )
                results[name][method] = {
                    "last": runs.concat(result.last, axis=-2),
                    "average": runs.concat(result.average, axis=-2),
                    "average_path": runs.concat(result.average_path.astype(np.float32), axis=-2),
                    "last_path": runs.concat(result.last_path.astype(np.float32), axis=-2),  # rounding keeps order
                    "checkpoints": runs.first(result.checkpoints),
                    "seconds": runs.mean(result.seconds),
                    "updates": runs.mean(float(result.updates)),
                }
                sd = M.asymptotic_sd(exp["taus"], exp["density"])
                err = result.average_path[..., : len(exp["taus"])] - np.array(exp["quantile"])
                efficiency = np.sqrt((err**2).mean(axis=1)) * np.sqrt(result.checkpoints)[:, None] / sd
                run.log_curve(f"{name}.efficiency", result.checkpoints, efficiency.mean(axis=1))
                run.log_metrics({f"{name}.updates_per_second": result.updates_per_second})
    return results


@cache
def _band_critical_value(taus: tuple[float, ...]) -> float:
    return M.band_critical_value(np.array(taus), 0.95)


def standardised_scores(exp: dict, run: dict) -> dict[str, np.ndarray]:
    """Per-level errors and interval hits of the averaged estimator of one experiment/method
    (``run``: that method's results in that experiment)."""
    taus = np.array(exp["taus"])
    q, f, n = np.array(exp["quantile"]), np.array(exp["density"]), exp["n"]
    average = run["average"]
    estimate = average[:, : taus.size]
    sd_true = M.asymptotic_sd(taus, f)
    z = np.sqrt(n) * (estimate - q) / sd_true
    scores = {"estimate": estimate, "z": z, "rmse_ratio": np.sqrt((z**2).mean(axis=0))}
    if average.shape[-1] > taus.size:  # smoothed SGD tracked tau -+ h: plug-in density available
        _, sd_plugin = M.plugin_sd(taus, average, n)
        lo, hi = M.pointwise_intervals(estimate, sd_true, n, 0.95)
        scores["hit_true"] = (lo <= q) & (q <= hi)
        lo, hi = M.pointwise_intervals(estimate, sd_plugin, n, 0.95)
        scores["hit_plugin"] = (lo <= q) & (q <= hi)
        crit = _band_critical_value(tuple(exp["taus"]))
        scores["band_true"] = np.all(np.abs(z) <= crit, axis=1)
        scores["band_plugin"] = np.all(np.sqrt(n) * np.abs(estimate - q) / sd_plugin <= crit, axis=1)
    return scores


def rmse_curves(exp: dict, run: dict) -> dict[str, np.ndarray]:
    """RMSE per checkpoint and level of the averaged and the un-averaged iterate, (K, L)."""
    err = {key: run[f"{key}_path"][..., : len(exp["taus"])].astype(float) - np.array(exp["quantile"])
           for key in ("average", "last")}
    return {key: np.sqrt((e**2).mean(axis=1)) for key, e in err.items()}


def path_scores(exp: dict, run: dict, c: float, beta: float) -> dict[str, np.ndarray]:
    """Errors of the averaged and the un-averaged iterate at the checkpoints ``k`` in
    ``[n / 10**PATH_DECADES, n]`` of one experiment/method, standardised by their scales:
    ``sqrt(k)(Ybar_k - q) / sd`` (:func:`method.asymptotic_sd`) and ``(Y_k - q) / sd_k``
    (:func:`method.last_iterate_sd`). ``z_*`` are (K, reps, L); ``rmse_*`` are (K, L)."""
    taus = np.array(exp["taus"])
    q, f = np.array(exp["quantile"]), np.array(exp["density"])
    k = np.asarray(run["checkpoints"])
    keep = k >= exp["n"] / 10**PATH_DECADES
    k = k[keep]
    err_avg = run["average_path"][keep][..., : taus.size].astype(float) - q
    err_last = run["last_path"][keep][..., : taus.size].astype(float) - q
    gamma = c * k.astype(float) ** (-beta)
    rmse = rmse_curves(exp, run)
    return {
        "k": k,
        "z_average": np.sqrt(k)[:, None, None] * err_avg / M.asymptotic_sd(taus, f),
        "z_last": err_last / M.last_iterate_sd(taus, f, gamma[:, None, None]),
        "rmse_average": rmse["average"][keep],
        "rmse_last": rmse["last"][keep],
    }


def rmse_at(exp: dict, run: dict, k: int) -> np.ndarray:
    """RMSE per level of the averaged estimator after ``k`` samples (a recorded checkpoint)."""
    at = int(np.flatnonzero(np.asarray(run["checkpoints"]) == k)[0])
    return rmse_curves(exp, run)["average"][at]


def _tail_max(z: np.ndarray) -> float:
    """Largest ratio of the empirical tail to the bound over ``TAIL_T`` and the checkpoints
    (axis 0 of ``z``), replications and levels pooled."""
    ratio = M.tail_over_bound(z.reshape(z.shape[0], -1), TAIL_T)
    return float(ratio[np.isfinite(ratio)].max())


def evaluate(ctx: StageContext) -> None:
    """Every number the claims need, pooled over seeds and per seed; per-level tables."""
    exps = ctx.read_prepared()["experiments"]
    seed_runs = ctx.runs()
    s: QuantileSettings = ctx.settings

    def compute(run: dict) -> dict[str, float]:
        main = {m: standardised_scores(exps["main"], run["main"][m]) for m in ("smoothed", "plain")}
        heavy = standardised_scores(exps["heavy"], run["heavy"]["smoothed"])
        extreme = standardised_scores(exps["extreme"], run["extreme"]["smoothed"])
        extreme_truth = standardised_scores(exps["extreme_truth"], run["extreme_truth"]["smoothed"])
        path = path_scores(exps["main"], run["main"]["smoothed"], s.c, s.beta)
        small_n = {
            k: rmse_at(exps["main"], run["main"]["smoothed"], k) / rmse_at(exps["main"], run["main"]["plain"], k)
            for k in SMALL_N
            if k <= exps["main"]["n"]
        }
        fine = run["fine"]
        smoothed_fine = [fine["smoothed"][k] for k in ("last", "average", "last_path", "average_path")]
        ratio = main["smoothed"]["rmse_ratio"] / main["plain"]["rmse_ratio"]
        z = np.abs(main["smoothed"]["z"]).ravel()
        tail = np.array([(z > t).mean() for t in TAIL_T]) / (2 * np.exp(-(TAIL_T**2) / 2))
        return {
            "smoothed_crossing_rate": max(M.crossing_rate(x) for x in smoothed_fine),
            "plain_crossing_rate_path": M.crossing_rate(fine["plain"]["last_path"]),
            "plain_crossing_rate_fine": M.crossing_rate(fine["plain"]["last"]),
            "plain_crossing_rate_fine_average": M.crossing_rate(fine["plain"]["average"]),
            "plain_crossing_rate_main": M.crossing_rate(run["main"]["plain"]["last"]),
            "efficiency_min": main["smoothed"]["rmse_ratio"].min(),
            "efficiency_max": main["smoothed"]["rmse_ratio"].max(),
            "efficiency_plain_min": main["plain"]["rmse_ratio"].min(),
            "efficiency_plain_max": main["plain"]["rmse_ratio"].max(),
            "rmse_smoothed_over_plain_min": ratio.min(),
            "rmse_smoothed_over_plain_max": ratio.max(),
            "coverage_pointwise_min": main["smoothed"]["hit_true"].mean(axis=0).min(),
            "coverage_pointwise_max": main["smoothed"]["hit_true"].mean(axis=0).max(),
            "coverage_pointwise_plugin_min": main["smoothed"]["hit_plugin"].mean(axis=0).min(),
            "coverage_pointwise_plugin_max": main["smoothed"]["hit_plugin"].mean(axis=0).max(),
            "coverage_simultaneous": main["smoothed"]["band_true"].mean(),
            "coverage_simultaneous_plugin": main["smoothed"]["band_plugin"].mean(),
            "coverage_heavy_tail_mean": heavy["hit_true"].mean(),
            "coverage_heavy_tail_min": heavy["hit_true"].mean(axis=0).min(),
            "coverage_heavy_tail_max": heavy["hit_true"].mean(axis=0).max(),
            "coverage_extreme_min": extreme["hit_true"].mean(axis=0).min(),
            "coverage_extreme_max": extreme["hit_true"].mean(axis=0).max(),
            "coverage_extreme_true_start_min": extreme_truth["hit_true"].mean(axis=0).min(),
            "coverage_extreme_true_start_max": extreme_truth["hit_true"].mean(axis=0).max(),
            "standardised_error_ks": stats.kstest(main["smoothed"]["z"].ravel(), "norm").statistic,
            "tail_over_bound_max": tail[np.isfinite(tail)].max(),
            "tail_over_bound_max_path": _tail_max(path["z_average"]),
            "tail_last_over_bound_max": _tail_max(path["z_last"]),
            "rate_average": float(M.log_log_slope(path["k"], path["rmse_average"]).mean()),
            "rate_last": float(M.log_log_slope(path["k"], path["rmse_last"]).mean()),
            **{f"rmse_smoothed_over_plain_max_k{k}": float(r.max()) for k, r in small_n.items()},
            **{f"rmse_smoothed_over_plain_min_k{k}": float(r.min()) for k, r in small_n.items()},
        }

    pooled = ctx.pooled()
    metrics = across_seeds(compute, seed_runs, pooled)
    details = _details(exps, pooled, seed_runs)
    performance = {f"updates_per_second_{m}": _throughput(seed_runs, m) for m in METHODS}
    write_metrics(ctx, metrics, details, performance)
    write_table(ctx.tables_dir / "levels", details["levels"], caption="Per-level results, main experiment")
    log(f"wrote {ctx.metrics_path}")


def _throughput(seed_runs: list[dict], method: str) -> float:
    """Sample-level updates per second of ``method`` over all experiments and seeds."""
    timed = [exp[method] for run in seed_runs for exp in run.values() if method in exp]
    return sum(float(t["updates"]) for t in timed) / sum(float(t["seconds"]) for t in timed)


def _crossing_curve(run: dict) -> np.ndarray:
    """Share of adjacent level pairs out of order at each checkpoint (last iterate)."""
    return (np.diff(run["last_path"], axis=-1) < 0).mean(axis=(1, 2))


def _details(exps: dict, pooled: dict, seed_runs: list[dict]) -> dict:
    """Per-level and per-sample-size numbers the figures and tables show; ``per_seed`` entries
    (seeds first) give the figures their intervals over seeds."""
    main = exps["main"]
    sm = standardised_scores(main, pooled["main"]["smoothed"])
    pl = standardised_scores(main, pooled["main"]["plain"])
    heavy = standardised_scores(exps["heavy"], pooled["heavy"]["smoothed"])
    rows = [
        {
            "tau": tau,
            "quantile": main["quantile"][j],
            "rmse_ratio_smoothed": float(sm["rmse_ratio"][j]),
            "rmse_ratio_plain": float(pl["rmse_ratio"][j]),
            "coverage_true_density": float(sm["hit_true"][:, j].mean()),
            "coverage_plugin_density": float(sm["hit_plugin"][:, j].mean()),
            "coverage_heavy_tail": float(heavy["hit_true"][:, j].mean()),
        }
        for j, tau in enumerate(main["taus"])
    ]
    curves, seeds = {}, {}
    for method in ("smoothed", "plain"):
        pooled_rmse = rmse_curves(main, pooled["main"][method])
        seeds[method] = [rmse_curves(main, run["main"][method]) for run in seed_runs]
        curves[method] = {
            "n": pooled["main"][method]["checkpoints"].tolist(),
            "rmse": pooled_rmse["average"].tolist(),
            "rmse_last": pooled_rmse["last"].tolist(),
            "per_seed": {key: [c[key].mean(axis=1).tolist() for c in seeds[method]] for key in ("average", "last")},
        }
    ratio = np.array(curves["smoothed"]["rmse"]) / np.array(curves["plain"]["rmse"])
    curves["smoothed_over_plain"] = {  # the averaged estimators on the same streams
        "min": ratio.min(axis=1).tolist(),
        "max": ratio.max(axis=1).tolist(),
        "per_seed": [(sm["average"] / pl["average"]).mean(axis=1).tolist()
                     for sm, pl in zip(seeds["smoothed"], seeds["plain"], strict=True)],
    }
    crossings = {
        method: {
            "n": pooled["fine"][method]["checkpoints"].tolist(),
            "rate": _crossing_curve(pooled["fine"][method]).tolist(),
            "per_seed": [_crossing_curve(run["fine"][method]).tolist() for run in seed_runs],
        }
        for method in ("smoothed", "plain")
    }
    return {
        "levels": rows,
        "rmse_vs_n": curves,
        "crossings_vs_n": crossings,
        "reps_total": int(sm["z"].shape[0]),
        "fine_reps_total": int(pooled["fine"]["plain"]["last"].shape[0]),
        "stress_reps_total": int(pooled["extreme"]["smoothed"]["last"].shape[0]),
    }


def figure_inputs(ctx: StageContext) -> dict:
    """What the figures are drawn from: the design, the pooled scores and seed 0's streams."""
    exps = ctx.read_prepared()["experiments"]
    pooled = ctx.pooled()
    s: QuantileSettings = ctx.settings
    return {
        "exps": exps,
        "scores": {name: standardised_scores(exps[name], pooled[name]["smoothed"])
                   for name in ("main", "extreme", "extreme_truth")},
        "paths": path_scores(exps["main"], pooled["main"]["smoothed"], s.c, s.beta),
        "first": ctx.read_run(ctx.seeds[0]),
    }
