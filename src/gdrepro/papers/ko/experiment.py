"""KO experiments: prepare -> train (one job per seed) -> evaluate -> figures.

Tasks (``settings.tasks``): ``mlp`` and ``cnn`` on MNIST-1D (procedural), ``text`` (a synthetic
7-intent token-sequence task standing in for Snips/IMDB); at paper scale ``cifar10``/``cifar100``
(ResNet-18) and ``imdb`` from user-supplied files. Every task trains paired arms: the same
initialisation and the same mini-batches for the base optimizer and for KO, so differences are
paired. Arms (see :func:`arms`):

- small initialisation (all weights x ``init_scale``), the regime of the paper's condensation
  analysis, where many row pairs collide: base vs KO, SGD and Adam, KO readings soft/thresh
  (primary), soft/thresh with coefficient 1, soft/mean, hard, and the literal soft/sum (a stress
  test); condensation and accuracy are judged here;
- standard (PyTorch default) initialisation, where few pairs collide: base vs KO, the same two
  judgements;
- a coll_coef sweep of soft/thresh KO on SGD at small initialisation (MLP);

plus, per seed, exactness checks of the method and interleaved step-time benchmarks: the MNIST-1D
MLP, and ResNet-18's layer sizes at the paper's batch (forward/backward and the optimizer step).
Every KO arm records the share of row pairs that collide (:class:`method.CollisionCounter`).

Training a seed takes hours at paper scale (ResNet-18 on CIFAR), so it checkpoints
(:mod:`gdrepro.checkpoint`): every ``CHECKPOINT_EVERY[scale]`` steps of an arm and after each arm,
with the finished arms' results, the arm in progress (model, optimizer, scheduler, batch generator,
torch's global RNG, curves so far, elapsed seconds), and resumes from there bit for bit.

Only the training stage (:func:`run_seed` and the functions it calls) uses torch, and imports it
(and :mod:`.method`, :mod:`.models`) inside those functions: prepare, evaluate and figures start
without it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from gdrepro import checkpoint, datasets, runs
from gdrepro.errors import GdreproError
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.ko import data as D
from gdrepro.runtime import device, log, rng, seed_sequence
from gdrepro.tables import write_table

if TYPE_CHECKING:
    import torch

MNIST_TASKS, TEXT_TASKS, IMAGE_TASKS = ("mlp", "cnn"), ("text", "imdb"), ("cifar10", "cifar100")
ALL_TASKS = MNIST_TASKS + TEXT_TASKS + IMAGE_TASKS


@dataclass(frozen=True)
class KOSettings:
    """Numbers of one scale; scales change these, never the code path."""

    tasks: tuple[str, ...]
    mnist_samples: int  # MNIST-1D samples (80% train, 20% test)
    steps: int  # training steps, MNIST-1D tasks
    text_train: int
    text_test: int
    text_steps: int
    image_steps: int = 0  # CIFAR (paper scale)
    batch: int = 128
    evals: int = 11  # correlation / loss checkpoints along training
    init_scale: float = 0.05  # small initialisation: default init x init_scale
    lr_sgd: float = 0.05
    momentum: float = 0.9
    lr_adam: float = 1e-3
    gamma: float = 0.5  # main KO: soft collision, thresh normalisation
    gamma_mean: float = 1.0
    gamma_hard: float = 0.5
    gamma_sum: float = 0.1  # the literal unnormalised formula (stress test)
    sweep: tuple[float, ...] = (0.1, 0.3, 0.7, 0.9)
    unit_coef: float = 1.0  # second reading: gamma_c only the threshold, Delta G enters with this coefficient
    cosine: bool = False  # cosine learning-rate decay over the run
    timing_rounds: int = 5
    timing_steps: int = 20
    exact_steps: int = 20
    resnet_width: int = 64  # ResNet-18 step timing: base width (64 = the paper's ResNet-18)
    resnet_batch: int = 128  # images per timed ResNet-18 iteration (CIFAR batch, our reading)
    resnet_rounds: int = 1  # interleaved timing rounds per seed
    data_root: str = ""  # paper scale: folder with cifar-10-batches-py/, cifar-100-python/, aclImdb/

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(ALL_TASKS)
        if unknown or "mlp" not in self.tasks:
            raise ValueError(f"tasks={self.tasks} must include 'mlp' and lie in {ALL_TASKS}")
        if min(self.steps, self.text_steps, self.batch, self.timing_rounds, self.timing_steps) < 1:
            raise ValueError("steps, batch and timing sizes must be positive")
        if self.evals < 2 or not 0 < self.init_scale <= 1:
            raise ValueError(f"need evals >= 2 and 0 < init_scale <= 1, got {self.evals}, {self.init_scale}")
        if any(not 0 < g <= 1 for g in (self.gamma, self.gamma_hard, *self.sweep)):
            raise ValueError("thresh / hard coll_coef values must lie in (0, 1]")


SETTINGS = {
    "smoke": KOSettings(tasks=("mlp", "cnn", "text"), mnist_samples=600, steps=30, text_train=300,
                        text_test=200, text_steps=20, batch=32, evals=3, sweep=(), timing_rounds=3,
                        timing_steps=5, exact_steps=10, resnet_width=8, resnet_batch=8),
    "default": KOSettings(tasks=("mlp", "cnn", "text"), mnist_samples=10_000, steps=1500, text_train=4000,
                          text_test=2000, text_steps=600),
    "paper": KOSettings(tasks=("mlp", "cnn", "text", "cifar10", "cifar100", "imdb"), mnist_samples=10_000,
                        steps=3000, text_train=8000, text_test=4000, text_steps=1500, image_steps=39_100,
                        lr_sgd=0.1, cosine=True),  # CIFAR: 100 epochs of 391 batches, initial LR 0.1
}

CHECKPOINT_EVERY = {"smoke": 10, "default": 500, "paper": 1955}
"""Training steps of an arm between checkpoints (paper scale: 5 CIFAR epochs), and after every arm.
Not a setting: how often a run saves its state changes no number (metrics.json keeps the settings)."""


@dataclass(frozen=True)
class Arm:
    """One training run: task, initialisation, base optimizer and KO variant (None = base alone)."""

    task: str
    init: str  # "small" | "standard"
    base: str  # "sgd" | "adam"
    variant: str  # "base" | "ko" | "ko_unit" | "ko_mean" | "ko_hard" | "ko_sum" | "ko_g<gamma>"
    mode: str = "soft"
    normalize: str = "thresh"
    gamma: float = 0.0
    coef: float | None = None  # coefficient of Delta G when it is not gamma (the "ko_unit" reading)

    @property
    def name(self) -> str:
        return f"{self.task}-{self.init}-{self.base}-{self.variant}"

    @property
    def family(self) -> str:
        """MLflow method name: "base" (the base optimizers) or "ko" (every KO variant)."""
        return "base" if self.variant == "base" else "ko"


def arms(s: KOSettings) -> list[Arm]:
    """Every training run of one seed at settings ``s`` (paired: same init and batches per task/init)."""
    ko = {
        "base": ("soft", "thresh", 0.0, None),
        "ko": ("soft", "thresh", s.gamma, None),
        "ko_unit": ("soft", "thresh", s.gamma, s.unit_coef),
        "ko_mean": ("soft", "mean", s.gamma_mean, None),
        "ko_hard": ("hard", "thresh", s.gamma_hard, None),
        "ko_sum": ("soft", "sum", s.gamma_sum, None),
    }
    plan: list[tuple[str, str, str, str]] = []
    for task in s.tasks:
        if task == "mlp":
            plan += [("mlp", "small", "sgd", v) for v in ("base", "ko", "ko_mean", "ko_hard", "ko_sum", "ko_unit")]
            plan += [("mlp", "small", "adam", v) for v in ("base", "ko", "ko_mean")]
            plan += [("mlp", "standard", "sgd", v) for v in ("base", "ko", "ko_hard", "ko_unit", "ko_mean")]
            plan += [("mlp", "standard", "adam", v) for v in ("base", "ko")]
        elif task == "cnn":
            plan += [("cnn", init, "sgd", v) for init in ("small", "standard") for v in ("base", "ko")]
        else:  # text and paper-scale tasks: accuracy at standard init, both bases
            plan += [(task, "standard", b, v) for b in ("sgd", "adam") for v in ("base", "ko")]
    out = [Arm(t, i, b, v, *ko[v]) for t, i, b, v in plan]
    out += [Arm("mlp", "small", "sgd", f"ko_g{g:g}", "soft", "thresh", g) for g in s.sweep]
    return out


# --- data ------------------------------------------------------------------------------------


def load_task_data(task: str, s: KOSettings, dev: str) -> dict:
    """Tensors x, y, x_test, y_test on ``dev`` plus the numbers the model needs."""
    import torch

    if task in MNIST_TASKS:
        raw = datasets.mnist1d(s.mnist_samples)
        info = {"classes": 10, "length": raw["x"].shape[1]}
    elif task == "text":
        raw = D.synthetic_text(s.text_train, s.text_test, rng("ko", "text-data"))
        info = {"classes": 7, "vocab": 500}
    elif task == "imdb":
        raw = D.imdb(datasets.external_root(s.data_root))
        info = {"classes": 2, "vocab": int(raw["x"].max()) + 1}
    else:
        raw = datasets.cifar(task, datasets.external_root(s.data_root))
        mean = raw["x"].reshape(-1, 3, 1024).mean(axis=(0, 2)) / 255
        std = raw["x"].reshape(-1, 3, 1024).std(axis=(0, 2)) / 255
        for key in ("x", "x_test"):
            raw[key] = ((raw[key] / 255.0 - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
        info = {"classes": 100 if task == "cifar100" else 10}
    tensors = {k: torch.as_tensor(v, device=dev) for k, v in raw.items()}
    return {**tensors, **info, "n": int(raw["y"].shape[0])}


def build_model(task: str, d: dict) -> torch.nn.Module:
    from gdrepro.nn import ResNet18
    from gdrepro.papers.ko import models

    if task == "mlp":
        return models.mlp(d["length"], 128, d["classes"])
    if task == "cnn":
        return models.CNN1d(d["length"], d["classes"])
    if task in TEXT_TASKS:
        return models.BagOfEmbeddings(d["vocab"], d["classes"])
    return ResNet18(d["classes"])


def task_steps(task: str, s: KOSettings) -> int:
    return s.steps if task in MNIST_TASKS else s.text_steps if task in TEXT_TASKS else s.image_steps


def make_optimizer(arm: Arm, model: torch.nn.Module, s: KOSettings, seed: int) -> torch.optim.Optimizer:
    from gdrepro.papers.ko import method as M

    # fused Adam/AdamW: torch's fused kernel takes an exact square root, the same on every CPU
    kwargs = {"lr": s.lr_sgd, "momentum": s.momentum} if arm.base == "sgd" else {"lr": s.lr_adam, "fused": True}
    if arm.variant == "base":
        return M.BASES[arm.base](model.parameters(), **kwargs)
    hard_seed = int(seed_sequence("ko", "hard", arm.name, seed).generate_state(1)[0])
    return M.KO(model.parameters(), base=arm.base, coll_coef=arm.gamma, mode=arm.mode,
                normalize=arm.normalize, seed=hard_seed, coef=arm.coef, **kwargs)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """CIFAR augmentation: random horizontal flip and random 32x32 crop of the 4-padded image."""
    import torch
    from torch.nn import functional as F

    n = x.shape[0]
    flip = torch.rand(n, generator=g, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (4, 4, 4, 4))
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=g, device=x.device))
    return padded[..., dy : dy + 32, dx : dx + 32]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i : i + chunk]).argmax(1) == y[i : i + chunk]).sum()) for i in range(0, len(y), chunk))
    model.train()
    return hits / len(y)


def _rng_state() -> dict:
    """torch's global RNG states (CPU and every GPU)."""
    import torch

    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["cpu"].cpu())
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def train_arm(arm: Arm, d: dict, ctx: StageContext, dev: str, save: Callable[[dict], None] | None = None,
              resume: dict | None = None) -> dict[str, np.ndarray]:
    """Train one arm; returns final test accuracy, loss and correlation curves, seconds per step.

    Every ``CHECKPOINT_EVERY[ctx.scale]`` steps, ``save`` gets the arm's state (model, optimizer,
    scheduler, batch generator, torch's RNG, curves so far); ``resume``, such a state, continues
    the arm from there with the same bits as an uninterrupted run.
    """
    import torch
    from torch.nn import functional as F

    from gdrepro.papers.ko import method as M

    s: KOSettings = ctx.settings
    steps = task_steps(arm.task, s)
    torch.manual_seed(int(seed_sequence("ko", "init", arm.task, arm.init, ctx.seed).generate_state(1)[0]))
    model = build_model(arm.task, d).to(dev)
    if arm.init == "small":
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(s.init_scale)
    opt = make_optimizer(arm, model, s, ctx.seed)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if s.cosine else None
    batches = ctx.torch_generator("batches", arm.task, device=dev)  # same for every arm
    marks = np.unique(np.linspace(0, steps, s.evals).round().astype(int))
    corr, losses, running, count, seconds, first = [], [], 0.0, 0, 0.0, 0
    collisions = []  # (hits, pairs) of the KO counter at each mark (nan for a base optimizer)
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        if sched is not None:
            sched.load_state_dict(resume["scheduler"])
        batches.set_state(resume["batches"].cpu())
        _set_rng_state(resume["rng"])
        corr, losses, running, count = list(resume["corr"]), list(resume["losses"]), resume["running"], resume["count"]
        collisions = list(resume["collisions"])
        seconds, first = resume["seconds"], resume["step"]
    every = CHECKPOINT_EVERY[ctx.scale]
    start = time.perf_counter()
    for k in range(first, steps + 1):
        if save is not None and first < k < steps and k % every == 0:
            paused = time.perf_counter()
            save({"step": k, "model": model.state_dict(), "optimizer": opt.state_dict(),
                  "scheduler": None if sched is None else sched.state_dict(), "batches": batches.get_state(),
                  "rng": _rng_state(), "corr": corr, "losses": losses, "running": running, "count": count,
                  "collisions": collisions, "seconds": seconds + paused - start})
            start += time.perf_counter() - paused  # saving is not training time
        if k in marks:
            corr.append(M.layer_correlations(model))
            losses.append(running / max(count, 1) if k else float("nan"))
            collisions.append(opt.collisions.state() if isinstance(opt, M.KO) else (float("nan"),) * 2)
            running, count = 0.0, 0
        if k == steps:
            break
        idx = torch.randint(0, d["n"], (s.batch,), generator=batches, device=dev)
        x = d["x"][idx]
        if arm.task in IMAGE_TASKS:
            x = _augment(x, batches)
        loss = F.cross_entropy(model(x), d["y"][idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        running, count = running + loss.item(), count + 1
    seconds += time.perf_counter() - start
    rate, curve = collision_rates(collisions)
    return {
        "acc": np.array(accuracy(model, d["x_test"], d["y_test"])),
        "train_acc": np.array(accuracy(model, d["x"][:2000], d["y"][:2000])),
        "corr": np.array(corr, dtype=float),  # (evals, layers)
        "loss": np.array(losses, dtype=float),
        "collision_rate": np.array(rate),  # share of row pairs that collided over the whole run
        "collision_curve": curve,  # the same between consecutive marks
        "marks": marks,
        "sec_per_step": np.array(seconds / steps),
    }


def collision_rates(counts: list[tuple[float, float]]) -> tuple[float, np.ndarray]:
    """From the KO counter's cumulative (hits, pairs) at each mark: the share of colliding pairs
    over the whole run and between consecutive marks (nan for a base optimizer or an empty span)."""
    hits, pairs = np.array(counts, dtype=float).reshape(-1, 2).T
    with np.errstate(invalid="ignore", divide="ignore"):
        total = hits[-1] / pairs[-1] if pairs[-1] > 0 else np.nan
        span = np.diff(pairs)
        return float(total), np.where(span > 0, np.diff(hits) / np.where(span > 0, span, 1), np.nan)


# --- exactness and timing (per seed) ------------------------------------------------------------


def exactness(ctx: StageContext, d: dict, dev: str) -> dict[str, np.ndarray]:
    """Checks of the method itself on this seed's numbers (claim C4 and the hard-collision laws)."""
    import torch
    from torch.nn import functional as F

    from gdrepro.papers.ko import method as M

    s: KOSettings = ctx.settings
    seed = ctx.seed
    out = {}
    diffs = []
    for base in ("sgd", "adam"):
        params = []
        for use_ko in (False, True):
            torch.manual_seed(int(seed_sequence("ko", "exact", seed).generate_state(1)[0]))
            model = build_model("mlp", d).to(dev)
            arm = Arm("mlp", "standard", base, "ko" if use_ko else "base", "soft", "mean", 0.0)
            opt = make_optimizer(arm, model, s, seed)
            g = ctx.torch_generator("exact-batches", device=dev)
            for _ in range(s.exact_steps):
                idx = torch.randint(0, d["n"], (s.batch,), generator=g, device=dev)
                opt.zero_grad()
                F.cross_entropy(model(d["x"][idx]), d["y"][idx]).backward()
                opt.step()
            params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        diffs.append(float((params[0] - params[1]).abs().max()))
    out["exact_max_abs_diff"] = np.array(max(diffs))

    g = ctx.torch_generator("closed-form")
    errors = []
    for normalize in ("mean", "sum"):
        for _ in range(50):
            w, grad = torch.randn(2, 16, generator=g, dtype=torch.float64), torch.randn(2, 16, generator=g, dtype=torch.float64)
            gamma = float(torch.rand(1, generator=g, dtype=torch.float64))
            new = M.soft_collision(w, grad, gamma, normalize)
            k = M.collision_kernel(w, grad)[0, 1]
            expect = (1 + gamma * k) * (grad[0] - grad[1])
            errors.append(float((new[0] - new[1] - expect).norm() / (grad[0] - grad[1]).norm()))
    out["two_row_rel_error"] = np.array(max(errors))

    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=g, dtype=torch.float64))
    grad = torch.randn(32, 32, generator=g, dtype=torch.float64)
    out["orthogonal_max_term"] = np.array(
        max(float((M.soft_collision(q, grad, 1.0, n) - grad).abs().max()) for n in M.NORMALIZE)
    )

    w, grad = torch.randn(64, 20, generator=g, dtype=torch.float64), torch.randn(64, 20, generator=g, dtype=torch.float64)
    new = M.hard_collision(w * 0.01, grad, 1.0, g)  # coll_coef 1: every pair collides
    out["hard_momentum_rel_error"] = np.array(float((new.sum(0) - grad.sum(0)).norm() / grad.norm()))
    out["hard_energy_rel_error"] = np.array(abs(float((new**2).sum() / (grad**2).sum()) - 1))
    out["hard_changed_fraction"] = np.array(float((new != grad).any(dim=1).double().mean()))
    return out


def step_timing(ctx: StageContext, d: dict, dev: str) -> dict[str, np.ndarray]:
    """Seconds per training iteration (forward, backward, step) of base and KO, MLP, interleaved
    rounds so that machine load hits every variant alike; the median round counts."""
    import torch
    from torch.nn import functional as F

    s: KOSettings = ctx.settings
    seed = ctx.seed
    variants = [Arm("mlp", "standard", b, v, m, "thresh", gm) for b, v, m, gm in (
        ("sgd", "base", "soft", 0.0), ("sgd", "ko", "soft", s.gamma), ("sgd", "ko_hard", "hard", s.gamma_hard),
        ("adam", "base", "soft", 0.0), ("adam", "ko", "soft", s.gamma))]
    setups = []
    for arm in variants:
        torch.manual_seed(seed)
        model = build_model("mlp", d).to(dev)
        setups.append((arm, model, make_optimizer(arm, model, s, seed)))
    g = ctx.torch_generator("timing", device=dev)
    times = np.zeros((s.timing_rounds, len(setups)))
    for r in range(s.timing_rounds):
        for j, (_, model, opt) in enumerate(setups):
            idx = torch.randint(0, d["n"], (s.timing_steps, s.batch), generator=g, device=dev)
            if dev == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(s.timing_steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(d["x"][idx[i]]), d["y"][idx[i]]).backward()
                opt.step()
            if dev == "cuda":
                torch.cuda.synchronize()
            times[r, j] = (time.perf_counter() - start) / s.timing_steps
    med = np.median(times, axis=0)
    return {f"{a.base}_{a.variant}": np.array(t) for (a, _, _), t in zip(setups, med, strict=True)}


def _seconds(fn: Callable[[], object], dev: str) -> float:
    import torch

    if dev == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if dev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def resnet_timing(ctx: StageContext, dev: str) -> dict[str, np.ndarray]:
    """Seconds of a ResNet-18 training iteration at the paper's layer sizes (conv kernels as rows:
    N = out-channels up to 512, D = in-channels x 3 x 3 up to 4608) and batch: forward and backward
    once per round, then each optimizer's step (base, KO soft/thresh, KO hard) on the same
    gradients, so that KO's overhead on a full iteration is (fb + KO step) / (fb + base step).
    Random CIFAR-shaped inputs (the time does not depend on the values); median over rounds."""
    import torch
    from torch.nn import functional as F

    from gdrepro.nn import ResNet18

    s: KOSettings = ctx.settings
    torch.manual_seed(ctx.seed)
    model = ResNet18(10, width=s.resnet_width).to(dev)
    g = ctx.torch_generator("resnet-timing", device=dev)
    x = torch.randn(s.resnet_batch, 3, 32, 32, generator=g, device=dev)
    y = torch.randint(0, 10, (s.resnet_batch,), generator=g, device=dev)
    variants = {"sgd_base": ("sgd", "base", "soft", 0.0), "sgd_ko": ("sgd", "ko", "soft", s.gamma),
                "sgd_ko_hard": ("sgd", "ko_hard", "hard", s.gamma_hard), "adam_base": ("adam", "base", "soft", 0.0),
                "adam_ko": ("adam", "ko", "soft", s.gamma)}
    opts = {k: make_optimizer(Arm("cifar10", "standard", b, v, m, "thresh", gm), model, s, ctx.seed)
            for k, (b, v, m, gm) in variants.items()}

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    times: dict[str, list[float]] = {"fwd_bwd": [], **{k: [] for k in opts}}
    for _ in range(s.resnet_rounds):
        times["fwd_bwd"].append(_seconds(forward_backward, dev))
        grads = [p.grad.clone() for p in model.parameters()]
        for name, opt in opts.items():
            for p, grad in zip(model.parameters(), grads, strict=True):
                p.grad.copy_(grad)  # KO overwrites the gradient: every optimizer steps on the same one
            times[name].append(_seconds(opt.step, dev))
    return {k: np.array(float(np.median(v))) for k, v in times.items()}


# --- stages -----------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    """The arms of this scale; at paper scale, check that the public datasets are present."""
    s: KOSettings = ctx.settings
    for task in s.tasks:
        if task in IMAGE_TASKS:
            root = datasets.external_root(s.data_root) / datasets.CIFAR[task][0]
            if not root.is_dir():
                folder, _, _, _, url = datasets.CIFAR[task]
                raise GdreproError(f"{task}: missing {root}; " + datasets.CIFAR_HELP.format(url=url, root=root.parent, folder=folder))
        if task == "imdb" and not (datasets.external_root(s.data_root) / "aclImdb").is_dir():
            D.imdb(datasets.external_root(s.data_root))  # raises the one-line error with instructions
    ctx.write_prepared({"arms": [asdict(a) | {"name": a.name} for a in arms(s)],
                        "steps": {t: task_steps(t, s) for t in s.tasks}})


MAX_OVER_SEEDS = ("exact_max_abs_diff", "two_row_rel_error", "orthogonal_max_term", "hard_momentum_rel_error",
                  "hard_energy_rel_error")
"""Exactness errors pool to the worst seed; every other quantity to the mean over seeds."""


def _save_progress(path, done: dict, name: str | None, state: dict | None = None) -> None:
    """Checkpoint: the finished arms' results and, if ``name``, that arm's state in progress."""
    checkpoint.save(path, {"done": done, "arm": None if name is None else {"name": name, **state}})


def run_seed(ctx: StageContext) -> dict:
    """Every arm for this seed (one MLflow run per optimizer variant), exactness and timing;
    resumes from this seed's checkpoint if a previous run was interrupted."""
    s: KOSettings = ctx.settings
    dev = device()
    plan = arms(s)
    cache: dict[str, dict] = {}

    def task_data(task: str) -> dict:
        if task not in cache:
            key = "mnist1d" if task in MNIST_TASKS else task
            cache[task] = cache.get(key) or load_task_data(task, s, dev)
            cache[key] = cache[task]
        return cache[task]

    saved = checkpoint.load(ctx.checkpoint_path) or {"done": {}, "arm": None}
    done: dict[str, dict[str, np.ndarray]] = saved["done"]
    current = saved["arm"]
    if done or current:
        ctx.log(f"resuming from {ctx.checkpoint_path}: {len(done)} arms done"
                + (f", {current['name']} at step {current['step']}" if current else ""))
    trained: dict[str, dict] = {}
    for family in dict.fromkeys(a.family for a in plan):
        with ctx.tracked_run(family) as run:
            for arm in (a for a in plan if a.family == family):
                if arm.name not in done:
                    resume = current if current is not None and current["name"] == arm.name else None
                    save = functools.partial(_save_progress, ctx.checkpoint_path, done, arm.name)
                    done[arm.name] = train_arm(arm, task_data(arm.task), ctx, dev, save, resume)
                    _save_progress(ctx.checkpoint_path, done, None)
                result = done[arm.name]
                log(f"seed {ctx.seed} {arm.name}: test acc {float(result['acc']):.3f}, "
                    f"corr {result['corr'][-1].mean():.3f}, {1e3 * float(result['sec_per_step']):.2f} ms/step")
                trained[arm.name] = {k: runs.mean(v) for k, v in result.items()}
                run.log_curve(f"{arm.name}.weight_correlation", result["marks"], result["corr"].mean(axis=1))
                run.log_metrics({f"{arm.name}.test_accuracy": float(result["acc"])})
    exact = exactness(ctx, task_data("mlp"), dev)
    timing = step_timing(ctx, task_data("mlp"), dev)
    resnet = resnet_timing(ctx, dev)
    return {
        "arms": trained,
        "exactness": {k: runs.worst(v) if k in MAX_OVER_SEEDS else runs.mean(v) for k, v in exact.items()},
        "timing": {k: runs.mean(v) for k, v in timing.items()},  # seconds per iteration, per optimizer
        "resnet_timing": {k: runs.mean(v) for k, v in resnet.items()},  # seconds: fwd_bwd, each step
    }


def _pair(task: str, init: str, base: str, variant: str = "ko") -> tuple[str, str]:
    """(KO arm, its paired base arm): same task, initialisation and base optimizer."""
    return f"{task}-{init}-{base}-{variant}", f"{task}-{init}-{base}-base"


_READINGS = {"": "ko", "_unit": "ko_unit", "_mean": "ko_mean", "_hard": "ko_hard"}
CORR_PAIRS = {  # metric suffix -> (KO arm, base arm); "std_": standard initialisation, else small
    "mlp_sgd": _pair("mlp", "small", "sgd"),
    "mlp_adam": _pair("mlp", "small", "adam"),
    "mlp_sgd_mean": _pair("mlp", "small", "sgd", "ko_mean"),
    "mlp_adam_mean": _pair("mlp", "small", "adam", "ko_mean"),
    "mlp_sgd_hard": _pair("mlp", "small", "sgd", "ko_hard"),
    "mlp_sgd_unit": _pair("mlp", "small", "sgd", "ko_unit"),
    "cnn_sgd": _pair("cnn", "small", "sgd"),
    **{f"std_mlp_sgd{r}": _pair("mlp", "standard", "sgd", v) for r, v in _READINGS.items()},
    "std_mlp_adam": _pair("mlp", "standard", "adam"),
    "std_cnn_sgd": _pair("cnn", "standard", "sgd"),
}
ACC_PAIRS = {  # metric suffix -> (KO arm, base arm); "small_": small initialisation, else standard
    **{f"mlp_sgd{r}": _pair("mlp", "standard", "sgd", v) for r, v in _READINGS.items()},
    "mlp_adam": _pair("mlp", "standard", "adam"),
    "cnn_sgd": _pair("cnn", "standard", "sgd"),
    **{f"{t}_{b}": _pair(t, "standard", b) for t in ("text", *IMAGE_TASKS, "imdb") for b in ("sgd", "adam")},
    **{f"small_mlp_sgd{r}": _pair("mlp", "small", "sgd", v) for r, v in _READINGS.items()},
    "small_mlp_adam": _pair("mlp", "small", "adam"),
    "small_mlp_adam_mean": _pair("mlp", "small", "adam", "ko_mean"),
    "small_cnn_sgd": _pair("cnn", "small", "sgd"),
}


TIMING_PAIRS = {"sgd": ("sgd_ko", "sgd_base"), "adam": ("adam_ko", "adam_base"), "sgd_hard": ("sgd_ko_hard", "sgd_base")}


def compute_metrics(run: dict) -> dict[str, float]:
    """Every number the claims need, from one seed's run or the pooled run (nan: arm not run)."""
    nan = float("nan")
    trained = run["arms"]

    def corr(arm: str) -> float:
        return float(trained[arm]["corr"][-1].mean()) if arm in trained else nan

    def acc(arm: str) -> float:
        return 100 * float(trained[arm]["acc"]) if arm in trained else nan

    m = {f"corr_ratio_{k}": corr(a) / corr(b) for k, (a, b) in CORR_PAIRS.items()}
    m |= {f"corr_base_{k}": corr(b) for k, (_, b) in CORR_PAIRS.items()}
    m |= {f"acc_diff_{k}": acc(a) - acc(b) for k, (a, b) in ACC_PAIRS.items()}
    m |= {f"acc_base_{k}": acc(b) for k, (_, b) in ACC_PAIRS.items()}
    loss = trained["mlp-small-sgd-ko_sum"]["loss"][-1]
    m["sum_unstable"] = float(not np.isfinite(loss) or loss > np.log(10))  # no better than chance
    m["sum_acc"] = acc("mlp-small-sgd-ko_sum")
    for name in ("exact_max_abs_diff", "two_row_rel_error", "orthogonal_max_term", "hard_momentum_rel_error",
                 "hard_energy_rel_error", "hard_changed_fraction"):
        m[name] = float(run["exactness"][name])
    t, r = run["timing"], run["resnet_timing"]
    for name, (ko, base) in TIMING_PAIRS.items():
        m[f"step_time_ratio_{name}"] = float(t[ko] / t[base])  # MNIST-1D MLP iterations
        # one ResNet-18 iteration: the same forward/backward, then the KO or the base step
        m[f"step_time_ratio_resnet18_{name}"] = float((r["fwd_bwd"] + r[ko]) / (r["fwd_bwd"] + r[base]))
    m |= {f"collision_rate_{name.replace('-', '_')}": float(arm["collision_rate"])
          for name, arm in trained.items() if not name.endswith("-base")}
    return m


def _finite_list(x: np.ndarray) -> list[float | None]:
    """A curve for JSON: non-finite points (a diverged run, the loss before step 0) become null."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(x, dtype=float)]


def _seed_band(per_seed: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise two-sided 95% Student-t interval of the mean over seeds (axis 0)."""
    from gdrepro.verdicts import seed_interval

    x = np.asarray(per_seed, dtype=float)
    est = [seed_interval(list(col)) for col in x.T]
    return (np.array([np.nan if e.low is None else e.low for e in est]),
            np.array([np.nan if e.high is None else e.high for e in est]))


def _arm_row(name: str, seed_runs: list[dict]) -> dict:
    """One arm's row of the arms table: mean and sd over seeds."""
    def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
        v = np.array(values, dtype=float)
        return _finite_list([v.mean()])[0], (_finite_list([v.std(ddof=1)])[0] if len(v) > 1 else 0.0)

    acc, acc_sd = mean_sd([100 * float(r["arms"][name]["acc"]) for r in seed_runs])
    corr, corr_sd = mean_sd([float(r["arms"][name]["corr"][-1].mean()) for r in seed_runs])
    coll, coll_sd = mean_sd([100 * float(r["arms"][name]["collision_rate"]) for r in seed_runs])
    return {"arm": name, "test_acc": acc, "test_acc_sd": acc_sd, "weight_corr": corr, "weight_corr_sd": corr_sd,
            "collision_pct": coll, "collision_pct_sd": coll_sd}


def _paired(name: str, seed_runs: list[dict]) -> dict:
    """A KO arm against its base arm, paired per seed: the accuracy difference (points) and the
    final weight-correlation ratio, each as mean and 95% t-interval over seeds."""
    from gdrepro.verdicts import seed_interval

    base = name.rsplit("-", 1)[0] + "-base"
    out = {}
    for key, f in (("acc_diff", lambda r, a: 100 * float(r["arms"][a]["acc"])),
                   ("corr_ratio", lambda r, a: float(r["arms"][a]["corr"][-1].mean()))):
        ko, ref = [f(r, name) for r in seed_runs], [f(r, base) for r in seed_runs]
        per_seed = [k - b if key == "acc_diff" else k / b for k, b in zip(ko, ref, strict=True)]
        est = seed_interval(per_seed)
        out[key] = {"mean": est.mean, "low": est.low, "high": est.high, "n": est.n}
    return out


def evaluate(ctx: StageContext) -> None:
    prepared = ctx.read_prepared()
    seed_runs = ctx.runs()
    # per-seed sum_unstable indicators pool to the share of seeds that blew up
    pooled = ctx.pooled()
    metrics = across_seeds(compute_metrics, seed_runs, pooled)
    per_seed_unstable = metrics["sum_unstable"]["per_seed"]
    metrics["sum_unstable"]["value"] = float(np.mean(per_seed_unstable))
    table = [_arm_row(arm["name"], seed_runs) for arm in prepared["arms"]]
    curves = {}
    for arm in prepared["arms"]:
        name, mean = arm["name"], pooled["arms"][arm["name"]]
        low, high = _seed_band([r["arms"][name]["corr"].mean(axis=1) for r in seed_runs])
        curves[name] = {"steps": mean["marks"].tolist(),
                        "corr": _finite_list(mean["corr"].mean(axis=1)),
                        "corr_low": _finite_list(low), "corr_high": _finite_list(high),  # 95% over seeds
                        "loss": _finite_list(mean["loss"]),
                        "collision": _finite_list(mean["collision_curve"])}  # between marks: steps[1:]
    details = {
        "arms": table,
        "curves": curves,
        "paired": {a["name"]: _paired(a["name"], seed_runs) for a in prepared["arms"] if a["variant"] != "base"},
        "sweep": [{"gamma": a["gamma"], "name": a["name"]} for a in prepared["arms"]
                  if a["variant"].startswith("ko_g") or a["name"] in ("mlp-small-sgd-ko", "mlp-small-sgd-base")],
        "seeds": len(seed_runs),
    }
    performance = {f"ms_per_iteration_{k}": 1e3 * float(v) for k, v in pooled["timing"].items()}
    performance |= {f"ms_resnet18_{k}": 1e3 * float(v) for k, v in pooled["resnet_timing"].items()}
    performance |= {"steps_per_second_" + a["name"]: 1 / float(pooled["arms"][a["name"]]["sec_per_step"])
                    for a in prepared["arms"]}
    write_metrics(ctx, metrics, details, performance)
    write_table(ctx.tables_dir / "arms", table, caption="KO vs base per arm: test accuracy (%), final weight correlation "
                "and share of row pairs that collided (%), mean and sd over seeds")
    log(f"wrote {ctx.metrics_path}")


def figure_inputs(ctx: StageContext) -> dict:
    """The figures are drawn from metrics.json alone (the house passes ``metrics``)."""
    return {}
