"""The paper registry: slug -> ``gdrepro.papers.<slug>.experiment.PAPER``.

Adding a paper: create ``papers/<slug>/`` with method.py, experiment.py (``PAPER``) and
claims.yaml, add the slug here and a ``workflow/rules/<slug>.smk``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from gdrepro.errors import GdreproError

if TYPE_CHECKING:  # numpy loads with a paper, not with the registry (gdrepro.kernels pins it first)
    from gdrepro.paper import Paper

SLUGS: tuple[str, ...] = (
    "quantile", "localpl", "dptrunc", "psgla", "ko", "aacbr", "amppo", "traffic", "grokking", "clu",
)


def get(slug: str) -> Paper:
    """The registered paper ``slug``; a one-line error for an unknown one."""
    if slug not in SLUGS:
        raise GdreproError(f"unknown paper {slug!r} (known: {', '.join(SLUGS)})")
    return import_module(f"gdrepro.papers.{slug}.experiment").PAPER


def claims_file(slug: str) -> Path:
    """Path of the paper's claims.yaml."""
    return Path(str(files(f"gdrepro.papers.{slug}") / "claims.yaml"))
