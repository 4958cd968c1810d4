"""Running one stage of one paper: the house's side of the stage contract (gdrepro.paper).

``prepare``, ``run`` (once per seed) and ``evaluate`` are the paper's functions in
``experiment.py``; ``figures`` and ``claims`` are the house's. The per-seed results a paper's
``run_seed`` returns are stored here (gdrepro.runs), so paper code never writes files for them,
and the seed's checkpoint (gdrepro.checkpoint) is removed once they are on disk.
"""

from __future__ import annotations

from pathlib import Path

from gdrepro import layout, papers
from gdrepro.paper import Paper, StageContext


def run_stage(paper: Paper, stage: str, ctx: StageContext) -> None:
    """Run ``stage`` (a contract name or the paper's label for ``run``) in ``ctx``."""
    stage = paper.contract_stage(stage)
    if stage == "run":
        from gdrepro import checkpoint, runs

        runs.save(ctx.run_path(ctx.seed), paper.experiment.run_seed(ctx))
        checkpoint.remove(ctx.checkpoint_path)  # only now: a kill before the save loses nothing
    elif stage == "figures":
        from gdrepro.figures import draw_all

        draw_all(paper, ctx)
    elif stage == "claims":
        judge_claims(paper, ctx.scale, ctx.out)
    else:
        getattr(paper.experiment, stage)(ctx)


def judge_claims(paper: Paper, scale: str, out: Path) -> None:
    """The claims stage: verdicts from ``out/metrics.json`` alone (gdrepro.claims), printed, and
    the paper's summary run tracked (every scalar, the verdict counts, claims and figures)."""
    from gdrepro import claims, tracking

    judged = claims.write(paper.title, paper.slug, scale, papers.claims_file(paper.slug), out / layout.METRICS, out)
    for claim in judged:
        print(f"{claim['verdict_text']} [{claim['kind']}] {claim['id']}: {claim['statement']}")
    if tracking.enabled():
        tracking.log_summary(paper.slug, scale, summary_metrics(out / layout.METRICS, judged),
                             [out / layout.CLAIMS_MD, out / layout.CLAIMS_JSON, out / layout.METRICS],
                             [p for p in (out / layout.figure_file(n) for n in paper.figure_names) if p.exists()])


def summary_metrics(metrics_path: Path, judged: list[dict]) -> dict[str, float]:
    """Every finite scalar of metrics.json and the verdict counts per kind (``verdicts.paper.reproduced``)."""
    import json
    import math

    from gdrepro import claims
    from gdrepro.verdicts import WORDS

    values = {k: v["value"] for k, v in json.loads(metrics_path.read_text())["metrics"].items()}
    out = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    for kind in claims.KINDS:
        for verdict, n in claims.tally(judged, kind).items():
            out[f"verdicts.{kind}.{WORDS[verdict].replace(' ', '_')}"] = float(n)
    return out


def outputs(paper: Paper, stage: str, ctx: StageContext) -> list[Path]:
    """The files ``stage`` must leave behind (the CLI runs missing upstream stages)."""
    stage = paper.contract_stage(stage)
    if stage == "run":
        return [ctx.run_path(s) for s in ctx.seeds]
    return {
        "prepare": [ctx.prepared_path],
        "evaluate": [ctx.metrics_path] + [ctx.out / layout.table_file(t) for t in paper.tables],
        "figures": [ctx.out / layout.figure_file(n) for n in paper.figure_names],
        "claims": [ctx.out / layout.CLAIMS_JSON],
    }[stage]
