"""Claims as data: a paper's ``claims.yaml`` judged against its ``metrics.json``.

Every claim has a ``kind``: ``paper`` (the paper's claim, counted as a reproduction), ``stress``
(ours, beyond the regime the paper states: shown, not counted) or ``sanity`` (a property of our
implementation: listed apart as an implementation check, never counted). A paper claim says what
it is judged against (``basis``: the paper's number, its qualitative statement, or a threshold of
ours), how it could fail (``fails_if``) and at which ``budget`` it is run at each scale (the
paper's recipe or a named fraction of it, from the file's ``budgets``). A claim that
``stands_in_for`` another (part of its checks, judged alone for runs that leave the other out) is
judged only where that other claim is not; otherwise it is shown as covered and not counted.

A claim has one or more checks ``metric op value`` with a tolerance fixed before the run, and a
``stat``: ``seeds`` judges the 95% interval over the per-seed values (paired per seed against a
``versus`` metric when it compares two quantities on the same seeds), ``fixed`` judges the single
value (deterministic quantities, statistics that already pool the runs). A ``floor`` metric is the
noise floor of a distance: an estimate at or below it is inconclusive. gdrepro.verdicts holds the
rules; a claim takes its worst check's verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from gdrepro import SCALES, layout
from gdrepro import verdicts as V
from gdrepro.errors import GdreproError
from gdrepro.metrics import read_metrics
from gdrepro.paper import write_json
from gdrepro.tables import fmt, html_table, markdown_table, write_csv, write_table
from gdrepro.verdicts import FAILED, INCONCLUSIVE, NOT_APPLICABLE, REPRODUCED, WITHIN  # noqa: F401  (re-exported)

KINDS = ("paper", "stress", "sanity")
BASES = {"paper-number": "the paper's number", "paper-statement": "the paper's statement",
         "ours": "our threshold (not the paper's)"}
TABLE_COLUMNS = ["id", "claim", "judged against", "check", "pooled value", "seed mean [95% interval] (n)", "budget", "verdict"]
SANITY_COLUMNS = ["id", "claim", "check", "pooled value", "seed mean [95% interval] (n)", "verdict"]
CSV_COLUMNS = ["claim", "kind", "check", "metric", "versus", "op", "threshold", "tolerance", "stat", "value",
               "mean", "ci_low", "ci_high", "n_seeds", "interval", "floor", "check_verdict", "reason",
               "claim_verdict", "budget", "applicable"]

_BUDGET = {"oneOf": [{"const": "recipe"},
                     {"type": "object", "required": ["fraction", "what"], "additionalProperties": False,
                      "properties": {"fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                     "what": {"type": "string"}}}]}
CHECK_SCHEMA = {
    "type": "object",
    "required": ["metric", "op", "value", "tolerance", "stat"],
    "additionalProperties": False,
    "properties": {
        "metric": {"type": "string"},
        "op": {"enum": list(V.OPS)},
        "value": {"type": "number"},
        "tolerance": {"type": "number", "minimum": 0},
        "stat": {"enum": ["seeds", "fixed"]},
        "versus": {"type": "string"},
        "compare": {"enum": ["difference", "ratio"]},
        "paired": {"type": "boolean"},
        "floor": {"type": "string"},
    },
}
CLAIMS_SCHEMA = {
    "type": "object",
    "required": ["paper", "claims"],
    "additionalProperties": False,
    "properties": {
        "paper": {"type": "string"},
        "deviations": {"type": "array", "items": {"type": "string"}},
        "budgets": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "minProperties": 1,
            "properties": {s: _BUDGET for s in SCALES}}},
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "kind", "statement", "where", "paper", "scales", "checks"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"enum": list(KINDS)},
                    "statement": {"type": "string"},
                    "where": {"type": "string"},
                    "paper": {"type": "string"},
                    "basis": {"enum": list(BASES)},
                    "fails_if": {"type": "string", "minLength": 10},
                    "budget": {"type": "string"},
                    "scales": {"type": "array", "minItems": 1, "items": {"enum": list(SCALES)}},
                    "note": {"type": "string"},
                    "stands_in_for": {"type": "string"},
                    "checks": {"type": "array", "minItems": 1, "items": CHECK_SCHEMA},
                },
            },
        },
    },
}


def load_claims(path: Path) -> dict:
    """Read and validate a claims.yaml; every problem is a one-line GdreproError naming the claim."""
    import jsonschema

    spec = yaml.safe_load(Path(path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(CLAIMS_SCHEMA).iter_errors(spec))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise GdreproError(f"{path}: {where}: {error.message}")
    ids = [c["id"] for c in spec["claims"]]
    if len(ids) != len(set(ids)):
        raise GdreproError(f"{path}: claim ids are not unique")
    for claim in spec["claims"]:
        _check_claim(path, claim, spec.get("budgets", {}))
        target = claim.get("stands_in_for")
        if target is not None and (target == claim["id"] or target not in ids):
            raise GdreproError(f"{path}: claim {claim['id']}: stands_in_for names no other claim of the file")
    return spec


def _check_claim(path: Path, claim: dict, budgets: dict) -> None:
    def fail(message: str) -> None:
        raise GdreproError(f"{path}: claim {claim['id']}: {message}")

    if claim["kind"] == "paper":
        missing = [k for k in ("basis", "fails_if", "budget") if k not in claim]
        if missing:
            fail(f"a paper claim needs {', '.join(missing)}")
    if "budget" in claim and claim["budget"] != "recipe":
        if claim["budget"] not in budgets:
            fail(f"budget {claim['budget']!r} is not among the file's budgets {sorted(budgets)}")
        unknown = [s for s in claim["scales"] if s not in budgets[claim["budget"]]]
        if unknown:
            fail(f"budget {claim['budget']!r} says nothing about scale(s) {', '.join(unknown)}")
    for check in claim["checks"]:
        if ("compare" in check or "paired" in check) and "versus" not in check:
            fail(f"check on {check['metric']}: 'compare'/'paired' need a 'versus' metric")
        if check.get("compare") == "ratio" and check.get("paired") is False:
            fail(f"check on {check['metric']}: a ratio is only judged paired")


def budget_at(spec: dict, claim: dict, scale: str) -> dict | None:
    """``{"recipe": True}`` or ``{"recipe": False, "fraction", "what"}``; None when not stated."""
    name = claim.get("budget")
    if name is None:
        return None
    entry = "recipe" if name == "recipe" else spec["budgets"][name].get(scale)
    if entry is None:
        return None
    return {"recipe": True} if entry == "recipe" else {"recipe": False, **entry}


def _metric(metrics: dict, name: str, claim: dict, applicable: bool) -> dict:
    entry = metrics["metrics"].get(name)
    if entry is None and applicable:
        raise GdreproError(f"claim {claim['id']}: metric {name!r} is not in metrics.json")
    return entry or {"value": None, "per_seed": []}  # a paper-scale-only metric need not exist elsewhere


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def judge_check(check: dict, metrics: dict, claim: dict, applicable: bool) -> dict:
    """One check: its estimate (value, interval over seeds), verdict and the reason for it."""
    entry = _metric(metrics, check["metric"], claim, applicable)
    versus = _metric(metrics, check["versus"], claim, applicable) if "versus" in check else None
    compare, paired = check.get("compare", "difference"), check.get("paired", True)
    value = entry["value"]
    if versus is not None:
        b = versus["value"]
        value = None if not (_finite(value) and _finite(b)) else (
            value - b if compare == "difference" else (value / b if b else None))
    if check["stat"] == "fixed":
        est = V.Estimate(value, value, value, 1, "fixed value") if _finite(value) else V.Estimate(None, None, None, 0, "fixed value")
    elif versus is None:
        est = V.seed_interval(entry.get("per_seed", []))
    elif paired:
        est = V.paired_interval(entry.get("per_seed", []), versus.get("per_seed", []), compare)
    else:
        est = V.welch_interval(entry.get("per_seed", []), versus.get("per_seed", []))
    floor = _metric(metrics, check["floor"], claim, applicable)["value"] if "floor" in check else None
    outcome, reason = _verdict(check, value, est, floor) if applicable else (NOT_APPLICABLE, "not run at this scale")
    return {**check, "reproduced": value, "per_seed": entry.get("per_seed", []),
            "estimate": {"mean": est.mean, "low": est.low, "high": est.high, "n": est.n, "method": est.method},
            "floor_value": floor, "outcome": outcome, "reason": reason}


def _verdict(check: dict, value: float | None, est: V.Estimate, floor: float | None) -> tuple[str, str]:
    if not _finite(value):
        return FAILED, "non-finite value (a diverged run)"
    if est.low is None:
        return INCONCLUSIVE, f"{est.n} finite seed(s): no interval"
    outcome = V.judge_interval(est.low, est.high, check["op"], check["value"], check["tolerance"])
    where = "value" if check["stat"] == "fixed" else f"interval [{fmt(est.low)}, {fmt(est.high)}]"
    if _finite(floor) and est.mean <= floor:
        return INCONCLUSIVE, f"estimate {fmt(est.mean)} at or below the noise floor {fmt(floor)}"
    relation = {REPRODUCED: "satisfies", WITHIN: "satisfies within tolerance", FAILED: "lies outside",
                INCONCLUSIVE: "straddles the boundary of"}[outcome]
    return outcome, f"{where} {relation} {_target(check)}"


def judge(spec: dict, metrics: dict, scale: str) -> list[dict[str, Any]]:
    """Verdicts of every claim in ``spec`` at ``scale`` given a metrics.json dict."""
    if metrics.get("scale") != scale:
        raise GdreproError(f"metrics.json was made at scale {metrics.get('scale')!r}, not {scale!r}")
    judged = []
    judged_here = {c["id"] for c in spec["claims"] if scale in c["scales"] and _in_run(c, metrics)}
    for claim in spec["claims"]:
        left_out = scale in claim["scales"] and claim["id"] not in judged_here
        covered = scale in claim["scales"] and claim.get("stands_in_for") in judged_here
        applicable = scale in claim["scales"] and not left_out and not covered
        checks = [judge_check(check, metrics, claim, applicable) for check in claim["checks"]]
        verdict = V.worst([c["outcome"] for c in checks]) if applicable else NOT_APPLICABLE
        budget = budget_at(spec, claim, scale) if applicable else None
        text = verdict_text(verdict, budget)
        if left_out:
            text = f"{NOT_APPLICABLE} not in this run ({overrides_text(metrics['overrides'])})"
            for check in checks:
                check["reason"] = "the run's overridden settings left out what this check reads"
        elif covered:
            text = f"{NOT_APPLICABLE} judged within {claim['stands_in_for']} in this run (not counted twice)"
            for check in checks:
                check["reason"] = f"{claim['stands_in_for']} judges this check in this run"
        judged.append({**claim, "checks": checks, "applicable": applicable, "verdict": verdict,
                       "budget_at_scale": budget, "verdict_text": text,
                       **({"covered": True} if covered else {})})
    return judged


def _in_run(claim: dict, metrics: dict) -> bool:
    """False when a run whose settings were overridden (metrics.json ``overrides``, e.g. fewer
    environments than the preset) left out a metric the claim reads; without overrides a missing
    metric stays an error."""
    if not metrics.get("overrides"):
        return True
    names = {c.get(k) for c in claim["checks"] for k in ("metric", "versus", "floor")} - {None}
    return names <= metrics["metrics"].keys()


def overrides_text(overrides: dict) -> str:
    """``settings changed from the preset: envs = ["Hopper-v4"]``."""
    return "settings changed from the preset: " + ", ".join(
        f"{k} = {json.dumps(v)}" for k, v in overrides.items())


def overrides_line(overrides: dict | None) -> list[str]:
    """The headline bullet of a run that changed settings of its scale's preset (none otherwise)."""
    if not overrides:
        return []
    return [f"- This run's {overrides_text(overrides)}; its claims on what it left out are not in this run."]


def verdict_text(verdict: str, budget: dict | None) -> str:
    """``❌ not reproduced at 1/25 of the paper's budget``: symbol, word, and a reduced budget."""
    text = f"{verdict} {V.WORDS[verdict]}"
    if verdict != NOT_APPLICABLE and budget is not None and not budget["recipe"]:
        text += f" at {V.budget_text(budget['fraction'])} of the paper's budget"
    return text


def _target(check: dict) -> str:
    x = check["metric"] if "versus" not in check else (
        f"{check['metric']} {'-' if check.get('compare', 'difference') == 'difference' else '/'} {check['versus']}")
    tol = f" (tol {fmt(check['tolerance'])})" if check["tolerance"] else ""
    return f"`{x}` {check['op']} {fmt(check['value'])}{tol}"


def _interval(check: dict) -> str:
    est = check["estimate"]
    if check["stat"] == "fixed":
        return "fixed"
    if est["low"] is None:
        return f"n/a ({est['n']})"
    text = f"{fmt(est['mean'])} [{fmt(est['low'])}, {fmt(est['high'])}] ({est['n']})"
    return text + (f", floor {fmt(check['floor_value'])}" if check.get("floor_value") is not None else "")


def _budget_label(budget: dict | None) -> str:
    if budget is None:
        return "n/a"
    return "paper's recipe" if budget["recipe"] else f"{V.budget_text(budget['fraction'])}: {budget['what']}"


def rows(judged: list[dict]) -> list[dict[str, str]]:
    """One row per claim for the Markdown, HTML and LaTeX tables."""
    return [
        {
            "id": c["id"],
            "kind": c["kind"],
            "claim": c["statement"],
            "where": c["where"],
            "paper": c["paper"],
            "judged against": f"{c['paper']} ({c['where']}; {BASES[c['basis']]})" if "basis" in c else c["paper"],
            "fails if": c.get("fails_if", ""),
            "check": "; ".join(_target(k) for k in c["checks"]),
            "pooled value": "; ".join(fmt(k["reproduced"]) for k in c["checks"]),
            "seed mean [95% interval] (n)": "; ".join(_interval(k) for k in c["checks"]),
            "budget": _budget_label(c.get("budget_at_scale")),
            "verdict": c["verdict_text"],
        }
        for c in judged
    ]


def split_sanity(table: list[dict], judged: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows of the claims that are shown as claims (paper, stress) and of the implementation checks."""
    counted = [r for r, c in zip(table, judged, strict=True) if c["kind"] != "sanity"]
    return counted, [r for r, c in zip(table, judged, strict=True) if c["kind"] == "sanity"]


def csv_rows(judged: list[dict]) -> list[dict]:
    """One row per check, numbers in their own columns (value, interval, n seeds)."""
    out = []
    for c in judged:
        for k in c["checks"]:
            est = k["estimate"]
            out.append({
                "claim": c["id"], "kind": c["kind"], "check": _target(k), "metric": k["metric"],
                "versus": k.get("versus", ""), "op": k["op"], "threshold": k["value"], "tolerance": k["tolerance"],
                "stat": k["stat"], "value": k["reproduced"], "mean": est["mean"], "ci_low": est["low"],
                "ci_high": est["high"], "n_seeds": est["n"], "interval": est["method"],
                "floor": k.get("floor_value"), "check_verdict": V.WORDS[k["outcome"]], "reason": k["reason"],
                "claim_verdict": c["verdict_text"], "budget": _budget_label(c.get("budget_at_scale")),
                "applicable": c["applicable"],
            })
    return out


def tally(judged: list[dict], kind: str = "paper", recipe: bool | None = None) -> dict[str, int]:
    """Counts of each verdict among claims of ``kind`` (— counts those not run at this scale);
    ``recipe`` True/False keeps the claims run at the paper's recipe / at a reduced budget."""
    counts = {v: 0 for v in (REPRODUCED, WITHIN, FAILED, INCONCLUSIVE, NOT_APPLICABLE)}
    for claim in judged:
        if claim["kind"] != kind or claim.get("covered"):
            continue
        if recipe is not None:
            budget = claim.get("budget_at_scale")
            if not claim["applicable"] or bool(budget and budget["recipe"]) != recipe:
                continue
        counts[claim["verdict"]] += 1
    return counts


def tally_text(counts: dict[str, int]) -> str:
    shown = [f"{n} {v} {V.WORDS[v]}" for v, n in counts.items() if n and v != NOT_APPLICABLE]
    return ", ".join(shown) or "none"


def headline(judged: list[dict]) -> list[str]:
    """The per-paper headline: paper claims at the paper's recipe, at a reduced budget, not run."""
    recipe, reduced = tally(judged, "paper", recipe=True), tally(judged, "paper", recipe=False)
    lines = [f"- Paper claims at the paper's recipe: {tally_text(recipe)}.",
             f"- Paper claims at a reduced budget: {tally_text(reduced)}."]
    not_run = tally(judged, "paper")[NOT_APPLICABLE]
    if not_run:
        lines.append(f"- Paper claims not run at this scale: {not_run}.")
    for kind, label in (("stress", "Stress tests (ours, not counted)"), ("sanity", "Implementation checks (not counted)")):
        counts = tally(judged, kind)
        if sum(v for k, v in counts.items() if k != NOT_APPLICABLE):
            lines.append(f"- {label}: {tally_text(counts)}.")
    return lines


LEGEND = ("Verdicts: ✅ reproduced, ≈ within tolerance, ❌ not reproduced, ❔ inconclusive, — not run at this "
          "scale. A `seeds` check is judged on the two-sided 95% Student-t interval of the mean over seeds "
          "(paired per seed when it compares two quantities measured on the same seeds, Welch's interval "
          "otherwise): ✅ the interval lies inside the claim's region, ≈ inside it once moved by the "
          "tolerance fixed before the run, ❌ wholly outside that, ❔ across its boundary or at the noise "
          "floor. A `fixed` check judges one deterministic or already pooled value. \"pooled value\" is the "
          "estimate from all seeds' data together (metrics.json `value`); the verdict of a `seeds` check uses "
          "the mean of the per-seed values and its interval, which differ from it where the metric is not "
          "linear in the data (a ratio, a min, an absolute value).")


def write(paper_title: str, slug: str, scale: str, claims_path: Path, metrics_path: Path, out: Path) -> list[dict]:
    """Judge and write ``claims.json``, ``claims.md`` and ``tables/claims.{csv,html,tex,md}``."""
    spec = load_claims(claims_path)
    metrics = read_metrics(metrics_path)
    judged = judge(spec, metrics, scale)
    overrides = metrics.get("overrides")
    write_json(out / "claims.json", {"paper": slug, "scale": scale, "seeds": metrics["seeds"],
                                     **({"overrides": overrides} if overrides else {}), "claims": judged})
    table = rows(judged)
    counted, checks = split_sanity(table, judged)
    caption = f"{paper_title}: claims at scale {scale}"
    write_table(out / "tables" / "claims", [{k: r[k] for k in ("id", "kind", *TABLE_COLUMNS[1:])} for r in table],
                caption=caption, csv_too=False)
    write_csv(out / layout.CLAIMS_TABLE, csv_rows(judged), CSV_COLUMNS)
    (out / layout.CLAIMS_HTML).write_text(html_page(caption, judged, table))
    lines = [
        f"# {slug}: claims at scale `{scale}`",
        "",
        f"{paper_title}. Seeds {', '.join(map(str, metrics['seeds']))}.",
        "",
        *headline(judged),
        *overrides_line(overrides),
        "",
        LEGEND,
        "",
        markdown_table(counted, TABLE_COLUMNS),
    ]
    if checks:
        lines += ["", "## Implementation checks (not counted as reproductions)", "",
                  markdown_table(checks, SANITY_COLUMNS)]
    fails = [f"- **{c['id']}** fails if: {c['fails_if']}" for c in judged if c.get("fails_if")]
    notes = [f"- **{c['id']}**: {c['note']}" for c in judged if c.get("note")]
    lines += ["", "## How each paper claim could fail", "", *fails] if fails else []
    lines += ["", "## Notes", "", *notes] if notes else []
    (out / "claims.md").write_text("\n".join(lines) + "\n")
    return judged


def html_page(caption: str, judged: list[dict], table: list[dict]) -> str:
    """A self-contained HTML page of the claims (shown inline by ``snakemake --report``)."""
    counted, checks = split_sanity(table, judged)
    body = [f"<h3>{caption}</h3>", "<ul>" + "".join(f"<li>{line[2:]}</li>" for line in headline(judged)) + "</ul>",
            html_table(counted, ["id", "kind", *TABLE_COLUMNS[1:], "fails if"])]
    if checks:
        body += ["<h4>Implementation checks (not counted)</h4>",
                 html_table(checks, SANITY_COLUMNS)]
    body.append(f"<p>{LEGEND}</p>")
    return html_document(caption, "\n".join(body))


def html_document(title: str, body: str) -> str:
    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#eee}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body>{body}</body></html>\n")


def read_judged(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise GdreproError(f"missing {path} (run `gdrepro {path.parent.name} claims` first)")
    return json.loads(path.read_text())
