"""Gradual AA-CBR against scikit-learn baselines and classic AA-CBR: prepare -> train -> evaluate -> figures.

The paper's four datasets (see ``data.py``): iris (3 classes, continuous), WDBC (continuous),
glioma and mushroom (binary features; the UCI files shipped in ``data/``), and wine (3 classes,
continuous; not in the paper: our held-out check of ``GradualAACBR()``'s defaults). Per seed job
and dataset: Gradual AA-CBR (casebase = training split, subsampled below paper scale), the
paper's NN comparator (one linear layer, as the official notebooks build it), logistic
regression, an MLP and k-NN (on the whole training split) and, on the binary sets, classic
AA-CBR. Seed ``k`` varies the casebase subsample and every initialisation; the splits are the
paper's fixed ones. Every seed's model also passes a check of the batched forward pass against
the literal (loop-based) definitions.

A seed job checkpoints (:mod:`gdrepro.checkpoint`; Gradual AA-CBR trains for hours at paper
scale): every ``CHECKPOINT_EVERY[scale]`` epochs of a fit and after each dataset's fit, with the
finished datasets' results and the fit in progress, and resumes from there bit for bit.

Only the training stage (:func:`run_seed`) needs torch: it and its helpers import torch, the
model (``method.py``) and networkx where they use them, so prepare, evaluate and the figures
start without them.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gdrepro import checkpoint, runs
from gdrepro.metrics import across_seeds, write_metrics
from gdrepro.paper import StageContext
from gdrepro.papers.aacbr import data as D
from gdrepro.runtime import device, log, rng
from gdrepro.tables import write_table

if TYPE_CHECKING:
    import torch

    from gdrepro.papers.aacbr import method as M

PAPER_DATASETS = ("iris", "wdbc", "glioma", "mushroom")
DATASETS = PAPER_DATASETS + ("wine",)
BINARY = ("glioma", "mushroom")
BASELINES = ("nn", "logreg", "mlp", "knn")
REGULARISER = {"iris": "separate", "wdbc": "joint", "glioma": "separate", "mushroom": "joint", "wine": "separate"}
"""The community-preservation term per dataset as the official notebooks have it (method.py);
wine, not in the paper, takes GradualAACBR()'s default."""
# Single runs read from the official notebooks' saved outputs (shared/papers/aacbr.md); iris's
# Gradual AA-CBR number is a validation accuracy, all others test accuracies. "nn" is the
# paper's torch network (one linear layer).
PAPER_ACC = {
    "iris": {"gradual": 0.917, "nn": 0.967},
    "wdbc": {"gradual": 0.947, "nn": 0.982},
    "mushroom": {"gradual": 0.977, "nn": 0.991, "aacbr": 0.482},
    "glioma": {"gradual": 0.857, "nn": 0.851, "aacbr": 0.673},
}


@dataclass(frozen=True)
class AacbrSettings:
    """Numbers of one scale; ``*_cases = 0`` uses the whole training split as the casebase."""

    iris_cases: int
    wdbc_cases: int
    glioma_cases: int
    mushroom_cases: int
    iris_epochs: int
    wdbc_epochs: int
    glioma_epochs: int
    mushroom_epochs: int
    iterations: int  # K, steps of the ReLU semantics; 0 = casebase size (the paper)
    wine_cases: int = 0  # wine: GradualAACBR()'s defaults (K = casebase size), only the epochs cut
    wine_epochs: int = 3000
    nn_epochs: int = 500  # the official notebooks' linear NN: AdamW, lr 2e-2, full batch
    glioma_iterations: int = 0  # the official glioma notebook uses K = 95; 0 = as ``iterations``
    temperature: float = 0.05
    lr: float = 0.02
    gamma: float = 0.005
    mlp_max_iter: int = 2000
    knn_k: int = 5
    check_cases: int = 8  # casebase size of the fast-vs-slow forward check
    datasets: tuple[str, ...] = DATASETS  # the datasets this run trains on (claims of the others: not in this run)

    def __post_init__(self) -> None:
        if not self.datasets or set(self.datasets) - set(DATASETS) or len(set(self.datasets)) < len(self.datasets):
            raise ValueError(f"datasets={self.datasets}: want distinct names among {DATASETS}")
        if min(self.epochs(d) for d in DATASETS) < 1 or self.nn_epochs < 1:
            raise ValueError("epochs must be at least 1")
        if min(min(self.cases(d) for d in DATASETS), self.iterations) < 0:
            raise ValueError("cases and iterations must be >= 0")
        if self.temperature <= 0 or self.lr <= 0 or self.gamma < 0 or self.check_cases < 4:
            raise ValueError("need temperature > 0, lr > 0, gamma >= 0, check_cases >= 4")

    def run_datasets(self) -> tuple[str, ...]:
        """The datasets of this run in the fixed order of DATASETS (iris first when it runs)."""
        return tuple(d for d in DATASETS if d in self.datasets)

    def cases(self, name: str) -> int:
        return getattr(self, f"{name}_cases")

    def epochs(self, name: str) -> int:
        return getattr(self, f"{name}_epochs")

    def K(self, name: str, n: int) -> int:
        if name == "wine":
            return n  # GradualAACBR()'s default
        k = self.glioma_iterations if name == "glioma" and self.glioma_iterations else self.iterations
        return k or n


SETTINGS = {
    "smoke": AacbrSettings(24, 24, 24, 24, 25, 25, 25, 25, iterations=8, wine_cases=24, wine_epochs=25,
                           nn_epochs=50, mlp_max_iter=200),
    # K = casebase size (glioma 95) as the paper; casebases and epochs cut to fit a 2-core CPU
    # budget (claims.yaml budgets and deviations)
    "default": AacbrSettings(0, 100, 100, 100, 1000, 400, 300, 300, iterations=0, glioma_iterations=95,
                             wine_epochs=200),
    "paper": AacbrSettings(0, 0, 0, 0, 3000, 2500, 6000, 500, iterations=0, glioma_iterations=95),
}

CHECKPOINT_EVERY = {"smoke": 10, "default": 100, "paper": 100}
"""Epochs of a Gradual AA-CBR fit between checkpoints (and one after every dataset). Not a
setting: how often a run saves its state changes no number (metrics.json keeps the settings)."""


# --- stages -------------------------------------------------------------------------------------


def _datasets(ctx: StageContext) -> dict[str, D.Split]:
    return {name: D.load(name) for name in ctx.settings.run_datasets()}


def prepare(ctx: StageContext) -> None:
    """Load the run's datasets once (checks the shipped files' MD5); record sizes and class counts."""
    design = {}
    for name, split in _datasets(ctx).items():
        design[name] = {
            "train": len(split.y_train), "val": len(split.y_val), "test": len(split.y_test),
            "features": split.X_train.shape[1], "classes": split.n_classes, "binary": split.binary,
            "train_class_counts": np.bincount(split.y_train).tolist(),
        }
    ctx.write_prepared({"datasets": design})


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _casebase(split: D.Split, n: int, key: tuple) -> np.ndarray:
    """Indices of the casebase: all training cases, or a seeded subsample of ``n`` (every class kept)."""
    if not n or n >= len(split.y_train):
        return np.arange(len(split.y_train))
    g = rng(*key)
    for _ in range(100):
        idx = np.sort(g.permutation(len(split.y_train))[:n])
        if len(np.unique(split.y_train[idx])) == split.n_classes:
            return idx
    raise ValueError(f"{split.name}: no subsample of {n} cases holds every class")


def linear_nn(split: D.Split, epochs: int, generator: torch.Generator, lr: float = 2e-2) -> dict:
    """The paper's NN comparator as the official notebooks build it (``MLPExtractor(f, [], classes)``):
    one linear layer f -> classes under softmax cross-entropy, torch's default initialisation
    (weights and bias U(-1/sqrt(f), 1/sqrt(f)), drawn from ``generator``), full-batch AdamW
    (lr 2e-2, torch's default weight decay 0.01) for ``epochs`` epochs on the training split."""
    import torch

    X, y = torch.as_tensor(split.X_train), torch.as_tensor(split.y_train)
    layer = torch.nn.Linear(X.shape[1], split.n_classes)
    bound = 1 / np.sqrt(X.shape[1])
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            p.uniform_(-bound, bound, generator=generator)
    opt = torch.optim.AdamW(layer.parameters(), lr=lr, fused=True)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(layer(X), y).backward()
        opt.step()
    with torch.no_grad():
        score = lambda a, b: float((layer(torch.as_tensor(a)).argmax(1).numpy() == b).mean())  # noqa: E731
        return {"val": score(split.X_val, split.y_val), "test": score(split.X_test, split.y_test)}


def _baselines(split: D.Split, s: AacbrSettings, seed: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    models = {
        "logreg": LogisticRegression(max_iter=2000),
        "mlp": MLPClassifier(hidden_layer_sizes=(64,), max_iter=s.mlp_max_iter, random_state=seed),
        "knn": KNeighborsClassifier(n_neighbors=s.knn_k),
    }
    out = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(split.X_train, split.y_train)
        out[name] = {"val": model.score(split.X_val, split.y_val), "test": model.score(split.X_test, split.y_test)}
    return out


def ties(strengths: np.ndarray, y: np.ndarray) -> dict:
    """Cases whose class defaults tie at the top strength (argmax then picks the lowest class index,
    as the official code's argmax does), cases whose defaults all end at 0, and the accuracy that
    tied cases contribute."""
    top = strengths.max(axis=1, keepdims=True)
    tied = (strengths == top).sum(axis=1) > 1
    return {"tie_rate": float(tied.mean()), "all_zero_rate": float((top[:, 0] == 0).mean()),
            "tie_correct": float((tied & (strengths.argmax(axis=1) == y)).mean())}


def forward_check(split: D.Split, model: M.GradualAACBR, n: int) -> float:
    """Max |batched forward - literal loop forward| on ``n`` training cases with the learned w, c (float64)."""
    import torch

    from gdrepro.papers.aacbr import method as M

    X, y = split.X_train[:n].astype(np.float64), split.y_train[:n]
    labels = np.searchsorted(model.classes_, y)
    k = len(model.classes_)
    w, c = _np(model.w_).astype(np.float64), float(model.c_)
    new = split.X_val[:4].astype(np.float64)
    slow = M.reference_default_strengths(X, labels, k, w, c, new, model.temperature, n)
    Xd = torch.as_tensor(np.vstack([X, np.repeat(X.mean(0, keepdims=True), k, 0)]))
    fast = M.forward_strengths(
        Xd, torch.as_tensor(np.concatenate([labels, np.arange(k)])),
        torch.arange(n + k) >= n, torch.arange(n, n + k), torch.as_tensor(w), torch.tensor(c, dtype=torch.float64),
        torch.as_tensor(new), model.temperature, n,
    ).numpy()
    return float(np.abs(fast - slow).max())


def _structure(a: np.ndarray, is_default: np.ndarray, s: np.ndarray) -> dict:
    """Edges leaving defaults, acyclicity, depth, and the share of |A| on edges pointing up in s."""
    import networkx as nx

    g = nx.from_numpy_array((a != 0).astype(int), create_using=nx.DiGraph)
    acyclic = nx.is_directed_acyclic_graph(g)
    upward = (s[:, None] < s[None, :]) & ~is_default[None, :]
    return {
        "default_out": float(np.abs(a[is_default]).max()),
        "cyclic": float(not acyclic),
        "cyclic_above_0.1": float(not nx.is_directed_acyclic_graph(
            nx.from_numpy_array((np.abs(a) > 0.1).astype(int), create_using=nx.DiGraph))),
        "depth": float(nx.dag_longest_path_length(g)) if acyclic else np.nan,
        "edges": float((np.abs(a) > 1e-3).sum()),
        "upward_mass": float(np.abs(a[upward]).sum() / max(np.abs(a).sum(), 1e-30)),
    }


def _depth_text(depth: float) -> str:
    return "cyclic graph" if np.isnan(depth) else f"graph depth {depth:.0f}"


MAX_OVER_SEEDS = ("default_out", "cyclic", "cyclic_above_0.1", "upward_mass")
"""Gradual AA-CBR's structural checks pool to the worst seed (and the forward check)."""


def _pooled(key: str, value) -> runs.Quantity:
    """Scalars: the mean over seeds (structural checks: the worst seed); arrays: the first seed's."""
    value = np.asarray(value)
    if value.ndim:
        return runs.first(value)
    return runs.worst(value) if key in MAX_OVER_SEEDS else runs.mean(value)


def _fit_gradual(ctx: StageContext, name: str, split: D.Split, save, resume: dict | None) -> dict:
    """Gradual AA-CBR on one dataset: the arrays this seed keeps (and, for the first dataset of the
    run, iris unless left out, the forward check and an explanation), and the exact loss history."""
    from gdrepro.papers.aacbr import method as M

    s: AacbrSettings = ctx.settings
    idx = _casebase(split, s.cases(name), ("aacbr", name, "casebase", ctx.seed))
    model = M.GradualAACBR(
        temperature=s.temperature, lr=s.lr, epochs=s.epochs(name), gamma=s.gamma, regulariser=REGULARISER[name],
        iterations=s.K(name, len(idx)), generator=ctx.torch_generator(name, "init"),
        default_case="zeros" if name == "mushroom" else "mean", device=device(),
    )
    model.fit(split.X_train[idx], split.y_train[idx], save=save, save_every=CHECKPOINT_EVERY[ctx.scale],
              resume=resume)
    start = time.perf_counter()
    val_strengths, test_strengths = model.decision_function(split.X_val), model.decision_function(split.X_test)
    predict_seconds = time.perf_counter() - start
    val = float(np.mean(model.classes_[val_strengths.argmax(1)] == split.y_val))
    test = float(np.mean(model.classes_[test_strengths.argmax(1)] == split.y_test))
    a = model.graph()
    structure = _structure(a, _np(model.is_default_), _np(model.projections()))
    gradual = {
        "val": np.array(val), "test": np.array(test),
        "loss": np.array(model.history, dtype=np.float32),
        "graph": a.astype(np.float32), "labels": _np(model.labels_),
        "s": _np(model.projections()), "tau": model.base_scores(),
        "w": _np(model.w_), "c": np.array(float(model.c_)),
        "seconds": np.array(model.fit_seconds_), "epochs": np.array(model.epochs),
        "cases": np.array(len(idx)), "K": np.array(model.K_),
        "predict_seconds": np.array(predict_seconds),
        "predicted": np.array(len(split.y_val) + len(split.y_test)),
    } | {k: np.array(v) for k, v in structure.items()} | {
        k: np.array(v) for k, v in ties(test_strengths, np.searchsorted(model.classes_, split.y_test)).items()}
    if split.n_classes == 2:  # the official glioma script keeps seeds with validation F1 > 0.7
        from sklearn.metrics import f1_score

        gradual["val_f1"] = np.array(f1_score(split.y_val, model.classes_[val_strengths.argmax(1)], zero_division=0.0))
    out = {"gradual": gradual, "history": list(model.history)}
    if name == s.run_datasets()[0]:
        out["fast_slow_diff"] = np.array(forward_check(split, model, s.check_cases))
        ex = model.explain(split.X_test[0])
        out["explain"] = {"proba": ex["proba"], "strengths": ex["strengths"], "true": np.array(split.y_test[0])}
    return out


def _save_progress(path: Path, done: dict, name: str | None, state: dict | None = None) -> None:
    """Checkpoint: the finished datasets' results and, if ``name``, that dataset's fit in progress."""
    checkpoint.save(path, {"done": done, "fit": None if name is None else {"name": name, **state}})


def _save_and_report(ctx: StageContext, done: dict, name: str, state: dict) -> None:
    """Checkpoint a fit in progress and log how far it is (a paper-scale fit runs for an hour)."""
    _save_progress(ctx.checkpoint_path, done, name, state)
    epoch, seconds, total = state["epoch"], state["seconds"], ctx.settings.epochs(name)
    log(f"seed {ctx.seed} {name}: epoch {epoch}/{total}, loss {state['history'][-1]:.4f}, "
        f"{seconds / epoch:.2f} s/epoch, ~{seconds / epoch * (total - epoch) / 60:.0f} min left")


def run_seed(ctx: StageContext) -> dict:
    """One seed: every dataset, Gradual AA-CBR, the sklearn baselines and (binary sets) classic
    AA-CBR; resumes from this seed's checkpoint if a previous run was interrupted."""
    from gdrepro.papers.aacbr import method as M

    s: AacbrSettings = ctx.settings
    results: dict[str, dict] = {}
    splits = _datasets(ctx)
    saved = checkpoint.load(ctx.checkpoint_path) or {"done": {}, "fit": None}
    done, current = saved["done"], saved["fit"]
    if done or current:
        ctx.log(f"resuming from {ctx.checkpoint_path}: {len(done)} datasets done"
                + (f", {current['name']} at epoch {current['epoch']}" if current else ""))
    check = None
    with ctx.tracked_run("gradual") as run:
        for name, split in splits.items():
            if name not in done:
                resume = current if current is not None and current["name"] == name else None
                save = functools.partial(_save_and_report, ctx, done, name)
                done[name] = _fit_gradual(ctx, name, split, save, resume)
                _save_progress(ctx.checkpoint_path, done, None)
            entry = done[name]
            g = entry["gradual"]
            log(f"seed {ctx.seed} {name}: gradual AA-CBR on {int(g['cases'])} cases, K={int(g['K'])}, "
                f"{int(g['epochs'])} epochs in {float(g['seconds']):.1f} s: val {float(g['val']):.3f} "
                f"test {float(g['test']):.3f} ({_depth_text(float(g['depth']))})")
            results[name] = {"gradual": {k: _pooled(k, v) for k, v in g.items()}}
            if "explain" in entry:
                check = entry["fast_slow_diff"]
                results[name]["explain"] = {k: runs.first(v) for k, v in entry["explain"].items()}
            history = entry["history"]
            run.log_curve(f"{name}.loss", range(len(history)), history)
            run.log_metrics({f"{name}.val_accuracy": float(g["val"]), f"{name}.test_accuracy": float(g["test"]),
                             f"{name}.ms_per_epoch": 1000 * float(g["seconds"]) / int(g["epochs"])})
    fitted = {name: _baselines(split, s, ctx.seed) | {
        "nn": linear_nn(split, s.nn_epochs, ctx.torch_generator(name, "nn"), s.lr)} for name, split in splits.items()}
    for method in BASELINES + ("aacbr",):
        with ctx.tracked_run(method) as run:
            for name, split in splits.items():
                if method == "aacbr":
                    if not split.binary:
                        continue  # classic AA-CBR is binary-label, binary-feature only
                    clf = M.AACBR(default_outcome=1).fit(split.X_train, split.y_train)
                    acc = {"val": clf.score(split.X_val, split.y_val), "test": clf.score(split.X_test, split.y_test)}
                else:
                    acc = fitted[name][method]
                results[name][method] = {k: runs.mean(v) for k, v in acc.items()}
                run.log_metrics({f"{name}.val_accuracy": acc["val"], f"{name}.test_accuracy": acc["test"]})
    return {**results, "check": {"fast_slow_diff": runs.worst(check)}}


def methods(d: str) -> tuple[str, ...]:
    """The methods run on dataset ``d`` (classic AA-CBR on the binary sets only)."""
    return ("gradual",) + BASELINES + (("aacbr",) if d in BINARY else ())


def compute(run: dict) -> dict[str, float]:
    """The claims' numbers from one seed's run (or the pooled run), for the datasets it ran: a
    dataset left out by ``settings.datasets`` has no metrics (its claims: not in this run); the
    structural counts pool over the paper datasets that ran."""
    ran = [d for d in DATASETS if d in run]
    acc = lambda d, m, split="test": float(run[d][m][split])  # noqa: E731
    out = {}
    for d in ran:
        for m in methods(d):
            out[f"acc_{d}_{m}_test"] = acc(d, m)
            out[f"acc_{d}_{m}_val"] = acc(d, m, "val")
    for d in ran:
        if d in ("iris", "wdbc"):
            out[f"gap_{d}"] = acc(d, "logreg") - acc(d, "gradual")
    for d in ran:
        if d in BINARY:
            out[f"margin_{d}"] = acc(d, "gradual") - acc(d, "aacbr")
    paper = [run[d]["gradual"] for d in PAPER_DATASETS if d in run]
    if paper:
        out |= {
            "default_out_edges": max(float(g["default_out"]) for g in paper),
            "cyclic_graphs": sum(float(g["cyclic"]) for g in paper),
            "cyclic_graphs_above_0.1": sum(float(g["cyclic_above_0.1"]) for g in paper),
            "upward_edge_mass_max": max(float(g["upward_mass"]) for g in paper),
        }
    out["fast_slow_max_diff"] = float(run["check"]["fast_slow_diff"])
    for d in ran:
        out[f"gap_nn_{d}"] = acc(d, "nn") - acc(d, "gradual")
        for k in ("tie_rate", "all_zero_rate", "tie_correct"):
            out[f"{k}_{d}"] = float(run[d]["gradual"][k])
    if "wine" in run:
        out["gap_wine"] = acc("wine", "logreg") - acc("wine", "gradual")
    return out


def glioma_selection(seed_runs: list[dict], seeds) -> dict:
    """The official glioma script's seed selection (keep runs with validation F1 > 0.7), shown beside
    the all-seed numbers and never used for a verdict."""
    f1 = np.array([float(r["glioma"]["gradual"]["val_f1"]) for r in seed_runs])
    test = np.array([float(r["glioma"]["gradual"]["test"]) for r in seed_runs])
    aacbr = np.array([float(r["glioma"]["aacbr"]["test"]) for r in seed_runs])
    keep = f1 > 0.7
    return {"seeds": [int(k) for k in np.asarray(seeds)[keep]], "val_f1": f1.round(4).tolist(),
            "test_all": float(test.mean()), "test_selected": float(test[keep].mean()) if keep.any() else None,
            "margin_all": float((test - aacbr).mean()),
            "margin_selected": float((test - aacbr)[keep].mean()) if keep.any() else None}


def evaluate(ctx: StageContext) -> None:
    """Accuracies (mean over seeds, per-seed spread), gaps and margins, structure checks, timings."""
    seed_runs = ctx.runs()
    ran = ctx.settings.run_datasets()
    metrics = across_seeds(compute, seed_runs, ctx.pooled())
    rows = []
    for d in ran:
        for m in methods(d):
            test = np.array([float(r[d][m]["test"]) for r in seed_runs])
            val = np.array([float(r[d][m]["val"]) for r in seed_runs])
            paper = PAPER_ACC.get(d, {}).get(m)
            rows.append({
                "dataset": d, "method": m, "test_mean": round(test.mean(), 4), "test_sd": round(test.std(ddof=1), 4)
                if len(test) > 1 else 0.0, "val_mean": round(val.mean(), 4),
                "paper": "" if paper is None else paper,
                "tie_rate": round(float(np.mean([float(r[d]["gradual"]["tie_rate"]) for r in seed_runs])), 4)
                if m == "gradual" else "",
            })
    graph = {
        d: {k: [float(r[d]["gradual"][k]) for r in seed_runs]
            for k in ("depth", "edges", "cases", "K", "c", "upward_mass", "tie_rate", "all_zero_rate", "tie_correct")}
        for d in ran
    }
    details = {"accuracy": rows, "graph": graph, "prepared": ctx.read_prepared()["datasets"]}
    if "glioma" in ran:
        details["glioma_seed_selection"] = glioma_selection(seed_runs, ctx.seeds)
    performance = {}
    for d in ran:
        gradual = [r[d]["gradual"] for r in seed_runs]
        secs = sum(float(g["seconds"]) for g in gradual)
        epochs = sum(float(g["epochs"]) for g in gradual)
        performance[f"{d}_ms_per_epoch"] = 1000 * secs / epochs
        predicted = sum(float(g["predicted"]) for g in gradual)
        performance[f"{d}_predictions_per_second"] = predicted / sum(float(g["predict_seconds"]) for g in gradual)
    write_metrics(ctx, metrics, details, performance)
    write_table(ctx.tables_dir / "accuracy", rows,
                caption="Accuracy per dataset and method (mean and sd over seeds; paper: the official notebooks' "
                        "single runs; nn = the paper's one-linear-layer network; tie_rate = share of test cases whose "
                        "class defaults tie at the top strength, broken to the lowest class index; wine is not in "
                        "the paper)")
    log(f"wrote {ctx.metrics_path}")


def figure_inputs(ctx: StageContext) -> dict:
    """Every seed's run (graph of the first, losses of all), the seeds and the paper's numbers."""
    return {"runs": ctx.runs(), "seeds": ctx.seeds, "paper": PAPER_ACC}
