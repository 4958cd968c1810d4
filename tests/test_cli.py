"""The command line: help, one-line errors with non-zero exit, and a stage run without Snakemake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gdrepro(*args, cwd=ROOT, **kwargs):
    return subprocess.run([sys.executable, "-m", "gdrepro.cli", *args], cwd=cwd, capture_output=True,
                          text=True, **kwargs)


def test_help_lists_papers_and_stages():
    out = gdrepro("--help").stdout
    assert "quantile   prepare -> simulate -> evaluate -> figures -> claims" in out
    assert "smoke, default, paper" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchpaper", "evaluate"], "unknown paper or command 'nosuchpaper'"),
        (["quantile", "fit", "--scale", "smoke", "--out", "x"], "unknown stage 'fit' for quantile"),
        (["quantile", "evaluate", "--scale", "huge", "--out", "x"], "unknown scale 'huge'"),
        (["quantile", "evaluate", "--scale", "smoke", "--out", "x", "--set", "nn=1"], "unknown setting 'nn'"),
        (["quantile", "evaluate", "--scale", "smoke", "--out", "x", "--set", "n=abc"], "quantile.n='abc' should be int"),
        (["quantile", "evaluate", "--scale", "smoke"], "the following arguments are required: --out"),
        (["report", "--scale", "smoke", "--results", "x", "--papers", "nope"], "unknown paper 'nope'"),
        (["report", "--scale", "smoke", "--results", "nowhere"], "missing nowhere/quantile/claims.json"),
        (["quantile", "simulate", "--scale", "smoke", "--out", "x", "--set", "a=0.3"], "a=0.3 must exceed 1/2"),
        (["quantile", "claims", "--scale", "smoke", "--out", "nowhere", "--no-deps"], "missing nowhere/metrics.json"),
        (["quantile", "evaluate", "--scale", "smoke", "--out", "x", "--seeds", "0", "-1"],
         "a seed is a non-negative integer, got '-1'"),
        (["quantile", "settings", "--scale", "huge"], "unknown scale 'huge'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = gdrepro(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gdrepro: error: ") and message in lines[0], result.stderr


def test_no_arguments_print_the_help():
    result = gdrepro()
    assert result.returncode == 0 and "papers and their stages:" in result.stdout


@pytest.mark.parametrize("slug", ["grokking", "quantile"])
def test_a_papers_help_and_settings_show_every_setting_at_every_scale(slug):
    import dataclasses

    from gdrepro import papers

    presets = papers.get(slug).settings
    table = gdrepro(slug, "settings").stdout.splitlines()
    help_text = gdrepro(slug, "--help").stdout
    fields = dataclasses.fields(presets["smoke"])
    assert len(table) == 1 + len(fields) and table[0].split()[:4] == ["setting", "smoke", "default", "paper"]
    for field, row in zip(fields, table[1:], strict=True):
        assert row.split()[0] == field.name and row.strip() in help_text
        for scale in ("smoke", "default", "paper"):
            value = repr(getattr(presets[scale], field.name))
            assert value[:27] in row, (field.name, scale, value)
    steps = next(r for r in table if r.split()[0] == ("steps" if slug == "grokking" else "n"))
    assert ("step cap" if slug == "grokking" else "stream length") in steps  # the meaning, from the source


def test_run_outside_the_repository_says_where_to_run(tmp_path):
    result = gdrepro("quantile", "prepare", "--scale", "smoke", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2 and "run gdrepro from the repository root, or pass --data" in result.stderr


def test_missing_dataset_is_one_line(tmp_path):
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    result = gdrepro("quantile", "prepare", "--scale", "smoke", "--out", "out", "--no-deps", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "gdrepro: error: missing dataset data/quantile/truth.csv "
        "(run `dvc pull` or `gdrepro data verify --build-missing`)"
    )


def test_bad_config_fails_snakemake_with_one_line(checkout):
    result = subprocess.run(["snakemake", "-n", "--cores", "1", "--config", "scale=huge"], cwd=checkout,
                            capture_output=True, text=True)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["gdrepro: error: invalid config: scale: 'huge' is not one of ['smoke', 'default', 'paper']"]


def test_evaluate_without_snakemake_runs_its_upstream_stages(tmp_path):
    """`gdrepro quantile evaluate` in a fresh folder builds data/, prepares and simulates first."""
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    result = gdrepro("quantile", "evaluate", "--scale", "smoke", "--out", "q", "--seeds", "0", "1",
                     "--set", "n=500", "--set", "stress_n=300",
                     cwd=tmp_path, env={**os.environ, "GDREPRO_TRACKING": "off"})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "q" / "runs").iterdir()) == ["seed0.npz", "seed1.npz"]
    metrics = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1]
    assert len(metrics["metrics"]["smoothed_crossing_rate"]["per_seed"]) == 2
    assert json.loads((tmp_path / "q" / "prepared.json").read_text())["experiments"]["main"]["n"] == 500
    assert metrics["overrides"] == {"n": 500, "stress_n": 300}  # what the run changed from the smoke preset


def test_outputs_of_another_scale_or_settings_are_rerun_not_reused(tmp_path):
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    env = {**os.environ, "GDREPRO_TRACKING": "off"}
    small = ["--seeds", "0", "--set", "n=300", "--set", "stress_n=100", "--set", "fine_n=100"]
    assert gdrepro("quantile", "evaluate", "--scale", "smoke", "--out", "q", *small, cwd=tmp_path, env=env).returncode == 0
    stale = gdrepro("quantile", "evaluate", "--scale", "smoke", "--out", "q", *small, "--set", "n=400",
                    "--no-deps", cwd=tmp_path, env=env)
    assert stale.returncode == 2 and "made for another scale or other settings" in stale.stderr
    rerun = gdrepro("quantile", "evaluate", "--scale", "smoke", "--out", "q", *small, "--set", "n=400",
                    cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["settings"]["n"] == 400
    # claims need metrics.json only: with the runs gone (as in a clone), nothing is re-simulated
    shutil.rmtree(tmp_path / "q" / "runs")
    claims = gdrepro("quantile", "claims", "--scale", "smoke", "--out", "q", "--no-deps", cwd=tmp_path, env=env)
    assert claims.returncode == 0, claims.stderr
    assert not (tmp_path / "q" / "runs").exists()
    wrong_scale = gdrepro("quantile", "claims", "--scale", "default", "--out", "q", cwd=tmp_path, env=env)
    assert wrong_scale.returncode == 2 and "made at scale 'smoke', not 'default'" in wrong_scale.stderr
