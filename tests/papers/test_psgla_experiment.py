"""The psgla experiment's set-up: step checks, observations, data loading, per-seed results and pooling."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gdrepro import runs
from gdrepro.claims import load_claims
from gdrepro.errors import GdreproError
from gdrepro.metrics import read_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.psgla import PAPER
from gdrepro.papers.psgla import experiment as E
from gdrepro.papers.psgla import method as M


def test_every_scale_passes_its_step_checks():
    for scale, s in E.SETTINGS.items():
        products = E.check_steps(s)
        assert all(p <= 1.0 + 1e-9 for p in products.values()), scale


def test_the_official_tv_defaults_are_rejected_before_a_run():
    bad = replace(E.SETTINGS["default"], s=10 / 255, lam=10.0)  # README's TV defaults
    with pytest.raises(ValueError, match=r"s\^2 = .* gives 10 > 2.*raise lam to >= s\^2 / sigma\^2 = 100"):
        E.check_steps(bad)


def test_stability_step_must_respect_the_theorem_bound():
    with pytest.raises(ValueError, match="m/L"):
        replace(E.SETTINGS["smoke"], stab_gamma=0.2)  # m / L^2 = 1/9 for a = 2


def test_observations_are_fixed_and_the_mask_hides_half_the_pixels():
    s = E.SETTINGS["smoke"]
    truth = np.random.default_rng(0).random((s.image_size, s.image_size))
    op, y = E.imaging_problem(s, truth, "inpainting")
    op2, y2 = E.imaging_problem(s, truth, "inpainting")
    np.testing.assert_array_equal(y, y2)
    mask = op.apply(np.ones((1, *truth.shape)))[0]
    assert mask.sum() == truth.size // 2
    assert np.abs(y - mask * truth).max() < 6 * s.noise
    blur, yb = E.imaging_problem(s, truth, "deblurring")
    assert (yb - blur.apply(truth[None])[0]).std() == pytest.approx(s.noise, rel=0.15)


def test_load_image_explains_a_missing_dataset(tmp_path):
    with pytest.raises(GdreproError, match="missing dataset .*camera.npy"):
        E.load_image(tmp_path, "camera", 32)


def test_built_camera_loads_in_unit_range(tmp_path):
    (tmp_path / "psgla").mkdir()
    E.build_camera(tmp_path / "psgla" / "camera.npy")
    img = E.load_image(tmp_path, "camera", 32)
    assert img.shape == (32, 32) and 0 <= img.min() and img.max() <= 1


def test_gmm_exact_posterior_of_the_symmetric_prior_is_two_balanced_modes():
    prior = E.priors()[0]
    post = E.posterior(prior, [0.0, 0.0])
    np.testing.assert_allclose(post.weights, [0.5, 0.5])
    np.testing.assert_allclose(post.means, [[2.5, 2.5], [-2.5, -2.5]])
    # a chain stuck in one mode is ~20-25 away (half the mass moves about |m1 - m2|^2 = 50)
    rng = np.random.default_rng(1)
    stuck = post.means[0] + rng.normal(size=(1000, 2)) * np.sqrt(0.5)
    assert 15 < M.w2_squared(stuck, post.sample(rng, 1000)) < 25.5


TINY = replace(E.SETTINGS["smoke"], gmm_iters=100, gmm_chains=4, gmm_paths=2, gmm_points=60, gmm_points_large=80,
               img_iters=20,
               img_checkpoints=3, image_size=16, stab_grid=101, stab_sizes=3,
               pnp_iters=20, pnp_psgla_iters=10, pnp_checkpoints=4, patch_components=2, patch_train=500)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """prepare and two seeds of run_seed at tiny settings, saved as the house saves them."""
    out = tmp_path_factory.mktemp("psgla")
    (out / "data" / "psgla").mkdir(parents=True)
    E.build_camera(out / "data" / "psgla" / "camera.npy")

    def ctx(stage, seed=None):
        return StageContext("psgla", "smoke", TINY, (0, 1), out, out / "data", seed, stage)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GDREPRO_TRACKING", "off")
        E.prepare(ctx("prepare"))
        for seed in (0, 1):
            runs.save(ctx("sample", seed).run_path(seed), E.run_seed(ctx("sample", seed)))
    return ctx


def test_seed_distances_are_those_of_the_kept_float32_paths(tiny_runs):
    marks = tiny_runs("evaluate").read_prepared()["gmm_checkpoints"]
    for seed in (0, 1):
        run = tiny_runs("sample", seed).read_run(seed)["gmm"]
        for method in E.GMM_METHODS:
            assert all(p.dtype == np.float32 and p.shape[-2] == TINY.gmm_paths for p in run[method]["path"].values())
            again = E._gmm_distances(tiny_runs("sample", seed), marks, run[method]["path"], run[method]["snapshots"])
            for name, value in again.items():
                np.testing.assert_array_equal(run[method][name], value)


def test_pooling_averages_distances_and_maps_and_concatenates_perturbations(tiny_runs):
    seed_runs, pooled = tiny_runs("evaluate").runs(), tiny_runs("evaluate").pooled()
    for method in E.GMM_METHODS:
        for name in ("w2", "ensemble", "sliced", "kde"):
            np.testing.assert_array_equal(pooled["gmm"][method][name],
                                          np.mean([r["gmm"][method][name] for r in seed_runs], axis=0))
        assert "path" not in pooled["gmm"][method] and "snapshots" not in pooled["gmm"][method]
    for problem in E.PROBLEMS:
        for method in (*E.IMG_METHODS, *E.PNP_METHODS):
            per_seed = [r["imaging"][problem][method] for r in seed_runs]
            np.testing.assert_array_equal(per_seed[0]["mmse"], per_seed[0]["chains"]["mmse"].astype(float).mean(axis=1))
            np.testing.assert_array_equal(pooled["imaging"][problem][method]["mmse"],
                                          np.mean([r["mmse"] for r in per_seed], axis=0))
            assert "chains" not in pooled["imaging"][problem][method]
    w2 = [r["stability"]["w2"] for r in seed_runs]
    assert not np.array_equal(*w2)  # each seed its own perturbation direction
    assert pooled["stability"]["w2"].tolist() == [*w2[0], *w2[1]] and "pi" not in pooled["stability"]


def test_evaluate_writes_every_claimed_metric_and_the_figures_draw(tiny_runs):
    ctx = tiny_runs("evaluate")
    E.evaluate(ctx)
    metrics = read_metrics(ctx.metrics_path)
    spec = load_claims(Path(E.__file__).with_name("claims.yaml"))
    claimed = {c[key] for claim in spec["claims"] for c in claim["checks"]
               for key in ("metric", "versus", "floor") if key in c}
    assert claimed <= set(metrics["metrics"])
    for prior in E.PRIORS:  # a noise floor beside every W2^2 distance, positive
        for label in ("w2", "w2_ensemble", "w2_large"):
            assert metrics["metrics"][f"floor_{label}_{prior}"]["value"] > 0
            assert f"{label}_{prior}_psgla" in metrics["metrics"]
    assert len(metrics["details"]["stability"]["w2"]) == 2
    from gdrepro.figures import draw_all

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GDREPRO_TRACKING", "off")
        paths = draw_all(PAPER, tiny_runs("figures"))
    assert {p.stem for p in paths} == set(PAPER.figure_names)


def test_figures_fit_a_column():
    for fig in PAPER.figures:
        assert fig.figsize(TINY)[0] <= 7.2 and not fig.squeeze  # about 7 in wide, printable at column width
        assert fig.draw and callable(PAPER.resolve(fig.draw))


def test_learned_prior_chains_use_the_papers_pnp_ula_step_and_start():
    s = E.SETTINGS["default"]
    delta, lam = s.pnp_ula_parameters
    assert delta == pytest.approx(8.9e-7, rel=0.01)  # the paper's PnP-ULA step
    assert s.pnp_s**2 / delta == pytest.approx(69, rel=0.01)  # PnP-PSGLA's step is ~70x larger
    truth = np.random.default_rng(0).random((16, 16))
    op, y = E.imaging_problem(replace(s, image_size=16), truth, "inpainting")
    x0 = E.pnp_init("inpainting", op, y)
    mask = op.apply(np.ones((1, 16, 16)))[0] > 0
    np.testing.assert_array_equal(x0[~mask], 0.5)
    np.testing.assert_array_equal(x0[mask], y[mask])
    assert E.pnp_marks(s, s.pnp_psgla_iters)[-1] == s.pnp_psgla_iters and E.pnp_marks(s, s.pnp_iters)[0] == 1


def test_patch_prior_training_images_exclude_the_test_image():
    assert "camera" not in E.TRAIN_IMAGES
    images = E.training_images(32)
    assert len(images) == len(E.TRAIN_IMAGES) and all(0 <= im.min() and im.max() <= 1 for im in images)


def test_checkpoints_span_the_run():
    s = E.SETTINGS["default"]
    assert E.gmm_marks(s)[0] == 100 and E.gmm_marks(s)[-1] == s.gmm_iters
    assert E.img_marks(s)[-1] == s.img_iters and len(E.img_marks(s)) >= 10
