"""The paper declarations: every reference resolves, and the workflow and tooling follow them."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from gdrepro import layout, papers
from gdrepro.external import CATALOG
from gdrepro.paper import STAGES, Resources


@pytest.fixture(scope="module", params=papers.SLUGS)
def paper(request):
    return papers.get(request.param)


def test_the_experiment_implements_the_stage_contract(paper):
    experiment = paper.experiment
    assert set(experiment.SETTINGS) == set(layout.SCALES)
    for name in ("prepare", "run_seed", "evaluate", "figure_inputs"):
        function = getattr(experiment, name)
        assert list(inspect.signature(function).parameters) == ["ctx"], f"{paper.slug}.{name}"
    for old in ("figures", "_pool", "DRAW", "FIGURES", "PAPER", paper.run_label):
        assert not hasattr(experiment, old), f"{paper.slug}: experiment still defines {old}"


def test_figures_name_draw_functions_and_real_claims(paper):
    claim_ids = {c["id"] for c in yaml.safe_load(papers.claims_file(paper.slug).read_text())["claims"]}
    settings = paper.settings["smoke"]
    for figure in paper.figures:
        draw = paper.resolve(figure.draw)
        assert list(inspect.signature(draw).parameters)[0] in ("ax", "axes"), figure.draw
        assert set(figure.claims) <= claim_ids, f"{paper.slug}/{figure.name}: unknown claim"
        assert len(figure.caption) > 30, f"{paper.slug}/{figure.name}: say what is plotted"
        rows, cols = figure.layout(settings)
        assert rows >= 1 and cols >= 1


def test_datasets_downloads_and_brief_are_real(paper):
    for relpath, ref in paper.datasets.items():
        assert callable(paper.resolve(ref)) and relpath.startswith(f"{paper.slug}/"), relpath
    assert set(paper.external) <= set(CATALOG)
    fields = {f.name for f in dataclasses.fields(paper.settings["paper"])}
    assert set(paper.brief) <= fields
    assert bool(paper.brief) == paper.trains_on_gpu, "a GPU stage has a shortened budget for gpu_check.sh"


def test_resources_are_declared_per_stage_and_scale(paper):
    for stage in paper.stage_names:
        for scale in layout.SCALES:
            spec = paper.job_resources(stage, scale)
            assert isinstance(spec, Resources) and spec.mem_mb > 0 and spec.threads >= 1
    assert not any(paper.job_resources(s, scale).gpu for s in ("evaluate", "figures", "claims")
                   for scale in layout.SCALES), "only the per-seed stage (and a tuning prepare) trains"
    assert paper.contract_stage(paper.run_label) == "run" and "run" in STAGES


def test_each_data_file_has_one_builder():
    builders = papers.dataset_builders()
    assert len(builders) == sum(len(papers.get(s).datasets) for s in papers.SLUGS)
