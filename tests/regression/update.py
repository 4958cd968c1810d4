"""Rewrite the smoke regression references from a finished smoke run.

    snakemake --cores all --config scale=smoke && python -m tests.regression.update

A deliberate change of a smoke number updates tests/regression/smoke/<paper>.json in the same
commit, and the commit message says why. Existing per-metric tolerances are kept (widen one by
hand only for a machine-dependent metric such as a wall-clock ratio, and say so). Metrics that
are null at smoke scale are not referenced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gdrepro.metrics import read_metrics

HERE = Path(__file__).resolve().parent
DEFAULT_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}


def update(results: Path) -> list[Path]:
    written = []
    for metrics_file in sorted(results.glob("*/metrics.json")):
        paper = metrics_file.parent.name
        target = HERE / "smoke" / f"{paper}.json"
        old = json.loads(target.read_text())["metrics"] if target.exists() else {}
        metrics = read_metrics(metrics_file)["metrics"]
        reference = {
            name: {"value": entry["value"], **{k: old.get(name, DEFAULT_TOLERANCE)[k] for k in DEFAULT_TOLERANCE}}
            for name, entry in sorted(metrics.items())
            if entry["value"] is not None  # null at this scale (e.g. a paper-scale-only metric)
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"paper": paper, "scale": "smoke", "metrics": reference}, indent=2) + "\n")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in update(Path(sys.argv[1] if len(sys.argv) > 1 else "results/smoke")):
        print(f"wrote {path}")
