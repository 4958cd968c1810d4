"""The quantile method against independent oracles.

Nothing here builds an expected value with ``method.py``: the recursion is re-implemented below as a
plain scalar Python loop straight from the paper's update (shared/papers/quantile.md), the
Hall-Sheather bandwidth from Koenker's formula, interval and band constants from scipy (normal
quantiles, the exact multivariate-normal box probability), and the statistical checks use the exact
quantiles and densities of known distributions. Tolerances are tight enough that a changed constant,
a dropped factor or an off-by-one in ``method.py`` fails at least one test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from gdrepro.papers.quantile import method as M

# --- the recursion, written out independently ----------------------------------------------------


def _g(u: float) -> float:
    """Smoothed indicator of the paper: 0 below -1, (u + 1)/2 on [-1, 1), 1 above."""
    if u < -1.0:
        return 0.0
    if u >= 1.0:
        return 1.0
    return (u + 1.0) / 2.0


def _oracle_sgd(x, taus, *, a=None, c=1.0, beta=0.6, y0=0.0, marks=()):
    """Scalar loop: Y_{k+1} = Y_k + gamma_k (tau - g((Y_k - X_{k+1}) / (a gamma_k))), gamma_k = c k^-beta.

    ``a=None`` is plain SGD (g = 1{X <= Y}). Returns last, Polyak-Ruppert average, and both at ``marks``.
    """
    y0 = np.broadcast_to(np.asarray(y0, dtype=float), (len(taus),))
    last, avg, last_at, avg_at = [], [], {}, {}
    for j, tau in enumerate(taus):
        y, total = float(y0[j]), 0.0
        for k, xk in enumerate(x, start=1):
            gamma = c * k ** (-beta)
            if a is None:
                step = tau - (1.0 if xk <= y else 0.0)
            else:
                step = tau - _g((y - xk) / (a * gamma))
            y = y + gamma * step
            total += y
            if k in marks:
                last_at.setdefault(k, []).append(y)
                avg_at.setdefault(k, []).append(total / k)
        last.append(y)
        avg.append(total / len(x))
    ks = sorted(last_at)
    return (np.array(last), np.array(avg), np.array([last_at[k] for k in ks]), np.array([avg_at[k] for k in ks]))


def _oracle_hall_sheather(tau: float, n: int, alpha: float = 0.05) -> float:
    """Koenker (2005, Sec. 3.4) Hall-Sheather bandwidth, capped at min(tau, 1 - tau) / 2."""
    z = stats.norm.ppf(tau)
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    h = n ** (-1 / 3) * stats.norm.ppf(1 - alpha / 2) ** (2 / 3) * (1.5 * phi**2 / (2 * z * z + 1)) ** (1 / 3)
    return min(h, min(tau, 1 - tau) / 2)


def _oracle_band_constant(taus, level=0.95) -> float:
    """c with P(max_j |B(t_j)| / sqrt(t_j (1 - t_j)) <= c) = level, B a Brownian bridge: exact box
    probability of the multivariate normal (Genz's algorithm in scipy), solved for c."""
    t = np.asarray(taus, dtype=float)
    cov = np.array([[min(s, u) - s * u for u in t] for s in t])  # Cov(B(s), B(u)) = min(s, u) - s u
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    mvn = stats.multivariate_normal(np.zeros(t.size), corr, seed=1)

    def gap(c):
        return mvn.cdf(np.full(t.size, c), lower_limit=np.full(t.size, -c)) - level

    return optimize.brentq(gap, 1.0, 5.0, xtol=1e-6)


# --- the recursion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "c", "beta"), [(1.0, 1.0, 0.6), (0.7, 0.5, 0.75), (3.0, 2.0, 0.51), (0.55, 1.5, 0.95)]
)
def test_smoothed_sgd_matches_the_scalar_recursion(a, c, beta):
    rng = np.random.default_rng(10)
    x = rng.standard_t(4, size=400) + 0.3
    taus = [0.05, 0.3, 0.5, 0.8, 0.97]
    y0 = np.array([-1.0, 0.0, 0.2, 0.5, 2.0])
    marks = (1, 2, 7, 100, 399, 400)
    out = M.smoothed_sgd_quantiles(x, taus, a=a, c=c, beta=beta, y0=y0, checkpoints=marks)
    last, avg, last_at, avg_at = _oracle_sgd(x, taus, a=a, c=c, beta=beta, y0=y0, marks=marks)
    np.testing.assert_allclose(out.last[0], last, rtol=0, atol=1e-11)
    np.testing.assert_allclose(out.average[0], avg, rtol=0, atol=1e-11)
    assert out.checkpoints.tolist() == list(marks)
    np.testing.assert_allclose(out.last_path[:, 0], last_at, rtol=0, atol=1e-11)
    np.testing.assert_allclose(out.average_path[:, 0], avg_at, rtol=0, atol=1e-11)
    assert out.n == 400 and out.updates == 400 * len(taus)


def test_defaults_are_the_design_a_1_c_1_beta_0_6_from_a_zero_start():
    """The note's design (a = 1, c = 1, beta = 0.6, Y_0 = 0) is what the defaults run."""
    x = np.random.default_rng(11).normal(size=300)
    taus = [0.1, 0.5, 0.9]
    _, avg, _, _ = _oracle_sgd(x, taus, a=1.0, c=1.0, beta=0.6)
    np.testing.assert_allclose(M.smoothed_sgd_quantiles(x, taus).average[0], avg, rtol=0, atol=1e-11)
    _, avg, _, _ = _oracle_sgd(x, taus, a=None, c=1.0, beta=0.6)
    np.testing.assert_allclose(M.sgd_quantiles(x, taus).average[0], avg, rtol=0, atol=1e-11)


def test_many_streams_are_independent_rows_of_the_same_recursion():
    data = np.random.default_rng(12).exponential(size=(3, 250))
    taus = [0.2, 0.6]
    out = M.smoothed_sgd_quantiles(data, taus, a=0.8, c=0.7, beta=0.7)
    plain = M.sgd_quantiles(data, taus, c=0.7, beta=0.7)
    for i in range(3):
        last, avg, _, _ = _oracle_sgd(data[i], taus, a=0.8, c=0.7, beta=0.7)
        np.testing.assert_allclose(out.last[i], last, rtol=0, atol=1e-11)
        np.testing.assert_allclose(out.average[i], avg, rtol=0, atol=1e-11)
        last, avg, _, _ = _oracle_sgd(data[i], taus, a=None, c=0.7, beta=0.7)
        np.testing.assert_allclose(plain.last[i], last, rtol=0, atol=1e-11)
        np.testing.assert_allclose(plain.average[i], avg, rtol=0, atol=1e-11)


def test_plain_sgd_counts_a_tie_as_x_below_y():
    """Plain SGD uses 1{X <= Y}: a sample exactly at the estimate counts as below it."""
    out = M.sgd_quantiles(np.array([0.5]), [0.3], y0=0.5, c=1.0)
    assert out.last[0, 0] == pytest.approx(0.5 + (0.3 - 1.0))


def test_smoothed_indicator_at_its_kinks_and_in_place():
    # g(-1) = 0, g(1) = 1, slope 1/2 in between; in place with out=x
    x = np.array([-1.0 - 1e-12, -1.0, -0.2, 0.6, 1.0, 1.0 + 1e-12])
    want = np.array([_g(v) for v in x])
    np.testing.assert_allclose(M.smoothed_indicator(x.copy()), want, rtol=0, atol=1e-15)
    buf = x.copy()
    M.smoothed_indicator(buf, out=buf)
    np.testing.assert_allclose(buf, want, rtol=0, atol=1e-15)


def test_step_sizes_are_c_k_to_the_minus_beta():
    np.testing.assert_allclose(M.step_sizes(4), [1.0, 2**-0.6, 3**-0.6, 4**-0.6], rtol=1e-15)
    np.testing.assert_allclose(M.step_sizes(3, c=2.5, beta=0.75), [2.5, 2.5 * 2**-0.75, 2.5 * 3**-0.75], rtol=1e-15)
    for bad in (0.5, 1.0):
        with pytest.raises(ValueError):
            M.step_sizes(3, beta=bad)
    with pytest.raises(ValueError):
        M.step_sizes(3, c=0.0)
    M.smoothed_sgd_quantiles(np.zeros(2), [0.5], a=0.5 + 1e-9)  # a just above 1/2 is allowed


# --- statistics against known distributions ------------------------------------------------------


@pytest.fixture(scope="module")
def exponential_runs():
    """400 independent Exp(1) streams of n = 20000, both estimators on the same streams."""
    taus = np.array([0.1, 0.5, 0.75, 0.9])
    n, reps = 20_000, 400
    data = np.random.default_rng(3).exponential(size=(reps, n))
    return taus, n, {est.__name__: est(data, taus).average for est in (M.smoothed_sgd_quantiles, M.sgd_quantiles)}


@pytest.mark.parametrize("name", ["smoothed_sgd_quantiles", "sgd_quantiles"])
def test_averaged_sgd_is_root_n_efficient_for_exponential_data(exponential_runs, name):
    """Exp(1): q_tau = -log(1 - tau), f(q_tau) = 1 - tau, so sd of sqrt(n)(Ybar - q) -> sqrt(tau / (1 - tau)).

    400 reps: the rmse ratio has se ~ 0.035, so [0.86, 1.14] is 4 se either side; the mean
    standardised error (finite-n bias ~ 0.2 sd seen at n = 2e4) must stay below 0.4 sd.
    """
    taus, n, runs = exponential_runs
    z = np.sqrt(n) * (runs[name] + np.log1p(-taus)) / np.sqrt(taus / (1 - taus))
    rmse = np.sqrt((z**2).mean(axis=0))
    assert np.all((0.86 < rmse) & (rmse < 1.14)), rmse
    assert np.all(np.abs(z.mean(axis=0)) < 0.4), z.mean(axis=0)


def test_smoothing_does_not_change_the_estimate_to_first_order(exponential_runs):
    taus, n, runs = exponential_runs
    diff = np.sqrt(n) * (runs["smoothed_sgd_quantiles"] - runs["sgd_quantiles"]) / np.sqrt(taus / (1 - taus))
    # the two averages share the stream; their difference is a small fraction of the sampling sd
    assert np.sqrt((diff**2).mean()) < 0.35


# --- inference ------------------------------------------------------------------------------------


def test_asymptotic_sd_closed_forms():
    # N(0,1) median: sqrt(1/4) / phi(0) = sqrt(pi / 2); Exp(1): sqrt(tau (1 - tau)) / (1 - tau)
    assert M.asymptotic_sd(np.array([0.5]), np.array([1 / math.sqrt(2 * math.pi)]))[0] == pytest.approx(
        math.sqrt(math.pi / 2), rel=1e-14)
    taus = np.array([0.1, 0.75, 0.9])
    np.testing.assert_allclose(M.asymptotic_sd(taus, 1 - taus), np.sqrt(taus / (1 - taus)), rtol=1e-14)


@pytest.mark.parametrize("n", [500, 20_000, 100_000])
def test_hall_sheather_bandwidth_matches_koenkers_formula(n):
    taus = np.array([0.01, 0.05, 0.25, 0.5, 0.8, 0.95, 0.99])
    want = [_oracle_hall_sheather(t, n) for t in taus]
    np.testing.assert_allclose(M.hall_sheather_bandwidth(taus, n), want, rtol=1e-12)
    want = [_oracle_hall_sheather(t, n, alpha=0.1) for t in taus]
    np.testing.assert_allclose(M.hall_sheather_bandwidth(taus, n, alpha=0.1), want, rtol=1e-12)


def test_hall_sheather_value_at_the_median():
    # tau = 1/2: z = 0, phi = 1/sqrt(2 pi) -> h = n^-1/3 1.95996^(2/3) (1.5 / (2 pi))^(1/3)
    h = M.hall_sheather_bandwidth(np.array([0.5]), 1000)[0]
    assert h == pytest.approx(0.1 * 1.959963984540054 ** (2 / 3) * (1.5 / (2 * math.pi)) ** (1 / 3), rel=1e-12)


def test_augmented_levels_are_tau_then_tau_minus_h_then_tau_plus_h():
    taus, n = np.array([0.02, 0.3, 0.5]), 5000
    h = np.array([_oracle_hall_sheather(t, n) for t in taus])
    levels = M.augmented_levels(taus, n)
    np.testing.assert_allclose(levels, np.concatenate([taus, taus - h, taus + h]), rtol=1e-12)
    a, b, c = M.split_augmented(np.arange(9.0)[None], 3)
    assert a.tolist() == [[0, 1, 2]] and b.tolist() == [[3, 4, 5]] and c.tolist() == [[6, 7, 8]]


def test_plugin_density_and_sd_from_the_exact_curves():
    """Uniform(0, 2): q = 2 tau is linear, so the slope gives f = 1/2 exactly; N(0, 1): the central
    difference quotient with the Hall-Sheather h, computed by hand."""
    taus, n = np.array([0.1, 0.5, 0.7]), 4000
    h = np.array([_oracle_hall_sheather(t, n) for t in taus])
    levels = np.concatenate([taus, taus - h, taus + h])
    f, sd = M.plugin_sd(taus, 2 * levels, n)
    np.testing.assert_allclose(f, 0.5, rtol=1e-10)
    np.testing.assert_allclose(sd, 2 * np.sqrt(taus * (1 - taus)), rtol=1e-10)
    f, sd = M.plugin_sd(taus, stats.norm.ppf(levels)[None], n)
    want = 2 * h / (stats.norm.ppf(taus + h) - stats.norm.ppf(taus - h))
    np.testing.assert_allclose(f[0], want, rtol=1e-10)
    np.testing.assert_allclose(sd[0], np.sqrt(taus * (1 - taus)) / want, rtol=1e-10)
    np.testing.assert_allclose(M.density_from_curve(0.2, 1.0, 0.6, 3.0), 0.2)


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_pointwise_intervals_are_scipys_normal_intervals(level):
    est, sd, n = np.array([0.3, -1.2]), np.array([1.1, 2.5]), 900
    lo, hi = M.pointwise_intervals(est, sd, n, level)
    want_lo, want_hi = stats.norm.interval(level, loc=est, scale=sd / 30)
    np.testing.assert_allclose(lo, want_lo, rtol=1e-12)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-12)


def test_bridge_correlation_is_min_s_t_minus_s_t_normalised():
    t = [0.05, 0.2, 0.5, 0.63, 0.9]
    want = np.array([[(min(s, u) - s * u) / math.sqrt(s * (1 - s) * u * (1 - u)) for u in t] for s in t])
    np.testing.assert_allclose(M.bridge_correlation(np.array(t)), want, rtol=1e-13)


@pytest.mark.parametrize("taus", [(0.25, 0.75), (0.1, 0.5, 0.9), (0.2, 0.35, 0.5, 0.65)])
def test_band_critical_value_is_the_exact_box_quantile(taus):
    """Monte Carlo (200k draws, se ~ 0.005) against scipy's multivariate-normal box probability."""
    taus = np.array(taus)
    want = _oracle_band_constant(taus)
    assert M.band_critical_value(taus) == pytest.approx(want, abs=0.02)
    want90 = _oracle_band_constant(taus, 0.9)
    assert M.band_critical_value(taus, 0.9, draws=100_000) == pytest.approx(want90, abs=0.025)


def test_simultaneous_band_half_width():
    taus, n = np.array([0.1, 0.5, 0.9]), 2500
    est, sd = np.array([-1.3, 0.0, 1.3]), np.array([1.7, 1.25, 1.7])
    lo, hi = M.simultaneous_band(est, sd, n, taus)
    np.testing.assert_allclose((hi - lo) / 2, _oracle_band_constant(taus) * sd / 50, rtol=0.01)
    np.testing.assert_allclose((hi + lo) / 2, est, rtol=0, atol=1e-12)


def test_online_inference_is_the_pipeline_written_out_by_hand():
    """Levels tau, tau -+ h on one stream, slope density, sd, normal CI and the bridge band."""
    rng = np.random.default_rng(21)
    data = rng.normal(size=(2, 1500))
    taus = np.array([0.3, 0.6])
    n = data.shape[1]
    h = np.array([_oracle_hall_sheather(t, n) for t in taus])
    levels = list(taus) + list(taus - h) + list(taus + h)
    inf = M.online_quantile_inference(data, taus, a=0.9, c=1.2, beta=0.65)
    z975 = stats.norm.ppf(0.975)
    for i in range(2):
        _, avg, _, _ = _oracle_sgd(data[i], levels, a=0.9, c=1.2, beta=0.65)
        est, lo, hi = avg[:2], avg[2:4], avg[4:]
        f = 2 * h / (hi - lo)
        sd = np.sqrt(taus * (1 - taus)) / f
        np.testing.assert_allclose(inf.estimate[i], est, rtol=0, atol=1e-11)
        np.testing.assert_allclose(inf.density[i], f, rtol=1e-8)
        np.testing.assert_allclose(inf.sd[i], sd, rtol=1e-8)
        np.testing.assert_allclose(inf.ci_low[i], est - z975 * sd / math.sqrt(n), rtol=1e-8)
        np.testing.assert_allclose(inf.ci_high[i], est + z975 * sd / math.sqrt(n), rtol=1e-8)
        band = _oracle_band_constant(taus) * sd / math.sqrt(n)
        np.testing.assert_allclose(inf.band_high[i] - inf.estimate[i], band, rtol=0.01)
        np.testing.assert_allclose(inf.estimate[i] - inf.band_low[i], band, rtol=0.01)


def test_crossing_rate_counts_decreasing_adjacent_pairs():
    est = np.array([[0.0, 1.0, 0.5, 2.0], [0.0, 0.0, 1.0, 1.5], [3.0, 2.0, 1.0, 0.0]])
    # decreases: 1 (row 0), 0 (row 1, a tie is no crossing), 3 (row 2) of 9 pairs
    assert M.crossing_rate(est) == pytest.approx(4 / 9)


# --- tail bounds and rates (round 2) ---------------------------------------------------------------


def _linearised_variance(n: int, f: float, tau: float, c: float = 1.0, beta: float = 0.6) -> float:
    """Exact variance of the linearised recursion e_{k+1} = (1 - gamma_k f) e_k + gamma_k xi_k,
    Var xi = tau (1 - tau), from e_1 = 0: v_{k+1} = (1 - gamma_k f)^2 v_k + gamma_k^2 tau (1 - tau)."""
    v = 0.0
    for k in range(1, n):
        gamma = c * k ** (-beta)
        v = (1 - gamma * f) ** 2 * v + gamma**2 * tau * (1 - tau)
    return v


@pytest.mark.parametrize(("f", "tau", "c", "beta"), [(0.4, 0.5, 1.0, 0.6), (0.1, 0.05, 2.0, 0.7)])
def test_last_iterate_sd_is_the_limit_of_the_linearised_variance(f, tau, c, beta):
    """sqrt(gamma_n tau (1 - tau) / (2 f)) is the stationary sd: the exact sd of the linearised
    recursion exceeds it by beta / (4 f c n^(1 - beta)) to first order (the step shrinks while the
    variance settles), which vanishes as n grows."""
    ns = np.array([10_000, 100_000])
    gap = [math.sqrt(_linearised_variance(n, f, tau, c, beta)) / M.last_iterate_sd(tau, f, c * n ** (-beta)) - 1
           for n in ns]
    np.testing.assert_allclose(gap, beta / (4 * f * c * ns ** (1 - beta)), rtol=0.25)


def test_last_iterate_of_smoothed_sgd_has_the_stationary_spread_on_exponential_data():
    """Exp(1), tau = 1/2: q = log 2, f(q) = 1/2. 3000 streams of n = 10000 from the true quantile:
    the sd of Y_n matches sqrt(gamma_n / 4) / sqrt(2 f) up to the linearised excess (0.8%) and 3 se."""
    n, reps = 10_000, 3000
    out = M.smoothed_sgd_quantiles(lambda g, size: g.exponential(size=size), [0.5], n=n, reps=reps,
                                   rng=np.random.default_rng(21), y0=math.log(2))
    ratio = out.last[:, 0].std() / float(M.last_iterate_sd(0.5, 0.5, n ** (-0.6)))
    assert abs(ratio - 1.008) < 0.04, ratio  # se of an sd from 3000 draws: 1.3%


def test_tail_over_bound_by_hand_and_for_a_gaussian():
    z = np.array([0.5, -1.5, 2.5, 0.1])
    np.testing.assert_allclose(M.tail_over_bound(z, np.array([1.0, 3.0])), [0.5 / (2 * math.exp(-0.5)), 0.0])
    t = np.array([0.25, 1.0, 2.0])
    gauss = np.random.default_rng(4).standard_normal((2, 400_000))  # two rows, judged apart
    ratio = M.tail_over_bound(gauss, t)
    assert ratio.shape == (2, 3)
    exact = stats.norm.sf(t) / np.exp(-(t**2) / 2)  # 2 (1 - Phi(t)) / (2 exp(-t^2/2)); 0.414 at t = 1/4
    np.testing.assert_allclose(ratio, np.broadcast_to(exact, (2, 3)), rtol=0.02)
    assert exact[0] == pytest.approx(0.414, abs=0.001)


def test_log_log_slope_recovers_power_laws_per_column():
    k = np.array([1000, 2154, 4641, 10_000, 100_000])
    values = np.column_stack([3.0 * k**-0.3, 0.5 * k**-0.5])
    np.testing.assert_allclose(M.log_log_slope(k, values), [-0.3, -0.5], atol=1e-12)
    assert M.log_log_slope(k, values[:, 0]) == pytest.approx(-0.3, abs=1e-12)
