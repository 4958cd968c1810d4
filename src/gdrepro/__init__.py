"""gdrepro: one reproducibility pipeline for ten papers about gradient-based learning.

Importing the package pins the CPU kernels of numpy, scipy and torch (gdrepro.kernels) before
either library loads, so every job and test computes the same numbers on any x86-64 CPU.
"""

from gdrepro import kernels as _kernels

_kernels.pin()

__version__ = "0.1.0"

SCALES = ("smoke", "default", "paper")
"""The three scales: CI seconds, a 2-core laptop, the paper's own settings."""
