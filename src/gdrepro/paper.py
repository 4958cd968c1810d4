"""A paper's declaration, and the context its stages run in.

Each paper package declares itself in ``papers/<slug>/__init__.py`` as ``PAPER = Paper(...)``:
titles, the label of its per-seed stage, tables, figures, datasets, downloads and, per scale,
the resources its jobs need (and the scales it runs under portable kernels). The declaration is
light (no numpy, no torch): ``gdrepro --help``, the Snakefile and the slurm/GPU tooling read it
without loading any paper's code. The stages themselves live in ``papers/<slug>/experiment.py`` under fixed names:

- ``SETTINGS``          ``{scale: settings dataclass}`` for every scale
- ``prepare(ctx)``      writes ``prepared.json`` (``ctx.write_prepared``)
- ``run_seed(ctx)``     one seed (simulate / train / sample): returns nested results whose
                        leaves say how they pool over seeds (:mod:`gdrepro.runs`)
- ``evaluate(ctx)``     reads ``ctx.runs()`` / ``ctx.pooled()``, writes metrics.json and tables
- ``figure_inputs(ctx)``  the named inputs the figures' draw functions take

The house runs them (:mod:`gdrepro.stages`), draws the declared figures and judges the claims.
Paths come from :mod:`gdrepro.layout`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gdrepro import layout

if TYPE_CHECKING:
    from gdrepro.runs import Nested
    from gdrepro.tracking import Run as TrackedRun

STAGES = ("prepare", "run", "evaluate", "figures", "claims")
"""The house's stage contract; ``run`` is the per-seed stage, shown under the paper's label."""


@dataclass(frozen=True)
class Resources:
    """What one job asks of the scheduler (Snakemake ``threads``/``resources``, SLURM sbatch)."""

    threads: int = 1
    mem_mb: int = 2000
    runtime: int | None = None  # minutes; None: the profile's default
    gpu: int = 0  # 1: the job trains on a GPU (local GPU slot, SLURM --gpus, the GPU partition)


DEFAULT_RESOURCES = {"prepare": Resources(mem_mb=1000), "claims": Resources(mem_mb=500)}


@dataclass(frozen=True)
class Figure:
    """One figure: ``draw(axes, **inputs)`` fills a grid of panels the house lays out and saves.

    ``grid`` is (rows, cols) or a function of the settings giving it; the figure is
    ``panel`` x grid inches unless ``size`` fixes it. ``axes`` is what ``plt.subplots`` returns
    (one Axes for a 1x1 grid unless ``squeeze=False``). The caption says what is plotted and
    which claims it supports; it goes to ``snakemake --report``.
    """

    name: str
    draw: str  # "module:function" inside the paper package, e.g. "figures:draw_coverage"
    caption: str
    claims: tuple[str, ...] = ()
    grid: tuple[int, int] | Callable[[Any], tuple[int, int]] = (1, 1)
    panel: tuple[float, float] = (5.0, 3.4)
    size: tuple[float, float] | None = None
    squeeze: bool = True

    def layout(self, settings: Any) -> tuple[int, int]:
        return self.grid(settings) if callable(self.grid) else self.grid

    def figsize(self, settings: Any) -> tuple[float, float]:
        rows, cols = self.layout(settings)
        return self.size or (self.panel[0] * cols, self.panel[1] * rows)


@dataclass(frozen=True)
class Paper:
    """A paper's registration with the house (see the module docstring)."""

    slug: str
    title: str
    citation: str
    run_label: str  # what the per-seed stage does: "simulate", "train" or "sample"
    figures: tuple[Figure, ...]
    tables: tuple[str, ...] = ()
    resources: Mapping[str, Resources | Mapping[str, Resources]] = field(default_factory=dict)
    datasets: Mapping[str, str] = field(default_factory=dict)  # data/ path -> "module:builder"
    external: tuple[str, ...] = ()  # public datasets the paper scale downloads (gdrepro.external)
    brief: Mapping[str, Any] = field(default_factory=dict)  # paper settings, shortened: gpu_check.sh
    portable_kernels: tuple[str, ...] = ()  # scales run under portable kernels (gdrepro.kernels)

    def __post_init__(self) -> None:
        if set(self.portable_kernels) - set(layout.SCALES):
            raise ValueError(f"{self.slug}: portable_kernels names unknown scales {self.portable_kernels}")
        for stage, spec in self.resources.items():
            if stage not in STAGES:
                raise ValueError(f"{self.slug}: resources for unknown stage {stage!r} (stages: {STAGES})")
            if isinstance(spec, Mapping) and set(spec) != set(layout.SCALES):
                raise ValueError(f"{self.slug}: {stage} resources must name every scale {layout.SCALES}")
        names = [f.name for f in self.figures]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.slug}: figure names repeat: {names}")

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The stages as the command line and the rules name them."""
        return ("prepare", self.run_label, "evaluate", "figures", "claims")

    def contract_stage(self, name: str) -> str:
        """``simulate``/``train``/``sample`` -> ``run``; other names unchanged."""
        return "run" if name == self.run_label else name

    def job_resources(self, stage: str, scale: str) -> Resources:
        spec = self.resources.get(self.contract_stage(stage), DEFAULT_RESOURCES.get(stage, Resources()))
        return spec[scale] if isinstance(spec, Mapping) else spec

    def asks_for_gpu(self, stage: str) -> bool:
        """True when ``stage`` asks for a GPU at some scale (the paper scale): its jobs then take a
        device slot at every scale, so one GPU machine runs them alike whatever the scale."""
        return any(self.job_resources(stage, s).gpu for s in layout.SCALES)

    @property
    def trains_on_gpu(self) -> bool:
        """True when the per-seed stage asks for a GPU at some scale (the paper scale)."""
        return self.asks_for_gpu(self.run_label)

    @property
    def figure_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.figures)

    # --- the code behind the declaration, loaded on first use -----------------------------

    def resolve(self, ref: str) -> Callable:
        """``"module:function"`` inside this paper's package -> the function."""
        module, _, name = ref.partition(":")
        return getattr(import_module(f"gdrepro.papers.{self.slug}.{module}"), name)

    @cached_property
    def experiment(self):
        return import_module(f"gdrepro.papers.{self.slug}.experiment")

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.experiment.SETTINGS

    def dataset_builders(self) -> dict[str, Callable[[Path], None]]:
        """``path under data/ -> builder``; a builder loads its module only when it builds (checking
        that data/ is complete must not import every paper's code)."""
        return {path: partial(_build, self, ref) for path, ref in self.datasets.items()}


def _build(paper: Paper, ref: str, path: Path) -> None:
    paper.resolve(ref)(path)


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs, and the house services it uses without repeating who it is."""

    paper: str
    scale: str
    settings: Any
    seeds: tuple[int, ...]
    out: Path
    data_dir: Path
    seed: int | None = None
    stage: str = ""  # the rule name's stage part (simulate, train, evaluate, ...), for tracking
    overrides: Mapping[str, Any] = field(default_factory=dict)  # settings changed from the scale's preset

    # --- paths (gdrepro.layout) -----------------------------------------------------------

    @property
    def prepared_path(self) -> Path:
        return self.out / layout.PREPARED

    def run_path(self, seed: int) -> Path:
        return self.out / layout.run_file(seed)

    @property
    def checkpoint_path(self) -> Path:
        """Where this seed's long run keeps its resume point (gdrepro.checkpoint; git ignores it)."""
        return self.out / layout.checkpoint_file(self.seed)

    @property
    def metrics_path(self) -> Path:
        return self.out / layout.METRICS

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def tables_dir(self) -> Path:
        return self.out / "tables"

    # --- prepared.json --------------------------------------------------------------------

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

    # --- per-seed results (gdrepro.runs) --------------------------------------------------

    def read_run(self, seed: int) -> Nested:
        """Seed ``seed``'s results as nested dicts of arrays."""
        from gdrepro import runs

        return runs.load(self.run_path(seed)).results

    @cached_property
    def _seed_runs(self) -> list:
        """Every seed's stored run, read once per context (evaluate asks for both the per-seed
        results and the pooled ones)."""
        from gdrepro import runs

        return [runs.load(self.run_path(seed)) for seed in self.seeds]

    def kernels(self) -> dict:
        """The kernel record of this stage's numbers (gdrepro.kernels): this process's, completed
        by what the per-seed runs recorded where they ran code this process did not load (torch)."""
        from gdrepro import kernels

        record = kernels.effective()
        if all(self.run_path(seed).exists() for seed in self.seeds):
            for key in sorted({k for run in self._seed_runs for k in run.kernels} - set(record)):
                values = sorted({json.dumps(run.kernels.get(key)) for run in self._seed_runs})
                record[key] = json.loads(values[0]) if len(values) == 1 else [json.loads(v) for v in values]
        return record

    def runs(self) -> list[Nested]:
        """Every seed's results, in seed order."""
        return [run.results for run in self._seed_runs]

    def pooled(self) -> Nested:
        """All seeds as one run, each quantity pooled by its declared rule (gdrepro.runs.pool)."""
        from gdrepro import runs

        return runs.pool(self._seed_runs)

    def pooled_each(self) -> list[Nested]:
        """Each seed on its own, pooled by the same rules (a ``stack`` gains its one-seed axis)."""
        from gdrepro import runs

        return [runs.pool([run]) for run in self._seed_runs]

    # --- services: seeded randomness, tracking, progress ----------------------------------

    def rng(self, *key: int | str):
        """A numpy Generator for ``(paper, *key, seed)`` (gdrepro.runtime.rng)."""
        from gdrepro.runtime import rng

        return rng(self.paper, *key, *self._seed_key())

    def torch_generator(self, *key: int | str, device: str = "cpu"):
        """A torch Generator for ``(paper, *key, seed)`` (gdrepro.runtime.torch_generator)."""
        from gdrepro.runtime import torch_generator

        return torch_generator(self.paper, *key, *self._seed_key(), device=device)

    def _seed_key(self) -> tuple[int, ...]:
        return () if self.seed is None else (self.seed,)

    def tracked_run(self, method: str, params: Mapping[str, Any] | None = None) -> TrackedRun:
        """The MLflow run of ``method`` for this paper, scale, seed and rule (gdrepro.tracking);
        ``params`` default to the settings."""
        from gdrepro import tracking

        params = dataclasses.asdict(self.settings) if params is None else params
        return tracking.tracked_run(self.paper, method, self.scale, self.seed, params,
                                    f"{self.paper}_{self.stage}")

    def log(self, message: str) -> None:
        from gdrepro.runtime import log

        log(f"{self.paper}{'' if self.seed is None else f' seed {self.seed}'}: {message}")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (stable diffs in results/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    if hasattr(obj, "tolist") and type(obj).__module__ == "numpy":  # numpy scalars and arrays
        return obj.tolist() if obj.ndim else obj.item()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
