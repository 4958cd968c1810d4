"""The psgla experiment's set-up: step checks, observations, data loading, pooling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gdrepro.errors import GdreproError
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


def test_pool_averages_distances_and_concatenates_perturbations():
    a = {"gmm__x": np.ones(3), "stab__w2": np.array([1.0]), "perf": {}}
    b = {"gmm__x": 3 * np.ones(3), "stab__w2": np.array([2.0]), "perf": {}}
    pooled = E._pool([a, b])
    np.testing.assert_allclose(pooled["gmm__x"], 2.0)
    assert pooled["stab__w2"].tolist() == [1.0, 2.0] and "perf" not in pooled


def test_checkpoints_span_the_run():
    s = E.SETTINGS["default"]
    assert E.gmm_marks(s)[0] == 100 and E.gmm_marks(s)[-1] == s.gmm_iters
    assert E.img_marks(s)[-1] == s.img_iters and len(E.img_marks(s)) >= 10
