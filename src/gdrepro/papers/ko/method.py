"""KO, the kinetics-inspired optimizer (Feng, Huang, Fu, Wang & Yan 2025, arXiv:2505.14777).

KO treats the rows of a layer's weight matrix as particles: position ``w_i`` (a row of W, N x D)
and velocity ``g_i`` (the same row of the gradient G). Before the *unchanged* base step (SGD or
Adam) it lets the particles collide, which changes the gradient:

Soft collision (the paper's practical form, its update rule for Delta g):

    K        = cos(W, W) o cos(G, G)            N x N, Hadamard product of row-cosine matrices,
                                                diagonal set to 0 (a particle does not hit itself)
    Delta G  = - K G / Z                        Z = 1 (``sum``), N - 1 (``mean``) or the number of
                                                partners with K_ij > 1 - gamma (``thresh``)
    G~       = G + gamma_c Delta G
    theta   <- BaseOpt(theta, G~)

For two rows g~1 - g~2 = (1 + gamma K)(g1 - g2): the gradient difference of two aligned particles
is amplified and they separate, like thermal diffusion, which counters parameter condensation.
The literal ``sum`` is unstable (a cluster of m aligned rows gets g (1 - gamma m) and flips sign),
hence the normalised options (our reconstruction, see claims.yaml deviations).

Readings of gamma_c. The paper calls gamma_c the "fraction of colliding particles" and writes it as
the coefficient of Delta G. Our primary reading (``thresh``) uses it as both: pairs collide where
K_ij > 1 - gamma_c, and the term is scaled by gamma_c. ``coef`` separates the two: with ``coef=1``
gamma_c is only the threshold and the collision term enters at full strength (the second reading).
The share of row pairs that collide (:class:`CollisionCounter`) says how much KO acts at all.

Hard collision (DSMC, direct simulation Monte Carlo): particles are paired at random; a pair
collides when its score |v_r| / max |v_r| * exp(-||x_r||) exceeds 1 - gamma_c (v_r = g_i - g_j,
x_r = w_i - w_j); colliding pairs keep their centre-of-mass velocity v_cm and get the relative
speed |v_r| in a random direction: g_i' = v_cm + |v_r|/2 u, g_j' = v_cm - |v_r|/2 u, which
conserves momentum and kinetic energy.

Only parameters with at least two dimensions collide (Linear weights: rows; conv kernels:
flattened per output channel; embeddings: rows). Biases, norm scales and other 1-D parameters are
left untouched and only take the base step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

BASES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
MODES = ("soft", "hard")
NORMALIZE = ("mean", "thresh", "sum")
EPS = 1e-12


def pairwise_cosine(x: torch.Tensor) -> torch.Tensor:
    """N x N cosine similarities of the rows of ``x`` (N x D) as one matmul; zero rows give 0."""
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(EPS)
    return unit @ unit.T


def collision_kernel(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """K = cos(W, W) o cos(G, G) with a zero diagonal (the soft-collision weights)."""
    k = pairwise_cosine(w) * pairwise_cosine(g)
    return k.fill_diagonal_(0.0)


@dataclass
class CollisionCounter:
    """Running count of colliding row pairs: ``hits`` of ``pairs`` looked at (tensors or ints).

    Soft collision: ordered pairs i != j whose collision weight is non-zero (for ``thresh``: K_ij >
    1 - gamma_c; for ``mean``/``sum`` every pair with K_ij != 0), out of N (N - 1) per layer and step.
    Hard collision: colliding pairs out of the N // 2 random pairs drawn. Counts stay tensors (no
    device sync per step) until :attr:`rate` is read.
    """

    hits: Any = 0
    pairs: Any = 0

    def add(self, hits: Any, pairs: int) -> None:
        self.hits = self.hits + hits
        self.pairs = self.pairs + pairs

    @property
    def rate(self) -> float:
        """hits / pairs, nan before any pair was looked at."""
        return float(self.hits) / float(self.pairs) if float(self.pairs) else float("nan")

    def state(self) -> tuple[float, float]:
        return float(self.hits), float(self.pairs)


def soft_collision(
    w: torch.Tensor,
    g: torch.Tensor,
    coll_coef: float,
    normalize: str = "mean",
    coef: float | None = None,
    counter: CollisionCounter | None = None,
) -> torch.Tensor:
    """The collided gradient G + c Delta G of one layer (rows = particles; see module doc).

    ``w`` and ``g`` are N x D; returns N x D. ``normalize`` in {"mean", "thresh", "sum"}.
    ``coll_coef`` is gamma_c: the threshold 1 - gamma_c of ``thresh`` and, unless ``coef`` is
    given, the coefficient c. ``counter`` (optional) counts the colliding pairs.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize={normalize!r} must be one of {NORMALIZE}")
    n = w.shape[0]
    if n < 2 or coll_coef == 0:
        return g.clone()
    k = collision_kernel(w, g)
    if normalize == "sum":
        delta = -(k @ g)
    elif normalize == "mean":
        delta = -(k @ g) / (n - 1)
    else:  # thresh: only pairs whose kernel exceeds 1 - gamma collide, averaged over partners
        k = k * (k > 1.0 - coll_coef)
        partners = (k != 0).sum(dim=1, keepdim=True).clamp_min(1)
        delta = -(k @ g) / partners
    if counter is not None:
        counter.add((k != 0).sum(), n * (n - 1))
    return g + (coll_coef if coef is None else coef) * delta


def hard_collision(
    w: torch.Tensor,
    g: torch.Tensor,
    coll_coef: float,
    generator: torch.Generator | None = None,
    counter: CollisionCounter | None = None,
) -> torch.Tensor:
    """DSMC hard collision of one layer's gradient rows (random disjoint pairs; see module doc).

    Vectorised over pairs: one permutation, one batch of pair scores, one batch of new directions.
    ``counter`` (optional) counts the colliding pairs among the N // 2 drawn.
    """
    n = w.shape[0]
    if n < 2 or coll_coef == 0:
        return g.clone()
    perm = torch.randperm(n, generator=generator, device="cpu").to(g.device)
    i, j = perm[0 : n - n % 2 : 2], perm[1 : n - n % 2 : 2]
    v_r, x_r = g[i] - g[j], w[i] - w[j]
    speed = v_r.norm(dim=1)
    score = speed / speed.max().clamp_min(EPS) * torch.exp(-x_r.norm(dim=1))
    hit = score > 1.0 - coll_coef
    if counter is not None:
        counter.add(hit.sum(), int(hit.numel()))
    direction = torch.randn(v_r.shape, generator=generator, device="cpu", dtype=g.dtype).to(g.device)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(EPS)
    v_cm = (g[i] + g[j]) / 2
    kick = (speed / 2)[:, None] * direction
    out = g.clone()
    out[i] = torch.where(hit[:, None], v_cm + kick, g[i])
    out[j] = torch.where(hit[:, None], v_cm - kick, g[j])
    return out


def collide(
    w: torch.Tensor,
    g: torch.Tensor,
    coll_coef: float,
    mode: str = "soft",
    normalize: str = "mean",
    generator: torch.Generator | None = None,
    coef: float | None = None,
    counter: CollisionCounter | None = None,
) -> torch.Tensor:
    """Collided gradient of one parameter of any shape >= 2-D (particles = slices along dim 0)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {MODES}")
    w2, g2 = w.reshape(w.shape[0], -1), g.reshape(g.shape[0], -1)
    if mode == "soft":
        out = soft_collision(w2, g2, coll_coef, normalize, coef, counter)
    else:
        out = hard_collision(w2, g2, coll_coef, generator, counter)
    return out.view_as(g)


class KO(torch.optim.Optimizer):
    """Kinetics-inspired optimizer: collision on each layer's gradient, then the base step.

    ``KO(model.parameters(), base="sgd", coll_coef=0.5, mode="soft", normalize="thresh", lr=0.05,
    momentum=0.9)``. ``base`` is "sgd", "adam", "adamw" or any ``torch.optim.Optimizer`` class;
    remaining keyword arguments go to it. ``coll_coef``, ``mode``, ``normalize`` and ``coef``
    (the coefficient of Delta G when it is not gamma_c, see the module doc) are per parameter group
    (groups may override them). ``coll_coef = 0`` is exactly the base optimizer. ``step``
    overwrites ``p.grad`` of colliding parameters with the collided gradient. ``seed`` seeds the
    hard-collision random numbers; ``collisions`` counts the colliding row pairs (both saved in
    ``state_dict``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        base: str | type[torch.optim.Optimizer] = "sgd",
        coll_coef: float = 0.5,
        mode: str = "soft",
        normalize: str = "mean",
        seed: int = 0,
        coef: float | None = None,
        **base_kwargs: Any,
    ):
        if isinstance(base, str):
            if base.lower() not in BASES:
                raise ValueError(f"base={base!r} must be one of {sorted(BASES)} or an Optimizer class")
            base = BASES[base.lower()]
        if mode not in MODES or normalize not in NORMALIZE:
            raise ValueError(f"mode={mode!r} must be in {MODES} and normalize={normalize!r} in {NORMALIZE}")
        if coll_coef < 0:
            raise ValueError(f"coll_coef={coll_coef} must be >= 0")
        params = list(params)
        self.base = base(params, **base_kwargs)
        ko_defaults = {"coll_coef": coll_coef, "mode": mode, "normalize": normalize, "coef": coef}
        super().__init__(params, {**self.base.defaults, **ko_defaults})
        for group in self.base.param_groups:
            for key, value in ko_defaults.items():
                group.setdefault(key, value)
        self._share_with_base()
        self.generator = torch.Generator().manual_seed(seed)
        self.collisions = CollisionCounter()

    def _share_with_base(self) -> None:
        """One set of param groups and one state, owned by the base optimizer."""
        self.param_groups = self.base.param_groups
        self.state = self.base.state

    @torch.no_grad()
    def collide_gradients(self) -> None:
        """Replace every >= 2-D gradient by its collided version (no base step)."""
        for group in self.param_groups:
            gamma = group["coll_coef"]
            if gamma == 0:
                continue
            for p in group["params"]:
                if p.grad is None or p.dim() < 2 or p.grad.is_sparse:
                    continue
                p.grad.copy_(collide(p, p.grad, gamma, group["mode"], group["normalize"], self.generator,
                                     group["coef"], self.collisions))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.collide_gradients()
        self.base.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        state = self.base.state_dict()
        state["ko_generator"] = self.generator.get_state()
        state["ko_collisions"] = self.collisions.state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        generator = state_dict.pop("ko_generator", None)
        collisions = state_dict.pop("ko_collisions", None)
        self.base.load_state_dict(state_dict)
        self._share_with_base()
        if generator is not None:
            self.generator.set_state(generator)
        if collisions is not None:
            self.collisions = CollisionCounter(*collisions)


def weight_correlation(w: torch.Tensor) -> float:
    """Condensation of one layer: mean |cos(w_i, w_j)| over pairs i != j of rows (flattened)."""
    w2 = w.detach().reshape(w.shape[0], -1)
    n = w2.shape[0]
    if n < 2:
        return float("nan")
    c = pairwise_cosine(w2).abs()
    return float((c.sum() - c.diagonal().sum()) / (n * (n - 1)))


def layer_correlations(model: torch.nn.Module) -> list[float]:
    """weight_correlation of every >= 2-D parameter of ``model``, in registration order."""
    return [weight_correlation(p) for p in model.parameters() if p.dim() >= 2]


def model_weight_correlation(model: torch.nn.Module) -> float:
    """The paper's condensation measure: per-layer mean |cos| of weight rows, averaged over layers."""
    values = layer_correlations(model)
    return float(sum(values) / len(values))
