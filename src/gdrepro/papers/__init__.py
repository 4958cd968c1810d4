"""The paper registry: slug -> the ``PAPER`` declared in ``gdrepro/papers/<slug>/__init__.py``.

Declarations are light (no numpy, no torch), so listing papers costs milliseconds; a paper's
code loads when one of its stages runs. Adding a paper: a folder with ``__init__.py``
(the declaration), ``method.py``, ``experiment.py``, ``figures.py`` and ``claims.yaml``, and its
slug below.
"""

from __future__ import annotations

from importlib import import_module
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from gdrepro.errors import GdreproError

if TYPE_CHECKING:
    from gdrepro.paper import Paper

SLUGS: tuple[str, ...] = (
    "quantile", "localpl", "dptrunc", "psgla", "ko", "aacbr", "amppo", "traffic", "grokking", "clu",
)


def get(slug: str) -> Paper:
    """The registered paper ``slug``; a one-line error for an unknown one."""
    if slug not in SLUGS:
        raise GdreproError(f"unknown paper {slug!r} (known: {', '.join(SLUGS)})")
    return import_module(f"gdrepro.papers.{slug}").PAPER


def claims_file(slug: str) -> Path:
    """Path of the paper's claims.yaml."""
    return Path(str(files(f"gdrepro.papers.{slug}") / "claims.yaml"))


def dataset_builders(slugs: tuple[str, ...] = SLUGS) -> dict:
    """``path under data/ -> builder`` for every registered paper's generated datasets."""
    found: dict = {}
    for slug in slugs:
        for relpath, builder in get(slug).dataset_builders().items():
            if relpath in found:
                raise ValueError(f"dataset {relpath} is registered twice")
            found[relpath] = builder
    return found
