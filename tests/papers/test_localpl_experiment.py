"""The localpl experiment: settings, the configuration grid, one batched loss run, the metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gdrepro import papers, runs, stages
from gdrepro.config import default_seeds
from gdrepro.paper import StageContext
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
        out[kind] = E.run_loss(TINY, loss, W1, W2)
    return grid, out


def test_run_loss_shapes_and_the_admissible_step_is_the_pilots_smallest(tiny_run):
    grid, run = tiny_run
    C, R = len(grid), len(E.RULES)
    assert run["square"]["iters_target"].shape == (C, R)
    assert run["square"]["gap_curve"].shape == (C, R, TINY.steps + 1)
    eta = run["square"]["eta_curve"].astype(float)
    adm, ada = E.RULES.index("admissible"), E.RULES.index("adaptive")
    np.testing.assert_allclose(eta[:, adm, 0], np.nanmin(eta[:, ada], axis=1), rtol=1e-6)
    k0 = E.RULES.index("fixed_k0")
    np.testing.assert_allclose(eta[:, k0, 0], eta[:, ada, 0], rtol=1e-6)  # 1/K_0 = first adaptive step


def test_running_each_width_on_its_own_matches_the_padded_batch(tiny_run):
    """Zero padding is exact: cutting each width's batch to its own width changes no result beyond
    rounding, and the configurations come back in the grid's order."""
    grid, run = tiny_run
    g = np.random.default_rng(0)
    X, theta = g.standard_normal((TINY.N, TINY.D)), g.standard_normal((TINY.D, TINY.m))
    W1, W2 = E._initial_weights(TINY, 0, grid)
    loss = M.make_loss("square", X, theta, np.random.default_rng(1))
    cut = E.run_loss_by_width(TINY, loss, W1, W2)
    assert set(cut) == set(run["square"])
    np.testing.assert_array_equal(cut["iters_target"], run["square"]["iters_target"])
    np.testing.assert_array_equal(cut["grid_certified"], run["square"]["grid_certified"])
    np.testing.assert_allclose(cut["gap_curve"], run["square"]["gap_curve"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(cut["sharpness"], run["square"]["sharpness"], rtol=1e-8)
    np.testing.assert_array_equal(E._widths(W1), [c["h"] for c in grid])


def test_constant_grid_contains_fixed_k0_and_certifies_only_steps_up_to_it(tiny_run):
    """The grid's c = 1 run is the fixed 1/K_0 run; eta K_0(eta) grows with eta and equals 1 at
    1/K_0, so no c > 1 can keep eta K_t <= 1 at its first step, while c = 1/8 keeps it throughout."""
    grid, run = tiny_run
    one = int(np.flatnonzero(E.CONSTANT_GRID == 1.0)[0])
    k0 = E.RULES.index("fixed_k0")
    for kind in TINY.losses:
        np.testing.assert_array_equal(run[kind]["grid_iters"][:, one], run[kind]["iters_target"][:, k0])
        assert not run[kind]["grid_certified"][:, one + 1:].any()
        assert run[kind]["grid_certified"][:, 0].all()
        assert (run[kind]["grid_certified2"] >= run[kind]["grid_certified"]).all()
        assert run[kind]["sharpness"].shape == (len(grid), 2) and (run[kind]["sharpness"] > 0).all()


def _pool_twice(run: dict, tmp_path) -> dict:
    """The run stored as the house stores a seed (every quantity stacks) and pooled with itself."""
    path = tmp_path / "seed0.npz"
    runs.save(path, {kind: {k: runs.stack(v) for k, v in res.items()} for kind, res in run.items()})
    return runs.pool([runs.load(path)] * 2)


def test_metrics_of_a_tiny_run(tiny_run, tmp_path):
    _, run = tiny_run
    m = E.compute(run, TINY.losses)
    assert m["adaptive_violations"] == 0 and m["adaptive_checked_steps"] > 100
    assert m["guaranteed_frac_below_predicted"] == 1.0
    assert m["slope_max_square"] < 0
    pooled = _pool_twice(run, tmp_path)  # seeds on a leading axis: same shares, doubled counts
    mp = E.compute(pooled, TINY.losses)
    assert mp["adaptive_checked_steps"] == 2 * m["adaptive_checked_steps"]
    assert mp["adaptive_not_slower_share"] == pytest.approx(m["adaptive_not_slower_share"])


def test_run_loss_summaries_recomputed_from_the_stored_curves(tiny_run):
    """eta growth = last / first adaptive step; rate ratio = median over checked steps of
    log(measured factor) / log(predicted factor); both recomputed here from the stored curves."""
    _, run = tiny_run
    ada = E.RULES.index("adaptive")
    eta = run["square"]["eta_curve"][:, ada].astype(float)
    gap = run["square"]["gap_curve"][:, ada].astype(float)
    rho = run["square"]["rho_pred_curve"][:, ada].astype(float)
    for c in range(eta.shape[0]):
        steps = eta[c][np.isfinite(eta[c])]
        assert run["square"]["eta_growth"][c, ada] == pytest.approx(steps[-1] / steps[0], rel=1e-5)
        ratios = [np.log(gap[c, t + 1] / gap[c, t]) / np.log(rho[c, t]) for t in range(steps.size)
                  if np.isfinite(rho[c, t]) and rho[c, t] < 1 and 0 < gap[c, t + 1] and np.isfinite(gap[c, t + 1])]
        assert run["square"]["rate_ratio_median"][c, ada] == pytest.approx(np.median(ratios), rel=1e-2)
        assert run["square"]["steps_run"][c, ada] == steps.size


def test_compute_on_a_hand_built_run():
    """Four configurations, one loss; shares counted by hand (ties count as 'not slower')."""
    nan = np.nan
    R = len(E.RULES)
    col = {r: E.RULES.index(r) for r in E.RULES}

    def table(**cols):
        t = np.zeros((4, R))
        for rule, values in cols.items():
            t[:, col[rule]] = values
        return t

    sq = {k: table() for k in ("violations", "checked_steps", "no_guarantee_steps", "diverged")}
    run = {"square": sq}
    sq["iters_target"] = table(
        adaptive=[10, 12, nan, nan], admissible=[10, 10, 20, nan], fixed_k0=[9, 12, 30, nan], armijo=[11, 5, nan, nan])
    sq["violations"][:, col["adaptive"]] = [0, 1, 0, 2]
    sq["checked_steps"][:, col["adaptive"]] = [50, 60, 70, 80]
    sq["rate_ratio_median"] = table(adaptive=[1.5, 2.0, 3.0, 4.0])
    sq["r2"] = table(adaptive=[0.99, 0.97, 0.999, 0.98])
    sq["slope"] = table(adaptive=[-0.3, -0.1, -0.2, -0.25])
    sq["rho_first"] = table(adaptive=[0.9, 0.9, 0.8, 0.7])
    sq["rho_last"] = table(adaptive=[0.8, 0.95, 0.7, 0.7])
    sq["eta_growth"] = table(adaptive=[1.2, 1.0, 0.9, 3.0])
    sq["fast_tail"] = table(adaptive=[1, 1, 0, 1])
    sq["eta_tail_falls"] = table(adaptive=[0, 2, nan, 0])
    sq["pl_violations"] = table(fixed_k0=[0, 0, 1, 0])
    lam = np.array([[1.0, 2], [3, 4], [5, 6], [7, 8]])
    sq["sharpness"], sq["curvature_bound"] = lam, 2 * lam
    sq["curvature_bound"][3, 1] = 7.9  # below the measured 8: one violation
    # PRIOR columns: balanced, margin, width_ok, arora_ok
    sq["prior"] = np.array([[1.0, 1, 1, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]])
    G = E.CONSTANT_GRID.size
    sq["grid_iters"] = np.full((4, G), nan)
    sq["grid_certified"], sq["grid_certified2"] = np.zeros((4, G)), np.zeros((4, G))
    sq["grid_iters"][0], sq["grid_iters"][0, 5] = 20, 8  # certified up to index 4 (20), descent up to 6 (8)
    sq["grid_certified"][0, :5], sq["grid_certified2"][0, :7] = 1, 1
    sq["grid_iters"][2, 3] = 15  # the one grid step that reaches the target, certified; adaptive does not
    sq["grid_certified"][2, 3] = sq["grid_certified2"][2, 3] = 1
    m = E.compute(run, ("square",))
    assert m["fast_tail_share_square"] == 0.75
    assert m["eta_tail_monotone_share"] == pytest.approx(2 / 3) and m["eta_tail_runs_share"] == 0.75
    assert m["pl_violations"] == 1 and m["sharpness_violations"] == 1
    assert m["curvature_bound_over_sharpness_median"] == pytest.approx(2.0)
    # adaptive [10, 12, nan, nan] vs certified [20, nan, 15, nan]: yes, yes, no (row 4: neither)
    assert m["adaptive_not_slower_than_certified_share"] == pytest.approx(2 / 3)
    assert m["adaptive_not_slower_than_certified2_share"] == pytest.approx(1 / 3)  # 10 > 8, yes, no
    assert m["adaptive_not_slower_than_tuned_share"] == pytest.approx(1 / 3)
    assert m["certified_constant_exists_share"] == 0.5
    assert m["prior_excluded_width_share"] == 0.5 and m["converged_share_excluded_width"] == 0.5
    assert m["prior_excluded_init_share"] == 0.75 and m["converged_share_excluded_init"] == pytest.approx(1 / 3)
    assert m["prior_excluded_all_share"] == 0.5 and m["converged_share_excluded_all"] == 0.5
    assert m["adaptive_violations"] == 3 and m["adaptive_checked_steps"] == 260
    assert m["adaptive_not_slower_share"] == pytest.approx(1 / 3)  # tie yes, 12 > 10 no, nan vs 20 no
    assert m["fixed_k0_faster_share"] == pytest.approx(2 / 3)  # 9 < 10, 12 = 12 no, 30 < nan
    assert m["armijo_faster_share"] == pytest.approx(1 / 2)  # 11 > 10, 5 < 12; rows 3, 4 have neither
    assert m["adaptive_rate_ratio_median"] == pytest.approx(2.5) and m["adaptive_rate_ratio_min"] == 1.5
    assert m["r2_min_square"] == 0.97 and m["slope_max_square"] == -0.1
    assert m["converged_share_square"] == 0.5
    assert m["adaptive_rate_improves_share"] == 0.5 and m["adaptive_eta_grows_share"] == 0.5
    assert m["guaranteed_frac_below_predicted"] == pytest.approx(1 - 3 / 260)


def test_run_seed_results_stack_over_seeds_and_pool_into_the_metrics(tmp_path, no_tracking):
    """Two seeds through the house: each loss's quantities come back stacked on a seed axis, the
    seeds draw different data, and pooled counts are the seeds' sums."""
    paper = papers.get("localpl")

    def ctx(stage: str, seed: int | None = None) -> StageContext:
        return StageContext("localpl", "smoke", TINY, (0, 1), tmp_path, tmp_path / "data", seed, stage)

    stages.run_stage(paper, "prepare", ctx("prepare"))
    for seed in (0, 1):
        stages.run_stage(paper, "train", ctx("train", seed))
    seed_runs, pooled = ctx("evaluate").runs(), ctx("evaluate").pooled()
    assert set(pooled) == set(TINY.losses)
    for kind in TINY.losses:
        for key, value in pooled[kind].items():
            np.testing.assert_array_equal(value, np.stack([r[kind][key] for r in seed_runs]))
    assert not np.array_equal(seed_runs[0]["square"]["gap_curve"], seed_runs[1]["square"]["gap_curve"])
    per_seed = [E.compute(r, TINY.losses) for r in seed_runs]
    m = E.compute(pooled, TINY.losses)
    for name in ("adaptive_violations", "adaptive_checked_steps", "admissible_no_guarantee_steps"):
        assert m[name] == sum(s[name] for s in per_seed)
