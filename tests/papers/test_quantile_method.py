"""The quantile method against mathematics: closed forms, monotonicity, consistency, limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from gdrepro.papers.quantile import method as M

floats = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def test_smoothed_indicator_is_the_piecewise_linear_ramp():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 0.999, 1.0, 7.0])
    assert M.smoothed_indicator(x).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 0.9995, 1.0, 1.0]


def test_one_smoothed_step_matches_the_recursion_by_hand():
    # Y_1 = Y_0 + gamma_1 (tau - g((Y_0 - X_1) / (a gamma_1))), gamma_1 = c
    taus, x1, a, c = np.array([0.2, 0.5, 0.9]), 0.3, 0.8, 0.5
    out = M.smoothed_sgd_quantiles(np.array([x1]), taus, a=a, c=c)
    g = np.clip(((0.0 - x1) / (a * c) + 1) / 2, 0, 1)
    np.testing.assert_allclose(out.last[0], c * (taus - g))
    np.testing.assert_allclose(out.average[0], out.last[0])


def test_plain_sgd_is_the_textbook_indicator_update():
    rng = np.random.default_rng(1)
    x, taus, c, beta = rng.normal(size=500), np.array([0.1, 0.5, 0.95]), 2.0, 0.7
    y, total = np.zeros(3), np.zeros(3)
    for k, xk in enumerate(x, start=1):
        y = y + c * k**-beta * (taus - (xk <= y))
        total += y
    out = M.sgd_quantiles(x, taus, c=c, beta=beta)
    np.testing.assert_allclose(out.last[0], y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.average[0], total / x.size, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(floats, min_size=1, max_size=60),
    taus=st.lists(st.floats(0.001, 0.999), min_size=2, max_size=12, unique=True),
    a=st.floats(0.51, 5.0),
    c=st.floats(0.05, 5.0),
    beta=st.floats(0.51, 0.99),
)
def test_smoothed_curve_never_crosses_for_any_stream(stream, taus, a, c, beta):
    """a > 1/2 makes the update increasing in Y and tau, so sorted levels stay sorted."""
    taus = np.sort(taus)
    out = M.smoothed_sgd_quantiles(np.array(stream), taus, a=a, c=c, beta=beta, checkpoints=range(1, 61))
    for estimates in (out.last, out.average, out.last_path, out.average_path):
        assert np.all(np.diff(estimates, axis=-1) >= 0)


def test_plain_sgd_can_cross_where_smoothing_cannot():
    # Y_1 = tau - 1 = (-0.5, -0.4) after X_1 = -1; X_2 = -0.45 falls between them, and plain SGD
    # moves the lower one up by 0.66 * 0.5 and the upper one down by 0.66 * 0.4: they cross.
    taus, stream = np.array([0.5, 0.6]), np.array([-1.0, -0.45])
    plain = M.sgd_quantiles(stream, taus, c=1.0)
    smoothed = M.smoothed_sgd_quantiles(stream, taus, a=1.0, c=1.0)
    assert plain.last[0, 1] < plain.last[0, 0]
    assert smoothed.last[0, 1] >= smoothed.last[0, 0]
    assert M.crossing_rate(plain.last) == 1.0


def test_rejects_a_below_one_half_and_beta_outside_the_range():
    with pytest.raises(ValueError, match="a=0.5"):
        M.smoothed_sgd_quantiles(np.zeros(3), [0.5], a=0.5)
    with pytest.raises(ValueError, match="beta"):
        M.step_sizes(10, beta=1.0)


def test_sampler_and_array_streams_agree():
    taus = [0.25, 0.75]
    data = np.random.default_rng(5).normal(size=(3, 200))
    from_array = M.smoothed_sgd_quantiles(data, taus)
    replay = iter([data.T])
    from_sampler = M.smoothed_sgd_quantiles(lambda g, size: next(replay), taus, n=200, reps=3,
                                            rng=np.random.default_rng(0))
    np.testing.assert_array_equal(from_array.average, from_sampler.average)


def test_band_critical_value_for_one_level_is_the_normal_quantile():
    assert M.band_critical_value(np.array([0.5]), 0.95, draws=400_000) == pytest.approx(1.96, abs=0.01)


def test_band_is_wider_than_pointwise_and_grows_with_the_grid():
    c5 = M.band_critical_value(np.linspace(0.1, 0.9, 5))
    c19 = M.band_critical_value(np.linspace(0.05, 0.95, 19))
    assert 1.96 < c5 < c19 < stats.norm.ppf(1 - 0.025 / 19)  # below Bonferroni


def test_bridge_correlation_matches_the_brownian_bridge_covariance():
    corr = M.bridge_correlation(np.array([0.25, 0.5]))
    # cov(B(1/4), B(1/2)) = 1/4 - 1/8 = 1/8; sds sqrt(3/16), 1/2
    assert corr[0, 1] == pytest.approx((1 / 8) / (np.sqrt(3 / 16) * 0.5))
    np.testing.assert_allclose(np.diag(corr), 1.0)


def test_density_from_the_exact_curve_has_second_order_bias():
    """The central difference quotient of q = F^-1 recovers f(q) with error O(h^2)."""
    taus = np.array([0.2, 0.5, 0.8])
    truth = stats.norm.pdf(stats.norm.ppf(taus))

    def error(n):
        h = M.hall_sheather_bandwidth(taus, n)
        est = M.density_from_curve(taus - h, stats.norm.ppf(taus - h), taus + h, stats.norm.ppf(taus + h))
        return np.abs(est / truth - 1)

    assert np.all(error(10_000) < 0.01)
    np.testing.assert_allclose(error(80_000) / error(10_000), 0.25, rtol=0.05)  # h halves


def test_hall_sheather_bandwidth_shrinks_like_n_to_minus_one_third_and_stays_inside():
    taus = np.array([0.01, 0.5, 0.99])
    h1, h8 = M.hall_sheather_bandwidth(taus, 1000), M.hall_sheather_bandwidth(taus, 8000)
    np.testing.assert_allclose(h8[1] / h1[1], 0.5)
    assert np.all(taus - h1 > 0) and np.all(taus + h1 < 1)


def test_online_inference_covers_the_median_at_the_nominal_rate():
    taus = np.array([0.3, 0.5, 0.7])
    inf = M.online_quantile_inference(lambda g, s: g.normal(size=s), taus, n=20_000, reps=300,
                                      rng=np.random.default_rng(11))
    truth = stats.norm.ppf(taus)
    covered = (inf.ci_low <= truth) & (truth <= inf.ci_high)
    # 300 reps: 0.95 +- 3 se (se = 0.0126)
    assert np.all(np.abs(covered.mean(0) - 0.95) < 0.038)
    np.testing.assert_allclose(inf.density.mean(0), stats.norm.pdf(truth), rtol=0.03)
