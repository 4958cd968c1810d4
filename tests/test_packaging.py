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


def _conda(path) -> dict[str, str]:
    listed = yaml.safe_load(path.read_text())["dependencies"]
    from_pip = [r for d in listed if isinstance(d, dict) for r in d.get("pip", [])]
    return dict(_split(d) for d in listed + from_pip if isinstance(d, str) and not d.startswith(("python", "pip")))


def test_environment_files_mirror_pyproject():
    """environment.yml = runtime + test (development); the rules' conda env = runtime only."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(_split(r) for r in project["dependencies"])
    test = dict(_split(r) for r in project["optional-dependencies"]["test"])
    assert _conda(ROOT / "environment.yml") == runtime | test
    assert _conda(ROOT / "workflow" / "envs" / "gdrepro.yaml") == runtime


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


def test_the_lock_pins_every_dependency_within_pyprojects_ranges():
    """requirements-lock.txt (the environment results are made with) satisfies pyproject.toml."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {canonicalize_name(m.group(1)): m.group(2) for m in
              re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / "requirements-lock.txt").read_text(), re.M)}
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in the lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])
    assert pinned["torch"].endswith("+cpu")  # the CPU build, not the multi-GB CUDA one
