"""Where everything lives: the one results layout the CLI, the Snakemake rules and the report share.

Pure path arithmetic (no numpy, no paper imports), so the Snakefile and ``gdrepro --help`` load it
for free. A paper's folder is ``results/<scale>/<paper>/``:

- ``prepared.json``                     prepare: the resolved design (settings, data, truth)
- ``runs/seed<k>.npz``                  the per-seed stage (simulate / train / sample)
- ``checkpoints/seed<k>.pt``            a long per-seed stage's resume point (git ignores it)
- ``metrics.json``                      evaluate
- ``tables/<name>.csv|.md|.tex``        evaluate
- ``figures/<name>.png|.pdf``           figures
- ``claims.md|.json``, ``tables/claims.csv|.html|.md|.tex``   claims
- ``logs/<stage>[_seed<k>].log``, ``benchmarks/...tsv``   what Snakemake records per job
"""

from __future__ import annotations

SCALES = ("smoke", "default", "paper")
"""The three scales: CI seconds, a 2-core laptop, the paper's own settings."""

RESULTS = "results"
PREPARED = "prepared.json"
METRICS = "metrics.json"
CLAIMS_MD = "claims.md"
INVOCATION = ".snakemake/gdrepro_invocation.json"  # the last pipeline command and config (Snakefile onstart)
CLAIMS_JSON = "claims.json"
CLAIMS_TABLE = "tables/claims.csv"
CLAIMS_HTML = "tables/claims.html"
REPORT = "REPORT.md"
SUMMARY = "summary.csv"
DATA_RECORD = "data.json"


def scale_dir(scale: str, root: str = RESULTS) -> str:
    return f"{root}/{scale}"


def paper_dir(scale: str, paper: str, root: str = RESULTS) -> str:
    return f"{root}/{scale}/{paper}"


def run_file(seed: int | str) -> str:
    return f"runs/seed{seed}.npz"


def checkpoint_file(seed: int | str) -> str:
    return f"checkpoints/seed{seed}.pt"


def figure_file(name: str, ext: str = "png") -> str:
    return f"figures/{name}.{ext}"


def table_file(name: str, ext: str = "csv") -> str:
    return f"tables/{name}.{ext}"


def job_file(kind: str, stage: str, seed: int | str | None = None) -> str:
    """A job's ``logs/<stage>.log`` or ``benchmarks/<stage>.tsv`` (``_seed<k>`` for per-seed jobs)."""
    ext = {"logs": "log", "benchmarks": "tsv"}[kind]
    return f"{kind}/{stage}{'' if seed is None else f'_seed{seed}'}.{ext}"
