"""Simulation study for smoothed-SGD quantiles: prepare -> simulate -> evaluate -> figures.

Four experiments, all on streams generated in code (the paper's own simulation tables were not
available to us, so the design below is ours, built from the paper's setting):

- ``main``     N(0,1), 19 levels 0.05..0.95, n samples: efficiency, coverage, tails (smoothed and
               plain SGD on the *same* streams, so their RMSEs compare pairwise)
- ``fine``     N(0,1), 99 levels 0.01..0.99: crossings of the estimated curve
- ``heavy``    Student t3, 19 levels: coverage under heavy tails (a stress test)
- ``extreme``  N(0,1), levels 0.01 and 0.99: coverage at extreme levels (a stress test)

Replications are split over seeds; seed ``k`` draws its streams from
``rng("quantile", experiment, k)``.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import stats

from gdrepro import plotting, tracking
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, read_metrics, write_metrics
from gdrepro.paper import Paper, StageContext, stages
from gdrepro.papers.quantile import method as M
from gdrepro.papers.quantile.figures import DRAW
from gdrepro.report import write_table
from gdrepro.runtime import log, rng

METHODS = {"smoothed": M.smoothed_sgd_quantiles, "plain": M.sgd_quantiles}
DISTRIBUTIONS = {
    "normal": (stats.norm(), lambda g, size: g.standard_normal(size)),
    "t3": (stats.t(3), lambda g, size: g.standard_t(3, size)),
}
TRUTH_GRID = np.round(np.arange(1, 100) / 100, 2)
TAIL_T = np.round(np.arange(0.25, 4.01, 0.25), 2)


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


def prepare(ctx: StageContext) -> None:
    """Resolve the four experiments of this scale: distribution, levels, truth, n, reps."""
    s: QuantileSettings = ctx.settings
    main_taus = np.unique(np.round(np.linspace(0.05, 0.95, s.levels), 2))
    design = {
        "main": ("normal", main_taus, s.n, s.reps, ["smoothed", "plain"], True),
        "fine": ("normal", TRUTH_GRID, s.fine_n, s.fine_reps, ["smoothed", "plain"], False),
        "heavy": ("t3", main_taus, s.stress_n, s.stress_reps, ["smoothed"], True),
        "extreme": ("normal", np.array([0.01, 0.99]), s.stress_n, s.stress_reps, ["smoothed"], True),
    }
    experiments = {}
    for name, (dist, taus, n, reps, methods, plugin) in design.items():
        q, f = _truth(ctx.data_dir, dist, taus)
        levels = M.augmented_levels(taus, n) if plugin else taus
        marks = np.unique(np.geomspace(10, n, s.checkpoints).astype(int)).tolist()
        experiments[name] = {
            "distribution": dist,
            "taus": taus.tolist(),
            "levels": levels.tolist(),  # taus, then tau-h and tau+h for the plug-in density
            "quantile": q,
            "density": f,
            "n": n,
            "reps": reps,
            "methods": methods,
            "checkpoints": marks,
        }
    ctx.write_prepared({"experiments": experiments})


def simulate(ctx: StageContext) -> None:
    """Run every method of every experiment on this seed's streams; one MLflow run per method."""
    s: QuantileSettings = ctx.settings
    experiments = ctx.read_prepared()["experiments"]
    arrays: dict[str, np.ndarray] = {}
    for method in ("smoothed", "plain"):
        with tracking.tracked_run("quantile", method, ctx.scale, ctx.seed, asdict(s), "quantile_simulate") as run:
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
                    rng=rng("quantile", name, ctx.seed),  # same streams for both methods
                    checkpoints=exp["checkpoints"],
                    **kwargs,
                )
                log(
                    f"seed {ctx.seed} {name}/{method}: {exp['reps']} reps x n={exp['n']} x "
                    f"{len(levels)} levels in {result.seconds:.1f} s "
                    f"({result.updates_per_second / 1e6:.0f} M updates/s)"
                )
                key = f"{name}__{method}__"
                arrays |= {
                    key + "last": result.last,
                    key + "average": result.average,
                    key + "average_path": result.average_path.astype(np.float32),
                    key + "last_path": result.last_path.astype(np.float32),  # rounding keeps order
                    key + "checkpoints": result.checkpoints,
                    key + "seconds": np.array(result.seconds),
                    key + "updates": np.array(result.updates, dtype=float),
                }
                sd = M.asymptotic_sd(exp["taus"], exp["density"])
                err = result.average_path[..., : len(exp["taus"])] - np.array(exp["quantile"])
                efficiency = np.sqrt((err**2).mean(axis=1)) * np.sqrt(result.checkpoints)[:, None] / sd
                run.log_curve(f"{name}.efficiency", result.checkpoints, efficiency.mean(axis=1))
                run.log_metrics({f"{name}.updates_per_second": result.updates_per_second})
    ctx.write_run(arrays)


def _pool(runs: list[dict]) -> dict:
    """All seeds' replications as one run (reps are axis -2; timings are averaged)."""
    pooled = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if first.ndim >= 2:
            pooled[key] = np.concatenate(values, axis=-2)
        else:
            pooled[key] = np.mean(values, axis=0) if first.ndim == 0 else first
    return pooled


@cache
def _band_critical_value(taus: tuple[float, ...]) -> float:
    return M.band_critical_value(np.array(taus), 0.95)


def standardised_scores(exp: dict, run: dict, prefix: str) -> dict[str, np.ndarray]:
    """Per-level errors and interval hits of the averaged estimator of one experiment/method."""
    taus = np.array(exp["taus"])
    q, f, n = np.array(exp["quantile"]), np.array(exp["density"]), exp["n"]
    average = run[prefix + "average"]
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


def evaluate(ctx: StageContext) -> None:
    """Every number the claims need, pooled over seeds and per seed; per-level tables."""
    exps = ctx.read_prepared()["experiments"]
    runs = [ctx.read_run(seed) for seed in ctx.seeds]

    def compute(run: dict) -> dict[str, float]:
        main = {m: standardised_scores(exps["main"], run, f"main__{m}__") for m in ("smoothed", "plain")}
        heavy = standardised_scores(exps["heavy"], run, "heavy__smoothed__")
        extreme = standardised_scores(exps["extreme"], run, "extreme__smoothed__")
        smoothed_fine = [run[f"fine__smoothed__{k}"] for k in ("last", "average", "last_path", "average_path")]
        ratio = main["smoothed"]["rmse_ratio"] / main["plain"]["rmse_ratio"]
        z = np.abs(main["smoothed"]["z"]).ravel()
        tail = np.array([(z > t).mean() for t in TAIL_T]) / (2 * np.exp(-(TAIL_T**2) / 2))
        return {
            "smoothed_crossing_rate": max(M.crossing_rate(x) for x in smoothed_fine),
            "plain_crossing_rate_path": M.crossing_rate(run["fine__plain__last_path"]),
            "plain_crossing_rate_fine": M.crossing_rate(run["fine__plain__last"]),
            "plain_crossing_rate_fine_average": M.crossing_rate(run["fine__plain__average"]),
            "plain_crossing_rate_main": M.crossing_rate(run["main__plain__last"]),
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
            "standardised_error_ks": stats.kstest(main["smoothed"]["z"].ravel(), "norm").statistic,
            "tail_over_bound_max": tail[np.isfinite(tail)].max(),
        }

    pooled = _pool(runs)
    metrics = across_seeds(compute, runs, pooled)
    details = _details(exps, pooled)
    performance = {f"updates_per_second_{m}": _throughput(runs, m) for m in METHODS}
    write_metrics(ctx, metrics, details, performance)
    write_table(ctx.tables_dir / "levels", details["levels"], caption="Per-level results, main experiment")
    log(f"wrote {ctx.metrics_path}")


def _throughput(runs: list[dict], method: str) -> float:
    """Sample-level updates per second of ``method`` over all experiments and seeds."""
    keys = [k.removesuffix("updates") for k in runs[0] if k.endswith(f"__{method}__updates")]
    updates = sum(float(r[k + "updates"]) for r in runs for k in keys)
    return updates / sum(float(r[k + "seconds"]) for r in runs for k in keys)


def _details(exps: dict, pooled: dict) -> dict:
    """Per-level and per-sample-size numbers the figures and tables show."""
    main = exps["main"]
    sm = standardised_scores(main, pooled, "main__smoothed__")
    pl = standardised_scores(main, pooled, "main__plain__")
    heavy = standardised_scores(exps["heavy"], pooled, "heavy__smoothed__")
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
    curves = {}
    for method in ("smoothed", "plain"):
        path = pooled[f"main__{method}__average_path"][..., : len(main["taus"])]
        k = pooled[f"main__{method}__checkpoints"]
        curves[method] = {
            "n": k.tolist(),
            "rmse": np.sqrt(((path - np.array(main["quantile"])) ** 2).mean(axis=1)).tolist(),
        }
    crossings = {
        method: {
            "n": pooled[f"fine__{method}__checkpoints"].tolist(),
            "rate": (np.diff(pooled[f"fine__{method}__last_path"], axis=-1) < 0).mean(axis=(1, 2)).tolist(),
        }
        for method in ("smoothed", "plain")
    }
    return {
        "levels": rows,
        "rmse_vs_n": curves,
        "crossings_vs_n": crossings,
        "reps_total": int(sm["z"].shape[0]),
        "fine_reps_total": int(pooled["fine__plain__last"].shape[0]),
    }


def figures(ctx: StageContext) -> None:
    """The figures of ``figures.DRAW``, from metrics.json and the per-seed runs; logged to MLflow."""
    exps = ctx.read_prepared()["experiments"]
    details = read_metrics(ctx.metrics_path)["details"]
    runs = [ctx.read_run(seed) for seed in ctx.seeds]
    pooled = _pool(runs)
    scores = {
        "main": standardised_scores(exps["main"], pooled, "main__smoothed__"),
        "extreme": standardised_scores(exps["extreme"], pooled, "extreme__smoothed__"),
    }
    paths = []
    for name, draw in DRAW.items():
        with plotting.figure() as (fig, ax):
            draw(ax, exps=exps, details=details, scores=scores, first=runs[0])
            paths += plotting.save(fig, ctx.figures_dir, name)
    tracking.log_summary("quantile", ctx.scale, paths, [ctx.metrics_path])


FIGURES = tuple(DRAW)

PAPER = Paper(
    slug="quantile",
    title="Smoothed SGD for quantiles: Bahadur representation and Gaussian approximation",
    citation="Chen, Keilbar & Wu (2025), arXiv:2505.13299",
    settings=SETTINGS,
    stages=stages(prepare, simulate, evaluate, figures),
    figures=FIGURES,
    datasets={"quantile/truth.csv": build_truth},
)
