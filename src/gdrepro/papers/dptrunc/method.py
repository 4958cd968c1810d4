"""Differentially private Gaussian mean and covariance estimation by truncation.

Zampetakis & Zhou (2025), "Private Statistical Estimation via Truncation", arXiv:2505.12541.
Only the paper's abstract and first page were readable to us, so **everything below except the
overall recipe (truncate the data to a set S, then fit the truncated-family MLE with DP gradient
descent, which corrects the bias truncation introduces) is reconstructed** from the
truncated-statistics literature (Daskalakis, Gouleakis, Tzamos & Zampetakis 2018; Lee, Wibisono &
Zampetakis 2023) and our note ``shared/papers/dptrunc.md``: the truncation sets, radii, step sizes,
number of steps, Fisher preconditioning of the covariance step, sensitivities, budget split and the
zCDP accounting. Equation / algorithm numbers of the paper were not available.

Recipe (reconstructed), for an exponential family p_theta(x) ~ h(x) exp(theta . T(x)):

1. a coarse estimate theta_0 (public, or a cheap private estimate, :func:`private_coarse_mean`,
   :func:`private_coarse_covariance`);
2. a truncation set S around theta_0 holding a constant fraction of the mass: the ball
   ``||x - mu_0|| <= r`` (mean) or ``||Sigma_0^{-1/2} x|| <= r`` (covariance), ``r = sqrt(d) + pad``;
   samples outside S are *dropped*, not clipped;
3. the truncated negative log-likelihood, averaged with the public normaliser n,
   ``L(theta) = (1/n) sum_i 1_S(x_i) [-theta . T(x_i) + log int_S h e^{theta . T}]`` whose gradient
   ``(n_S/n) E_{theta|S}[T(y)] - (1/n) sum_{i in S} T(x_i)`` has bounded sensitivity without
   clipping (2r/n for the mean, sqrt(2) r^2/n in Frobenius norm for the second moment);
   ``E_{theta|S}`` is estimated by rejection sampling from p_theta (no data, no privacy cost) on a
   fixed pool of ``pool_factor * n`` standard normal draws (common random numbers);
4. full-batch DP gradient descent for T steps, Gaussian noise per step calibrated by zCDP,
   projection onto the feasible set, output the average of the last T/2 iterates. For the mean,
   T is the fewest steps after which the step-1 iteration has contracted by a factor 100 at the
   data-free curvature of the truncated likelihood (:func:`dpgd_steps`, :func:`truncated_curvature`),
   at least 20 (the note's T ~ 20-30).

Every released statistic is a function of the data (``*_statistic``) and every estimator can keep
a :class:`Transcript` of its releases (``audit=True``), so that the noise actually added and the
sensitivity can be audited from outside (``experiment.audit_noise`` / ``audit_sensitivity``).

Accounting is in rho-zCDP (Bun & Steinke 2016): a Gaussian mechanism with L2 sensitivity Delta
and noise sd sigma is (Delta^2 / 2 sigma^2)-zCDP, zCDP composes additively, and rho-zCDP implies
(rho + 2 sqrt(rho ln(1/delta)), delta)-DP. :class:`PrivacyLedger` records every Gaussian release
and recomputes (eps, delta) both this way and with ``dp_accounting``'s RDP accountant.

Shapes: data ``x`` is ``(R, n, d)`` (R independent data sets, "replications"); ``eps`` is a 1-D
array of E privacy levels (``np.inf`` = no noise) run on the *same* data with independent noise;
estimates come back ``(E, R, d)`` (mean) or ``(E, R, d, d)`` (covariance).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

# --- privacy accounting ----------------------------------------------------------------------


RHO_SAFETY = 1e-9
"""Relative amount by which :func:`zcdp_budget` rounds rho down, so that float rounding can never
make the recomputed epsilon exceed the target."""


def _check_privacy(eps: np.ndarray, delta: float) -> np.ndarray:
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError(f"eps must be a scalar or a 1-D array, got shape {eps.shape}")
    if np.any(np.isnan(eps)) or np.any(eps <= 0):
        raise ValueError(f"eps must be > 0 (np.inf for no privacy), got {eps.tolist()}")
    if not 0.0 < float(delta) < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    return eps


def zcdp_budget(eps: float | np.ndarray, delta: float) -> np.ndarray:
    """The largest rho whose zCDP -> DP conversion gives (eps, delta): the inverse of
    :func:`zcdp_to_dp`, ``rho = (sqrt(ln(1/delta) + eps) - sqrt(ln(1/delta)))^2`` (inf for
    eps = inf), rounded down by the relative ``RHO_SAFETY``."""
    eps = _check_privacy(eps, delta)
    log_inv = math.log(1.0 / delta)
    with np.errstate(invalid="ignore"):
        rho = (np.sqrt(log_inv + eps) - math.sqrt(log_inv)) ** 2 * (1.0 - RHO_SAFETY)
    return np.where(np.isinf(eps), np.inf, rho)


def zcdp_to_dp(rho: float | np.ndarray, delta: float) -> np.ndarray:
    """rho-zCDP implies (rho + 2 sqrt(rho ln(1/delta)), delta)-DP (Bun & Steinke 2016, Prop. 1.3)."""
    if not 0.0 < float(delta) < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    rho = np.asarray(rho, dtype=float)
    return rho + 2.0 * np.sqrt(rho * math.log(1.0 / delta))


def gaussian_sigma(sensitivity: float | np.ndarray, rho: float | np.ndarray) -> np.ndarray:
    """Noise sd of a rho-zCDP Gaussian mechanism: ``sigma = Delta / sqrt(2 rho)`` (0 when rho = inf)."""
    rho = np.asarray(rho, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(rho), 0.0, np.asarray(sensitivity, dtype=float) / np.sqrt(2.0 * rho))


@dataclass(frozen=True)
class GaussianRelease:
    """``count`` releases of a statistic with L2 sensitivity ``sensitivity`` plus N(0, sigma^2 I)."""

    name: str
    sensitivity: float
    sigma: float
    count: int = 1

    @property
    def noise_multiplier(self) -> float:
        return self.sigma / self.sensitivity if self.sigma > 0 else 0.0

    @property
    def rho(self) -> float:
        return math.inf if self.sigma == 0 else self.count * self.sensitivity**2 / (2.0 * self.sigma**2)


@dataclass(frozen=True)
class PrivacyLedger:
    """Every Gaussian mechanism one estimator ran; recomputes the privacy it spent."""

    releases: tuple[GaussianRelease, ...] = field(default_factory=tuple)

    @property
    def rho(self) -> float:
        """zCDP composes additively."""
        return float(sum(r.rho for r in self.releases))

    def epsilon(self, delta: float) -> float:
        """(eps, delta)-DP from the composed zCDP (the accountant the estimators calibrate with)."""
        return math.inf if math.isinf(self.rho) else float(zcdp_to_dp(self.rho, delta))

    def rdp_epsilon(self, delta: float, orders: Sequence[float] | None = None) -> float:
        """Our own RDP conversion of the same ledger: a Gaussian release is (alpha, alpha rho)-RDP,
        converted with Canonne, Kamath & Steinke (2020, Prop. 12) over ``orders`` (default: the
        orders dp_accounting uses), so it must match :func:`dp_accounting_epsilon` exactly."""
        if math.isinf(self.rho):
            return math.inf
        orders = np.asarray(orders if orders is not None else _default_orders(), dtype=float)
        orders = orders[orders > 1.01]
        eps = self.rho * orders + np.log1p(-1.0 / orders) - np.log(delta * orders) / (orders - 1.0)
        return float(max(0.0, eps.min()))

    def dp_accounting_epsilon(self, delta: float) -> float:
        """(eps, delta) from ``dp_accounting``'s RDP accountant over the composed Gaussian events."""
        if math.isinf(self.rho):
            return math.inf
        key = tuple((r.noise_multiplier, r.count) for r in self.releases)
        return _dp_accounting_epsilon(key, float(delta))


@functools.cache
def _default_orders() -> tuple[float, ...]:
    from dp_accounting.rdp.rdp_privacy_accountant import DEFAULT_RDP_ORDERS

    return tuple(DEFAULT_RDP_ORDERS)


@functools.cache
def _dp_accounting_epsilon(events: tuple[tuple[float, int], ...], delta: float) -> float:
    import dp_accounting

    event = dp_accounting.ComposedDpEvent(
        [dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), k) for z, k in events]
    )
    accountant = dp_accounting.rdp.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    return float(accountant.compose(event).get_epsilon(delta))


# --- inputs and shared pieces ----------------------------------------------------------------


def truncation_radius(d: int, pad: float = 0.0) -> float:
    """Radius of the truncation ball, ``r = sqrt(d) + pad`` (reconstructed: the note's r ~ sqrt(d);
    with pad = 0 the ball keeps about half of the mass of N(mu, I) for ||mu - mu_0|| <= 1, in
    every dimension)."""
    if d < 1 or pad < 0:
        raise ValueError(f"need d >= 1 and pad >= 0, got d={d}, pad={pad}")
    return math.sqrt(d) + pad


def _check_data(x: np.ndarray, min_n: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"x must be (n, d) or (R, n, d), got shape {x.shape}")
    if x.shape[1] < min_n:
        raise ValueError(f"n={x.shape[1]} samples is too few: need n >= {min_n} for d={x.shape[2]}")
    if not np.isfinite(x.sum()):  # one pass, no (R, n, d) mask: a NaN or inf anywhere makes the sum non-finite
        raise ValueError("x contains non-finite values")
    return x


def _check_steps(steps: int, pool_factor: float) -> None:
    if steps < 2:
        raise ValueError(f"steps={steps} must be at least 2")
    if pool_factor < 1:
        raise ValueError(f"pool_factor={pool_factor} must be >= 1 (at least n rejection-sampling draws)")


def _split_rho(rho: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    return fraction * rho, (1.0 - fraction) * rho


def _coarse_share(rho: np.ndarray, fraction: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """The coarse step's ``fraction`` of the zCDP budget as the (eps, delta) it is given, and the rest."""
    rho_coarse, rest = _split_rho(rho, fraction)
    return np.where(np.isinf(rho_coarse), np.inf, zcdp_to_dp(rho_coarse, delta)), rest


def _project_ball(v: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection of the rows of ``v`` onto the ball of ``radius`` around 0."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v * np.minimum(1.0, radius / np.maximum(norm, 1e-300))


@dataclass(frozen=True)
class Transcript:
    """What one Gaussian mechanism of an estimator published, kept for the privacy audit.

    Call k released ``released[k]`` (E, R, ...) = ``statistic(x, **states[k])`` + noise of sd
    ``sigma`` (E,) per coordinate (``symmetric``: a symmetrised matrix, sd ``sigma`` on the
    diagonal and ``sigma / sqrt 2`` off it). ``states[k]`` holds the public inputs of the
    statistic at that call (the current iterate's model moment, the centre), arrays with leading
    (E, R) axes; ``sensitivity`` is the L2 (Frobenius) sensitivity the noise was calibrated to;
    ``region`` = (centre, shape, radius), arrays with leading (E, R) axes, describes the set the
    statistic truncates or clips to, ``{centre + shape @ u : ||u|| <= radius}`` (where an
    adversarial record is most influential)."""

    name: str
    statistic: Callable[..., np.ndarray]
    sensitivity: float
    sigma: np.ndarray
    region: tuple[np.ndarray, np.ndarray, float]
    states: list[dict[str, np.ndarray]] = field(default_factory=list)
    released: list[np.ndarray] = field(default_factory=list)
    symmetric: bool = False


@dataclass(frozen=True)
class Estimate:
    """An estimator's output: ``estimate`` (E, R, ...) and one ledger per privacy level (E,)."""

    estimate: np.ndarray
    ledgers: tuple[PrivacyLedger, ...]
    kept_fraction: np.ndarray | None = None  # n_S / n per (E, R) (diagnostic, not released)
    transcripts: tuple[Transcript, ...] = ()  # filled with audit=True

    def epsilons(self, delta: float) -> np.ndarray:
        return np.array([ledger.epsilon(delta) for ledger in self.ledgers])


# --- mean ------------------------------------------------------------------------------------


def _gaussian_mechanism(clean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (E, R, ...) plus N(0, sigma_e^2) on every coordinate, sigma (E,) one per privacy level."""
    return clean + sigma.reshape(-1, *([1] * (clean.ndim - 1))) * rng.standard_normal(clean.shape)


def _transcript(audit: bool, name: str, statistic: Callable, sensitivity: float, sigma: np.ndarray,
                region: tuple[np.ndarray, np.ndarray, float], symmetric: bool = False) -> Transcript | None:
    return Transcript(name, statistic, sensitivity, np.asarray(sigma, float), region, symmetric=symmetric) if audit else None


def _record(transcript: Transcript | None, released: np.ndarray, **state: np.ndarray) -> None:
    if transcript is not None:
        transcript.states.append(state)
        transcript.released.append(released)


def _ball_region(centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The ball ``||x - centre|| <= radius`` as a :class:`Transcript` region (centre (E, R, d))."""
    return centre, np.broadcast_to(np.eye(centre.shape[-1]), (*centre.shape, centre.shape[-1])), radius


def coarse_mean_statistic(x: np.ndarray, bound: float) -> np.ndarray:
    """The coarse step's statistic: the mean of the coordinate-clipped data, (R, d)."""
    return np.clip(x, -bound, bound).mean(axis=1)


def private_coarse_mean(
    x: np.ndarray, eps: np.ndarray | float, delta: float, bound: float, rng: np.random.Generator,
    *, audit: bool = False,
) -> Estimate:
    """Coarse private mean (step 1): clip each coordinate to [-bound, bound], average, add
    Gaussian noise (L2 sensitivity ``2 bound sqrt(d) / n``). Reconstructed; the paper's coarse
    step was not available. Accurate to O(bound d / (n sqrt(rho))), which is all step 2 needs."""
    eps = _check_privacy(eps, delta)
    x = _check_data(x, 2)
    if bound <= 0:
        raise ValueError(f"bound={bound} must be > 0")
    n_rep, n, d = x.shape
    rho = zcdp_budget(eps, delta)
    delta_2 = 2.0 * bound * math.sqrt(d) / n
    sigma = gaussian_sigma(delta_2, rho)
    mean = coarse_mean_statistic(x, bound)
    noisy = _gaussian_mechanism(np.broadcast_to(mean, (eps.size, *mean.shape)), sigma, rng)
    cube = _ball_region(np.zeros((eps.size, n_rep, d)), bound * math.sqrt(d))  # corners at distance bound sqrt(d)
    transcript = _transcript(audit, "coarse mean", functools.partial(coarse_mean_statistic, bound=bound),
                             delta_2, sigma, cube)
    _record(transcript, noisy)
    ledgers = tuple(PrivacyLedger((GaussianRelease("coarse mean", delta_2, float(s)),)) for s in sigma)
    return Estimate(noisy, ledgers, transcripts=(transcript,) if audit else ())


def _ball_data_stats(x: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """For centres (E, R, d): kept fraction n_S/n (E, R) and (1/n) sum_{i in S} (x_i - c) (E, R, d)."""
    n = x.shape[1]
    keep = (_distance2(x, np.moveaxis(centre, 0, 1)) <= radius**2).astype(float)  # (R, E, n)
    count = keep.sum(axis=-1).T / n  # (E, R)
    sums = np.moveaxis(keep @ x, 0, 1) / n  # (E, R, d)
    return count, sums - count[..., None] * centre


def _distance2(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``||x_i - c||^2`` for data (R, n, d) and centres (..., R, k, d) as (..., R, k, n), by
    ``||x||^2 - 2 c . x + ||c||^2``: two passes over the data and no (R, n, d) temporary."""
    sq = np.einsum("rnd,rnd->rn", x, x)[:, None, :]  # (R, 1, n)
    cross = centre @ np.swapaxes(x, 1, 2)  # (..., R, k, n)
    return sq - 2.0 * cross + np.einsum("...d,...d->...", centre, centre)[..., None]


def mean_gradient_statistic(x: np.ndarray, centre: np.ndarray, moment: np.ndarray, radius: float) -> np.ndarray:
    """The statistic each DP-GD step of the mean releases (step 3), the data part of the gradient
    of the truncated negative log-likelihood at the iterate whose model moment is ``moment``:
    ``(1/n) sum_i 1_S(x_i) [E_{v|S}[y] - (x_i - mu_0)]``, S = ball(mu_0, r), (E, R, d). Each term
    lies in a ball of radius 2r whatever x_i is (both points lie in S, or the term is 0): the
    replace-one sensitivity is 2r/n, no clipping needed."""
    kept, data_term = _ball_data_stats(x, centre, radius)
    return kept[..., None] * moment - data_term


def standard_pool(rng: np.random.Generator, n_rep: int, size: int, d: int, dtype: type = np.float32,
                  chunk: int = 1 << 16) -> np.ndarray:
    """The rejection sampler's pool: ``size`` standard normal draws in R^d per replication, drawn
    from ``rng`` in the order of ``rng.standard_normal((n_rep, size, d))`` (the same numbers) but
    stored features-major, (R, d, size), so that every pass of the sampler over the pool runs on
    contiguous rows; drawn ``chunk`` points at a time (no second full-size copy)."""
    pool = np.empty((n_rep, d, size), dtype=dtype)
    for r in range(n_rep):
        for a in range(0, size, chunk):
            b = min(a + chunk, size)
            pool[r, :, a:b] = rng.standard_normal((b - a, d), dtype=dtype).T
    return pool


def truncated_mean_moment(
    v: np.ndarray, pool: np.ndarray, pool_sq: np.ndarray, radius: float, curvature: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``E[y | ||y|| <= r]`` for y ~ N(v, I), by rejection sampling: y = v + z over the pool
    ``z`` (R, d, M) of standard normals (features-major, :func:`standard_pool`; ``pool_sq`` =
    ||z||^2, (R, M)); v is (E, R, d). A draw is accepted iff ``||z||^2 + 2 z . v + ||v||^2 <=
    r^2``, so one step is two passes over the pool (z . v, then the sum of the accepted z).
    Returns (E, R, d); falls back to the projection of v when no draw is accepted. With
    ``curvature=True`` also returns the model's ``P(S) * tr Cov[y | S] / d`` (E, R), the mean
    curvature of the truncated log-likelihood at v (data-free)."""
    vr = np.moveaxis(v, 0, 1).astype(pool.dtype)  # (R, E, d)
    zv = vr @ pool  # (R, E, M)
    vv = np.einsum("erd,erd->re", v, v)  # (R, E)
    accept = (pool_sq[:, None, :] + 2.0 * zv + vv[..., None].astype(pool.dtype)) <= radius**2
    accept = accept.astype(pool.dtype)
    count = accept.sum(axis=-1, dtype=float).T  # (E, R)
    zsum = np.moveaxis(accept @ np.swapaxes(pool, 1, 2), 0, 1).astype(float)  # (E, R, d)
    safe = np.maximum(count, 1.0)[..., None]
    moment = np.where(count[..., None] > 0, v + zsum / safe, _project_ball(v, radius))
    if not curvature:
        return moment
    sq = (accept @ pool_sq[..., None])[..., 0].T.astype(float) / safe[..., 0]  # E||z||^2 on S
    trace = np.maximum(sq - np.einsum("erd,erd->er", zsum / safe, zsum / safe), 0.0)
    return moment, count / pool.shape[-1] * trace / v.shape[-1]


QUADRATURE_NODES = 400
"""Gauss-Legendre nodes of :func:`truncated_mean_fisher` (in the angle: the integrands are smooth)."""


@functools.cache
def truncated_mean_fisher(d: int, radius: float, distance: float) -> tuple[float, float, float]:
    """``(P_v(S), radial, tangential)``: the mass of S = {||y|| <= r} under y ~ N(v, I) with
    ||v|| = ``distance`` and the variances of y | S along v and across it (Cov_v[y | S] has these
    two eigenvalues, the second with multiplicity d - 1), data-free. By one-dimensional
    Gauss-Legendre quadrature in the angle phi, a = r sin(phi): y = a u + w with a ~ N(distance, 1)
    along u = v / ||v|| and ||w||^2 ~ chi^2_{d-1},
    y in S iff ||w||^2 <= r^2 - a^2, and E[||w||^2 1{||w||^2 <= t}] = (d - 1) F_{chi^2_{d+1}}(t)."""
    from scipy import special, stats

    theta, weight = special.roots_legendre(QUADRATURE_NODES)
    a = radius * np.sin(0.5 * np.pi * theta)  # a = r sin(phi), phi in (-pi/2, pi/2): smooth at a = +-r
    weight = weight * 0.5 * np.pi * radius * np.cos(0.5 * np.pi * theta) * stats.norm.pdf(a - distance)
    room = radius**2 - a * a

    def chi2_cdf(k: int) -> np.ndarray:
        return np.ones_like(a) if k == 0 else stats.chi2.cdf(room, k)

    inside = chi2_cdf(d - 1)
    mass = float(weight @ inside)
    first, second = float(weight @ (a * inside)) / mass, float(weight @ (a * a * inside)) / mass
    across = float(weight @ chi2_cdf(d + 1)) / mass if d > 1 else 0.0
    return mass, second - first**2, across


def truncated_curvature(d: int, radius: float, distance: float) -> float:
    """The slowest curvature of the truncated mean likelihood on the way from mu_0 to mu,
    data-free: at v with ||v|| = ``distance`` (a public bound on ||mu - mu_0||), along v,
    ``P_v(S) Var_v[u . y | S]`` (the Hessian of L is (n_S/n) Cov_v[y | S], n_S/n -> P_mu(S),
    and the radial variance is the smaller one)."""
    mass, radial, _ = truncated_mean_fisher(d, radius, distance)
    return mass * radial


def truncated_mle_rmse(d: int, radius: float, distance: float, n: int, pool_factor: float) -> float:
    """Asymptotic RMSE of the converged truncated MLE of the mean (eps = inf), by the delta
    method: the MLE solves E_v[y | S] = mean of the kept points, so its covariance is
    Cov[y | S]^{-1} / (n P(S)), plus the same again over the pool of ``pool_factor n`` draws
    (common random numbers): ``sqrt(tr Cov[y|S]^{-1} (1 + 1/pool_factor) / (n P(S)))``."""
    mass, radial, across = truncated_mean_fisher(d, radius, distance)
    trace_inv = 1.0 / radial + ((d - 1) / across if d > 1 else 0.0)
    return math.sqrt(trace_inv * (1.0 + 1.0 / pool_factor) / (n * mass))


def dpgd_steps(curvature: float, tol: float = 0.01, minimum: int = 20) -> int:
    """Number of DP-GD steps T (even) after which step-1 gradient descent has contracted the
    initial error by ``tol`` before the averaging window starts: the error shrinks by (1 - c)
    per step, so ``(1 - c)^{T/2} <= tol``; at least ``minimum`` (the note's T ~ 20-30). The
    rule uses only the data-free curvature c, so T is public."""
    if not 0.0 < curvature or not 0.0 < tol < 1.0:
        raise ValueError(f"need curvature > 0 and 0 < tol < 1, got {curvature}, {tol}")
    half = math.ceil(math.log(1.0 / tol) / -math.log1p(-min(curvature, 1.0 - 1e-12)))
    return max(int(minimum), 2 * half)


def dp_truncated_mean(
    x: np.ndarray,
    eps: np.ndarray | float,
    delta: float,
    rng: np.random.Generator,
    centre: np.ndarray | None = None,
    *,
    pad: float = 0.0,
    steps: int | None = None,
    step_size: float | None = 1.0,
    pool_factor: float = 4.0,
    coarse_fraction: float = 0.25,
    coarse_bound: float = 10.0,
    centre_distance: float = 1.0,
    tol: float = 0.01,
    min_steps: int = 20,
    pool_dtype: type = np.float32,
    audit: bool = False,
) -> Estimate:
    """(eps, delta)-DP mean of N(mu, I) data by truncation + truncated MLE with DP gradient descent.

    ``centre`` (R, d) or (d,) is the coarse estimate mu_0, taken as public; with ``centre=None``
    a fraction ``coarse_fraction`` of the zCDP budget buys it from :func:`private_coarse_mean`
    (coordinates clipped to +-``coarse_bound``). Truncation set S = ball(mu_0, r), r =
    ``truncation_radius(d, pad)``; samples outside S are dropped. DP-GD on v = mu - mu_0::

        g_t = (n_S/n) E_{N(v_t, I)|S}[y] - (1/n) sum_{i in S} (x_i - mu_0) + N(0, sigma^2 I)
        v_{t+1} = Proj_{||v|| <= r}(v_t - eta_t g_t)

    sensitivity 2r/n per step (:func:`mean_gradient_statistic`), ``sigma = (2r/n) sqrt(T / (2
    rho_GD))``; the output is mu_0 plus the average of the last T/2 iterates. ``steps=None``
    (default) takes T from the data-free curvature (:func:`dpgd_steps` of
    :func:`truncated_curvature` at ``||mu - mu_0|| = centre_distance``, contraction ``tol``, at
    least ``min_steps``), so that the fixed step converges in every dimension (T = 34 / 28 / 22 /
    20 at d = 5 / 10 / 20 / >= 50 for r = sqrt(d), distance 1). ``step_size = 1`` (default) is
    the textbook 1/L step (the curvature of the truncated likelihood is at most I) and the
    natural-gradient step of the untruncated family. ``step_size=None`` takes instead a scalar
    Newton step ``1 / (P_v(S) tr Cov_v[y | S] / d)`` from the rejection sampler (data-free, so
    privacy is untouched), clipped to [1, 20]: fewer steps when the ball is tight, but it
    amplifies the privacy noise, which the projection then caps. ``audit=True`` keeps every
    release (:class:`Transcript`). Reconstructed from the note; see the module docstring.
    """
    eps = _check_privacy(eps, delta)
    x = _check_data(x, 10)
    n_rep, n, d = x.shape
    radius = truncation_radius(d, pad)
    if steps is None:
        steps = dpgd_steps(truncated_curvature(d, radius, centre_distance), tol, min_steps)
    _check_steps(steps, pool_factor)
    if not 0.0 < coarse_fraction < 1.0:
        raise ValueError(f"coarse_fraction={coarse_fraction} must lie in (0, 1)")
    n_eps = eps.size
    rho = zcdp_budget(eps, delta)
    coarse_ledgers: tuple[PrivacyLedger, ...] = tuple(PrivacyLedger() for _ in eps)
    transcripts: tuple[Transcript, ...] = ()
    if centre is None:
        eps_coarse, rho = _coarse_share(rho, coarse_fraction, delta)
        coarse = private_coarse_mean(x, eps_coarse, delta, coarse_bound, rng, audit=audit)
        centre_b, coarse_ledgers, transcripts = coarse.estimate, coarse.ledgers, coarse.transcripts
    else:
        centre = np.asarray(centre, dtype=float)
        centre_b = np.broadcast_to(centre, (n_eps, n_rep, d)).copy()
    kept, data_term = _ball_data_stats(x, centre_b, radius)

    sensitivity = 2.0 * radius / n
    sigma = gaussian_sigma(sensitivity, rho / steps)  # per step
    transcript = _transcript(audit, "DP-GD gradient", functools.partial(mean_gradient_statistic, radius=radius),
                             sensitivity, sigma, _ball_region(centre_b, radius))
    pool_size = int(math.ceil(pool_factor * n))
    pool = standard_pool(rng, n_rep, pool_size, d, pool_dtype)  # (R, d, M)
    pool_sq = np.einsum("rdm,rdm->rm", pool, pool)
    v = np.zeros((n_eps, n_rep, d))
    average = np.zeros_like(v)
    burn = steps - steps // 2
    for t in range(steps):
        if step_size is None:
            moment, curv = truncated_mean_moment(v, pool, pool_sq, radius, curvature=True)
            eta = np.clip(1.0 / np.maximum(curv, 1e-3), 1.0, 20.0)[..., None]
        else:
            moment, eta = truncated_mean_moment(v, pool, pool_sq, radius), step_size
        grad = _gaussian_mechanism(kept[..., None] * moment - data_term, sigma, rng)
        _record(transcript, grad, centre=centre_b, moment=moment)
        v = _project_ball(v - eta * grad, radius)
        if t >= burn:
            average += v
    estimate = centre_b + average / (steps - burn)
    ledgers = tuple(
        PrivacyLedger(cl.releases + (GaussianRelease("DP-GD gradient", sensitivity, float(s), steps),))
        for cl, s in zip(coarse_ledgers, sigma, strict=True)
    )
    return Estimate(estimate, ledgers, kept, transcripts + ((transcript,) if audit else ()))


def clip_mean_statistic(x: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """The clipping baseline's statistic: the mean of the points projected onto ball(mu_0, r),
    ``c + (1/n) sum_i w_i (x_i - c)`` with ``w_i = min(1, r / ||x_i - c||)``, for centres (..., R, d):
    (..., R, d)."""
    centre = np.asarray(centre, dtype=float)
    dist = np.sqrt(np.maximum(_distance2(x, centre[..., None, :])[..., 0, :], 0.0))  # (..., R, n)
    w = np.minimum(1.0, radius / np.maximum(dist, 1e-300))
    return (w[..., None, :] @ x)[..., 0, :] / x.shape[1] + (1.0 - w.mean(axis=-1))[..., None] * centre


def clip_mean(
    x: np.ndarray, eps: np.ndarray | float, delta: float, rng: np.random.Generator, centre: np.ndarray,
    *, pad: float = 0.0, audit: bool = False,
) -> Estimate:
    """Baseline: clip-and-noise Gaussian mechanism. Project every x_i onto ball(mu_0, r), average,
    add N(0, sigma^2 I) with sensitivity 2r/n. Biased whenever mu != mu_0 (the bias floor)."""
    eps = _check_privacy(eps, delta)
    x = _check_data(x, 10)
    n_rep, n, d = x.shape
    radius = truncation_radius(d, pad)
    centre = np.broadcast_to(np.asarray(centre, dtype=float), (n_rep, d))
    clipped = clip_mean_statistic(x, centre, radius)  # (R, d)
    sensitivity = 2.0 * radius / n
    sigma = gaussian_sigma(sensitivity, zcdp_budget(eps, delta))
    estimate = _gaussian_mechanism(np.broadcast_to(clipped, (eps.size, n_rep, d)), sigma, rng)
    centre_b = np.broadcast_to(centre, (eps.size, n_rep, d))
    transcript = _transcript(audit, "clipped mean", functools.partial(clip_mean_statistic, radius=radius),
                             sensitivity, sigma, _ball_region(centre_b, radius))
    _record(transcript, estimate, centre=centre_b)
    ledgers = tuple(PrivacyLedger((GaussianRelease("clipped mean", sensitivity, float(s)),)) for s in sigma)
    return Estimate(estimate, ledgers, transcripts=(transcript,) if audit else ())


def drop_count_statistic(x: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Drop-and-average's first statistic: the number of points in ball(mu_0, r), (E, R)."""
    return x.shape[1] * _ball_data_stats(x, centre, radius)[0]


def drop_sum_statistic(x: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Drop-and-average's second statistic: sum_{i in S} (x_i - mu_0), (E, R, d)."""
    return x.shape[1] * _ball_data_stats(x, centre, radius)[1]


def drop_mean(
    x: np.ndarray, eps: np.ndarray | float, delta: float, rng: np.random.Generator, centre: np.ndarray,
    *, pad: float = 0.0, count_fraction: float = 0.1, audit: bool = False,
) -> Estimate:
    """Baseline: drop and average. Keep x_i in ball(mu_0, r) and release the noisy sum of
    ``x_i - mu_0`` (sensitivity 2r) and the noisy count (sensitivity 1, a fraction
    ``count_fraction`` of the zCDP budget); output mu_0 + sum / count. No bias correction: it
    estimates the mean of the *truncated* distribution."""
    eps = _check_privacy(eps, delta)
    x = _check_data(x, 10)
    n_rep, n, d = x.shape
    radius = truncation_radius(d, pad)
    centre = np.broadcast_to(np.asarray(centre, dtype=float), (n_rep, d))
    centre_1 = np.broadcast_to(centre, (1, n_rep, d))
    kept, kept_sum = _ball_data_stats(x, centre_1, radius)  # one pass for both statistics
    count, total = n * kept, n * kept_sum  # drop_count_statistic, drop_sum_statistic
    rho_count, rho_sum = _split_rho(zcdp_budget(eps, delta), count_fraction)
    s_count, s_sum = gaussian_sigma(1.0, rho_count), gaussian_sigma(2.0 * radius, rho_sum)
    count = _gaussian_mechanism(np.broadcast_to(count, (eps.size, n_rep)), s_count, rng)
    total = _gaussian_mechanism(np.broadcast_to(total, (eps.size, n_rep, d)), s_sum, rng)
    estimate = centre + total / np.maximum(count, 1.0)[..., None]
    centre_b = np.broadcast_to(centre, (eps.size, n_rep, d))
    region = _ball_region(centre_b, radius)
    transcripts = (
        _transcript(audit, "kept count", functools.partial(drop_count_statistic, radius=radius), 1.0, s_count, region),
        _transcript(audit, "kept sum", functools.partial(drop_sum_statistic, radius=radius), 2.0 * radius, s_sum,
                    region),
    )
    _record(transcripts[0], count, centre=centre_b)
    _record(transcripts[1], total, centre=centre_b)
    ledgers = tuple(
        PrivacyLedger((GaussianRelease("kept count", 1.0, float(a)),
                       GaussianRelease("kept sum", 2.0 * radius, float(b))))
        for a, b in zip(s_count, s_sum, strict=True)
    )
    return Estimate(estimate, ledgers, transcripts=transcripts if audit else ())


# --- covariance ------------------------------------------------------------------------------


def _sym_power(a: np.ndarray, power: float) -> np.ndarray:
    w, u = np.linalg.eigh(a)
    return (u * w[..., None, :] ** power) @ np.swapaxes(u, -1, -2)


def _project_eigs(a: np.ndarray, low: float, high: float) -> np.ndarray:
    """Symmetrise and clip the eigenvalues to [low, high] (projection onto the feasible set)."""
    a = 0.5 * (a + np.swapaxes(a, -1, -2))
    w, u = np.linalg.eigh(a)
    return (u * np.clip(w, low, high)[..., None, :]) @ np.swapaxes(u, -1, -2)


def _sym_gaussian_mechanism(clean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian mechanism on a symmetric d x d statistic (E, R, d, d): iid N(0, sigma_e^2) entries,
    symmetrised (sd sigma on the diagonal, sigma / sqrt 2 off it: N(0, sigma^2) on the isometric
    coordinates (diagonal, sqrt 2 upper triangle), so the Frobenius sensitivity calibrates it)."""
    w = rng.standard_normal(clean.shape) * sigma.reshape(-1, *([1] * (clean.ndim - 1)))
    return clean + 0.5 * (w + np.swapaxes(w, -1, -2))


def _check_sigma0(sigma0: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The coarse covariance, checked and broadcast to (R, d, d)."""
    sigma0 = np.asarray(sigma0, dtype=float)
    if sigma0.shape[-2:] != (x.shape[2], x.shape[2]):
        raise ValueError(f"sigma0 must be (d, d) or (R, d, d) with d={x.shape[2]}, got {sigma0.shape}")
    if np.any(np.linalg.eigvalsh(sigma0) <= 0):
        raise ValueError("sigma0 must be positive definite")
    return np.broadcast_to(sigma0, (x.shape[0], *sigma0.shape[-2:]))


def _check_cov_data(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return _check_data(x, max(10, 2 * (x.shape[-1] + 1)))


def clip_second_moment_statistic(x: np.ndarray, inv_half: np.ndarray, radius: float) -> np.ndarray:
    """The clipping baseline's statistic: ``(1/n) sum_i c(z_i) c(z_i)^T`` of the whitened points
    z_i = Sigma_0^{-1/2} x_i projected onto the ball of radius r, (..., R, d, d)."""
    zt = _whiten_t(x, inv_half)  # (..., R, d, n)
    sq = np.einsum("...dn,...dn->...n", zt, zt)
    w2 = np.minimum(1.0, radius**2 / np.maximum(sq, 1e-300))  # the squared shrinkage of c(z) = z min(1, r/||z||)
    return (zt * w2[..., None, :]) @ np.swapaxes(zt, -1, -2) / x.shape[1]


def _whiten_t(x: np.ndarray, inv_half: np.ndarray) -> np.ndarray:
    """The whitened data ``z_i = Sigma_0^{-1/2} x_i`` features-major, (..., R, d, n), for data (R, n, d)
    and a symmetric ``inv_half`` (..., R, d, d): every later pass runs on contiguous rows of length n."""
    return inv_half @ np.swapaxes(x, -1, -2)


def cov_gradient_statistic(x: np.ndarray, inv_half: np.ndarray, moment: np.ndarray, radius: float) -> np.ndarray:
    """The statistic each DP-GD step of the covariance releases, the data part of the gradient of
    the truncated negative log-likelihood in the precision at the iterate whose model second
    moment is ``moment``: ``(1/n) sum_i 1_S(z_i) [E_{Lambda|S}[y y^T] - z_i z_i^T]``, z_i =
    Sigma_0^{-1/2} x_i, S = {||z|| <= r}, (E, R, d, d). Replacing z_i by z' changes it by
    ``(z z^T - z' z'^T)/n`` (both in S) or ``(M - z z^T)/n`` (one dropped), at most sqrt(2) r^2 / n
    in Frobenius norm (M is PSD with trace <= r^2)."""
    z = x @ inv_half  # (E, R, n, d)
    keep = (np.einsum("...nd,...nd->...n", z, z) <= radius**2).astype(float)
    kept = keep.mean(axis=-1)
    second = np.swapaxes(z * keep[..., None], -1, -2) @ z / x.shape[1]
    return kept[..., None, None] * moment - second


def private_coarse_covariance(
    x: np.ndarray, eps: np.ndarray | float, delta: float, rng: np.random.Generator, scale_bounds: tuple[float, float],
    *, pad: float = 0.0, audit: bool = False,
) -> Estimate:
    """Coarse private covariance (step 1 for the covariance; reconstructed, the paper's coarse
    step was not available): the clipping baseline run at the public a-priori scale, i.e. with
    ``Sigma_0 = high * I`` for public bounds ``low I <= Sigma <= high I``: every x_i is projected
    onto the ball of radius ``sqrt(high) (sqrt(d) + pad)``, the second moment released with a
    symmetrised Gaussian (Frobenius sensitivity sqrt(2) high (sqrt(d) + pad)^2 / n) and its
    eigenvalues projected onto [low, high^2 / low]. Accurate to a constant factor once n
    eps >> high d^{3/2} / low, which is all step 2 needs."""
    low, high = scale_bounds
    if not 0 < low < high:
        raise ValueError(f"scale_bounds must satisfy 0 < low < high, got {scale_bounds}")
    d = np.shape(x)[-1]
    return clip_covariance(x, eps, delta, rng, high * np.eye(d), pad=pad, eig_bound=high / low, audit=audit,
                           name="coarse covariance")


def truncated_second_moment(root: np.ndarray, pool: np.ndarray, radius: float) -> np.ndarray:
    """``E[y y^T | ||y|| <= r]`` for y ~ N(0, A), ``root`` = A^{1/2} (E, R, d, d), by rejection
    sampling over the pool ``z`` (R, d, M) of standard normals (features-major,
    :func:`standard_pool`): y = A^{1/2} z, accepted iff ||y|| <= r; (E, R, d, d) in float64."""
    moment = np.empty(root.shape)
    for e in range(root.shape[0]):  # loop over privacy levels only; (R, d, M) work is batched
        y = root[e] @ pool  # (R, d, M)
        accept = (np.einsum("rdm,rdm->rm", y, y) <= radius**2).astype(pool.dtype)
        count = np.maximum(accept.sum(axis=-1, dtype=float), 1.0)
        moment[e] = ((y * accept[:, None, :]) @ np.swapaxes(y, 1, 2)).astype(float) / count[:, None, None]
    return moment


def dp_truncated_covariance(
    x: np.ndarray,
    eps: np.ndarray | float,
    delta: float,
    rng: np.random.Generator,
    sigma0: np.ndarray | None,
    *,
    pad: float = 0.0,
    steps: int = 20,
    step_size: float = 1.0,
    pool_factor: float = 4.0,
    eig_bound: float = 4.0,
    coarse_fraction: float = 0.25,
    scale_bounds: tuple[float, float] = (0.5, 20.0),
    pool_dtype: type = np.float32,
    audit: bool = False,
) -> Estimate:
    """(eps, delta)-DP covariance of N(0, Sigma) data by truncation + truncated MLE with DP-GD.

    Whiten with the coarse ``sigma0`` (public; with ``sigma0=None`` a fraction ``coarse_fraction``
    of the zCDP budget buys it from :func:`private_coarse_covariance` under the public
    ``scale_bounds``): z = Sigma_0^{-1/2} x ~ N(0, A); truncate to S = {||z|| <= r}; fit the
    precision Lambda = A^{-1} of the truncated family by DP-GD on the released gradient
    ``g_t = (n_S/n) E_{Lambda_t|S}[y y^T] - (1/n) sum_{i in S} z_i z_i^T`` plus a symmetrised
    Gaussian matrix (:func:`cov_gradient_statistic`, Frobenius sensitivity sqrt(2) r^2 / n per
    step), with the Fisher-preconditioned (natural-gradient) step
    ``Lambda <- Proj(Lambda + eta Lambda g Lambda)`` (post-processing of g) and projection onto
    eigenvalues in [1/eig_bound, eig_bound]. Output ``Sigma_0^{1/2} Lambdabar^{-1} Sigma_0^{1/2}``,
    Lambdabar the average of the last T/2 iterates. Reconstructed (the note gives r^2/n for the
    sensitivity; a replace-one neighbour changes ``z z^T`` by up to sqrt(2) r^2 in Frobenius
    norm, so we use that). ``audit=True`` keeps every release (:class:`Transcript`).
    """
    eps = _check_privacy(eps, delta)
    x = _check_cov_data(x)
    _check_steps(steps, pool_factor)
    if eig_bound <= 1:
        raise ValueError(f"eig_bound={eig_bound} must exceed 1")
    n_rep, n, d = x.shape
    n_eps = eps.size
    rho = zcdp_budget(eps, delta)
    coarse_ledgers: tuple[PrivacyLedger, ...] = tuple(PrivacyLedger() for _ in eps)
    transcripts: tuple[Transcript, ...] = ()
    if sigma0 is None:
        eps_coarse, rho = _coarse_share(rho, coarse_fraction, delta)
        coarse = private_coarse_covariance(x, eps_coarse, delta, rng, scale_bounds, pad=pad, audit=audit)
        sigma0_b, coarse_ledgers, transcripts = coarse.estimate, coarse.ledgers, coarse.transcripts
    else:
        sigma0_b = np.broadcast_to(_check_sigma0(sigma0, x), (n_eps, n_rep, d, d))
    half, inv_half = _sym_power(sigma0_b, 0.5), _sym_power(sigma0_b, -0.5)  # (E, R, d, d)
    radius = truncation_radius(d, pad)
    kept, second = np.empty((n_eps, n_rep)), np.empty((n_eps, n_rep, d, d))
    for e in range(n_eps):  # whitened data per privacy level (the coarse estimate may differ)
        zt = _whiten_t(x, inv_half[e])  # (R, d, n)
        keep = (np.einsum("rdn,rdn->rn", zt, zt) <= radius**2).astype(float)
        kept[e], second[e] = keep.mean(axis=1), (zt * keep[:, None, :]) @ np.swapaxes(zt, 1, 2) / n

    sensitivity = math.sqrt(2.0) * radius**2 / n
    sigma = gaussian_sigma(sensitivity, rho / steps)
    transcript = _transcript(audit, "DP-GD gradient", functools.partial(cov_gradient_statistic, radius=radius),
                             sensitivity, sigma, (np.zeros((n_eps, n_rep, d)), half, radius), symmetric=True)
    pool = standard_pool(rng, n_rep, int(math.ceil(pool_factor * n)), d, pool_dtype)  # (R, d, M)
    lam = np.broadcast_to(np.eye(d), (n_eps, n_rep, d, d)).copy()
    average = np.zeros_like(lam)
    burn = steps - steps // 2
    for t in range(steps):
        root = _sym_power(lam, -0.5).astype(pool_dtype)  # A_t^{1/2}
        moment = truncated_second_moment(root, pool, radius)
        grad = _sym_gaussian_mechanism(kept[..., None, None] * moment - second, sigma, rng)
        _record(transcript, grad, inv_half=inv_half, moment=moment)
        lam = _project_eigs(lam + step_size * lam @ grad @ lam, 1.0 / eig_bound, eig_bound)
        if t >= burn:
            average += lam
    cov_white = np.linalg.inv(average / (steps - burn))
    estimate = half @ cov_white @ half
    ledgers = tuple(
        PrivacyLedger(cl.releases + (GaussianRelease("DP-GD gradient", sensitivity, float(s), steps),))
        for cl, s in zip(coarse_ledgers, sigma, strict=True)
    )
    return Estimate(estimate, ledgers, kept, transcripts + ((transcript,) if audit else ()))


def clip_covariance(
    x: np.ndarray, eps: np.ndarray | float, delta: float, rng: np.random.Generator, sigma0: np.ndarray,
    *, pad: float = 0.0, eig_bound: float = 4.0, audit: bool = False, name: str = "clipped second moment",
) -> Estimate:
    """Baseline: whiten with Sigma_0, clip every z_i to norm r, release the second moment plus a
    symmetrised Gaussian matrix (Frobenius sensitivity sqrt(2) r^2 / n), project the eigenvalues
    to [1/eig_bound, eig_bound], unwhiten. Clipping shrinks the large directions: a bias floor."""
    eps = _check_privacy(eps, delta)
    x = _check_cov_data(x)
    n_rep, n, d = x.shape
    sigma0 = _check_sigma0(sigma0, x)
    half, inv_half = _sym_power(sigma0, 0.5), _sym_power(sigma0, -0.5)
    radius = truncation_radius(d, pad)
    second = clip_second_moment_statistic(x, inv_half, radius)
    sensitivity = math.sqrt(2.0) * radius**2 / n
    sigma = gaussian_sigma(sensitivity, zcdp_budget(eps, delta))
    noisy = _sym_gaussian_mechanism(np.broadcast_to(second, (eps.size, n_rep, d, d)), sigma, rng)
    region = (np.zeros((eps.size, n_rep, d)), np.broadcast_to(half, (eps.size, n_rep, d, d)), radius)
    transcript = _transcript(audit, name, functools.partial(clip_second_moment_statistic, radius=radius),
                             sensitivity, sigma, region, symmetric=True)
    _record(transcript, noisy, inv_half=np.broadcast_to(inv_half, (eps.size, n_rep, d, d)))
    cov_white = _project_eigs(noisy, 1.0 / eig_bound, eig_bound)
    estimate = half[None] @ cov_white @ half[None]
    ledgers = tuple(PrivacyLedger((GaussianRelease(name, sensitivity, float(s)),)) for s in sigma)
    return Estimate(estimate, ledgers, transcripts=(transcript,) if audit else ())


# --- errors ----------------------------------------------------------------------------------


def mean_error(estimate: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``||mu_hat - mu||_2`` over the last axis."""
    return np.linalg.norm(estimate - mu, axis=-1)


def covariance_error(estimate: np.ndarray, sigma: np.ndarray, norm: str = "fro") -> np.ndarray:
    """Affine-invariant ``||Sigma^{-1/2} Sigma_hat Sigma^{-1/2} - I||``: Frobenius (``"fro"``) or
    spectral (``"op"``, the norm of the paper's covariance bound)."""
    inv_half = _sym_power(np.asarray(sigma, dtype=float), -0.5)
    rel = inv_half @ estimate @ inv_half - np.eye(np.shape(estimate)[-1])
    return np.linalg.norm(rel, ord={"fro": "fro", "op": 2}[norm], axis=(-2, -1))
