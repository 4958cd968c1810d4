"""Train many small grokking models in one process: a stack of S models, one batched step each.

Pure library code (tensors in, arrays out). Every model of a stack has its own data split,
initialisation, batches, embedding factor c and stopping point; a model stops ``margin`` steps
after it first reaches ``train_target`` train accuracy and ``test_target`` test accuracy, or at
its step cap, and is then dropped from the stack so later steps cost only the live models.

A stack can be checkpointed: every ``save_every`` steps :func:`train_runs` hands ``save`` its whole
state (parameters, Adam moments and rates, every generator's state, the live models, the curves
recorded so far, the step), and ``resume=`` that state continues the stack bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from gdrepro.papers.grokking import method as M


@dataclass(frozen=True)
class Run:
    """One model to train: its data (indices into the op's dataset) and its optimiser settings."""

    name: str
    op: str
    embedding: bool
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    c: float | str = 1.0  # embedding lr factor, or "adaptive" (ours)
    tau: float = 0.0  # frequency-balancing sampler exponent (ours); 0 = uniform batches
    cap: int = 3000
    diagnostics: bool = False  # Hessian / rank / Fourier along training
    init_key: int = 0  # runs with equal init_key, kind and op share initialisation and batches
    encoding: str = "raw"  # input of a model without embeddings: "raw" numbers or "onehot" codes
    arch: str = "mlp"  # "mlp" or "transformer" (a TinyTransformer: embedding=True)
    hidden: int = 0  # MLP width; 0: train_runs' hidden
    lr: float = 0.0  # base learning rate; 0: train_runs' lr
    decoupled: bool | None = None  # weight-decay form (True: AdamW); None: train_runs' decoupled
    min_steps: int = 0  # no early stop before this step (runs compared at a common horizon)

    @property
    def kind(self) -> tuple:
        """Runs of one stack share this: the model family and the parameter shapes."""
        return (self.arch, self.embedding, "" if self.embedding else self.encoding, self.hidden)

    def key(self, purpose: str) -> tuple:
        """Generator key of this run's initialisation or batches (paired runs share it). The MLPs
        keep their original keys (1: with embeddings, 0: raw inputs) so their draws do not change."""
        if self.arch == "transformer":
            model = ("tf",)
        elif self.embedding or self.encoding == "raw":
            model = (int(self.embedding),) if not self.hidden else (int(self.embedding), self.hidden)
        else:
            model = (self.encoding, self.hidden)
        return (purpose, *model, self.op, self.init_key)


def _select(x, keep):
    return x[keep].contiguous()


def train_runs(
    runs: list[Run],
    datasets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    p: int,
    generator_for,
    lr: float = 0.01,
    weight_decay: float = 1e-3,
    batch: int = 512,
    d: int = 128,
    hidden: int = 512,
    eval_every: int = 50,
    margin: int = 100,
    train_target: float = 0.99,
    test_target: float = 0.95,
    diag_steps: tuple[int, ...] = (),
    hessian_iters: int = 10,
    hessian_batch: int = 512,
    adaptive_every: int = 50,
    tf_d: int = 32,
    decoupled: bool = False,
    log=None,
    progress=None,
    device: str = "cpu",
    save=None,
    save_every: int = 0,
    resume: dict | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Train ``runs`` (all the same model kind) as one stack; returns per-run arrays.

    ``generator_for(*key)`` gives a torch.Generator for a key (initialisation and batches are
    drawn per run from ``(kind, op, init_key)``, so paired runs share them); ``progress(step,
    {"<run>.train_acc": ..., "<run>.test_acc": ...})`` is called at every evaluation (live curves). Returned per run:
    ``steps`` (eval steps), ``train_acc``, ``test_acc``, ``train_loss``, ``test_loss`` curves;
    ``step_train`` / ``step_test`` (first eval step reaching the targets, nan if never),
    ``stop``; ``norms`` (final per-token embedding norms), ``freq`` (rows per token), and with
    diagnostics ``diag_steps``, ``hess_E``, ``hess_W``, ``rank_E``, ``rank_W``, ``rank_EW``,
    ``fourier`` (init and final), ``c_t`` for adaptive runs.
    Random draws (initialisation, batches, power-iteration starts) are made on the CPU and moved
    to ``device``, so a GPU run sees the same initialisation and batches as a CPU run.

    With ``save`` and ``save_every`` > 0, ``save(state)`` is called at the start of every
    ``save_every``-th step (before that step's evaluation); ``resume=state`` (as saved, on any
    device) rebuilds the stack as at step 0 and then continues from that state, giving the same
    bits as a run that was never interrupted.
    """
    kinds = {r.kind for r in runs}
    assert len(kinds) == 1, "one stack holds one model kind"
    arch, embedding, encoding, width = kinds.pop()
    hidden = width or hidden
    mlp_emb = embedding and arch == "mlp"  # the model the Hessian / adaptive-c diagnostics read
    s = len(runs)
    input_scale = 1.0 / p

    def init(r: Run) -> dict[str, torch.Tensor]:
        g = generator_for(*r.key("init"))
        if arch == "transformer":
            return M.init_transformer_stack(1, p, g, d=tf_d)
        return M.init_stack(1, p, embedding, g, d, hidden, encoding=encoding)

    # per-run initialisation (identical for paired runs), then stacked
    parts = [init(r) for r in runs]
    params = {k: torch.cat([q[k] for q in parts]).contiguous().to(device) for k in parts[0]}
    base = torch.tensor([r.lr or lr for r in runs], device=device)
    c0 = []
    for r in runs:
        if r.c == "adaptive":
            c0.append(float(M.adaptive_c(params["E"][len(c0)], params["W"][len(c0)])))
        else:
            c0.append(float(r.c))
    lrs = {k: base.clone() for k in params}
    if embedding:
        lrs["E"] = base * torch.tensor(c0, device=device)
    opt = M.StackedAdam(params, lrs, weight_decay,
                        decoupled=torch.tensor([decoupled if r.decoupled is None else r.decoupled for r in runs]))
    x_all = {op: datasets[op][0] for op in datasets}
    y_all = {op: datasets[op][1] for op in datasets}
    xtr = torch.stack([x_all[r.op][r.train_idx] for r in runs])
    ytr = torch.stack([y_all[r.op][r.train_idx] for r in runs])
    xte = torch.stack([x_all[r.op][r.test_idx] for r in runs])
    yte = torch.stack([y_all[r.op][r.test_idx] for r in runs])
    freqs = [M.token_frequency(xtr[i], p + 2).numpy() for i in range(s)]
    taus = torch.tensor([r.tau for r in runs], dtype=torch.float64)
    # the balanced runs draw with their own batch generators (a model's batches never depend on the stack)
    sampler = M.FrequencyBalancedSampler(xtr, p, taus) if any(r.tau > 0 for r in runs) else None
    xtr, ytr, xte, yte = (t.to(device) for t in (xtr, ytr, xte, yte))
    batch_gens = [generator_for(*r.key("batches")) for r in runs]
    hess_gen = generator_for("hessian")
    n_train = xtr.shape[1]

    live = list(range(s))  # original index of each stack row
    out: dict[str, dict] = {r.name: {"steps": [], "train_acc": [], "test_acc": [], "train_loss": [], "test_loss": [],
                                     "step_train": np.nan, "step_test": np.nan, "done_at": None,
                                     "diag_steps": [], "hess_E": [], "hess_W": [], "rank_E": [], "rank_W": [],
                                     "rank_EW": [], "c_t": [], "fourier_init": None} for r in runs}
    for i, r in enumerate(runs):
        out[r.name]["freq"] = freqs[i]
        if embedding:
            out[r.name]["fourier_init"] = M.fourier_spectrum(params["E"][i], p).cpu().numpy()
            out[r.name]["norms_init"] = M.embedding_norms(params["E"][i]).cpu().numpy()
    hb = generator_for("hessian-batch")
    h_rows = torch.randperm(n_train, generator=hb)[:hessian_batch].to(device)

    def finish(i_stack: int, step: int) -> None:
        r = runs[live[i_stack]]
        o = out[r.name]
        o["stop"] = step
        if embedding:
            e = opt.params["E"][i_stack].detach()
            o["norms"] = M.embedding_norms(e).cpu().numpy()
            o["fourier"] = M.fourier_spectrum(e, p).cpu().numpy()

    step, model_steps, t_train = 0, 0, 0.0
    if resume is not None:
        step, model_steps, t_train = resume["step"], resume["model_steps"], resume["t_train"]
        live, out, opt.t = list(resume["live"]), resume["out"], resume["t"]
        for name in ("params", "m", "v", "lr"):
            setattr(opt, name, {k: v.to(device) for k, v in resume[name].items()})
        opt.decoupled = resume["decoupled"].cpu()
        xtr, ytr, xte, yte = (t.to(device) for t in resume["data"])
        taus = resume["taus"].cpu()
        batch_gens = [batch_gens[i] for i in live]
        for g, state in zip(batch_gens, resume["batch_gens"], strict=True):
            g.set_state(state.cpu())
        hess_gen.set_state(resume["hess_gen"].cpu())
        if sampler is not None:
            for k in ("a", "b", "counts", "present", "tau"):
                setattr(sampler, k, resume["sampler"][k].cpu())
        if log:
            log(f"resumed at step {step}: {len(live)} models left ({', '.join(runs[i].name for i in live)})")
    start = step
    while live:
        if save is not None and save_every and step % save_every == 0 and step != start:
            save({
                "step": step, "model_steps": model_steps, "t_train": t_train, "live": list(live), "out": out,
                "t": opt.t, "params": opt.params, "m": opt.m, "v": opt.v, "lr": opt.lr, "decoupled": opt.decoupled,
                "data": (xtr, ytr, xte, yte), "taus": taus,
                "batch_gens": [g.get_state() for g in batch_gens], "hess_gen": hess_gen.get_state(),
                "sampler": None if sampler is None else {
                    "a": sampler.a, "b": sampler.b, "counts": sampler.counts, "present": sampler.present,
                    "tau": sampler.tau},
            })
        if step % eval_every == 0:
            with torch.no_grad():
                acc, loss = [], []
                for xs, ys in ((xtr, ytr), (xte, yte)):
                    logits = M.stacked_forward(opt.params, xs, input_scale)
                    acc.append((logits.argmax(-1) == ys).float().mean(1))
                    loss.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), ys, reduction="none").mean(1))
                acc, loss = [a.cpu() for a in acc], [q.cpu() for q in loss]
            drop = []
            for j, i in enumerate(live):
                o = out[runs[i].name]
                o["steps"].append(step)
                o["train_acc"].append(float(acc[0][j]))
                o["test_acc"].append(float(acc[1][j]))
                o["train_loss"].append(float(loss[0][j]))
                o["test_loss"].append(float(loss[1][j]))
                if np.isnan(o["step_train"]) and acc[0][j] >= train_target:
                    o["step_train"] = step
                if np.isnan(o["step_test"]) and acc[1][j] >= test_target:
                    o["step_test"] = step
                if o["done_at"] is None and not np.isnan(o["step_train"]) and not np.isnan(o["step_test"]):
                    o["done_at"] = step + margin
                stop_early = o["done_at"] is not None and step >= max(o["done_at"], runs[i].min_steps)
                if step >= runs[i].cap or stop_early:
                    drop.append(j)
            if progress:
                progress(step, {f"{runs[i].name}.{key}": out[runs[i].name][key][-1]
                                for i in live for key in ("train_acc", "test_acc")})
            if drop:
                for j in drop:
                    finish(j, step)
                keep = torch.tensor([j for j in range(len(live)) if j not in drop], dtype=torch.long)
                live = [live[j] for j in keep.tolist()]
                if not live:
                    break
                opt.select(keep)
                taus = taus[keep]
                xtr, ytr, xte, yte = (_select(t, keep.to(device)) for t in (xtr, ytr, xte, yte))
                batch_gens = [batch_gens[j] for j in keep.tolist()]
                if sampler is not None:
                    sampler.select(keep)
                if log:
                    log(f"step {step}: {len(live)} models left ({', '.join(runs[i].name for i in live)})")
        if mlp_emb and step in diag_steps:
            _diagnostics(runs, live, opt, xtr, ytr, h_rows, out, step, p, d, input_scale, hessian_iters, hess_gen)
        if mlp_emb and adaptive_every and step % adaptive_every == 0:
            for j, i in enumerate(live):
                if runs[i].c == "adaptive":
                    c = float(M.adaptive_c(opt.params["E"][j], opt.params["W"][j]))
                    opt.lr["E"][j] = c * opt.lr["W"][j]
                    out[runs[i].name]["c_t"].append((step, c))
        t0 = time.perf_counter()
        idx = torch.stack([torch.randint(0, n_train, (batch,), generator=g) for g in batch_gens])
        if sampler is not None:
            balanced = sampler.sample(batch, [g if t > 0 else None for g, t in zip(batch_gens, taus, strict=True)])
            use = taus > 0
            idx[use] = balanced[use]
        idx = idx.to(device)
        xb, yb = torch.gather(xtr, 1, idx.unsqueeze(-1).expand(-1, -1, 4)), torch.gather(ytr, 1, idx)
        leaves = {k: v.requires_grad_(True) for k, v in opt.params.items()}
        grads = torch.autograd.grad(M.stacked_loss(leaves, xb, yb, input_scale), list(leaves.values()))
        for v in leaves.values():
            v.requires_grad_(False)
        opt.step(dict(zip(leaves, grads, strict=True)))
        t_train += time.perf_counter() - t0
        model_steps += len(live)
        step += 1

    result = {}
    for r in runs:
        o = out[r.name]
        res = {k: np.asarray(o[k], dtype=float) for k in ("steps", "train_acc", "test_acc", "train_loss", "test_loss")}
        res |= {k: np.asarray(o[k], dtype=float) for k in ("step_train", "step_test", "stop")}
        res["freq"] = o["freq"]
        if embedding:
            res |= {k: o[k] for k in ("norms", "fourier", "fourier_init", "norms_init")}
        if o["diag_steps"]:
            res |= {k: np.asarray(o[k], dtype=float) for k in ("diag_steps", "hess_E", "hess_W", "rank_E", "rank_W", "rank_EW")}
        if o["c_t"]:
            res["c_t"] = np.asarray(o["c_t"], dtype=float)
        result[r.name] = res
    result["__perf__"] = {"model_steps": np.array(model_steps), "train_seconds": np.array(t_train),
                          "steps": np.array(step)}
    return result


def _diagnostics(runs, live, opt, xtr, ytr, h_rows, out, step, p, d, input_scale, iters, gen) -> None:
    """Hessian top eigenvalues of the E and W blocks, ranks of E, W, EW, for live diagnostic runs."""
    rows = [j for j, i in enumerate(live) if runs[i].diagnostics]
    if not rows:
        return
    sel = torch.tensor(rows, device=xtr.device)
    params = {k: v[sel].detach() for k, v in opt.params.items()}
    xb, yb = xtr[sel][:, h_rows], ytr[sel][:, h_rows]
    eig = M.top_hessian_eigenvalues(lambda q: M.stacked_loss(q, xb, yb, input_scale), params, ("E", "W"),
                                    iters=iters, generator=gen)
    rank_e = M.numerical_rank(params["E"]).cpu()
    rank_w = M.numerical_rank(params["W"]).cpu()
    rank_ew = M.numerical_rank(M.effective_embedding(params["E"], params["W"], p)).cpu()
    eig = {k: v.cpu() for k, v in eig.items()}
    for n, j in enumerate(rows):
        o = out[runs[live[j]].name]
        o["diag_steps"].append(step)
        o["hess_E"].append(float(eig["E"][n]))
        o["hess_W"].append(float(eig["W"][n]))
        o["rank_E"].append(int(rank_e[n]))
        o["rank_W"].append(int(rank_w[n]))
        o["rank_EW"].append(int(rank_ew[n]))
