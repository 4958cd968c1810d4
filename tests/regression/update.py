"""Rewrite the smoke regression references from a finished smoke run.

    snakemake --cores all --config scale=smoke && python -m tests.regression.update

A deliberate change of a smoke number updates tests/regression/smoke/<paper>.json in the same
commit, and the commit message says why. The references are exact (``DEFAULT_TOLERANCE``): with
the portable kernels (gdrepro.kernels) every x86-64 CPU computes the same bits. Existing
per-metric tolerances and their ``reason`` are kept; a wider tolerance needs a reason, and is
never wider than what a changed constant in method.py would move. Metrics under
``unreferenced`` (wall-clock ratios) stay out, with their reason. Metrics that are null at smoke
scale are not referenced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gdrepro.metrics import read_metrics

HERE = Path(__file__).resolve().parent
DEFAULT_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}


def reference_for(metrics_file: Path, old: dict) -> dict:
    produced = read_metrics(metrics_file)
    unreferenced = old.get("unreferenced", {})
    entries = {}
    for name, entry in sorted(produced["metrics"].items()):
        if entry["value"] is None or name in unreferenced:  # null at this scale, or not comparable
            continue
        previous = old.get("metrics", {}).get(name, {})
        entries[name] = {"value": entry["value"], **{k: previous.get(k, v) for k, v in DEFAULT_TOLERANCE.items()}}
        if "reason" in previous:
            entries[name]["reason"] = previous["reason"]
    kernels = produced.get("environment", {}).get("kernels", {})
    return {"paper": produced["paper"], "scale": produced["scale"], "kernels": kernels,
            "metrics": entries, "unreferenced": unreferenced}


def update(results: Path) -> list[Path]:
    written = []
    for metrics_file in sorted(results.glob("*/metrics.json")):
        target = HERE / "smoke" / f"{metrics_file.parent.name}.json"
        old = json.loads(target.read_text()) if target.exists() else {}
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(reference_for(metrics_file, old), indent=2) + "\n")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in update(Path(sys.argv[1] if len(sys.argv) > 1 else "results/smoke")):
        print(f"wrote {path}")
