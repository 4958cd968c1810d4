"""gdrepro: one reproducibility pipeline for ten papers about gradient-based learning.

Importing the package pins the CPU kernels of numpy, scipy and torch (gdrepro.kernels) before
either library loads, so tests and smoke jobs compute the same numbers on any x86-64 CPU; the
command line re-pins for the scale it runs (native kernels at default and paper scale).
"""

from gdrepro import kernels as _kernels

_kernels.pin()

__version__ = "0.1.0"

SCALES = ("smoke", "default", "paper")
"""The three scales: CI seconds, a 2-core laptop, the paper's own settings."""
