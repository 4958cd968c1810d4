"""gdrepro: one reproducibility pipeline for ten papers about gradient-based learning."""

__version__ = "0.1.0"

SCALES = ("smoke", "default", "paper")
"""The three scales: CI seconds, a 2-core laptop, the paper's own settings."""
