"""Compare a smoke run's metrics.json with its committed reference (tests/regression/smoke/).

A reference entry is ``{"value", "rtol", "atol"}``: exact up to float formatting by default,
with a ``reason`` wherever a metric's tolerance is wider. ``unreferenced`` names metrics that
cannot be compared at all (wall-clock ratios) and says why. ``kernels`` is the CPU kernel
choice the reference was made with (gdrepro.kernels); a run under another choice is expected
to move, and the failure says so.
"""

from __future__ import annotations

import math

KERNEL_KEYS = ("mode", "settings", "numpy_simd", "openblas_core", "torch_cpu_capability", "numpy", "scipy", "torch")
"""The parts of a kernel record that decide the numbers (what the two runs' records must share)."""


def kernel_difference(reference: dict, produced: dict) -> dict:
    """``{key: (reference's, this run's)}`` for every deciding part that differs."""
    return {k: (reference.get(k), produced.get(k)) for k in KERNEL_KEYS
            if k in reference and k in produced and reference[k] != produced[k]}


def moved_metrics(reference: dict, metrics: dict) -> dict:
    """``{name: (reference value, this run's value)}`` for every referenced metric out of tolerance."""
    moved = {}
    for name, ref in reference["metrics"].items():
        value = metrics.get(name, {}).get("value")
        if value is None or not math.isclose(value, ref["value"], rel_tol=ref["rtol"], abs_tol=ref["atol"]):
            moved[name] = (ref["value"], value)
    return moved


def compare_to_reference(reference: dict, produced: dict) -> str | None:
    """None if the run matches its reference, else a message that says what moved and why it may have."""
    moved = moved_metrics(reference, produced["metrics"])
    if not moved:
        return None
    shown = dict(list(moved.items())[:12])
    message = (f"{len(moved)} of {len(reference['metrics'])} smoke metrics of {reference['paper']} moved "
               f"(reference, now): {shown}")
    kernels = kernel_difference(reference.get("kernels", {}), produced.get("environment", {}).get("kernels", {}))
    if kernels:
        message += (f"\nthis run's kernel choice differs from the reference's (reference, now): {kernels}; "
                    "the references hold under GDREPRO_KERNELS=portable with the pinned library versions")
    return message + "\nA deliberate change: rerun the smoke pipeline, then `python -m tests.regression.update`."
