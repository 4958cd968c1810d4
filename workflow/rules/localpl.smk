# localpl: Xu et al. (2025), local PL and descent lemma of GD for overparametrized linear models.
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule localpl_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("localpl"),
    output:
        paper_file("localpl", "prepared.json"),
    log:
        paper_file("localpl", "logs/prepare.log"),
    benchmark:
        paper_file("localpl", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("localpl", "prepare")


rule localpl_train:
    input:
        rules.localpl_prepare.output,
        code=paper_sources("localpl"),
    output:
        paper_file("localpl", "runs/seed{seed}.npz"),
    log:
        paper_file("localpl", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("localpl", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("localpl", "train", seed=True)


rule localpl_evaluate:
    input:
        rules.localpl_prepare.output,
        seed_runs("localpl"),
        code=paper_sources("localpl"),
    output:
        paper_file("localpl", "metrics.json"),
        paper_file("localpl", "tables/iterations.csv"),
        paper_file("localpl", "tables/by_scale.csv"),
    log:
        paper_file("localpl", "logs/evaluate.log"),
    benchmark:
        paper_file("localpl", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("localpl", "evaluate")


rule localpl_figures:
    input:
        paper_file("localpl", "metrics.json"),
        seed_runs("localpl"),
        code=paper_sources("localpl"),
    output:
        figure_files("localpl"),
    log:
        paper_file("localpl", "logs/figures.log"),
    benchmark:
        paper_file("localpl", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("localpl", "figures")
