"""The SLURM profile builds the whole paper-scale DAG, and every GPU job is routed and pinned."""

from __future__ import annotations

import re
import subprocess

import pytest

from gdrepro import papers
from gdrepro.config import default_seeds

pytest.importorskip("snakemake_executor_plugin_slurm")

JOB = re.compile(r"^rule (\w+):\n(.*?)^Shell command: (.*?)$", re.S | re.M)


@pytest.fixture(scope="module")
def paper_dag(checkout):
    result = subprocess.run(
        ["snakemake", "-n", "--profile", "workflow/profiles/slurm", "--config", "scale=paper"],
        cwd=checkout, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for rule, body, shell in JOB.findall(result.stdout):
        resources = dict(kv.split("=", 1) for kv in re.search(r"resources: (.*)", body).group(1).split(", "))
        jobs.append({"rule": rule, "resources": resources, "shell": shell})
    return jobs


def test_every_paper_runs_every_seed_at_paper_scale(paper_dag):
    per_seed = {p: papers.get(p).run_label for p in papers.SLUGS}
    for slug, stage in per_seed.items():
        seeds = [j for j in paper_dag if j["rule"] == f"{slug}_{stage}"]
        assert len(seeds) == len(default_seeds()), slug
    assert {j["rule"] for j in paper_dag} >= {"data", "claims", "report", "all"}


def test_gpu_jobs_go_to_the_gpu_partition_and_take_their_own_device(paper_dag):
    """The declarations are the one place that says which stage trains on a GPU."""
    gpu_jobs = [j for j in paper_dag if int(j["resources"].get("gpu", 0)) > 0]
    gpu_rules = {j["rule"] for j in gpu_jobs}
    declared = {f"{s}_{papers.get(s).run_label}" for s in papers.SLUGS if papers.get(s).trains_on_gpu}
    declared |= {f"{s}_prepare" for s in papers.SLUGS if papers.get(s).asks_for_gpu("prepare")}
    assert {"ko_train", "aacbr_train", "clu_prepare"} <= gpu_rules
    assert gpu_rules == declared
    for job in gpu_jobs:
        assert job["resources"]["slurm_partition"] == "gpu"  # config.yaml's gpu_partition default
        assert "GDREPRO_GPU_SLOT=1" in job["shell"], job["rule"]
        assert {"runtime", "mem_mb"} <= set(job["resources"]), job["rule"]
    cpu_jobs = [j for j in paper_dag if j not in gpu_jobs and j["rule"] != "all"]
    assert all("GDREPRO_GPU_SLOT" not in j["shell"] and "slurm_partition" not in j["resources"] for j in cpu_jobs)


def test_downloads_come_before_the_papers_that_need_them(paper_dag):
    fetched = {j["shell"].split("fetch ")[1].split()[0] for j in paper_dag if j["rule"] == "external_dataset"}
    needed = {name for slug in papers.SLUGS for name in papers.get(slug).external}
    assert fetched == needed and {"cifar10"} <= fetched
