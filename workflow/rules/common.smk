# Paths, the scale, and the `gdrepro` command line shared by every rule. Paths come from
# gdrepro.layout, the one results layout the CLI and the report use too.

import json
import os
import shlex

from gdrepro import layout

SCALE = config["scale"]
SEEDS = config["seeds"]
PAPERS = config.get("papers", list(papers.SLUGS))
# the declarations are light: no paper code loads here
DECLARED = {slug: papers.get(slug) for slug in PAPERS}


wildcard_constraints:
    scale="|".join(layout.SCALES),
    seed=r"\d+",


CONDA_ENV = (
    "../envs/gdrepro.yaml"  # = environment.yml; its post-deploy script installs gdrepro
)


def paper_file(paper, path, scale="{scale}"):
    """A file in the paper's results folder."""
    return f"{layout.paper_dir(scale, paper)}/{path}"


# an alias: a line that starts with `report(` would parse as the `report:` directive
for_report = report


def caption_file(paper, figure):
    """The declared caption of a figure as an rst file for `snakemake --report` (written at parse
    time under .snakemake/, from the paper's declaration)."""
    path = Path(
        ".snakemake", "gdrepro_captions", paper, f"{figure.name}.rst"
    ).absolute()
    supports = (
        f" Supports claim(s): {', '.join(figure.claims)}." if figure.claims else ""
    )
    text = (
        f"{figure.caption}{supports}\n\nRedrawn from the ``{{{{ snakemake.wildcards.scale }}}}``-scale "
        f"runs (code: ``src/gdrepro/papers/{paper}/figures.py``, ``{figure.draw}``).\n"
    )
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(path)


def figure_files(paper, scale="{scale}", annotate=True):
    """The paper's figures; as rule outputs they are annotated for `snakemake --report`."""
    figures = DECLARED[paper].figures
    files = [paper_file(paper, layout.figure_file(f.name), scale) for f in figures]
    if not annotate:
        return files
    return [
        for_report(
            path,
            caption=caption_file(paper, f),
            category=paper,
            subcategory="figures",
            labels={"paper": paper, "figure": f.name},
        )
        for path, f in zip(files, figures)
    ]


# One shell command for every paper job; what differs between jobs comes in as params (a
# `shell` expression is evaluated again when the job runs, so it must not use loop variables).
JOB_SHELL = (
    "{params.gpu_slot}GDREPRO_THREADS={threads} gdrepro {params.paper} {params.stage} "
    "--scale {wildcards.scale} "
    f"--out {layout.paper_dir('{wildcards.scale}', '{params.paper}')} "
    "--seeds {params.seeds} {params.seed} {params.sets} --no-deps > {log} 2>&1"
)


def job_params(paper, stage, seed=False, gpu=False):
    """The params of one stage's `gdrepro` call; Snakemake owns the DAG, so the CLI never runs
    upstream stages.

    The job uses as many BLAS/torch threads as the rule's `threads`. `gpu=True` (a job that
    trains on a GPU) makes it take its own device on a multi-GPU machine (gdrepro.gpu_slots);
    without GPUs it runs on the CPU as before.
    """
    overrides = config["overrides"].get(paper, {})
    return {
        "gpu_slot": "GDREPRO_GPU_SLOT=1 " if gpu else "",
        "paper": paper,
        "stage": stage,
        "seeds": " ".join(str(s) for s in SEEDS),
        "seed": "--seed {seed}" if seed else "",
        "sets": " ".join(
            f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in overrides.items()
        ),
    }


EXTERNAL = os.environ.get("GDREPRO_EXTERNAL_DATA", "external")


def external_inputs(paper):
    """At paper scale: the public datasets the paper downloads (rule external_dataset, once)."""
    names = DECLARED[paper].external
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
    return [
        str(root / f)
        for f in ("claims.py", "verdicts.py", "report.py", "metrics.py", "tables.py")
    ]


def record_invocation(argv, config):
    """Write the command line and config of this run where `gdrepro report` reads them."""
    path = Path(layout.INVOCATION)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["snakemake", *argv[1:]])
    path.write_text(json.dumps({"command": command, "config": dict(config)}, indent=1))


def job_resources(paper, stage):
    """The declared resources of a job at this run's scale (gdrepro.paper.Resources); a GPU job
    goes to the config's `gpu_partition` on SLURM."""
    spec = DECLARED[paper].job_resources(stage, SCALE)
    res = {"mem_mb": spec.mem_mb}
    if spec.runtime is not None:
        res["runtime"] = spec.runtime
    if spec.gpu:
        res["gpu"] = spec.gpu
        res["slurm_partition"] = config["gpu_partition"]
    return spec.threads, res


def report_outputs(scale):
    return [f"{layout.scale_dir(scale)}/{layout.REPORT}"] + [
        paper_file(p, layout.CLAIMS_MD, scale) for p in PAPERS
    ]
