"""On a CUDA machine, every paper's smoke metrics are the same on the GPU as on the CPU, up to
float noise (scripts/gpu_check.sh runs this). Skipped where torch sees no GPU."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest

from gdrepro import papers
from tests.conftest import ROOT

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _smoke_metrics(paper: str, device: str, out) -> dict:
    env = {**os.environ, "GDREPRO_DEVICE": device, "GDREPRO_TRACKING": "off"}
    result = subprocess.run(["gdrepro", paper, "evaluate", "--scale", "smoke", "--out", str(out / paper)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / paper / "metrics.json").read_text())["metrics"]


@pytest.mark.parametrize("paper", papers.SLUGS)
def test_cuda_gives_the_cpu_smoke_metrics(paper, tmp_path):
    reference = json.loads((ROOT / "tests" / "regression" / "smoke" / f"{paper}.json").read_text())
    cpu, cuda = _smoke_metrics(paper, "cpu", tmp_path / "cpu"), _smoke_metrics(paper, "cuda", tmp_path / "cuda")
    machine_dependent = set(reference.get("unreferenced", {}))  # wall-clock ratios
    moved = {
        name: (entry["value"], cuda[name]["value"])
        for name, entry in cpu.items()
        if name not in machine_dependent and entry["value"] is not None
        and not math.isclose(entry["value"], cuda[name]["value"], rel_tol=1e-2, abs_tol=2e-2)
    }
    assert not moved, f"CPU vs CUDA (beyond float noise): {moved}"
