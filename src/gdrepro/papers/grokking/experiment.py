"""Grokking experiments: prepare -> train (one job per seed) -> evaluate (figures: the house's).

Each seed job trains every run of its plan (:func:`plan`) in two stacks (models with and
without embeddings), one batched step per stack (see ``trainer``); each model stops 100 steps
(``margin``) after it reaches 99% train and 95% test accuracy, or at its step cap.

Runs (modulus P, Adam lr 0.01 with L2 weight decay 1e-3, batch 512):

- ``emb-<op>-random-c<c>``: the embedding MLP, random split, Adam-LR c in ``cs`` (1 and 10), per op;
- ``emb-add-<split>-c1``: other split strategies (uniform; skewed with ``skew``) on add;
- ``noemb-<op>``: the MLP without embeddings;
- extras, spread over seeds (``extras_per_seed``): the c sweep on add, the adaptive c_t (ours)
  and the skewed split with the frequency-balancing sampler (ours; also on seeds < ``balanced_seeds``);
- ``emb-add-<split>-c1-adamw``: decoupled AdamW beside the coupled L2 decay (random and skewed splits);
- ``tf-<op>-...``: a small transformer, c in ``cs`` per op in ``tf_ops``, the skewed split, with and
  without the balanced sampler (add).

Hessian/rank diagnostics run on ``emb-add-random-c1`` and ``-c10`` at ``diag_steps``.
A step that is never reached (a run stopped at its cap) counts as the cap in the medians
(a censored value: a lower bound on the real step).

A seed job checkpoints its stack every ``CHECKPOINT_EVERY[scale]`` steps (``ctx.checkpoint_path``);
a killed job resumes there and writes the same bits as one that was never interrupted.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass

import numpy as np

from gdrepro import runs
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.runtime import device, flushed_denormals, log, torch_generator
from gdrepro.tables import write_table

ENCODINGS = ("raw", "onehot")
"""= method.ENCODINGS (not imported: the prepare/evaluate jobs load no torch; a test checks they agree)."""


def reading(name: str) -> dict:
    """Settings of a reading of the MLP without embeddings, from its name: the input encoding
    (``raw`` or ``onehot``), then optional ``-adamw`` (decoupled decay), ``-lr<x>`` (its learning
    rate), ``-h<n>`` (its width). E.g. ``onehot-lr0.001`` = one-hot inputs at lr 0.001."""
    encoding, *mods = name.split("-")
    if encoding not in ENCODINGS:
        raise ValueError(f"reading {name!r}: encoding must be one of {ENCODINGS}")
    out: dict = {"encoding": encoding}
    for mod in mods:
        if mod == "adamw":
            out["decoupled"] = True
        elif mod.startswith("lr"):
            out["lr"] = float(mod[2:])
        elif mod.startswith("h") and mod[1:].isdigit():
            out["hidden"] = int(mod[1:])
        else:
            raise ValueError(f"reading {name!r}: unknown part {mod!r} (adamw, lr<x>, h<n>)")
    return out


def noemb_name(op: str, name: str) -> str:
    """Run name of a reading: the raw reading keeps its original name ``noemb-<op>``."""
    return f"noemb-{op}" if name == "raw" else f"noemb-{op}-{name}"


def _cname(c: float | str) -> str:
    return "cadapt" if c == "adaptive" else f"c{c:g}"


@dataclass(frozen=True)
class GrokkingSettings:
    """Numbers of one scale; scales change these, never the code path."""

    p: int = 97
    d: int = 128  # embedding width
    hidden: int = 512
    batch: int = 512
    lr: float = 0.01
    weight_decay: float = 1e-3
    decoupled: bool = False  # False: torch.optim.Adam's L2 decay (the paper's "Adam with weight decay")
    ops: tuple[str, ...] = ("add", "mul")
    cs: tuple[float, ...] = (1.0, 10.0)  # Adam-LR factors of the headline comparison
    steps: int = 3000  # step cap, embedding models
    mul_steps: int = 0  # step cap of the embedding models on mul (the paper plots mul to 1e5); 0: steps
    split_steps: int = 2000  # step cap, other split strategies (they may never reach 95% test)
    noemb_steps: int = 3000  # step cap, models without embeddings
    splits: tuple[str, ...] = ("uniform", "skewed")  # add, c = 1, besides the random split
    skew: float = 10.0
    sweep: tuple[float, ...] = (0.5, 4.0, 16.0, 32.0)  # extra c values (add, random split)
    adaptive: bool = True  # our adaptive c_t (add)
    balanced_tau: float = 1.0  # our sampler on the skewed split (0: not run)
    extras_per_seed: int = 1  # adaptive c_t / balanced sampler per seed job, round robin; 0: both in every seed
    balanced_seeds: int = 1  # seeds 0 .. balanced_seeds - 1 run the balanced sampler besides the round robin
    sweep_seeds: int = 3  # seeds 0 .. sweep_seeds - 1 run every swept c (the sweep on >= 3 seeds)
    # the MLP without embeddings, readings of the paper's unspecified model (see reading()): the
    # primary one (the verdict) on every op and seed, the others on add, seeds 0 .. reading_seeds - 1
    noemb_primary: str = "onehot"  # and "raw" (issue 18's reading): every op and seed
    noemb_readings: tuple[str, ...] = ("onehot-adamw", "onehot-lr0.001", "onehot-h128")
    reading_seeds: int = 3
    reading_steps: int = 2000  # step cap of the readings other than raw (the embedding MLP groks by ~1200)
    adamw_splits: tuple[str, ...] = ("random", "skewed")  # these splits (add, c = 1) with AdamW too, reading_seeds seeds
    # a small transformer (method.TinyTransformer): c in cs on tf_ops, the skewed split beside the random
    # one (add, c = 1, common horizon tf_split_steps), our balanced sampler there if tf_balanced
    tf_d: int = 32
    tf_lr: float = 0.01
    tf_ops: tuple[str, ...] = ("add", "mul")
    tf_steps: int = 2000  # step cap on the random split; the transformer's Adam-LR claims read steps up to here
    tf_mul_steps: int = 4000  # step cap of the transformer on mul (read at tf_steps and at this cap); 0: tf_steps
    tf_split_steps: int = 2000
    tf_balanced: bool = True
    tf_seeds: int = 3  # seeds 0 .. tf_seeds - 1
    eval_every: int = 50
    margin: int = 100
    diag_steps: tuple[int, ...] = (0, 50, 100, 200, 300, 400, 600, 800, 1200, 1600)
    hessian_iters: int = 10
    hessian_batch: int = 512

    def __post_init__(self) -> None:
        if self.p < 5 or min(self.d, self.hidden, self.batch, self.steps, self.eval_every) < 1:
            raise ValueError("need p >= 5 and positive sizes")
        if not set(self.ops) <= {"add", "mul", "div", "sq"} or "add" not in self.ops:
            raise ValueError(f"ops={self.ops} must include 'add' and lie in add, mul, div, sq")
        if 1.0 not in self.cs or len(self.cs) < 2:
            raise ValueError(f"cs={self.cs} must contain 1 and another factor")
        if not set(self.splits) <= {"uniform", "skewed"}:
            raise ValueError(f"splits={self.splits} must lie in uniform, skewed")
        for name in (self.noemb_primary, *self.noemb_readings):
            reading(name)


SETTINGS = {
    # smoke: a narrow model (d 32, hidden 128, batch 256), add only, 400 steps: seconds per seed
    "smoke": GrokkingSettings(d=32, hidden=128, batch=256, ops=("add",), cs=(1.0, 10.0), steps=400,
                              split_steps=400, noemb_steps=400, splits=(), sweep=(), adaptive=False,
                              balanced_tau=0.0, eval_every=25, diag_steps=(200,), hessian_iters=3,
                              hessian_batch=256, noemb_primary="raw", noemb_readings=(), adamw_splits=(),
                              tf_seeds=0),
    "default": GrokkingSettings(),
    "paper": GrokkingSettings(ops=("add", "mul", "div", "sq"), steps=10_000, mul_steps=100_000, split_steps=10_000,
                              noemb_steps=40_000, sweep=(0.5, 4.0, 8.0, 16.0, 24.0, 32.0), extras_per_seed=0,
                              sweep_seeds=1000, reading_seeds=1000, reading_steps=10_000, tf_d=128,
                              tf_ops=("add", "mul", "div", "sq"), tf_steps=10_000, tf_mul_steps=0, tf_split_steps=10_000,
                              tf_seeds=1000,
                              eval_every=25, diag_steps=(0, 50, 100, 200, 300, 400, 600, 800, 1200, 1600, 2400,
                                                         3200, 5000, 10_000), hessian_iters=20),
}


CHECKPOINT_EVERY = {"smoke": 100, "default": 500, "paper": 1000}
"""Training steps between checkpoints of a seed job's stack, per scale. Not a setting: it does not
change a single result bit, so it stays out of the settings that stamp the outputs."""

# per-seed quantities whose length depends on where that seed's run stopped: kept per seed
PER_SEED = ("steps", "train_acc", "test_acc", "train_loss", "test_loss", "diag_steps", "hess_E", "hess_W",
            "rank_E", "rank_W", "rank_EW", "c_t")


@dataclass(frozen=True)
class Spec:
    """One planned run (see trainer.Run for the tensors)."""

    name: str
    op: str
    embedding: bool
    split: str = "random"
    c: float | str = 1.0
    tau: float = 0.0
    cap: int = 0
    diagnostics: bool = False
    encoding: str = "raw"
    arch: str = "mlp"
    hidden: int = 0
    lr: float = 0.0
    decoupled: bool | None = None
    min_steps: int = 0


def extras(s: GrokkingSettings) -> list[Spec]:
    """The runs spread over seeds (round robin): adaptive c_t (ours), balanced sampler (ours)."""
    out = []
    if s.adaptive:
        out.append(Spec("emb-add-random-cadapt", "add", True, "random", "adaptive", cap=s.steps))
    if s.balanced_tau > 0:
        out.append(Spec("emb-add-skewed-c1-bal", "add", True, "skewed", 1.0, s.balanced_tau, cap=s.split_steps,
                        min_steps=s.split_steps))
    return out


def transformer_plan(s: GrokkingSettings) -> list[Spec]:
    """The small transformer: c in cs on tf_ops; the skewed split (and with tf_balanced our balanced
    sampler on it) beside the random split (add, c = 1) at a common horizon of tf_split_steps."""
    cap = max(s.tf_steps, s.tf_split_steps)
    runs = [Spec(f"tf-{op}-random-{_cname(c)}", op, True, "random", c,
                 cap=max(cap, s.tf_mul_steps) if op == "mul" else cap, arch="transformer", lr=s.tf_lr,
                 min_steps=s.tf_split_steps if (op, c) == ("add", 1.0) else 0) for op in s.tf_ops for c in s.cs]
    runs.append(Spec("tf-add-skewed-c1", "add", True, "skewed", 1.0, cap=s.tf_split_steps, arch="transformer",
                     lr=s.tf_lr, min_steps=s.tf_split_steps))
    if s.tf_balanced and s.balanced_tau > 0:
        runs.append(Spec("tf-add-skewed-c1-bal", "add", True, "skewed", 1.0, s.balanced_tau, cap=s.tf_split_steps,
                         arch="transformer", lr=s.tf_lr, min_steps=s.tf_split_steps))
    return runs


def plan(s: GrokkingSettings, seed: int) -> list[Spec]:
    """Every run of one seed job.

    The random and skewed splits on add with c = 1 run at least ``split_steps`` steps (no early
    stop before), so the split comparison reads both at the same horizon.
    """
    runs = [Spec(f"emb-{op}-random-{_cname(c)}", op, True, "random", c,
                 cap=s.mul_steps if op == "mul" and s.mul_steps else s.steps,
                 diagnostics=(op == "add" and c in (1.0, 10.0)),
                 min_steps=s.split_steps if (op, c) == ("add", 1.0) else 0) for op in s.ops for c in s.cs]
    runs += [Spec(f"emb-add-{split}-c1", "add", True, split, 1.0, cap=s.split_steps,
                  min_steps=s.split_steps if split == "skewed" else 0) for split in s.splits]
    if seed < s.sweep_seeds:
        runs += [Spec(f"emb-add-random-{_cname(c)}", "add", True, "random", c, cap=s.steps) for c in s.sweep]
    extra = extras(s)
    if extra and s.extras_per_seed:
        k = s.extras_per_seed
        balanced = [e for e in extra if e.tau > 0 and seed < s.balanced_seeds]  # besides the round robin
        extra = [extra[(k * seed + i) % len(extra)] for i in range(min(k, len(extra)))] + balanced
    if seed < s.reading_seeds:
        extra += [Spec(f"emb-add-{split}-c1-adamw", "add", True, split, 1.0, cap=s.split_steps, decoupled=True,
                       min_steps=s.split_steps) for split in s.adamw_splits]
    runs += [e for e in {e.name: e for e in extra}.values() if e.name not in {r.name for r in runs}]
    if seed < s.tf_seeds:
        runs += transformer_plan(s)
    readings = [(op, name) for name in dict.fromkeys(("raw", s.noemb_primary)) for op in s.ops]
    if seed < s.reading_seeds:
        readings += [("add", name) for name in s.noemb_readings if name not in ("raw", s.noemb_primary)]
    runs += [Spec(noemb_name(op, name), op, False, "random", 1.0,
                  cap=s.noemb_steps if name == "raw" else s.reading_steps, **reading(name)) for op, name in readings]
    return runs


def stack_tag(r: Spec) -> str:
    """The stack a run trains in (one per model family and shape): emb, tf, noemb (raw inputs),
    noemb-onehot, noemb-onehot-h128, ..."""
    if r.arch == "transformer":
        return "tf"
    if r.embedding:
        return "emb"
    return "-".join(["noemb"] + ([r.encoding] if r.encoding != "raw" else []) + ([f"h{r.hidden}"] if r.hidden else []))


# --- stages -----------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    """The plan of every seed and the data sizes (all data are generated in code)."""
    s: GrokkingSettings = ctx.settings
    sizes = {}
    for op in s.ops:  # as method.split: round(0.2 N) test rows, round(0.3 N) training rows
        n = s.p * (s.p - 1) if op == "div" else s.p**2
        sizes[op] = {"rows": n, "train": round(0.3 * n), "test": round(0.2 * n)}
    ctx.write_prepared({"plan": {str(k): [asdict(r) for r in plan(s, k)] for k in ctx.seeds}, "sizes": sizes})


def run_seed(ctx: StageContext) -> dict:
    """Every run of this seed, in one stack per model kind; one MLflow run per kind.

    Returns ``{"runs": {name: {...}}, "perf": {...}}``. Curves (their length depends on where the
    run stopped) stay per seed; the steps reaching the targets, the stop, token frequencies, norms
    and Fourier spectra stack over seeds; timings and step counts average.
    """
    from gdrepro import checkpoint
    from gdrepro.papers.grokking import method as M
    from gdrepro.papers.grokking import trainer as T

    s: GrokkingSettings = ctx.settings
    seed = ctx.seed
    datasets = {op: M.modular_dataset(op, s.p) for op in s.ops}
    splits = {}

    def indices(op: str, strategy: str):
        if (op, strategy) not in splits:
            splits[op, strategy] = M.split(
                datasets[op][0], s.p, strategy, ctx.torch_generator("test", op), skew=s.skew,
                train_generator=ctx.torch_generator("train", op, strategy))
        return splits[op, strategy]

    path = ctx.checkpoint_path
    state = checkpoint.load(path) or {}
    if state and state["stamp"] != ctx.stamp:  # left by a run of other settings: start afresh
        log(f"seed {seed}: ignoring {path} (written for other settings)")
        state = {}
    done: dict[str, tuple[dict, dict]] = state.get("done", {})  # finished stacks: results, perf
    cpu_before, wall_before = state.get("cpu_seconds", 0.0), state.get("wall_seconds", 0.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def save(stack: str | None, trainer_state: dict | None = None) -> None:
        checkpoint.save(path, {"stamp": ctx.stamp, "done": done, "stack": stack, "trainer": trainer_state,
                               "cpu_seconds": cpu_before + time.process_time() - cpu0,
                               "wall_seconds": wall_before + time.perf_counter() - wall0})

    stacks: dict[str, list[Spec]] = {}
    for r in plan(s, seed):
        stacks.setdefault(stack_tag(r), []).append(r)
    for tag, specs in stacks.items():
        if tag in done:
            continue
        stack = [T.Run(r.name, r.op, r.embedding, *indices(r.op, r.split), c=r.c, tau=r.tau, cap=r.cap,
                       diagnostics=r.diagnostics, encoding=r.encoding, arch=r.arch, hidden=r.hidden, lr=r.lr,
                       decoupled=r.decoupled, min_steps=r.min_steps) for r in specs]
        method = {"emb": "embedding-mlp", "tf": "transformer"}.get(tag, tag.replace("noemb", "no-embedding-mlp"))
        # past memorisation softmax probabilities and Adam moments go denormal: ~8x slower CPU steps
        with ctx.tracked_run(method) as run, flushed_denormals():
            res = T.train_runs(
                stack, datasets, s.p, lambda *k: torch_generator("grokking", seed, *map(str, k)), lr=s.lr,
                weight_decay=s.weight_decay, batch=s.batch, d=s.d, hidden=s.hidden, eval_every=s.eval_every,
                margin=s.margin, diag_steps=s.diag_steps, hessian_iters=s.hessian_iters,
                hessian_batch=s.hessian_batch, decoupled=s.decoupled, tf_d=s.tf_d,
                log=lambda m, method=method: log(f"seed {seed} {method}: {m}"),
                progress=lambda step, values, run=run: run.log_metrics(values, step=step), device=device(),
                save=functools.partial(save, tag), save_every=CHECKPOINT_EVERY[ctx.scale],
                resume=state.get("trainer") if state.get("stack") == tag else None)
            perf = res.pop("__perf__")
            for name, r in res.items():  # the accuracy curves went to MLflow live (progress)
                log(f"seed {seed} {name}: 99% train at {r['step_train']}, 95% test at {r['step_test']}, "
                    f"stop {int(r['stop'])}, test acc {r['test_acc'][-1]:.3f}")
            run.log_metrics({"model_steps_per_second": float(perf["model_steps"] / perf["train_seconds"])})
        done[tag] = (res, perf)
        save(None)  # a stack finished: a resumed job starts at the next one
    results: dict = {"runs": {}, "perf": {}}
    for tag, (res, perf) in done.items():
        for name, r in res.items():
            results["runs"][name] = {k: (runs.own if k in PER_SEED else runs.stack)(np.asarray(v)) for k, v in r.items()}
        results["perf"][tag] = {k: runs.mean(v) for k, v in perf.items()}
    results["perf"]["cpu_seconds"] = runs.mean(cpu_before + time.process_time() - cpu0)
    results["perf"]["wall_seconds"] = runs.mean(wall_before + time.perf_counter() - wall0)
    return results


# --- evaluate ---------------------------------------------------------------------------------


# A seed's runs: ``{name: {quantity: array}}`` (run_seed's ``"runs"``); ``group``: a list of them.


def _has(run: dict, name: str, key: str) -> bool:
    """True if this seed ran ``name`` and recorded ``key`` for it."""
    return key in run.get(name, {})


def _median_step(group: list[dict], name: str, key: str, horizon: float = np.inf) -> float:
    """Median over the seeds that ran ``name`` of the step reaching a target; never = the cap, or
    ``horizon`` if that comes first (read at a horizon below the run's cap: not reached by then)."""
    values = [min(_censored(r, name, key), horizon) for r in group if _has(r, name, key)]
    return float(np.median(values)) if values else float("nan")


def _adam_lr(group: list[dict], c1: str, chi: str, horizon: float = np.inf) -> dict[str, float]:
    """Steps to 99% train / 95% test with c = 1 (run ``c1``) and to 95% test with the larger c (``chi``),
    censored at their caps or ``horizon``; ``delay`` = test / train steps (c = 1), ``speedup`` =
    test steps with the larger c over those with c = 1 (medians over the seeds that ran them)."""
    if not any(_has(r, c1, "stop") for r in group):
        return dict.fromkeys(("step_train", "step_test", "step_test_hi", "delay", "speedup"), float("nan"))
    tr, te, hi = (_median_step(group, n, k, horizon) for n, k in ((c1, "step_train"), (c1, "step_test"),
                                                                  (chi, "step_test")))
    return {"step_train": tr, "step_test": te, "step_test_hi": hi, "delay": te / tr, "speedup": hi / te}


def _censored(run: dict, name: str, key: str) -> float:
    v = float(run[name][key])
    return float(run[name]["stop"]) if np.isnan(v) else v


def _max_gap(run: dict, name: str) -> float:
    return float(np.max(run[name]["train_acc"] - run[name]["test_acc"]))


def _final_accuracies(group: list[dict], name: str, key: str) -> dict[str, float]:
    """``<key>_final_test``, ``_final_train`` (at the run's end) and ``_max_gap`` (largest train - test
    accuracy over training): medians over the seeds that ran ``name``."""
    ran = [r[name] for r in group if name in r]
    values = {"max_gap": lambda q: np.max(q["train_acc"] - q["test_acc"]), "final_test": lambda q: q["test_acc"][-1],
              "final_train": lambda q: q["train_acc"][-1]}
    return {f"{key}_{k}": float(np.median([f(q) for q in ran])) if ran else float("nan") for k, f in values.items()}


def _best_until(group: list[dict], name: str, horizon: int) -> float:
    """Median over the seeds that ran ``name`` of its best test accuracy at evaluations <= ``horizon``."""
    best = [np.max(r[name]["test_acc"][r[name]["steps"] <= horizon]) for r in group if _has(r, name, "stop")]
    return float(np.median(best)) if best else float("nan")


def _rare_norms(group: list[dict], name: str, p: int) -> dict[str, float]:
    """Final embedding norm against token frequency (medians over the seeds that ran ``name``):
    Spearman(frequency, norm), the 10 rarest value tokens' final / initial norm, and their mean
    norm over that of the 10 most frequent."""
    rho, shrink, ratio = [], [], []
    for r in group:
        if not _has(r, name, "norms"):
            continue
        freq, norms, init = r[name]["freq"][:p], r[name]["norms"][:p], r[name]["norms_init"][:p]
        order = np.argsort(freq, kind="stable")
        rare, frequent = order[:10], order[-10:]
        rho.append(_spearman(freq, norms))
        shrink.append(float(np.mean(norms[rare] / init[rare])))
        ratio.append(float(np.mean(norms[rare]) / np.mean(norms[frequent])))
    med = (lambda v: float(np.median(v))) if rho else (lambda v: float("nan"))
    return {"norm_freq_spearman": med(rho), "rare_norm_shrink": med(shrink), "rare_vs_frequent_norm": med(ratio)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def compute_metrics(group: list[dict], s: GrokkingSettings) -> dict[str, float]:
    """Every number the claims need, from a list of seeds' runs (one seed, or all of them)."""
    nan = float("nan")
    p = s.p
    m: dict[str, float] = {}
    c_hi = max(c for c in s.cs if c != 1.0)
    for op in ("add", "mul"):
        # the embedding MLP (at its cap) and the transformer (read at tf_steps; on mul also at its cap)
        for model, key, horizon in (("emb", "", np.inf), ("tf", "tf_", s.tf_steps), ("tf", "tf_long_", np.inf)):
            if key == "tf_long_" and op != "mul":
                continue
            c1, chi = f"{model}-{op}-random-c1", f"{model}-{op}-random-{_cname(c_hi)}"
            a = _adam_lr(group, c1, chi, horizon)
            m[f"{key}delay_{op}_c1"], m[f"{key}speedup_{op}"] = a["delay"], a["speedup"]
            m[f"{key}step_test_{op}_c1"], m[f"{key}step_train_{op}_c1"] = a["step_test"], a["step_train"]
            m[f"{key}step_test_{op}_c{c_hi:g}"] = a["step_test_hi"]
            if key != "tf_long_":
                have = [r for r in group if _has(r, c1, "stop")]
                m[f"{key or 'emb_'}{op}_max_gap"] = float(np.median([_max_gap(r, c1) for r in have])) if have else nan
        # the MLP without embeddings: raw and the primary reading on every op, the other readings on add
        for name in dict.fromkeys(("raw", s.noemb_primary, *(s.noemb_readings if op == "add" else ()))):
            m |= _final_accuracies(group, noemb_name(op, name),
                                   f"noemb_{op}" if name == "raw" else f"noemb_{op}_{name.replace('-', '_')}")
    # splits
    base = "emb-add-random-c1"
    best = {name: float(np.median([np.max(r[name]["test_acc"]) for r in group if _has(r, name, "stop")]))
            if any(_has(r, name, "stop") for r in group) else nan
            for name in (base, "emb-add-uniform-c1", "emb-add-skewed-c1", "emb-add-skewed-c1-bal")}
    m["skew_test_gap"] = best[base] - best["emb-add-skewed-c1"]
    m["skew_best_test"] = best["emb-add-skewed-c1"]
    m["balanced_best_test"] = best["emb-add-skewed-c1-bal"]
    m["uniform_vs_random_steps"] = (_median_step(group, "emb-add-uniform-c1", "step_test")
                                    / _median_step(group, base, "step_test"))
    # the same at a common horizon (both run split_steps steps, no early stop before): per optimiser, model
    for metric, rand, skew, h in (("skew_test_gap_h", base, "emb-add-skewed-c1", s.split_steps),
                                  ("skew_test_gap_h_adamw", "emb-add-random-c1-adamw", "emb-add-skewed-c1-adamw",
                                   s.split_steps),
                                  ("tf_skew_test_gap_h", "tf-add-random-c1", "tf-add-skewed-c1", s.tf_split_steps)):
        m[metric] = _best_until(group, rand, h) - _best_until(group, skew, h)
    # both readings of "Adam with weight decay" on both splits: best test accuracy at the common horizon,
    # and the step reaching 95% test on the random split (censored at split_steps)
    for key, name in (("random", base), ("skewed", "emb-add-skewed-c1"), ("random_adamw", "emb-add-random-c1-adamw"),
                      ("skewed_adamw", "emb-add-skewed-c1-adamw")):
        m[f"best_test_h_{key}"] = _best_until(group, name, s.split_steps)
    m["step_test_add_c1_adamw"] = _median_step(group, "emb-add-random-c1-adamw", "step_test")
    # our balanced sampler on the skewed split: gain in best test accuracy at the horizon
    m["balanced_gain_h"] = _best_until(group, "emb-add-skewed-c1-bal", s.split_steps) - _best_until(
        group, "emb-add-skewed-c1", s.split_steps)
    m["tf_balanced_gain_h"] = _best_until(group, "tf-add-skewed-c1-bal", s.tf_split_steps) - _best_until(
        group, "tf-add-skewed-c1", s.tf_split_steps)
    for split in ("uniform", "skewed"):
        name = f"emb-add-{split}-c1"
        ran = [r for r in group if _has(r, name, "stop")]
        m[f"step_test_add_{split}"] = _median_step(group, name, "step_test")
        m[f"reached_test95_add_{split}"] = (float(np.mean([not np.isnan(float(r[name]["step_test"])) for r in ran]))
                                            if ran else nan)
    # rare tokens (skewed split): 10 rarest vs 10 most frequent value tokens; per optimiser, model
    for key, name in (("", "emb-add-skewed-c1"), ("_adamw", "emb-add-skewed-c1-adamw"), ("tf", "tf-add-skewed-c1")):
        rare = _rare_norms(group, name, p)
        m |= {(f"tf_{k}" if key == "tf" else f"{k}{key}"): v for k, v in rare.items()}
    # curvature (diagnostic runs): median over steps > 0 of lambda_E / lambda_W, then over seeds
    curv = {}
    for c in (1.0, c_hi):
        name = f"emb-add-random-{_cname(c)}"
        per = []
        for r in group:
            if not _has(r, name, "diag_steps"):
                continue
            steps = r[name]["diag_steps"]
            ratio = np.abs(r[name]["hess_E"]) / np.abs(r[name]["hess_W"])
            per.append((steps, ratio))
        curv[c] = per
    m["curv_ratio_c1"] = float(np.median([np.median(q[st > 0]) for st, q in curv[1.0]])) if curv[1.0] else nan
    narrow = []
    for (st1, q1), (sth, qh) in zip(curv[1.0], curv[c_hi], strict=False):
        common = np.intersect1d(st1[st1 > 0], sth[sth > 0])
        if len(common):
            narrow.append(np.median(qh[np.isin(sth, common)]) / np.median(q1[np.isin(st1, common)]))
    m["curv_narrowing"] = float(np.median(narrow)) if narrow else nan
    # c sweep (add, random split)
    cs = sorted({*s.cs, *s.sweep})
    steps_c = {c: _median_step(group, f"emb-add-random-{_cname(c)}", "step_test") for c in cs}
    ran = {c: v for c, v in steps_c.items() if np.isfinite(v)}
    m["best_c"] = float(min(ran, key=ran.get)) if len(ran) > 2 else nan
    # the same per seed, on the seeds that ran the whole sweep: log2 of the fastest c (ties: their mean)
    fastest = [c for c, v in ran.items() if v == min(ran.values())] if len(ran) == len(cs) else []
    m["log2_best_c"] = float(np.mean(np.log2(fastest))) if fastest else nan
    m["adaptive_speedup"] = _median_step(group, "emb-add-random-cadapt", "step_test") / m["step_test_add_c1"]
    # ranks and Fourier sparsity at the end (add, c = 1 and c_hi)
    for c in (1.0, c_hi):
        name = f"emb-add-random-{_cname(c)}"
        rows = [r for r in group if _has(r, name, "rank_E")]
        for k in ("rank_E", "rank_W", "rank_EW"):
            m[f"{k}_final_c{c:g}"] = float(np.median([r[name][k][-1] for r in rows])) if rows else nan
        fours = [r[name]["fourier"] for r in group if _has(r, name, "fourier")]
        m[f"fourier_top5_c{c:g}"] = float(np.median([np.sort(f[1:])[-5:].sum() for f in fours])) if fours else nan
    return m


def _rate(perf: list[dict], tag: str, steps: str) -> float:
    """Mean over seeds of steps per wall second of the training steps (forward, backward, Adam)."""
    return float(np.mean([float(q[tag][steps] / q[tag]["train_seconds"]) for q in perf]))


def evaluate(ctx: StageContext) -> None:
    """Medians over seeds (every seed's runs, none pooled: a run's curve ends where it stopped),
    per-seed values beside them; the runs table; every seed's curves for the figures."""
    s: GrokkingSettings = ctx.settings
    seed_runs = ctx.runs()
    group, perf = [r["runs"] for r in seed_runs], [r["perf"] for r in seed_runs]
    metrics = across_seeds(lambda g: compute_metrics(g, s), [[r] for r in group], group)
    names = sorted(set().union(*group))
    table, curves = [], {}
    for name in names:
        have = [(seed, r[name]) for seed, r in zip(ctx.seeds, group, strict=True) if name in r]
        ran = [{name: r} for _, r in have]
        table.append({
            "run": name, "seeds": len(have),
            "step_train99": _median_step(ran, name, "step_train"),
            "step_test95": _median_step(ran, name, "step_test"),
            "reached_test95": sum(not np.isnan(float(r["step_test"])) for _, r in have),
            "final_train_acc": float(np.median([r["train_acc"][-1] for _, r in have])),
            "final_test_acc": float(np.median([r["test_acc"][-1] for _, r in have])),
        })
        curves[name] = {}
        for seed, r in have:
            c = {k: r[k].tolist() for k in ("steps", "train_acc", "test_acc")}
            for k in ("diag_steps", "hess_E", "hess_W", "rank_E", "rank_W", "rank_EW", "fourier", "fourier_init",
                      "norms", "norms_init", "freq", "c_t"):
                if k in r:
                    c[k] = r[k].tolist()
            curves[name][str(seed)] = c
    tags = sorted({tag for q in perf for tag in q if isinstance(q[tag], dict)})
    model_steps = sum(float(q[tag]["model_steps"]) for q in perf for tag in tags if tag in q)
    train_seconds = sum(float(q[tag]["train_seconds"]) for q in perf for tag in tags if tag in q)
    performance = {
        "model_steps_per_second": model_steps / train_seconds,
        "embedding_model_steps_per_second": _rate(perf, "emb", "model_steps"),
        "embedding_stack_steps_per_second": _rate(perf, "emb", "steps"),
        "no_embedding_model_steps_per_second": _rate(perf, "noemb", "model_steps"),
        **{f"{tag}_model_steps_per_second": _rate(perf, tag, "model_steps") for tag in tags
           if tag not in ("emb", "noemb") and all(tag in q for q in perf)},
        "model_steps_per_cpu_second": model_steps / sum(float(q["cpu_seconds"]) for q in perf),
        "train_seconds_per_seed": float(np.mean([float(q["wall_seconds"]) for q in perf])),
        "cpu_seconds_per_seed": float(np.mean([float(q["cpu_seconds"]) for q in perf])),
        "model_steps_total": model_steps,
    }
    write_metrics(ctx, metrics, {"runs": table, "curves": curves}, performance)
    write_table(ctx.tables_dir / "runs", table, caption="Grokking runs: median steps to 99% train / 95% test accuracy")
    log(f"wrote {ctx.metrics_path}")


def figure_inputs(ctx: StageContext) -> dict:
    """The figures draw from metrics.json alone (details.curves: every run of every seed)."""
    return {}
