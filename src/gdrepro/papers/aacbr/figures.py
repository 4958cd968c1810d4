"""Gradual AA-CBR figures: one learned argumentation graph, accuracies with the paper's numbers, losses.

The paper draws learned casebase graphs (cases as nodes coloured by class, attacks red, supports
green, defaults at the bottom) and tabulates accuracies; ``graph`` redraws the first, ``accuracy``
the table as bars with the paper's single-run numbers marked.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from gdrepro.plotting import PAPER_COLOR

DATASET_ORDER = ("iris", "wdbc", "glioma", "mushroom")
METHOD_STYLE = {
    "gradual": ("Gradual AA-CBR", "C0"),
    "logreg": ("logistic regression", "C1"),
    "mlp": ("MLP", "C2"),
    "knn": ("k-NN", "C3"),
    "aacbr": ("AA-CBR (classic)", "C4"),
}


def draw_graph(ax, runs, seeds, threshold: float = 0.1, **_) -> None:
    """The post-processed iris casebase graph of the first seed: node height = projection s = w.x."""
    iris = runs[0]["iris"]["gradual"]
    a, labels, s, tau = iris["graph"], iris["labels"], iris["s"], iris["tau"]
    n_def = int(labels.max()) + 1
    n = len(labels) - n_def
    kept = np.where(np.abs(a) > threshold, a, 0.0)
    g = nx.from_numpy_array(kept, create_using=nx.DiGraph)
    rank = np.argsort(np.argsort(s[:n]))
    jitter = (rank % 7 - 3) * 0.09
    pos = {i: (labels[i] + jitter[i], s[i]) for i in range(n)}
    low = s[:n].min() - 0.15 * (np.ptp(s[:n]) + 1e-9)
    pos |= {n + k: (k, low) for k in range(n_def)}
    colours = [f"C{labels[i]}" for i in range(len(labels))]
    edges = list(g.edges())
    weights = np.array([kept[u, v] for u, v in edges])
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges, width=0.5 + 1.5 * np.abs(weights),
                           edge_color=["#2ca02c" if w > 0 else "#d62728" for w in weights],
                           alpha=0.55, arrowsize=5, node_size=14)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=list(range(n)), node_color=colours[:n],
                           node_size=8 + 40 * tau[:n])
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=list(range(n, n + n_def)), node_color=colours[n:],
                           node_shape="s", node_size=70, edgecolors="black")
    for k in range(n_def):
        ax.annotate(f"default {k}", pos[n + k], xytext=(0, -11), textcoords="offset points",
                    ha="center", fontsize=7)
    ax.plot([], [], color="#2ca02c", label="support")
    ax.plot([], [], color="#d62728", label="attack")
    ax.tick_params(left=True, labelleft=True)
    ax.set_axis_on()
    ax.set(xlabel="class (cases jittered)", ylabel=r"projection $s = w\cdot x$ (specificity)",
           xticks=range(n_def),
           title=f"Learned iris casebase graph, seed {seeds[0]}: {len(edges)} edges with |A| > {threshold}")
    ax.legend(loc="upper right")


def draw_accuracy(ax, details, paper, **_) -> None:
    """Test accuracy per dataset and method (mean ± sd over seeds); paper's single runs as markers."""
    rows = details["accuracy"]
    width = 0.16
    for j, (method, (label, colour)) in enumerate(METHOD_STYLE.items()):
        xs, ys, es = [], [], []
        for i, d in enumerate(DATASET_ORDER):
            row = next((r for r in rows if r["dataset"] == d and r["method"] == method), None)
            if row:
                xs.append(i + (j - 2) * width)
                ys.append(row["test_mean"])
                es.append(row["test_sd"])
        ax.bar(xs, ys, width, yerr=es, color=colour, label=label, capsize=2, error_kw={"lw": 0.8})
    marks = {"gradual": -2, "nn": -1, "aacbr": 2}
    first = True
    for i, d in enumerate(DATASET_ORDER):
        for key, offset in marks.items():
            if key in paper[d]:
                ax.plot(i + offset * width, paper[d][key], marker="_", ms=12, mew=2, color=PAPER_COLOR,
                        label="paper (single run; NN beside logreg)" if first else None)
                first = False
    names = [d if d in ("iris", "wdbc") else f"{d}\n({details['source']})" for d in DATASET_ORDER]
    ax.set_xticks(range(len(DATASET_ORDER)), names)
    ax.set(ylabel="test accuracy", ylim=(0.3, 1.05), title="Accuracy (mean ± sd over seeds)")
    ax.legend(fontsize=6.5, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def draw_loss(ax, runs, **_) -> None:
    """Training loss (cross-entropy + nuclear-norm term) per epoch, every seed."""
    for i, d in enumerate(DATASET_ORDER):
        for k, run in enumerate(runs):
            loss = run[d]["gradual"]["loss"]
            ax.plot(np.arange(1, len(loss) + 1), loss, color=f"C{i}", lw=0.8, alpha=0.7,
                    label=d if k == 0 else None)
    ax.set(xlabel="epoch", ylabel="training loss", xscale="log", title="Gradual AA-CBR training loss")
    ax.legend()
