"""Process-wide runtime set-up shared by every stage: threads, seeds, devices, progress."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch


def pin_threads(n: int | None = None) -> int:
    """Use ``n`` BLAS/torch threads (default: ``GDREPRO_THREADS`` or 1).

    On two cores, two threads per job next to a second job made small-matrix torch work 5-20x
    slower; Snakemake runs jobs side by side instead. Call before numpy/torch do heavy work.
    """
    n = int(n or os.environ.get("GDREPRO_THREADS", 1))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def seed_sequence(*key: int | str) -> np.random.SeedSequence:
    """A SeedSequence derived from a key such as ``(paper, experiment, seed)``.

    Strings are hashed stably (not with Python's salted ``hash``), so the same key gives the
    same stream on every machine and every run.
    """
    import zlib

    import numpy as np

    entropy = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.SeedSequence(entropy)


def rng(*key: int | str) -> np.random.Generator:
    """A numpy Generator for ``key`` (see :func:`seed_sequence`)."""
    import numpy as np

    return np.random.default_rng(seed_sequence(*key))


def torch_generator(*key: int | str, device: str = "cpu") -> torch.Generator:
    """A torch Generator seeded from the same key scheme as :func:`rng`."""
    import torch

    seed = int(seed_sequence(*key).generate_state(1, dtype="uint64")[0] >> 1)
    return torch.Generator(device=device).manual_seed(seed)


def device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"`` (``GDREPRO_DEVICE`` overrides).

    On CUDA, TF32 matmuls and convolutions are switched off, so GPU runs give the CPU's
    numbers up to float noise (tests/test_cuda.py).
    """
    forced = os.environ.get("GDREPRO_DEVICE")
    try:
        import torch
    except ImportError:
        return forced or "cpu"
    name = forced or ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return name


def log(message: str) -> None:
    """Progress output for long runs (stderr, flushed, with a wall-clock stamp)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def timed(label: str) -> Iterator[dict]:
    """Log the start and wall time of a block; the dict gets ``seconds`` on exit."""
    info: dict = {}
    log(f"{label} ...")
    start = time.perf_counter()
    try:
        yield info
    finally:
        info["seconds"] = time.perf_counter() - start
        log(f"{label} done in {info['seconds']:.1f} s")


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Flush denormal floats to zero (x86 FTZ/DAZ) inside the block, torch's default (off) after.

    A model trained past saturation (sigmoids at a low temperature, softmax probabilities and Adam
    moments after memorisation) leaves operands below 1e-38 (float32), on which every CPU product
    runs several times slower. Flushing them changes no value above that.
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def git_commit() -> str:
    """The current commit, ``-dirty`` when code differs from it, or ``unknown``.

    Changes under ``results/`` do not count: a run rewrites those files itself.
    """
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")
