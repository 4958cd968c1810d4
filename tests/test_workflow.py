"""The Snakemake workflow itself: lint-clean, snakefmt-formatted, and a DAG in the agreed order."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def test_snakemake_lint_is_clean():
    result = subprocess.run(["snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt not installed")
def test_snakefmt_leaves_the_workflow_unchanged():
    result = subprocess.run(["snakefmt", "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_dag_runs_data_prepare_simulate_evaluate_figures_claims_report(checkout):
    result = subprocess.run(["snakemake", "--cores", "1", "--config", "scale=smoke", "--dag"], cwd=checkout,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    edges = set()
    labels = {}
    for line in result.stdout.splitlines():
        line = line.strip()
        if "->" in line:
            a, b = (x.strip().rstrip(";") for x in line.split("->"))
            edges.add((a, b.split()[0]))
        elif "label" in line and line[0].isdigit():
            node, rest = line.split("[", 1)
            labels[node.strip()] = rest.split('label = "', 1)[1].split("\\n", 1)[0].split('"', 1)[0]
    named = {(labels[a], labels[b]) for a, b in edges}
    chain = ["data", "quantile_prepare", "quantile_simulate", "quantile_evaluate", "claims", "report"]
    assert all(pair in named for pair in zip(chain, chain[1:])), named
    assert ("quantile_figures", "report") in named
