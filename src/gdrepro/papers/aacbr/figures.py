"""Gradual AA-CBR figures: one prediction's debate, accuracies with the paper's numbers, losses.

The paper explains a prediction by the arguments behind it: the class defaults' final strengths
(the logits) and the cases that attack or support the winning default, weighted by their own
final strengths. ``debate`` draws that for the first test case of the first dataset run (iris
unless the run left it out); ``accuracy`` the results table as seed means with 95% intervals and
the paper's single-run numbers marked. A run of a subset of the datasets draws those it ran.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from gdrepro.plotting import PAPER_COLOR

DATASET_ORDER = ("iris", "wdbc", "glioma", "mushroom", "wine")
DATASET_NAME = {"iris": "Iris", "wdbc": "WDBC", "glioma": "Glioma", "mushroom": "Mushroom",
                "wine": "Wine\n(not in paper)"}
CLASS_NAMES = {"iris": ("setosa", "versicolor", "virginica"), "wdbc": ("benign", "malignant"),
               "glioma": ("LGG", "GBM"), "mushroom": ("edible", "poisonous"),
               "wine": ("cultivar 1", "cultivar 2", "cultivar 3")}
METHOD_STYLE = {
    "gradual": ("Gradual AA-CBR", "C0"),
    "nn": ("NN (paper's: one linear layer)", "C5"),
    "logreg": ("logistic regression", "C1"),
    "mlp": ("MLP (64 hidden)", "C2"),
    "knn": ("5-NN", "C3"),
    "aacbr": ("AA-CBR (classic)", "C4"),
}


def debate(graph: np.ndarray, labels: np.ndarray, strengths: np.ndarray, top: int = 6) -> dict:
    """One prediction's debate: every default's final strength, the winner d, and the ``top``
    strongest supporters and attackers of d by contribution A_ad sigma_a (a case, its class, its
    final strength sigma_a), down to 1% of the largest contribution."""
    n_def = int(labels.max()) + 1
    defaults = np.arange(len(labels) - n_def, len(labels))
    d = int(defaults[np.argmax(strengths[defaults])])
    contrib = graph[:, d] * strengths
    order = np.argsort(contrib)
    floor = 0.01 * np.abs(contrib).max()  # leave out contributions under 1% of the largest
    pick = [i for i in order[::-1][:top] if contrib[i] > floor] + [i for i in order[:top] if contrib[i] < -floor]
    return {"defaults": strengths[defaults], "winner": d - defaults[0],
            "cases": [(int(i), int(labels[i]), float(strengths[i]), float(contrib[i])) for i in pick]}


def ran(run: dict) -> list[str]:
    """The datasets a run holds, in the figures' order."""
    return [d for d in DATASET_ORDER if d in run]


def draw_debate(axes, runs, seeds, fig, **_) -> None:
    """Left: the class defaults' final strengths for the first test case of the explained dataset
    (the first the run trained: iris unless left out; first seed). Right: the strongest supporters
    (green) and attackers (red) of the winning default."""
    fig.set_layout_engine("constrained")  # the right panel's case labels keep clear of the left panel
    name = next(d for d in ran(runs[0]) if "explain" in runs[0][d])
    classes = CLASS_NAMES[name]
    entry = runs[0][name]
    ex = entry["explain"]
    out = debate(entry["gradual"]["graph"], entry["gradual"]["labels"], ex["strengths"])
    left, right = axes[0, 0], axes[0, 1]
    k = len(out["defaults"])
    left.bar(range(k), out["defaults"], color=[f"C{j}" for j in range(k)])
    for j, v in enumerate(out["defaults"]):
        left.annotate(f"{v:.2f} (p={ex['proba'][j]:.2f})", (j, v), xytext=(0, 2), textcoords="offset points",
                      ha="center", va="bottom", fontsize=7, zorder=5)
    left.set_xticks(range(k), [f"default\n{classes[j]}" for j in range(k)])
    left.set(ylabel=r"final strength $\sigma$ (logit)", ylim=(0, 1.3 * max(out["defaults"].max(), 1e-3)),
             xlabel=f"predicted: {classes[out['winner']]}",
             title=f"{DATASET_NAME[name].splitlines()[0]} test case 0 (true {classes[int(ex['true'])]})")
    cases = out["cases"]
    y = np.arange(len(cases))[::-1]
    contrib = [c[3] for c in cases]
    right.barh(y, contrib, color=["#2ca02c" if v > 0 else "#d62728" for v in contrib])
    right.set_yticks(y, [f"#{i} {classes[lab]}, $\\sigma$={sig:.2f}" for i, lab, sig, _ in cases], fontsize=7)
    right.axvline(0, color="black", lw=0.6)
    right.set(xlabel=r"contribution $A_{a,d}\,\sigma_a$ to default " + classes[out["winner"]],
              title=f"Its strongest supporters / attackers (seed {seeds[0]})")


def _interval(values: np.ndarray) -> float:
    """Half-width of the two-sided 95% Student-t interval of the mean over seeds."""
    if len(values) < 2:
        return 0.0
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def draw_accuracy(ax, runs, paper, **_) -> None:
    """Test accuracy per dataset and method: mean over seeds with 95% t-intervals; the paper's
    single runs (official notebooks) as grey ticks over their method's bar."""
    order = ran(runs[0])
    width = 0.13
    offsets = {m: (j - (len(METHOD_STYLE) - 1) / 2) * width for j, m in enumerate(METHOD_STYLE)}
    for method, (label, colour) in METHOD_STYLE.items():
        xs, ys, es = [], [], []
        for i, d in enumerate(order):
            if method in runs[0][d]:
                test = np.array([float(r[d][method]["test"]) for r in runs])
                xs.append(i + offsets[method])
                ys.append(test.mean())
                es.append(_interval(test))
        if xs:
            ax.bar(xs, ys, width, yerr=es, color=colour, label=label, capsize=1.5, error_kw={"lw": 0.8})
    first = True
    for i, d in enumerate(order):
        for method, value in paper.get(d, {}).items():
            ax.plot(i + offsets[method], value, marker="_", ms=9, mew=2, color=PAPER_COLOR,
                    label="paper (single run)" if first else None)
            first = False
    ax.set_xticks(range(len(order)), [DATASET_NAME[d] for d in order])
    ax.set(ylabel="test accuracy", ylim=(0, 1.02), title="Test accuracy (mean over seeds, 95% interval)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))


def draw_loss(ax, runs, **_) -> None:
    """Training loss (cross-entropy + nuclear-norm term) per epoch, every seed."""
    for d in ran(runs[0]):
        i = DATASET_ORDER.index(d)
        for k, run in enumerate(runs):
            loss = run[d]["gradual"]["loss"]
            ax.plot(np.arange(1, len(loss) + 1), loss, color=f"C{i}", lw=0.8, alpha=0.7,
                    label=DATASET_NAME[d].replace("\n", " ") if k == 0 else None)
    ax.set(xlabel="epoch", ylabel="training loss", xscale="log", title="Gradual AA-CBR training loss, every seed")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
