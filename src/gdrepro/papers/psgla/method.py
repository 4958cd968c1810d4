"""Proximal Langevin samplers of Renaud, De Bortoli, Leclaire & Papadakis (2025), as library code.

Everything works on many chains at once: a state is an array whose leading axes index chains
(configurations, replicas, images) and whose trailing axes are the sample's own dimensions.
One iteration is a handful of vectorised numpy operations on the whole array.

Samplers (all ``x0`` in, :class:`ChainRecord` out):

- :func:`ula`     inexact ULA, ``X+ = X - gamma b(X) + sqrt(2 gamma) Z`` (the stability theorem's chain)
- :func:`psgla`   PSGLA, ``X+ = prox_{gamma g}(X - gamma grad f(X) + sqrt(2 gamma) Z)`` (PnP-PSGLA when
                  the prox is a denoiser)
- :func:`pnp_ula` PnP-ULA, ``X+ = X - d grad f(X) + (alpha d / eps)(D_eps(X) - X) + sqrt(2 d) Z``
                  (+ a box projection term in imaging, Laumont et al.)
- :func:`sgla`    ULA on the Moreau envelope (MYULA / SGLA), the explicit counterpart of PSGLA

Before a chain starts, :func:`check_step` compares the explicit step with the stability bound
``gamma L <= 2`` and raises a ``ValueError`` naming the step, the bound and the fix.

Also: the exact posterior and MMSE denoiser of a Gaussian mixture prior (2-D experiments), a
Gaussian-mixture patch prior and its patch-MMSE denoiser (imaging PnP samplers), the
TV prox (scikit-image's Chambolle), imaging forward operators, sample metrics (W2^2 with POT,
sliced W, KDE density distance, PSNR/SSIM) and the invariant law of a 1-D ULA chain by
quadrature (the numerical check of the stability theorem).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
Step = Callable[[Array, Array], Array]


# --- step-size stability ------------------------------------------------------------------------


def check_step(name: str, step: float, lipschitz: float, bound: float = 2.0, fix: str = "") -> float:
    """Raise unless the explicit step satisfies ``step * lipschitz <= bound``; return the product.

    An explicit gradient step ``x - step * grad f(x)`` on an ``L``-smooth quadratic amplifies the
    top eigendirection by ``|1 - step L|``, so ``step L > 2`` diverges geometrically (the official
    TV defaults of the imaging experiment give ``s^2 / (lambda sigma^2) = 10``).
    """
    product = float(step) * float(lipschitz)
    if not np.isfinite(product) or product > bound:
        raise ValueError(
            f"unstable step: {name} = {step:.4g} times Lipschitz constant L = {lipschitz:.4g} gives "
            f"{product:.4g} > {bound:g}, so the chain diverges; fix: {fix or f'use {name} <= {bound / lipschitz:.4g}'}"
        )
    return product


# --- chains -------------------------------------------------------------------------------------


@dataclass
class ChainRecord:
    """What a run keeps: the final state, states and running moments at checkpoints, a thin path.

    ``snapshots[j]``, ``mean[j]``, ``var[j]`` belong to iteration ``checkpoints[j]`` (the running
    mean/variance average the iterates 1..k, the MMSE estimate and posterior variance of the
    chain); ``path[k]`` is ``keep(X_k)`` for k = 0..n (float32).
    """

    final: Array
    checkpoints: Array
    snapshots: Array | None
    mean: Array | None
    var: Array | None
    path: Array | None
    iterations: int
    seconds: float

    @property
    def iterations_per_second(self) -> float:
        return self.iterations / max(self.seconds, 1e-12)


def run_chain(
    step: Step,
    x0: Array,
    n_iter: int,
    rng: np.random.Generator,
    checkpoints: Sequence[int] = (),
    keep: Callable[[Array], Array] | None = None,
    snapshot: Callable[[Array], Array] | None = None,
    moments: bool = False,
) -> ChainRecord:
    """Iterate ``x <- step(x, z)``, ``z ~ N(0, I)`` of x's shape, ``n_iter`` times, recording as asked.

    ``keep`` selects what of each iterate goes into the float32 path; ``snapshot`` what is stored at
    the checkpoints (default: everything); ``moments`` turns on running mean and variance.
    """
    x = np.array(x0, dtype=float)
    marks = sorted({int(k) for k in checkpoints if 1 <= int(k) <= n_iter})
    take = snapshot or (lambda a: a)
    path = None
    if keep is not None:
        first = np.asarray(keep(x), dtype=np.float32)
        path = np.empty((n_iter + 1, *first.shape), dtype=np.float32)
        path[0] = first
    total = np.zeros_like(x) if moments else None
    total2 = np.zeros_like(x) if moments else None
    snaps, means, vars_ = [], [], []
    start = time.perf_counter()
    j = 0
    for k in range(1, n_iter + 1):
        x = step(x, rng.standard_normal(x.shape))
        if path is not None:
            path[k] = keep(x)
        if moments:
            total += x
            total2 += x * x
        if j < len(marks) and k == marks[j]:
            snaps.append(np.array(take(x), dtype=np.float32))
            if moments:
                m = total / k
                means.append(m.astype(np.float32))
                vars_.append(np.maximum(total2 / k - m * m, 0).astype(np.float32))
            j += 1
    seconds = time.perf_counter() - start
    return ChainRecord(
        final=x,
        checkpoints=np.array(marks, dtype=int),
        snapshots=np.stack(snaps) if snaps else None,
        mean=np.stack(means) if means else None,
        var=np.stack(vars_) if vars_ else None,
        path=path,
        iterations=n_iter,
        seconds=seconds,
    )


def ula_step(drift: Callable[[Array], Array], gamma: float) -> Step:
    """Inexact ULA (the stability theorem's chain): ``X+ = X - gamma b(X) + sqrt(2 gamma) Z``."""
    noise = np.sqrt(2 * gamma)
    return lambda x, z: x - gamma * drift(x) + noise * z


def psgla_step(grad_f: Callable[[Array], Array], prox: Callable[[Array, float], Array], gamma: float) -> Step:
    """PSGLA: ``X+ = prox_{gamma g}(X - gamma grad f(X) + sqrt(2 gamma) Z)``.

    The point inside the prox is an inexact ULA step on the Moreau envelope of g, which is how
    the stability theorem gives PSGLA's convergence for non-convex g.
    """
    noise = np.sqrt(2 * gamma)
    return lambda x, z: prox(x - gamma * grad_f(x) + noise * z, gamma)


def pnp_ula_step(
    grad_f: Callable[[Array], Array], denoiser: Callable[[Array, float], Array], delta: float, eps: float, alpha: float,
    box: tuple[float, float] | None = None, lam: float = np.inf,
) -> Step:
    """PnP-ULA: ``X+ = X - delta grad f(X) + (alpha delta / eps)(D_eps(X) - X) + (delta / lam)(P_C(X) - X)
    + sqrt(2 delta) Z``.

    ``D_eps`` is an MMSE denoiser at noise variance ``eps``, so ``(D_eps(x) - x) / eps`` is the score of
    the prior smoothed by that noise (Tweedie). The projection term onto the box ``C = [lo, hi]^d``
    (weight ``1 / lam``, the Moreau-Yosida envelope of its indicator) makes the drift strongly convex
    at infinity, as in the imaging experiments; without ``box`` it is absent (2-D experiments).
    """
    noise, weight = np.sqrt(2 * delta), alpha * delta / eps

    def step(x: Array, z: Array) -> Array:
        out = x - delta * grad_f(x) + weight * (denoiser(x, eps) - x) + noise * z
        if box is not None:
            out += (delta / lam) * (np.clip(x, *box) - x)
        return out

    return step


def sgla_step(
    grad_f: Callable[[Array], Array], prox: Callable[[Array, float], Array], gamma: float, mu: float
) -> Step:
    """ULA on ``f + g_mu`` (MYULA / SGLA), ``grad g_mu(x) = (x - prox_{mu g}(x)) / mu``."""
    noise = np.sqrt(2 * gamma)
    return lambda x, z: x - gamma * (grad_f(x) + (x - prox(x, mu)) / mu) + noise * z


def ula(x0, drift, gamma, n_iter, rng, lipschitz: float | None = None, **record) -> ChainRecord:
    """Run inexact ULA; with ``lipschitz`` given, check ``gamma L <= 2`` first."""
    if lipschitz is not None:
        check_step("gamma", gamma, lipschitz, fix="decrease gamma (the theorem asks gamma <= m / L^2)")
    return run_chain(ula_step(drift, gamma), x0, n_iter, rng, **record)


def psgla(x0, grad_f, prox, gamma, n_iter, rng, lipschitz_f: float | None = None, **record) -> ChainRecord:
    """Run PSGLA; with ``lipschitz_f`` (of grad f) given, check the explicit step ``gamma L_f <= 2``."""
    if lipschitz_f is not None:
        check_step(
            "gamma", gamma, lipschitz_f,
            fix="make the data step gamma * L_f <= 1, e.g. raise lambda to s^2 / sigma^2 in the imaging set-up",
        )
    return run_chain(psgla_step(grad_f, prox, gamma), x0, n_iter, rng, **record)


def pnp_ula(
    x0, grad_f, denoiser, delta, eps, alpha, n_iter, rng, lipschitz_f: float | None = None,
    box: tuple[float, float] | None = None, lam: float = np.inf, **record
) -> ChainRecord:
    """Run PnP-ULA; with ``lipschitz_f`` given, check ``delta (L_f + alpha / eps + 1 / lam) <= 2``.

    ``alpha / eps`` bounds the Lipschitz constant of the prior term when ``x - D_eps(x)`` is
    1-Lipschitz (an MMSE denoiser's residual, in the regime used here).
    """
    if lipschitz_f is not None:
        check_step("delta", delta, lipschitz_f + alpha / eps + 1 / lam, fix="decrease delta or raise eps / alpha")
    return run_chain(pnp_ula_step(grad_f, denoiser, delta, eps, alpha, box, lam), x0, n_iter, rng, **record)


def pnp_ula_parameters(sigma2: float, eps: float, alpha: float) -> tuple[float, float]:
    """The imaging experiments' PnP-ULA step ``delta`` and box weight ``lam`` (official code's rule).

    ``lam = 1 / (2 (2 / sigma2 + alpha / eps))`` and ``delta = 1 / (3 (1 / sigma2 + 1 / lam + alpha / eps))``,
    i.e. a third of the inverse Lipschitz constant of the whole drift (likelihood, prior score, box
    term); ``sigma2`` the observation noise variance, ``eps`` the denoiser's noise variance. With
    sigma = 1/255, eps = (2/255)^2 and alpha = 1: delta = 8.9e-7.
    """
    lam = 0.5 / (2 / sigma2 + alpha / eps)
    return 1 / (3 * (1 / sigma2 + 1 / lam + alpha / eps)), lam


def sgla(x0, grad_f, prox, gamma, mu, n_iter, rng, lipschitz_f: float | None = None, **record) -> ChainRecord:
    """Run ULA on the Moreau envelope; with ``lipschitz_f`` given, check ``gamma (L_f + 1/mu) <= 2``."""
    if lipschitz_f is not None:
        check_step("gamma", gamma, lipschitz_f + 1 / mu, fix="use gamma <= 1 / (L_f + 1 / mu) (the MYULA step)")
    return run_chain(sgla_step(grad_f, prox, gamma, mu), x0, n_iter, rng, **record)


# --- Gaussian mixtures (2-D experiments) --------------------------------------------------------


@dataclass(frozen=True)
class GMM:
    """A Gaussian mixture: ``means (K, d)``, ``covs (K, d, d)``, ``weights (K,)`` summing to 1."""

    means: Array
    covs: Array
    weights: Array

    @classmethod
    def of(cls, means, covs, weights) -> GMM:
        w = np.asarray(weights, dtype=float)
        return cls(np.asarray(means, dtype=float), np.asarray(covs, dtype=float), w / w.sum())

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        """``n`` i.i.d. draws (component by multinomial, then the Gaussian)."""
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)
        z = rng.standard_normal((n, self.means.shape[1]))
        return self.means[comp] + np.einsum("nij,nj->ni", chol[comp], z)

    def density(self, x: Array) -> Array:
        """Mixture density at points ``x (..., d)``."""
        return np.exp(_log_components(x, self.means, self.covs, self.weights)).sum(axis=-1)


def _log_components(x: Array, means: Array, covs: Array, weights: Array) -> Array:
    """``log w_k + log N(x; m_k, C_k)`` for every component, shape ``(..., K)``."""
    d = means.shape[1]
    inv = np.linalg.inv(covs)
    diff = x[..., None, :] - means
    quad = np.einsum("...ki,kij,...kj->...k", diff, inv, diff)
    logdet = np.linalg.slogdet(covs)[1]
    return np.log(weights) - 0.5 * (quad + logdet + d * np.log(2 * np.pi))


def gmm_posterior(prior: GMM, A: Array, y: Array, sigma2: float) -> GMM:
    """Exact posterior of ``x ~ prior`` given ``y = A x + n``, ``n ~ N(0, sigma2 I)`` (a GMM again).

    Component k: covariance ``(C_k^-1 + A^T A / sigma2)^-1``, mean ``C'_k (C_k^-1 m_k + A^T y / sigma2)``,
    weight proportional to ``w_k N(y; A m_k, A C_k A^T + sigma2 I)``.
    """
    A, y = np.asarray(A, float), np.asarray(y, float)
    inv = np.linalg.inv(prior.covs)
    covs = np.linalg.inv(inv + A.T @ A / sigma2)
    means = np.einsum("kij,kj->ki", covs, np.einsum("kij,kj->ki", inv, prior.means) + A.T @ y / sigma2)
    marg_covs = A @ prior.covs @ A.T + sigma2 * np.eye(A.shape[0])
    logw = _log_components(y, prior.means @ A.T, marg_covs, prior.weights)
    w = np.exp(logw - logw.max())
    return GMM(means, covs, w / w.sum())


def gmm_denoiser(prior: GMM | Sequence[GMM], quirk: bool = True) -> Callable[[Array, float], Array]:
    """Exact MMSE denoiser ``D_eps(x) = E[x0 | x0 + sqrt(v) n = x]`` of a GMM prior, for ``x (..., d)``.

    With ``quirk`` (the official code's choice) the noise variance is ``v = sqrt(eps)``, not ``eps``.
    Component k: responsibility ``~ w_k N(x; m_k, C_k + v I)``, mean ``m_k + C_k (C_k + v I)^-1 (x - m_k)``.
    Given a sequence of G priors (same K and d), ``x``'s first axis indexes them: ``x (G, ..., d)``.
    """
    batched = not isinstance(prior, GMM)
    priors = list(prior) if batched else [prior]
    means = np.stack([p.means for p in priors])  # (G, K, d)
    covs = np.stack([p.covs for p in priors])
    weights = np.stack([p.weights for p in priors])
    G, K, d = means.shape
    cache: dict[tuple[float, int], tuple] = {}

    def constants(eps: float, ndim: int) -> tuple:
        if (eps, ndim) not in cache:
            noisy = covs + (np.sqrt(eps) if quirk else eps) * np.eye(d)
            inv = np.linalg.inv(noisy)
            logc = np.log(weights) - 0.5 * np.linalg.slogdet(noisy)[1]
            gain_t = np.swapaxes(covs @ inv, -1, -2)
            ones = (1,) * (ndim - 2)
            cache[eps, ndim] = [  # contiguous: numpy's matmul takes its BLAS path only for those
                tuple(np.ascontiguousarray(a) for a in (
                    means[:, k].reshape(G, *ones, d), inv[:, k].reshape(G, *ones[1:], d, d),
                    logc[:, k].reshape(G, *ones), gain_t[:, k].reshape(G, *ones[1:], d, d)))
                for k in range(K)
            ]
        return cache[eps, ndim]

    def denoise(x: Array, eps: float) -> Array:
        xb = x if batched else x[None]
        if xb.ndim < 3:
            xb = xb[:, None]  # matmul needs a sample axis
        comps = constants(eps, xb.ndim)
        diffs = [xb - m for m, _, _, _ in comps]  # K is small: one array per component
        logr = np.stack([c - 0.5 * ((dk @ ik) * dk).sum(-1) for dk, (_, ik, c, _) in zip(diffs, comps)], -1)
        r = np.exp(logr - logr.max(axis=-1, keepdims=True))
        r /= r.sum(axis=-1, keepdims=True)
        out = np.zeros(xb.shape)
        for k, (dk, (m, _, _, gk)) in enumerate(zip(diffs, comps)):
            out += r[..., k : k + 1] * (m + dk @ gk)
        return out.reshape(x.shape)

    return denoise


# --- imaging ------------------------------------------------------------------------------------


def tv(x: Array) -> Array:
    """Isotropic total variation of images ``(..., H, W)`` with forward differences (Neumann)."""
    dx = np.diff(x, axis=-1, append=x[..., -1:])
    dy = np.diff(x, axis=-2, append=x[..., -1:, :])
    return np.sqrt(dx**2 + dy**2).sum(axis=(-2, -1))


def tv_prox(x: Array, weight: float, iterations: int = 50) -> Array:
    """``prox_{weight TV}(x) = argmin_u |u - x|^2 / 2 + weight TV(u)`` for images ``(..., H, W)``.

    scikit-image's Chambolle projection, each image of the batch separately.
    """
    from skimage.restoration import denoise_tv_chambolle

    flat = x.reshape(-1, *x.shape[-2:])
    out = denoise_tv_chambolle(
        np.moveaxis(flat, 0, -1), weight=weight, eps=1e-5, max_num_iter=iterations, channel_axis=-1
    )
    return np.moveaxis(out, -1, 0).reshape(x.shape)


@dataclass(frozen=True)
class Operator:
    """A linear forward model on images ``(..., H, W)``: ``apply``, ``adjoint``, ``norm2 = ||A||^2``."""

    name: str
    apply: Callable[[Array], Array]
    adjoint: Callable[[Array], Array]
    norm2: float


def inpainting(mask: Array) -> Operator:
    """Random inpainting: ``A x = mask * x`` (0/1 mask, self-adjoint, ``||A|| = 1``)."""
    m = np.asarray(mask, dtype=float)
    return Operator("inpainting", lambda x: m * x, lambda x: m * x, 1.0)


def uniform_blur(size: int = 9) -> Operator:
    """Uniform ``size x size`` blur, periodic boundary (self-adjoint, ``||A|| = 1``)."""
    from scipy.ndimage import uniform_filter

    def blur(x: Array) -> Array:
        return uniform_filter(x, size=(1,) * (x.ndim - 2) + (size, size), mode="wrap")

    return Operator(f"blur{size}", blur, blur, 1.0)


def data_gradient(op: Operator, y: Array, sigma2: float, lam: float = 1.0) -> Callable[[Array], Array]:
    """``grad f`` for ``f(x) = |A x - y|^2 / (2 sigma2 lam)``; its Lipschitz constant is ``||A||^2 / (sigma2 lam)``."""
    scale = 1.0 / (sigma2 * lam)
    return lambda x: scale * op.adjoint(op.apply(x) - y)


# --- Gaussian-mixture patch prior (imaging: PnP-ULA and PnP-PSGLA) ------------------------------


def image_patches(x: Array, size: int, stride: int = 1) -> Array:
    """The ``size x size`` patches of images ``(..., H, W)`` with periodic boundary, top-left corners
    on the ``stride`` grid: shape ``(..., H // stride, W // stride, size * size)`` (row-major patches)."""
    from numpy.lib.stride_tricks import sliding_window_view

    pad = [(0, 0)] * (x.ndim - 2) + [(0, size - 1), (0, size - 1)]
    windows = sliding_window_view(np.pad(x, pad, mode="wrap"), (size, size), axis=(-2, -1))
    windows = windows[..., : x.shape[-2] : stride, : x.shape[-1] : stride, :, :]
    return windows.reshape(*windows.shape[:-2], size * size)


def patch_average(patches: Array, shape: tuple[int, int], size: int, stride: int = 1) -> Array:
    """The adjoint-and-normalise of :func:`image_patches`: every pixel becomes the average of the
    values the overlapping patches (periodic boundary) give it. ``patches (..., H // stride, W // stride,
    size * size)`` -> images ``(..., H, W)``."""
    H, W = shape
    lead = patches.shape[:-3]
    blocks = patches.reshape(*lead, *patches.shape[-3:-1], size, size)
    acc = np.zeros((*lead, H + size - 1, W + size - 1))
    count = np.zeros((H + size - 1, W + size - 1))
    for a in range(size):
        for c in range(size):
            acc[..., a : a + H : stride, c : c + W : stride] += blocks[..., a, c]
            count[a : a + H : stride, c : c + W : stride] += 1
    for arr in (acc, count):  # fold the periodic overhang back
        arr[..., :, : size - 1] += arr[..., :, W:]
        arr[..., : size - 1, :] += arr[..., H:, :]
    return acc[..., :H, :W] / count[:H, :W]


def fit_patch_gmm(images: Sequence[Array], size: int, components: int, max_patches: int, seed: int) -> GMM:
    """A Gaussian mixture on the ``size x size`` patches of ``images`` (all overlapping patches, at most
    ``max_patches`` of them drawn at random), by EM with full covariances (scikit-learn)."""
    from numpy.lib.stride_tricks import sliding_window_view
    from sklearn.mixture import GaussianMixture

    patches = np.concatenate([sliding_window_view(np.asarray(im, float), (size, size)).reshape(-1, size * size)
                              for im in images])
    rng = np.random.default_rng(seed)
    patches = patches[rng.permutation(len(patches))[:max_patches]]
    # initialised from random data points, not k-means (whose threaded sums vary with the core count)
    fit = GaussianMixture(components, covariance_type="full", reg_covar=1e-6, init_params="random_from_data",
                          max_iter=200, random_state=seed).fit(patches)
    return GMM.of(fit.means_, fit.covariances_, fit.weights_)


def patch_gmm_denoiser(prior: GMM, size: int, stride: int = 1) -> Callable[[Array, float], Array]:
    """``D_eps`` for images ``(..., H, W)`` under the patch prior ``prior`` (a GMM on flattened
    ``size x size`` patches), noise variance ``eps``: every patch's exact posterior mean under the
    GMM (:func:`gmm_denoiser`, closed form), then the overlapping estimates averaged per pixel
    (:func:`patch_average`). Each patch estimate is an exact MMSE; the average is the usual way to
    make one image of them (it is not the MMSE of an image-level prior)."""
    denoise_patches = gmm_denoiser(prior, quirk=False)

    def denoise(x: Array, eps: float) -> Array:
        patches = image_patches(x, size, stride)
        flat = denoise_patches(patches.reshape(-1, size * size), eps)  # one (N, d) array: plain matmuls
        return patch_average(flat.reshape(patches.shape), x.shape[-2:], size, stride)

    return denoise


# --- sample metrics -----------------------------------------------------------------------------


def w2_squared(a: Array, b: Array) -> float:
    """Squared 2-Wasserstein distance between two empirical measures (exact OT, POT's ``emd2``).
    POT's default cap of 1e5 network-simplex iterations can stop short of the optimum at 2000 points
    (a warning, and an overestimate); the cap here is 1e7."""
    import ot

    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), ot.dist(a, b),
                         numItermax=10_000_000))


def w2_floor(post, n: int, g: np.random.Generator) -> float:
    """Noise floor of the empirical W2^2 at sample size ``n``: W2^2 between two independent exact
    samples of ``n`` points of ``post`` (anything with ``sample(g, n)``). A sampler whose ``n``-point
    W2^2 to an exact sample is at this level cannot be told apart from an exact sampler."""
    return w2_squared(post.sample(g, n), post.sample(g, n))


def sliced_w2(a: Array, b: Array, projections: int = 50, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance (POT), ``projections`` random directions."""
    import ot

    return float(ot.sliced_wasserstein_distance(np.asarray(a, float), np.asarray(b, float),
                                                n_projections=projections, p=2, seed=seed))


def kde(samples: Array, box: float = 8.0, n: int = 100) -> Array:
    """Gaussian KDE (Scott's bandwidth, full covariance, as ``scipy.stats.gaussian_kde``) of 2-D
    ``samples`` on the ``n x n`` grid of ``[-box, box]^2``, binned: counts on the grid convolved with
    the kernel by FFT (exact up to the binning of the points to the grid, step ``2 box / (n - 1)``).
    Returns the normalised grid weights, indexed ``[i, j]`` for ``(g[i], g[j])``.
    """
    from scipy.signal import fftconvolve

    pts = np.asarray(samples, float)
    g = np.linspace(-box, box, n)
    step = g[1] - g[0]
    edges = np.concatenate([g - step / 2, [g[-1] + step / 2]])
    counts = np.histogram2d(pts[:, 0], pts[:, 1], bins=[edges, edges])[0]
    bw = len(pts) ** (-1 / 6)  # Scott's factor in 2-D
    cov = np.cov(pts.T) * bw**2
    off = np.arange(-(n - 1), n) * step
    offsets = np.stack(np.meshgrid(off, off, indexing="ij"), -1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", offsets, np.linalg.inv(cov), offsets))
    dens = np.maximum(fftconvolve(counts, kernel, mode="same"), 0)
    return dens / dens.sum()


def kde_distance(samples: Array, density: Callable[[Array], Array], box: float = 8.0, n: int = 100) -> float:
    """Total-variation distance between a Gaussian KDE of 2-D ``samples`` and ``density`` on a grid.

    Both are normalised on the ``n x n`` grid of ``[-box, box]^2`` (as the official code does);
    returns ``sum |p - q| / 2`` in [0, 1].
    """
    g = np.linspace(-box, box, n)
    X, Y = np.meshgrid(g, g, indexing="ij")
    q = density(np.stack([X, Y], -1))
    return float(0.5 * np.abs(kde(samples, box, n) - q / q.sum()).sum())


def psnr(x: Array, ref: Array) -> float:
    """PSNR in dB, data range 1 (scikit-image)."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(ref, np.asarray(x, float), data_range=1.0))


def ssim(x: Array, ref: Array) -> float:
    """SSIM, data range 1 (scikit-image)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(ref, np.asarray(x, float), data_range=1.0))


def first_reach(iterations: Array, values: Array, target: float) -> float:
    """First iteration at which a curve reaches ``target``, interpolated linearly in log-iterations.

    ``nan`` if never reached; the first checkpoint if already reached there.
    """
    it, v = np.asarray(iterations, float), np.asarray(values, float)
    above = np.flatnonzero(v >= target)
    if above.size == 0:
        return float("nan")
    j = above[0]
    if j == 0:
        return float(it[0])
    t = (target - v[j - 1]) / (v[j] - v[j - 1])
    return float(np.exp(np.log(it[j - 1]) + t * (np.log(it[j]) - np.log(it[j - 1]))))


# --- stability theorem: invariant law of a 1-D ULA chain by quadrature --------------------------


def ula_invariant_1d(drift: Callable[[Array], Array], gamma: float, grid: Array) -> Array:
    """Invariant law (weights on ``grid``) of ``X+ = X - gamma b(X) + sqrt(2 gamma) Z`` in 1-D.

    The transition kernel ``N(x - gamma b(x), 2 gamma)`` is discretised on the uniform grid
    (rows normalised), and its stationary vector solved directly.
    """
    x = np.asarray(grid, float)
    centre = x - gamma * drift(x)
    K = np.exp(-((x[None, :] - centre[:, None]) ** 2) / (4 * gamma))
    K /= K.sum(axis=1, keepdims=True)
    n = x.size
    M = K.T - np.eye(n)
    M[-1] = 1.0  # replace one (redundant) balance equation by normalisation
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    pi = np.linalg.solve(M, rhs)
    pi = np.maximum(pi, 0)
    return pi / pi.sum()


def wasserstein_1d(grid: Array, p: Array, q: Array, order: int = 2, resolution: int = 200_000) -> float:
    """``W_order`` between two laws given as weights on the same uniform 1-D grid.

    Each weight is spread uniformly over its grid cell (a piecewise-constant density, so the CDF is
    piecewise linear and the quantile functions continuous); ``W_p^p = int_0^1 |F^-1 - G^-1|^p du``
    by the midpoint rule on ``resolution`` points. (Treating the weights as atoms instead would
    make W scale like sqrt(|p - q|) times the grid step for small differences: a grid artefact.)
    """
    x = np.asarray(grid, float)
    h = x[1] - x[0]
    edges = np.concatenate([x - h / 2, [x[-1] + h / 2]])
    u = (np.arange(resolution) + 0.5) / resolution

    def quantile(w: Array) -> Array:
        cdf = np.concatenate([[0.0], np.cumsum(w / w.sum())])
        cdf[-1] = 1.0
        keep = np.concatenate([[True], np.diff(cdf) > 0])  # strictly increasing for interp
        return np.interp(u, cdf[keep], edges[keep])

    return float(np.mean(np.abs(quantile(np.asarray(p, float)) - quantile(np.asarray(q, float))) ** order)
                 ** (1 / order))


def loglog_slope(x: Array, y: Array) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
