"""Tables as an ML paper wants them: Markdown, CSV and LaTeX (booktabs) from the same rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def fmt(x: float | None) -> str:
    """Compact number: 3 significant digits, no exponent for ordinary magnitudes."""
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}" if abs(x) >= 100 else f"{x:.3g}"


def _cell(value) -> str:
    if isinstance(value, float):
        return fmt(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts sharing keys)."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
                  "`": "", "±": r"$\pm$", "≈": r"$\approx$", "✅": r"\checkmark", "❌": r"$\times$",
                  "—": "--", "τ": r"$\tau$", "❔": "?"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def latex_table(rows: list[dict], caption: str) -> str:
    """A booktabs ``table`` environment that drops into a paper (needs \\usepackage{booktabs,amssymb})."""
    columns = list(rows[0])
    body = [" & ".join(latex_escape(_cell(r[c])) for c in columns) + r" \\" for r in rows]
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{latex_escape(caption)}}}",
            r"\begin{tabular}{" + "l" * len(columns) + "}",
            r"\toprule",
            " & ".join(latex_escape(c) for c in columns) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )


def html_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """An HTML ``<table>`` of ``rows`` (text escaped; Markdown backticks become ``<code>``)."""
    import html
    import re

    columns = columns or list(rows[0])

    def cell(value) -> str:
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(_cell(value)))

    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = ["<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in columns) + "</tr>" for r in rows]
    return "<table>\n" + "\n".join([head, *body]) + "\n</table>"


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """A CSV file with ``columns``; numbers stay numbers (full precision), None is empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: "" if r.get(c) is None else r[c] for c in columns} for r in rows)
    path.write_text(buffer.getvalue())


def write_table(stem: Path, rows: list[dict], caption: str, csv_too: bool = True) -> None:
    """Write ``stem.csv`` (unless ``csv_too`` is False), ``stem.tex`` and ``stem.md``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".tex").write_text(latex_table(rows, caption))
    stem.with_suffix(".md").write_text(markdown_table(rows) + "\n")
    if not csv_too:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    stem.with_suffix(".csv").write_text(buffer.getvalue())
