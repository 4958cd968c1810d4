"""Claims as data: a paper's ``claims.yaml`` judged against its ``metrics.json``.

A claim has one or more checks ``metric op value`` (``op`` in ==, <=, >=, <, >) with a
tolerance fixed in claims.yaml before running. Verdicts:

- ✅ reproduced: every check holds as stated;
- ≈ within tolerance: every check holds once the value is moved by the tolerance;
- ❌ not reproduced: some check fails even then (a finding, reported with its reason);
- — not applicable: the claim is not expected to show at this scale (the number is still shown).

``kind: paper`` claims are the paper's; ``kind: stress`` are our stress tests beyond the regime
the paper states (reported, but not counted as the paper's claims).
"""

from __future__ import annotations

import json
import math
import operator
from pathlib import Path
from typing import Any

import yaml

from gdrepro import SCALES
from gdrepro.errors import GdreproError
from gdrepro.metrics import read_metrics
from gdrepro.paper import write_json
from gdrepro.tables import fmt, markdown_table, write_table

REPRODUCED, WITHIN, FAILED, NOT_APPLICABLE = "✅", "≈", "❌", "—"
VERDICT_WORDS = {
    REPRODUCED: "reproduced",
    WITHIN: "within tolerance",
    FAILED: "not reproduced",
    NOT_APPLICABLE: "not applicable at this scale",
}
TABLE_COLUMNS = ["id", "claim", "where", "paper", "check", "reproduced", "verdict"]
OPS = {"==": None, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}

CLAIMS_SCHEMA = {
    "type": "object",
    "required": ["paper", "claims"],
    "additionalProperties": False,
    "properties": {
        "paper": {"type": "string"},
        "deviations": {"type": "array", "items": {"type": "string"}},
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "statement", "where", "paper", "scales", "checks"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"enum": ["paper", "stress"]},
                    "statement": {"type": "string"},
                    "where": {"type": "string"},
                    "paper": {"type": "string"},
                    "scales": {"type": "array", "minItems": 1, "items": {"enum": list(SCALES)}},
                    "note": {"type": "string"},
                    "checks": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["metric", "op", "value", "tolerance"],
                            "additionalProperties": False,
                            "properties": {
                                "metric": {"type": "string"},
                                "op": {"enum": list(OPS)},
                                "value": {"type": "number"},
                                "tolerance": {"type": "number", "minimum": 0},
                            },
                        },
                    },
                },
            },
        },
    },
}


def load_claims(path: Path) -> dict:
    """Read and validate a claims.yaml."""
    import jsonschema

    spec = yaml.safe_load(Path(path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(CLAIMS_SCHEMA).iter_errors(spec))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise GdreproError(f"{path}: {where}: {error.message}")
    ids = [c["id"] for c in spec["claims"]]
    if len(ids) != len(set(ids)):
        raise GdreproError(f"{path}: claim ids are not unique")
    return spec


def check_outcome(x: float | None, op: str, value: float, tolerance: float) -> str:
    """The verdict of one check ``x op value`` with ``tolerance``; a missing or non-finite x fails."""
    if x is None or not math.isfinite(x):
        return FAILED
    if op == "==":
        gap = abs(x - value)
        return REPRODUCED if gap <= 1e-12 else WITHIN if gap <= tolerance else FAILED
    compare = OPS[op]
    if compare(x, value):
        return REPRODUCED
    slack = value - tolerance if op in (">=", ">") else value + tolerance
    return WITHIN if compare(x, slack) else FAILED


def _worst(verdicts: list[str]) -> str:
    for verdict in (FAILED, WITHIN):
        if verdict in verdicts:
            return verdict
    return REPRODUCED


def judge(spec: dict, metrics: dict, scale: str) -> list[dict[str, Any]]:
    """Verdicts of every claim in ``spec`` at ``scale`` given a metrics.json dict."""
    if metrics.get("scale") != scale:
        raise GdreproError(f"metrics.json was made at scale {metrics.get('scale')!r}, not {scale!r}")
    judged = []
    for claim in spec["claims"]:
        applicable = scale in claim["scales"]
        checks = []
        for check in claim["checks"]:
            entry = metrics["metrics"].get(check["metric"])
            if entry is None and applicable:
                raise GdreproError(f"claim {claim['id']}: metric {check['metric']!r} is not in metrics.json")
            entry = entry or {"value": None}  # a paper-scale-only metric need not exist at other scales
            per_seed = entry.get("per_seed", [])
            checks.append(
                {
                    **check,
                    "reproduced": entry["value"],
                    "per_seed": per_seed,
                    "sd": _sd(per_seed),
                    "outcome": check_outcome(entry["value"], check["op"], check["value"], check["tolerance"]),
                }
            )
        verdict = _worst([c["outcome"] for c in checks]) if applicable else NOT_APPLICABLE
        judged.append({**claim, "kind": claim.get("kind", "paper"), "checks": checks,
                       "applicable": applicable, "verdict": verdict})
    return judged


def _sd(values: list[float | None]) -> float | None:
    if len(values) < 2 or any(v is None for v in values):
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def reproduced_text(check: dict) -> str:
    text = fmt(check["reproduced"])
    if check["sd"] is not None:
        text += f" ± {fmt(check['sd'])}"
    return text


def target_text(check: dict) -> str:
    tol = f" (tol {fmt(check['tolerance'])})" if check["tolerance"] else ""
    return f"`{check['metric']}` {check['op']} {fmt(check['value'])}{tol}"


def rows(judged: list[dict]) -> list[dict[str, str]]:
    """One flat row per claim for the Markdown, CSV and LaTeX tables."""
    return [
        {
            "id": c["id"],
            "kind": c["kind"],
            "claim": c["statement"],
            "where": c["where"],
            "paper": c["paper"],
            "check": "; ".join(target_text(k) for k in c["checks"]),
            "reproduced": "; ".join(reproduced_text(k) for k in c["checks"]),
            "verdict": c["verdict"],
        }
        for c in judged
    ]


def tally(judged: list[dict], kind: str = "paper") -> dict[str, int]:
    """Counts of each verdict among applicable claims of ``kind``."""
    counts = {v: 0 for v in (REPRODUCED, WITHIN, FAILED)}
    for claim in judged:
        if claim["kind"] == kind and claim["applicable"]:
            counts[claim["verdict"]] += 1
    return counts


def write(paper_title: str, slug: str, scale: str, claims_path: Path, metrics_path: Path, out: Path) -> list[dict]:
    """Judge and write ``claims.json``, ``claims.md`` and ``tables/claims.{csv,tex,md}``."""

    spec = load_claims(claims_path)
    metrics = read_metrics(metrics_path)
    judged = judge(spec, metrics, scale)
    write_json(out / "claims.json", {"paper": slug, "scale": scale, "seeds": metrics["seeds"], "claims": judged})
    table = rows(judged)
    write_table(out / "tables" / "claims", table, caption=f"{paper_title}: claims at scale {scale}")
    counts = tally(judged)
    lines = [
        f"# {slug}: claims at scale `{scale}`",
        "",
        f"{paper_title}. Seeds {', '.join(map(str, metrics['seeds']))}; reproduced = value pooled over "
        "seeds ± sd across seeds. Verdicts: ✅ reproduced, ≈ within tolerance, ❌ not reproduced, "
        "— not applicable at this scale.",
        "",
        f"Paper claims: {counts[REPRODUCED]} ✅, {counts[WITHIN]} ≈, {counts[FAILED]} ❌ "
        f"of {sum(counts.values())} applicable.",
        "",
        markdown_table(table, TABLE_COLUMNS),
    ]
    notes = [f"- **{c['id']}**: {c['note']}" for c in judged if c.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    (out / "claims.md").write_text("\n".join(lines) + "\n")
    return judged


def read_judged(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise GdreproError(f"missing {path} (run `gdrepro {path.parent.name} claims` first)")
    return json.loads(path.read_text())
