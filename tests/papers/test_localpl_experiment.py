"""The localpl experiment: settings, the configuration grid, one batched loss run, the metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gdrepro.config import default_seeds
from gdrepro.papers.localpl import experiment as E
from gdrepro.papers.localpl import method as M

TINY = E.LocalPLSettings(N=30, D=4, m=2, width_factors=(2, 5), scales=(0.5, 1.0), steps=300)


def test_settings_reject_what_the_theory_excludes():
    with pytest.raises(ValueError, match="h >= D"):
        dataclasses.replace(TINY, width_factors=(0,))
    with pytest.raises(ValueError, match="N >= D"):
        dataclasses.replace(TINY, N=3)
    with pytest.raises(ValueError, match="square"):
        dataclasses.replace(TINY, losses=("huber",))


def test_default_scale_sweeps_the_notes_widths_and_scales_with_five_seeds():
    s = E.SETTINGS["default"]
    assert {c["h"] for c in E.configs(s)} == {s.D, 2 * s.D, 5 * s.D, 20 * s.D}
    assert min(s.scales) <= 0.1 and max(s.scales) >= 3 and set(s.inits) == {"balanced", "imbalanced"}
    assert len(default_seeds()) >= 5


@pytest.fixture(scope="module")
def tiny_run():
    grid = E.configs(TINY)
    g = np.random.default_rng(0)
    X, theta = g.standard_normal((TINY.N, TINY.D)), g.standard_normal((TINY.D, TINY.m))
    W1, W2 = E._initial_weights(TINY, 0, grid)
    out = {}
    for kind in TINY.losses:
        loss = M.make_loss(kind, X, theta, np.random.default_rng(1))
        out |= {f"{kind}__{k}": v for k, v in E.run_loss(TINY, loss, W1, W2).items()}
    return grid, out


def test_run_loss_shapes_and_the_admissible_step_is_the_pilots_smallest(tiny_run):
    grid, run = tiny_run
    C, R = len(grid), len(E.RULES)
    assert run["square__iters_target"].shape == (C, R)
    assert run["square__gap_curve"].shape == (C, R, TINY.steps + 1)
    eta = run["square__eta_curve"].astype(float)
    adm, ada = E.RULES.index("admissible"), E.RULES.index("adaptive")
    np.testing.assert_allclose(eta[:, adm, 0], np.nanmin(eta[:, ada], axis=1), rtol=1e-6)
    k0 = E.RULES.index("fixed_k0")
    np.testing.assert_allclose(eta[:, k0, 0], eta[:, ada, 0], rtol=1e-6)  # 1/K_0 = first adaptive step


def test_metrics_of_a_tiny_run(tiny_run):
    _, run = tiny_run
    m = E.compute(run, TINY.losses)
    assert m["adaptive_violations"] == 0 and m["adaptive_checked_steps"] > 100
    assert m["guaranteed_frac_below_predicted"] == 1.0
    assert 0 <= m["adaptive_not_slower_share"] <= 1 and m["slope_max_square"] < 0
    pooled = E._pool([run, run])  # seeds on a leading axis: same shares, doubled counts
    mp = E.compute(pooled, TINY.losses)
    assert mp["adaptive_checked_steps"] == 2 * m["adaptive_checked_steps"]
    assert mp["adaptive_not_slower_share"] == pytest.approx(m["adaptive_not_slower_share"])
