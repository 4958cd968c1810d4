"""Shared fixtures: a throw-away copy of the repository for end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import gdrepro  # noqa: F401  (pins the CPU kernels before any test module loads numpy or torch)

ROOT = Path(__file__).resolve().parents[1]


def copy_checkout(dest: Path) -> Path:
    """Copy what a fresh clone would have (tracked + untracked-not-ignored files) to ``dest``.

    ``data/`` is DVC's and git-ignored, so it is absent, exactly as after ``git clone``.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


@pytest.fixture(scope="session")
def checkout(tmp_path_factory) -> Path:
    """A fresh-clone-like copy of the repository, shared by the slow end-to-end tests."""
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.fixture
def no_tracking(monkeypatch):
    monkeypatch.setenv("GDREPRO_TRACKING", "off")


SMOKE_PAPERS = pytest.StashKey[list]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Note which papers the selected pipeline tests are about (after -k / -m deselection).

    ``pytest -k clu`` selects clu's parametrised pipeline tests, and the smoke run then builds
    clu alone (``papers=[clu]``); with no paper-specific pipeline test selected, all ten run.
    """
    from gdrepro import papers

    chosen = {item.callspec.params["paper"] for item in items
              if item.get_closest_marker("pipeline") and hasattr(item, "callspec")
              and "paper" in item.callspec.params}
    config.stash[SMOKE_PAPERS] = [s for s in papers.SLUGS if s in chosen] or list(papers.SLUGS)


@pytest.fixture(scope="session")
def smoke_papers(request) -> list[str]:
    """The papers the smoke pipeline test builds (see pytest_collection_modifyitems)."""
    return request.config.stash[SMOKE_PAPERS]
