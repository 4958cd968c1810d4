"""pyproject.toml and environment.yml list the same dependencies with the same ranges."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

import pytest
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


def _older_python() -> str | None:
    """An interpreter older than 3.11 on this machine (pyenv keeps several), if any."""
    import glob
    import shutil

    candidates = [shutil.which(f"python3.{minor}") for minor in range(6, 11)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 11))"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":  # a pyenv shim may run another
            return candidate
    return None


def test_ci_stops_on_an_old_python_with_one_line(tmp_path):
    """.ci/run refuses Python < 3.11 before installing anything, in one line on stderr."""
    old = _older_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(old)
    (tmp_path / "bin" / "pip").write_text("#!/bin/sh\necho pip must not run >&2; exit 9\n")
    (tmp_path / "bin" / "pip").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("gdrepro CI: needs Python >= 3.11, found 3.")
