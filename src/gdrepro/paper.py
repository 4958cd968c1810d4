"""What a paper is to the house: settings per scale, stages, figures, datasets.

Every paper package exposes ``PAPER = Paper(...)`` in its ``experiment.py``. The house gives
each stage a :class:`StageContext` and fixes where outputs go, so the CLI, the Snakemake rules
and the report agree on one layout under ``results/<scale>/<paper>/``:

- ``prepared.json``              prepare: the resolved design (settings, data, truth)
- ``runs/seed<k>.npz``           the per-seed stage (simulate / train / sample)
- ``metrics.json``               evaluate
- ``figures/<name>.png|.pdf``    figures
- ``claims.md|.json``, ``tables/claims.*``   claims (generic, see gdrepro.claims)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdrepro import SCALES


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs: which paper, scale and seeds, its settings, where to write."""

    paper: str
    scale: str
    settings: Any
    seeds: tuple[int, ...]
    out: Path
    data_dir: Path
    seed: int | None = None

    @property
    def prepared_path(self) -> Path:
        return self.out / "prepared.json"

    def run_path(self, seed: int) -> Path:
        return self.out / "runs" / f"seed{seed}.npz"

    def checkpoint_path(self, seed: int) -> Path:
        """Where a long per-seed run keeps its checkpoint (see gdrepro.checkpoint; git ignores it)."""
        return self.out / "checkpoints" / f"seed{seed}.pt"

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.json"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def tables_dir(self) -> Path:
        return self.out / "tables"

    @property
    def stamp(self) -> dict:
        """What makes outputs in ``out`` valid: the scale and the resolved settings."""
        return {"scale": self.scale, "settings": dataclasses.asdict(self.settings)}

    def read_prepared(self) -> dict:
        return json.loads(self.prepared_path.read_text())

    def write_prepared(self, design: dict) -> None:
        """Write prepared.json, stamped with the scale and settings it was made for."""
        write_json(self.prepared_path, {**self.stamp, **design})

    def prepared_is_current(self) -> bool:
        """True if prepared.json exists and was made for this scale and these settings."""
        if not self.prepared_path.exists():
            return False
        prepared = self.read_prepared()
        return {k: prepared.get(k) for k in self.stamp} == json.loads(json.dumps(self.stamp))

    def read_run(self, seed: int) -> dict[str, np.ndarray]:
        with np.load(self.run_path(seed)) as npz:
            return dict(npz)

    def write_run(self, arrays: Mapping[str, np.ndarray]) -> None:
        path = self.run_path(self.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)


@dataclass(frozen=True)
class Stage:
    """One step of a paper's pipeline. ``per_seed`` stages run once per seed."""

    name: str
    run: Callable[[StageContext], None]
    per_seed: bool = False

    def outputs(self, ctx: StageContext, figures: tuple[str, ...]) -> list[Path]:
        """The files this stage must leave behind (used by the CLI to run missing upstream stages)."""
        if self.per_seed:
            return [ctx.run_path(s) for s in ctx.seeds]
        return {
            "prepare": [ctx.prepared_path],
            "evaluate": [ctx.metrics_path],
            "figures": [ctx.figures_dir / f"{name}.png" for name in figures],
        }.get(self.name, [])


def stages(prepare: Callable, run: Callable, evaluate: Callable, figures: Callable) -> tuple[Stage, ...]:
    """The standard chain, each stage named after its function: prepare -> ``run`` (once per
    seed: simulate, train or sample) -> evaluate -> figures."""
    return (Stage(prepare.__name__, prepare), Stage(run.__name__, run, per_seed=True),
            Stage(evaluate.__name__, evaluate), Stage(figures.__name__, figures))


@dataclass(frozen=True)
class Paper:
    """A paper's registration with the house."""

    slug: str
    title: str
    citation: str
    settings: Mapping[str, Any]
    stages: tuple[Stage, ...]
    figures: tuple[str, ...]
    datasets: Mapping[str, Callable[[Path], None]] = field(default_factory=dict)
    external: tuple[str, ...] = ()  # public datasets the paper scale downloads (gdrepro.external)
    brief: Mapping[str, Any] = field(default_factory=dict)  # paper settings, shortened: scripts/gpu_check.sh

    def __post_init__(self) -> None:
        missing = set(SCALES) - set(self.settings)
        if missing:
            raise ValueError(f"{self.slug}: no settings for scale(s) {sorted(missing)}")
        from gdrepro.external import CATALOG

        if unknown := set(self.external) - set(CATALOG):
            raise ValueError(f"{self.slug}: unknown external dataset(s) {sorted(unknown)}")
        fields = {f.name for f in dataclasses.fields(self.settings["paper"])}
        if unknown := set(self.brief) - fields:
            raise ValueError(f"{self.slug}: brief sets unknown setting(s) {sorted(unknown)}")
        names = [s.name for s in self.stages]
        if names[0] != "prepare" or names[-2:] != ["evaluate", "figures"]:
            raise ValueError(f"{self.slug}: stages must be prepare, <run>, evaluate, figures")

    @property
    def run_stage(self) -> Stage:
        """The per-seed stage (simulate, train or sample)."""
        return next(s for s in self.stages if s.per_seed)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages) + ("claims",)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (stable diffs in results/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
