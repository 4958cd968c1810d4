"""The shared figures stage: every declared figure drawn, saved as PNG and PDF, and logged.

A paper declares its figures (:class:`gdrepro.paper.Figure`) and says in
``experiment.figure_inputs(ctx)`` what they are drawn from; the house lays out the panels in
the house style (:mod:`gdrepro.plotting`), calls each ``draw(axes, fig=..., **inputs)`` and saves
``figures/<name>.png|.pdf``. An optional ``experiment.extra_figures(ctx)`` adds files that are
not matplotlib figures (amppo's rollout GIF). The paper's MLflow summary run gets them all.
"""

from __future__ import annotations

from pathlib import Path

from gdrepro import plotting
from gdrepro.metrics import read_metrics
from gdrepro.paper import Paper, StageContext


def draw_all(paper: Paper, ctx: StageContext) -> list[Path]:
    """Draw ``paper``'s figures from ``metrics.json`` and its ``figure_inputs``; return the files."""
    experiment = paper.experiment
    metrics = read_metrics(ctx.metrics_path)
    inputs = {"metrics": metrics, "details": metrics["details"], "settings": ctx.settings}
    inputs |= experiment.figure_inputs(ctx)
    paths: list[Path] = []
    for spec in paper.figures:
        draw = paper.resolve(spec.draw)
        rows, cols = spec.layout(ctx.settings)
        with plotting.figure(rows, cols, figsize=spec.figsize(ctx.settings), squeeze=spec.squeeze) as (fig, axes):
            draw(axes, fig=fig, **inputs)
            paths += plotting.save(fig, ctx.figures_dir, spec.name)
    if hasattr(experiment, "extra_figures"):
        paths += experiment.extra_figures(ctx)
    return paths
