"""The UG-CLU figures, drawn from metrics.json: accuracy along each request sequence, forgetting
and privacy against Retrain, and the average gap to Retrain of every method (the paper's tables as
bars). The paper's numbers were not available; Retrain, the oracle the paper measures against, is
drawn as the reference."""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import reference_line

SCENARIO_TITLES = {"task_aware": "task-aware (CLPU sequence)", "class": "cross-task class unlearning",
                   "samples": "random 10% sample unlearning"}
SHOWN = ("retrain", "finetune", "ga_ft", "salun", "replay", "clpu", "ugclu")
STYLE = {"retrain": "k-", "ugclu": "-"}


def _value(metrics: dict, name: str) -> float:
    v = metrics["metrics"].get(name, {}).get("value")
    return np.nan if v is None else v


def draw_requests(axes, metrics, **_) -> None:
    """Remaining-test accuracy after each request, per scenario (pooled over seeds)."""
    d = metrics["details"]
    for ax, scen in zip(axes, SCENARIO_TITLES, strict=True):
        labels = d[f"{scen}_labels"]
        for name in SHOWN:
            y = np.array(d[f"{scen}_curves"][name], dtype=float)
            ax.plot(np.arange(len(y)), y, STYLE.get(name, "--"), marker="o", ms=3, label=name,
                    lw=2 if name in ("retrain", "ugclu") else 1)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=45)
        ax.set(xlabel="request", ylabel="remaining-test accuracy (%)", title=SCENARIO_TITLES[scen])
    axes[0].legend(fontsize=7, ncol=2)


def draw_forgetting(axes, metrics, **_) -> None:
    """Forget-class test accuracy (class scenario), forget-train accuracy (random samples) and MIA
    on D_U (mean over scenarios), every method against Retrain."""
    names = metrics["details"]["methods"]
    panels = (("class_{}_fgt_test", "forget-class test acc (%)", "class unlearning"),
              ("samples_{}_fgt_train", "forget-train acc (%)", "random 10% samples"),
              ("samples_{}_mia", "MIA: D_U judged member (%)", "random 10% samples"))
    x = np.arange(len(names) - 1)
    for ax, (key, ylabel, title) in zip(axes, panels, strict=True):
        vals = [_value(metrics, key.format(n)) for n in names[1:]]
        ax.bar(x, vals, color=["#D55E00" if n.startswith("ugclu") else "#0072B2" for n in names[1:]])
        reference_line(ax, _value(metrics, key.format("retrain")), "Retrain (oracle)")
        ax.set_xticks(x, names[1:], rotation=60, fontsize=7, ha="right")
        ax.set(ylabel=ylabel, title=title)
        ax.legend()


def draw_gap(ax, metrics, **_) -> None:
    """Average absolute gap to Retrain over remaining, new-task, forget-train/test and MIA,
    mean over the three scenarios; UG-CLU and its ablations in orange."""
    names = metrics["details"]["methods"][1:]
    vals = [_value(metrics, f"gap_{n}") for n in names]
    ax.bar(np.arange(len(names)), vals, color=["#D55E00" if n.startswith("ugclu") else "#0072B2" for n in names])
    ax.set_xticks(np.arange(len(names)), names, rotation=60, fontsize=7, ha="right")
    ax.set(ylabel="average gap to Retrain (points)", title="Average gap to Retrain (lower is better)")

