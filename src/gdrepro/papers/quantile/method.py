"""Smoothed SGD for online quantile estimation and inference.

Chen, Keilbar & Wu (2025), "Smoothed SGD for quantiles: Bahadur representation and Gaussian
approximation", arXiv:2505.13299. Equation and section numbers of the paper were not available
to us; the docstrings name the recursion and the results (non-crossing, Bahadur representation,
Gaussian approximation, tail bounds) as stated in our reading of the paper.

For every level ``tau`` on one shared stream ``X_1, X_2, ...`` (the *smoothed SGD recursion*)::

    Y_{k+1}(tau) = Y_k(tau) + gamma_k * (tau - g((Y_k(tau) - X_{k+1}) / (a * gamma_k)))
    g(x) = 0 for x < -1,  (x + 1) / 2 on [-1, 1),  1 for x >= 1
    gamma_k = c * k**(-beta),  beta in (1/2, 1),  a > 1/2

and its Polyak-Ruppert average ``Ybar_n = (1/n) sum_{k=1..n} Y_k``. Plain SGD replaces ``g`` by
the indicator ``1{x >= 0}``, i.e. the textbook update ``Y += gamma * (tau - 1{X <= Y})``.

Everything is vectorised over replications (rows) and levels (columns); the Python loop runs
over the ``n`` samples only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Sampler = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
"""``sampler(rng, (m, reps))`` returns ``m`` draws for each of ``reps`` independent streams."""

Link = Callable[[np.ndarray, float, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class QuantileSGDResult:
    """Output of one (smoothed or plain) SGD pass over ``reps`` streams and ``L`` levels.

    ``last`` is ``Y_n`` and ``average`` the Polyak-Ruppert average ``Ybar_n``, both (reps, L).
    ``average_path`` / ``last_path`` (C, reps, L) hold the same quantities at the sample sizes
    ``checkpoints`` (C,). ``updates_per_second`` counts sample-level updates (one per sample,
    level and replication).
    """

    taus: np.ndarray
    last: np.ndarray
    average: np.ndarray
    checkpoints: np.ndarray
    average_path: np.ndarray
    last_path: np.ndarray
    n: int
    seconds: float

    @property
    def updates(self) -> int:
        """Sample-level updates: samples x replications x levels."""
        return self.n * self.last.size

    @property
    def updates_per_second(self) -> float:
        return self.updates / max(self.seconds, 1e-12)


def smoothed_indicator(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The smoothed indicator ``g``: 0 below -1, ``(x + 1) / 2`` on [-1, 1), 1 above.

    With ``out`` (which may be ``x`` itself) it works in place, as the hot loop needs.
    """
    x = np.asarray(x, dtype=float)
    out = np.add(x, 1.0, out=out)
    out *= 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def step_sizes(n: int, c: float = 1.0, beta: float = 0.6) -> np.ndarray:
    """``gamma_k = c k^{-beta}`` for ``k = 1..n``."""
    if not 0.5 < beta < 1.0:
        raise ValueError(f"beta={beta} must lie in (1/2, 1)")
    if c <= 0:
        raise ValueError(f"c={c} must be positive")
    return c * np.arange(1, n + 1, dtype=float) ** (-beta)


def smoothed_sgd_quantiles(
    stream: np.ndarray | Sampler,
    taus: Sequence[float],
    *,
    a: float = 1.0,
    c: float = 1.0,
    beta: float = 0.6,
    n: int | None = None,
    reps: int | None = None,
    rng: np.random.Generator | None = None,
    y0: float | np.ndarray = 0.0,
    checkpoints: Sequence[int] = (),
) -> QuantileSGDResult:
    """Smoothed SGD quantile estimates for all ``taus`` on one shared stream (the recursion above).

    With ``a > 1/2`` each update is strictly increasing in ``Y`` and in ``tau``, so from a
    common start the estimated quantile curve never crosses (non-crossing property).

    ``stream`` is an array of shape (n,) or (reps, n), or a :data:`Sampler` (then ``n``,
    ``reps`` and ``rng`` are required). ``checkpoints`` are sample sizes ``k`` at which the
    running average and iterate are recorded.
    """
    if a <= 0.5:
        raise ValueError(f"a={a} must exceed 1/2 (the non-crossing and bandwidth condition)")

    def smoothed(y: np.ndarray, gamma: float, x: np.ndarray, buf: np.ndarray) -> None:
        np.subtract(y, x, out=buf)  # buf <- g((y - x) / (a gamma))
        buf *= 1.0 / (a * gamma)
        smoothed_indicator(buf, out=buf)

    return _run_sgd(stream, taus, smoothed, c, beta, n, reps, rng, y0, checkpoints)


def sgd_quantiles(
    stream: np.ndarray | Sampler,
    taus: Sequence[float],
    *,
    c: float = 1.0,
    beta: float = 0.6,
    n: int | None = None,
    reps: int | None = None,
    rng: np.random.Generator | None = None,
    y0: float | np.ndarray = 0.0,
    checkpoints: Sequence[int] = (),
) -> QuantileSGDResult:
    """Plain SGD quantile estimates: ``Y += gamma_k (tau - 1{X_{k+1} <= Y})`` (the baseline).

    Same interface as :func:`smoothed_sgd_quantiles`; the curve can cross.
    """

    def indicator(y: np.ndarray, gamma: float, x: np.ndarray, buf: np.ndarray) -> None:
        np.greater_equal(y, x, out=buf, casting="unsafe")

    return _run_sgd(stream, taus, indicator, c, beta, n, reps, rng, y0, checkpoints)


def _stream_chunks(
    stream: np.ndarray | Sampler,
    n: int | None,
    reps: int | None,
    rng: np.random.Generator | None,
    chunk: int,
):
    """Return ``(n, reps, iterator of (m, reps) arrays)`` for an array or a sampler."""
    if callable(stream):
        if n is None or reps is None or rng is None:
            raise ValueError("a sampler stream needs n, reps and rng")

        def draws():
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                yield np.asarray(stream(rng, (m, reps)), dtype=float).reshape(m, reps)

        return n, reps, draws()
    data = np.asarray(stream, dtype=float)
    data = data[None, :] if data.ndim == 1 else data
    if data.ndim != 2:
        raise ValueError(f"stream must have shape (n,) or (reps, n), got {data.shape}")
    if n is not None and n != data.shape[1]:
        raise ValueError(f"n={n} but the stream has {data.shape[1]} samples")
    n = data.shape[1]
    return n, data.shape[0], (data[:, s : s + chunk].T.copy() for s in range(0, n, chunk))


def _run_sgd(stream, taus, link: Link, c, beta, n, reps, rng, y0, checkpoints, chunk=4096):
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or np.any((taus <= 0) | (taus >= 1)):
        raise ValueError("taus must be a 1-d array of levels in (0, 1)")
    n, reps, chunks = _stream_chunks(stream, n, reps, rng, chunk)
    gammas = step_sizes(n, c, beta)
    marks = sorted({int(k) for k in checkpoints if 1 <= k <= n})
    y = np.broadcast_to(np.asarray(y0, dtype=float), (reps, taus.size)).copy()
    total = np.zeros_like(y)
    buf = np.empty_like(y)
    avg_path = np.empty((len(marks), reps, taus.size))
    last_path = np.empty_like(avg_path)
    mark = 0
    k = 0
    start = time.perf_counter()
    for block in chunks:
        for x in block:
            gamma = gammas[k]
            link(y, gamma, x[:, None], buf)
            buf *= -gamma
            buf += gamma * taus
            y += buf
            total += y
            k += 1
            if mark < len(marks) and k == marks[mark]:
                avg_path[mark] = total / k
                last_path[mark] = y
                mark += 1
    seconds = time.perf_counter() - start
    return QuantileSGDResult(
        taus=taus,
        last=y,
        average=total / n,
        checkpoints=np.asarray(marks, dtype=int),
        average_path=avg_path,
        last_path=last_path,
        n=n,
        seconds=seconds,
    )


# --- inference (Bahadur representation and Gaussian approximation) -----------------------------


def asymptotic_sd(taus: np.ndarray, density_at_quantile: np.ndarray) -> np.ndarray:
    """``sqrt(tau (1 - tau)) / f(q_tau)``: the sd of ``sqrt(n) (Ybar_n - q_tau)`` in the limit."""
    taus = np.asarray(taus, dtype=float)
    return np.sqrt(taus * (1 - taus)) / np.asarray(density_at_quantile, dtype=float)


def last_iterate_sd(taus: np.ndarray, density_at_quantile: np.ndarray, gamma: np.ndarray | float) -> np.ndarray:
    """``sqrt(gamma_k tau (1 - tau) / (2 f(q_tau)))``: the scale of the un-averaged iterate ``Y_k``.

    Linearised at ``q_tau`` the recursion is ``Y_{k+1} - q = (1 - gamma_k f)(Y_k - q) + gamma_k xi_k``
    with ``Var xi = tau (1 - tau)``; its stationary variance for a slowly varying step is
    ``gamma_k tau (1 - tau) / (2 f)``, the scale ``sqrt(gamma_n)`` of the tail bound without
    averaging (the paper's constants were not available to us; this is the classical limit of SGD
    with ``gamma_k = c k^-beta``, ``beta < 1``). ``gamma`` broadcasts against the levels.
    """
    taus = np.asarray(taus, dtype=float)
    return np.sqrt(np.asarray(gamma, dtype=float) * taus * (1 - taus) / (2 * np.asarray(density_at_quantile, dtype=float)))


def tail_over_bound(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``P(|Z| > t) / (2 exp(-t^2/2))``: the empirical tail of ``z`` (last axis) over the
    sub-Gaussian bound, for every ``t``; shape ``z.shape[:-1] + t.shape``.

    A value above 1 at some ``t`` means the tail of the standardised error is heavier than the
    bound allows there (the tail bounds, with or without averaging).
    """
    t = np.asarray(t, dtype=float)
    share = (np.abs(np.asarray(z))[..., None, :] > t[:, None]).mean(axis=-1)
    return share / (2 * np.exp(-(t**2) / 2))


def log_log_slope(k: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``log values`` against ``log k`` (axis 0 of ``values``): the rate
    exponent ``r`` of ``values ~ k^r`` (``-beta/2`` without, ``-1/2`` with averaging)."""
    x = np.log(np.asarray(k, dtype=float))
    y = np.log(np.asarray(values, dtype=float))
    return np.polyfit(x, y.reshape(len(x), -1), 1)[0].reshape(y.shape[1:])


def hall_sheather_bandwidth(taus: np.ndarray, n: int, alpha: float = 0.05) -> np.ndarray:
    """Hall-Sheather (1988) bandwidth ``h`` for the difference-quotient density estimate.

    Capped at ``min(tau, 1 - tau) / 2`` so that ``tau +- h`` stay inside (0, 1).
    """
    taus = np.asarray(taus, dtype=float)
    z = stats.norm.ppf(taus)
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    h = n ** (-1 / 3) * z_alpha ** (2 / 3) * (1.5 * stats.norm.pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3)
    return np.minimum(h, np.minimum(taus, 1 - taus) / 2)


def density_from_curve(
    tau_lo: np.ndarray, q_lo: np.ndarray, tau_hi: np.ndarray, q_hi: np.ndarray
) -> np.ndarray:
    """Plug-in density ``f(q_tau) ~ (tau_hi - tau_lo) / (q_hi - q_lo)`` from the estimated curve.

    The slope of the (non-crossing, hence monotone) smoothed-SGD quantile curve; ``q_hi > q_lo``
    is what non-crossing guarantees, so the estimate is positive.
    """
    return (np.asarray(tau_hi) - np.asarray(tau_lo)) / (np.asarray(q_hi) - np.asarray(q_lo))


def pointwise_intervals(
    estimate: np.ndarray, sd: np.ndarray, n: int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CIs ``estimate -+ z_{(1+level)/2} sd / sqrt(n)`` (Gaussian approximation)."""
    half = stats.norm.ppf((1 + level) / 2) * np.asarray(sd) / np.sqrt(n)
    return estimate - half, estimate + half


def bridge_correlation(taus: np.ndarray) -> np.ndarray:
    """Correlation of the standardised Brownian bridge ``B(tau) / sqrt(tau (1 - tau))``."""
    t = np.asarray(taus, dtype=float)
    cov = np.minimum.outer(t, t) - np.outer(t, t)
    sd = np.sqrt(t * (1 - t))
    return cov / np.outer(sd, sd)


def band_critical_value(
    taus: np.ndarray, level: float = 0.95, draws: int = 200_000, seed: int = 0
) -> float:
    """Critical value of ``max_tau |B(tau)| / sqrt(tau (1 - tau))`` over the grid ``taus``.

    The averaged process ``sqrt(n)(Ybar_n(tau) - q_tau) f(q_tau)`` is approximated by a Brownian
    bridge ``B`` (Gaussian approximation), so the ``level`` quantile of this maximum gives a
    simultaneous band. Computed by Monte Carlo with a fixed seed.
    """
    corr = bridge_correlation(taus)
    gen = np.random.default_rng(seed)
    z = gen.multivariate_normal(np.zeros(len(taus)), corr, size=draws, method="cholesky")
    return float(np.quantile(np.abs(z).max(axis=1), level))


def simultaneous_band(
    estimate: np.ndarray, sd: np.ndarray, n: int, taus: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous band ``estimate -+ c_level sd / sqrt(n)`` over the levels ``taus``."""
    half = band_critical_value(taus, level) * np.asarray(sd) / np.sqrt(n)
    return estimate - half, estimate + half


@dataclass(frozen=True)
class QuantileInference:
    """Online quantile estimates with plug-in standard errors, CIs and a simultaneous band."""

    taus: np.ndarray
    estimate: np.ndarray
    density: np.ndarray
    sd: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray
    sgd: QuantileSGDResult


def augmented_levels(taus: np.ndarray, n: int, alpha: float = 0.05) -> np.ndarray:
    """Levels ``[taus, taus - h, taus + h]`` tracked together for the plug-in density."""
    taus = np.asarray(taus, dtype=float)
    h = hall_sheather_bandwidth(taus, n, alpha)
    return np.concatenate([taus, taus - h, taus + h])


def split_augmented(values: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the last axis of estimates on :func:`augmented_levels` into (tau, tau-h, tau+h)."""
    return (
        values[..., :n_levels],
        values[..., n_levels : 2 * n_levels],
        values[..., 2 * n_levels :],
    )


def plugin_sd(taus: np.ndarray, estimates_augmented: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in ``(density, sd)`` from estimates on :func:`augmented_levels` (last axis)."""
    taus = np.asarray(taus, dtype=float)
    levels = augmented_levels(taus, n)
    _, q_lo, q_hi = split_augmented(estimates_augmented, taus.size)
    _, t_lo, t_hi = split_augmented(levels, taus.size)
    density = density_from_curve(t_lo, q_lo, t_hi, q_hi)
    return density, asymptotic_sd(taus, density)


def online_quantile_inference(
    stream: np.ndarray | Sampler,
    taus: Sequence[float],
    *,
    level: float = 0.95,
    a: float = 1.0,
    c: float = 1.0,
    beta: float = 0.6,
    n: int | None = None,
    reps: int | None = None,
    rng: np.random.Generator | None = None,
) -> QuantileInference:
    """Estimates, plug-in sds, pointwise CIs and a simultaneous band from one smoothed-SGD pass.

    The density ``f(q_tau)`` in the asymptotic variance ``tau (1 - tau) / f(q_tau)^2`` is
    estimated from the slope of the estimated curve at ``tau -+ h`` (Hall-Sheather ``h``),
    tracked on the same stream. Needs ``n`` in advance (for ``h``) when ``stream`` is a sampler.
    """
    taus = np.asarray(taus, dtype=float)
    size = n if callable(stream) else np.shape(stream)[-1]
    result = smoothed_sgd_quantiles(
        stream, augmented_levels(taus, size), a=a, c=c, beta=beta, n=n, reps=reps, rng=rng
    )
    estimate = split_augmented(result.average, taus.size)[0]
    density, sd = plugin_sd(taus, result.average, result.n)
    ci = pointwise_intervals(estimate, sd, result.n, level)
    band = simultaneous_band(estimate, sd, result.n, taus, level)
    return QuantileInference(taus, estimate, density, sd, *ci, *band, sgd=result)


def crossing_rate(estimates: np.ndarray) -> float:
    """Fraction of (replication, adjacent level pair) checks where the curve decreases."""
    diffs = np.diff(np.asarray(estimates), axis=-1)
    return float(np.mean(diffs < 0))
