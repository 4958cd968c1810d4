"""gdrepro: one reproducibility pipeline for ten papers about gradient-based learning.

Importing the package pins the CPU kernels of numpy, scipy and torch (gdrepro.kernels) before
either library loads, so tests and smoke jobs compute the same numbers on any x86-64 CPU; the
command line re-pins for the scale it runs (native kernels at default and paper scale).
"""

from gdrepro import kernels as _kernels

_kernels.pin()

from gdrepro.layout import SCALES  # noqa: E402  (after the pin; layout is pure path arithmetic)

__version__ = "0.1.0"
__all__ = ["SCALES", "__version__"]
