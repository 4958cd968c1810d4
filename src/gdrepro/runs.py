"""Per-seed results: nested dicts of arrays, each quantity saying how it pools over seeds.

A per-seed stage returns its results as nested dicts whose leaves say how they pool::

    ctx.write_run({"main": {"smoothed": {"last": runs.concat(last, axis=-2),
                                         "seconds": runs.mean(seconds)}}})

and the house stores them (one ``.npz`` per seed, keys joined with ``/``, the pooling rules
beside them). :func:`pool` is the one place that pools seeds; evaluate and figures read plain
nested dicts of arrays. The rules:

=========  =============================================================================
``concat``  replications: all seeds' arrays joined along ``axis``
``stack``   one entry per seed: the arrays stacked on a new leading axis
``mean``    the mean over seeds (curves, timings)
``max``     the worst seed (an invariant's violation, an exactness error)
``first``   the same in every seed (a grid, a structure): seed ``seeds[0]``'s copy
``own``     only per seed (a policy, raw episodes): absent from the pooled run
=========  =============================================================================

Pooling needs every seed to hold the same quantities; a design that gives seeds different runs
(grokking at the default scale spreads its extra runs over seeds) reads ``ctx.runs()`` instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdrepro.errors import GdreproError

RULES = ("concat", "stack", "mean", "max", "first", "own")
_RULES_KEY = "__pooling__"
_KERNELS_KEY = "__kernels__"  # the kernel record of the process that computed the run
_SEP = "/"

Nested = dict[str, Any]


@dataclass(frozen=True)
class Quantity:
    """An array and the rule that pools it over seeds."""

    value: np.ndarray
    rule: str
    axis: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown pooling rule {self.rule!r} (rules: {', '.join(RULES)})")


def concat(value: Any, axis: int = 0) -> Quantity:
    return Quantity(np.asarray(value), "concat", axis)


def stack(value: Any) -> Quantity:
    return Quantity(np.asarray(value), "stack")


def mean(value: Any) -> Quantity:
    return Quantity(np.asarray(value), "mean")


def worst(value: Any) -> Quantity:
    """Pooled as the maximum over seeds."""
    return Quantity(np.asarray(value), "max")


def first(value: Any) -> Quantity:
    return Quantity(np.asarray(value), "first")


def own(value: Any) -> Quantity:
    return Quantity(np.asarray(value), "own")


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Quantity]:
    flat: dict[str, Quantity] = {}
    for key, value in tree.items():
        if _SEP in str(key):
            raise ValueError(f"result key {key!r} may not contain {_SEP!r}")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, path + _SEP)
        elif isinstance(value, Quantity):
            flat[path] = value
        else:
            raise TypeError(f"result {path!r} does not say how it pools over seeds: wrap it in "
                            f"gdrepro.runs.{{{', '.join(RULES)}}}(...)")
    return flat


def _nest(flat: Mapping[str, Any]) -> Nested:
    tree: Nested = {}
    for path, value in flat.items():
        *parents, leaf = path.split(_SEP)
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def save(path: Path, results: Mapping) -> None:
    """Write one seed's nested results (leaves: :class:`Quantity`) to ``path`` (.npz), with the
    kernel record of this process (gdrepro.kernels: torch's CPU capability is known only here)."""
    from gdrepro import kernels

    flat = _flatten(results)
    rules = {k: [q.rule, q.axis] for k, q in flat.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: q.value for k, q in flat.items()}
    meta = {_RULES_KEY: json.dumps(rules, sort_keys=True), _KERNELS_KEY: json.dumps(kernels.effective(), sort_keys=True)}
    np.savez_compressed(path, **arrays, **{k: np.array(v) for k, v in meta.items()})


@dataclass(frozen=True)
class Run:
    """One seed's results as read back: nested arrays, and how each leaf pools."""

    results: Nested
    rules: Mapping[str, tuple[str, int]]
    kernels: Mapping[str, object]  # empty for a file written before runs carried it


def load(path: Path) -> Run:
    """Read a file written by :func:`save`."""
    if not Path(path).exists():
        raise GdreproError(f"missing {path} (run the paper's per-seed stage first)")
    with np.load(path) as npz:
        flat = {k: npz[k] for k in npz.files if k not in (_RULES_KEY, _KERNELS_KEY)}
        rules = {k: tuple(v) for k, v in json.loads(str(npz[_RULES_KEY])).items()}
        kernels = json.loads(str(npz[_KERNELS_KEY])) if _KERNELS_KEY in npz.files else {}
    return Run(_nest(flat), rules, kernels)


def pool(runs: Sequence[Run]) -> Nested:
    """All seeds as one run, each quantity pooled by the rule it was saved with."""
    if not runs:
        raise GdreproError("no per-seed runs to pool")
    rules = runs[0].rules
    for run in runs[1:]:
        if run.rules != rules:
            raise GdreproError("per-seed runs hold different results (rerun the per-seed stage for every seed)")
    flats = [_flat_arrays(run.results) for run in runs]
    pooled = {}
    for key, (rule, axis) in rules.items():
        values = [flat[key] for flat in flats]
        if rule == "concat":
            pooled[key] = np.concatenate(values, axis=axis)
        elif rule == "stack":
            pooled[key] = np.stack(values)
        elif rule == "mean":
            pooled[key] = np.mean(values, axis=0)
        elif rule == "max":
            pooled[key] = np.max(values, axis=0)
        elif rule == "first":
            pooled[key] = values[0]
    return _nest(pooled)


def _flat_arrays(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat |= _flat_arrays(value, f"{prefix}{key}{_SEP}")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
