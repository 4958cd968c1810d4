"""Multi-gradient descent for physics-informed traffic models (Lei et al., arXiv 2505.13241).

Three pieces, usable without the rest of gdrepro:

- **Aggregators** (paper Sec. "multi-gradient descent"): turn the per-objective gradients
  G (..., m, p) into one update direction d (..., p). ``ls`` (linear scalarisation, fixed weights),
  ``mgda`` (TMGD: Sener-Koltun min-norm point of the convex hull, Frank-Wolfe; closed form for two
  tasks), ``mgda_norm`` (weights from L2-normalised gradients, as the official code does), and the
  dual-cone methods ``dcgd_proj``, ``dcgd_avg``, ``dcgd_center`` (Hwang & Lim; two objectives,
  row 0 = data gradient g_b, row 1 = physics gradient g_r). :class:`Aggregator` applies one of them
  to any torch model's losses; :func:`aggregate` works on a batch of stacked models at once.
- **Stacked models**: :class:`StackedMLP` holds R independent MLPs as (R, in, out) weights and
  evaluates them with one ``torch.baddbmm``; one Adam over the stack is R independent Adams.
- **Models and training**: the macroscopic LWR PINN (density net + flux net, residual
  rho_t + Q_x) and the microscopic NN car-following model with IDM physics loss, each trained
  for R configurations (method, weights, patience, data replicate) in one vectorised loop with
  per-model early stopping on the validation data loss. Both loops hand their state (models, Adam,
  early stopping, diagnostics) to a ``save`` callback every ``save_every`` iterations and continue
  from such a state (``resume``) bit for bit: training itself draws no random numbers.

A stack's configurations (``objectives.Config``) and the measures of finished runs (relative L2
error, Pareto front) are in ``objectives.py``, in numpy, for the stages that load no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gdrepro.nn import portable_sqrt
from gdrepro.papers.traffic.objectives import Config
from gdrepro.papers.traffic.simulate import DT, VEHICLE_LENGTH, idm_acceleration

AGGREGATORS = ("ls", "mgda", "mgda_norm", "dcgd_proj", "dcgd_avg", "dcgd_center")
EPS = 1e-12


# --- aggregators ---------------------------------------------------------------------------------


def min_norm_weights(gram: Tensor, iters: int = 250) -> Tensor:
    """Weights w (..., m) of the min-norm point of conv{g_i} from the Gram matrix (..., m, m).

    The TMGD sub-problem min_{w in simplex} ||sum_i w_i g_i||^2 (Sener & Koltun 2018, Eq. 3).
    Two tasks: w1 = clip(((g2 - g1).g2) / ||g1 - g2||^2, 0, 1) (closed form). Up to 6 tasks: exact,
    by enumerating the active sets S (the affine min-norm point w_S ~ G_S^-1 1 of every subset,
    kept when w_S >= 0; the best feasible one is the optimum). More tasks: Sener-Koltun Frank-Wolfe
    (Alg. 2) from uniform weights for ``iters`` iterations.
    """
    m = gram.shape[-1]
    if m == 2:
        g11, g12, g22 = gram[..., 0, 0], gram[..., 0, 1], gram[..., 1, 1]
        w1 = ((g22 - g12) / (g11 - 2 * g12 + g22).clamp_min(EPS)).clamp(0.0, 1.0)
        return torch.stack([w1, 1.0 - w1], dim=-1)
    if m <= 6:
        return _min_norm_active_sets(gram)
    w = torch.full(gram.shape[:-1], 1.0 / m, dtype=gram.dtype, device=gram.device)
    eye = torch.eye(m, dtype=gram.dtype, device=gram.device)
    for _ in range(iters):
        mw = (gram @ w.unsqueeze(-1)).squeeze(-1)  # (..., m)
        t = mw.argmin(dim=-1, keepdim=True)
        a = (w * mw).sum(-1)  # ||G^T w||^2
        b = mw.gather(-1, t).squeeze(-1)  # (G^T w).g_t
        c = gram.diagonal(dim1=-2, dim2=-1).gather(-1, t).squeeze(-1)  # ||g_t||^2
        gamma = ((a - b) / (a - 2 * b + c).clamp_min(EPS)).clamp(0.0, 1.0)
        w = (1 - gamma).unsqueeze(-1) * w + gamma.unsqueeze(-1) * eye[t.squeeze(-1)]
    return w


def _min_norm_active_sets(gram: Tensor) -> Tensor:
    m = gram.shape[-1]
    scale = gram.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(EPS)[..., None, None]
    gram_n = gram / scale
    best_val = torch.full(gram.shape[:-2], np.inf, dtype=gram.dtype, device=gram.device)
    best_w = torch.zeros(gram.shape[:-1], dtype=gram.dtype, device=gram.device)
    for mask in range(1, 2**m):
        idx = [i for i in range(m) if mask >> i & 1]
        sub = gram_n[..., idx, :][..., :, idx]
        ones = torch.ones(*sub.shape[:-1], 1, dtype=gram.dtype, device=gram.device)
        v = (torch.linalg.pinv(sub, hermitian=True) @ ones).squeeze(-1)  # singular for parallel g_i
        total = v.sum(-1, keepdim=True)
        ws = v / torch.where(total.abs() > EPS, total, torch.ones_like(total))
        w = torch.zeros_like(best_w)
        w[..., idx] = ws
        val = (w.unsqueeze(-2) @ gram_n @ w.unsqueeze(-1)).squeeze(-1).squeeze(-1)
        ok = (ws >= -1e-10).all(-1) & (total.squeeze(-1) > EPS) & (val < best_val)
        best_val = torch.where(ok, val, best_val)
        best_w = torch.where(ok.unsqueeze(-1), w.clamp_min(0), best_w)
    return best_w / best_w.sum(-1, keepdim=True)


def _normalise(G: Tensor) -> Tensor:
    return G / G.norm(dim=-1, keepdim=True).clamp_min(EPS)


def aggregate(G: Tensor, method: str, weights: Tensor | None = None) -> Tensor:
    """Update direction d (..., p) from objective gradients G (..., m, p).

    - ``ls``: d = sum_i w_i g_i with ``weights`` (..., m) (linear scalarisation).
    - ``mgda`` / ``mgda_norm``: d = sum_i w*_i g_i, w* the min-norm weights of the raw / of the
      L2-normalised gradients, applied to the raw gradients (as Sener & Koltun's and the official
      code do: sum_i w*_i L_i is back-propagated). For two tasks ``mgda_norm`` is always LS with
      weights (1/2, 1/2): two unit vectors have w* = 1/2.
    - ``dcgd_proj``: g = g_b + g_r projected onto the dual cone {d: d.g_b >= 0, d.g_r >= 0}:
      g if inside, else g_r - (g_r.g_b/||g_b||^2) g_b when g.g_b < 0, else g_b - (g_b.g_r/||g_r||^2) g_r.
    - ``dcgd_avg``: outside the cone, 1/2[(1 - g_b.g_r/||g_b||^2) g_b + (1 - g_b.g_r/||g_r||^2) g_r].
    - ``dcgd_center``: u = g_b/||g_b|| + g_r/||g_r||, d = (u.g / ||u||^2) u (always).
    """
    if method == "ls":
        if weights is None:
            raise ValueError("ls needs weights")
        return (weights.unsqueeze(-1) * G).sum(-2)
    if method in ("mgda", "mgda_norm"):
        H = _normalise(G) if method == "mgda_norm" else G
        w = min_norm_weights(H @ H.transpose(-1, -2))
        return (w.unsqueeze(-1) * G).sum(-2)  # weights applied to the raw gradients (losses)
    if method not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {method!r} (known: {', '.join(AGGREGATORS)})")
    if G.shape[-2] != 2:
        raise ValueError(f"{method} takes two objectives (data, physics), got {G.shape[-2]}")
    gb, gr = G[..., 0, :], G[..., 1, :]
    g = gb + gr
    dot = lambda x, y: (x * y).sum(-1, keepdim=True)  # noqa: E731
    nb, nr, br = dot(gb, gb).clamp_min(EPS), dot(gr, gr).clamp_min(EPS), dot(gb, gr)
    if method == "dcgd_center":
        u = gb / portable_sqrt(nb) + gr / portable_sqrt(nr)
        return dot(u, g) / dot(u, u).clamp_min(EPS) * u
    gdb, gdr = dot(g, gb), dot(g, gr)
    outside = (gdb < 0) | (gdr < 0)
    if method == "dcgd_proj":
        d = torch.where(gdb < 0, gr - br / nb * gb, torch.where(gdr < 0, gb - br / nr * gr, g))
        return d
    avg = 0.5 * ((1 - br / nb) * gb + (1 - br / nr) * gr)
    return torch.where(outside, avg, g)


class Aggregator:
    """One aggregator for any torch model: ``Aggregator("mgda").backward(losses, params)``.

    ``backward`` computes one gradient per loss, combines them with :func:`aggregate` and writes
    the result into ``p.grad`` (then call ``optimizer.step()``). Returns the gradient matrix.
    """

    def __init__(self, method: str, weights: Sequence[float] | None = None):
        if method not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {method!r} (known: {', '.join(AGGREGATORS)})")
        self.method = method
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def __call__(self, G: Tensor) -> Tensor:
        w = None if self.weights is None else self.weights.to(G)
        return aggregate(G, self.method, w)

    def backward(self, losses: Sequence[Tensor], params: Sequence[Tensor]) -> Tensor:
        params = list(params)
        rows = []
        for i, loss in enumerate(losses):
            grads = torch.autograd.grad(loss, params, retain_graph=i < len(losses) - 1, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(grads, params)]))
        G = torch.stack(rows)
        d = self(G)
        offset = 0
        for p in params:
            p.grad = d[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        return G


# --- stacked models --------------------------------------------------------------------------


class StackedMLP(torch.nn.Module):
    """R independent MLPs (sizes[0] -> ... -> sizes[-1]) evaluated together on x (R, N, in)."""

    def __init__(self, R: int, sizes: Sequence[int], activation: str, generator: torch.Generator):
        """Xavier-uniform weights drawn from ``generator`` (on the CPU), zero biases; move with .to()."""
        super().__init__()
        self.act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(6.0 / (fan_in + fan_out))  # Xavier-uniform, as Keras/TF default
            w = (torch.rand(R, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(torch.zeros(R, 1, fan_out)))

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.act(x)
        return x


def per_model_gradients(losses: Sequence[Tensor], params: Sequence[Tensor]) -> Tensor:
    """G (R, m, p): gradient of each model's m losses (each (R,)) w.r.t. its own parameters.

    Models in a stack are independent, so d(sum_r L_r)/d theta_r = dL_r/d theta_r: one backward
    pass per objective gives every model's gradient.
    """
    rows = []
    for i, loss in enumerate(losses):
        grads = torch.autograd.grad(loss.sum(), params, retain_graph=i < len(losses) - 1, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(p.shape[0], -1)
                               for g, p in zip(grads, params)], dim=1))
    return torch.stack(rows, dim=1)


def set_gradients(params: Sequence[Tensor], d: Tensor) -> None:
    offset = 0
    for p in params:
        n = p[0].numel()
        p.grad = d[:, offset : offset + n].reshape(p.shape).contiguous()
        offset += n


def stacked_directions(G: Tensor, configs: Sequence[Config], two_task: Tensor | None = None) -> tuple[Tensor, dict]:
    """Directions (R, p) for a stack with per-model aggregators; diagnostics for the sanity claim.

    ``two_task`` (R, 2, p) is the (data, physics) gradient pair used by the DCGD methods when the
    stack has more than two objectives (the macroscopic model: rho, u, physics).
    """
    dtype = G.dtype
    G = G.double()  # aggregate in float64: the weights of near-parallel gradients are ill-conditioned
    two_task = None if two_task is None else two_task.double()
    D = torch.empty(G.shape[0], G.shape[-1], dtype=G.dtype, device=G.device)
    diag = {"dcgd_min_cos": np.inf, "norm_weight_dev": 0.0}
    for method in dict.fromkeys(c.method for c in configs):
        idx = torch.tensor([i for i, c in enumerate(configs) if c.method == method], device=G.device)
        Gi = G[idx] if not method.startswith("dcgd") or two_task is None else two_task[idx]
        w = torch.tensor([configs[i].weights for i in idx.tolist()], dtype=G.dtype, device=G.device) if method == "ls" else None
        D[idx] = aggregate(Gi, method, w)
        if method.startswith("dcgd"):
            cos = (D[idx].unsqueeze(1) * Gi).sum(-1) / (D[idx].norm(dim=-1, keepdim=True) * Gi.norm(dim=-1)).clamp_min(EPS)
            diag["dcgd_min_cos"] = min(diag["dcgd_min_cos"], float(cos.min()))
        if method == "mgda_norm" and Gi.shape[-2] == 2:
            H = _normalise(Gi)
            w = min_norm_weights(H @ H.transpose(-1, -2))
            diag["norm_weight_dev"] = max(diag["norm_weight_dev"], float((w - 0.5).abs().max()))
    return D.to(dtype), diag


def conflict_flags(G2: Tensor) -> tuple[Tensor, Tensor]:
    """Per model, from the (data, physics) gradient pair G2 (R, 2, p): whether the two gradients
    conflict (g_b.g_r < 0) and whether their sum g leaves the dual cone (g.g_b < 0 or g.g_r < 0),
    the case in which DCGD's direction differs from g (Hwang & Lim)."""
    gb, gr = G2[:, 0].double(), G2[:, 1].double()
    g = gb + gr
    return (gb * gr).sum(-1) < 0, ((g * gb).sum(-1) < 0) | ((g * gr).sum(-1) < 0)


class EarlyStopping:
    """Per-model early stopping on a validation loss: keep each model's best parameters and stop a
    model once it has gone ``patience`` iterations without improving. A stopped model's parameters
    at the moment it stopped are kept too (``at_stop``): its last iterate, where the official code
    evaluates it (the stack keeps stepping every model until all have stopped)."""

    def __init__(self, params: Sequence[Tensor], patience: Sequence[int]):
        self.params = list(params)
        self.patience = torch.tensor(patience)
        R = len(patience)
        self.best = torch.full((R,), np.inf, dtype=torch.float64)
        self.best_iter = torch.zeros(R, dtype=torch.long)
        self.stopped = torch.zeros(R, dtype=torch.bool)
        self.stop_iter = torch.full((R,), -1, dtype=torch.long)
        self.snapshot = [p.detach().clone() for p in self.params]
        self.at_stop = [p.detach().clone() for p in self.params]

    def update(self, it: int, val: Tensor) -> bool:
        """Record iteration ``it``'s validation losses (R,); True when every model has stopped."""
        val = val.detach().double().cpu()
        improved = (val < self.best) & ~self.stopped
        self.best = torch.where(improved, val, self.best)
        self.best_iter = torch.where(improved, torch.tensor(it), self.best_iter)
        if improved.any():
            for s, p in zip(self.snapshot, self.params):
                mask = improved.to(p.device)
                s[mask] = p.detach()[mask]
        newly = ~self.stopped & (it - self.best_iter >= self.patience)
        if newly.any():
            for s, p in zip(self.at_stop, self.params):
                mask = newly.to(p.device)
                s[mask] = p.detach()[mask]
        self.stop_iter[newly] = it
        self.stopped |= newly
        return bool(self.stopped.all())

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best.clone(), "best_iter": self.best_iter.clone(), "stopped": self.stopped.clone(),
                "stop_iter": self.stop_iter.clone(), "snapshot": [s.clone() for s in self.snapshot],
                "at_stop": [s.clone() for s in self.at_stop]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_iter = state["best"].clone(), state["best_iter"].clone()
        self.stopped, self.stop_iter = state["stopped"].clone(), state["stop_iter"].clone()
        for s, saved in zip(self.snapshot + self.at_stop, state["snapshot"] + state["at_stop"], strict=True):
            s.copy_(saved)

    def to_last(self) -> None:
        """Put every stopped model back to its parameters when it stopped (the others are already at
        their last iterate)."""
        with torch.no_grad():
            for s, p in zip(self.at_stop, self.params):
                mask = self.stopped.to(p.device)
                p[mask] = s[mask]

    def restore(self, last_iter: int) -> None:
        self.stop_iter[~self.stopped] = last_iter
        with torch.no_grad():
            for s, p in zip(self.snapshot, self.params):
                p.copy_(s)


Save = Callable[[dict[str, Any]], None]


def _loop_state(it: int, model: torch.nn.Module, opt: torch.optim.Optimizer, stopper: EarlyStopping,
                diag: dict, seconds: float) -> dict[str, Any]:
    """Everything a training loop needs to continue at iteration ``it`` (not yet run)."""
    return {"it": it, "model": model.state_dict(), "opt": opt.state_dict(), "stopper": stopper.state_dict(),
            "diag": dict(diag), "seconds": seconds}


def _resume(state: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer,
            stopper: EarlyStopping) -> tuple[int, dict, float]:
    """Load a :func:`_loop_state` into the loop's objects; its iteration, diagnostics and seconds."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    stopper.load_state_dict(state["stopper"])
    return int(state["it"]), dict(state["diag"]), float(state["seconds"])


# --- microscopic: NN car-following model with IDM physics ---------------------------------------


@dataclass
class MicroData:
    """Stacked per-model tensors (R, N, 3) inputs normalised, targets (R, N) in m/s^2."""

    x_train: Tensor
    a_train: Tensor
    x_val: Tensor
    a_val: Tensor
    x_aux: Tensor  # X_train followed by the extra points (paper: X_aux = train + extra)
    a_idm_aux: Tensor  # IDM prediction at the auxiliary points (physics target)
    mean: Tensor  # (R, 1, 3) input normalisation
    std: Tensor
    a_scale: float


def micro_losses(net: StackedMLP, data: MicroData) -> tuple[Tensor, Tensor]:
    """L_data = MSE(NN(X_train), a_train), L_phys = MSE(NN(X_aux), IDM(X_aux)), per model (R,)."""
    s, n = data.a_scale, data.x_train.shape[1]
    pred = net(data.x_aux).squeeze(-1)  # X_aux = X_train + extra points: one forward pass for both
    l_data = ((pred[:, :n] - data.a_train / s) ** 2).mean(-1)
    l_phys = ((pred - data.a_idm_aux / s) ** 2).mean(-1)
    return l_data, l_phys


def train_micro(
    net: StackedMLP, data: MicroData, configs: Sequence[Config], lr: float, iterations: int,
    save: Save | None = None, save_every: int = 0, resume: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Full-batch Adam on the stack, every model with its own aggregator and patience.

    Early stopping watches the validation data loss MSE(NN(X_val), a_val) (the same criterion for
    every method); each model ends at its best validation iterate. ``save`` gets the loop's state
    every ``save_every`` iterations; ``resume`` (such a state) continues where it was taken.
    """
    if not torch.equal(data.x_aux[:, : data.x_train.shape[1]], data.x_train):
        raise ValueError("x_aux must start with x_train (X_aux = train + extra points)")
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    stopper = EarlyStopping(params, [c.patience for c in configs])
    R = len(configs)
    diag = {"dcgd_min_cos": np.inf, "norm_weight_dev": 0.0, "conflict": np.zeros(R), "outside": np.zeros(R), "steps": 0}
    first, earlier = 0, 0.0
    if resume is not None:
        first, diag, earlier = _resume(resume, net, opt, stopper)
    start = time.perf_counter()
    it = first
    for it in range(first, iterations):
        if save is not None and save_every and it > first and it % save_every == 0:
            save(_loop_state(it, net, opt, stopper, diag, earlier + time.perf_counter() - start))
        with torch.no_grad():
            val = ((net(data.x_val).squeeze(-1) - data.a_val / data.a_scale) ** 2).mean(-1)
        if stopper.update(it, val.double()):
            break
        l_data, l_phys = micro_losses(net, data)
        G = per_model_gradients([l_data, l_phys], params)
        D, d = stacked_directions(G, configs)
        diag = _count_conflicts(diag, G) | {"dcgd_min_cos": min(diag["dcgd_min_cos"], d["dcgd_min_cos"]),
                                            "norm_weight_dev": max(diag["norm_weight_dev"], d["norm_weight_dev"])}
        set_gradients(params, D)
        opt.step()
    seconds = earlier + time.perf_counter() - start
    last = _last_iterate(net, stopper, lambda: micro_losses(net, data))
    stopper.restore(it)
    with torch.no_grad():
        l_data, l_phys = micro_losses(net, data)
    return {
        "l_data": l_data.cpu().numpy(), "l_phys": l_phys.cpu().numpy(), "val": stopper.best.numpy(),
        "stop_iter": stopper.stop_iter.numpy(), "iterations": np.array(it + 1),
        "seconds": np.array(seconds), **_diag_out(diag), **last,
    }


def _count_conflicts(diag: dict, G2: Tensor) -> dict:
    """Add one iteration's :func:`conflict_flags` to the per-model counts in ``diag``."""
    conflict, outside = conflict_flags(G2)
    return diag | {"conflict": diag["conflict"] + conflict.cpu().numpy(), "outside": diag["outside"] + outside.cpu().numpy(),
                   "steps": diag["steps"] + 1}


def _diag_out(diag: dict) -> dict[str, np.ndarray]:
    """Diagnostics as arrays: min cosine / max weight deviation, per-model conflict shares."""
    steps = max(diag["steps"], 1)
    out = {k: np.array(v) for k, v in diag.items() if k in ("dcgd_min_cos", "norm_weight_dev")}
    return out | {"conflict_share": diag["conflict"] / steps, "outside_share": diag["outside"] / steps}


def _last_iterate(model: torch.nn.Module, stopper: EarlyStopping, losses: Callable[[], tuple[Tensor, ...]]) -> dict[str, Any]:
    """Where each model of the stack ended, before early stopping restores its best iterate: its
    parameters when it stopped (or at the end of the budget) and its (data, physics) losses there,
    as the official code evaluates its models."""
    stopper.to_last()
    parts = [p.detach() for p in losses()]  # not under no_grad: the PINN's residual differentiates its inputs
    return {"l_data_last": sum(parts[:-1]).cpu().numpy(), "l_phys_last": parts[-1].cpu().numpy(),
            "last_state": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def closed_loop(
    net: StackedMLP, mean: Tensor, std: Tensor, x_lead: Tensor, v_lead: Tensor, x0: Tensor, v0: Tensor,
    a_scale: float, min_gap: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Simulate followers with the NN (paper: v += 0.1 a, x += 0.1 v), all models and trajectories.

    x_lead, v_lead (R, K, steps); x0, v0 (R, K). Gaps never go below ``min_gap``.
    Returns follower positions and speeds (R, K, steps).
    """
    steps = x_lead.shape[-1]
    xs, vs = [x0], [v0]
    x, v = x0, v0
    with torch.no_grad():
        for k in range(steps - 1):
            dx = (x_lead[..., k] - x - VEHICLE_LENGTH).clamp_min(min_gap)
            feats = (torch.stack([dx, v_lead[..., k] - v, v], dim=-1) - mean) / std
            a = net(feats).squeeze(-1) * a_scale
            v = (v + DT * a).clamp_min(0.0)
            x = torch.minimum(x + DT * v, x_lead[..., k + 1] - VEHICLE_LENGTH - min_gap)
            xs.append(x)
            vs.append(v)
    return torch.stack(xs, -1), torch.stack(vs, -1)


def calibrate_idm(X: np.ndarray, a: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Least-squares calibration of (v0, T, s0, a, b) on car-following rows (log-parameters).

    The official code calibrates IDM with a genetic algorithm; any good fit serves as the physics.
    """
    from scipy.optimize import least_squares

    def residual(logp):
        return idm_acceleration(X[:, 0], X[:, 1], X[:, 2], np.exp(logp)) - a

    lo, hi = np.log(start / 4), np.log(start * 4)
    fit = least_squares(residual, np.log(start), bounds=(lo, hi), method="trf", max_nfev=200)
    return np.exp(fit.x)


# --- macroscopic: LWR PINN -------------------------------------------------------------------------


@dataclass
class MacroData:
    """Normalised macroscopic data, shared by every model of the stack.

    x_*: (N, 2) normalised (x, t); rho_*, u_*: normalised targets; x_col: collocation points.
    ``scales`` holds (mean, sd) of rho and u and the flux scale; ``k`` is the residual constant
    of rho~_t~ + k Q~_x~ = 0 in normalised variables.
    """

    x_train: Tensor
    rho_train: Tensor
    u_train: Tensor
    x_val: Tensor
    rho_val: Tensor
    u_val: Tensor
    x_col: Tensor
    rho_mean: float
    rho_sd: float
    u_mean: float
    u_sd: float
    q_scale: float
    k: float


class MacroPINN(torch.nn.Module):
    """rho-net (x, t) -> rho and flux net q(rho) -> Q, stacked R times; u = Q / (rho + 1e-6)."""

    def __init__(self, R: int, depth: int, width: int, q_depth: int, q_width: int, generator: torch.Generator):
        super().__init__()
        self.rho_net = StackedMLP(R, [2] + [width] * depth + [1], "tanh", generator)
        self.q_net = StackedMLP(R, [1] + [q_width] * q_depth + [1], "tanh", generator)
        self.R = R

    def forward(self, xt: Tensor, data: MacroData) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised rho~ (R, N), flux Q~ (R, N), normalised speed u~ (R, N)."""
        rho_n = self.rho_net(xt)
        q_n = self.q_net(rho_n)
        rho = rho_n * data.rho_sd + data.rho_mean
        u = q_n * data.q_scale / (rho + 1e-6)
        return rho_n.squeeze(-1), q_n.squeeze(-1), ((u - data.u_mean) / data.u_sd).squeeze(-1)


def macro_losses(model: MacroPINN, data: MacroData) -> tuple[Tensor, Tensor, Tensor]:
    """Per-model MSE(rho), MSE(u) on the training points and MSE(rho_t + Q_x) at collocation."""
    R = model.R
    rho, _, u = model(data.x_train.expand(R, -1, -1), data)
    xc = data.x_col.expand(R, -1, -1).clone().requires_grad_(True)
    rho_c, q_c, _ = model(xc, data)
    d_rho = torch.autograd.grad(rho_c.sum(), xc, create_graph=True)[0]
    d_q = torch.autograd.grad(q_c.sum(), xc, create_graph=True)[0]
    residual = d_rho[..., 1] + data.k * d_q[..., 0]
    return (
        ((rho - data.rho_train) ** 2).mean(-1),
        ((u - data.u_train) ** 2).mean(-1),
        (residual**2).mean(-1),
    )


def train_macro(
    model: MacroPINN, data: MacroData, configs: Sequence[Config], lr: float, iterations: int, eval_every: int = 10,
    save: Save | None = None, save_every: int = 0, resume: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Adam on the stacked PINN; LS/MGDA on three objectives (rho, u, physics), DCGD on two
    (data = rho + u, physics); early stopping on the validation MSE(rho) + MSE(u), checked every
    ``eval_every`` iterations with patience counted in iterations. ``save``, ``save_every`` and
    ``resume`` as in :func:`train_micro`."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    stopper = EarlyStopping(params, [c.patience for c in configs])
    R = len(configs)
    diag = {"dcgd_min_cos": np.inf, "norm_weight_dev": 0.0, "conflict": np.zeros(R), "outside": np.zeros(R), "steps": 0}
    first, earlier = 0, 0.0
    if resume is not None:
        first, diag, earlier = _resume(resume, model, opt, stopper)
    start = time.perf_counter()
    it = first
    for it in range(first, iterations):
        if save is not None and save_every and it > first and it % save_every == 0:
            save(_loop_state(it, model, opt, stopper, diag, earlier + time.perf_counter() - start))
        if it % eval_every == 0:
            with torch.no_grad():
                rho, _, u = model(data.x_val.expand(model.R, -1, -1), data)
                val = ((rho - data.rho_val) ** 2).mean(-1) + ((u - data.u_val) ** 2).mean(-1)
            if stopper.update(it, val.double()):
                break
        l_rho, l_u, l_phys = macro_losses(model, data)
        G = per_model_gradients([l_rho, l_u, l_phys], params)
        G2 = torch.stack([G[:, 0] + G[:, 1], G[:, 2]], dim=1)
        D, d = stacked_directions(G, configs, two_task=G2)
        diag = _count_conflicts(diag, G2) | {"dcgd_min_cos": min(diag["dcgd_min_cos"], d["dcgd_min_cos"])}
        set_gradients(params, D)
        opt.step()
    seconds = earlier + time.perf_counter() - start
    last = _last_iterate(model, stopper, lambda: macro_losses(model, data))
    last.pop("last_state")
    stopper.restore(it)
    l_rho, l_u, l_phys = (t.detach().cpu().numpy() for t in macro_losses(model, data))
    out = _diag_out(diag)
    out.pop("norm_weight_dev")
    return {
        "l_data": l_rho + l_u, "l_phys": l_phys, "val": stopper.best.numpy(),
        "stop_iter": stopper.stop_iter.numpy(), "iterations": np.array(it + 1),
        "seconds": np.array(seconds), **out, **last,
    }


def macro_predict(model: MacroPINN, data: MacroData, xt: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """De-normalised density and speed (R, N) at normalised points xt (N, 2)."""
    with torch.no_grad():
        rho_n, _, u_n = model(xt.expand(model.R, -1, -1), data)
    return (rho_n * data.rho_sd + data.rho_mean).cpu().numpy(), (u_n * data.u_sd + data.u_mean).cpu().numpy()
