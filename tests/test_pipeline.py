"""End to end: `snakemake --cores 2 --config scale=smoke` on a fresh-clone copy of the repository.

Checks every claim marked for smoke, the report, MLflow runs, regression against the committed
smoke references, and that a second run schedules nothing. ``pytest -k <slug>`` builds that
paper's pipeline alone. The run is watched for stalls (tests/watch.py), never cut at a fixed
wall-clock limit, and uses the portable kernels the references were made with.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from gdrepro import claims as C
from gdrepro import papers
from gdrepro.config import default_seeds
from tests.conftest import ROOT
from tests.regression.compare import compare_to_reference
from tests.watch import run_watched

pytestmark = pytest.mark.pipeline


def _smoke_config(papers_run: list[str]) -> list[str]:
    return ["--config", "scale=smoke", f"papers={json.dumps(papers_run)}"]


@pytest.fixture(scope="module")
def smoke_run(checkout, smoke_papers):
    env = {**os.environ, "GDREPRO_TRACKING": "on", "GDREPRO_KERNELS": "portable"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = run_watched(["snakemake", "--cores", "2", *_smoke_config(smoke_papers)], cwd=checkout, env=env,
                         watch=["results", ".snakemake/log"])
    assert result.returncode == 0, result.stderr[-4000:]
    return checkout


def _run_papers(smoke_papers, paper):
    if paper not in smoke_papers:
        pytest.skip(f"{paper} was not part of this smoke run")


@pytest.mark.parametrize("paper", papers.SLUGS)
def test_every_smoke_claim_holds(smoke_run, smoke_papers, paper):
    _run_papers(smoke_papers, paper)
    judged = C.read_judged(smoke_run / "results" / "smoke" / paper / "claims.json")["claims"]
    smoke_claims = [c for c in judged if "smoke" in c["scales"]]
    assert smoke_claims, f"{paper} marks no claim for smoke"
    failed = [c["id"] for c in smoke_claims if c["verdict"] not in (C.REPRODUCED, C.WITHIN)]
    assert not failed, f"smoke claims not reproduced: {failed}"


@pytest.mark.parametrize("paper", papers.SLUGS)
def test_smoke_metrics_match_the_committed_reference(smoke_run, smoke_papers, paper):
    _run_papers(smoke_papers, paper)
    reference = json.loads((ROOT / "tests" / "regression" / "smoke" / f"{paper}.json").read_text())
    produced = json.loads((smoke_run / "results" / "smoke" / paper / "metrics.json").read_text())
    problem = compare_to_reference(reference, produced)
    assert not problem, problem


def test_report_rolls_up_every_paper(smoke_run, smoke_papers):
    report = (smoke_run / "results" / "smoke" / "REPORT.md").read_text()
    for slug in smoke_papers:
        assert f"## {slug}: " in report
        assert all((smoke_run / "results" / "smoke" / slug / "figures" / f"{f}.png").stat().st_size > 5000
                   for f in papers.get(slug).figure_names)
    assert "| paper | recipe: ✅ reproduced |" in report and "by `snakemake --cores 2 --config scale=smoke" in report
    assert (smoke_run / "results" / "smoke" / "summary.tex").read_text().startswith(r"\begin{table}")


def test_mlflow_has_one_run_per_method_and_seed(smoke_run, smoke_papers):
    from mlflow.tracking import MlflowClient

    _run_papers(smoke_papers, "quantile")
    client = MlflowClient(f"sqlite:///{smoke_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gdrepro/quantile")
    runs = client.search_runs([experiment.experiment_id])
    per_seed = {(r.data.tags["gdrepro.method"], r.data.tags["gdrepro.seed"]) for r in runs
                if r.data.tags["gdrepro.seed"] != "all"}
    assert per_seed == {(m, str(s)) for m in ("smoothed", "plain") for s in default_seeds()}
    summary = [r for r in runs if r.data.tags["gdrepro.seed"] == "all"]
    assert len(summary) == 1
    artifacts = {a.path for a in client.list_artifacts(summary[0].info.run_id, "figures")}
    assert "figures/efficiency.png" in artifacts
    child = next(r for r in runs if r.data.tags["gdrepro.seed"] == "0")
    assert child.data.tags["mlflow.parentRunId"] == summary[0].info.run_id
    assert {"mlflow.source.git.commit", "gdrepro.scale", "gdrepro.rule"} <= set(child.data.tags)
    assert len(client.get_metric_history(child.info.run_id, "main.efficiency")) > 5


@pytest.mark.parametrize("paper", papers.SLUGS)
def test_every_paper_tracks_each_seed_and_a_summary_with_its_figures(smoke_run, smoke_papers, paper):
    from mlflow.tracking import MlflowClient

    _run_papers(smoke_papers, paper)
    client = MlflowClient(f"sqlite:///{smoke_run / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(f"gdrepro/{paper}").experiment_id])
    seeds = {r.data.tags["gdrepro.seed"] for r in runs}
    assert seeds == {str(s) for s in default_seeds()} | {"all"}
    summary = [r for r in runs if r.data.tags["gdrepro.seed"] == "all"]
    assert len(summary) == 1 and all(r.info.status == "FINISHED" for r in runs)
    figures = {a.path for a in client.list_artifacts(summary[0].info.run_id, "figures")}
    assert {f"figures/{name}.png" for name in papers.get(paper).figure_names} <= figures
    assert {"claims.md", "claims.json", "metrics.json"} <= {a.path for a in client.list_artifacts(summary[0].info.run_id)}
    assert "verdicts.paper.reproduced" in summary[0].data.metrics


def test_the_browsable_report_holds_every_papers_figures_and_claims(smoke_run, smoke_papers):
    result = run_watched(["snakemake", "--report", "report.html", *_smoke_config(smoke_papers)], cwd=smoke_run)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (smoke_run / "report.html").read_text()
    assert "Redrawn from the" in html  # the figure caption was rendered
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', html), "needs the network to open"
    for slug in smoke_papers:
        assert html.count(f"results/smoke/{slug}/tables/claims.html") >= 1, slug
        for figure in papers.get(slug).figures:
            assert f"results/smoke/{slug}/figures/{figure.name}.png" in html, (slug, figure.name)
            words = re.findall(r"[A-Za-z]{4,}", figure.caption)[:3]  # the declared caption, not a generic one
            assert all(w in html for w in words), (slug, figure.name, words)


def test_second_run_schedules_nothing(smoke_run, smoke_papers):
    result = run_watched(["snakemake", "--cores", "2", *_smoke_config(smoke_papers), "--dry-run"], cwd=smoke_run)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
