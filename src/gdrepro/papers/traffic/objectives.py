"""The multi-objective bookkeeping of the traffic experiments, in numpy (no torch).

What one model of a stack is trained with (:class:`Config`: aggregator, LS weights, patience) and
how finished runs are measured (relative L2 error, Pareto non-dominance). ``method.py`` trains on
these; the prepare, evaluate and figures stages use them without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Config:
    """One training configuration in a stack: aggregator, LS weights, early-stopping patience."""

    method: str
    weights: tuple[float, ...] = ()
    patience: int = 150
    label: str = ""


def relative_l2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """||pred - truth|| / ||truth|| along the last axis."""
    return np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Mask of the Pareto-optimal rows of ``points`` (n, k) (minimisation; ties are kept)."""
    p = np.asarray(points)
    le = (p[:, None, :] <= p[None, :, :]).all(-1)
    lt = (p[:, None, :] < p[None, :, :]).any(-1)
    dominates = le & lt  # dominates[i, j]: i dominates j
    return ~dominates.any(0)
