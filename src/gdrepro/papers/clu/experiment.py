"""UG-CLU experiments: prepare (learning-rate tuning) -> train (one job per seed) -> evaluate; the
house draws the figures.

``prepare`` chooses every learning rate on a validation split (:func:`tune_learning_rates`). Per
seed and dataset, the three request sequences of ``protocol.SCENARIOS`` are run; inside a scenario
every approximate method (baselines, UG-CLU, its ablations) trains in one stacked model from the
same initialisation, and both oracles (Retrain, like-for-like Retrain) for every request of every
scenario are one stacked run. After each request every model is evaluated: remaining-test,
new-task, forget-train and forget-test accuracy, per-task accuracy (for backward transfer), and an
entropy and a loss-threshold MIA on D_U.

A seed job checkpoints every ``CHECKPOINT_EVERY[scale]`` training steps (every phase of every
request, and Retrain, counted; ``ctx.checkpoint_path``): the learner (models, momentum, data
held, snapshots, EWC terms, both generators), the request and phase it is in, the per-request
results so far; a killed job resumes there and gives the same bits.

Only the tuning (``prepare``) and the seed jobs train: torch and :mod:`method` are imported inside
the functions that train, so ``evaluate`` and the figures never load torch (they need :mod:`protocol`
alone).
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
ORDER = (*P.ORACLES, *P.APPROXIMATE)
STATS = ("rem_final", "rem_u", "new", "fgt_train", "fgt_test", "mia", "mia_loss", "aa", "bwt")
GAP_STATS = ("rem_u", "new", "fgt_train", "fgt_test", "mia")  # gap to Retrain (issue 18's definition)
# gap to the like-for-like oracle (issue 22): the same accuracies, the loss-threshold MIA for the entropy one
LL_GAP_STATS = ("rem_u", "new", "fgt_train", "fgt_test", "mia_loss")


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
    unlearn_steps: int = 1500  # SFR-on's, per forget request
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
    validation_share: float = 0.2  # learning-rate tuning: the share of training data held out for validation
    lr_grid: tuple[float, ...] = (1 / 3, 1.0, 3.0)  # factors on every tuned LR (learn, unlearn, oracle), the same for all
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
    # smoke: a pipeline check; the tuning runs its whole path on a one-point grid (the scale's LRs):
    # with 20 learn and 30 unlearn steps on 1000 samples, a 3-point grid's picks were noise
    "smoke": CLUSettings(mnist_samples=1000, hidden=32, learn_steps=20, unlearn_steps=30, retrain_steps=80,
                         memory_per_class=30, fisher_batches=3, mia_samples=150, lr_grid=(1.0,)),
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

CHECKPOINT_FORMAT = 2  # what a checkpoint holds; a checkpoint of another format is ignored


@dataclass(frozen=True)
class Rates:
    """The learning rates of a seed job on one dataset: per approximate method (in ``P.METHODS``
    order) on learn requests and on unlearning requests, and per oracle (``P.ORACLES``); None: the
    scale's own (``learn_lr``; ``unlearn_lr``, CLPU-style ``learn_lr``; ``learn_lr``)."""

    learn: tuple[float, ...] | None = None
    unlearn: tuple[float, ...] | None = None
    oracle: tuple[float, ...] | None = None

    @classmethod
    def tuned(cls, tuning: dict) -> Rates:
        """The rates :func:`tune_learning_rates` chose (``tuning``: its result for one dataset)."""
        return cls(tuple(tuning["learn"]["chosen"][m] for m in P.METHODS),
                   tuple(tuning["unlearn"]["chosen"][m] for m in P.METHODS),
                   tuple(tuning["oracle"]["chosen"][o] for o in P.ORACLES))


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


def shared_start_model(dataset: str, n_models: int, s: CLUSettings, d: dict, g: torch.Generator, dev: str):
    """:func:`stacked_model` with every model started from the first one's initialisation (weights
    and buffers), so the methods of a stack differ only in what they do to it."""
    import torch

    model = stacked_model(dataset, n_models, s, d, g, dev)
    with torch.no_grad():
        for p in model.params:
            p.copy_(p[:1].expand_as(p))
        if hasattr(model, "buffers"):
            model.buffers = [{k: v.clone() for k, v in model.buffers[0].items()} for _ in range(n_models)]
    return model


# --- one seed ---------------------------------------------------------------------------------------


def _evaluate_request(probs_test, probs_train, d, held_classes, held, info, request, cpt, mia_n, key) -> dict:
    """Every per-request number for the M models of (M, N, C) probabilities. A model whose outputs
    are not finite (its training diverged) is scored as the uniform predictor."""
    probs_test, probs_train = _finite(probs_test, key), _finite(probs_train, key)
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
        loss_tr, loss_te = P.sample_loss(probs_train, ytr), P.sample_loss(probs_test, yt)
        out["mia_loss"] = np.array([P.loss_threshold_mia(loss_tr[m, members], loss_te[m, nonmembers], loss_tr[m, forget])
                                    for m in range(n_models)])
    else:
        out["mia"] = out["mia_loss"] = nan
    return out


def _finite(probs: np.ndarray, key: tuple) -> np.ndarray:
    """``probs`` with every model whose outputs are not all finite replaced by the uniform predictor."""
    ok = np.isfinite(probs).all((1, 2))
    if ok.all():
        return probs
    log(f"{key}: models {np.flatnonzero(~ok).tolist()} diverged (non-finite outputs): scored as the uniform predictor")
    return np.where(ok[:, None, None], probs, 1.0 / probs.shape[-1])


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
                  done: dict, at: dict | None, methods: list[P.Method], rates: Rates) -> dict:
    """One request sequence, every method of ``methods`` (at its learning rates) in one stacked model;
    from checkpoint ``at`` if given. Returns the scenario's record: per-request rows (without the
    oracles), seconds, and what was held (samples, memory, classes)."""
    import torch

    from gdrepro.papers.clu import method as M

    s, seed, hp = ctx.settings, ctx.seed, ctx.settings.hparams()
    requests = P.scenario(scen, 5, d["cpt"])
    g = ctx.torch_generator(dataset, scen, "batches")
    model = shared_start_model(dataset, len(methods), s, d, ctx.torch_generator(dataset, "init"), dev)
    learner = M.ContinualUnlearner(model, methods, d["x"], d["y"], d["n_classes"], d["cpt"], hp, g,
                                   ctx.rng(dataset, scen, "requests"), d["transform"], rates.unlearn, rates.learn)
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
        held, memory, classes = learner.data.held.copy(), learner.data.memory.copy(), set(learner.data.classes)
        probs_test = M.predict_proba(model, d["x_test"], transform=d["transform"]).cpu().numpy()
        probs_train = M.predict_proba(model, d["x"], transform=d["transform"]).cpu().numpy()
        rec["rows"].append(_evaluate_request(probs_test, probs_train, d, classes, held, info, req, d["cpt"],
                                             s.mia_samples, (dataset, scen, "tune" if seed is None else seed, r_i)))
        rec["states"].append((held, memory, classes, info, req))
        log(f"seed {seed} {dataset} {scen} {req.label}: {rec['seconds'][-1]:.1f} s, remaining acc "
            + " ".join(f"{m.name}={v:.0f}" for m, v in zip(methods, rec["rows"][-1]["rem"], strict=True)))
    return rec


def oracle_sets(states: list) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The training sets of the two oracles after each request (``states``: held, memory, classes,
    info, request): Retrain on all data held, and the like-for-like Retrain on what the incremental
    methods may keep, the replay memory plus, on a learn request, the new task's data D_L."""
    full = [np.flatnonzero(held) for held, *_ in states]
    kept = [np.union1d(np.flatnonzero(memory), info["new"]) for _, memory, _, info, _ in states]
    return full, kept


def run_dataset(ctx: StageContext, dataset: str, dev: str, run, saver: Checkpoints | None = None,
                d: dict | None = None, methods: list[P.Method] | None = None, rates: Rates | None = None) -> dict:
    """All scenarios of one dataset for ``ctx.seed``: ``{scenario: {quantity: (models, requests[, tasks])},
    "retrain_seconds_per_request": ...}``, model axis: the two oracles of ``P.ORACLES``, then ``methods``
    (default: every approximate method, axis ORDER); resumed from ``saver``'s checkpoint if any.
    ``d``: the data (default: ``load``); ``rates``: the learning rates of the methods (axis
    ``methods``) and of the oracles (default: the scale's)."""
    import torch

    from gdrepro.papers.clu import method as M

    s, seed, hp = ctx.settings, ctx.seed, ctx.settings.hparams()
    methods = list(P.METHODS.values()) if methods is None else methods
    rates = rates or Rates()
    saver = saver or Checkpoints()
    d = load(dataset, s, dev) if d is None else d
    at = saver.take(dataset)
    done: dict[str, dict] = at.get("scenarios", {})
    for scen in P.SCENARIOS:
        if scen not in done:
            done[scen] = _run_scenario(ctx, dataset, scen, d, dev, saver, done,
                                       at if at.get("scenario") == scen else None, methods, rates)
    if "ugclu" in [m.name for m in methods]:
        ug = [m.name for m in methods].index("ugclu")
        for scen in P.SCENARIOS:
            rows = done[scen]["rows"]
            run.log_curve(f"{dataset}.{scen}.ugclu_remaining_acc", range(len(rows)), [row["rem"][ug] for row in rows])
    # both oracles: one stacked run for every request of every scenario
    full, kept = zip(*[oracle_sets(done[scen]["states"]) for scen in P.SCENARIOS], strict=True)
    retrain_sets = [*(x for f in full for x in f), *(x for k in kept for x in k)]
    n_req = len(retrain_sets) // 2
    oracle_lr = None if rates.oracle is None else [lr for lr in rates.oracle for _ in range(n_req)]
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
              start=resumed["step"] if resumed else 0, on_step=partial(saver.step, position), lr=oracle_lr)
    retrain_seconds = time.perf_counter() - start
    probs_test = M.predict_proba(oracle, d["x_test"], transform=d["transform"]).cpu().numpy()
    probs_train = M.predict_proba(oracle, d["x"], transform=d["transform"]).cpu().numpy()
    out = {}
    for scen in P.SCENARIOS:
        states, rows = done[scen]["states"], done[scen]["rows"]
        rows_all = []
        for r_i, ((held, _, classes, info, req), row) in enumerate(zip(states, rows, strict=True)):
            k = retrain_where.index((scen, r_i))
            oracle_rows = [_evaluate_request(probs_test[j:j + 1], probs_train[j:j + 1], d, classes, held, info, req,
                                             d["cpt"], s.mia_samples, (dataset, scen, "tune" if seed is None else seed, r_i, name))
                           for j, name in ((k, "retrain"), (n_req + k, "retrain_memory"))]
            rows_all.append({q: np.concatenate([*(o[q] for o in oracle_rows), row[q]]) for q in row})
        # per request and model, averaged over seeds; the request structure is the same in every seed
        out[scen] = {q: runs.mean(np.stack([f[q] for f in rows_all], 1)) for q in rows_all[0]}  # (models, requests[, tasks])
        out[scen]["seconds"] = runs.mean(np.array(done[scen]["seconds"]))
        out[scen]["learned_at"] = runs.first(np.array([req.task if req.kind == "learn" else -1 for *_, req in states]))
        out[scen]["final_tasks"] = runs.first(np.array(sorted({c // d["cpt"] for c in states[-1][2]})))
    out["retrain_seconds_per_request"] = runs.mean(np.array(retrain_seconds / len(retrain_sets)))
    return out


def validation_split(d: dict, share: float, rng: np.random.Generator) -> dict:
    """The tuning data: training data less a class-stratified ``share`` held out, with the held-out
    part standing in for the test set (the test split is never seen while tuning)."""
    y = d["y_train"]
    val = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), int(round(share * (y == c).sum())), replace=False)
                                  for c in np.unique(y)]))
    train = np.setdiff1d(np.arange(len(y)), val)
    return d | {"x": d["x"][train], "y": d["y"][train], "y_train": y[train], "x_test": d["x"][val], "y_test": y[val]}


TUNE_SCENARIO = "class"  # tuning: this sequence up to and including its first unlearning request


def _tuning_learner(ctx: StageContext, dataset: str, d: dict, methods: list[P.Method], learn_lr: list[float],
                    dev: str) -> M.ContinualUnlearner:
    """A learner for the tuning run: every model of ``methods`` from one shared initialisation."""

    from gdrepro.papers.clu import method as M

    s = ctx.settings
    model = shared_start_model(dataset, len(methods), s, d, ctx.torch_generator(dataset, "tune-init"), dev)
    return M.ContinualUnlearner(model, methods, d["x"], d["y"], d["n_classes"], d["cpt"], s.hparams(),
                                ctx.torch_generator(dataset, "tune-batches"), ctx.rng(dataset, "tune-requests"),
                                d["transform"], learn_lr=learn_lr)


def _held_accuracy(model, d: dict, classes: set[int]) -> np.ndarray:
    """Validation accuracy (%) of every stacked model on the classes held (``d``: the tuning data)."""
    from gdrepro.papers.clu import method as M

    probs = M.predict_proba(model, d["x_test"], transform=d["transform"]).cpu().numpy()
    acc = P.accuracy(probs, d["y_test"], np.isin(d["y_test"], sorted(classes)))
    return np.where(np.isfinite(probs).all((1, 2)), acc, np.nan)


def _pick(scores: np.ndarray, grid: dict[str, list[float]], higher_is_better: bool = True) -> dict[str, float]:
    """Per name of ``grid`` (in order, ``len(grid[name])`` consecutive scores each) the grid value
    with the best score (the first, i.e. the smallest LR, on a tie; a nan score is the worst)."""
    n = len(next(iter(grid.values())))
    sign = 1.0 if higher_is_better else -1.0
    scores = np.nan_to_num(sign * np.asarray(scores, float), nan=-np.inf)
    return {name: lrs[int(np.argmax(scores[i * n:(i + 1) * n]))] for i, (name, lrs) in enumerate(grid.items())}


def _tune_learn_lr(ctx: StageContext, dataset: str, d: dict, learn: list[P.Request], dev: str) -> dict:
    """Each method's LR of learn requests: every method at every grid point (one stacked run) learns
    the requests ``learn``; score: validation accuracy on the classes held, averaged over the requests
    (a model whose outputs stop being finite scores nan from then on). Methods that run the same
    learn phase (``Method.learn_phase``: UG-CLU and its no-mask / no-adaptive ablations; GA+FT, SalUn,
    replay, CLPU-style and the one-step ablation) share one LR, chosen on their mean score: their
    learn requests are the same algorithm, so a different pick would be noise, and it would add a
    learn-LR difference to an ablation of an unlearning component."""
    s = ctx.settings
    methods = list(P.METHODS.values())
    grid = {m.name: [s.learn_lr * f for f in s.lr_grid] for m in methods}
    learner = _tuning_learner(ctx, dataset, d, [m for m in methods for _ in s.lr_grid],
                              [lr for lrs in grid.values() for lr in lrs], dev)
    scores = []
    for req in learn:
        learner.apply(req)
        scores.append(_held_accuracy(learner.model, d, learner.data.classes))
    n = len(s.lr_grid)
    own = np.mean(scores, 0).reshape(len(methods), n)  # nan once nan
    phases = [m.learn_phase for m in methods]
    shared = np.stack([own[[k for k, q in enumerate(phases) if q == phase]].mean(0) for phase in phases])
    return {"grid": grid, "validation_accuracy": {m.name: own[i].tolist() for i, m in enumerate(methods)},
            "shared_validation_accuracy": {m.name: shared[i].tolist() for i, m in enumerate(methods)},
            "shared_with": {m.name: [q.name for q in methods if q.learn_phase == m.learn_phase] for m in methods},
            "chosen": _pick(shared.ravel(), grid)}


def _tune_oracle_lr(ctx: StageContext, dataset: str, d: dict, states: list, dev: str):
    """Each oracle's LR: both oracles of every request of the tuning sequence (``states``, as
    :func:`oracle_sets` takes them) at every grid point, in one stacked run; score: validation
    accuracy on the classes held, averaged over the requests. Returns the result and the trained
    oracles (model axis: oracle, request, grid point)."""
    from gdrepro.papers.clu import method as M

    s, hp = ctx.settings, ctx.settings.hparams()
    grid = {o: [s.learn_lr * f for f in s.lr_grid] for o in P.ORACLES}
    sets = [x for oracle_set in oracle_sets(states) for x in oracle_set for _ in s.lr_grid]
    rates = [lr for o in P.ORACLES for _ in states for lr in grid[o]]
    model = stacked_model(dataset, len(sets), s, d, ctx.torch_generator(dataset, "tune-oracle-init"), dev)
    M.retrain(model, d["x"], d["y"], sets, hp, d["n_classes"], ctx.torch_generator(dataset, "tune-oracle-batches"),
              d["transform"], lr=rates)
    probs = M.predict_proba(model, d["x_test"], transform=d["transform"]).cpu().numpy()
    n, k = len(states), len(s.lr_grid)
    acc = np.stack([P.accuracy(probs[(o * n + r) * k:(o * n + r + 1) * k], d["y_test"],
                               np.isin(d["y_test"], sorted(states[r][2])))
                    for o in range(len(P.ORACLES)) for r in range(n)]).reshape(len(P.ORACLES), n, k)
    score = acc.mean(1).ravel()
    result = {"grid": grid, "validation_accuracy": {o: acc[i].mean(0).tolist() for i, o in enumerate(P.ORACLES)},
              "chosen": _pick(score, grid)}
    return result, model


def tune_learning_rates(ctx: StageContext, dataset: str, dev: str) -> dict:
    """Every learning rate of the experiment, chosen on a validation split carved from the training
    data (:func:`validation_split`; the test split is never seen), from the same grid ``lr_grid``
    (factors on the scale's LR) for every method and oracle, on one tuning sequence: the class
    sequence (its five learn requests for the learn LR; up to and including its first unlearning
    request for the others).

    1. learn LR of each method: validation accuracy on the classes held after each of the five
       learn requests of the sequence (all that a seed job's sequences learn; EWC's penalty, for
       one, stiffens as tasks accumulate), averaged, and over the methods with the same learn phase;
    2. the methods, each at its chosen learn LR, learn the requests before the first unlearning
       request; each model is then copied once per grid point and the copies process that request;
    3. LR of each oracle (Retrain, like-for-like Retrain): validation accuracy of the oracles of
       every request of the sequence up to there, trained from scratch at each grid point;
    4. unlearning LR of each method (CLPU-style: its relearning LR, grid on ``learn_lr``): the
       smallest gap to the like-for-like oracle (at its chosen LR) of the unlearning request, over
       remaining, forget-train and forget-test accuracy and the loss-threshold MIA.

    Returns ``{"learn" | "oracle": {"grid", "validation_accuracy", "chosen"}, "unlearn": {"grid",
    "validation_gap", "chosen"}}``, ``chosen`` keyed by method or oracle name; "learn" also has
    "shared_validation_accuracy" (the score the choice used) and "shared_with"."""
    from gdrepro.papers.clu import method as M

    s: CLUSettings = ctx.settings
    hp = s.hparams()
    d = validation_split(load(dataset, s, dev), s.validation_share, ctx.rng(dataset, "validation"))
    requests = P.scenario(TUNE_SCENARIO, 5, d["cpt"])
    first = next(i for i, r in enumerate(requests) if r.kind.startswith("forget"))
    learn = _tune_learn_lr(ctx, dataset, d, [r for r in requests if r.kind == "learn"], dev)
    methods = list(P.METHODS.values())
    learner = _tuning_learner(ctx, dataset, d, methods, [learn["chosen"][m.name] for m in methods], dev)
    states = []
    for i, req in enumerate(requests[:first + 1]):
        if i == first:  # the unlearning grid, from the state each method reached
            grid = {m.name: [(hp.learn_lr if m.rollback else hp.unlearn_lr) * f for f in s.lr_grid] for m in methods}
            learner.repeat(list(grid.values()))
        info = learner.apply(req)
        states.append((learner.data.held.copy(), learner.data.memory.copy(), set(learner.data.classes), info, req))
    oracle, oracles = _tune_oracle_lr(ctx, dataset, d, states, dev)
    k = len(states) * len(s.lr_grid)  # the like-for-like oracles start here; the last request's come last
    j = k + (len(states) - 1) * len(s.lr_grid) + oracle["grid"]["retrain_memory"].index(oracle["chosen"]["retrain_memory"])
    rows = [_evaluate_request(M.predict_proba(mdl, d["x_test"], transform=d["transform"]).cpu().numpy()[sel],
                              M.predict_proba(mdl, d["x"], transform=d["transform"]).cpu().numpy()[sel], d,
                              learner.data.classes, learner.data.held, info, requests[first], d["cpt"], s.mia_samples,
                              (dataset, "tune", name))
            for mdl, sel, name in ((oracles, slice(j, j + 1), "oracle"), (learner.model, slice(None), "grid"))]
    gap = np.mean([np.abs(rows[1][q] - rows[0][q][0]) for q in ("rem", "fgt_train", "fgt_test", "mia_loss")], 0)
    n = len(s.lr_grid)
    unlearn = {"grid": grid, "validation_gap": {m: gap[i * n:(i + 1) * n].tolist() for i, m in enumerate(grid)},
               "chosen": _pick(gap, grid, higher_is_better=False)}
    return {"learn": learn, "unlearn": unlearn, "oracle": oracle}


# --- stages -------------------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    """The request sequences and methods of this scale, and every learning rate (each method's on
    learn and on unlearning requests, each oracle's) tuned on a validation split
    (:func:`tune_learning_rates`); at paper scale, check the datasets are present."""
    s: CLUSettings = ctx.settings
    root = datasets.external_root(s.data_root)
    if "cifar10" in s.datasets and not (root / "cifar-10-batches-py").is_dir():
        raise GdreproError(f"cifar10: missing {root / 'cifar-10-batches-py'}; download "
                           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it into "
                           f"{root}, or set GDREPRO_EXTERNAL_DATA to the folder that holds cifar-10-batches-py/")
    if "tinyimagenet" in s.datasets and not (root / "tiny-imagenet-200").is_dir():
        raise GdreproError(f"tinyimagenet: missing {root / 'tiny-imagenet-200'}; " + datasets.TINY_HELP.format(root=root))
    tuning = {dataset: tune_learning_rates(ctx, dataset, device()) for dataset in s.datasets}
    for dataset, r in tuning.items():
        for what in ("learn", "unlearn", "oracle"):
            log(f"{dataset}: {what} learning rates chosen on the validation split: "
                + ", ".join(f"{k}={v:.4g}" for k, v in r[what]["chosen"].items()))
    ctx.write_prepared({"methods": list(ORDER), "scenarios": {sc: [r.label for r in P.scenario(sc)] for sc in P.SCENARIOS},
                        "learning_rate_tuning": tuning})


def run_seed(ctx: StageContext) -> dict:
    """Every scenario and dataset for this seed (one MLflow run for the seed): ``{dataset: ...}`` as
    :func:`run_dataset` gives it. Checkpointed every ``CHECKPOINT_EVERY[scale]`` training steps (the
    house removes the checkpoint once the results are on disk)."""
    s: CLUSettings = ctx.settings
    dev = device()
    tuned = ctx.read_prepared()["learning_rate_tuning"]
    saver = Checkpoints(ctx.checkpoint_path, CHECKPOINT_EVERY[ctx.scale],
                        {"format": CHECKPOINT_FORMAT, **ctx.stamp, "tuned": tuned}, dev)
    if saver.count:
        log(f"seed {ctx.seed}: resuming from {ctx.checkpoint_path} after {saver.count} training steps")
    with ctx.tracked_run("all_methods") as run:
        for dataset in s.datasets:
            if dataset not in saver.finished:
                saver.finished[dataset] = run_dataset(ctx, dataset, dev, run, saver, rates=Rates.tuned(tuned[dataset]))
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

    n_models = r["rem"].shape[0]

    def mean_over(q, cols):
        v = r[q][:, cols]
        return np.nanmean(v, 1) if v.size and not np.all(np.isnan(v)) else np.full(n_models, np.nan)

    learned_at = {int(t): i for i, t in enumerate(r["learned_at"]) if t >= 0}
    bwt = np.array([P.backward_transfer(r["task_acc"][m], learned_at, r["final_tasks"].tolist())
                    for m in range(n_models)])
    return {"rem_final": r["rem"][:, -1], "rem_u": mean_over("rem", forget), "new": mean_over("new", learn),
            "fgt_train": mean_over("fgt_train", forget), "fgt_test": mean_over("fgt_test", forget),
            "mia": mean_over("mia", forget), "mia_loss": mean_over("mia_loss", forget), "aa": r["rem"].mean(1),
            "bwt": bwt}


def gaps(stats: dict[str, np.ndarray], ref: int = 0, stats_used: tuple[str, ...] = GAP_STATS) -> np.ndarray:
    """Average absolute gap to the oracle in row ``ref`` (0: Retrain, 1: the like-for-like Retrain)
    over the applicable metrics of ``stats_used``."""
    rows = [np.abs(stats[q] - stats[q][ref]) for q in stats_used if not np.isnan(stats[q][ref])]
    return np.mean(rows, 0)


def compute_metrics(run: dict, prefix: str = "") -> dict[str, float]:
    """Every number the claims and tables need, from one dataset of one seed's run or of the pooled
    run; metric names start with ``prefix``."""
    i = {name: ORDER.index(name) for name in ORDER}
    m: dict[str, float] = {}
    all_gaps, all_ll = [], []
    for scen in P.SCENARIOS:
        st = scenario_stats(run, scen)
        g, ll = gaps(st), gaps(st, ref=1, stats_used=LL_GAP_STATS)
        all_gaps.append(g)
        all_ll.append(ll)
        for name in ORDER:
            for q, v in st.items():
                m[f"{prefix}{scen}_{name}_{q}"] = float(v[i[name]])
            m[f"{prefix}{scen}_{name}_gap"] = float(g[i[name]])
            m[f"{prefix}{scen}_{name}_llgap"] = float(ll[i[name]])
    mean_gap, mean_ll = np.mean(all_gaps, 0), np.mean(all_ll, 0)
    for name in ORDER:
        m[f"{prefix}gap_{name}"] = float(mean_gap[i[name]])
        m[f"{prefix}llgap_{name}"] = float(mean_ll[i[name]])
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
    return m | like_for_like_metrics(m, mean_ll, prefix)


def like_for_like_metrics(c: dict[str, float], mean_ll: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Issue 22's comparisons: against the like-for-like oracle (Retrain on the memory plus the new
    task), against the replay baselines for learning, the equal-step ablation, the loss-threshold MIA."""
    i = {name: ORDER.index(name) for name in ORDER}
    ug, m = i["ugclu"], {}
    m[f"{prefix}llgap_ugclu_minus_best_baseline"] = float(mean_ll[ug] - min(mean_ll[i[b]] for b in P.BASELINES))
    for a in (*P.EQUAL_STEP_ABLATIONS, "ugclu_no_fastslow"):
        m[f"{prefix}llgap_{a}_minus_ugclu"] = float(mean_ll[i[a]] - mean_ll[ug])
    m[f"{prefix}ll_class_rem_minus_oracle"] = c[f"{prefix}class_ugclu_rem_u"] - c[f"{prefix}class_retrain_memory_rem_u"]
    m[f"{prefix}ll_samples_fgt_train_gap"] = abs(c[f"{prefix}samples_ugclu_fgt_train"]
                                                - c[f"{prefix}samples_retrain_memory_fgt_train"])
    m[f"{prefix}class_retrain_minus_memory_rem"] = c[f"{prefix}class_retrain_rem_u"] - c[f"{prefix}class_retrain_memory_rem_u"]

    def new(name: str) -> float:
        return float(np.mean([c[f"{prefix}{sc}_{name}_new"] for sc in P.SCENARIOS]))

    m[f"{prefix}new_ugclu_minus_replay"] = new("ugclu") - new("replay")
    m[f"{prefix}new_ugclu_minus_best_replay_baseline"] = new("ugclu") - max(new(b) for b in P.REPLAY_BASELINES)
    for oracle, tag in (("retrain_memory", "_ll"), ("retrain", "")):
        m[f"{prefix}mia_loss_gap_ugclu{tag}"] = float(np.mean([abs(c[f"{prefix}{sc}_ugclu_mia_loss"]
                                                                  - c[f"{prefix}{sc}_{oracle}_mia_loss"])
                                                              for sc in P.SCENARIOS]))
        # random samples alone: the scenario where the loss attack is not 0% for every model
        m[f"{prefix}samples_mia_loss_gap_ugclu{tag}"] = abs(c[f"{prefix}samples_ugclu_mia_loss"]
                                                            - c[f"{prefix}samples_{oracle}_mia_loss"])
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
                for q in (*STATS, "gap", "llgap"):
                    row[q] = metrics[f"{prefix}{scen}_{name}_{q}"]["value"]
                    row[q + "_sd"] = _sd(metrics[f"{prefix}{scen}_{name}_{q}"]["per_seed"])
                rows.append(row)
            tables[scen] = rows
            table = [{"method": r["method"], **{q: _fmt(r[q], r[q + "_sd"]) for q in (*STATS, "gap", "llgap")}}
                     for r in rows]
            write_table(ctx.tables_dir / f"{prefix}{scen}", table,
                        caption=f"UG-CLU {dataset}, scenario {scen}: accuracy (%), entropy MIA and loss-threshold MIA "
                                "(mia_loss) on D_U (%), gap to Retrain (gap) and to the like-for-like Retrain on the "
                                "memory plus the new task (llgap) (mean ± sd over seeds)")
            scen_run = pooled[dataset][scen]
            details[f"{prefix}{scen}_curves"] = {name: np.nan_to_num(scen_run["rem"][j], nan=-1).tolist()
                                                 for j, name in enumerate(ORDER)}
            details[f"{prefix}{scen}_labels"] = [r.label for r in P.scenario(scen)]
            details[f"{prefix}{scen}_curves_per_seed"] = {
                name: [np.nan_to_num(np.asarray(r[dataset][scen]["rem"])[j], nan=-1).tolist() for r in seed_runs]
                for j, name in enumerate(ORDER)}
            perf[f"{prefix}{scen}_seconds_per_request_all_approximate_methods"] = float(scen_run["seconds"].mean())
        details[f"{prefix}tables"] = tables
        perf[f"{prefix}retrain_seconds_per_request"] = float(pooled[dataset]["retrain_seconds_per_request"])
        approx = np.mean([perf[f"{prefix}{sc}_seconds_per_request_all_approximate_methods"] for sc in P.SCENARIOS])
        perf[f"{prefix}seconds_per_request_per_approximate_method"] = float(approx / len(P.APPROXIMATE))
    tuning = ctx.read_prepared()["learning_rate_tuning"]
    details["learning_rate_tuning"] = tuning
    for i, dataset in enumerate(s.datasets):
        write_table(ctx.tables_dir / f"{_prefix(i, dataset)}learning_rates", learning_rate_rows(tuning[dataset]),
                    caption=f"UG-CLU {dataset}: learning rates of every method and oracle, each chosen on a validation "
                            f"split ({100 * s.validation_share:.0f}% of the training data, never the test split) from the "
                            f"same {len(s.lr_grid)}-point grid (x{', x'.join(f'{f:.3g}' for f in s.lr_grid)} the scale's "
                            "LR): learn requests (one LR for the methods with the same learn phase; their mean "
                            "accuracy shown) and oracles by validation accuracy on the classes held, unlearning "
                            "requests by the gap to the like-for-like Retrain")
    details["gradient_evaluations_per_request"] = {  # forward+backward sample passes, per method
        "retrain": s.retrain_steps * s.batch,
        "finetune_learn": s.learn_steps * s.batch, "replay_learn": 2 * s.learn_steps * s.batch,
        "ugclu_learn": 2 * s.learn_steps * s.batch, "ugclu_two_steps_learn": 3 * s.learn_steps * s.batch,
        "ugclu_unlearn": (s.unlearn_steps + s.unlearn_steps // s.forget_every) * s.batch,
        "clpu_unlearn": s.learn_steps * s.batch,
    }
    write_metrics(ctx, metrics, details, perf)
    log(f"wrote {ctx.metrics_path}")


def learning_rate_rows(tuning: dict) -> list[dict]:
    """The learning-rate table of one dataset: per method and oracle, each grid with its validation
    score and the rate chosen (oracles have no unlearning phase)."""

    def cells(part: dict, name: str, score: str, fmt: str) -> list[str]:
        return [", ".join(f"{lr:.4g}" for lr in part["grid"][name]),
                ", ".join(f"{v:{fmt}}" for v in part[score][name]), f"{part['chosen'][name]:.4g}"]

    rows = []
    for name in (*P.ORACLES, *P.METHODS):
        oracle = name in P.ORACLES
        learn = cells(tuning["oracle"], name, "validation_accuracy", ".1f") if oracle else \
            cells(tuning["learn"], name, "shared_validation_accuracy", ".1f")
        unlearn = ["n/a"] * 3 if oracle else cells(tuning["unlearn"], name, "validation_gap", ".2f")
        rows.append(dict(zip(("method", "learn LR grid", "validation accuracy (%)", "chosen learn LR",
                              "unlearning LR grid", "validation gap to like-for-like Retrain", "chosen unlearning LR"),
                             [P.NAMES[name], *learn, *unlearn], strict=True)))
    return rows


def _sd(values: list) -> float:
    v = [x for x in values if x is not None]
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _fmt(v, sd) -> str:
    return "n/a" if v is None else f"{v:.1f} ± {sd:.1f}"


def figure_inputs(ctx: StageContext) -> dict:
    """The figures are drawn from metrics.json alone (``metrics``, which the house passes)."""
    return {}
