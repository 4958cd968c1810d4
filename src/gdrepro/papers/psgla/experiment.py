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
                 ``camera``. TV prior: PSGLA vs SGLA (ULA on the Moreau envelope, ours). Learned prior
                 (the paper's comparison): PnP-ULA at the paper's step vs PnP-PSGLA, both with the
                 exact MMSE denoiser of a Gaussian-mixture patch prior fitted (in prepare) on other
                 scikit-image images. The MMSE estimate is the running mean of the chain.
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
IMG_METHODS = ("psgla", "sgla")  # TV prior
PNP_METHODS = ("pnp_ula", "psgla_gmm")  # Gaussian-mixture patch prior (the paper's PnP-ULA comparison)
# scikit-image's bundled photographs the patch prior is fitted on (never the test image camera)
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "moon", "coins", "brick", "gravel", "grass", "clock")
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
    # learned-prior comparison (official DnCNN settings, the DnCNN replaced by a GMM patch prior)
    pnp_iters: int = 2000  # PnP-ULA iterations (paper: 1e5-1e6)
    pnp_psgla_iters: int = 400  # PnP-PSGLA iterations (paper: 1e4)
    pnp_checkpoints: int = 16  # log-spaced from iteration 1
    pnp_s: float = 2 / 255  # denoiser noise level: PnP-PSGLA's s (step s^2), PnP-ULA's eps = s^2
    pnp_img_alpha: float = 1.0  # PnP-ULA's prior weight alpha
    pnp_box: tuple[float, float] = (-1.0, 2.0)  # PnP-ULA's box C (official c_min, c_max)
    patch: int = 4  # patch side
    patch_stride: int = 2  # patch grid step (overlapping patches: patch / stride per axis)
    patch_components: int = 8  # GMM components
    patch_train: int = 10_000  # training patches (drawn from all overlapping ones)
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
        if not 1 <= self.pnp_psgla_iters <= self.pnp_iters or self.patch_stride > self.patch:
            raise ValueError("need 1 <= pnp_psgla_iters <= pnp_iters and patch_stride <= patch (overlapping patches)")
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
    def pnp_ula_parameters(self) -> tuple[float, float]:
        """PnP-ULA's step delta and box weight lam by the official rule (M.pnp_ula_parameters)."""
        return M.pnp_ula_parameters(self.noise**2, self.pnp_s**2, self.pnp_img_alpha)

    @property
    def gamma_sgla(self) -> float:
        """The MYULA step 1 / (L_f + 1/mu) with mu = s^2 (the same Moreau envelope PSGLA uses)."""
        return 1.0 / (self.lipschitz_data + 1.0 / self.s**2)


SETTINGS = {
    "smoke": PsglaSettings(gmm_iters=1000, gmm_chains=50, gmm_paths=2, gmm_points=500, gmm_points_large=500,
                           gmm_checkpoints=2,
                           image_size=32, img_iters=150, img_checkpoints=6, stab_grid=201, stab_sizes=5,
                           pnp_iters=300, pnp_psgla_iters=100, pnp_checkpoints=8, patch_components=4,
                           patch_train=3000),
    "default": PsglaSettings(gmm_iters=10_000, gmm_chains=200, image_size=64, img_iters=3000),
    "paper": PsglaSettings(gmm_iters=10_000, gmm_chains=1000, gmm_checkpoints=9, image_size=256,
                           img_iters=10_000, img_checkpoints=20, tv_iters=50, stab_grid=1601, stab_sizes=16,
                           pnp_iters=100_000, pnp_psgla_iters=10_000, pnp_checkpoints=26, patch=6,
                           patch_stride=2, patch_components=10, patch_train=50_000),
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


def training_images(size: int) -> list[np.ndarray]:
    """The patch prior's training set: scikit-image's bundled photographs ``TRAIN_IMAGES`` (never the
    test image), grayscale in [0, 1], resized by ``size / 512`` (the test image's own factor, so that
    patches have the test image's scale)."""
    from skimage import color, data
    from skimage.transform import resize

    images = []
    for name in TRAIN_IMAGES:
        im = np.asarray(getattr(data, name)())
        im = color.rgb2gray(im[..., :3]) if im.ndim == 3 else im / 255.0
        shape = tuple(max(8, int(round(n * size / 512))) for n in im.shape)
        images.append(resize(im, shape, anti_aliasing=True, order=1))
    return images


def patch_prior(design: dict) -> M.GMM:
    """The fitted patch GMM, as prepare wrote it into the design."""
    gmm = design["patch_gmm"]
    return M.GMM.of(gmm["means"], gmm["covs"], gmm["weights"])


# --- the three experiments' set-ups --------------------------------------------------------------


def priors() -> list[M.GMM]:
    return [M.GMM.of(*PRIORS[name]) for name in PRIORS]


def posterior(prior: M.GMM, y) -> M.GMM:
    return M.gmm_posterior(prior, np.eye(2), np.asarray(y, float), 1.0)


def gmm_marks(s: PsglaSettings) -> list[int]:
    return sorted({int(round(k)) for k in np.geomspace(100, s.gmm_iters, s.gmm_checkpoints)})


def img_marks(s: PsglaSettings) -> list[int]:
    return sorted({int(round(k)) for k in np.geomspace(10, s.img_iters, s.img_checkpoints)})


def pnp_marks(s: PsglaSettings, n_iter: int) -> list[int]:
    """Checkpoints of the learned-prior chains: log-spaced from iteration 1 to ``pnp_iters``, those up
    to ``n_iter`` (PnP-PSGLA stops earlier, on the same grid)."""
    grid = {int(round(k)) for k in np.geomspace(1, s.pnp_iters, s.pnp_checkpoints)}
    return sorted(k for k in grid if k < n_iter / 1.1) + [n_iter]  # no near-duplicate last point


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


def pnp_init(problem: str, op: M.Operator, y: np.ndarray) -> np.ndarray:
    """The learned-prior chains' start (official code): the observation, masked pixels set to 1/2."""
    if problem == "inpainting":
        mask = op.apply(np.ones((1, *y.shape)))[0]
        return mask * y + (1 - mask) * 0.5
    return np.array(y, dtype=float)


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
    delta, lam = s.pnp_ula_parameters
    return {
        "imaging_pnp_ula": M.check_step("delta", delta, s.lipschitz_data * s.lam + s.pnp_img_alpha / s.pnp_s**2
                                        + 1 / lam),
        "imaging_psgla_gmm": M.check_step("s^2", s.pnp_s**2, s.lipschitz_data),
        "gmm_pnp_ula": M.check_step("delta", s.pnp_delta, 1.0 + s.pnp_alpha / s.pnp_eps),
        "gmm_psgla": M.check_step("delta/alpha", s.psgla_delta / s.psgla_alpha, 1.0),
        "imaging_psgla": M.check_step("s^2", s.gamma_psgla, s.lipschitz_data,
                                      fix=f"raise lam to >= s^2 / sigma^2 = {s.s**2 / s.noise**2:.3g}"),
        "imaging_sgla": M.check_step("gamma", s.gamma_sgla, s.lipschitz_data + 1 / s.s**2),
    }


def prepare(ctx: StageContext) -> None:
    """Check every step size against its stability bound, load the image, fit the patch prior on the
    training images, write the design."""
    s: PsglaSettings = ctx.settings
    checks = check_steps(s)
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    observation_psnr = {}
    for problem in PROBLEMS:
        op, y = imaging_problem(s, truth, problem)
        observation_psnr[problem] = M.psnr(y, truth)
    prior = M.fit_patch_gmm(training_images(s.image_size), s.patch, s.patch_components, s.patch_train,
                            seed=int(rng("psgla", "patch-gmm").integers(2**31)))
    denoised = M.patch_gmm_denoiser(prior, s.patch, s.patch_stride)
    noisy = truth + s.pnp_s * rng("psgla", "denoiser-check").standard_normal(truth.shape)
    delta, lam = s.pnp_ula_parameters
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
        "pnp_checkpoints": pnp_marks(s, s.pnp_iters),
        "psgla_gmm_checkpoints": pnp_marks(s, s.pnp_psgla_iters),
        "pnp_ula_delta": delta,
        "pnp_ula_lam": lam,
        "patch_gmm": {"means": prior.means.tolist(), "covs": prior.covs.tolist(), "weights": prior.weights.tolist()},
        "denoiser_psnr": {"noisy": M.psnr(noisy, truth), "denoised": M.psnr(denoised(noisy, s.pnp_s**2), truth)},
    }
    ctx.write_prepared(design)
    log(f"psgla: steps x Lipschitz {checks}; observation PSNR {observation_psnr}; PnP-ULA delta {delta:.3g}; "
        f"patch-GMM denoiser at s: {design['denoiser_psnr']}")


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
    """PSGLA and SGLA with the TV prior, then the learned-prior pair (:func:`_sample_pnp`), on both
    problems; MMSE / variance snapshots.

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
            results[problem][method] = _record(res)
            final = res.mean[-1].mean(axis=0)
            log(f"seed {ctx.seed} {problem}/{method}: {s.img_iters} it in {res.seconds:.1f} s, "
                f"MMSE PSNR {M.psnr(final, truth):.2f} dB")
        results[problem] |= _sample_pnp(ctx, s, design, problem, op, y, truth)
    return results


def _record(res: M.ChainRecord) -> dict:
    """What a seed keeps of one imaging chain array: raw maps stay with the seed, chain averages and
    timings average over seeds."""
    return {
        "chains": {
            "mmse": runs.own(res.mean),  # (checkpoints, chains, H, W) float32
            "var": runs.own(res.var[-1]),
            "sample": runs.own(res.snapshots[-1]),
        },
        "mmse": runs.mean(res.mean.astype(float).mean(axis=1)),  # average of the chains
        "var": runs.mean(res.var[-1].astype(float).mean(axis=0)),
        "seconds": runs.mean(res.seconds),
        "updates": runs.mean(float(res.iterations * res.final.shape[0])),
    }


def _sample_pnp(ctx: StageContext, s: PsglaSettings, design: dict, problem: str, op: M.Operator,
                y: np.ndarray, truth: np.ndarray) -> dict:
    """The paper's learned-prior comparison on one problem, the DnCNN replaced by the patch-GMM MMSE
    denoiser D: PnP-ULA at the paper's step and box term, and PnP-PSGLA
    ``X+ = D_{s^2}(X - s^2 grad f(X) + sqrt(2) s Z)`` with f the likelihood at temperature lam, both
    from the official start (:func:`pnp_init`)."""
    D = M.patch_gmm_denoiser(patch_prior(design), s.patch, s.patch_stride)
    x0 = np.broadcast_to(pnp_init(problem, op, y), (s.img_chains, *truth.shape)).copy()
    delta, lam = design["pnp_ula_delta"], design["pnp_ula_lam"]
    out = {}
    for method in PNP_METHODS:
        g = ctx.rng("imaging", problem, method)
        marks = design["pnp_checkpoints" if method == "pnp_ula" else "psgla_gmm_checkpoints"]
        record = dict(checkpoints=marks, moments=True, snapshot=lambda x: x[0])
        if method == "pnp_ula":
            res = M.pnp_ula(x0, M.data_gradient(op, y, s.noise**2), D, delta, s.pnp_s**2, s.pnp_img_alpha,
                            s.pnp_iters, g, lipschitz_f=1 / s.noise**2, box=s.pnp_box, lam=lam, **record)
        else:
            res = M.psgla(x0, M.data_gradient(op, y, s.noise**2, s.lam), D, s.pnp_s**2, s.pnp_psgla_iters, g,
                          lipschitz_f=s.lipschitz_data, **record)
        out[method] = _record(res)
        log(f"seed {ctx.seed} {problem}/{method}: {res.iterations} it in {res.seconds:.1f} s, "
            f"MMSE PSNR {M.psnr(res.mean[-1].mean(axis=0), truth):.2f} dB")
    return out


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
    (``imaging``: a run's imaging results, per problem and method; TV and learned-prior chains)."""
    return {
        problem: {
            method: {
                "psnr": [M.psnr(m, truth) for m in imaging[problem][method]["mmse"]],
                "ssim": [M.ssim(m, truth) for m in imaging[problem][method]["mmse"]],
            }
            for method in (*IMG_METHODS, *PNP_METHODS)
        }
        for problem in PROBLEMS
    }


def speedup(marks_base, base: list[float], marks_fast, fast: list[float], margin: float = 0.5) -> float:
    """How many times sooner the ``fast`` MMSE curve reaches the ``base`` curve's final PSNR minus
    ``margin`` dB than ``base`` does (first crossings, :func:`M.first_reach`)."""
    target = base[-1] - margin
    return M.first_reach(np.asarray(marks_base), base, target) / M.first_reach(np.asarray(marks_fast), fast, target)


def _stability_metrics(stab: dict, sizes: np.ndarray) -> dict[str, float]:
    """Stability fits of one run (or the pooled runs): slopes of W_p against ||b1 - b2|| over all sizes
    and, for W1, over the small sizes delta <= 0.1 (linear response, expected slope exactly 1); the
    ratios W2 / ||b1 - b2||^(1/2) and W1 / ||b1 - b2|| (their largest value over the sizes)."""
    good = stab["norm"] > 0
    small = good & (np.resize(sizes, stab["norm"].shape) <= 0.1)  # runs concatenate their sizes
    return {
        "stability_slope_w2": M.loglog_slope(stab["norm"][good], stab["w2"][good]),
        "stability_slope_w1": M.loglog_slope(stab["norm"][good], stab["w1"][good]),
        "stability_slope_w1_small": M.loglog_slope(stab["norm"][small], stab["w1"][small]),
        "stability_w2_over_sqrt_norm_max": float(np.max(stab["w2"][good] / np.sqrt(stab["norm"][good]))),
        "stability_w1_over_norm_max": float(np.max(stab["w1"][good] / stab["norm"][good])),
    }


def evaluate(ctx: StageContext) -> None:
    """Distances, PSNR/SSIM curves, speed-ups, stability slopes; pooled and per seed."""
    s: PsglaSettings = ctx.settings
    design = ctx.read_prepared()
    truth = load_image(ctx.data_dir, s.image, s.image_size)
    seed_runs = ctx.runs()
    marks = np.array(design["img_checkpoints"])
    pnp_marks_ula, pnp_marks_psgla = design["pnp_checkpoints"], design["psgla_gmm_checkpoints"]
    stab_sizes = np.array(design["stability_sizes"])
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
        speedups, gaps, pnp_speedups = [], [], []
        for problem in PROBLEMS:
            c = curves[problem]
            p, q = c["psgla"], c["sgla"]
            out[f"speedup_{problem}"] = speedup(marks, q["psnr"], marks, p["psnr"])
            out[f"psnr_gap_{problem}"] = p["psnr"][-1] - q["psnr"][-1]
            out[f"speedup_pnp_{problem}"] = speedup(pnp_marks_ula, c["pnp_ula"]["psnr"],
                                                    pnp_marks_psgla, c["psgla_gmm"]["psnr"])
            speedups.append(out[f"speedup_{problem}"])
            gaps.append(abs(out[f"psnr_gap_{problem}"]))
            pnp_speedups.append(out[f"speedup_pnp_{problem}"])
            for method in (*IMG_METHODS, *PNP_METHODS):
                out[f"psnr_{problem}_{method}"] = c[method]["psnr"][-1]
                out[f"ssim_{problem}_{method}"] = c[method]["ssim"][-1]
        out["speedup_min"] = min(speedups) if all(np.isfinite(speedups)) else float("nan")
        out["psnr_gap_abs_max"] = max(gaps)
        out["speedup_pnp_min"] = min(pnp_speedups) if all(np.isfinite(pnp_speedups)) else float("nan")
        return out | _stability_metrics(stab, stab_sizes)

    pooled = ctx.pooled()
    metrics = across_seeds(compute, seed_runs, pooled)
    seed_curves = [imaging_curves(run["imaging"], truth) for run in seed_runs]
    # metrics.json keeps its flat "<method>__<distance>" / "<problem>__<method>" detail keys
    details = {
        "gmm_checkpoints": design["gmm_checkpoints"],
        "img_checkpoints": design["img_checkpoints"],
        "pnp_checkpoints": pnp_marks_ula,
        "psgla_gmm_checkpoints": pnp_marks_psgla,
        "denoiser_psnr": design["denoiser_psnr"],
        "observation_psnr": design["observation_psnr"],
        "priors": names,
        "gmm": {f"{m}__{k}": pooled["gmm"][m][k] for m in GMM_METHODS
                for k in ("w2", "ensemble", "w2_large", "sliced", "kde")},
        "gmm_floor": {f"floor__{k}": pooled["gmm"]["floor"][k] for k in ("w2", "ensemble", "large")},
        "gmm_sizes": {"w2": s.gmm_points, "ensemble": s.gmm_chains, "large": s.gmm_points_large},
        "gmm_w2_per_seed": {m: [run["gmm"][m]["w2"][-1].tolist() for run in seed_runs] for m in GMM_METHODS},
        "gmm_w2_curves_per_seed": {m: [run["gmm"][m]["w2"].mean(axis=2).tolist() for run in seed_runs]
                                   for m in GMM_METHODS},  # (seed, checkpoint, prior), mean over y
        "imaging": {f"{p}__{m}": c for p, by_method in imaging_curves(pooled["imaging"], truth).items()
                    for m, c in by_method.items()},
        "imaging_psnr_per_seed": {f"{p}__{m}": [c[p][m]["psnr"] for c in seed_curves]
                                  for p in PROBLEMS for m in (*IMG_METHODS, *PNP_METHODS)},
        "stability": {k: [run["stability"][k].tolist() for run in seed_runs] for k in ("norm", "w1", "w2")},
        "stability_sizes": design["stability_sizes"],
        "imaging_steps": {"psgla": s.gamma_psgla, "sgla": s.gamma_sgla,
                          "psgla_over_sgla": s.gamma_psgla / s.gamma_sgla,
                          "psgla_gmm": s.pnp_s**2, "pnp_ula": design["pnp_ula_delta"],
                          "psgla_gmm_over_pnp_ula": s.pnp_s**2 / design["pnp_ula_delta"]},
    }
    timed = {f"gmm_{m}": [run["gmm"][m] for run in seed_runs] for m in GMM_METHODS}
    timed |= {f"{p}_{m}": [run["imaging"][p][m] for run in seed_runs] for p in PROBLEMS
              for m in (*IMG_METHODS, *PNP_METHODS)}
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
