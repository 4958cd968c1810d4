"""Gradual AA-CBR (Gould & Toni 2025, arXiv:2505.15742) and classic AA-CBR (Cyras et al. 2016).

Gradual AA-CBR turns a casebase into an edge-weighted quantitative bipolar argumentation
framework (QBAF) whose edges are soft, differentiable versions of AA-CBR's attack relation
(Sec. 3 of the paper; the formulas below follow the official code's defaults):

- s_i = w . x_i, a learned scalar projection of every case (feature importance = w);
- P(a, b) = sigmoid((s_a - s_b) / T): soft "a is more specific than b"; W(a, b) = P(a,b)(1 - P(b,a));
- Att(a, b) = [y_a != y_b] W(a,b) prod_k (1 - [y_k = y_a] W(a,k) [y_k != y_b] W(k,b))  (soft minimality)
- Sup(a, b) = [y_a = y_b][a != b] W(a,b) prod_k (1 - W(a,k) W(k,b));
- A = Sup - Att, kept only where |A_ab| > |A_ba| (the graph becomes a DAG ordered by s);
- one default argument per class (features = mean of the training set), never attacking or supporting;
- base scores tau_i = sigmoid(c s_i); a new case N weakens case i by its irrelevance
  irr_i = 1 - P(N, i): tau'_i = ReLU(tau_i - irr_i tau_N);
- ReLU semantics sigma^{k+1}_b = ReLU(tau'_b + sum_a A_ab sigma^k_a), sigma^0 = tau', K steps;
- logits = final strengths of the class defaults; loss = cross-entropy + gamma R, with the
  community-preservation regulariser R = ||Att||_* + ||Sup||_* ("separate": the official iris and
  glioma notebooks) or R = ||Att + Sup||_* = the nuclear norm of |Sup - Att| ("joint": WDBC, mushroom).

Everything here is pure: arrays/tensors in, arrays/tensors out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gdrepro.runtime import flushed_denormals

# --- the soft casebase graph -------------------------------------------------------------------


def specificity(s_a: torch.Tensor, s_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(a, b) = sigmoid((s_a - s_b) / T) for every pair: shape (len(s_a), len(s_b))."""
    return torch.sigmoid((s_a[:, None] - s_b[None, :]) / temperature)


FLOOR = 1e-6


class _SumLogBlockers(torch.autograd.Function):
    """out[a, b] = sum_k log(max(1 - left[a, k] right[k, b], FLOOR)), fused over chunks of k.

    Autograd through the chunked broadcast would keep every n x chunk x m intermediate (product,
    clamp mask, log) for the backward; this function keeps only ``left`` and ``right`` and
    recomputes the products there: d/dx log(1 - x) = -1 / (1 - x) where x <= 1 - FLOOR, else 0
    (torch.clamp's rule), contracted with the incoming gradient by batched matmuls.
    """

    @staticmethod
    def forward(ctx, left, right, chunk):
        ctx.save_for_backward(left, right)
        ctx.chunk = chunk
        total = left.new_zeros(left.shape[0], right.shape[1])
        for k in _chunks(left.shape[1], chunk):
            x = left[:, k, None] * right[None, k, :]
            total += x.clamp_(max=1 - FLOOR).neg_().log1p_().sum(dim=1)
        return total

    @staticmethod
    def backward(ctx, grad):
        left, right = ctx.saved_tensors
        grad_left, grad_right = torch.zeros_like(left), torch.zeros_like(right)
        for k in _chunks(left.shape[1], ctx.chunk):
            x = left[:, k, None] * right[None, k, :]
            q = torch.where(x <= 1 - FLOOR, (x - 1).reciprocal_(), 0).mul_(grad[:, None, :])  # -g / (1 - x)
            grad_left[:, k] = torch.einsum("akb,kb->ak", q, right[k])
            grad_right[k] = torch.einsum("akb,ak->kb", q, left[:, k])
        return grad_left, grad_right, None


def _chunks(kk: int, chunk: int):
    return [slice(k0, k0 + chunk) for k0 in range(0, kk, chunk)]


def blocked_product(left: torch.Tensor, right: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """out[a, b] = prod_k (1 - left[a, k] right[k, b]) (the soft-minimality "blockers").

    The factors do not separate, so the cost is n^3, but memory stays at n^2 * chunk: the
    product is taken as exp(sum_k log(1 - left right)) over chunks of k (one fused autograd
    function, :class:`_SumLogBlockers`). Each factor is floored at ``FLOOR`` (1e-6): a float32
    sigmoid saturates to exactly 1, and a zero factor would send log to -inf.
    ``chunk=None`` picks a chunk of about 1M elements.
    """
    n, kk, m = left.shape[0], left.shape[1], right.shape[1]
    if kk == 0 or n == 0 or m == 0:
        return left.new_ones(n, m)
    chunk = chunk or max(1, min(kk, (1 << 20) // max(1, n * m)))
    return torch.exp(_SumLogBlockers.apply(left, right, chunk))


def casebase_graph(
    s: torch.Tensor,
    labels: torch.Tensor,
    is_default: torch.Tensor,
    temperature: float,
    supports: bool = True,
    blockers: bool = True,
    chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimal soft attacks and supports (Att, Sup), both >= 0, shape (n, n), row = source.

    ``s`` (n,) projections of all arguments (cases and defaults), ``labels`` (n,) int classes,
    ``is_default`` (n,) bool. Defaults never attack or support (their rows are zero).
    """
    p = specificity(s, s, temperature)
    w = p * (1 - p.T)
    w = torch.where(is_default[:, None], torch.zeros_like(w), w)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    att = torch.where(same, torch.zeros_like(w), w)
    sup = torch.where(same & ~eye, w, torch.zeros_like(w)) if supports else torch.zeros_like(w)
    if not blockers:
        return att, sup
    att_blockers, sup_blockers = minimality_blockers(w, labels, is_default, supports, chunk)
    return att * att_blockers, sup * sup_blockers


def minimality_blockers(
    w: torch.Tensor, labels: torch.Tensor, is_default: torch.Tensor, supports: bool = True, chunk: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The blocker products of Att and Sup, computed only where an edge can exist (ones elsewhere).

    Class by class (c): Att(a, b) needs a in c, b not in c, blockers k in c (the factor
    [y_k = y_a][y_k != y_b]); Sup(a, b) needs a, b in c, blockers k any case. Defaults never
    attack or support (W(d, .) = 0), so they are neither sources nor blockers (their factor is 1).
    This is the full n x n x n product restricted to the nonzero factors: about 2/9 + 1/3 of its
    work with three balanced classes, 1/4 + 1/2 with two.
    """
    att, sup = torch.ones_like(w), torch.ones_like(w)
    cases = torch.nonzero(~is_default).flatten()
    for c in torch.unique(labels):
        mine = labels == c
        src = torch.nonzero(mine & ~is_default).flatten()
        other = torch.nonzero(~mine).flatten()
        if len(src) and len(other):
            att[src[:, None], other[None, :]] = blocked_product(w[src][:, src], w[src][:, other], chunk)
        if supports and len(src):
            tgt = torch.nonzero(mine).flatten()
            sup[src[:, None], tgt[None, :]] = blocked_product(w[src][:, cases], w[cases][:, tgt], chunk)
    return att, sup


def uni_directional(a: torch.Tensor) -> torch.Tensor:
    """Keep A_ab only where |A_ab| > |A_ba| (post-processing that makes the graph a DAG)."""
    return torch.where(a.abs() > a.T.abs(), a, torch.zeros_like(a))


def new_case_base_scores(
    tau: torch.Tensor, s_cases: torch.Tensor, tau_new: torch.Tensor, s_new: torch.Tensor, temperature: float
) -> torch.Tensor:
    """tau'_{N,i} = ReLU(ReLU(tau_i) - (1 - P(N, i)) tau_N), batched over new cases: (B, n)."""
    irrelevance = 1 - specificity(s_new, s_cases, temperature)
    return F.relu(F.relu(tau)[None, :] - irrelevance * tau_new[:, None])


def _back_step(h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """h @ A^T over the rows and columns where h is nonzero (exact zeros add nothing).

    In the backward's tail, h = (h A^T) * [sigma* > 0] dies out row by row and column by column
    (on WDBC's 364 cases, 10% of the columns are left after 40 steps); the product over the
    nonzero block is the same sum up to the order of float additions.
    """
    rows, cols = h.any(dim=1), h.any(dim=0)
    n_rows, n_cols = int(rows.sum()), int(cols.sum())
    if n_rows * n_cols > 0.6 * h.numel():  # dense enough: gathering would cost more than it saves
        return h @ a.T
    out = torch.zeros(h.shape[0], a.shape[0], dtype=h.dtype, device=h.device)
    if n_rows:
        out[rows] = h[rows][:, cols] @ a[:, cols].T
    return out


class _ReluSemantics(torch.autograd.Function):
    """K steps of sigma^{k+1} = ReLU(tau' + sigma^k A), stopping early at an exact fixed point.

    Once a step returns its input bit for bit, every later step does too, so the forward stops
    there; the backward runs the remaining (identical) steps as one accumulation
    sum_j h_j, h_{j} = (h_{j+1} A^T) * [sigma* > 0], which it stops once h is exactly zero
    (a DAG's gradient dies out after its depth), and then the stored steps as autograd would.
    Same values as the unrolled loop; only the order of float sums in dA and in the products
    h A^T (taken over h's nonzero block, :func:`_back_step`) differs.
    """

    @staticmethod
    def forward(ctx, a, base, iterations):
        sigmas = [base]
        for _ in range(iterations):
            nxt = torch.relu(base + sigmas[-1] @ a)
            if torch.equal(nxt, sigmas[-1]):
                break
            sigmas.append(nxt)
        ctx.tail = iterations - (len(sigmas) - 1)  # steps that returned sigmas[-1] unchanged
        ctx.save_for_backward(a, *sigmas)
        return sigmas[-1] if len(sigmas) > 1 else base.clone()

    @staticmethod
    def backward(ctx, grad):
        a, *sigmas = ctx.saved_tensors
        grad_a, grad_base = torch.zeros_like(a), torch.zeros_like(sigmas[0])
        if ctx.tail:
            alive = sigmas[-1] > 0
            h, total = grad * alive, torch.zeros_like(grad)
            for step in range(ctx.tail):
                total += h
                if step + 1 == ctx.tail or not h.any():
                    break
                h = _back_step(h, a).mul_(alive)
            grad_a += sigmas[-1].T @ total
            grad_base += total
            grad = _back_step(h, a)  # the gradient reaching the last stored step
        for k in range(len(sigmas) - 2, -1, -1):
            h = grad * (sigmas[k + 1] > 0)
            grad_a += sigmas[k].T @ h
            grad_base += h
            grad = _back_step(h, a)
        return grad_a, grad_base + grad, None


def relu_semantics(a: torch.Tensor, base: torch.Tensor, iterations: int) -> torch.Tensor:
    """sigma^{k+1} = ReLU(tau' + sigma^k A), sigma^0 = tau'; ``base`` (B, n), one matmul per step
    (:class:`_ReluSemantics`: the unrolled loop's values and gradients, without its idle steps)."""
    return _ReluSemantics.apply(a, base, int(iterations)) if iterations > 0 else base


def nuclear_norm(m: torch.Tensor) -> torch.Tensor:
    """Sum of singular values (the community-preservation regulariser of the official code)."""
    return torch.linalg.svdvals(m).sum()


REGULARISERS = ("separate", "joint")


def community_regulariser(att: torch.Tensor, sup: torch.Tensor, kind: str) -> torch.Tensor:
    """``separate``: ||Att||_* + ||Sup||_*; ``joint``: ||Att + Sup||_* (= ||abs(Sup - Att)||_*, as
    Att and Sup never share an entry: attacks join different classes, supports equal ones)."""
    if kind == "separate":
        return nuclear_norm(att) + nuclear_norm(sup)
    if kind == "joint":
        return nuclear_norm(att + sup)
    raise ValueError(f"regulariser={kind!r}: want one of {REGULARISERS}")


def forward_strengths(
    X: torch.Tensor, labels: torch.Tensor, is_default: torch.Tensor, default_index: torch.Tensor,
    w: torch.Tensor, c: torch.Tensor, new: torch.Tensor, temperature: float, iterations: int,
    supports: bool = True, blockers: bool = True, chunk: int | None = None,
    with_graph: bool = False, all_strengths: bool = False,
):
    """The batched Gradual AA-CBR forward pass for new cases ``new`` (B, f).

    ``X`` (n, f) holds the casebase followed by the defaults. Returns the defaults' final
    strengths (B, classes) (or every argument's, ``all_strengths``), and with ``with_graph``
    also the minimal attacks and supports (for the nuclear-norm regulariser).
    """
    s = X @ w
    att, sup = casebase_graph(s, labels, is_default, temperature, supports, blockers, chunk)
    a = uni_directional(sup - att)
    s_new = new @ w
    base = new_case_base_scores(torch.sigmoid(c * s), s, torch.sigmoid(c * s_new), s_new, temperature)
    sigma = relu_semantics(a, base, iterations)
    out = sigma if all_strengths else sigma[:, default_index]
    return (out, att, sup) if with_graph else out


# --- the classifier -----------------------------------------------------------------------------


@dataclass
class GradualAACBR:
    """Scikit-learn-style Gradual AA-CBR classifier (fit / predict / predict_proba / score / explain).

    ``iterations=None`` runs K = casebase size steps of the semantics (the paper's choice, exact
    for any DAG of that depth). The casebase is the training set; during ``fit`` the new cases
    are the training cases themselves (full batch, AdamW), as in the official code.
    ``feature_extractor`` (optional, e.g. an MLP or CNN ``torch.nn.Module`` mapping inputs to
    ``extractor_dim`` features) is trained jointly; the projection w then acts on its output.
    """

    temperature: float = 0.05
    lr: float = 2e-2
    epochs: int = 3000
    gamma: float = 0.005
    regulariser: str = "separate"
    iterations: int | None = None
    supports: bool = True
    blockers: bool = True
    c_init: float = 1.0
    default_case: str = "mean"
    seed: int = 0
    generator: torch.Generator | None = None
    chunk: int | None = None
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    feature_extractor: torch.nn.Module | None = None
    extractor_dim: int | None = None
    history: list = field(default_factory=list, repr=False)

    # -- training
    def fit(self, X, y, *, save: Callable[[dict[str, Any]], None] | None = None, save_every: int = 0,
            resume: dict[str, Any] | None = None) -> GradualAACBR:
        """Train on the casebase ``X, y`` (full batch, AdamW).

        Long runs: every ``save_every`` epochs ``save`` gets the training state (w, c, the feature
        extractor, the optimizer, the init generator, torch's RNG, epoch, loss history, seconds);
        ``resume``, such a state, continues from it with the bits of an uninterrupted fit.
        """
        X = self._tensor(X)
        y_np = np.asarray(y)
        self.classes_ = np.unique(y_np)
        labels = torch.as_tensor(np.searchsorted(self.classes_, y_np), device=self.device)
        n_classes = len(self.classes_)
        if self.default_case not in ("mean", "zeros"):
            raise ValueError(f"default_case={self.default_case!r}: want 'mean' or 'zeros'")
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"regulariser={self.regulariser!r}: want one of {REGULARISERS}")
        centre = X.mean(dim=0, keepdim=True) if self.default_case == "mean" else torch.zeros_like(X[:1])
        defaults = centre.expand(n_classes, -1)
        self.X_ = torch.cat([X, defaults])
        self.labels_ = torch.cat([labels, torch.arange(n_classes, device=self.device)])
        self.is_default_ = torch.cat(
            [torch.zeros(len(X), dtype=torch.bool), torch.ones(n_classes, dtype=torch.bool)]
        ).to(self.device)
        self.default_index_ = torch.arange(len(X), len(X) + n_classes, device=self.device)
        self.K_ = len(X) if self.iterations is None else int(self.iterations)
        gen = self.generator or torch.Generator().manual_seed(self.seed)
        f = X.shape[1] if self.feature_extractor is None else int(self.extractor_dim)
        bound = float(np.sqrt(6.0 / (f + 1)))  # Xavier-uniform for a (f, 1) weight
        w = (torch.rand(f, generator=gen, dtype=self.dtype) * 2 - 1) * bound
        self.w_ = w.to(self.device).requires_grad_(True)
        self.c_ = torch.tensor(self.c_init, dtype=self.dtype, device=self.device, requires_grad=True)
        params = [self.w_, self.c_]
        if self.feature_extractor is not None:
            self.feature_extractor.to(self.device)
            params += list(self.feature_extractor.parameters())
        opt = torch.optim.AdamW(params, lr=self.lr, fused=True)
        self.history, first, seconds = [], 0, 0.0
        if resume is not None:
            with torch.no_grad():
                self.w_.copy_(resume["w"])
                self.c_.copy_(resume["c"])
            if self.feature_extractor is not None:
                self.feature_extractor.load_state_dict(resume["extractor"])
            opt.load_state_dict(resume["optimizer"])
            gen.set_state(resume["generator"].cpu())
            torch.set_rng_state(resume["rng"].cpu())
            if resume["cuda_rng"] is not None:
                torch.cuda.set_rng_state_all([state.cpu() for state in resume["cuda_rng"]])
            self.history, first, seconds = list(resume["history"]), resume["epoch"], resume["seconds"]
        start = time.perf_counter()
        with flushed_denormals():  # saturated sigmoids at T = 0.05 leave ~1e-40 products: ~3x slower matmuls
            self._train(X, labels, opt, gen, first, start, seconds, save, save_every)
        return self

    def _train(self, X, labels, opt, gen, first, start, seconds, save, save_every) -> None:
        for epoch in range(first, self.epochs):
            if save is not None and save_every and epoch > first and epoch % save_every == 0:
                paused = time.perf_counter()
                save({"epoch": epoch, "w": self.w_.detach(), "c": self.c_.detach(),
                      "extractor": None if self.feature_extractor is None else self.feature_extractor.state_dict(),
                      "optimizer": opt.state_dict(), "generator": gen.get_state(), "rng": torch.get_rng_state(),
                      "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                      "history": self.history, "seconds": seconds + paused - start})
                start += time.perf_counter() - paused  # saving is not training time
            opt.zero_grad()
            logits, att, sup = self._forward(X, with_graph=True)
            ce = F.cross_entropy(logits, labels)
            loss = ce + self.gamma * community_regulariser(att, sup, self.regulariser) if self.gamma else ce
            loss.backward()
            opt.step()
            self.history.append(float(loss.detach()))
        self.fit_seconds_ = seconds + time.perf_counter() - start
        self.n_cases_ = len(X)

    def _forward(self, new: torch.Tensor, with_graph: bool = False, all_strengths: bool = False):
        cases = self.X_
        if self.feature_extractor is not None:
            cases, new = self.feature_extractor(cases), self.feature_extractor(new)
        return forward_strengths(
            cases, self.labels_, self.is_default_, self.default_index_, self.w_, self.c_, new,
            self.temperature, self.K_, self.supports, self.blockers, self.chunk, with_graph, all_strengths,
        )

    # -- inference
    def decision_function(self, X, batch: int = 2048) -> np.ndarray:
        """Final strengths of the class defaults, shape (B, classes) (the logits), in batches."""
        X = self._tensor(X)
        with torch.no_grad(), flushed_denormals():
            return torch.cat([self._forward(X[i : i + batch]) for i in range(0, len(X), batch)]).cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Softmax over the defaults' strengths (the paper's uncertainty value)."""
        return torch.softmax(torch.as_tensor(self.decision_function(X)), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def graph(self) -> np.ndarray:
        """The post-processed casebase graph A (n+classes, n+classes): >0 support, <0 attack."""
        with torch.no_grad():
            s = self.projections()
            att, sup = casebase_graph(
                s, self.labels_, self.is_default_, self.temperature, self.supports, self.blockers, self.chunk
            )
            return uni_directional(sup - att).cpu().numpy()

    def projections(self) -> torch.Tensor:
        """s_i = w . phi(x_i) of every argument (phi = the feature extractor or the identity)."""
        cases = self.X_ if self.feature_extractor is None else self.feature_extractor(self.X_)
        return cases @ self.w_

    def base_scores(self) -> np.ndarray:
        """tau_i = sigmoid(c s_i) of every argument: the data-point importances."""
        with torch.no_grad():
            return torch.sigmoid(self.c_ * self.projections()).cpu().numpy()

    def explain(self, x, top: int = 5) -> dict:
        """The argumentation behind the prediction for one case ``x``.

        Returns the predicted class, class probabilities, the contributions A_ad sigma_a of the
        strongest supporters and attackers of the winning default d, every argument's final
        strength, the graph, the feature importances w and the case importances tau.
        """
        x = self._tensor(np.asarray(x).reshape(1, -1))
        with torch.no_grad():
            sigma = self._forward(x, all_strengths=True)[0].cpu().numpy()
        a = self.graph()
        d_logits = sigma[self.default_index_.cpu().numpy()]
        k = int(d_logits.argmax())
        d = int(self.default_index_[k])
        contrib = a[:, d] * sigma
        order = np.argsort(contrib)
        supporters = [(int(i), float(contrib[i])) for i in order[::-1][:top] if contrib[i] > 0]
        attackers = [(int(i), float(contrib[i])) for i in order[:top] if contrib[i] < 0]
        return {
            "prediction": self.classes_[k],
            "proba": torch.softmax(torch.as_tensor(d_logits), 0).numpy(),
            "default": d,
            "supporters": supporters,
            "attackers": attackers,
            "strengths": sigma,
            "graph": a,
            "labels": self.labels_.cpu().numpy(),
            "feature_importance": self.w_.detach().cpu().numpy(),
            "case_importance": self.base_scores(),
        }

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(np.asarray(X), dtype=self.dtype, device=self.device)


# --- slow reference (the definitions, literally; for tests) --------------------------------------


def reference_default_strengths(
    X: np.ndarray, labels: np.ndarray, n_classes: int, w: np.ndarray, c: float, new: np.ndarray,
    temperature: float, iterations: int, supports: bool = True,
) -> np.ndarray:
    """Default strengths by explicit loops over pairs, blockers and semantics steps (float64)."""
    cases = np.vstack([X, np.repeat(X.mean(0, keepdims=True), n_classes, 0)])
    lab = np.concatenate([labels, np.arange(n_classes)])
    dflt = np.arange(len(cases)) >= len(X)
    n = len(cases)
    s = cases @ w
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    P = lambda a, b: sig((s[a] - s[b]) / temperature)  # noqa: E731
    W = lambda a, b: 0.0 if dflt[a] else P(a, b) * (1 - P(b, a))  # noqa: E731
    A = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if lab[a] != lab[b]:
                block = 1.0
                for k in range(n):
                    block *= 1 - (lab[k] == lab[a]) * W(a, k) * (lab[k] != lab[b]) * W(k, b)
                A[a, b] -= W(a, b) * block
            elif supports and a != b:
                block = 1.0
                for k in range(n):
                    block *= 1 - W(a, k) * W(k, b)
                A[a, b] += W(a, b) * block
    A = np.where(np.abs(A) > np.abs(A.T), A, 0.0)
    out = np.zeros((len(new), n_classes))
    tau = sig(c * s)
    for j, x in enumerate(new):
        sn = x @ w
        base = np.array([max(0.0, tau[i] - (1 - sig((sn - s[i]) / temperature)) * sig(c * sn)) for i in range(n)])
        strength = base.copy()
        for _ in range(iterations):
            strength = np.array([max(0.0, base[b] + sum(A[a, b] * strength[a] for a in range(n))) for b in range(n)])
        out[j] = strength[len(X):]
    return out


# --- classic AA-CBR (Cyras, Satoh & Toni 2016) ----------------------------------------------------


class AACBR:
    """Classic binary AA-CBR over binary feature sets, predicting by the grounded extension.

    Case a attacks b iff y_a != y_b, b's features are a strict subset of a's, and no case c with
    y_c = y_a lies strictly between them. The default case (empty set, ``default_outcome``) is a
    subset of every case. A new case N attacks every case whose features are not a subset of N.
    The prediction is the default outcome iff the default is in the grounded extension.
    """

    def __init__(self, default_outcome: int = 0):
        self.default_outcome = default_outcome

    def fit(self, X, y) -> AACBR:
        X = np.asarray(X).astype(bool)
        y = np.asarray(y).astype(int)
        if not set(np.unique(y)) <= {0, 1}:
            raise ValueError("classic AA-CBR is binary: labels must be 0/1")
        self.X_ = np.vstack([X, np.zeros((1, X.shape[1]), bool)])  # last row: the default
        self.y_ = np.append(y, self.default_outcome)
        Xf = self.X_.astype(np.float32)  # float matmuls count exactly below 2^24 (BLAS, not int loops)
        # sub[a, b] = b's features are a subset of a's: no feature of b missing from a
        sub = ((1 - Xf) @ Xf.T) == 0
        strict = sub & ~sub.T
        same = self.y_[:, None] == self.y_[None, :]
        between = ((strict & same).astype(np.float32) @ strict.astype(np.float32)) > 0  # a > c > b, y_c = y_a
        self.attacks_ = strict & ~same & ~between
        return self

    def grounded(self, X_new) -> np.ndarray:
        """Grounded extension (B, n+1) of each new case's framework, batched over new cases."""
        N = np.asarray(X_new).astype(np.float32)
        irrelevant = (1 - N) @ self.X_.astype(np.float32).T > 0  # the case has a feature N lacks
        att = self.attacks_.astype(np.float32)
        defeated = irrelevant.copy()
        inside = np.zeros_like(defeated)
        for _ in range(len(self.X_) + 1):
            # an argument is in once every attacker of it is defeated (N itself is unattacked)
            new_inside = (((~defeated).astype(np.float32) @ att) == 0) & ~irrelevant
            defeated = irrelevant | ((new_inside.astype(np.float32) @ att) > 0)
            if np.array_equal(new_inside, inside):
                break
            inside = new_inside
        return inside

    def predict(self, X_new) -> np.ndarray:
        default_in = self.grounded(X_new)[:, -1]
        return np.where(default_in, self.default_outcome, 1 - self.default_outcome)

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))
