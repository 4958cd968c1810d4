"""metrics.json: every reproduced number, pooled over seeds, with the per-seed values beside it.

Layout: ``{"paper", "scale", "seeds", "metrics": {name: {"value", "per_seed"}}, "details": {...}}``.
``value`` is the estimate the claims are judged on (pooled over all seeds' replications, or the
mean over seeds where pooling is meaningless); ``per_seed`` shows the seed-to-seed spread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gdrepro.paper import StageContext, write_json

Run = TypeVar("Run")
MACHINE_DEPENDENT = ("per_second", "seconds")
"""Metric names containing these depend on the machine (throughput, timings), not on the seed."""


def machine_dependent(name: str) -> bool:
    return any(part in name for part in MACHINE_DEPENDENT)


def across_seeds(
    compute: Callable[[Run], dict[str, float]],
    runs: Sequence[Run],
    pooled: Run,
) -> dict[str, dict[str, Any]]:
    """Apply ``compute`` to the pooled data and to each seed's data; return metric entries."""
    value = compute(pooled)
    per_seed = [compute(run) for run in runs]
    return {
        name: {"value": float(v), "per_seed": [float(s[name]) for s in per_seed]}
        for name, v in value.items()
    }


def write_metrics(ctx: StageContext, metrics: dict[str, dict], details: dict | None = None) -> None:
    """Write ``results/<scale>/<paper>/metrics.json``."""
    for name, entry in metrics.items():
        if not np.isfinite(entry["value"]):
            raise ValueError(f"metric {name} is not finite: {entry['value']}")
    write_json(
        ctx.metrics_path,
        {
            "paper": ctx.paper,
            "scale": ctx.scale,
            "seeds": list(ctx.seeds),
            "metrics": metrics,
            "details": details or {},
        },
    )


def read_metrics(path: Path) -> dict:
    return json.loads(Path(path).read_text())
