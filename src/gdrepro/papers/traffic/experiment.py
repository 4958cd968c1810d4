"""PIML traffic models with multi-gradient descent: prepare -> train -> evaluate -> figures.

Two experiments per seed job, every method trained side by side as one stack of models
(``method.StackedMLP``), all models of a data replicate starting from the same initial weights:

- ``macro``: LWR PINN on the paper's loop-detector data (``dataNew.npz``, its released
  train / validation / test split; each seed trains on its own deterministic subsample of the
  training and validation rows when the scale asks for fewer, ``rng("traffic", "macro", seed)``,
  and is tested on every test row): LS over a grid of physics weights c, TMGD (raw and normalised,
  three objectives), DCGD (proj / avg / center; data vs physics).
- ``micro``: NN car-following with IDM physics on a generated stand-in for NGSIM (heterogeneous
  drivers, a share of them following another car-following model, reaction delay, measurement
  noise: ``simulate.simulate_standin_pairs``; ``micro_reps`` replicates per seed, each
  ``rng("traffic", "micro", seed, r)``): LS alpha grid,
  TMGD raw / normalised, DCGD variants, all with the same patience, plus the official code's
  TMGD setting (normalised, patience 350) to measure its confounder.

A seed job checkpoints every ``CHECKPOINT_EVERY[scale]`` training iterations (``ctx.checkpoint_path``):
the finished experiment's results, the running loop's models, Adam and early-stopping state, and
the states of the generators that drew its data and initial weights. A killed job resumes there
and writes the same bits as one that was never interrupted.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from gdrepro import checkpoint, runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.traffic import data as D
from gdrepro.papers.traffic.objectives import Config, non_dominated, relative_l2
from gdrepro.runtime import log, rng, torch_generator
from gdrepro.tables import write_table

OTHERS = ("mgda", "mgda_norm", "dcgd_proj", "dcgd_avg", "dcgd_center")
DCGD = ("dcgd_proj", "dcgd_avg", "dcgd_center")


@dataclass(frozen=True)
class TrafficSettings:
    """Numbers of one scale; scales change these, never the code path."""

    # macroscopic PINN
    macro_depth: int = 8  # rho-net hidden layers (official: 8 x 20 tanh)
    macro_width: int = 20
    q_depth: int = 2  # flux net q(rho): 2 x 20 tanh
    q_width: int = 20
    macro_iters: int = 2000
    macro_lr: float = 1e-3
    macro_patience: int = 400  # iterations, the same for every method
    macro_eval_every: int = 10
    ls_c: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4)  # LS: 100 MSE(rho) + c MSE(res) + 100 MSE(u)
    collocation: int = 20  # collocation grid collocation x collocation
    macro_source: str = "official"  # dataNew.npz (package data); "simulated" (Godunov) or "files" (loop.csv)
    macro_train_rows: int = 1000  # per-seed subsample of the official training rows (0: all 42,681)
    macro_val_rows: int = 1000  # per-seed subsample of the official validation rows (0: all 14,227)
    # simulated macroscopic data (macro_source="simulated" only)
    detectors: int = 19
    interval_s: float = 10.0
    road_km: float = 4.0
    horizon_h: float = 0.05
    v_free: float = 100.0  # km/h
    rho_max: float = 150.0  # veh/km
    macro_noise: float = 0.03  # multiplicative observation noise (log-sd)
    # microscopic NN car-following
    micro_reps: int = 2  # paired replicates per seed job
    micro_hidden: tuple[int, ...] = (60, 60, 60)
    micro_iters: int = 500
    micro_lr: float = 1e-3
    micro_patience: int = 150  # the same for every method
    official_patience: int = 350  # the official code's TMGD patience (confounder run only)
    ls_alpha: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)  # alpha L_data + (1 - alpha) L_phys
    rows: dict = field(default_factory=lambda: {"train": 1000, "val": 400, "extra": 300, "test": 300})
    train_drivers: int = 20
    heldout: int = 10
    micro_source: str = "standin"  # simulate_standin_pairs; "idm" (IDM drivers) or "files" (ngsim.csv)
    heterogeneity: float = 0.15  # log-sd of the drivers' parameters
    accel_noise: float = 0.3  # AR(1) acceleration noise of the drivers (m/s^2)
    data_root: str = ""  # folder with loop.csv / ngsim.csv for the "files" sources

    def __post_init__(self) -> None:
        if self.macro_source not in ("official", "simulated", "files"):
            raise ValueError(f"macro_source={self.macro_source!r} must be 'official', 'simulated' or 'files'")
        if self.micro_source not in ("standin", "idm", "files"):
            raise ValueError(f"micro_source={self.micro_source!r} must be 'standin', 'idm' or 'files'")
        if min(self.macro_iters, self.micro_iters, self.micro_reps, self.heldout) < 1:
            raise ValueError("need at least one iteration, replicate and held-out trajectory")
        if not all(0 < a < 1 for a in self.ls_alpha) or not all(c > 0 for c in self.ls_c):
            raise ValueError("LS weights must be alpha in (0, 1) and c > 0")


SETTINGS = {
    "smoke": TrafficSettings(
        macro_depth=3, macro_iters=60, macro_patience=40, ls_c=(1.0, 100.0), collocation=10,
        macro_train_rows=200, macro_val_rows=200,
        detectors=8, interval_s=20.0, micro_reps=1, micro_hidden=(20, 20), micro_iters=100,
        micro_patience=60, official_patience=100, ls_alpha=(0.5, 0.9),
        rows={"train": 300, "val": 100, "extra": 100, "test": 100}, train_drivers=6, heldout=4,
    ),
    "default": TrafficSettings(),
    "paper": TrafficSettings(
        macro_iters=50_000, macro_lr=1e-4, macro_patience=2000, macro_train_rows=0, macro_val_rows=0,
        ls_c=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 100.0, 1e3, 1e4),
        collocation=184,  # official: a uniform grid of 0.8 x 42,681 points, 184 x 184
        macro_eval_every=1, micro_reps=6, micro_source="files",
    ),
}


CHECKPOINT_EVERY = {"smoke": 20, "default": 200, "paper": 1000}
"""Training iterations between checkpoints of a seed job, per scale. Not a setting: it does not
change a single result bit, so it stays out of the settings that stamp the outputs."""


def configs(s: TrafficSettings) -> dict[str, list]:
    """The stacked configurations of each experiment (label, method, weights, patience)."""
    macro = [Config("ls", (100.0, 100.0, c), s.macro_patience, f"LS c={c:g}") for c in s.ls_c]
    macro += [Config(m, (), s.macro_patience, m) for m in OTHERS]
    micro = [Config("ls", (a, 1 - a), s.micro_patience, f"LS a={a:g}") for a in s.ls_alpha]
    micro += [Config(m, (), s.micro_patience, m) for m in OTHERS]
    micro += [Config("mgda_norm", (), s.official_patience, "mgda_norm official patience")]
    return {"macro": macro, "micro": micro}


# --- stages ---------------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    """Resolve the stacked configurations; at paper scale check that the real data is there."""
    s: TrafficSettings = ctx.settings
    if s.macro_source == "official":
        D.load_lwr_npz()  # checks the MD5
    if s.macro_source == "files":
        D.load_loop_detectors(D.data_root(s.data_root) / "loop.csv")
    if s.micro_source == "files":
        D.load_ngsim_pairs(D.data_root(s.data_root) / "ngsim.csv")
    cfg = configs(s)
    ctx.write_prepared({k: [asdict(c) for c in v] for k, v in cfg.items()})


def _subsample(split: dict, n: int, g: np.random.Generator) -> dict:
    """``n`` rows of a split drawn without replacement (all of them when n is 0 or too large)."""
    size = split["x"].size
    if not n or n >= size:
        return split
    idx = np.sort(g.choice(size, n, replace=False))
    return {k: v[idx] for k, v in split.items()}


def _macro_observations(s: TrafficSettings, g: np.random.Generator) -> dict:
    """{train, val, test} -> x, t, rho, u (+ ``field``: the simulated solution on a grid, if any)."""
    if s.macro_source == "official":
        obs = D.load_lwr_npz()
        return {"train": _subsample(obs["train"], s.macro_train_rows, g),
                "val": _subsample(obs["val"], s.macro_val_rows, g), "test": obs["test"], "field": None}
    if s.macro_source == "files":
        obs, field = D.load_loop_detectors(D.data_root(s.data_root) / "loop.csv"), None
    else:
        sim = D.simulate_macro(s, g)
        obs, field = {k: sim[k] for k in ("x", "t", "rho", "u")}, {k: sim[k] for k in ("grid_x", "grid_t", "grid_rho")}
    parts = dict(zip(("train", "val", "test"), D.split(obs["x"].size, g)))
    return {name: {k: v[idx] for k, v in obs.items()} for name, idx in parts.items()} | {"field": field}


def run_macro(s: TrafficSettings, seed: int, save=None, save_every: int = 0, resume: dict | None = None) -> dict[str, np.ndarray]:
    """Train every macroscopic configuration on one seed's observations; errors on its test split.

    ``save(state)`` is called every ``save_every`` iterations; ``resume`` (such a state) continues it.
    """
    import torch

    from gdrepro.papers.traffic import method as M

    g = rng("traffic", "macro", seed)
    obs = _macro_observations(s, g)
    tr, va, te = obs["train"], obs["val"], obs["test"]
    xt = lambda o: np.stack([o["x"], o["t"]], axis=1)  # noqa: E731
    mu, sd = xt(tr).mean(0), xt(tr).std(0)
    rho_m, rho_s = tr["rho"].mean(), tr["rho"].std()
    u_m, u_s = tr["u"].mean(), tr["u"].std()
    q_scale = float((tr["rho"] * tr["u"]).std())
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    lo, hi = xt(tr).min(0), xt(tr).max(0)
    gx, gt = np.meshgrid(np.linspace(lo[0], hi[0], s.collocation), np.linspace(lo[1], hi[1], s.collocation))
    col = (np.stack([gx.ravel(), gt.ravel()], 1) - mu) / sd
    data = M.MacroData(
        x_train=f32((xt(tr) - mu) / sd), rho_train=f32((tr["rho"] - rho_m) / rho_s),
        u_train=f32((tr["u"] - u_m) / u_s), x_val=f32((xt(va) - mu) / sd),
        rho_val=f32((va["rho"] - rho_m) / rho_s), u_val=f32((va["u"] - u_m) / u_s),
        x_col=f32(col), rho_mean=float(rho_m), rho_sd=float(rho_s), u_mean=float(u_m), u_sd=float(u_s),
        q_scale=q_scale, k=float(q_scale * sd[1] / (rho_s * sd[0])),
    )
    cfg = configs(s)["macro"]
    gen = torch_generator("traffic", "macro-init", seed)
    model = M.MacroPINN(len(cfg), s.macro_depth, s.macro_width, s.q_depth, s.q_width, gen)
    _share_init(model, len(cfg))
    draws = {"data": g.bit_generator.state, "init": gen.get_state()}
    result = M.train_macro(model, data, cfg, s.macro_lr, s.macro_iters, s.macro_eval_every,
                           **_checkpointing(draws, save, save_every, resume))
    rho_hat, u_hat = M.macro_predict(model, data, f32((xt(te) - mu) / sd))
    out = {
        "err_rho": relative_l2(rho_hat, te["rho"]),
        "err_u": relative_l2(u_hat, te["u"]),
        **{k: v for k, v in result.items()},
    }
    field = obs["field"] or _detector_field(
        list(D.load_lwr_npz().values()) if s.macro_source == "official" else [obs[p] for p in ("train", "val", "test")])
    GX, GT = np.meshgrid(field["grid_x"], field["grid_t"])
    grid_pts = f32((np.stack([GX.ravel(), GT.ravel()], 1) - mu) / sd)
    out["grid_pred"] = M.macro_predict(model, data, grid_pts)[0].reshape(len(cfg), *GX.shape).astype(np.float32)
    return out | field


def _detector_field(splits: list[dict], bins: int = 200) -> dict:
    """The observed density on a (time bin, detector) grid: the mean of the rows of ``splits`` in
    each of ``bins`` equal time bins (NaN where none), at the bins' centres: what the figure shows."""
    rows = {k: np.concatenate([p[k] for p in splits]) for k in ("x", "t", "rho")}
    xs = np.unique(rows["x"])
    edges = np.linspace(rows["t"].min(), rows["t"].max(), bins + 1)
    i = np.clip(np.searchsorted(edges, rows["t"], side="right") - 1, 0, bins - 1)
    j = np.searchsorted(xs, rows["x"])
    total, count = np.zeros((bins, xs.size)), np.zeros((bins, xs.size))
    np.add.at(total, (i, j), rows["rho"])
    np.add.at(count, (i, j), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(count > 0, total / count, np.nan)
    return {"grid_x": xs, "grid_t": 0.5 * (edges[:-1] + edges[1:]), "grid_rho": grid}


def _share_init(model, n_cfg: int, reps: int = 1) -> None:
    """Give every configuration of a replicate the first configuration's initial weights."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            base = p.view(reps, n_cfg, *p.shape[1:])[:, :1]
            p.copy_(base.expand(reps, n_cfg, *p.shape[1:]).reshape(p.shape))


def _micro_replicate(s: TrafficSettings, seed: int, r: int) -> dict:
    """One replicate's rows, held-out trajectories and calibrated IDM."""
    from gdrepro.papers.traffic import method as M
    from gdrepro.papers.traffic import simulate as S

    g = rng("traffic", "micro", seed, r)
    if s.micro_source == "files":
        pairs = D.load_ngsim_pairs(D.data_root(s.data_root) / "ngsim.csv", min_steps=601)
        perm = g.permutation(pairs["x_f"].shape[0])
        held, train = perm[: s.heldout], perm[s.heldout :]
        heldout = {k: v[held] for k, v in pairs.items()}
        pool = {k: v[train] for k, v in pairs.items()}
    else:
        simulate = S.simulate_standin_pairs if s.micro_source == "standin" else S.simulate_pairs
        kw = {"heterogeneity": s.heterogeneity, "noise": s.accel_noise}
        pool = simulate(g, s.train_drivers, **kw)
        heldout = simulate(g, s.heldout, **kw)
    rows = D.micro_rows(pool, s.rows, g)
    idm = M.calibrate_idm(*rows["train"], S.IDM_NOMINAL)
    x_aux = np.concatenate([rows["train"][0], rows["extra"][0]])
    return {"rows": rows, "heldout": heldout, "idm": idm, "x_aux": x_aux,
            "a_idm_aux": S.idm_acceleration(x_aux[:, 0], x_aux[:, 1], x_aux[:, 2], idm),
            "draws": g.bit_generator.state}


def run_micro(s: TrafficSettings, seed: int, save=None, save_every: int = 0, resume: dict | None = None) -> dict[str, np.ndarray]:
    """Train every microscopic configuration on ``micro_reps`` replicates at once; closed-loop RMSE.

    ``save``, ``save_every`` and ``resume`` as in :func:`run_macro`.
    """
    import torch

    from gdrepro.papers.traffic import method as M

    cfg = configs(s)["micro"]
    n_cfg, reps = len(cfg), s.micro_reps
    reps_data = [_micro_replicate(s, seed, r) for r in range(reps)]
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    per_model = lambda key: np.repeat(np.stack([key(d) for d in reps_data]), n_cfg, axis=0)  # noqa: E731
    mean = per_model(lambda d: d["rows"]["train"][0].mean(0, keepdims=True))
    std = per_model(lambda d: d["rows"]["train"][0].std(0, keepdims=True))
    a_scale = float(np.mean([d["rows"]["train"][1].std() for d in reps_data]))
    norm = lambda x: f32((x - mean) / std)  # noqa: E731
    data = M.MicroData(
        x_train=norm(per_model(lambda d: d["rows"]["train"][0])), a_train=f32(per_model(lambda d: d["rows"]["train"][1])),
        x_val=norm(per_model(lambda d: d["rows"]["val"][0])), a_val=f32(per_model(lambda d: d["rows"]["val"][1])),
        x_aux=norm(per_model(lambda d: d["x_aux"])), a_idm_aux=f32(per_model(lambda d: d["a_idm_aux"])),
        mean=f32(mean), std=f32(std), a_scale=a_scale,
    )
    gen = torch_generator("traffic", "micro-init", seed)
    net = M.StackedMLP(reps * n_cfg, [3, *s.micro_hidden, 1], "sigmoid", gen)
    _share_init(net, n_cfg, reps)
    draws = {"data": [d["draws"] for d in reps_data], "init": gen.get_state()}
    result = M.train_micro(net, data, cfg * reps, s.micro_lr, s.micro_iters,
                           **_checkpointing(draws, save, save_every, resume))
    with torch.no_grad():
        x_test = norm(per_model(lambda d: d["rows"]["test"][0]))
        test_mse = ((net(x_test).squeeze(-1) * a_scale - f32(per_model(lambda d: d["rows"]["test"][1]))) ** 2).mean(-1)
    h = {k: per_model(lambda d, k=k: d["heldout"][k]) for k in ("x_l", "v_l", "x_f", "v_f")}
    last_state = result.pop("last_state")
    pos, vel, vs = _closed_loop_rmse(net, h, f32(mean), f32(std), a_scale)  # best validation iterate
    net.load_state_dict(last_state)
    pos_last, vel_last, _ = _closed_loop_rmse(net, h, f32(mean), f32(std), a_scale)  # last iterate
    shape = (reps, n_cfg)
    out = {k: np.asarray(v).reshape(shape) for k, v in result.items() if np.ndim(v) == 1}
    out |= {k: np.asarray(v) for k, v in result.items() if np.ndim(v) == 0}
    out |= {
        "rmse_pos": pos.reshape(shape), "rmse_vel": vel.reshape(shape), "test_mse": test_mse.numpy().reshape(shape),
        "rmse_pos_last": pos_last.reshape(shape), "rmse_vel_last": vel_last.reshape(shape),
        "idm": np.stack([d["idm"] for d in reps_data]),
        "traj_true_v": h["v_f"][0, 0], "traj_lead_v": h["v_l"][0, 0],
        "traj_sim_v": vs[:n_cfg, 0].numpy().astype(np.float32),
    }
    return out


def _closed_loop_rmse(net, h: dict, mean, std, a_scale: float) -> tuple:
    """Closed-loop simulation of the held-out followers by every model: position and speed RMSE
    per model (over trajectories and time) and the simulated speeds."""
    import torch

    from gdrepro.papers.traffic import method as M

    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    xs, vs = M.closed_loop(net, mean, std, f32(h["x_l"]), f32(h["v_l"]), f32(h["x_f"][..., 0]), f32(h["v_f"][..., 0]), a_scale)
    pos = np.sqrt(((xs.double().numpy() - h["x_f"]) ** 2).mean(axis=(1, 2)))
    vel = np.sqrt(((vs.double().numpy() - h["v_f"]) ** 2).mean(axis=(1, 2)))
    return pos, vel, vs


def _checkpointing(draws: dict, save, save_every: int, resume: dict | None) -> dict:
    """The training loop's checkpoint arguments: its saved states carry ``draws``, the states of the
    generators that drew the data and initial weights; a resumed loop must find the same."""
    if resume is not None and not _same_draws(resume["draws"], draws):
        raise GdreproError("the checkpoint's data or initial weights were drawn differently (code changed?); "
                           "delete the checkpoint and rerun")
    return {"save": None if save is None else (lambda state: save(state | {"draws": draws})),
            "save_every": save_every, "resume": resume}


def _same_draws(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_draws(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same_draws(x, y) for x, y in zip(a, b))
    if hasattr(a, "equal"):  # torch generator states (byte tensors)
        return hasattr(b, "equal") and a.equal(b)
    return a == b


def _save_loop(path, state: dict, name: str, loop: dict) -> None:
    checkpoint.save(path, state | {"current": name, "loop": loop})


MACRO_GRIDS = ("grid_x", "grid_t")
"""The macro run's evaluation grid (the same coordinates in every seed, not per configuration)."""


def _pooling(name: str, result: dict) -> dict:
    """How each quantity pools over seeds, as paired runs: per-configuration vectors of the one macro
    run of a seed stack into rows, micro's (replicates, configs) tables concatenate; scalars (iterations,
    seconds, diagnostics) stack as floats; fields, grids and trajectories stay per seed."""
    out = {}
    for k, v in result.items():
        v = np.asarray(v)
        if v.ndim == 0:
            out[k] = runs.stack(float(v))
        elif name == "macro" and v.ndim == 1 and k not in MACRO_GRIDS:
            out[k] = runs.stack(v)
        elif name == "micro" and v.ndim == 2 and k != "traj_sim_v":
            out[k] = runs.concat(v, axis=0)
        else:
            out[k] = runs.own(v)
    return out


def run_seed(ctx: StageContext) -> dict:
    """Both experiments of this seed; one MLflow run per experiment; checkpointed (module docstring)."""
    s: TrafficSettings = ctx.settings
    path = ctx.checkpoint_path
    state = checkpoint.load(path) or {}
    if state.get("stamp") != ctx.stamp:
        state = {"stamp": ctx.stamp, "done": {}}
    results = {}
    for name, run in (("macro", run_macro), ("micro", run_micro)):
        if name not in state["done"]:
            resume = state.get("loop") if state.get("current") == name else None
            if resume is not None:
                log(f"seed {ctx.seed} {name}: resuming at iteration {resume['it']}")
            with ctx.tracked_run(name) as tr:
                result = run(s, ctx.seed, save=functools.partial(_save_loop, path, state, name),
                             save_every=CHECKPOINT_EVERY[ctx.scale], resume=resume)
                labels = [c.label for c in configs(s)[name]]
                key = "err_rho" if name == "macro" else "rmse_pos"
                values = np.atleast_2d(result[key])[0]
                tr.log_metrics({f"{name}.{key}.{lab}": float(v) for lab, v in zip(labels, values)})
                tr.log_metrics({f"{name}.seconds": float(result["seconds"])})
                log(f"seed {ctx.seed} {name}: {len(labels)} configs x {int(np.size(values) and np.atleast_2d(result[key]).shape[0])} "
                    f"replicate(s), {int(result['iterations'])} iterations in {float(result['seconds']):.1f} s")
            state["done"][name] = {k: np.asarray(v) for k, v in result.items()}
            state["current"] = None
            state.pop("loop", None)
            checkpoint.save(path, state)
        results[name] = _pooling(name, state["done"][name])
    return results


# --- evaluation -----------------------------------------------------------------------------------


def _index(labels: list[str]) -> dict[str, int]:
    return {lab: i for i, lab in enumerate(labels)}


def _select(exp: dict, metric: str, cols: list[int]) -> np.ndarray:
    """Per paired run of one experiment, the metric of the column among ``cols`` with the lowest
    validation loss."""
    val = exp["val"][:, cols]
    best = np.array(cols)[val.argmin(1)]
    return exp[metric][np.arange(val.shape[0]), best]


def _one_sided(gain: np.ndarray) -> float:
    """p-value of the one-sided paired t-test H1: mean(LS - method) > 0."""
    from scipy import stats

    if gain.size < 2 or np.allclose(gain, gain[0]):
        return float("nan") if gain.size < 2 else (0.0 if gain[0] > 0 else 1.0)
    return float(stats.ttest_1samp(gain, 0.0, alternative="greater").pvalue)


def _front_share(l_data: np.ndarray, l_phys: np.ndarray, mgda_cols: list[int], ls_cols: list[int]) -> tuple[float, float]:
    """Share of paired runs where some MGDA/DCGD run is non-dominated among all runs, and where one
    is, at a data loss outside the range of LS's own front (a part of the front LS does not reach)."""
    on, beyond = [], []
    cols = ls_cols + mgda_cols
    for ld, lp in zip(l_data, l_phys):
        pts = np.stack([ld[cols], lp[cols]], 1)
        nd = non_dominated(pts)
        ls_pts = pts[: len(ls_cols)]
        ls_front = ls_pts[non_dominated(ls_pts), 0]  # LS's own front
        lo, hi = ls_front.min(), ls_front.max()
        m_nd = nd[len(ls_cols) :]
        m_x = pts[len(ls_cols) :, 0]
        on.append(m_nd.any())
        beyond.append((m_nd & ((m_x < lo) | (m_x > hi))).any())
    return float(np.mean(on)), float(np.mean(beyond))


def compute_metrics(run: dict, macro_labels: list[str], micro_labels: list[str]) -> dict[str, float]:
    """Every number the claims need from one run dict (pooled or one seed's)."""
    ma, mi = _index(macro_labels), _index(micro_labels)
    ls_ma = [i for lab, i in ma.items() if lab.startswith("LS")]
    ls_mi = [i for lab, i in mi.items() if lab.startswith("LS")]
    out: dict[str, float] = {}
    # macro: overall error = mean of the density and speed relative L2 errors
    overall = 0.5 * (run["macro"]["err_rho"] + run["macro"]["err_u"])
    macro = run["macro"] | {"err": overall}
    ls_best = _select(macro, "err", ls_ma)
    dcgd_cols = [ma[m] for m in DCGD]
    best_dcgd = dcgd_cols[int(macro["val"][:, dcgd_cols].mean(0).argmin())]
    ls_sd = float(ls_best.std(ddof=1)) if ls_best.size > 1 else 0.0
    out["macro_err_ls_best"] = ls_best.mean()
    out["macro_err_rho_ls_best"] = _select(macro, "err_rho", ls_ma).mean()
    out["macro_err_u_ls_best"] = _select(macro, "err_u", ls_ma).mean()
    for name, col in (("tmgd", ma["mgda_norm"]), ("tmgd_raw", ma["mgda"]), ("dcgd", best_dcgd)):
        err = overall[:, col]
        out[f"macro_err_{name}"] = err.mean()
        out[f"macro_err_rho_{name}"] = macro["err_rho"][:, col].mean()
        out[f"macro_err_u_{name}"] = macro["err_u"][:, col].mean()
        out[f"macro_comparable_{name}"] = abs(err.mean() - ls_best.mean()) / max(0.15 * ls_best.mean(), ls_sd)
    # micro: trajectory RMSE = mean of position and velocity RMSE, held-out closed loop
    traj = 0.5 * (run["micro"]["rmse_pos"] + run["micro"]["rmse_vel"])
    micro = run["micro"] | {"traj": traj}
    ls = _select(micro, "traj", ls_mi)
    dcgd_cols = [mi[m] for m in DCGD]
    best_dcgd = dcgd_cols[int(micro["val"][:, dcgd_cols].mean(0).argmin())]
    out["micro_runs"] = float(traj.shape[0])
    out["micro_rmse_ls"] = ls.mean()
    out["micro_rmse_pos_ls"] = _select(micro, "rmse_pos", ls_mi).mean()
    out["micro_rmse_vel_ls"] = _select(micro, "rmse_vel", ls_mi).mean()
    for name, col in (("tmgd", mi["mgda"]), ("tmgd_norm", mi["mgda_norm"]), ("dcgd", best_dcgd)):
        out[f"micro_rmse_{name}"] = traj[:, col].mean()
        out[f"micro_rmse_pos_{name}"] = micro["rmse_pos"][:, col].mean()
        out[f"micro_rmse_vel_{name}"] = micro["rmse_vel"][:, col].mean()
        out[f"micro_gain_{name}"] = (ls - traj[:, col]).mean()
        out[f"micro_p_{name}"] = _one_sided(ls - traj[:, col])
    for m in DCGD:
        out[f"micro_rmse_{m}"] = traj[:, mi[m]].mean()
    ls09 = traj[:, mi["LS a=0.9"]] if "LS a=0.9" in mi else traj[:, ls_mi[-1]]
    official = traj[:, mi["mgda_norm official patience"]]
    out["micro_rmse_ls_official"] = ls09.mean()
    out["micro_gain_official"] = (ls09 - official).mean()
    out["micro_p_official"] = _one_sided(ls09 - official)
    out["micro_gain_equal_patience"] = (ls09 - traj[:, mi["mgda_norm"]]).mean()
    out["micro_patience_effect"] = (traj[:, mi["mgda_norm"]] - official).mean()
    # the same at the last iterate (the official code evaluates the model where training stopped)
    traj_last = 0.5 * (run["micro"]["rmse_pos_last"] + run["micro"]["rmse_vel_last"])
    ls09_last = traj_last[:, mi["LS a=0.9"]] if "LS a=0.9" in mi else traj_last[:, ls_mi[-1]]
    official_last = traj_last[:, mi["mgda_norm official patience"]]
    out["micro_gain_official_last"] = (ls09_last - official_last).mean()
    out["micro_patience_effect_last"] = (traj_last[:, mi["mgda_norm"]] - official_last).mean()
    # how often the data and physics gradients conflict (g_b.g_r < 0), and how often DCGD-proj acts
    out["micro_conflict_share"] = float(np.mean(micro["conflict_share"]))
    out["micro_dcgd_proj_outside"] = float(np.mean(micro["outside_share"][:, mi["dcgd_proj"]]))
    out["macro_conflict_share"] = float(np.mean(macro["conflict_share"]))
    out["macro_dcgd_proj_outside"] = float(np.mean(macro["outside_share"][:, ma["dcgd_proj"]]))
    if "LS a=0.5" in mi:  # two-task normalised MGDA is LS with weights 1/2: same runs up to rounding
        out["micro_tmgd_norm_vs_ls_half"] = np.abs(traj[:, mi["mgda_norm"]] - traj[:, mi["LS a=0.5"]]).max()
    # Pareto fronts of (L_data, L_phys) at the end of each run
    others = lambda idx: [idx[m] for m in OTHERS]  # noqa: E731
    out["micro_front_share"], out["micro_front_beyond_ls"] = _front_share(
        micro["l_data"], micro["l_phys"], others(mi), ls_mi)
    out["macro_front_share"], out["macro_front_beyond_ls"] = _front_share(
        macro["l_data"], macro["l_phys"], others(ma), ls_ma)
    # ... and at the last iterate, where every run has spent its budget (early-stopped points are not
    # converged: an LS run stopped early can sit off the front its weight would reach)
    out["micro_front_share_last"], out["micro_front_beyond_ls_last"] = _front_share(
        micro["l_data_last"], micro["l_phys_last"], others(mi), ls_mi)
    out["macro_front_share_last"], out["macro_front_beyond_ls_last"] = _front_share(
        macro["l_data_last"], macro["l_phys_last"], others(ma), ls_ma)
    # sanity (claim 3), measured on the gradients met in training
    out["norm_weight_dev"] = float(np.max(micro["norm_weight_dev"]))
    out["dcgd_min_cos"] = float(min(np.min(micro["dcgd_min_cos"]), np.min(macro["dcgd_min_cos"])))
    return out


def evaluate(ctx: StageContext) -> None:
    """metrics.json (pooled over the paired runs and per seed) and per-method tables."""
    prep = ctx.read_prepared()
    macro_labels = [c["label"] for c in prep["macro"]]
    micro_labels = [c["label"] for c in prep["micro"]]
    # each seed alone, pooled the same way (one row per paired run), for the per-seed metrics
    seed_runs = ctx.pooled_each()
    pooled = ctx.pooled()
    metrics = across_seeds(lambda r: compute_metrics(r, macro_labels, micro_labels), seed_runs, pooled)
    details = _details(pooled, macro_labels, micro_labels)
    iters = lambda e: sum(float(r[e]["iterations"].sum()) for r in seed_runs)  # noqa: E731
    secs = lambda e: sum(float(r[e]["seconds"].sum()) for r in seed_runs)  # noqa: E731
    performance = {
        "macro_model_iterations_per_second": iters("macro") * len(macro_labels) / secs("macro"),
        "micro_model_iterations_per_second": iters("micro") * len(micro_labels)
        * pooled["micro"]["rmse_pos"].shape[0] / len(ctx.seeds) / secs("micro"),
        "macro_train_seconds_per_seed": secs("macro") / len(ctx.seeds),
        "micro_train_seconds_per_seed": secs("micro") / len(ctx.seeds),
    }
    write_metrics(ctx, metrics, details, performance)
    write_table(ctx.tables_dir / "macro", details["macro"], caption="Macroscopic LWR PINN: relative L2 test errors")
    write_table(ctx.tables_dir / "micro", details["micro"], caption="Microscopic car following: held-out closed-loop RMSE")
    log(f"wrote {ctx.metrics_path}")


def _details(pooled: dict, macro_labels: list[str], micro_labels: list[str]) -> dict:
    ms = lambda a: (float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0)  # noqa: E731
    macro = []
    for j, lab in enumerate(macro_labels):
        rho, u = pooled["macro"]["err_rho"][:, j], pooled["macro"]["err_u"][:, j]
        macro.append({"method": lab, "err_rho": ms(rho)[0], "err_rho_sd": ms(rho)[1], "err_u": ms(u)[0],
                      "err_u_sd": ms(u)[1], "overall": float((0.5 * (rho + u)).mean()),
                      "stop_iter": float(pooled["macro"]["stop_iter"][:, j].mean()),
                      "l_data": float(pooled["macro"]["l_data"][:, j].mean()),
                      "l_phys": float(pooled["macro"]["l_phys"][:, j].mean()),
                      "outside_share": float(pooled["macro"]["outside_share"][:, j].mean())})
    micro = []
    for j, lab in enumerate(micro_labels):
        pos, vel = pooled["micro"]["rmse_pos"][:, j], pooled["micro"]["rmse_vel"][:, j]
        micro.append({"method": lab, "rmse_pos": ms(pos)[0], "rmse_pos_sd": ms(pos)[1], "rmse_vel": ms(vel)[0],
                      "rmse_vel_sd": ms(vel)[1], "traj": float((0.5 * (pos + vel)).mean()),
                      "traj_last": float((0.5 * (pooled["micro"]["rmse_pos_last"][:, j]
                                                 + pooled["micro"]["rmse_vel_last"][:, j])).mean()),
                      "conflict_share": float(pooled["micro"]["conflict_share"][:, j].mean()),
                      "outside_share": float(pooled["micro"]["outside_share"][:, j].mean()),
                      "stop_iter": float(pooled["micro"]["stop_iter"][:, j].mean()),
                      "test_mse": float(pooled["micro"]["test_mse"][:, j].mean())})
    return {
        "macro": macro, "micro": micro,
        "macro_points": {k: pooled["macro"][k].tolist()
                         for k in ("l_data", "l_phys", "l_data_last", "l_phys_last", "err_rho", "err_u", "val")},
        "micro_points": {k: pooled["micro"][k].tolist()
                         for k in ("l_data", "l_phys", "l_data_last", "l_phys_last", "rmse_pos", "rmse_vel",
                                   "rmse_pos_last", "rmse_vel_last", "val")},
        "macro_labels": macro_labels, "micro_labels": micro_labels,
        "idm_calibrated": pooled["micro"]["idm"].tolist() if "idm" in pooled["micro"] else [],
    }


def figure_inputs(ctx: StageContext) -> dict:
    """What the figures draw beside metrics.json: seed 0's results (fields, trajectories)."""
    return {"first": ctx.read_run(ctx.seeds[0])}
