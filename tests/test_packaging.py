"""pyproject.toml and environment.yml list the same dependencies with the same ranges."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()), spec.replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    listed = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    from_pip = [r for d in listed if isinstance(d, dict) for r in d.get("pip", [])]
    conda = dict(_split(d) for d in listed + from_pip
                 if isinstance(d, str) and not d.startswith(("python", "pip")))
    assert conda == pip
