"""PSGLA (Renaud et al. 2025): prepare -> sample -> evaluate (the house draws the figures).

Three experiments, every seed job runs all of them with its own random streams:

- ``gmm``        2-D posterior sampling, y = x + n (sigma^2 = 1), three GMM priors x three
                 observations; PnP-ULA and PnP-PSGLA with the exact GMM MMSE denoiser (official
                 settings). Per (prior, observation) ``gmm_chains`` chains run in one array; the first
                 ``gmm_paths`` keep their path (the paper's protocol: W2^2 between a 1000-point
                 subsample of one chain's path and exact posterior samples). Besides, W2^2 of a
                 ``gmm_points_large``-point subsample of the final path (``w2_large``) and the noise
                 floor of every W2^2 at its sample size (two exact posterior samples, ``floor``).
- ``imaging``    50% random inpainting and 9x9 uniform deblurring (noise 1/255) of scikit-image's
                 ``camera``, TV prior; PSGLA vs SGLA (ULA on the Moreau envelope). The MMSE estimate is
                 the running mean of the chain.
- ``stability``  the stability theorem on a 1-D double-well potential: invariant laws of two ULA
                 chains (computed by quadrature) vs the size of the drift perturbation; each seed
                 draws its own random smooth perturbation direction.

A seed's results (``run_seed``) nest by experiment, method (and problem); the seed job also
measures its chains' distances to the exact posteriors. Over seeds, distances, chain-averaged MMSE
and variance maps and timings are averaged, the stability points concatenated (one fit), and the
raw chains (paths, ensembles, per-chain maps) stay per seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdrepro import runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.psgla import method as M
from gdrepro.runtime import log, rng

# The official 2-D set-up (sampling_2D.py / utils_2D.py).
PRIORS = {
    "symmetric": ([[5, 5], [-5, -5]], [np.eye(2), np.eye(2)], [0.5, 0.5]),
    "dissymmetric": ([[0, 3], [0, -5]], [np.eye(2), np.eye(2) / 5], [0.5, 0.5]),
    "cross": ([[0, 0], [0, 0]], [[[2, 0.5], [0.5, 0.15]], [[0.15, 0.5], [0.5, 2.0]]], [0.5, 0.5]),
}
OBSERVATIONS = [[0.0, 0.0], [0.0, -2.0], [-6.0, 6.0]]
GMM_METHODS = ("pnp_ula", "psgla")
IMG_METHODS = ("psgla", "sgla")
PROBLEMS = ("inpainting", "deblurring")
IMAGES = ("camera",)


@dataclass(frozen=True)
class PsglaSettings:
    """Numbers of one scale; scales change these, never the code path."""

    # 2-D GMM experiment
    gmm_iters: int  # N, iterations per chain
    gmm_chains: int  # parallel chains per (prior, observation): the ensemble law of X_k
    gmm_paths: int = 1  # chains per (prior, observation) whose path is kept (the paper's protocol)
    gmm_points: int = 1000  # subsample size for W2^2 (official: 1000)
    gmm_points_large: int = 2000  # larger final-path subsample (issue 25): half the noise floor
    gmm_checkpoints: int = 5  # log-spaced iterations 100..N for the curves
    pnp_delta: float = 0.1
    pnp_eps: float = 0.5
    pnp_alpha: float = 1.5
    psgla_delta: float = 0.3
    psgla_alpha: float = 2 / 3
    quirk: bool = True  # denoiser noise variance sqrt(eps), as in the official code
    # imaging experiment
    image: str = "camera"
    image_size: int = 64
    img_iters: int = 3000
    img_chains: int = 1  # chains per problem and method in one seed job
    img_checkpoints: int = 14
    s: float = 2 / 255  # PSGLA: step d = s^2, prox = TV denoiser at level s (g = TV / s)
    lam: float = 5.0  # likelihood temperature (data step d / (lam sigma^2) = 0.8)
    noise: float = 1 / 255
    blur: int = 9
    mask_rate: float = 0.5
    tv_iters: int = 20  # Chambolle iterations per prox (official: 10)
    # stability experiment
    stab_grid: int = 801
    stab_box: float = 6.0
    stab_gamma: float = 0.1
    stab_a: float = 2.0  # V(x) = x^2/2 - log cosh(a x): double well, L = a^2 - 1, m = 1 at infinity
    stab_sizes: int = 10  # perturbation sizes delta, log-spaced in [1e-3, 1]

    def __post_init__(self) -> None:
        if self.gmm_iters < 100 or self.gmm_paths > self.gmm_chains:
            raise ValueError("need gmm_iters >= 100 and gmm_paths <= gmm_chains")
        if max(self.gmm_points, self.gmm_points_large) > self.gmm_iters + 1:
            raise ValueError("gmm_points and gmm_points_large must not exceed the path length gmm_iters + 1")
        if self.image not in IMAGES:
            raise ValueError(f"image={self.image!r} is not one of {IMAGES}")
        if self.mask_rate <= 0 or self.mask_rate >= 1:
            raise ValueError(f"mask_rate={self.mask_rate} must lie in (0, 1)")
        lip = self.stab_a**2 - 1
        if self.stab_gamma > 1 / lip**2:
            raise ValueError(f"stab_gamma={self.stab_gamma} exceeds the theorem's bound m/L^2 = {1 / lip**2:.4g}")

    @property
    def gamma_psgla(self) -> float:
        return self.s**2

    @property
    def lipschitz_data(self) -> float:
        """Lipschitz constant of grad f, f = |Ax - y|^2 / (2 lam sigma^2), ||A|| = 1."""
        return 1.0 / (self.lam * self.noise**2)

    @property
    def gamma_sgla(self) -> float:
        """The MYULA step 1 / (L_f + 1/mu) with mu = s^2 (the same Moreau envelope PSGLA uses)."""
        return 1.0 / (self.lipschitz_data + 1.0 / self.s**2)


SETTINGS = {
    "smoke": PsglaSettings(gmm_iters=1000, gmm_chains=50, gmm_paths=2, gmm_points=500, gmm_points_large=500,
                           gmm_checkpoints=2,
                           image_size=32, img_iters=150, img_checkpoints=6, stab_grid=201, stab_sizes=5),
    "default": PsglaSettings(gmm_iters=10_000, gmm_chains=200, image_size=64, img_iters=3000),
    "paper": PsglaSettings(gmm_iters=10_000, gmm_chains=1000, gmm_checkpoints=9, image_size=256,
                           img_iters=10_000, img_checkpoints=20, tv_iters=50, stab_grid=1601, stab_sizes=16),
}


# --- data: scikit-image's bundled images (data/psgla/<name>.npy, uint8) ------------------------


def build_camera(path: Path) -> None:
    """scikit-image's ``camera`` (512 x 512, uint8), as shipped."""
    from skimage import data

    np.save(path, np.ascontiguousarray(data.camera(), dtype=np.uint8))


def load_image(data_dir: Path, name: str, size: int) -> np.ndarray:
    """The bundled image ``name`` in [0, 1], resized to ``size x size`` (anti-aliased)."""
    from skimage.transform import resize

    path = data_dir / "psgla" / f"{name}.npy"
    if not path.exists():
        raise GdreproError(f"missing dataset {path} (run `gdrepro data verify --build-missing`)")
    image = np.load(path).astype(float) / 255.0
    if image.ndim != 2:
        raise GdreproError(f"{path}: expected a grayscale image, got shape {image.shape}")
    return resize(image, (size, size), anti_aliasing=True, order=1)


# --- the three experiments' set-ups --------------------------------------------------------------


def priors() -> list[M.GMM]:
    return [M.GMM.of(*PRIORS[name]) for name in PRIORS]


def posterior(prior: M.GMM, y) -> M.GMM:
    return M.gmm_posterior(prior, np.eye(2), np.asarray(y, float), 1.0)


def gmm_marks(s: PsglaSettings) -> list[int]:
    return sorted({int(round(k)) for k in np.geomspace(100, s.gmm_iters, s.gmm_checkpoints)})


def img_marks(s: PsglaSettings) -> list[int]:
    return sorted({int(round(k)) for k in np.geomspace(10, s.img_iters, s.img_checkpoints)})


def imaging_problem(s: PsglaSettings, truth: np.ndarray, problem: str) -> tuple[M.Operator, np.ndarray]:
    """Forward operator and observation (fixed across seeds: keyed on the problem only)."""
    g = rng("psgla", "observation", problem)
    if problem == "inpainting":
        keep = np.zeros(truth.size, dtype=bool)
        keep[g.permutation(truth.size)[: int(round((1 - s.mask_rate) * truth.size))]] = True
        op = M.inpainting(keep.reshape(truth.shape))
    else:
        op = M.uniform_blur(s.blur)
    y = op.apply(truth[None])[0] + s.noise * g.standard_normal(truth.shape)
    return op, y


def stability_drift(s: PsglaSettings):
    """Drift b = V' of V(x) = x^2/2 - log cosh(a x)."""
    return lambda x: x - s.stab_a * np.tanh(s.stab_a * x)


def stability_direction(seed: int):
    """A random smooth bounded perturbation h (sum of 3 sines, sup-norm <= 1), one per seed."""
    g = rng("psgla", "stability", seed)
    amp = g.dirichlet(np.ones(3))
    freq, phase = g.uniform(0.3, 2.0, 3), g.uniform(0, 2 * np.pi, 3)
    return lambda x: np.sin(np.multiply.outer(x, freq) + phase) @ amp


# --- stages --------------------------------------------------------------------------------------


def check_steps(s: PsglaSettings) -> dict[str, float]:
    """Every sampler's explicit step times its Lipschitz constant; ``ValueError`` if one exceeds 2."""
    return {
        "gmm_pnp_ula": M.check_step("delta", s.pnp_delta, 1.0 + s.pnp_alpha / s.pnp_eps),
        "gmm_psgla": M.check_step("delta/alpha", s.psgla_delta / s.psgla_alpha, 1.0),
        "imaging_psgla": M.check_step("s^2", s.gamma_psgla, s.lipschitz_data,
                                      fix=f"raise lam to >= s^2 / sigma^2 = {s.s**2 / s.noise**2:.3g}"),
        "imaging_sgla": M.check_step("gamma", s.gamma_sgla, s.lipschitz_data + 1 / s.s**2),
    }


def prepare(ctx: StageContext) -> None:
    """Check every step size against its stability bound, load the image, write the design."""
    s: PsglaSettings = ctx.settings
    checks = check_steps(s)
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    observation_psnr = {}
    for problem in PROBLEMS:
        op, y = imaging_problem(s, truth, problem)
        observation_psnr[problem] = M.psnr(y, truth)
    design = {
        "priors": {name: {"means": np.asarray(m, float).tolist(), "covs": np.asarray(c, float).tolist(),
                          "weights": w} for name, (m, c, w) in PRIORS.items()},
        "observations": OBSERVATIONS,
        "gmm_checkpoints": gmm_marks(s),
        "img_checkpoints": img_marks(s),
        "step_times_lipschitz": checks,
        "gamma_psgla": s.gamma_psgla,
        "gamma_sgla": s.gamma_sgla,
        "observation_psnr": observation_psnr,
        "stability_sizes": np.geomspace(1e-3, 1.0, s.stab_sizes).tolist(),
    }
    ctx.write_prepared(design)
    log(f"psgla: steps x Lipschitz {checks}; observation PSNR {observation_psnr}")


def _gmm_distances(ctx: StageContext, marks: list[int], paths: dict[str, np.ndarray],
                   snapshots: np.ndarray) -> dict[str, np.ndarray]:
    """One method's distances to the exact posteriors: ``w2`` (chain path, per checkpoint), ``ensemble``
    (law of X_k, per checkpoint), ``sliced`` and ``kde`` (final path) per prior and observation."""
    ps = priors()
    w2 = np.zeros((len(marks), len(ps), len(OBSERVATIONS)))
    ens = np.zeros_like(w2)
    sliced = np.zeros((len(ps), len(OBSERVATIONS)))
    kde = np.zeros_like(sliced)
    for gi, prior in enumerate(ps):
        for yi, y in enumerate(OBSERVATIONS):
            post = posterior(prior, y)
            g = ctx.rng("posterior-samples", gi, yi)
            for j, n in enumerate(marks):
                path = paths[str(n)][:, gi, yi]  # (P, R, 2)
                w2[j, gi, yi] = np.mean([M.w2_squared(path[:, r], post.sample(g, len(path)))
                                         for r in range(path.shape[1])])
                cloud = snapshots[j, gi, yi]
                ens[j, gi, yi] = M.w2_squared(cloud, post.sample(g, len(cloud)))
            final = paths[str(marks[-1])][:, gi, yi, 0]
            sliced[gi, yi] = M.sliced_w2(final, post.sample(g, len(final)), seed=ctx.seed)
            kde[gi, yi] = M.kde_distance(final, post.density)
    return {"w2": w2, "ensemble": ens, "sliced": sliced, "kde": kde}


def _gmm_large(ctx: StageContext, path: np.ndarray) -> np.ndarray:
    """W2^2 of one method's large final-path subsample (``path``: (P, G, Y, R, 2)) to as many exact
    posterior samples, per prior and observation (mean over the kept paths)."""
    ps = priors()
    w2 = np.zeros((len(ps), len(OBSERVATIONS)))
    for gi, prior in enumerate(ps):
        for yi, y in enumerate(OBSERVATIONS):
            post, g = posterior(prior, y), ctx.rng("posterior-large", gi, yi)
            w2[gi, yi] = np.mean([M.w2_squared(path[:, gi, yi, r], post.sample(g, len(path)))
                                  for r in range(path.shape[3])])
    return w2


def _gmm_floors(ctx: StageContext, s: PsglaSettings) -> dict[str, np.ndarray]:
    """Noise floors of every 2-D W2^2 (``M.w2_floor``) at the sizes compared: ``w2`` (gmm_points,
    the paper's protocol), ``ensemble`` (gmm_chains) and ``large`` (gmm_points_large); per prior
    and observation."""
    sizes = {"w2": s.gmm_points, "ensemble": s.gmm_chains, "large": s.gmm_points_large}
    ps = priors()
    floors = {}
    for key, n in sizes.items():
        g = ctx.rng("posterior-floor", key)
        floors[key] = np.array([[M.w2_floor(posterior(prior, y), n, g) for y in OBSERVATIONS] for prior in ps])
    return floors


def _sample_gmm(ctx: StageContext, s: PsglaSettings, design: dict) -> dict:
    """Both 2-D samplers on all 3 priors x 3 observations x gmm_chains chains at once.

    Per method: the kept path subsamples (``path``, by checkpoint) and the ensembles (``snapshots``)
    stay with the seed; the distances to the exact posteriors (the expensive part of the evaluation,
    done here once per seed) average over seeds, and so do the timings.
    """
    ps = priors()
    G, Y, C = len(ps), len(OBSERVATIONS), s.gmm_chains
    y = np.broadcast_to(np.asarray(OBSERVATIONS, float)[None, :, None, :], (G, Y, 1, 2))
    x0 = np.broadcast_to(y, (G, Y, C, 2)).copy()  # chains start at x0 = y
    D = M.gmm_denoiser(ps, quirk=s.quirk)

    def grad_f(x):
        return x - y  # A = I, sigma^2 = 1

    marks = design["gmm_checkpoints"]
    results: dict = {"checkpoints": runs.first(np.array(marks))}
    for method in GMM_METHODS:
        g = ctx.rng("gmm", method)
        record = dict(checkpoints=marks, keep=lambda x: x[:, :, : s.gmm_paths])
        if method == "pnp_ula":
            res = M.pnp_ula(x0, grad_f, D, s.pnp_delta, s.pnp_eps, s.pnp_alpha, s.gmm_iters, g,
                            lipschitz_f=1.0, **record)
        else:  # PnP-PSGLA: x = D_d(x + (d/alpha) grad log p(y|x) + sqrt(2d) z)
            step = M.psgla_step(lambda x: grad_f(x) / s.psgla_alpha, lambda x, gam: D(x, gam), s.psgla_delta)
            M.check_step("delta/alpha", s.psgla_delta / s.psgla_alpha, 1.0)
            res = M.run_chain(step, x0, s.gmm_iters, g, **record)
        # the paper's protocol: a random gmm_points-subsample of the path X_0..X_n, n = each checkpoint
        sub = ctx.rng("gmm-subsample", method)
        paths = {}
        for n in marks:
            idx = np.sort(sub.permutation(n + 1)[: s.gmm_points])
            paths[str(n)] = res.path[idx].astype(np.float32)  # (P, G, Y, R, 2)
        distances = _gmm_distances(ctx, marks, paths, res.snapshots)
        big = ctx.rng("gmm-subsample-large", method)
        final = res.path[np.sort(big.permutation(marks[-1] + 1)[: s.gmm_points_large])]
        distances["w2_large"] = _gmm_large(ctx, final)
        results[method] = {
            "path": {n: runs.own(path) for n, path in paths.items()},
            "snapshots": runs.own(res.snapshots),  # (checkpoints, G, Y, C, 2)
            **{name: runs.mean(d) for name, d in distances.items()},
            "seconds": runs.mean(res.seconds),
            "updates": runs.mean(float(res.iterations * G * Y * C)),
        }
        log(f"seed {ctx.seed} gmm/{method}: {G * Y * C} chains x {s.gmm_iters} it in {res.seconds:.1f} s")
    results["floor"] = {key: runs.mean(f) for key, f in _gmm_floors(ctx, s).items()}
    return results


def _sample_imaging(ctx: StageContext, s: PsglaSettings, design: dict) -> dict:
    """PSGLA and SGLA with the TV prior on both problems; MMSE / variance snapshots.

    Per problem and method: the chains' raw MMSE, variance and last sample (``chains``) stay with the
    seed; their average over the chains (``mmse``, ``var``) averages over seeds, as do the timings.
    """
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    marks = design["img_checkpoints"]
    theta = 1.0 / s.s  # g = TV / s, so prox_{s^2 g} = TV denoiser at weight s (official D_s)
    results: dict = {"checkpoints": runs.first(np.array(marks))}
    for problem in PROBLEMS:
        op, y = imaging_problem(s, truth, problem)
        x0 = np.broadcast_to(op.adjoint(y[None]), (s.img_chains, *truth.shape)).copy()
        grad_f = M.data_gradient(op, y, s.noise**2, s.lam)

        def prox(x, gamma):
            return M.tv_prox(x, gamma * theta, s.tv_iters)

        results[problem] = {}
        for method in IMG_METHODS:
            g = ctx.rng("imaging", problem, method)
            record = dict(checkpoints=marks, moments=True, snapshot=lambda x: x[0])
            if method == "psgla":
                res = M.psgla(x0, grad_f, prox, s.gamma_psgla, s.img_iters, g, lipschitz_f=s.lipschitz_data, **record)
            else:
                res = M.sgla(x0, grad_f, prox, s.gamma_sgla, s.s**2, s.img_iters, g,
                             lipschitz_f=s.lipschitz_data, **record)
            results[problem][method] = {
                "chains": {
                    "mmse": runs.own(res.mean),  # (checkpoints, chains, H, W) float32
                    "var": runs.own(res.var[-1]),
                    "sample": runs.own(res.snapshots[-1]),
                },
                "mmse": runs.mean(res.mean.astype(float).mean(axis=1)),  # average of the chains
                "var": runs.mean(res.var[-1].astype(float).mean(axis=0)),
                "seconds": runs.mean(res.seconds),
                "updates": runs.mean(float(res.iterations * s.img_chains)),
            }
            final = res.mean[-1].mean(axis=0)
            log(f"seed {ctx.seed} {problem}/{method}: {s.img_iters} it in {res.seconds:.1f} s, "
                f"MMSE PSNR {M.psnr(final, truth):.2f} dB")
    return results


def _sample_stability(ctx: StageContext, s: PsglaSettings, design: dict) -> dict:
    """Invariant laws of ULA with drift b and b + delta h; W1, W2 and ||delta h||_{L2(pi)}.

    The distances and norms of all seeds' perturbations join in one fit (concatenated over seeds).
    """
    grid = np.linspace(-s.stab_box, s.stab_box, s.stab_grid)
    b, h = stability_drift(s), stability_direction(ctx.seed)
    M.check_step("gamma", s.stab_gamma, s.stab_a**2 - 1, bound=1 / (s.stab_a**2 - 1))  # gamma <= m / L^2
    pi = M.ula_invariant_1d(b, s.stab_gamma, grid)
    sizes = np.array(design["stability_sizes"])
    w1, w2, norm = [], [], []
    for delta in sizes:
        pi_d = M.ula_invariant_1d(lambda x, d=delta: b(x) + d * h(x), s.stab_gamma, grid)
        w1.append(M.wasserstein_1d(grid, pi, pi_d, 1))
        w2.append(M.wasserstein_1d(grid, pi, pi_d, 2))
        norm.append(np.sqrt((pi * (delta * h(grid)) ** 2).sum()))
    return {"sizes": runs.first(sizes), "w1": runs.concat(np.array(w1)), "w2": runs.concat(np.array(w2)),
            "norm": runs.concat(np.array(norm)), "pi": runs.own(pi.astype(np.float32))}


EXPERIMENTS = {"gmm": _sample_gmm, "imaging": _sample_imaging, "stability": _sample_stability}
METRIC_PREFIX = {"gmm": "gmm", "imaging": "img", "stability": "stab"}  # the MLflow metric names of old


def _seconds(tree: dict, path: tuple[str, ...]) -> dict[str, float]:
    """The timings in ``tree`` as MLflow metrics ``<path joined by __>.seconds``."""
    found = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= _seconds(value, (*path, key))
        elif key == "seconds":
            found["__".join(path) + ".seconds"] = float(value.value)
    return found


def run_seed(ctx: StageContext) -> dict:
    """All three experiments for one seed; one MLflow run per experiment."""
    s: PsglaSettings = ctx.settings
    design = ctx.read_prepared()
    results = {}
    for name, sample in EXPERIMENTS.items():
        with ctx.tracked_run(name) as run:
            results[name] = sample(ctx, s, design)
            run.log_metrics(_seconds(results[name], (METRIC_PREFIX[name],)))
    return results


# --- evaluation ----------------------------------------------------------------------------------


def imaging_curves(imaging: dict, truth: np.ndarray) -> dict:
    """PSNR / SSIM of the MMSE estimate at every checkpoint, per problem and method
    (``imaging``: a run's imaging results, per problem and method)."""
    return {
        problem: {
            method: {
                "psnr": [M.psnr(m, truth) for m in imaging[problem][method]["mmse"]],
                "ssim": [M.ssim(m, truth) for m in imaging[problem][method]["mmse"]],
            }
            for method in IMG_METHODS
        }
        for problem in PROBLEMS
    }


def evaluate(ctx: StageContext) -> None:
    """Distances, PSNR/SSIM curves, speed-ups, stability slopes; pooled and per seed."""
    s: PsglaSettings = ctx.settings
    design = ctx.read_prepared()
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    seed_runs = ctx.runs()
    marks = np.array(design["img_checkpoints"])
    names = list(PRIORS)

    def compute(run: dict) -> dict[str, float]:
        gmm, stab = run["gmm"], run["stability"]
        out: dict[str, float] = {}
        for gi, name in enumerate(names):
            for method in GMM_METHODS:
                out[f"w2_{name}_{method}"] = gmm[method]["w2"][-1, gi].mean()
                out[f"w2_ensemble_{name}_{method}"] = gmm[method]["ensemble"][-1, gi].mean()
                out[f"sliced_{name}_{method}"] = gmm[method]["sliced"][gi].mean()
                out[f"kde_{name}_{method}"] = gmm[method]["kde"][gi].mean()
                out[f"w2_large_{name}_{method}"] = gmm[method]["w2_large"][gi].mean()
            for key, label in (("w2", "w2"), ("ensemble", "w2_ensemble"), ("large", "w2_large")):
                out[f"floor_{label}_{name}"] = gmm["floor"][key][gi].mean()
            out[f"w2_ratio_{name}"] = out[f"w2_{name}_psgla"] / out[f"w2_{name}_pnp_ula"]
        curves = imaging_curves(run["imaging"], truth)
        speedups, gaps = [], []
        for problem in PROBLEMS:
            p, q = curves[problem]["psgla"], curves[problem]["sgla"]
            target = q["psnr"][-1] - 0.5
            speedup = M.first_reach(marks, q["psnr"], target) / M.first_reach(marks, p["psnr"], target)
            out[f"speedup_{problem}"] = speedup
            out[f"psnr_gap_{problem}"] = p["psnr"][-1] - q["psnr"][-1]
            for method, c in (("psgla", p), ("sgla", q)):
                out[f"psnr_{problem}_{method}"] = c["psnr"][-1]
                out[f"ssim_{problem}_{method}"] = c["ssim"][-1]
            speedups.append(speedup)
            gaps.append(abs(out[f"psnr_gap_{problem}"]))
        out["speedup_min"] = min(speedups) if all(np.isfinite(speedups)) else float("nan")
        out["psnr_gap_abs_max"] = max(gaps)
        good = stab["norm"] > 0
        out["stability_slope_w2"] = M.loglog_slope(stab["norm"][good], stab["w2"][good])
        out["stability_slope_w1"] = M.loglog_slope(stab["norm"][good], stab["w1"][good])
        out["stability_w2_over_sqrt_norm_max"] = float(np.max(stab["w2"] / np.sqrt(stab["norm"])))
        return out

    pooled = ctx.pooled()
    metrics = across_seeds(compute, seed_runs, pooled)
    # metrics.json keeps its flat "<method>__<distance>" / "<problem>__<method>" detail keys
    details = {
        "gmm_checkpoints": design["gmm_checkpoints"],
        "img_checkpoints": design["img_checkpoints"],
        "observation_psnr": design["observation_psnr"],
        "priors": names,
        "gmm": {f"{m}__{k}": pooled["gmm"][m][k] for m in GMM_METHODS
                for k in ("w2", "ensemble", "w2_large", "sliced", "kde")},
        "gmm_floor": {f"floor__{k}": pooled["gmm"]["floor"][k] for k in ("w2", "ensemble", "large")},
        "gmm_sizes": {"w2": s.gmm_points, "ensemble": s.gmm_chains, "large": s.gmm_points_large},
        "gmm_w2_per_seed": {m: [run["gmm"][m]["w2"][-1].tolist() for run in seed_runs] for m in GMM_METHODS},
        "imaging": {f"{p}__{m}": c for p, by_method in imaging_curves(pooled["imaging"], truth).items()
                    for m, c in by_method.items()},
        "stability": {k: [run["stability"][k].tolist() for run in seed_runs] for k in ("norm", "w1", "w2")},
        "stability_sizes": design["stability_sizes"],
        "imaging_steps": {"psgla": s.gamma_psgla, "sgla": s.gamma_sgla,
                          "psgla_over_sgla": s.gamma_psgla / s.gamma_sgla},
    }
    timed = {f"gmm_{m}": [run["gmm"][m] for run in seed_runs] for m in GMM_METHODS}
    timed |= {f"{p}_{m}": [run["imaging"][p][m] for run in seed_runs] for p in PROBLEMS for m in IMG_METHODS}
    perf = {
        f"{label}_chain_iterations_per_second": sum(float(t["updates"]) for t in ts) / sum(float(t["seconds"]) for t in ts)
        for label, ts in timed.items()
    }
    write_metrics(ctx, metrics, details, perf)
    log(f"wrote {ctx.metrics_path}")


def figure_inputs(ctx: StageContext) -> dict:
    """What the figures are drawn from besides the details: seed 0's run, the image and its
    observations, and the 2-D set-up (priors, their posteriors, the observations)."""
    s: PsglaSettings = ctx.settings
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    return {
        "first": ctx.read_run(ctx.seeds[0]),
        "truth": truth,
        "observations": {p: imaging_problem(s, truth, p)[1] for p in PROBLEMS},
        "priors": priors(),
        "posterior": posterior,
        "observed": OBSERVATIONS,
        "names": list(PRIORS),
    }
