"""The Snakemake workflow itself: lint-clean, snakefmt-formatted, and a DAG in the agreed order."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def test_snakemake_lint_is_clean():
    result = subprocess.run(["snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt not installed")
def test_snakefmt_leaves_the_workflow_unchanged():
    result = subprocess.run(["snakefmt", "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def test_dag_runs_data_prepare_simulate_evaluate_figures_claims_report(checkout):
    result = subprocess.run(["snakemake", "--cores", "1", "--config", "scale=smoke", "--dag"], cwd=checkout,
                            capture_output=True, text=True, timeout=600)
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


def test_command_line_overrides_and_seeds_reach_the_jobs_typed(checkout):
    """--config hands nested values over as strings; they must arrive as numbers."""
    result = subprocess.run(
        ["snakemake", "-n", "-p", "--cores", "1", "--config", "scale=smoke", "overrides={quantile: {n: 500}}",
         "seeds=[0, 1]"], cwd=checkout, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "--seeds 0 1 --seed 1 --set n=500 --no-deps" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [("overrides={quantile: {nosuch: 3}}", "unknown setting 'nosuch' for paper 'quantile'"),
     ("overrides={nosuch: {n: 3}}", "unknown paper 'nosuch'"),
     ("overrides={quantile: {a: 0.2}}", "invalid settings for quantile: a=0.2 must exceed 1/2")],
)
def test_bad_overrides_fail_before_any_job_with_one_line(checkout, override, message):
    result = subprocess.run(["snakemake", "-n", "--cores", "1", "--config", override], cwd=checkout,
                            capture_output=True, text=True, timeout=600)
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert result.returncode != 0 and len(errors) == 1 and errors[0].startswith(f"gdrepro: error: {message}")
