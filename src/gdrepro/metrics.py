"""metrics.json: every reproduced number, pooled over seeds, with the per-seed values beside it.

Layout: ``{"paper", "scale", "seeds", "settings", "metrics": {name: {"value", "per_seed"}},
"details": {...}, "environment": {"kernels": ...}, "performance": {...}}``. ``value`` is the
estimate the claims are judged on (pooled over all seeds' replications, or the mean over seeds
where pooling is meaningless); ``per_seed`` shows the seed-to-seed spread; a non-finite value (a
diverged run) is stored as ``null`` and judged ❌. ``metrics`` and ``details`` are a function of
scale, settings, seeds and ``environment.kernels``, the CPU kernel choice they were computed
with (gdrepro.kernels; the evaluating process's record completed by the per-seed runs': in
portable mode the same record, and the same numbers, on every x86-64 machine);
``performance`` (throughput, timings) is the only machine-dependent part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gdrepro.errors import GdreproError
from gdrepro.paper import StageContext, write_json

Run = TypeVar("Run")


def across_seeds(
    compute: Callable[[Run], dict[str, float]],
    runs: Sequence[Run],
    pooled: Run,
) -> dict[str, dict[str, Any]]:
    """Apply ``compute`` to the pooled data and to each seed's data; return metric entries."""
    value = compute(pooled)
    per_seed = [compute(run) for run in runs]
    return {
        name: {"value": _finite(v), "per_seed": [_finite(s[name]) for s in per_seed]}
        for name, v in value.items()
    }


def _finite(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def write_metrics(
    ctx: StageContext,
    metrics: dict[str, dict],
    details: dict | None = None,
    performance: dict[str, float] | None = None,
) -> None:
    """Write ``results/<scale>/<paper>/metrics.json`` (with ``overrides`` only when the run changed
    settings of the scale's preset: the claims engine and the report say so)."""
    write_json(
        ctx.metrics_path,
        {
            "paper": ctx.paper,
            "scale": ctx.scale,
            "seeds": list(ctx.seeds),
            "settings": ctx.settings,
            **({"overrides": dict(ctx.overrides)} if ctx.overrides else {}),
            "metrics": metrics,
            "details": details or {},
            "environment": {"kernels": ctx.kernels()},
            "performance": performance or {},
        },
    )


def read_metrics(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise GdreproError(f"missing {path} (run the paper's evaluate stage first)")
    return json.loads(path.read_text())
