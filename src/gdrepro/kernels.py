"""Pinned CPU kernels: the same numbers on every x86-64 CPU, Intel or AMD, AVX2 or AVX-512.

numpy, scipy and torch pick their inner loops from the CPU they find: AVX-512 reductions sum
16 lanes where AVX2 sums 8, MKL and OpenBLAS choose blocking and kernels per vendor and core,
so the same code gives different last bits on two machines, and chaotic training amplifies
them. In ``portable`` mode the house caps every library at one choice that every x86-64 machine
runs alike:

==========================  =============  ===============================================
variable                    value          what it fixes
==========================  =============  ===============================================
ATEN_CPU_CAPABILITY         avx2           torch's own vectorised kernels (8-lane sums)
ONEDNN_MAX_CPU_ISA          AVX2           torch's convolutions (oneDNN JIT kernels)
MKL_CBWR                    COMPATIBLE     torch's matmul and vector maths (MKL's code
                                           branch that gives the same bits on Intel and
                                           AMD; its AVX2 branch still differs by vendor)
OPENBLAS_CORETYPE           Haswell        numpy's and scipy's BLAS/LAPACK kernels
NPY_DISABLE_CPU_FEATURES    AVX-512 sets   numpy's own SIMD loops (exp, log, sums)
==========================  =============  ===============================================

Measured, not assumed: under these settings torch matmul, reductions, softmax, convolution and
a linear layer's gradient, and numpy matmul, exp, log, sin and SVD give the same bits on an
AVX-512 Intel machine and under ``qemu-x86_64 -cpu EPYC-Rome`` (an AMD CPU without AVX-512) and
``-cpu Haswell`` (tests/regression/kernel_fingerprint.json, re-checked by tests/test_kernels.py
on whatever CPU runs the tests), and so do localpl's and dptrunc's smoke chains
(``scripts/kernels_check.py``). One torch op escapes the pin: ``torch.sqrt`` (and ``** 0.5``)
runs through MKL's vector maths, which is not correctly rounded and gave other bits under both
emulated CPUs (grokking's smoke chain, through Adam's denominator, moved in 11 of 41 metrics).
Paper code therefore takes :func:`gdrepro.nn.portable_sqrt` and fused Adam/AdamW (exact IEEE
square roots), and ``tests/test_kernels.py`` keeps ``torch.sqrt`` out of the papers' torch code.
torch also turns ``x ** p`` into ``torch.sqrt`` when ``p`` is 0.5 at run time (clu's adaptive
weights, which moved 14 smoke metrics on a real AMD EPYC with AVX-512): such powers take
:func:`gdrepro.nn.portable_pow`.
The price is speed: MKL's compatible branch
makes torch training up to 3x slower (4x and more for aacbr's large matmuls). So the mode
follows the scale unless ``GDREPRO_KERNELS`` names one:

- ``portable`` at smoke scale and outside a job (tests, library use): CI's exact regression
  references hold on any x86-64 machine;
- ``native`` at default and paper scale: every library picks its fastest kernels; the numbers
  then depend on the CPU in their last bits, and ``metrics.json`` says which kernels made them.
  ``GDREPRO_KERNELS=portable snakemake ...`` makes them CPU-independent at that price;
- ``portable`` at the scales a paper names in ``Paper.portable_kernels``: where its training is
  chaotic enough that last bits change whole seeds (aacbr at default scale).

GPUs are not affected.

The variables are read when a library loads or first dispatches, so :func:`pin` must run
before numpy or torch is imported: ``import gdrepro`` pins for no scale (portable), and the
``gdrepro`` command line pins again for the ``--scale`` it runs, before any paper loads numpy.
What each library actually chose is :func:`effective`, recorded in every ``metrics.json``
(``environment.kernels``).
"""

from __future__ import annotations

import os
import platform
import sys

from gdrepro.errors import GdreproError

MODES = ("portable", "native")

PINNED = "GDREPRO_KERNELS_PINNED"
"""Set by :func:`pin` to the mode it chose; child processes inherit it (and know the settings
in force were gdrepro's, not the user's)."""

PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same cap under oneDNN's older name
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",
    # numpy >= 2.4 dispatches on X86_V4 / AVX512_ICL / AVX512_SPR, older numpy on the
    # AVX512_* names; numpy ignores names it does not dispatch on, so both sets are listed.
    "NPY_DISABLE_CPU_FEATURES": " ".join((
        "X86_V4", "AVX512_ICL", "AVX512_SPR",
        "AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL",
    )),
}
"""The settings of ``portable`` mode (x86-64 only; other CPUs run ``native``)."""


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def mode(scale: str | None = None, portable_scales: tuple[str, ...] = ()) -> str:
    """``GDREPRO_KERNELS`` if set, else by scale: portable at smoke (and outside a job) and at the
    paper's ``portable_scales``, native otherwise. Always native on CPUs other than x86-64."""
    chosen = os.environ.get("GDREPRO_KERNELS", "").strip().lower()
    if chosen and chosen not in MODES:
        raise GdreproError(f"GDREPRO_KERNELS={chosen!r}: expected one of {', '.join(MODES)}")
    if not is_x86_64():
        return "native"
    return chosen or ("portable" if scale in (None, "smoke", *portable_scales) else "native")


def pin(scale: str | None = None, portable_scales: tuple[str, ...] = ()) -> str:
    """Set the kernel choice for this process and its children; returns the mode.

    Portable mode overrides any value already set (a stray ``MKL_CBWR=AUTO`` in a user's shell
    would otherwise change the numbers silently); native mode removes gdrepro's own earlier
    settings (an inherited pin), never the user's. Too late for a library already imported:
    :func:`effective` then shows what it chose. A bad ``GDREPRO_KERNELS`` is left for the command
    line to report (``import gdrepro`` never fails on it).
    """
    try:
        chosen = mode(scale, portable_scales)
    except GdreproError:
        return "invalid"
    if chosen == "portable":
        os.environ.update(PORTABLE_ENV)
    elif os.environ.get(PINNED) == "portable":
        for name in PORTABLE_ENV:
            os.environ.pop(name, None)
    os.environ[PINNED] = chosen
    return chosen


def effective() -> dict[str, object]:
    """The kernel choice in force: the mode, its variables, and what the loaded libraries chose.

    Imports numpy (and threadpoolctl); reports torch's choice only where torch is loaded.
    In portable mode the record is the same on every x86-64 machine.
    """
    from importlib.metadata import PackageNotFoundError, version

    record: dict[str, object] = {
        "mode": os.environ.get(PINNED, "native"),
        "machine": platform.machine(),
        "settings": {name: os.environ[name] for name in PORTABLE_ENV if name in os.environ},
    }
    for package in ("numpy", "scipy", "torch"):
        try:
            record[package] = version(package)
        except PackageNotFoundError:
            record[package] = None
    record["numpy_simd"] = _numpy_dispatch()
    record["openblas_core"] = _openblas_cores()
    torch = sys.modules.get("torch")
    if torch is not None:
        record["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return record


def _numpy_dispatch() -> list[str]:
    """numpy's enabled SIMD dispatch targets (the AVX-512 ones are off in portable mode)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def _openblas_cores() -> list[str]:
    """The kernel family each loaded OpenBLAS chose (threadpoolctl's ``architecture``)."""
    from threadpoolctl import threadpool_info

    return sorted({str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"})
