"""The traffic evaluation on synthetic run tables whose answer we know."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdrepro.config import default_seeds
from gdrepro.papers.traffic import experiment as E
from gdrepro.papers.traffic import method as M


def _run(n_macro: int, n_micro: int, tmgd_gain: float, seed: int = 0) -> tuple[dict, list, list]:
    s = E.SETTINGS["default"]
    cfg = E.configs(s)
    ma, mi = [c.label for c in cfg["macro"]], [c.label for c in cfg["micro"]]
    g = np.random.default_rng(seed)
    macro, micro = {}, {}
    for k in ("err_rho", "err_u", "val", "l_data", "l_phys"):
        macro[k] = 0.2 + 0.01 * g.random((n_macro, len(ma)))
        micro[k] = 1.0 + 0.01 * g.random((n_micro, len(mi)))
    micro["rmse_pos"] = 5.0 + 0.1 * g.standard_normal((n_micro, len(mi)))
    micro["rmse_vel"] = 1.0 + 0.0 * micro["rmse_pos"]
    micro["rmse_pos"][:, mi.index("mgda")] -= 2 * tmgd_gain  # traj = mean(pos, vel)
    for exp, labels, n in ((macro, ma, n_macro), (micro, mi, n_micro)):
        exp["l_data_last"], exp["l_phys_last"] = exp["l_data"].copy(), exp["l_phys"].copy()
        exp["conflict_share"] = g.random((n, len(labels)))
        exp["outside_share"] = 0.5 * exp["conflict_share"]
    micro["rmse_pos_last"], micro["rmse_vel_last"] = micro["rmse_pos"] + 0.5, micro["rmse_vel"].copy()
    micro["norm_weight_dev"] = np.zeros(n_macro)
    micro["dcgd_min_cos"] = np.zeros(n_macro)
    macro["dcgd_min_cos"] = np.zeros(n_macro)
    return {"macro": macro, "micro": micro}, ma, mi


def test_a_real_gain_is_detected_and_no_gain_is_not():
    run, ma, mi = _run(5, 10, tmgd_gain=0.5)
    m = E.compute_metrics(run, ma, mi)
    assert m["micro_runs"] == 10
    assert m["micro_gain_tmgd"] == pytest.approx(0.5, abs=0.1) and m["micro_p_tmgd"] < 1e-4
    assert abs(m["micro_gain_dcgd"]) < 0.1 and m["micro_p_dcgd"] > 0.01
    run, ma, mi = _run(5, 10, tmgd_gain=0.0, seed=1)
    assert E.compute_metrics(run, ma, mi)["micro_p_tmgd"] > 0.01


def test_ls_is_chosen_on_validation_not_on_test():
    run, ma, mi = _run(3, 4, 0.0)
    ls = [i for i, lab in enumerate(mi) if lab.startswith("LS")]
    micro = run["micro"]
    micro["val"][:, ls] = 1.0
    micro["val"][:, ls[2]] = 0.5  # LS a=0.5 wins on validation ...
    micro["rmse_pos"][:, ls[0]] = 0.0  # ... even though LS a=0.1 is best on test
    m = E.compute_metrics(run, ma, mi)
    expected = 0.5 * (micro["rmse_pos"][:, ls[2]] + micro["rmse_vel"][:, ls[2]]).mean()
    assert m["micro_rmse_ls"] == pytest.approx(expected)


def test_macro_comparability_ratio():
    run, ma, mi = _run(4, 2, 0.0)
    j = ma.index("mgda_norm")
    ls = [i for i, lab in enumerate(ma) if lab.startswith("LS")]
    for key in ("err_rho", "err_u"):
        run["macro"][key][:, ls] = 0.2
        run["macro"][key][:, j] = 0.2 * 1.3  # 30% worse, no seed spread -> ratio 2
    m = E.compute_metrics(run, ma, mi)
    assert m["macro_comparable_tmgd"] == pytest.approx(2.0)


def test_last_iterate_and_conflict_metrics():
    run, ma, mi = _run(5, 10, tmgd_gain=0.0)
    official, norm = mi.index("mgda_norm official patience"), mi.index("mgda_norm")
    for key in ("rmse_pos", "rmse_pos_last"):
        run["micro"][key][:, official] = run["micro"][key][:, norm]
    run["micro"]["rmse_pos_last"][:, official] -= 0.4  # the longer patience helps at the last iterate only
    m = E.compute_metrics(run, ma, mi)
    assert m["micro_patience_effect"] == pytest.approx(0.0, abs=1e-12)
    assert m["micro_patience_effect_last"] == pytest.approx(0.2)  # traj = mean(pos, vel)
    assert m["micro_dcgd_proj_outside"] == pytest.approx(0.5 * run["micro"]["conflict_share"][:, mi.index("dcgd_proj")].mean())
    assert m["micro_conflict_share"] == pytest.approx(run["micro"]["conflict_share"].mean())


def test_results_pool_as_paired_runs():
    """A seed's macro run is one paired run per configuration row, micro's replicates are rows;
    scalars stack as floats; fields and trajectories stay per seed (as the evaluation reads them)."""
    macro = E._pooling("macro", {"err_rho": np.ones(7), "grid_x": np.ones(5), "grid_rho": np.ones((3, 5)),
                                 "iterations": np.array(60)})
    micro = E._pooling("micro", {"rmse_pos": np.ones((2, 8)), "idm": np.ones((2, 5)), "traj_sim_v": np.ones((8, 9)),
                                 "traj_true_v": np.ones(9), "seconds": np.array(1.5)})
    assert {k: q.rule for k, q in macro.items()} == {"err_rho": "stack", "grid_x": "own", "grid_rho": "own",
                                                     "iterations": "stack"}
    assert macro["iterations"].value.dtype == float
    assert {k: (q.rule, q.axis) for k, q in micro.items()} == {
        "rmse_pos": ("concat", 0), "idm": ("concat", 0), "traj_sim_v": ("own", 0), "traj_true_v": ("own", 0),
        "seconds": ("stack", 0)}


def test_front_share_sees_a_point_beyond_the_ls_front():
    l_data = np.array([[1.0, 2.0, 0.5, 3.0], [1.0, 2.0, 1.5, 3.0]])
    l_phys = np.array([[2.0, 1.0, 3.0, 3.0], [2.0, 1.0, 1.5, 3.0]])
    on, beyond = E._front_share(l_data, l_phys, mgda_cols=[2, 3], ls_cols=[0, 1])
    assert on == 1.0 and beyond == 0.5  # run 0: (0.5, 3) extends the front; run 1: (1.5, 1.5) lies inside


def test_shared_initialisation_and_equal_patience():
    net = M.StackedMLP(6, [3, 5, 1], "sigmoid", torch.Generator().manual_seed(0))
    E._share_init(net, 3, reps=2)
    w = net.weights[0]
    assert torch.equal(w[0], w[2]) and torch.equal(w[3], w[5]) and not torch.equal(w[0], w[3])
    s = E.SETTINGS["default"]
    cfg = E.configs(s)
    assert {c.patience for c in cfg["macro"]} == {s.macro_patience}
    assert {c.patience for c in cfg["micro"] if "official" not in c.label} == {s.micro_patience}
    assert s.micro_reps * len(default_seeds()) >= 10


def test_paper_scale_reads_real_data_files(tmp_path, monkeypatch):
    """The "files" sources: NGSIM and loop-detector CSVs (here tiny generated stand-ins) feed both experiments."""
    import dataclasses

    from gdrepro.errors import GdreproError
    from gdrepro.papers.traffic import data as D
    from gdrepro.papers.traffic import simulate as S

    smoke = E.SETTINGS["smoke"]
    D.write_ngsim_csv(tmp_path / "ngsim.csv", S.simulate_pairs(np.random.default_rng(0), 6))
    D.write_loop_csv(tmp_path / "loop.csv", D.simulate_macro(smoke, np.random.default_rng(0)))
    s = dataclasses.replace(smoke, macro_source="files", micro_source="files", data_root=str(tmp_path))
    monkeypatch.delenv("GDREPRO_TRAFFIC_DATA", raising=False)
    rep = E._micro_replicate(s, 0, 0)
    assert rep["heldout"]["x_f"].shape == (smoke.heldout, 601)
    assert rep["rows"]["train"][0].shape == (smoke.rows["train"], 3)
    obs = E._macro_observations(s, np.random.default_rng(0))
    n = sum(obs[p]["x"].size for p in ("train", "val", "test"))
    assert n == smoke.detectors * len(np.unique(np.concatenate([obs[p]["t"] for p in ("train", "val", "test")])))
    with pytest.raises(GdreproError, match="missing"):
        E._macro_observations(dataclasses.replace(s, data_root=str(tmp_path / "nowhere")), np.random.default_rng(0))


def test_official_macro_data_split_subsample_and_field():
    """Every scale's macro data: the released split, a per-seed subsample of train/val, all test rows."""
    s = E.SETTINGS["default"]
    a = E._macro_observations(s, np.random.default_rng(0))
    b = E._macro_observations(s, np.random.default_rng(1))
    assert a["train"]["x"].size == s.macro_train_rows and a["val"]["x"].size == s.macro_val_rows
    assert a["test"]["x"].size == 14228 and b["test"]["x"].size == 14228
    assert not np.array_equal(a["train"]["t"], b["train"]["t"])  # seeds draw other rows
    field = E._detector_field([a["test"]], bins=50)
    assert field["grid_rho"].shape == (50, 19) and field["grid_x"].size == 19
    # each cell is the mean density of the test rows of that detector and time bin
    t0, t1 = a["test"]["t"].min(), a["test"]["t"].max()
    first = (a["test"]["t"] <= t0 + (t1 - t0) / 50) & (a["test"]["x"] == field["grid_x"][3])
    assert field["grid_rho"][0, 3] == pytest.approx(a["test"]["rho"][first].mean())
