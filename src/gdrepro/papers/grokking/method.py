"""Grokking and the embedding layer (AlQuabeh, Bojkovic, Nwadike, Inui 2025, arXiv:2505.15624).

Library code only (tensors in, tensors out):

- modular-arithmetic data: the four operations of the paper (``add``, ``mul``, ``div``, ``sq`` =
  a^2 + b^2) for any modulus P, tokenised as ``[a, P, b, P+1]`` (P = operator, P+1 = "=");
- train/test splits: a seeded 20% test set, and a 30% training set drawn from the rest by a
  split strategy: ``uniform`` (equal rows per value of a), ``random`` or ``skewed`` (rows drawn
  with probability proportional to w_a w_b, token weights exponential in a random token rank);
- the two models: :class:`EmbeddingMLP` (E 99x128, 4 embeddings concatenated, 512 -> 512 -> P)
  and :class:`NoEmbeddingMLP` (the raw vector [a, P, b, P+1] -> H -> P), plus a *stacked* form
  of both (:func:`init_stack`, :func:`stacked_forward`) that trains S independent models in one
  batched matmul (``torch.bmm``), and :class:`StackedAdam`, Adam with a per-model, per-block
  learning rate (so each model of the stack can have its own embedding factor c);
- Adam-LR (the paper's remedy, section "Adam-LR"): eta_E = c eta_W,
  c ~ (sigma_max(E) / sigma_max(W)) (f_W / f_E); :func:`embedding_lr_param_groups` for a fixed c
  and :func:`adaptive_c` / :class:`AdaptiveEmbeddingLR` for a c_t recomputed during training
  (the adaptive form is OUR extension);
- frequency-aware sampling: the paper's argument E[Delta e_i] = -eta lambda e_i - eta p_i grad L
  (rare tokens, small p_i, decay); :class:`FrequencyBalancedSampler` is OUR online batch sampler
  that up-weights rows whose tokens have been drawn less often than average;
- diagnostics: the top Hessian eigenvalue of the E block and of the W block by power iteration on
  Hessian-vector products (:func:`top_hessian_eigenvalues`), numerical ranks of E, W and EW,
  the Fourier spectrum of E over tokens and per-token embedding norms.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gdrepro.nn import portable_sqrt

OPERATIONS = ("add", "mul", "div", "sq")
STRATEGIES = ("uniform", "random", "skewed")
ENCODINGS = ("raw", "onehot")  # inputs of the MLP without embeddings


# --- data -----------------------------------------------------------------------------------


def modular_dataset(op: str, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs of ``op`` mod ``p``: tokens ``(N, 4)`` = [a, p, b, p+1] and labels ``(N,)``.

    add: a + b; mul: a b; div: a / b = a b^(p-2) (b != 0, p prime); sq: a^2 + b^2; all mod p.
    N = p^2 (p (p - 1) for div). Rows are ordered by (a, b).
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r} (known: {', '.join(OPERATIONS)})")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        inv = torch.tensor([pow(int(v), p - 2, p) for v in range(p)])
        y = (a * inv[b]) % p
    elif op == "add":
        y = (a + b) % p
    elif op == "mul":
        y = (a * b) % p
    else:
        y = (a * a + b * b) % p
    x = torch.stack([a, torch.full_like(a, p), b, torch.full_like(a, p + 1)], dim=1)
    return x, y


def token_weights(p: int, skew: float, generator: torch.Generator) -> torch.Tensor:
    """Skewed-split token weights ``w_t = exp(-skew r_t / p)`` for a random rank r_t of each value t
    (skew = 0: random split; skew = 10 at p = 97 leaves 6-8 tokens in fewer than 5 training rows)."""
    rank = torch.randperm(p, generator=generator).double()
    return torch.exp(-skew * rank / p)


def split(
    x: torch.Tensor,
    p: int,
    strategy: str,
    generator: torch.Generator,
    test_fraction: float = 0.2,
    train_fraction: float = 0.3,
    skew: float = 10.0,
    train_generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) row indices of dataset rows ``x``.

    A seeded ``test_fraction`` of the rows is the test set (the same for every strategy given the
    generator state); ``round(train_fraction N)`` training rows are drawn without replacement from
    the remaining rows by ``strategy``: ``random`` (uniform over rows), ``uniform`` (the same
    number of rows, +-1, for every value of a) or ``skewed`` (row (a, b) drawn with probability
    proportional to w_a w_b, w from :func:`token_weights` with parameter ``skew``; Gumbel top-k).
    The test set uses ``generator`` only; the training draw uses ``train_generator`` when given, so
    every strategy can share one test set.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    n = len(x)
    n_test, n_train = round(test_fraction * n), round(train_fraction * n)
    if n_test + n_train > n:
        raise ValueError("test_fraction + train_fraction must not exceed 1")
    perm = torch.randperm(n, generator=generator)
    test, pool = perm[:n_test].sort().values, perm[n_test:]
    generator = train_generator or generator
    if strategy == "random":
        train = pool[torch.randperm(len(pool), generator=generator)[:n_train]]
    elif strategy == "uniform":
        # random order within each value of a, then take rows round-robin over values of a
        pool = pool[torch.randperm(len(pool), generator=generator)]
        a = x[pool, 0]
        order = torch.argsort(a, stable=True)
        pool, a = pool[order], a[order]
        counts = torch.bincount(a, minlength=p)
        start = torch.cumsum(counts, 0) - counts
        within = torch.arange(len(pool)) - start[a]  # position of the row among rows with its a
        # interleave the values of a in a random order so the +-1 remainder goes to random values
        value_order = torch.argsort(torch.randperm(p, generator=generator))
        key = within * p + value_order[a]
        train = pool[torch.argsort(key)[:n_train]]
    else:
        w = token_weights(p, skew, generator)
        logw = torch.log(w[x[pool, 0]] * w[x[pool, 2]])
        u = torch.rand(len(pool), generator=generator, dtype=torch.float64).clamp_min(1e-300)
        gumbel = -torch.log(-torch.log(u))
        train = pool[torch.topk(logw + gumbel, n_train).indices]
    return train.sort().values, test


def token_frequency(x: torch.Tensor, vocab: int) -> torch.Tensor:
    """Rows containing each token (as a or as b; the operator and "=" tokens count once per row)."""
    counts = torch.bincount(x[:, 0], minlength=vocab) + torch.bincount(x[:, 2], minlength=vocab)
    counts = counts + torch.bincount(x[:, 1], minlength=vocab) + torch.bincount(x[:, 3], minlength=vocab)
    same = x[:, 0] == x[:, 2]  # a row with a = b touches its token once
    return counts - torch.bincount(x[same, 0], minlength=vocab)


# --- models -----------------------------------------------------------------------------------


class EmbeddingMLP(nn.Module):
    """E (vocab x d) -> concat of the 4 token embeddings (4 d) -> Linear 4d->H -> ReLU -> Linear H->P."""

    def __init__(self, p: int, d: int = 128, hidden: int = 512):
        super().__init__()
        self.p = p
        self.embed = nn.Embedding(p + 2, d)
        self.fc1 = nn.Linear(4 * d, hidden)
        self.fc2 = nn.Linear(hidden, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.embed(x).flatten(1))))


class NoEmbeddingMLP(nn.Module):
    """An MLP on the tokens themselves, without an embedding layer: Linear n_in->H -> ReLU -> Linear H->P.

    ``encoding="raw"``: the raw vector [a, P, b, P+1] x ``input_scale`` (n_in = 4 real numbers);
    ``encoding="onehot"``: the concatenated one-hot codes of the 4 tokens (n_in = 4 (P + 2)), so the
    first layer reads one row of W per token: the same function class as E W, without the separate
    (bilinear) factor E.
    """

    def __init__(self, p: int, hidden: int = 512, input_scale: float | None = None, encoding: str = "raw"):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
        self.p, self.encoding = p, encoding
        self.input_scale = 1.0 / p if input_scale is None else input_scale
        self.fc1 = nn.Linear(4 if encoding == "raw" else 4 * (p + 2), hidden)
        self.fc2 = nn.Linear(hidden, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding == "raw":
            h = x.to(self.fc1.weight.dtype) * self.input_scale
        else:
            h = F.one_hot(x, self.p + 2).flatten(1).to(self.fc1.weight.dtype)
        return self.fc2(F.relu(self.fc1(h)))


class TinyTransformer(nn.Module):
    """A one-layer, LayerNorm-free decoder (the modular-arithmetic transformer of Nanda et al. 2023,
    narrower): token embedding E (vocab x d) + learned positions, causal multi-head attention,
    residual ReLU MLP (d -> 4d -> d), unembedding d -> P read at the last ("=") position.

    Reference form for :func:`transformer_forward` (the stacked form used in training).
    """

    def __init__(self, p: int, d: int = 32, heads: int = 4, mlp: int | None = None):
        super().__init__()
        self.p, self.heads = p, heads
        self.embed = nn.Embedding(p + 2, d)
        self.pos = nn.Parameter(torch.randn(4, d))
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.fc1, self.fc2 = nn.Linear(d, mlp or 4 * d), nn.Linear(mlp or 4 * d, d)
        self.unembed = nn.Linear(d, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos
        batch, n, d = h.shape
        q, k, v = self.qkv(h).view(batch, n, 3, self.heads, d // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        h = h + self.out(att.transpose(1, 2).reshape(batch, n, d))
        h = h + self.fc2(F.relu(self.fc1(h)))
        return self.unembed(h[:, -1])


def _uniform(shape, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def init_stack(
    s: int, p: int, embedding: bool, generator: torch.Generator, d: int = 128, hidden: int = 512,
    encoding: str = "raw",
) -> dict[str, torch.Tensor]:
    """Parameters of ``s`` independent MLPs, stacked on a leading axis, PyTorch's default init.

    Keys (shapes): ``E`` (s, p+2, d) ~ N(0, 1) [embedding models only]; ``W`` (s, n_in, hidden),
    ``b`` (s, hidden), ``V`` (s, hidden, p), ``c`` (s, p) with U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    as nn.Linear. Weights are stored input-major (x @ W), the transpose of nn.Linear.weight.
    n_in = 4 d with embeddings, else 4 (``encoding="raw"``) or 4 (p + 2) (``"onehot"``).
    """
    n_in = 4 * d if embedding else (4 if encoding == "raw" else 4 * (p + 2))
    params = {}
    if embedding:
        params["E"] = torch.randn(s, p + 2, d, generator=generator)
    params["W"] = _uniform((s, n_in, hidden), n_in, generator)
    params["b"] = _uniform((s, hidden), n_in, generator)
    params["V"] = _uniform((s, hidden, p), hidden, generator)
    params["c"] = _uniform((s, p), hidden, generator)
    return params


def init_transformer_stack(s: int, p: int, generator: torch.Generator, d: int = 32, mlp: int | None = None
                           ) -> dict[str, torch.Tensor]:
    """Parameters of ``s`` stacked :class:`TinyTransformer` s, PyTorch's default init (E and the
    positions N(0, 1), linear maps U(-1/sqrt(fan_in), ..)). Keys: ``E`` (s, p+2, d), ``pos`` (s, 4, d),
    ``Wqkv`` (s, d, 3d), ``Wo`` (s, d, d), ``W1`` (s, d, m), ``b1`` (s, m), ``W2`` (s, m, d),
    ``b2`` (s, d), ``U`` (s, d, p), ``u`` (s, p); input-major like :func:`init_stack`."""
    m = mlp or 4 * d
    return {"E": torch.randn(s, p + 2, d, generator=generator), "pos": torch.randn(s, 4, d, generator=generator),
            "Wqkv": _uniform((s, d, 3 * d), d, generator), "Wo": _uniform((s, d, d), d, generator),
            "W1": _uniform((s, d, m), d, generator), "b1": _uniform((s, m), d, generator),
            "W2": _uniform((s, m, d), m, generator), "b2": _uniform((s, d), m, generator),
            "U": _uniform((s, d, p), d, generator), "u": _uniform((s, p), d, generator)}


def stack_transformers(models: list[TinyTransformer]) -> dict[str, torch.Tensor]:
    """Stacked parameters (see :func:`init_transformer_stack`) copied from identical-shape models."""
    def t(get):
        return torch.stack([get(m).detach() for m in models]).clone().contiguous()

    return {"E": t(lambda m: m.embed.weight), "pos": t(lambda m: m.pos), "Wqkv": t(lambda m: m.qkv.weight.T),
            "Wo": t(lambda m: m.out.weight.T), "W1": t(lambda m: m.fc1.weight.T), "b1": t(lambda m: m.fc1.bias),
            "W2": t(lambda m: m.fc2.weight.T), "b2": t(lambda m: m.fc2.bias), "U": t(lambda m: m.unembed.weight.T),
            "u": t(lambda m: m.unembed.bias)}


def _gather_rows(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``table[i][x[i]]`` for stacked tables ``(s, n, k)`` and indices ``(s, ...)``: one flat lookup."""
    s, n = table.shape[:2]
    offset = (torch.arange(s, device=x.device) * n).view(s, *[1] * (x.dim() - 1))
    return F.embedding(x + offset, table.reshape(s * n, -1))


def transformer_forward(params: dict[str, torch.Tensor], x: torch.Tensor, heads: int = 4) -> torch.Tensor:
    """Logits ``(s, B, p)`` of stacked :class:`TinyTransformer` s on their own batches ``x`` (s, B, 4).

    One layer, read out at the last position, so only its query is needed: attention of position 4
    over positions 1..4 (the causal mask of the last row is all-visible), softmax(q k^T / sqrt(d_h)) v.
    """
    s, batch, n = x.shape
    h = _gather_rows(params["E"], x) + params["pos"].unsqueeze(1)  # (s, B, 4, d)
    d = h.shape[-1]
    qkv = torch.bmm(h.reshape(s, batch * n, d), params["Wqkv"]).view(s, batch, n, 3, heads, d // heads)
    q, k, v = qkv[:, :, -1, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]  # (s, B, H, dh), (s, B, 4, H, dh) x2
    att = torch.softmax(torch.einsum("sbhe,sbnhe->sbhn", q, k) / math.sqrt(d // heads), dim=-1)
    z = torch.einsum("sbhn,sbnhe->sbhe", att, v).reshape(s, batch, d)
    r = h[:, :, -1] + torch.bmm(z, params["Wo"])
    r = r + torch.baddbmm(params["b2"].unsqueeze(1), torch.relu(torch.baddbmm(params["b1"].unsqueeze(1), r,
                                                                                params["W1"])), params["W2"])
    return torch.baddbmm(params["u"].unsqueeze(1), r, params["U"])


def stack_models(models: list[nn.Module]) -> dict[str, torch.Tensor]:
    """Stacked parameters (see :func:`init_stack`) copied from a list of identical-shape models."""
    params = {}
    if hasattr(models[0], "embed"):
        params["E"] = torch.stack([m.embed.weight.detach() for m in models])
    params["W"] = torch.stack([m.fc1.weight.detach().T for m in models])
    params["b"] = torch.stack([m.fc1.bias.detach() for m in models])
    params["V"] = torch.stack([m.fc2.weight.detach().T for m in models])
    params["c"] = torch.stack([m.fc2.bias.detach() for m in models])
    return {k: v.clone().contiguous() for k, v in params.items()}


def stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor, input_scale: float = 0.0) -> torch.Tensor:
    """Logits ``(s, B, p)`` of ``s`` stacked models on their own batches ``x`` ``(s, B, 4)``.

    Transformers (``Wqkv`` in params) go to :func:`transformer_forward`. MLPs with embeddings gather
    rows of their own E (one flat embedding lookup); without embeddings, one-hot inputs (W with
    4 (p + 2) rows) gather and sum the 4 rows of W the tokens select (= one-hot @ W), raw inputs
    read ``x * input_scale`` as 4 real numbers. Both dense layers are ``torch.baddbmm``.
    """
    if "Wqkv" in params:
        return transformer_forward(params, x)
    s, batch = x.shape[:2]
    w = params["W"]
    if "E" in params:
        h = _gather_rows(params["E"], x).reshape(s, batch, -1)
        h = torch.relu(torch.baddbmm(params["b"].unsqueeze(1), h, w))
    elif w.shape[1] == 4:
        h = torch.relu(torch.baddbmm(params["b"].unsqueeze(1), x.to(w.dtype) * input_scale, w))
    else:
        vocab = w.shape[1] // 4
        rows = x + torch.arange(4, device=x.device) * vocab  # row of W read by each position's token
        h = torch.relu(_gather_rows(w, rows).sum(2) + params["b"].unsqueeze(1))
    return torch.baddbmm(params["c"].unsqueeze(1), h, params["V"])


def stacked_loss(params: dict, x: torch.Tensor, y: torch.Tensor, input_scale: float = 0.0) -> torch.Tensor:
    """Sum over models of each model's mean cross-entropy (so each model gets its own gradient)."""
    logits = stacked_forward(params, x, input_scale)
    per = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
    return per.mean(dim=1).sum()


class StackedAdam:
    """Adam on stacked parameters with a learning rate per model and per block.

    ``lr`` maps each parameter name to a tensor ``(s,)`` (one rate per model; Adam-LR sets
    lr["E"] = c lr["W"]). ``decoupled=False`` is torch.optim.Adam's L2 weight decay (grad +=
    lambda p), ``True`` AdamW's (p -= lr lambda p); a bool tensor ``(s,)`` chooses per model (the
    two readings of "Adam with weight decay" in one stack). Same arithmetic as torch.optim.Adam /
    AdamW per model.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: dict[str, torch.Tensor], weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decoupled: bool | torch.Tensor = False):
        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        s = next(iter(params.values())).shape[0]
        self.decoupled = torch.as_tensor(decoupled, dtype=torch.bool).expand(s).clone()
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.t = 0

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        every, none = bool(self.decoupled.all()), not bool(self.decoupled.any())
        for k, p in self.params.items():
            g = grads[k]
            shape = (-1, *([1] * (p.dim() - 1)))
            lr = self.lr[k].view(shape)
            if self.wd and none:  # Adam: L2 decay through the gradient
                g = g.add(p, alpha=self.wd)
            elif self.wd and every:  # AdamW: decoupled decay
                p.mul_(1 - lr * self.wd)
            elif self.wd:  # a mixed stack: each model its own form
                dec = self.decoupled.to(p.device).view(shape)
                g = g + p * (~dec * self.wd)
                p.mul_(1 - lr * self.wd * dec)
            self.m[k].lerp_(g, 1 - b1)
            self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = portable_sqrt(self.v[k] / bc2).add_(self.eps)
            p.addcdiv_(self.m[k] * (lr / bc1), denom, value=-1)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only models ``keep`` (indices) in the parameters, moments and learning rates."""
        for store in (self.params, self.m, self.v, self.lr):
            for k in store:
                store[k] = store[k][keep.to(store[k].device)].contiguous()
        self.decoupled = self.decoupled[keep.cpu()].clone()


# --- Adam-LR --------------------------------------------------------------------------------


def embedding_lr_param_groups(model: nn.Module, c: float, lr: float = 0.01, **group_options) -> list[dict]:
    """torch.optim param groups for Adam-LR: the embedding at ``c lr``, everything else at ``lr``.

    ``model`` is an :class:`EmbeddingMLP` (any module with an ``embed`` nn.Embedding).
    For the adaptive c_t (ours) wrap the optimizer in :class:`AdaptiveEmbeddingLR`.
    """
    embed = [model.embed.weight]
    rest = [p for n, p in model.named_parameters() if not n.startswith("embed.")]
    return [
        {"params": embed, "lr": c * lr, "name": "embedding", **group_options},
        {"params": rest, "lr": lr, "name": "rest", **group_options},
    ]


def adaptive_c(e: torch.Tensor, w: torch.Tensor, f_e: torch.Tensor | float = 1.0,
               f_w: torch.Tensor | float = 1.0) -> torch.Tensor:
    """c = (sigma_max(E) / sigma_max(W)) (f_W / f_E), the paper's Adam-LR ratio (batched over a
    leading axis). f are update frequencies: the share of steps in which the block gets a
    gradient (W: 1; E: the mean over tokens of the share of batches containing the token)."""
    ratio = torch.linalg.matrix_norm(e, ord=2) / torch.linalg.matrix_norm(w, ord=2)
    return ratio * (torch.as_tensor(f_w) / torch.as_tensor(f_e))


def embedding_update_frequency(freq: torch.Tensor, n_rows: int, batch: int) -> torch.Tensor:
    """f_E: mean over the value tokens of P(token in a batch of ``batch`` rows drawn uniformly
    with replacement from ``n_rows`` rows), a token being in ``freq`` of them."""
    share = freq.double() / n_rows
    return (1 - (1 - share) ** batch).mean()


class AdaptiveEmbeddingLR:
    """OUR extension of Adam-LR: recompute c_t = adaptive_c(E, W) every ``every`` steps and set
    the embedding group's lr to c_t times the base lr (param groups from embedding_lr_param_groups)."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: EmbeddingMLP, lr: float, every: int = 50,
                 f_e: float = 1.0, f_w: float = 1.0):
        self.optimizer, self.model, self.lr, self.every, self.f_e, self.f_w = optimizer, model, lr, every, f_e, f_w
        self.steps, self.c = 0, float("nan")
        self.update()

    @torch.no_grad()
    def update(self) -> float:
        self.c = float(adaptive_c(self.model.embed.weight.detach(), self.model.fc1.weight.detach(), self.f_e, self.f_w))
        for group in self.optimizer.param_groups:
            if group.get("name") == "embedding":
                group["lr"] = self.c * self.lr
        return self.c

    def step(self) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.update()


# --- frequency-aware sampling -----------------------------------------------------------------


class FrequencyBalancedSampler:
    """OUR online frequency-balancing batch sampler, for ``s`` stacked models at once.

    Each model keeps running counts n_t of how often token t (as a or b) has been drawn. Row
    (a, b) of its training set is drawn with probability proportional to
    ((nbar + 1) / (n_a + 1))^tau ((nbar + 1) / (n_b + 1))^tau, nbar the mean count over the
    tokens present, so tokens drawn less often than average are drawn more; ``tau`` is one exponent
    or one per model ``(s,)``. tau = 0 is uniform
    sampling with replacement; with tau > 0 the token update frequencies p_i are pushed towards
    equal (the paper's argument: E[Delta e_i] = -eta lambda e_i - eta p_i grad L).
    """

    def __init__(self, x_train: torch.Tensor, p: int, tau: float | torch.Tensor,
                 generator: torch.Generator | None = None):
        self.a, self.b = x_train[..., 0], x_train[..., 2]  # (s, n)
        self.p, self.generator = p, generator
        self.tau = torch.as_tensor(tau, dtype=torch.float64).expand(x_train.shape[0]).clone().view(-1, 1)
        self.counts = torch.zeros(x_train.shape[0], p, dtype=torch.float64)
        present = torch.zeros_like(self.counts)
        present.scatter_(1, self.a, 1.0).scatter_(1, self.b, 1.0)
        self.present = present

    def sample(self, batch: int, generators: list[torch.Generator | None] | None = None) -> torch.Tensor:
        """Row indices ``(s, batch)`` into each model's training rows; updates the counts of the rows
        drawn. Row i is drawn with ``generators[i]`` (each model's own stream, so its batches do not
        depend on what else is stacked; ``None``: not drawn, left 0), or all rows with the sampler's
        own generator when ``generators`` is not given."""
        nbar = (self.counts * self.present).sum(1, keepdim=True) / self.present.sum(1, keepdim=True)
        ratio = ((nbar + 1) / (self.counts + 1)) ** self.tau
        w = torch.gather(ratio, 1, self.a) * torch.gather(ratio, 1, self.b)
        if generators is None:
            idx = torch.multinomial(w.float(), batch, replacement=True, generator=self.generator)
            drawn = torch.ones(len(w), 1, dtype=torch.float64)
        else:
            idx = torch.zeros(len(w), batch, dtype=torch.long)
            for i, g in enumerate(generators):
                if g is not None:
                    idx[i] = torch.multinomial(w[i].float(), batch, replacement=True, generator=g)
            drawn = torch.tensor([[float(g is not None)] for g in generators], dtype=torch.float64)
        one = drawn.expand(idx.shape).contiguous()
        self.counts.scatter_add_(1, torch.gather(self.a, 1, idx), one)
        self.counts.scatter_add_(1, torch.gather(self.b, 1, idx), one)
        return idx

    def select(self, keep: torch.Tensor) -> None:
        self.a, self.b = self.a[keep], self.b[keep]
        self.counts, self.present, self.tau = self.counts[keep], self.present[keep], self.tau[keep]


# --- diagnostics ------------------------------------------------------------------------------


def top_hessian_eigenvalues(
    loss_fn, params: dict[str, torch.Tensor], blocks: tuple[str, ...] = ("E", "W"), iters: int = 20,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Top (largest-magnitude) eigenvalue of each diagonal Hessian block, by power iteration on
    Hessian-vector products (double backward), for stacked models at once.

    ``loss_fn(params)`` must return a sum over models of per-model losses (e.g. :func:`stacked_loss`),
    so the Hessian is block-diagonal across models and one HVP of the sum gives every model's HVP.
    Returns, per block, a tensor ``(s,)`` of Rayleigh quotients v^T H_bb v, |v| = 1 per model.
    """
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    loss = loss_fn(leaves)
    grads = torch.autograd.grad(loss, [leaves[b] for b in blocks], create_graph=True)
    out = {}
    for block, g in zip(blocks, grads, strict=True):
        s = g.shape[0]
        v = torch.randn(g.shape, generator=generator, dtype=g.dtype).to(g.device)
        v = v / v.flatten(1).norm(dim=1).view(s, *[1] * (g.dim() - 1))
        eig = torch.zeros(s, dtype=g.dtype, device=g.device)
        for _ in range(iters):
            (hv,) = torch.autograd.grad(g, leaves[block], grad_outputs=v, retain_graph=True)
            eig = (hv * v).flatten(1).sum(1)
            norm = hv.flatten(1).norm(dim=1).clamp_min(1e-30)
            v = hv / norm.view(s, *[1] * (g.dim() - 1))
        out[block] = eig.detach()
    return out


def numerical_rank(m: torch.Tensor, rtol: float = 1e-2) -> torch.Tensor:
    """Number of singular values above ``rtol`` sigma_max (batched over leading axes)."""
    sv = torch.linalg.svdvals(m)
    return (sv > rtol * sv[..., :1]).sum(-1)


def effective_embedding(e: torch.Tensor, w: torch.Tensor, p: int) -> torch.Tensor:
    """EW: the value-token embeddings E[:p] times the block of W that reads the first operand
    (rows 0..d-1 of the input-major W), i.e. what the first layer sees of token a. (s, p, hidden)."""
    d = e.shape[-1]
    return e[..., :p, :] @ w[..., :d, :]


def fourier_spectrum(e: torch.Tensor, p: int) -> torch.Tensor:
    """Share of the (mean-removed) embedding energy at each frequency k = 0..p//2 of the DFT over
    the value tokens 0..p-1: |F_k|^2 summed over dimensions (k and p-k pooled), normalised to 1."""
    values = e[..., :p, :] - e[..., :p, :].mean(dim=-2, keepdim=True)
    power = torch.fft.rfft(values.double(), dim=-2).abs().square().sum(-1)  # (..., p//2 + 1)
    power[..., 1:] *= 2  # k and p - k (p odd: no Nyquist term)
    return power / power.sum(-1, keepdim=True).clamp_min(1e-30)


def embedding_norms(e: torch.Tensor) -> torch.Tensor:
    """L2 norm of each token's embedding (batched)."""
    return e.norm(dim=-1)
