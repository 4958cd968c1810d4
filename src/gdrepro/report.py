"""The roll-up ``results/<scale>/REPORT.md`` and ``summary.{csv,tex,md,html}`` over every paper's claims.

The headline counts, per paper, the paper's claims judged at the paper's recipe apart from those
judged at a reduced budget (reproduced, within tolerance, not reproduced, inconclusive), the
claims not run at this scale, our stress tests and the implementation checks (neither counted).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from gdrepro import claims as C
from gdrepro import layout, papers
from gdrepro.runtime import git_commit
from gdrepro.tables import html_table, markdown_table, write_table

VERDICT_COLUMNS = ((C.REPRODUCED, "reproduced"), (C.WITHIN, "within tolerance"),
                   (C.FAILED, "not reproduced"), (C.INCONCLUSIVE, "inconclusive"))


def wall_time(paper_dir: Path) -> float:
    """Seconds spent in the paper's jobs, from Snakemake's benchmark files (0 if none)."""
    total = 0.0
    for tsv in sorted((paper_dir / "benchmarks").glob("*.tsv")):
        with tsv.open() as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                total += float(row["s"])
    return total


def _short(commit: str) -> str:
    """``abc123def456`` or ``abc123def456-dirty`` (uncommitted changes when the report was made)."""
    sha, _, dirty = commit.partition("-")
    return sha[:12] + (f"-{dirty}" if dirty else "")


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _passed(counts: dict[str, int]) -> str:
    run = sum(n for v, n in counts.items() if v != C.NOT_APPLICABLE)
    return f"{counts[C.REPRODUCED] + counts[C.WITHIN]}/{run}"


def summary_row(slug: str, judged: list[dict], seconds: float) -> dict:
    """One paper's headline: paper claims at the recipe, at a reduced budget, not run; the rest."""
    row: dict = {"paper": slug}
    for label, recipe in (("recipe", True), ("reduced budget", False)):
        counts = C.tally(judged, "paper", recipe=recipe)
        row |= {f"{label}: {symbol} {word}": counts[symbol] for symbol, word in VERDICT_COLUMNS}
    row["not run"] = C.tally(judged, "paper")[C.NOT_APPLICABLE]
    row["stress (ours) passed"] = _passed(C.tally(judged, "stress"))
    row["implementation checks passed"] = _passed(C.tally(judged, "sanity"))
    row["wall time"] = _duration(seconds)
    return row


MEDIA = {".gif", ".mp4"}  # optional animations a figures stage may add beside its declared figures


def invocation(path: Path = Path(layout.INVOCATION)) -> tuple[str, str]:
    """The command and config of the pipeline run (recorded by the Snakefile's onstart)."""
    if not path.exists():
        return "not recorded (the report was not made by `snakemake`)", "n/a"
    record = json.loads(path.read_text())
    return record["command"], json.dumps(record["config"], sort_keys=True)


def environment_lock(path: Path = Path("requirements-lock.txt")) -> str:
    """``requirements-lock.txt sha256:<12 hex>``: the pinned environment results are made with."""
    if not path.exists():
        return "no lock file"
    import hashlib

    return f"`{path.name}` sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def write_report(scale: str, results: Path, slugs: list[str], invocation_file: Path | None = None) -> Path:
    """Roll the papers' claims up into ``results/<scale>/REPORT.md`` and ``summary.{csv,tex,md,html}``."""
    summary, sections = [], []
    for slug in slugs:
        paper = papers.get(slug)
        spec = C.load_claims(papers.claims_file(slug))
        record = C.read_judged(results / slug / layout.CLAIMS_JSON)
        judged = record["claims"]
        summary.append(summary_row(slug, judged, wall_time(results / slug)))
        table = C.rows(judged)
        counted, _ = C.split_sanity(table, judged)
        figures = [f"![{name}]({slug}/figures/{name}.png)" for name in paper.figure_names]
        figures += [f"![{m.stem}]({slug}/figures/{m.name}) (animation; made where a renderer was available)"
                    for m in sorted((results / slug / "figures").glob("*")) if m.suffix in MEDIA]
        deviations = [f"- {d}" for d in spec.get("deviations", [])] or ["- none listed"]
        sections += [
            f"## {slug}: {paper.title}",
            "",
            f"{paper.citation}. Details (how each claim could fail, implementation checks, notes): "
            f"[{slug}/claims.md]({slug}/claims.md), metrics: [{slug}/metrics.json]({slug}/metrics.json).",
            "",
            *C.headline(judged),
            *C.overrides_line(record.get("overrides")),
            "",
            markdown_table(counted, C.TABLE_COLUMNS),
            "",
            *[f"- **{c['id']}**: {c['note']}" for c in judged if c.get("note") and c["kind"] != "sanity"],
            "",
            "### Figures",
            "",
            *figures,
            "",
            "### Deviations from the paper",
            "",
            *deviations,
            "",
        ]
    caption = f"gdrepro reproduction summary, scale {scale}"
    write_table(results / "summary", summary, caption=caption)
    (results / "summary.html").write_text(C.html_document(caption, html_table(summary) + f"<p>{C.LEGEND}</p>"))
    command, config = invocation(invocation_file or Path(layout.INVOCATION))
    lines = [
        f"# gdrepro reproduction report: scale `{scale}`",
        "",
        f"Produced at commit `{_short(git_commit())}` by `{command}` with config `{config}`, in the "
        f"environment pinned by {environment_lock()}. Never edited by hand.",
        "",
        "Each row counts the paper's claims that were run at this scale, judged at the paper's own "
        "recipe apart from those judged at a reduced budget (a ❌ there reads \"not reproduced at 1/N of "
        "the paper's budget\"); stress tests are ours, beyond the regime the paper states, and "
        "implementation checks test our code: neither is counted as a reproduction. " + C.LEGEND,
        "",
        markdown_table(summary),
        "",
        *sections,
    ]
    path = results / layout.REPORT
    path.write_text("\n".join(lines))
    return path
