"""The roll-up ``results/<scale>/REPORT.md`` and ``summary.{csv,tex,md}`` over every paper's claims."""

from __future__ import annotations

import csv
from pathlib import Path

from gdrepro import claims as C
from gdrepro import papers
from gdrepro.runtime import git_commit
from gdrepro.tables import markdown_table, write_table


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


def write_report(scale: str, results: Path, slugs: list[str]) -> Path:
    """Roll the papers' claims up into ``results/<scale>/REPORT.md`` and ``summary.{csv,tex,md}``."""
    summary, sections = [], []
    for slug in slugs:
        paper = papers.get(slug)
        spec = C.load_claims(papers.claims_file(slug))
        judged = C.read_judged(results / slug / "claims.json")["claims"]
        paper_counts, stress_counts = C.tally(judged, "paper"), C.tally(judged, "stress")
        seconds = wall_time(results / slug)
        summary.append(
            {
                "paper": slug,
                "title": paper.title,
                "reproduced": f"{paper_counts[C.REPRODUCED]}/{sum(paper_counts.values())}",
                "within tolerance": paper_counts[C.WITHIN],
                "not reproduced": paper_counts[C.FAILED],
                "stress tests passed": f"{stress_counts[C.REPRODUCED] + stress_counts[C.WITHIN]}"
                f"/{sum(stress_counts.values())}",
                "wall time": _duration(seconds),
            }
        )
        figures = [f"![{name}]({slug}/figures/{name}.png)" for name in paper.figure_names]
        deviations = [f"- {d}" for d in spec.get("deviations", [])] or ["- none listed"]
        sections += [
            f"## {slug}: {paper.title}",
            "",
            f"{paper.citation}. Details: [{slug}/claims.md]({slug}/claims.md), "
            f"metrics: [{slug}/metrics.json]({slug}/metrics.json).",
            "",
            markdown_table(C.rows(judged), C.TABLE_COLUMNS),
            "",
            *[f"- **{c['id']}**: {c['note']}" for c in judged if c.get("note")],
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
    write_table(results / "summary", summary, caption=f"gdrepro reproduction summary, scale {scale}")
    lines = [
        f"# gdrepro reproduction report: scale `{scale}`",
        "",
        f"Produced by `snakemake --cores all --config scale={scale}` at commit `{_short(git_commit())}`. "
        "Never edited by hand. Verdicts: ✅ reproduced, ≈ within tolerance, ❌ not reproduced, "
        "— not applicable at this scale. \"reproduced\" counts the paper's claims that apply at this "
        "scale; stress tests are ours, beyond the regime the paper states.",
        "",
        markdown_table(summary),
        "",
        *sections,
    ]
    path = results / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
