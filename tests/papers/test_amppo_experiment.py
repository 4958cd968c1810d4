"""AM-PPO experiment: an interrupted train job resumes from its checkpoint and ends where an
uninterrupted one does; metrics on a hand-made run; the renderer skips cleanly; prepare errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gdrepro import stages
from gdrepro.errors import GdreproError
from gdrepro.paper import StageContext
from gdrepro.papers.amppo import PAPER
from gdrepro.papers.amppo import experiment as E

torch.set_num_threads(1)
TINY = dataclasses.replace(E.SETTINGS["smoke"], total_steps=384, num_steps=128, num_minibatches=2, update_epochs=1,
                           methods=("ppo", "amppo"), eval_episodes=1, reference_iterations=0, curve_points=3)


def _ctx(out, seed: int = 0, settings=TINY) -> StageContext:
    return StageContext("amppo", "smoke", settings, (0,), out, out / "data", seed, "train")


def _flat(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for k, v in tree.items():
        flat |= _flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {prefix + k: v}
    return flat


class Interrupt(Exception):
    pass


def test_interrupted_train_resumes_at_the_last_iteration_and_matches(tmp_path, monkeypatch):
    stages.run_stage(PAPER, "train", _ctx(tmp_path / "straight"))
    straight = _flat(_ctx(tmp_path / "straight").read_run(0))
    assert not _ctx(tmp_path / "straight").checkpoint_path.exists()  # removed once the run is done

    save, calls = E.checkpoint.save, []

    def killed_after_four(path, state):  # 3 ppo iterations + "ppo done" + 1 amppo iteration, then killed
        save(path, state)
        calls.append(state.get("current"))
        if len(calls) == 5:
            raise Interrupt

    ctx = _ctx(tmp_path / "resumed")
    monkeypatch.setattr(E.checkpoint, "save", killed_after_four)
    with pytest.raises(Interrupt):
        stages.run_stage(PAPER, "train", ctx)
    state = E.checkpoint.load(ctx.checkpoint_path)
    assert list(state["done"]) == [("Hopper-v5", "ppo")] and state["trainer"]["iteration"] == 1
    iterations = []
    monkeypatch.setattr(E.checkpoint, "save", lambda p, s: (iterations.append(s.get("current")), save(p, s)))
    stages.run_stage(PAPER, "train", ctx)
    assert iterations.count(("Hopper-v5", "amppo")) == 2  # only the two unfinished iterations were run
    resumed = _flat(ctx.read_run(0))
    assert set(resumed) == set(straight)
    for k in straight:
        if not k.endswith("steps_per_second"):
            np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)


def test_metrics_of_a_hand_made_run():
    hopper = {}
    for x, final, clip, norm in (("ppo", 100.0, 1.0, 2.0), ("amppo", 90.0, 0.5, 1.0)):
        r = {"final_return": np.array(final), "eval_returns": np.array([final, final + 2]),
             "last_third_return": np.array(final / 2), "last_third_slope": np.array(final / 10),
             "diag": {"clip_fraction": np.full(4, clip), "grad_norm_median": np.full(4, norm),
                      "ratio_clipfrac": np.array([0.0, 0.1, 0.2, 0.3]) * clip}}
        if x == "amppo":
            r["diag"] |= {d: np.array([0.0, 0.0, 1.0, 3.0]) for d in
                          ("alpha", "s_ema", "sat_mb", "sat_batch", "gain_mb", "gain_batch", "corr_mb", "corr_batch")}
            r |= {"inv_sign_mismatch": np.array(0.0), "inv_bound_excess": np.array(0.0),
                  "inv_frozen_change": np.array(0.0)}
        hopper[x] = r
    m = E.compute_metrics({"train": {"Hopper-v5": hopper}})
    assert m["return_ratio_hopper"] == pytest.approx(0.9)
    assert m["clip_fraction_diff_hopper"] == pytest.approx(-0.5)
    assert m["grad_norm_ratio_hopper"] == pytest.approx(0.5)
    assert m["sat_mb_hopper"] == pytest.approx(2.0)  # second half of training only
    assert m["eval_return_hopper_ppo"] == pytest.approx(101.0)
    assert m["ratio_clipfrac_hopper_ppo"] == pytest.approx(0.15) and m["ratio_clipfrac_hopper_amppo"] == pytest.approx(0.075)
    assert m["last_third_return_hopper_amppo"] == 45.0 and m["slope_last_third_hopper_ppo"] == 10.0


def test_last_third_fits_the_slope_of_the_late_episodes_only():
    """Episodes ending after 2/3 of the run lie on a line of slope 5 per 10k steps; earlier ones do not."""
    ends = np.arange(1_000, 30_001, 1_000.0)
    returns = np.where(ends > 20_000, 100 + 5 * ends / 1e4, -1e3)
    mean, slope = E.last_third(np.column_stack([ends, returns, np.ones_like(ends)]), 30_000)
    assert slope == pytest.approx(5.0) and mean == pytest.approx(np.mean(100 + 5 * ends[ends > 20_000] / 1e4))
    assert all(np.isnan(E.last_third(np.array([[25_000.0, 1.0, 1.0]]), 30_000)[1:]))  # one episode: no slope


def test_results_pool_as_the_claims_read_them():
    """Curves and returns average over seeds, invariant violations take the worst seed, the raw
    episodes and the policy stay per seed."""
    result = {"grid": np.arange(3.0), "curve": np.ones(3), "final_return": np.array(1.0),
              "last_third_return": np.array(1.0), "last_third_slope": np.array(0.5),
              "steps_per_second": np.array(5.0), "eval_returns": np.ones(2), "episodes": np.ones((4, 3)),
              "diag": {"alpha": np.ones(2)}, "policy": {"w1": np.ones((2, 2))}, "inv_bound_excess": np.array(0.5)}
    q = E._pooling(result)
    assert {k: v.rule for k, v in q.items() if not isinstance(v, dict)} == {
        "grid": "mean", "curve": "mean", "final_return": "mean", "last_third_return": "mean",
        "last_third_slope": "mean", "steps_per_second": "mean",
        "eval_returns": "mean", "episodes": "own", "inv_bound_excess": "max"}
    assert q["diag"]["alpha"].rule == "mean" and q["policy"]["w1"].rule == "own"


def test_episode_curve_uses_the_last_episodes_finished_by_each_step():
    episodes = np.array([[10, 1.0, 10], [20, 3.0, 10], [40, 5.0, 20]])
    curve = E._curve(episodes, np.array([5, 20, 40]), last=2)
    assert np.isnan(curve[0]) and curve[1] == 2.0 and curve[2] == 4.0


def test_render_skips_cleanly_without_a_renderer(tmp_path, monkeypatch):
    from gdrepro.papers.amppo import render

    monkeypatch.setenv("MUJOCO_GL", "no-such-backend")  # MuJoCo refuses it at import, in the child
    assert render.render_rollout({"w1": np.ones(2)}, "Hopper-v5", tmp_path / "x.gif") is False
    assert not (tmp_path / "x.gif").exists()


def test_prepare_names_the_missing_environment(tmp_path):
    bad = dataclasses.replace(TINY, envs=("NoSuchEnv-v9",))
    with pytest.raises(GdreproError, match="gymnasium\\[mujoco\\]"):
        E.prepare(_ctx(tmp_path, settings=bad))


def test_scales_keep_cleanrl_hyperparameters_at_default_and_paper():
    for scale in ("default", "paper"):
        c = E.SETTINGS[scale].ppo_config()
        assert (c.num_steps, c.num_minibatches, c.update_epochs, c.learning_rate, c.max_grad_norm) == (
            2048, 32, 10, 3e-4, 0.5)
    assert E.SETTINGS["paper"].total_steps == 1_000_000 and E.SETTINGS["paper"].methods == ("ppo", "amppo")
    assert {E.env_key(e) for e in E.SETTINGS["paper"].envs} == {"halfcheetah", "hopper", "walker2d"}
