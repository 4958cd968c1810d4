# Paths, the scale, and the `gdrepro` command line shared by every paper's rules.

import json
import os
import shlex

SCALE = config["scale"]
SEEDS = config["seeds"]
PAPERS = config.get("papers", list(papers.SLUGS))


wildcard_constraints:
    scale="smoke|default|paper",
    seed=r"\d+",


CONDA_ENV = (
    "../envs/gdrepro.yaml"  # = environment.yml; its post-deploy script installs gdrepro
)


def paper_dir(paper, scale="{scale}"):
    return f"results/{scale}/{paper}"


def paper_file(paper, path, scale="{scale}"):
    """A file in the paper's results folder (layout: see gdrepro.paper)."""
    return f"{paper_dir(paper, scale)}/{path}"


def seed_runs(paper):
    """The per-seed outputs of a paper at the scale in the wildcards."""
    return lambda wc: [paper_file(paper, f"runs/seed{s}.npz", wc.scale) for s in SEEDS]


# an alias: a line that starts with `report(` would parse as the `report:` directive
for_report = report


def figure_files(paper, scale="{scale}", annotate=True):
    """The paper's figures; as rule outputs they are annotated for `snakemake --report`."""
    names = papers.get(paper).figures
    files = [paper_file(paper, f"figures/{n}.png", scale) for n in names]
    if not annotate:
        return files
    return [
        for_report(
            f,
            caption="../report/figure.rst",
            category=paper,
            subcategory="figures",
            labels={"paper": paper, "figure": n},
        )
        for f, n in zip(files, names)
    ]


def gdrepro(paper, stage, seed=False, gpu=False):
    """Shell command for one stage; Snakemake owns the DAG, so the CLI never runs upstream stages.

    The job uses as many BLAS/torch threads as the rule's `threads` (1 unless it asks for more).
    `gpu=True` (training rules with `resources: gpu`) makes the job take its own device on a
    multi-GPU machine (gdrepro.gpu_slots); without GPUs it runs on the CPU as before.
    """
    overrides = config["overrides"].get(paper, {})
    sets = " ".join(
        f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in overrides.items()
    )
    seeds = " ".join(str(s) for s in SEEDS)
    return (
        f"{'GDREPRO_GPU_SLOT=1 ' if gpu else ''}GDREPRO_THREADS={{threads}} gdrepro {paper} {stage} --scale {{wildcards.scale}} "
        f"--out {paper_dir(paper, '{wildcards.scale}')} "
        f"--seeds {seeds} {'--seed {wildcards.seed}' if seed else ''} {sets} --no-deps "
        f"> {{log}} 2>&1"
    )


EXTERNAL = os.environ.get("GDREPRO_EXTERNAL_DATA", "external")


def external_inputs(paper):
    """At paper scale: the public datasets the paper downloads (rule external_dataset, once)."""
    names = papers.get(paper).external
    return lambda wc: (
        [f"{EXTERNAL}/.fetched/{n}" for n in names] if wc.scale == "paper" else []
    )


def paper_sources(paper):
    """The paper's code: a change to the method reruns its pipeline."""
    root = Path(workflow.basedir) / "src" / "gdrepro" / "papers" / paper
    return sorted(str(p) for p in root.glob("*.py"))


def house_sources():
    """The shared code that judges claims and writes reports."""
    root = Path(workflow.basedir) / "src" / "gdrepro"
    return [str(root / f) for f in ("claims.py", "report.py", "metrics.py")]


def report_outputs(scale):
    return [f"results/{scale}/REPORT.md"] + [
        f"{paper_dir(p, scale)}/claims.md" for p in PAPERS
    ]
