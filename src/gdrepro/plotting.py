"""One figure style for every paper; figures are saved as PNG (for results/) and PDF (for papers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "figure.figsize": (5.0, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": 160,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.4,
    "axes.prop_cycle": matplotlib.cycler(
        color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    ),
    "svg.hashsalt": "gdrepro",
}
PAPER_COLOR = "#555555"
"""Colour of the paper's reference numbers drawn on our figures."""


@contextmanager
def figure(nrows: int = 1, ncols: int = 1, **kwargs) -> Iterator[tuple[plt.Figure, object]]:
    """A figure in the house style; closed on exit."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def save(fig: plt.Figure, directory: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``name.png`` and ``name.pdf`` with reproducible metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.pdf"]
    with plt.rc_context(STYLE):
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return paths


def reference_band(ax, low: float, high: float, label: str) -> None:
    """Shade a claim's acceptance interval (the paper's or our stated range)."""
    ax.axhspan(low, high, color=PAPER_COLOR, alpha=0.12, lw=0, label=label)


def reference_line(ax, y: float, label: str) -> None:
    """A horizontal reference (nominal level, the paper's reported number)."""
    ax.axhline(y, color=PAPER_COLOR, ls="--", lw=1, label=label)
