"""Do the portable kernels give the same smoke numbers on another CPU? Measure it.

    apt-get install qemu-user            # once (Debian); emulates a CPU without AVX-512
    python scripts/kernels_check.py localpl dptrunc          # seed 0 of each smoke chain
    python scripts/kernels_check.py grokking --seeds 0 1     # torch papers: slow under emulation

For each paper, the smoke chain (prepare, the seeds given, evaluate) runs three times, one
thread each, tracking off:

1. here, with the portable kernels (gdrepro.kernels, the smoke scale's choice);
2. under ``qemu-x86_64 -cpu EPYC-Rome`` -- an AMD processor with AVX2 and no AVX-512, so MKL,
   OpenBLAS, numpy and torch all see another vendor and another vector width -- portable kernels;
3. here, with ``GDREPRO_KERNELS=native`` (every library picks its fastest kernels).

It prints, per paper, how many metrics differ in any bit between 1 and 2 (the claim: none) and
between 1 and 3 (what pinning prevents). Emulation is slow, above all for torch training: one
seed of a torch paper takes tens of minutes (grokking: over 40 CPU-minutes). localpl and dptrunc
take a minute and match in every bit; Debian's qemu 7.2 crashed (SIGSEGV) in psgla's evaluate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMULATED_CPU = "EPYC-Rome"


def smoke_metrics(paper: str, seeds: list[str], out: Path, kernels: str, emulate: bool) -> dict:
    env = {**os.environ, "GDREPRO_KERNELS": kernels, "GDREPRO_TRACKING": "off", "GDREPRO_THREADS": "1"}
    command = [sys.executable, "-m", "gdrepro.cli", paper, "evaluate", "--scale", "smoke", "--out", str(out),
               "--seeds", *seeds]
    if emulate:
        command = ["qemu-x86_64", "-cpu", EMULATED_CPU, *command]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    produced = json.loads((out / "metrics.json").read_text())
    return {"metrics": {k: v["value"] for k, v in produced["metrics"].items()},
            "kernels": produced.get("environment", {}).get("kernels", {})}


def differing(a: dict, b: dict) -> list[str]:
    """Metrics whose values differ in any bit (both null counts as equal)."""
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def main(papers: list[str], seeds: list[str]) -> int:
    if shutil.which("qemu-x86_64") is None:
        sys.exit("qemu-x86_64 not found: apt-get install qemu-user")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for paper in papers:
            here = smoke_metrics(paper, seeds, Path(tmp) / paper / "portable", "portable", emulate=False)
            native = smoke_metrics(paper, seeds, Path(tmp) / paper / "native", "native", emulate=False)
            amd = smoke_metrics(paper, seeds, Path(tmp) / paper / "emulated", "portable", emulate=True)
            across_cpus = differing(here["metrics"], amd["metrics"])
            across_kernels = differing(here["metrics"], native["metrics"])
            failed |= bool(across_cpus)
            print(f"{paper} (seeds {' '.join(seeds)}): {len(here['metrics'])} metrics; portable here vs "
                  f"portable on emulated {EMULATED_CPU}: {len(across_cpus)} differ {across_cpus[:5]}; portable vs native "
                  f"kernels here: {len(across_kernels)} differ", flush=True)
            print(f"  kernel records alike: {here['kernels'] == amd['kernels']}; "
                  f"here: {json.dumps(here['kernels'].get('settings', {}).get('MKL_CBWR'))} MKL branch, "
                  f"numpy SIMD {here['kernels'].get('numpy_simd')}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("papers", nargs="*", default=["localpl"])
    parser.add_argument("--seeds", nargs="+", default=["0"])
    args = parser.parse_args()
    sys.exit(main(args.papers, args.seeds))
