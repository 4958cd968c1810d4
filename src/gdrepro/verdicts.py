"""From per-seed numbers to a verdict: a 95% interval over seeds set against a claim's region.

A check reads ``x op value`` with a tolerance fixed before the run. Its *region* is the set of
``x`` that satisfy it; the *tolerance region* moves the boundary by the tolerance. A statistical
check estimates ``x`` by the mean over seeds with a two-sided 95% Student-t interval (paired per
seed when it compares two quantities measured on the same seeds: the interval of the per-seed
differences or ratios; unpaired: Welch's interval for a difference of means). Then

- ✅ reproduced: the interval lies inside the region;
- ≈ within tolerance: it lies inside the tolerance region but not inside the region;
- ❌ not reproduced: it lies wholly outside the tolerance region;
- ❔ inconclusive: it straddles the tolerance region's boundary, or the estimate is at or below
  the quantity's noise floor, or fewer than two seeds are finite.

A ``fixed`` check (a deterministic quantity, or a statistic that already pools the runs, like a
p-value) judges its single value the same way, as an interval of width zero.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

REPRODUCED, WITHIN, FAILED, INCONCLUSIVE, NOT_APPLICABLE = "✅", "≈", "❌", "❔", "—"
WORDS = {
    REPRODUCED: "reproduced",
    WITHIN: "within tolerance",
    FAILED: "not reproduced",
    INCONCLUSIVE: "inconclusive",
    NOT_APPLICABLE: "not run at this scale",
}
SEVERITY = (FAILED, INCONCLUSIVE, WITHIN, REPRODUCED)  # a claim takes its worst check's verdict
OPS = {"==": None, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
LEVEL = 0.95
EXACT = 1e-12  # "==" holds up to float rounding


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval; ``n`` values entered it (``n = 0``: none finite)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    method: str


def _t(df: float) -> float:
    """The Student-t quantile for a two-sided ``LEVEL`` interval (scipy.special: scipy.stats costs ~1 s to import)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + LEVEL / 2))


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    mean = sum(xs) / len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def seed_interval(values: Sequence[float | None]) -> Estimate:
    """Mean over seeds and its t-interval (non-finite seeds are left out and counted by ``n``)."""
    xs = _finite(values)
    if len(xs) < 2:
        mean = xs[0] if xs else None
        return Estimate(mean, None, None, len(xs), "t-interval over seeds")
    mean, sd = _mean_sd(xs)
    half = _t(len(xs) - 1) * sd / math.sqrt(len(xs))
    return Estimate(mean, mean - half, mean + half, len(xs), "t-interval over seeds")


def paired_interval(a: Sequence[float | None], b: Sequence[float | None], compare: str) -> Estimate:
    """The interval of the per-seed ``a - b`` (or ``a / b``): both measured on the same seeds."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison of {len(a)} and {len(b)} seeds")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    per_seed = [x - y if compare == "difference" else (x / y if y else math.nan) for x, y in pairs]
    est = seed_interval(per_seed)
    return Estimate(est.mean, est.low, est.high, est.n, f"paired t-interval of per-seed {compare}s")


def welch_interval(a: Sequence[float | None], b: Sequence[float | None]) -> Estimate:
    """Welch's interval for mean(a) - mean(b) when a and b come from different seeds."""
    xa, xb = _finite(a), _finite(b)
    n = min(len(xa), len(xb))
    if n < 2:
        return Estimate(None, None, None, n, "Welch interval")
    (ma, sa), (mb, sb) = _mean_sd(xa), _mean_sd(xb)
    va, vb = sa**2 / len(xa), sb**2 / len(xb)
    diff = ma - mb
    if va + vb == 0:
        return Estimate(diff, diff, diff, n, "Welch interval")
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    half = _t(df) * math.sqrt(va + vb)
    return Estimate(diff, diff - half, diff + half, n, "Welch interval")


def _inside(low: float, high: float, op: str, bound: float, slack: float) -> bool:
    """Whether all of [low, high] satisfies ``x op bound`` moved outward by ``slack``."""
    if op == "==":
        return bound - slack <= low and high <= bound + slack
    if op in (">=", ">"):
        return OPS[op](low, bound - slack)
    return OPS[op](high, bound + slack)


def _outside(low: float, high: float, op: str, bound: float, slack: float) -> bool:
    """Whether no point of [low, high] satisfies ``x op bound`` moved outward by ``slack``."""
    if op == "==":
        return high < bound - slack or low > bound + slack
    if op in (">=", ">"):
        return not OPS[op](high, bound - slack)
    return not OPS[op](low, bound + slack)


def judge_interval(low: float, high: float, op: str, value: float, tolerance: float) -> str:
    """The verdict of ``x op value`` (tolerance ``tolerance``) when x is known to lie in [low, high]."""
    exact = EXACT if op == "==" else 0.0
    if _inside(low, high, op, value, exact):
        return REPRODUCED
    if _inside(low, high, op, value, max(tolerance, exact)):
        return WITHIN
    if _outside(low, high, op, value, max(tolerance, exact)):
        return FAILED
    return INCONCLUSIVE


def worst(verdicts: Sequence[str]) -> str:
    """A claim's verdict: its worst check's (❌ before ❔ before ≈ before ✅)."""
    for verdict in SEVERITY:
        if verdict in verdicts:
            return verdict
    return REPRODUCED


def budget_text(fraction: float) -> str:
    """``0.04`` -> ``1/25``; ``0.3`` -> ``0.3``: how much of the paper's budget was spent."""
    inverse = 1 / fraction
    return f"1/{inverse:.0f}" if abs(inverse - round(inverse)) < 0.01 * inverse else f"{fraction:.2g}"
