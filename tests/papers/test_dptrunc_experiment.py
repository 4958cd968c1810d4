"""The dptrunc evaluation on synthetic error arrays whose rates we know exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gdrepro.config import default_seeds
from gdrepro.papers.dptrunc.experiment import SETTINGS, _pool, compute_metrics, excess, rmse, slope


def test_slope_recovers_a_power_law():
    n = np.array([1e3, 1e4, 1e5])
    assert slope(n, 3.0 * n**-0.5) == pytest.approx(-0.5)
    assert slope(n, 2.0 / n) == pytest.approx(-1.0)


def test_excess_removes_the_non_private_part_of_the_error():
    rng = np.random.default_rng(0)
    stat, priv = rng.normal(size=(1, 200_000)) * 0.3, rng.normal(size=(1, 200_000)) * 0.4
    assert excess(np.abs(stat + priv), np.abs(stat))[0] == pytest.approx(0.4, rel=0.01)


def _synthetic_run(s) -> dict:
    """Errors following error = sqrt(d/n + (30 d/(n eps))^2), clip stuck at 0.1, cov trunc ~ n^-1/2."""
    rng = np.random.default_rng(1)
    dims, ns = np.array(s.dims, float), np.array(s.ns, float)
    eps = np.array([*s.epsilons, np.inf])
    scale = np.abs(rng.normal(size=s.reps)) / np.sqrt(np.mean(rng.normal(size=100_000) ** 2))
    scale /= np.sqrt(np.mean(scale**2))  # rms exactly 1 over replications
    stat = np.sqrt(dims[:, None, None] / ns[None, :, None]) * np.ones(eps.size)
    priv = 30 * dims[:, None, None] / (ns[None, :, None] * eps[None, None, :])
    trunc = (np.sqrt(stat**2 + priv**2))[..., None] * scale
    clip = np.sqrt(0.1**2 + priv**2)[..., None] * scale
    cov_ns, cov_eps = np.array(s.cov_ns, float), np.array([*s.cov_epsilons, np.inf])
    cov_t = (2 / np.sqrt(cov_ns)[:, None] * np.ones(cov_eps.size))[..., None] * scale
    run = {
        "mean__trunc__err": trunc, "mean__trunc_private__err": 1.2 * trunc, "mean__clip__err": clip,
        "mean__drop__err": 3 * clip, "mean__empirical__err": stat[..., 0, None] * scale,
        "cov__trunc__err": cov_t, "cov__clip__err": np.full_like(cov_t, 0.3),
        "cov__empirical__err": np.ones((cov_ns.size, s.reps)),
    }
    target = np.array([0.5, 1.0])
    return run | {"privacy__target": target, "privacy__zcdp": target * (1 - 1e-9),
                  "privacy__rdp": 0.8 * target, "privacy__dpacc": 0.8 * target}


def test_metrics_read_the_rates_of_a_known_error_model():
    s = dataclasses.replace(SETTINGS["default"], reps=50)
    m = compute_metrics(_synthetic_run(s), s)
    assert m["slope_n_statistical"] == pytest.approx(-0.5, abs=1e-9)
    assert m["slope_d_statistical"] == pytest.approx(0.5, abs=1e-9)
    assert m["slope_eps_privacy"] == pytest.approx(-1.0, abs=1e-6)
    assert m["slope_d_privacy"] == pytest.approx(1.0, abs=1e-6)
    assert -1.0 < m["slope_n_privacy"] < -0.9  # d/(n eps) dominates but sqrt(d/n) bends it
    assert m["mean_clip_last_decade_ratio"] > 0.95 and m["mean_trunc_last_decade_ratio"] < 0.35
    assert m["mean_trunc_private_over_public_max_n"] == pytest.approx(1.2)
    assert m["cov_trunc_slope_n"] == pytest.approx(-0.5, abs=1e-9)
    assert m["eps_over_target_max"] <= 1 and m["dpacc_over_zcdp_min"] == pytest.approx(0.8, rel=1e-6)


def test_pool_joins_replications_and_privacy_rows():
    a = {"mean__trunc__err": np.zeros((2, 3, 4, 2)), "privacy__target": np.ones(5), "timing__trunc": np.array(1.0)}
    b = {"mean__trunc__err": np.ones((2, 3, 4, 3)), "privacy__target": np.ones(7), "timing__trunc": np.array(3.0)}
    pooled = _pool([a, b])
    assert pooled["mean__trunc__err"].shape == (2, 3, 4, 5) and pooled["privacy__target"].size == 12
    assert pooled["timing__trunc"] == 2.0
    assert rmse(pooled["mean__trunc__err"])[0, 0, 0] == pytest.approx(np.sqrt(3 / 5))


def test_default_scale_has_twenty_replications_and_the_note_grid():
    s = SETTINGS["default"]
    assert s.reps * len(default_seeds()) >= 20
    assert set(s.dims) == {5, 10, 20} and min(s.ns) == 1_000 and max(s.ns) == 100_000
    assert {0.25, 0.5, 1.0, 2.0} <= set(s.epsilons)
    assert max(SETTINGS["paper"].dims) == 100 and max(SETTINGS["paper"].ns) == 1_000_000


def test_settings_reject_bad_numbers():
    with pytest.raises(ValueError):
        dataclasses.replace(SETTINGS["smoke"], delta=1.5)
    with pytest.raises(ValueError):
        dataclasses.replace(SETTINGS["smoke"], epsilons=(0.0,))
