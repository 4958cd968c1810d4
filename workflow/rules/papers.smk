# Every paper's chain, generated from its declaration (gdrepro/papers/<slug>/__init__.py):
#   <slug>_prepare -> <slug>_<label> (one job per seed: simulate, train or sample)
#   -> <slug>_evaluate (metrics.json, the declared tables) -> <slug>_figures (the declared figures)
# Claims and the report are in report.smk. Resources come from the declaration at this run's scale.
# Every job runs JOB_SHELL (common.smk) with its own params.

for slug, paper in DECLARED.items():
    prepared = paper_file(slug, layout.PREPARED)
    seed_runs = [paper_file(slug, layout.run_file(s)) for s in SEEDS]
    code = paper_sources(slug)

    threads_, resources_ = job_resources(slug, "prepare")
    PARAMS = job_params(slug, "prepare", gpu=paper.asks_for_gpu("prepare"))

    rule:
        name:
            f"{slug}_prepare"
        input:
            data=f"{layout.scale_dir('{scale}')}/{layout.DATA_RECORD}",
            external=external_inputs(slug),
            code=code,
        output:
            prepared,
        log:
            paper_file(slug, layout.job_file("logs", "prepare")),
        benchmark:
            paper_file(slug, layout.job_file("benchmarks", "prepare"))
        conda:
            CONDA_ENV
        threads: threads_
        resources:
            **resources_,
        params:
            **PARAMS,
        shell:
            JOB_SHELL

    label = paper.run_label
    threads_, resources_ = job_resources(slug, label)
    PARAMS = job_params(slug, label, seed=True, gpu=paper.trains_on_gpu)

    rule:
        name:
            f"{slug}_{label}"
        input:
            prepared,
            code=code,
        output:
            paper_file(slug, layout.run_file("{seed}")),
        log:
            paper_file(slug, layout.job_file("logs", label, "{seed}")),
        benchmark:
            paper_file(slug, layout.job_file("benchmarks", label, "{seed}"))
        conda:
            CONDA_ENV
        threads: threads_
        resources:
            **resources_,
        params:
            **PARAMS,
        shell:
            JOB_SHELL

    threads_, resources_ = job_resources(slug, "evaluate")
    PARAMS = job_params(slug, "evaluate")

    rule:
        name:
            f"{slug}_evaluate"
        input:
            prepared,
            seed_runs,
            code=code,
        output:
            paper_file(slug, layout.METRICS),
            [paper_file(slug, layout.table_file(t)) for t in paper.tables],
        log:
            paper_file(slug, layout.job_file("logs", "evaluate")),
        benchmark:
            paper_file(slug, layout.job_file("benchmarks", "evaluate"))
        conda:
            CONDA_ENV
        threads: threads_
        resources:
            **resources_,
        params:
            **PARAMS,
        shell:
            JOB_SHELL

    threads_, resources_ = job_resources(slug, "figures")
    PARAMS = job_params(slug, "figures")

    rule:
        name:
            f"{slug}_figures"
        input:
            prepared,
            paper_file(slug, layout.METRICS),
            seed_runs,
            code=code,
        output:
            figure_files(slug),
        log:
            paper_file(slug, layout.job_file("logs", "figures")),
        benchmark:
            paper_file(slug, layout.job_file("benchmarks", "figures"))
        conda:
            CONDA_ENV
        threads: threads_
        resources:
            **resources_,
        params:
            **PARAMS,
        shell:
            JOB_SHELL
