"""UG-CLU experiments: prepare -> train (one job per seed) -> evaluate; the house draws the figures.

Per seed and dataset, the three request sequences of ``protocol.SCENARIOS`` are run; inside a
scenario every approximate method (baselines, UG-CLU, its ablations) trains in one stacked model
from the same initialisation, and Retrain (the oracle) for every request of every scenario is one
stacked run. After each request every model is evaluated: remaining-test, new-task, forget-train
and forget-test accuracy, per-task accuracy (for backward transfer) and an entropy MIA on D_U.

A seed job checkpoints every ``CHECKPOINT_EVERY[scale]`` training steps (every phase of every
request, and Retrain, counted; ``ctx.checkpoint_path``): the learner (models, momentum, data
held, snapshots, EWC terms, both generators), the request and phase it is in, the per-request
results so far; a killed job resumes there and gives the same bits.

Only the seed jobs train: torch and :mod:`method` are imported inside the functions that train, so
``prepare``, ``evaluate`` and the figures never load torch (they need :mod:`protocol` alone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gdrepro import checkpoint, datasets, runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.clu import protocol as P
from gdrepro.runtime import device, log, rng
from gdrepro.tables import write_table

if TYPE_CHECKING:
    import torch

    from gdrepro.papers.clu import method as M

DATASETS = ("mnist1d", "cifar10", "tinyimagenet")
ORDER = ("retrain", *P.APPROXIMATE)
STATS = ("rem_final", "rem_u", "new", "fgt_train", "fgt_test", "mia", "aa", "bwt")
GAP_STATS = ("rem_u", "new", "fgt_train", "fgt_test", "mia")


@dataclass(frozen=True)
class CLUSettings:
    """Numbers of one scale; scales change these, never the code path."""

    datasets: tuple[str, ...] = ("mnist1d",)
    mnist_samples: int = 5000
    hidden: int = 128
    batch: int = 64
    learn_lr: float = 0.05
    unlearn_lr: float = 0.01
    learn_steps: int = 200
    unlearn_steps: int = 100
    retrain_steps: int = 800
    forget_every: int = 5
    forget_alpha: float = 25.0
    clip: float = 7.0
    lam: float = 0.5
    gamma: float = 1.0
    ewc_lambda: float = 100.0
    memory_per_class: int = 100
    fisher_batches: int = 20
    mia_samples: int = 1000
    resnet_width: int = 64  # paper scale: ResNet-18 base width
    data_root: str = ""  # paper scale: folder with cifar-10-batches-py/ and tiny-imagenet-200/

    def __post_init__(self) -> None:
        if not self.datasets or set(self.datasets) - set(DATASETS):
            raise ValueError(f"datasets={self.datasets} must be a non-empty subset of {DATASETS}")
        if min(self.learn_steps, self.unlearn_steps, self.retrain_steps, self.batch, self.forget_every) < 1:
            raise ValueError("steps, batch and forget_every must be positive")

    def hparams(self) -> M.HParams:
        from gdrepro.papers.clu import method as M

        return M.HParams(batch=self.batch, learn_lr=self.learn_lr, unlearn_lr=self.unlearn_lr,
                         learn_steps=self.learn_steps, unlearn_steps=self.unlearn_steps, retrain_steps=self.retrain_steps,
                         forget_every=self.forget_every, forget_alpha=self.forget_alpha, clip=self.clip, lam=self.lam,
                         gamma=self.gamma, ewc_lambda=self.ewc_lambda,
                         memory_per_class=self.memory_per_class,
                         fisher_batches=self.fisher_batches)


SETTINGS = {
    "smoke": CLUSettings(mnist_samples=1000, hidden=32, learn_steps=20, unlearn_steps=30, retrain_steps=80,
                         memory_per_class=30, fisher_batches=3, mia_samples=150),
    "default": CLUSettings(),
    # CIFAR-10 (5 tasks x 2 classes) and TinyImageNet (5 tasks x 40 classes), ResNet-18; SFR-on's
    # unlearning numbers (lr 0.01, alpha 25, forget every 5, clip 7); 1500 unlearning iterations.
    "paper": CLUSettings(datasets=("cifar10", "tinyimagenet"), batch=128, learn_lr=0.1, learn_steps=3900,
                         unlearn_steps=1500, retrain_steps=15_600, memory_per_class=200, fisher_batches=40,
                         mia_samples=5000),
}


CHECKPOINT_EVERY = {"smoke": 100, "default": 1000, "paper": 2000}
"""Training steps between checkpoints of a seed job, per scale. Not a setting: it does not change a
number (a resumed run gives the same bits), so it stays out of prepared.json and metrics.json."""

CHECKPOINT_FORMAT = 1  # what a checkpoint holds; a checkpoint of another format is ignored


# --- data and models ------------------------------------------------------------------------------


def load(dataset: str, s: CLUSettings, dev: str) -> dict:
    """Tensors on ``dev`` and a per-batch transform (uint8 images -> normalised floats)."""
    import torch

    if dataset == "mnist1d":
        raw = datasets.mnist1d(s.mnist_samples)
        transform = None
    else:
        root = datasets.external_root(s.data_root)
        raw = datasets.cifar("cifar10", root) if dataset == "cifar10" else datasets.tiny_imagenet(root)
        mean = torch.as_tensor(raw["x"].reshape(len(raw["x"]), 3, -1).mean((0, 2)) / 255, dtype=torch.float32, device=dev)
        std = torch.as_tensor(raw["x"].reshape(len(raw["x"]), 3, -1).std((0, 2)) / 255, dtype=torch.float32, device=dev)

        def transform(xb: torch.Tensor) -> torch.Tensor:
            shape = [1] * (xb.dim() - 3) + [3, 1, 1]
            return (xb.float() / 255 - mean.view(shape)) / std.view(shape)

    n_classes = int(raw["y"].max()) + 1
    return {"x": torch.as_tensor(raw["x"], device=dev), "y": torch.as_tensor(raw["y"], device=dev),
            "x_test": torch.as_tensor(raw["x_test"], device=dev), "y_test": raw["y_test"], "y_train": raw["y"],
            "n_classes": n_classes, "cpt": n_classes // 5, "transform": transform}


def stacked_model(dataset: str, n_models: int, s: CLUSettings, d: dict, g: torch.Generator, dev: str):
    from gdrepro.papers.clu import method as M

    if dataset == "mnist1d":
        return M.StackedMLP(n_models, (d["x"].shape[1], s.hidden, s.hidden, d["n_classes"]), g, dev)
    from gdrepro.nn import ResNet18

    return M.StackedModule(lambda: ResNet18(d["n_classes"], width=s.resnet_width), n_models, g, dev)


# --- one seed ---------------------------------------------------------------------------------------


def _evaluate_request(probs_test, probs_train, d, held_classes, held, info, request, cpt, mia_n, key) -> dict:
    """Every per-request number for the M models of (M, N, C) probabilities."""
    yt, ytr = d["y_test"], d["y_train"]
    n_models = probs_test.shape[0]
    held_test = np.isin(yt, sorted(held_classes))
    out = {"rem": P.accuracy(probs_test, yt, held_test)}
    nan = np.full(n_models, np.nan)
    out["new"] = P.accuracy(probs_test, yt, np.isin(yt, list(range(request.task * cpt, (request.task + 1) * cpt)))) \
        if request.kind == "learn" else nan
    forget = info["forget"]
    out["fgt_train"] = P.accuracy(probs_train[:, forget], ytr[forget], np.ones(len(forget), bool)) if len(forget) else nan
    gone = sorted(set(np.unique(ytr[forget]).tolist()) - set(held_classes)) if len(forget) else []
    out["fgt_test"] = P.accuracy(probs_test, yt, np.isin(yt, gone)) if gone else nan
    out["task_acc"] = np.stack([P.accuracy(probs_test, yt, np.isin(yt, list(range(t * cpt, (t + 1) * cpt))))
                                for t in range(5)], 1)
    if len(forget):
        r = rng("clu", "mia", *key)
        members = r.choice(np.flatnonzero(held), min(mia_n, int(held.sum())), replace=False)
        nonmembers = np.flatnonzero(held_test)
        nonmembers = r.choice(nonmembers, min(mia_n, len(nonmembers)), replace=False)
        ent_tr, ent_te = P.entropy(probs_train), P.entropy(probs_test)
        out["mia"] = np.array([P.entropy_mia(ent_tr[m, members], ent_te[m, nonmembers], ent_tr[m, forget], seed=int(m))
                               for m in range(n_models)])
    else:
        out["mia"] = nan
    return out


class Checkpoints:
    """A seed job's resume point (gdrepro.checkpoint): a save every ``every`` training steps, counted
    over the whole seed, of where the run stands (``position(step)``) and the datasets it finished.
    A checkpoint with another ``stamp`` (format, scale, settings) is ignored; ``path=None`` never saves."""

    def __init__(self, path: Path | None = None, every: int = 0, stamp: dict | None = None, dev: str = "cpu"):
        self.path, self.every, self.stamp = path, every, stamp
        state = checkpoint.load(path, dev) if path is not None else None
        if state is not None and state.get("stamp") != stamp:
            log(f"{path} was made by other code or for other settings: starting afresh")
            state = None
        self.state = state or {}
        self.count = self.state.get("count", 0)
        self.finished: dict[str, dict] = self.state.get("finished", {})  # dataset -> its results

    def take(self, dataset: str) -> dict:
        """Where the saved run stood inside ``dataset`` ({} if it had not started there); handed over once."""
        if self.state.get("dataset") != dataset:
            return {}
        state, self.state = self.state, {}
        return state

    def step(self, position: Callable[[int], dict], step: int) -> None:
        """A training step is done (``step`` of the phase running); every ``every``-th, save."""
        self.count += 1
        if self.path is not None and self.every and self.count % self.every == 0:
            checkpoint.save(self.path, {"stamp": self.stamp, "count": self.count, "finished": self.finished,
                                        **position(step)})


@dataclass
class _Cursor:
    """Where a scenario stands: what a checkpoint taken now records (see :meth:`state`)."""

    dataset: str
    scenario: str
    done: dict  # the dataset's finished scenarios: scenario -> record
    record: dict  # this scenario's requests so far: rows, seconds, states
    learner: M.ContinualUnlearner
    pending: M.Pending | None = None  # the request being processed
    phase: int = 0  # its phase now running
    started: float = 0.0  # perf_counter at the request's start, less the time before a resume

    def state(self, step: int) -> dict:
        return {"dataset": self.dataset, "scenarios": self.done, "scenario": self.scenario, "record": self.record,
                "learner": self.learner.state_dict(), "pending": self.pending, "phase": self.phase, "step": step,
                "elapsed": time.perf_counter() - self.started}


def _run_scenario(ctx: StageContext, dataset: str, scen: str, d: dict, dev: str, saver: Checkpoints,
                  done: dict, at: dict | None) -> dict:
    """One request sequence, every approximate method in one stacked model; from checkpoint ``at`` if given.
    Returns the scenario's record: per-request rows (without Retrain), seconds, and what was held."""
    import torch

    from gdrepro.papers.clu import method as M

    s, seed, hp = ctx.settings, ctx.seed, ctx.settings.hparams()
    methods = list(P.METHODS.values())
    requests = P.scenario(scen, 5, d["cpt"])
    g = ctx.torch_generator(dataset, scen, "batches")
    model = stacked_model(dataset, len(methods), s, d, ctx.torch_generator(dataset, "init"), dev)
    with torch.no_grad():  # one initialisation shared by every method
        for p in model.params:
            p.copy_(p[:1].expand_as(p))
        if hasattr(model, "buffers"):
            model.buffers = [{k: v.clone() for k, v in model.buffers[0].items()} for _ in range(len(methods))]
    learner = M.ContinualUnlearner(model, methods, d["x"], d["y"], d["n_classes"], d["cpt"], hp, g,
                                   ctx.rng(dataset, scen, "requests"), d["transform"])
    cursor = _Cursor(dataset, scen, done, {"rows": [], "seconds": [], "states": []}, learner)
    if at is not None:
        learner.load_state_dict(at.pop("learner"))  # the learner holds it now
        cursor.record = at["record"]
    rec = cursor.record
    for r_i in range(len(rec["rows"]), len(requests)):
        req = requests[r_i]
        if at is not None:  # inside this request's phase at["phase"], at step at["step"]
            pending, first, step, elapsed = at["pending"], at["phase"], at["step"], at["elapsed"]
            log(f"seed {seed} {dataset} {scen} {req.label}: resumed at step {step} of phase {first + 1}")
            at = None
        else:
            pending, first, step, elapsed = None, 0, 0, 0.0
        cursor.started = time.perf_counter() - elapsed
        cursor.pending = pending = pending or learner.begin(req)
        for i in range(first, len(pending.phases)):
            cursor.phase = i
            phase, lr = pending.phases[i]
            learner.run(phase, lr, start=step if i == first else 0, on_step=partial(saver.step, cursor.state))
        info = learner.finish(pending)
        if dev == "cuda":
            torch.cuda.synchronize()
        rec["seconds"].append(time.perf_counter() - cursor.started)
        held, classes = learner.data.held.copy(), set(learner.data.classes)
        probs_test = M.predict_proba(model, d["x_test"], transform=d["transform"]).cpu().numpy()
        probs_train = M.predict_proba(model, d["x"], transform=d["transform"]).cpu().numpy()
        rec["rows"].append(_evaluate_request(probs_test, probs_train, d, classes, held, info, req, d["cpt"],
                                             s.mia_samples, (dataset, scen, seed, r_i)))
        rec["states"].append((held, classes, info, req))
        log(f"seed {seed} {dataset} {scen} {req.label}: {rec['seconds'][-1]:.1f} s, remaining acc "
            + " ".join(f"{m.name}={v:.0f}" for m, v in zip(methods, rec["rows"][-1]["rem"], strict=True)))
    return rec


def run_dataset(ctx: StageContext, dataset: str, dev: str, run, saver: Checkpoints | None = None) -> dict:
    """All scenarios of one dataset for ``ctx.seed``: ``{scenario: {quantity: (models, requests[, tasks])},
    "retrain_seconds_per_request": ...}``, model axis ORDER; resumed from ``saver``'s checkpoint if any."""
    import torch

    from gdrepro.papers.clu import method as M

    s, seed, hp = ctx.settings, ctx.seed, ctx.settings.hparams()
    saver = saver or Checkpoints()
    d = load(dataset, s, dev)
    at = saver.take(dataset)
    done: dict[str, dict] = at.get("scenarios", {})
    for scen in P.SCENARIOS:
        if scen not in done:
            done[scen] = _run_scenario(ctx, dataset, scen, d, dev, saver, done, at if at.get("scenario") == scen else None)
    ug = list(P.METHODS).index("ugclu")
    for scen in P.SCENARIOS:
        rows = done[scen]["rows"]
        run.log_curve(f"{dataset}.{scen}.ugclu_remaining_acc", range(len(rows)), [row["rem"][ug] for row in rows])
    # Retrain: one stacked run for every request of every scenario
    retrain_sets = [np.flatnonzero(held) for scen in P.SCENARIOS for held, *_ in done[scen]["states"]]
    retrain_where = [(scen, r_i) for scen in P.SCENARIOS for r_i in range(len(done[scen]["states"]))]
    resumed = at.get("retrain")
    start = time.perf_counter() - (resumed["elapsed"] if resumed else 0.0)
    oracle = stacked_model(dataset, len(retrain_sets), s, d, ctx.torch_generator(dataset, "retrain-init"), dev)
    generator = ctx.torch_generator(dataset, "retrain-batches")
    bufs = [torch.zeros_like(p) for p in oracle.params]
    if resumed:
        oracle.load_state_dict(resumed["model"])
        with torch.no_grad():
            for b, saved in zip(bufs, resumed["bufs"], strict=True):
                b.copy_(saved)
        generator.set_state(resumed["generator"].cpu())
        log(f"seed {seed} {dataset} retrain: resumed at step {resumed['step']}")

    def position(step: int) -> dict:
        return {"dataset": dataset, "scenarios": done, "scenario": None,
                "retrain": {"model": oracle.state_dict(), "bufs": bufs, "generator": generator.get_state(),
                            "step": step, "elapsed": time.perf_counter() - start}}

    M.retrain(oracle, d["x"], d["y"], retrain_sets, hp, d["n_classes"], generator, d["transform"], bufs=bufs,
              start=resumed["step"] if resumed else 0, on_step=partial(saver.step, position))
    retrain_seconds = time.perf_counter() - start
    probs_test = M.predict_proba(oracle, d["x_test"], transform=d["transform"]).cpu().numpy()
    probs_train = M.predict_proba(oracle, d["x"], transform=d["transform"]).cpu().numpy()
    out = {}
    for scen in P.SCENARIOS:
        states, rows = done[scen]["states"], done[scen]["rows"]
        full = []
        for r_i, ((held, classes, info, req), row) in enumerate(zip(states, rows, strict=True)):
            k = retrain_where.index((scen, r_i))
            oracle_row = _evaluate_request(probs_test[k:k + 1], probs_train[k:k + 1], d, classes, held, info, req,
                                           d["cpt"], s.mia_samples, (dataset, scen, seed, r_i, "retrain"))
            full.append({q: np.concatenate([oracle_row[q], row[q]]) for q in row})
        # per request and model, averaged over seeds; the request structure is the same in every seed
        out[scen] = {q: runs.mean(np.stack([f[q] for f in full], 1)) for q in full[0]}  # (models, requests[, tasks])
        out[scen]["seconds"] = runs.mean(np.array(done[scen]["seconds"]))
        out[scen]["learned_at"] = runs.first(np.array([req.task if req.kind == "learn" else -1 for *_, req in states]))
        out[scen]["final_tasks"] = runs.first(np.array(sorted({c // d["cpt"] for c in states[-1][1]})))
    out["retrain_seconds_per_request"] = runs.mean(np.array(retrain_seconds / len(retrain_sets)))
    return out


# --- stages -------------------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    """The request sequences and methods of this scale; at paper scale, check the datasets are present."""
    s: CLUSettings = ctx.settings
    root = datasets.external_root(s.data_root)
    if "cifar10" in s.datasets and not (root / "cifar-10-batches-py").is_dir():
        raise GdreproError(f"cifar10: missing {root / 'cifar-10-batches-py'}; download "
                           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it into "
                           f"{root}, or set GDREPRO_EXTERNAL_DATA to the folder that holds cifar-10-batches-py/")
    if "tinyimagenet" in s.datasets and not (root / "tiny-imagenet-200").is_dir():
        raise GdreproError(f"tinyimagenet: missing {root / 'tiny-imagenet-200'}; " + datasets.TINY_HELP.format(root=root))
    ctx.write_prepared({"methods": list(ORDER), "scenarios": {sc: [r.label for r in P.scenario(sc)] for sc in P.SCENARIOS}})


def run_seed(ctx: StageContext) -> dict:
    """Every scenario and dataset for this seed (one MLflow run for the seed): ``{dataset: ...}`` as
    :func:`run_dataset` gives it. Checkpointed every ``CHECKPOINT_EVERY[scale]`` training steps (the
    house removes the checkpoint once the results are on disk)."""
    s: CLUSettings = ctx.settings
    dev = device()
    saver = Checkpoints(ctx.checkpoint_path, CHECKPOINT_EVERY[ctx.scale], {"format": CHECKPOINT_FORMAT, **ctx.stamp}, dev)
    if saver.count:
        log(f"seed {ctx.seed}: resuming from {ctx.checkpoint_path} after {saver.count} training steps")
    with ctx.tracked_run("all_methods") as run:
        for dataset in s.datasets:
            if dataset not in saver.finished:
                saver.finished[dataset] = run_dataset(ctx, dataset, dev, run, saver)
    return {dataset: saver.finished[dataset] for dataset in s.datasets}


def _prefix(i: int, dataset: str) -> str:
    """Metric and table names: the first dataset's are bare, later ones start ``<dataset>_``."""
    return "" if i == 0 else f"{dataset}_"


def scenario_stats(run: dict, scen: str) -> dict[str, np.ndarray]:
    """Per-method summary (models axis ORDER) of one scenario of one dataset (``run[scen]``): final /
    post-unlearning remaining accuracy, new-task accuracy, forget-train/test accuracy, MIA, average
    accuracy, BWT."""
    r = run[scen]
    learn = r["learned_at"] >= 0
    forget = ~np.isnan(r["fgt_train"][0])

    def mean_over(q, cols):
        v = r[q][:, cols]
        return np.nanmean(v, 1) if v.size and not np.all(np.isnan(v)) else np.full(len(ORDER), np.nan)

    learned_at = {int(t): i for i, t in enumerate(r["learned_at"]) if t >= 0}
    bwt = np.array([P.backward_transfer(r["task_acc"][m], learned_at, r["final_tasks"].tolist())
                    for m in range(len(ORDER))])
    return {"rem_final": r["rem"][:, -1], "rem_u": mean_over("rem", forget), "new": mean_over("new", learn),
            "fgt_train": mean_over("fgt_train", forget), "fgt_test": mean_over("fgt_test", forget),
            "mia": mean_over("mia", forget), "aa": r["rem"].mean(1), "bwt": bwt}


def gaps(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Average absolute gap to Retrain (row 0) over the applicable metrics of ``GAP_STATS``."""
    rows = [np.abs(stats[q] - stats[q][0]) for q in GAP_STATS if not np.isnan(stats[q][0])]
    return np.mean(rows, 0)


def compute_metrics(run: dict, prefix: str = "") -> dict[str, float]:
    """Every number the claims and tables need, from one dataset of one seed's run or of the pooled
    run; metric names start with ``prefix``."""
    i = {name: ORDER.index(name) for name in ORDER}
    m: dict[str, float] = {}
    all_gaps = []
    for scen in P.SCENARIOS:
        st = scenario_stats(run, scen)
        g = gaps(st)
        all_gaps.append(g)
        for name in ORDER:
            for q, v in st.items():
                m[f"{prefix}{scen}_{name}_{q}"] = float(v[i[name]])
            m[f"{prefix}{scen}_{name}_gap"] = float(g[i[name]])
    mean_gap = np.mean(all_gaps, 0)
    for name in ORDER:
        m[f"{prefix}gap_{name}"] = float(mean_gap[i[name]])
    ug = i["ugclu"]
    m[f"{prefix}gap_ugclu_minus_best_baseline"] = float(mean_gap[ug] - min(mean_gap[i[b]] for b in P.BASELINES))
    m[f"{prefix}gap_ablation_min_minus_ugclu"] = float(min(mean_gap[i[a]] for a in P.ABLATIONS) - mean_gap[ug])
    for a in P.ABLATIONS:
        m[f"{prefix}gap_{a}_minus_ugclu"] = float(mean_gap[i[a]] - mean_gap[ug])
    c = m  # claim shorthands
    m[f"{prefix}class_forget_test_max"] = max(c[f"{prefix}class_ugclu_fgt_test"], c[f"{prefix}task_aware_ugclu_fgt_test"])
    m[f"{prefix}class_rem_minus_retrain"] = c[f"{prefix}class_ugclu_rem_u"] - c[f"{prefix}class_retrain_rem_u"]
    m[f"{prefix}class_rem_minus_gaft"] = c[f"{prefix}class_ugclu_rem_u"] - c[f"{prefix}class_ga_ft_rem_u"]
    m[f"{prefix}samples_fgt_train_gap"] = abs(c[f"{prefix}samples_ugclu_fgt_train"] - c[f"{prefix}samples_retrain_fgt_train"])
    m[f"{prefix}samples_gaft_fgt_train_minus_retrain"] = c[f"{prefix}samples_ga_ft_fgt_train"] - c[f"{prefix}samples_retrain_fgt_train"]
    m[f"{prefix}new_ugclu_minus_finetune"] = float(np.mean([c[f"{prefix}{sc}_ugclu_new"] - c[f"{prefix}{sc}_finetune_new"]
                                                            for sc in P.SCENARIOS]))
    m[f"{prefix}mia_gap_ugclu"] = float(np.mean([abs(c[f"{prefix}{sc}_ugclu_mia"] - c[f"{prefix}{sc}_retrain_mia"])
                                                 for sc in P.SCENARIOS]))
    return m


def evaluate(ctx: StageContext) -> None:
    s: CLUSettings = ctx.settings
    seed_runs = ctx.runs()
    pooled = ctx.pooled()
    metrics = {}
    for i, dataset in enumerate(s.datasets):
        metrics |= across_seeds(partial(compute_metrics, prefix=_prefix(i, dataset)),
                                [r[dataset] for r in seed_runs], pooled[dataset])
    details, perf = {"datasets": list(s.datasets), "methods": list(ORDER)}, {}
    for i, dataset in enumerate(s.datasets):
        prefix = _prefix(i, dataset)
        tables = {}
        for scen in P.SCENARIOS:
            rows = []
            for name in ORDER:
                row = {"method": name}
                for q in (*STATS, "gap"):
                    row[q] = metrics[f"{prefix}{scen}_{name}_{q}"]["value"]
                    row[q + "_sd"] = _sd(metrics[f"{prefix}{scen}_{name}_{q}"]["per_seed"])
                rows.append(row)
            tables[scen] = rows
            table = [{"method": r["method"], **{q: _fmt(r[q], r[q + "_sd"]) for q in (*STATS, "gap")}} for r in rows]
            write_table(ctx.tables_dir / f"{prefix}{scen}", table,
                        caption=f"UG-CLU {dataset}, scenario {scen}: accuracy (%), MIA (%), gap to Retrain (mean ± sd over seeds)")
            scen_run = pooled[dataset][scen]
            details[f"{prefix}{scen}_curves"] = {name: np.nan_to_num(scen_run["rem"][j], nan=-1).tolist()
                                                 for j, name in enumerate(ORDER)}
            details[f"{prefix}{scen}_labels"] = [r.label for r in P.scenario(scen)]
            perf[f"{prefix}{scen}_seconds_per_request_all_approximate_methods"] = float(scen_run["seconds"].mean())
        details[f"{prefix}tables"] = tables
        perf[f"{prefix}retrain_seconds_per_request"] = float(pooled[dataset]["retrain_seconds_per_request"])
        approx = np.mean([perf[f"{prefix}{sc}_seconds_per_request_all_approximate_methods"] for sc in P.SCENARIOS])
        perf[f"{prefix}seconds_per_request_per_approximate_method"] = float(approx / len(P.APPROXIMATE))
    details["gradient_evaluations_per_request"] = {  # forward+backward sample passes, per method
        "retrain": s.retrain_steps * s.batch,
        "finetune_learn": s.learn_steps * s.batch, "replay_learn": 2 * s.learn_steps * s.batch,
        "ugclu_learn": 2 * s.learn_steps * s.batch,
        "ugclu_unlearn": (s.unlearn_steps + s.unlearn_steps // s.forget_every) * s.batch,
        "clpu_unlearn": s.learn_steps * s.batch,
    }
    write_metrics(ctx, metrics, details, perf)
    log(f"wrote {ctx.metrics_path}")


def _sd(values: list) -> float:
    v = [x for x in values if x is not None]
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _fmt(v, sd) -> str:
    return "n/a" if v is None else f"{v:.1f} ± {sd:.1f}"


def figure_inputs(ctx: StageContext) -> dict:
    """The figures are drawn from metrics.json alone (``metrics``, which the house passes)."""
    return {}
