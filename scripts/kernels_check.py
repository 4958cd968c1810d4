"""Do the portable kernels give the same smoke numbers on another CPU? Measure it.

    apt-get install qemu-user            # once (Debian); emulates a CPU without AVX-512
    python scripts/kernels_check.py clu grokking traffic aacbr

For each paper, the whole smoke chain (prepare, every seed, evaluate) runs three times, one
thread each, tracking off:

1. here, with the portable kernels (gdrepro.kernels, the default);
2. under ``qemu-x86_64 -cpu EPYC-Rome`` -- an AMD processor with AVX2 and no AVX-512, so MKL,
   OpenBLAS, numpy and torch all see another vendor and another vector width -- portable kernels;
3. here, with ``GDREPRO_KERNELS=native`` (every library picks its fastest kernels).

It prints, per paper, how many referenced metrics differ between 1 and 2 (the claim: none) and
between 1 and 3 (what pinning prevents). Emulation is slow (about 10x): a paper takes minutes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMULATED_CPU = "EPYC-Rome"


def smoke_metrics(paper: str, out: Path, kernels: str, emulate: bool) -> dict:
    env = {**os.environ, "GDREPRO_KERNELS": kernels, "GDREPRO_TRACKING": "off", "GDREPRO_THREADS": "1"}
    command = [sys.executable, "-m", "gdrepro.cli", paper, "evaluate", "--scale", "smoke", "--out", str(out)]
    if emulate:
        command = ["qemu-x86_64", "-cpu", EMULATED_CPU, *command]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    produced = json.loads((out / "metrics.json").read_text())
    return {"metrics": {k: v["value"] for k, v in produced["metrics"].items()},
            "kernels": produced.get("environment", {}).get("kernels", {})}


def differing(a: dict, b: dict, names) -> list[str]:
    def same(x, y):
        return x == y or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-12, abs_tol=0))

    return [n for n in names if not same(a.get(n), b.get(n))]


def main(papers: list[str]) -> int:
    if shutil.which("qemu-x86_64") is None:
        sys.exit("qemu-x86_64 not found: apt-get install qemu-user")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for paper in papers:
            reference = json.loads((ROOT / "tests" / "regression" / "smoke" / f"{paper}.json").read_text())
            names = list(reference["metrics"])
            here = smoke_metrics(paper, Path(tmp) / paper / "portable", "portable", emulate=False)
            amd = smoke_metrics(paper, Path(tmp) / paper / "emulated", "portable", emulate=True)
            native = smoke_metrics(paper, Path(tmp) / paper / "native", "native", emulate=False)
            across_cpus = differing(here["metrics"], amd["metrics"], names)
            across_kernels = differing(here["metrics"], native["metrics"], names)
            failed |= bool(across_cpus)
            print(f"{paper}: {len(names)} referenced metrics; portable here vs portable on emulated "
                  f"{EMULATED_CPU}: {len(across_cpus)} differ {across_cpus[:5]}; portable vs native "
                  f"kernels here: {len(across_kernels)} differ", flush=True)
            print(f"  kernels here: {json.dumps(here['kernels'])}\n  kernels emulated: {json.dumps(amd['kernels'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["clu", "grokking", "traffic", "aacbr"]))
