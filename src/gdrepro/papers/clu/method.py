"""UG-CLU: a unified gradient-based framework for task-agnostic continual learning-unlearning
(Huang et al. 2025, arXiv:2505.15178), as a request-driven learner, with its baselines.

The paper's update for one request splits min KL(p(theta*) || p(theta_{k+1})) + rho(theta_k, theta_{k+1})/alpha_k
into four parts (paper, Sec. 3): a *learn* term (descent on the new data D_L), an *unlearn* term
(ascent on the unlearning data D_U), a *preserve* term (descent on the remaining data D_R) and a
weight-saliency modulation. Its three mechanisms, reconstructed from the note and the predecessor
SFR-on (same authors), are:

- balanced saliency mask  M = 1[F_U / F_R >= gamma], F = diagonal empirical Fisher (:func:`fisher_diag`,
  :func:`balanced_mask`);
- adaptive per-sample weights on the unlearn term  c_i = 1 / (l_i^lambda + 1e-15), normalised to sum to
  the batch size (:func:`adaptive_weights`);
- fast-slow updates for the remain-preserved manifold: a fast (masked) step, then the preserve gradient
  taken *at the fast weights*, grad L_R(theta + delta) ~ grad L_R(theta) + H_R delta, a first-order
  approximation of the (I + beta H_R)^{-1} compensation (:func:`run_phase`, ``fast_slow``).

Every method trains in lockstep inside one *stacked* model (leading model axis M; :class:`StackedMLP`
uses batched matmuls, :class:`StackedModule` wraps any ``nn.Module`` such as a ResNet-18), so all
approximate methods of a request cost one batched forward/backward per sub-step; Retrain for every
request of a sequence is one stacked run as well (:func:`retrain`).

The methods compared (as switches of this update), the request sequences and the scores of the
predictions are in :mod:`protocol`, without torch, so that the stages that do not train never load it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gdrepro.nn import portable_pow, portable_sqrt
from gdrepro.papers.clu.protocol import Method, Request

# --- stacked models -------------------------------------------------------------------------------


class StackedMLP:
    """M independent ReLU MLPs ``sizes[0]-...-sizes[-1]`` evaluated with batched matmuls.

    ``params`` alternate weights (M, fan_in, fan_out) and biases (M, 1, fan_out); initialisation is
    PyTorch's ``nn.Linear`` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from ``generator``.
    """

    def __init__(self, n_models: int, sizes: Sequence[int], generator: torch.Generator, device: str = "cpu"):
        self.n_models, self.sizes = n_models, tuple(sizes)
        self.params: list[torch.Tensor] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
            self.params += [torch.zeros(n_models, fan_in, fan_out, device=device),
                            torch.zeros(n_models, 1, fan_out, device=device)]
        self.reinit(torch.ones(n_models, dtype=torch.bool), generator)
        for p in self.params:
            p.requires_grad_(True)

    @torch.no_grad()
    def reinit(self, which: torch.Tensor, generator: torch.Generator) -> None:
        """Fresh initialisation of the models flagged in ``which`` (M,) bool."""
        for i, p in enumerate(self.params):
            bound = 1 / math.sqrt(self.sizes[i // 2])
            fresh = (torch.rand(p.shape, generator=generator, device="cpu").to(p.device) * 2 - 1) * bound
            p.copy_(torch.where(which.view(-1, 1, 1).to(p.device), fresh, p))

    def __call__(self, x: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        """x: (M, B, d) per-model batches or (B, d) shared; returns logits (M, B, C). With ``which``
        (indices of K models) only those models run, on x (K, B, d): logits (K, B, C)."""
        h = x
        n = len(self.params) // 2
        params = self.params if which is None else [p[which] for p in self.params]
        for i in range(n):
            h = torch.baddbmm(params[2 * i + 1], h, params[2 * i]) if h.dim() == 3 else \
                torch.matmul(h, params[2 * i]) + params[2 * i + 1]
            if i < n - 1:
                h = torch.relu(h)
        return h

    def train(self) -> None:
        pass

    def eval(self) -> None:
        pass

    @torch.no_grad()
    def repeat(self, k: int) -> None:
        """Every model becomes ``k`` identical copies, next to each other (model m -> m*k .. m*k+k-1)."""
        self.params = [p.detach().repeat_interleave(k, 0).requires_grad_(True) for p in self.params]
        self.n_models *= k

    def state(self, m: int) -> list[torch.Tensor]:
        return [p[m].detach().clone() for p in self.params]

    @torch.no_grad()
    def load(self, m: int, state: list[torch.Tensor]) -> None:
        for p, s in zip(self.params, state, strict=True):
            p[m].copy_(s)

    def state_dict(self) -> dict:
        """Every model's parameters (a checkpoint)."""
        return {"params": [p.detach().clone() for p in self.params]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for p, s in zip(self.params, state["params"], strict=True):
            p.copy_(s)


class StackedModule:
    """M copies of any ``nn.Module`` (e.g. a ResNet-18 at paper scale) with stacked parameters.

    ``sample_dims`` is the number of axes of one input (3 for images), so that (M, B, ...) per-model
    batches and (B, ...) shared batches can be told apart. The forward pass loops over models with
    ``torch.func.functional_call`` (BatchNorm statistics are kept per model); gradients reach the
    stacked leaves, so the learner treats it like :class:`StackedMLP`.
    """

    def __init__(self, make: Callable[[], nn.Module], n_models: int, generator: torch.Generator, device: str = "cpu",
                 sample_dims: int = 3):
        self.make, self.n_models, self.device, self.sample_dims = make, n_models, device, sample_dims
        self.template = make().to(device)
        self.names = [n for n, _ in self.template.named_parameters()]
        self.buffer_names = [n for n, _ in self.template.named_buffers()]
        self.params = [torch.zeros((n_models, *p.shape), device=device) for _, p in self.template.named_parameters()]
        self.buffers = [{n: b.clone() for n, b in self.template.named_buffers()} for _ in range(n_models)]
        self.reinit(torch.ones(n_models, dtype=torch.bool), generator)
        for p in self.params:
            p.requires_grad_(True)

    @torch.no_grad()
    def reinit(self, which: torch.Tensor, generator: torch.Generator) -> None:
        for m in np.flatnonzero(which.cpu().numpy()):
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                fresh = self.make().to(self.device)
            for p, (_, q) in zip(self.params, fresh.named_parameters(), strict=True):
                p[m].copy_(q)
            self.buffers[m] = {n: b.clone() for n, b in fresh.named_buffers()}

    def __call__(self, x: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        models = range(self.n_models) if which is None else which.tolist()
        if x.dim() == self.sample_dims + 1:  # shared batch (no model axis): give it one
            x = x.unsqueeze(0).expand(len(models), *x.shape)
        outs = []
        for k, m in enumerate(models):
            values = {n: p[m] for n, p in zip(self.names, self.params, strict=True)} | self.buffers[m]
            outs.append(torch.func.functional_call(self.template, values, (x[k],)))
        return torch.stack(outs)

    def train(self) -> None:
        self.template.train()

    @torch.no_grad()
    def repeat(self, k: int) -> None:
        """Every model becomes ``k`` identical copies, next to each other (model m -> m*k .. m*k+k-1)."""
        self.params = [p.detach().repeat_interleave(k, 0).requires_grad_(True) for p in self.params]
        self.buffers = [{n: b.clone() for n, b in bs.items()} for bs in self.buffers for _ in range(k)]
        self.n_models *= k

    def eval(self) -> None:
        self.template.eval()

    def state(self, m: int) -> list[torch.Tensor]:
        return [p[m].detach().clone() for p in self.params] + [b.clone() for b in self.buffers[m].values()]

    @torch.no_grad()
    def load(self, m: int, state: list[torch.Tensor]) -> None:
        k = len(self.params)
        for p, s in zip(self.params, state[:k], strict=True):
            p[m].copy_(s)
        self.buffers[m] = {n: s.clone() for n, s in zip(self.buffer_names, state[k:], strict=True)}

    def state_dict(self) -> dict:
        """Every model's parameters and buffers (BatchNorm statistics): a checkpoint."""
        return {"params": [p.detach().clone() for p in self.params],
                "buffers": [{n: b.clone() for n, b in bs.items()} for bs in self.buffers]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for p, s in zip(self.params, state["params"], strict=True):
            p.copy_(s)
        self.buffers = [{n: b.clone() for n, b in bs.items()} for bs in state["buffers"]]


# --- the pieces of the UG-CLU update ---------------------------------------------------------------


def per_sample_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample of (M, B, C) logits and (M, B) labels -> (M, B)."""
    m, b, c = logits.shape
    return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="none").view(m, b)


def adaptive_weights(losses: torch.Tensor, lam: float) -> torch.Tensor:
    """Adaptive per-sample weights c_i = 1 / (l_i^lambda + 1e-15), normalised over the batch (last
    axis) to sum to the batch size; samples already forgotten (large loss) get small weight."""
    c = 1.0 / (portable_pow(losses.detach().clamp_min(0), lam) + 1e-15)
    return c / c.sum(-1, keepdim=True) * losses.shape[-1]


def sample_batches(pools: torch.Tensor, lengths: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Indices (M, batch) drawn uniformly with replacement from each model's pool (padded (M, L))."""
    u = torch.rand(pools.shape[0], batch, generator=generator, device="cpu").to(pools.device)
    pos = (u * lengths.clamp_min(1)[:, None]).long().clamp_max(pools.shape[1] - 1)
    return torch.gather(pools, 1, pos)


def make_pools(index_sets: Sequence[np.ndarray], device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad per-model index arrays into (M, L) with their lengths (an empty pool gets length 0)."""
    width = max(1, max(len(s) for s in index_sets))
    pools = np.zeros((len(index_sets), width), dtype=np.int64)
    for m, s in enumerate(index_sets):
        if len(s):
            pools[m, : len(s)] = s
            pools[m, len(s):] = s[0]
    return torch.as_tensor(pools, device=device), torch.as_tensor([len(s) for s in index_sets], device=device)


def _per_model(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def clip_per_model(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Scale each model's gradient (over all its tensors) to norm <= max_norm."""
    norm = portable_sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads))
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return [g * _per_model(scale, g) for g in grads]


@torch.no_grad()
def sgd_step(params, grads, bufs, active: torch.Tensor, lr: float | torch.Tensor, momentum: float,
             weight_decay: float) -> None:
    """torch.optim.SGD (momentum, weight decay) applied only to the models flagged ``active``; ``lr``
    is one learning rate or one per model (M,)."""
    for p, g, b in zip(params, grads, bufs, strict=True):
        a = _per_model(active, p)
        b.copy_(a * (momentum * b + g + weight_decay * p) + (1 - a) * b)
        p.sub_((lr if isinstance(lr, float | int) else _per_model(lr, p)) * a * b)


def fisher_diag(model, x: torch.Tensor, y: torch.Tensor, pools: torch.Tensor, lengths: torch.Tensor,
                batch: int, max_batches: int, transform: Callable | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Diagonal empirical Fisher per model, as SFR-on computes it: the mean over mini-batches of the
    squared mini-batch gradient of the cross-entropy; also returns the mean gradient (for SalUn).

    Each model walks through its own pool in order (cycling where a pool is shorter than the others).
    """
    model.eval()
    n_batches = int(min(max_batches, max(1, math.ceil(int(lengths.max()) / batch))))
    sq = [torch.zeros_like(p) for p in model.params]
    mean = [torch.zeros_like(p) for p in model.params]
    for k in range(n_batches):
        pos = (k * batch + torch.arange(batch, device=pools.device))[None, :] % lengths.clamp_min(1)[:, None]
        idx = torch.gather(pools, 1, pos)
        xb = x[idx] if transform is None else transform(x[idx])
        loss = per_sample_ce(model(xb), y[idx]).mean(1)
        grads = torch.autograd.grad(loss.sum(), model.params)
        for s, mu, g in zip(sq, mean, grads, strict=True):
            s += g.detach() ** 2 / n_batches
            mu += g.detach() / n_batches
    model.train()
    return sq, mean


def balanced_mask(fisher_forget: list[torch.Tensor], fisher_remain: list[torch.Tensor], gamma: float) -> list[torch.Tensor]:
    """Forget-remain balanced saliency mask M = 1[(F_U + eps) / (F_R + eps) >= gamma] (eps = 1e-15)."""
    return [((fu + 1e-15) / (fr + 1e-15) >= gamma).float() for fu, fr in zip(fisher_forget, fisher_remain, strict=True)]


def salun_mask(forget_grad: list[torch.Tensor], keep: float = 0.5) -> list[torch.Tensor]:
    """SalUn's saliency mask: the ``keep`` fraction of weights with the largest |forget gradient|,
    thresholded per model over all its weights."""
    flat = torch.cat([g.abs().flatten(1) for g in forget_grad], 1)
    k = max(1, int(round((1 - keep) * flat.shape[1])))
    threshold = flat.kthvalue(k, dim=1).values
    return [(g.abs() > _per_model(threshold, g)).float() for g in forget_grad]


def cosine(value: float, step: int, total: int) -> float:
    """Cosine decay value * (1 + cos(pi step / total)) / 2 (SFR-on's LR and forget-alpha schedule)."""
    return value * (1 + math.cos(math.pi * step / max(total, 1))) / 2


# --- one phase of training: fast term then preserve term ------------------------------------------


@dataclass
class Phase:
    """What every model does during one request. Tensors have a leading model axis M.

    Fast sub-step (when ``step % fast_every == 0``): loss ``fast_coef * mean_i w_i l_i`` on a batch of
    ``fast_pool`` (negative coef = ascent, cosine-decayed like SFR-on's forget alpha), optionally
    with random labels (SalUn) and adaptive weights w; gradient masked and clipped to ``clip``.
    Slow sub-step: ``slow_coef * CE`` on a batch of ``slow_pool`` plus the EWC penalty. With
    ``fast_slow`` the fast step is applied first and the slow gradient is taken at the fast
    weights; otherwise both gradients are taken at the same point and applied as one step.
    A model takes ``steps`` (M,) steps; the phase lasts ``max(steps)``.
    """

    steps: torch.Tensor
    fast_pool: torch.Tensor
    fast_len: torch.Tensor
    fast_coef: torch.Tensor
    fast_every: torch.Tensor
    random_labels: torch.Tensor
    adaptive: torch.Tensor
    slow_pool: torch.Tensor
    slow_len: torch.Tensor
    slow_coef: torch.Tensor
    fast_slow: torch.Tensor
    mask: list[torch.Tensor] | None = None
    ewc_coef: torch.Tensor | None = None
    ewc_fisher: list[torch.Tensor] | None = None
    ewc_anchor: list[torch.Tensor] | None = None
    two_steps: torch.Tensor | None = None


@dataclass(frozen=True)
class HParams:
    """Optimiser numbers (SFR-on defaults for unlearning: SGD m 0.9, wd 5e-4, lr 0.01 cosine, forget
    every 5 iterations, alpha 25 cosine-decayed, clip 7, lambda 0.5, gamma 1)."""

    batch: int = 64
    learn_lr: float = 0.05
    unlearn_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    learn_steps: int = 300
    unlearn_steps: int = 100
    retrain_steps: int = 1000
    forget_every: int = 5
    forget_alpha: float = 25.0
    clip: float = 7.0
    lam: float = 0.5
    gamma: float = 1.0
    salun_keep: float = 0.5
    ewc_lambda: float = 100.0
    memory_per_class: int = 100
    fisher_batches: int = 20


def _fast_grads(model, x, y, phase: Phase, fast_on: torch.Tensor, decay: float, hp: HParams, n_classes: int,
                generator: torch.Generator, transform) -> list[torch.Tensor]:
    """The fast term's gradient: ``fast_coef * mean_i w_i l_i`` on a batch of ``fast_pool`` (ascent
    decayed like SFR-on's forget alpha; SalUn's random labels; adaptive weights c_i), masked by the
    saliency mask and clipped per model to ``hp.clip``; zero for models whose fast step is off."""
    dev = phase.fast_coef.device
    idx = sample_batches(phase.fast_pool, phase.fast_len, hp.batch, generator)
    xb, yb = x[idx], y[idx]
    if transform is not None:
        xb = transform(xb)
    shift = torch.randint(1, n_classes, yb.shape, generator=generator, device="cpu").to(dev)
    yb = torch.where(phase.random_labels[:, None], (yb + shift) % n_classes, yb)
    losses = per_sample_ce(model(xb), yb)
    w = torch.where(phase.adaptive[:, None], adaptive_weights(losses, hp.lam), torch.ones_like(losses))
    coef = torch.where(phase.fast_coef < 0, phase.fast_coef * decay, phase.fast_coef) * fast_on
    grads = torch.autograd.grad((coef * (w * losses).mean(1)).sum(), model.params)
    if phase.mask is not None:
        grads = [g * mk for g, mk in zip(grads, phase.mask, strict=True)]
    return clip_per_model(grads, hp.clip)


def _slow_grads(model, x, y, idx: torch.Tensor, phase: Phase, running: torch.Tensor, transform,
                which: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The preserve term's gradient at the current weights: ``slow_coef * CE`` on the batch ``idx`` of
    ``slow_pool`` plus the EWC penalty 0.5 * lambda * sum F (theta - anchor)^2; with ``which`` (model
    indices) only for those models (the others' gradients are zero)."""
    if which is not None:
        idx, on = idx[which], torch.zeros_like(running).index_fill(0, which, 1.0)
        running = running * on
    xb = x[idx] if transform is None else transform(x[idx])
    coef = phase.slow_coef * running
    logits = model(xb) if which is None else model(xb, which)
    loss = ((coef if which is None else coef[which]) * per_sample_ce(logits, y[idx]).mean(1)).sum()
    if phase.ewc_coef is not None and bool((phase.ewc_coef > 0).any()):
        for p, fi, a in zip(model.params, phase.ewc_fisher, phase.ewc_anchor, strict=True):
            loss = loss + 0.5 * (_per_model(phase.ewc_coef * running, p) * fi * (p - a) ** 2).sum()
    return list(torch.autograd.grad(loss, model.params)) if loss.requires_grad else [torch.zeros_like(p) for p in model.params]


def run_phase(model, bufs: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, phase: Phase,
              lr: float | torch.Tensor, hp: HParams, n_classes: int, generator: torch.Generator,
              transform: Callable[[torch.Tensor], torch.Tensor] | None = None, start: int = 0,
              on_step: Callable[[int], None] | None = None) -> None:
    """Run one request's phase for all models in lockstep (see :class:`Phase`); ``lr`` is one
    learning rate or one per model (M,), cosine-decayed over the phase.

    Per iteration and model: with ``fast_slow`` the fast step is an SGD step of its own and the
    preserve gradient is then taken at the fast weights, grad L_R(theta + delta) ~ grad L_R(theta) +
    H_R delta (two SGD steps); with ``two_steps`` the same two SGD steps are taken but the preserve
    gradient is the one at theta (no Hessian term); otherwise both gradients are taken at theta and
    applied as one step.

    ``start``: the first step (a resumed phase continues where it stopped, with the model, ``bufs``
    and ``generator`` as they were); ``on_step(k)`` is called after step k - 1, k = 1 .. total.
    """
    total = int(phase.steps.max()) if len(phase.steps) else 0
    any_fast = bool((phase.fast_coef != 0).any())
    two = phase.two_steps.float() if phase.two_steps is not None else torch.zeros_like(phase.fast_coef)
    sequential_models = torch.clamp(phase.fast_slow.float() + two, max=1.0)
    model.train()
    for s in range(start, total):
        running = (phase.steps > s).float()
        lr_s = cosine(lr, s, total)
        fast_on = running * (phase.fast_coef != 0).float() * ((s % phase.fast_every) == 0).float()
        fast = _fast_grads(model, x, y, phase, fast_on, cosine(1.0, s, total), hp, n_classes, generator, transform) \
            if any_fast and bool(fast_on.any()) else None
        idx = sample_batches(phase.slow_pool, phase.slow_len, hp.batch, generator)
        stale = _slow_grads(model, x, y, idx, phase, running, transform, which=torch.nonzero(fast_on * two)[:, 0]) \
            if fast is not None and bool((fast_on * two).any()) else None
        stash = None
        if fast is not None:
            sequential = fast_on * sequential_models
            sgd_step(model.params, fast, bufs, sequential, lr_s, hp.momentum, hp.weight_decay)
            stash = [g * _per_model(fast_on * (1 - sequential_models), g) for g in fast]
        grads = _slow_grads(model, x, y, idx, phase, running, transform)
        if stale is not None:
            use = fast_on * two
            grads = [_per_model(use, g) * st + (1 - _per_model(use, g)) * g for g, st in zip(grads, stale, strict=True)]
        if stash is not None:
            grads = [g + st for g, st in zip(grads, stash, strict=True)]
        ewc_on = (phase.ewc_coef > 0).float() if phase.ewc_coef is not None else torch.zeros_like(running)
        slow_on = running * torch.clamp((phase.slow_coef > 0).float() + ewc_on
                                        + fast_on * (1 - sequential_models), max=1.0)
        sgd_step(model.params, grads, bufs, slow_on, lr_s, hp.momentum, hp.weight_decay)
        if on_step is not None:
            on_step(s + 1)


# --- the request-driven learner -------------------------------------------------------------------


def _stack(values, dev):
    return torch.as_tensor(np.asarray(values), device=dev)


@dataclass
class DataState:
    """What the learner holds: training samples learned and not forgotten, the replay memory, the
    classes held, and the task each held sample came from."""

    held: np.ndarray
    memory: np.ndarray
    classes: set[int] = field(default_factory=set)
    learned_tasks: list[int] = field(default_factory=list)


@dataclass
class Pending:
    """A request begun (:meth:`ContinualUnlearner.begin`): what it touches (``info``: indices of D_U
    and D_L) and the training phases still to run, as (phase, learning rate)."""

    request: Request
    info: dict
    phases: list[tuple[Phase, float | torch.Tensor]]


class ContinualUnlearner:
    """A request-driven continual learner-unlearner running every method of ``methods`` in one
    stacked model (same initialisation, same requests, same data access: D_L and D_U in full, the
    remaining data through a class-balanced replay memory of ``memory_per_class`` samples per class).
    ``learn_lr`` and ``unlearn_lr`` (M,) are each model's learning rates of learn requests and of
    unlearning requests (default: hp's); ``methods`` may repeat a method (a learning-rate grid in one
    stacked run).
    """

    def __init__(self, model, methods: Sequence[Method], x: torch.Tensor, y: torch.Tensor, n_classes: int,
                 classes_per_task: int, hp: HParams, generator: torch.Generator, rng: np.random.Generator,
                 transform: Callable | None = None, unlearn_lr: Sequence[float] | None = None,
                 learn_lr: Sequence[float] | None = None):
        self.model, self.methods, self.x, self.y, self.hp = model, list(methods), x, y, hp
        self.n_classes, self.cpt, self.generator, self.rng, self.transform = n_classes, classes_per_task, generator, rng, transform
        self.y_np = y.cpu().numpy()
        n = len(self.y_np)
        self.data = DataState(np.zeros(n, bool), np.zeros(n, bool))
        self.dev = y.device
        self.bufs = [torch.zeros_like(p) for p in model.params]
        self.snapshots: dict[int, dict[int, list[torch.Tensor]]] = {}
        self.ewc_fisher = [torch.zeros_like(p) for p in model.params]
        self.ewc_anchor = [p.detach().clone() for p in model.params]
        self.flags = {k: _stack([getattr(m, k) for m in methods], self.dev)
                      for k in ("replay", "adaptive", "fast_slow", "two_steps", "ewc", "rollback")}
        # the learning rate of each model's unlearning phase (tuned per method): hp's by default, the
        # learn LR for rollback methods (they relearn from a snapshot)
        base = [hp.learn_lr if m.rollback else hp.unlearn_lr for m in methods]
        self.unlearn_lr = self._rates(base if unlearn_lr is None else unlearn_lr)
        self.learn_lr = self._rates([hp.learn_lr] * len(methods) if learn_lr is None else learn_lr)

    def _rates(self, values: Sequence[float]) -> torch.Tensor:
        return torch.as_tensor(list(values), dtype=torch.float32, device=self.dev)

    def repeat(self, unlearn_lr: Sequence[Sequence[float]]) -> None:
        """Continue with ``k = len(unlearn_lr[m])`` copies of every model m, copy j unlearning at
        ``unlearn_lr[m][j]`` (a learning-rate grid from one shared state: the momentum, snapshots,
        EWC terms and learn LR are copied with the model)."""
        k = len(unlearn_lr[0])
        self.model.repeat(k)
        self.methods = [m for m in self.methods for _ in range(k)]
        self.bufs = [b.repeat_interleave(k, 0) for b in self.bufs]
        self.ewc_fisher = [f.repeat_interleave(k, 0) for f in self.ewc_fisher]
        self.ewc_anchor = [a.repeat_interleave(k, 0) for a in self.ewc_anchor]
        self.snapshots = {task: {m * k + j: s for m, s in snap.items() for j in range(k)} for task, snap in self.snapshots.items()}
        self.flags = {name: f.repeat_interleave(k, 0) for name, f in self.flags.items()}
        self.learn_lr = self.learn_lr.repeat_interleave(k, 0)
        self.unlearn_lr = self._rates([lr for lrs in unlearn_lr for lr in lrs])

    def _m(self, pred: Callable[[Method], bool]) -> torch.Tensor:
        return _stack([pred(m) for m in self.methods], self.dev)

    def task_classes(self, task: int) -> list[int]:
        return list(range(task * self.cpt, (task + 1) * self.cpt))

    def apply(self, request: Request) -> dict:
        """Process one request; returns ``{"forget": indices of D_U, "new": indices of D_L}``."""
        pending = self.begin(request)
        for phase, lr in pending.phases:
            self.run(phase, lr)
        return self.finish(pending)

    def begin(self, request: Request) -> Pending:
        """The part of :meth:`apply` before training: bookkeeping, masks, rollback, the phases to run."""
        if request.kind == "learn":
            return self._begin_learn(request)
        if request.kind == "keep":
            return Pending(request, {"forget": np.array([], int), "new": np.array([], int)}, [])
        d = self.data
        if request.kind == "forget_task":
            forget = d.held & np.isin(self.y_np, self.task_classes(request.task))
            d.classes -= set(self.task_classes(request.task))
        elif request.kind == "forget_class":
            forget = d.held & (self.y_np == request.klass)
            d.classes.discard(request.klass)
        elif request.kind == "forget_samples":
            held = np.flatnonzero(d.held)
            chosen = self.rng.choice(held, int(round(request.fraction * len(held))), replace=False)
            forget = np.zeros_like(d.held)
            forget[chosen] = True
        else:
            raise ValueError(f"unknown request kind {request.kind!r}")
        d.held &= ~forget
        d.memory &= ~forget
        phases = self._unlearn_phases(np.flatnonzero(forget))
        return Pending(request, {"forget": np.flatnonzero(forget), "new": np.array([], int)}, phases)

    def run(self, phase: Phase, lr: float, start: int = 0, on_step: Callable[[int], None] | None = None) -> None:
        """Train every model through ``phase`` (from step ``start``; see :func:`run_phase`)."""
        run_phase(self.model, self.bufs, self.x, self.y, phase, lr, self.hp, self.n_classes, self.generator,
                  self.transform, start=start, on_step=on_step)

    def finish(self, pending: Pending) -> dict:
        """The part of :meth:`apply` after training; returns the request's ``info``."""
        if pending.request.kind == "learn":
            self._finish_learn(pending)
        return pending.info

    def _begin_learn(self, request: Request) -> Pending:
        hp, d = self.hp, self.data
        new = np.flatnonzero(np.isin(self.y_np, self.task_classes(request.task)))
        self.snapshots[request.task] = {m: self.model.state(m) for m, meth in enumerate(self.methods) if meth.rollback}
        memory = np.flatnonzero(d.memory)
        M = len(self.methods)
        fast_pool, fast_len = make_pools([new] * M, self.dev)
        slow_pool, slow_len = make_pools([memory if len(memory) else new] * M, self.dev)
        replay = self.flags["replay"] & bool(len(memory))
        phase = Phase(
            steps=torch.full((M,), hp.learn_steps, device=self.dev), fast_pool=fast_pool, fast_len=fast_len,
            fast_coef=torch.ones(M, device=self.dev), fast_every=torch.ones(M, dtype=torch.long, device=self.dev),
            random_labels=torch.zeros(M, dtype=torch.bool, device=self.dev), adaptive=torch.zeros(M, dtype=torch.bool, device=self.dev),
            slow_pool=slow_pool, slow_len=slow_len, slow_coef=replay.float(), fast_slow=self.flags["fast_slow"],
            two_steps=self.flags["two_steps"],
            ewc_coef=self.flags["ewc"].float() * hp.ewc_lambda if d.learned_tasks else None,
            ewc_fisher=self.ewc_fisher, ewc_anchor=self.ewc_anchor)
        return Pending(request, {"forget": np.array([], int), "new": new}, [(phase, self.learn_lr)])

    def _finish_learn(self, pending: Pending) -> None:
        hp, d, M = self.hp, self.data, len(self.methods)
        new, task = pending.info["new"], pending.request.task
        # EWC: accumulate the diagonal Fisher of the new task and move the anchor (online EWC)
        new_pool, new_len = make_pools([new] * M, self.dev)
        sq, _ = fisher_diag(self.model, self.x, self.y, new_pool, new_len, hp.batch, hp.fisher_batches, self.transform)
        self.ewc_fisher = [f + s for f, s in zip(self.ewc_fisher, sq, strict=True)]
        self.ewc_anchor = [p.detach().clone() for p in self.model.params]
        for c in self.task_classes(task):
            idx = new[self.y_np[new] == c]
            d.memory[self.rng.choice(idx, min(hp.memory_per_class, len(idx)), replace=False)] = True
        d.held[new] = True
        d.classes |= set(self.task_classes(task))
        d.learned_tasks.append(task)

    def _unlearn_phases(self, forget: np.ndarray) -> list[tuple[Phase, torch.Tensor]]:
        hp, d, M, dev = self.hp, self.data, len(self.methods), self.dev
        if len(forget) == 0:
            return []
        memory = np.flatnonzero(d.memory)
        fpool, flen = make_pools([forget] * M, dev)
        rpool, rlen = make_pools([memory] * M, dev)
        # masks from the model as it stands when the request arrives
        fisher_u, grad_u = fisher_diag(self.model, self.x, self.y, fpool, flen, hp.batch, hp.fisher_batches, self.transform)
        fisher_r, _ = fisher_diag(self.model, self.x, self.y, rpool, rlen, hp.batch, hp.fisher_batches, self.transform)
        balanced = balanced_mask(fisher_u, fisher_r, hp.gamma)
        salun = salun_mask(grad_u, hp.salun_keep)
        flag = {k: self._m(lambda m, k=k: m.mask == k).float() for k in ("fisher", "salun", "none")}
        mask = [_per_model(flag["fisher"], b) * b + _per_model(flag["salun"], s) * s + _per_model(flag["none"], b)
                for b, s in zip(balanced, salun, strict=True)]
        # CLPU-style rollback to the snapshot taken before the earliest task holding D_U
        tasks = sorted(set((self.y_np[forget] // self.cpt).tolist()))
        rolled = self._m(lambda m: m.rollback)
        for m, meth in enumerate(self.methods):
            if meth.rollback and tasks and tasks[0] in self.snapshots:
                self.model.load(m, self.snapshots[tasks[0]][m])
                for b in self.bufs:
                    b[m].zero_()
        ascent = self._m(lambda m: m.unlearn == "ascent")
        rand = self._m(lambda m: m.unlearn == "random_label")
        coef = torch.where(ascent, torch.full((M,), -hp.forget_alpha, device=dev), rand.float())
        every = torch.where(rand, 1, hp.forget_every).long()
        steps = torch.where(rolled, hp.learn_steps, hp.unlearn_steps)
        phase = Phase(steps=steps, fast_pool=fpool, fast_len=flen, fast_coef=coef, fast_every=every, random_labels=rand,
                      adaptive=self.flags["adaptive"], slow_pool=rpool, slow_len=rlen, slow_coef=torch.ones(M, device=dev),
                      fast_slow=self.flags["fast_slow"], two_steps=self.flags["two_steps"], mask=mask,
                      ewc_coef=self.flags["ewc"].float() * hp.ewc_lambda, ewc_fisher=self.ewc_fisher, ewc_anchor=self.ewc_anchor)
        if bool(rolled.any()) and bool((~rolled).any()):
            # two step counts (two cosine schedules) in one phase: the rolled-back models run as their own phase
            return self._split_phase(phase, rolled, self.unlearn_lr)
        return [(phase, self.unlearn_lr)]

    @staticmethod
    def _split_phase(phase: Phase, rolled: torch.Tensor, lr: torch.Tensor) -> list[tuple[Phase, torch.Tensor]]:
        phases = []
        for group in (~rolled, rolled):
            sub = Phase(**{k: v for k, v in phase.__dict__.items()})
            sub.steps = torch.where(group, phase.steps, torch.zeros_like(phase.steps))
            phases.append((sub, lr))
        return phases

    # --- checkpoints --------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything that changes as requests are processed: the models, the optimiser's momentum,
        the data held, the CLPU snapshots, the EWC terms and both random generators."""
        d = self.data
        return {"model": self.model.state_dict(), "bufs": [b.clone() for b in self.bufs],
                "data": {"held": d.held.copy(), "memory": d.memory.copy(), "classes": set(d.classes),
                         "learned_tasks": list(d.learned_tasks)},
                "snapshots": self.snapshots, "ewc_fisher": self.ewc_fisher, "ewc_anchor": self.ewc_anchor,
                "rng": self.rng.bit_generator.state, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`'s record (tensors already on this learner's device)."""
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            for b, s in zip(self.bufs, state["bufs"], strict=True):
                b.copy_(s)
        self.data = DataState(**state["data"])
        self.snapshots, self.ewc_fisher, self.ewc_anchor = state["snapshots"], state["ewc_fisher"], state["ewc_anchor"]
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"].cpu())


def retrain(model, x: torch.Tensor, y: torch.Tensor, train_sets: Sequence[np.ndarray], hp: HParams,
            n_classes: int, generator: torch.Generator, transform: Callable | None = None,
            bufs: list[torch.Tensor] | None = None, start: int = 0,
            on_step: Callable[[int], None] | None = None, lr: Sequence[float] | None = None) -> None:
    """The oracle theta*: model m trained from its initialisation on ``train_sets[m]`` alone (all data
    held after request m, never the unlearned data), every model in one stacked run, at learning
    rate ``lr[m]`` (default: ``hp.learn_lr`` for all), cosine-decayed over ``hp.retrain_steps``.

    A resumed run passes the momentum ``bufs`` it had and the ``start`` step (see :func:`run_phase`).
    """
    M = len(train_sets)
    dev = y.device
    pool, length = make_pools(list(train_sets), dev)
    zeros = torch.zeros(M, device=dev)
    phase = Phase(steps=torch.where(length > 0, hp.retrain_steps, 0), fast_pool=pool, fast_len=length, fast_coef=zeros,
                  fast_every=torch.ones(M, dtype=torch.long, device=dev), random_labels=zeros.bool(), adaptive=zeros.bool(),
                  slow_pool=pool, slow_len=length, slow_coef=torch.ones(M, device=dev), fast_slow=zeros.bool())
    bufs = [torch.zeros_like(p) for p in model.params] if bufs is None else bufs
    rate = hp.learn_lr if lr is None else torch.as_tensor(list(lr), dtype=torch.float32, device=dev)
    run_phase(model, bufs, x, y, phase, rate, hp, n_classes, generator, transform, start=start, on_step=on_step)


# --- evaluation ------------------------------------------------------------------------------------


@torch.no_grad()
def predict_proba(model, x: torch.Tensor, chunk: int = 2048, transform: Callable | None = None) -> torch.Tensor:
    """Softmax outputs (M, N, C) of every stacked model on shared inputs x (N, ...)."""
    model.eval()
    outs = []
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk] if transform is None else transform(x[i:i + chunk])
        outs.append(torch.softmax(model(xb), -1))
    model.train()
    return torch.cat(outs, 1)
