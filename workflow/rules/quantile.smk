# quantile: Chen, Keilbar & Wu (2025), smoothed SGD for quantiles.
# prepare -> simulate (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule quantile_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("quantile"),
    output:
        paper_file("quantile", "prepared.json"),
    log:
        paper_file("quantile", "logs/prepare.log"),
    benchmark:
        paper_file("quantile", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("quantile", "prepare")


rule quantile_simulate:
    input:
        rules.quantile_prepare.output,
        code=paper_sources("quantile"),
    output:
        paper_file("quantile", "runs/seed{seed}.npz"),
    log:
        paper_file("quantile", "logs/simulate_seed{seed}.log"),
    benchmark:
        paper_file("quantile", "benchmarks/simulate_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("quantile", "simulate", seed=True)


rule quantile_evaluate:
    input:
        rules.quantile_prepare.output,
        seed_runs("quantile"),
        code=paper_sources("quantile"),
    output:
        paper_file("quantile", "metrics.json"),
        paper_file("quantile", "tables/levels.csv"),
    log:
        paper_file("quantile", "logs/evaluate.log"),
    benchmark:
        paper_file("quantile", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("quantile", "evaluate")


rule quantile_figures:
    input:
        paper_file("quantile", "metrics.json"),
        seed_runs("quantile"),
        code=paper_sources("quantile"),
    output:
        figure_files("quantile"),
    log:
        paper_file("quantile", "logs/figures.log"),
    benchmark:
        paper_file("quantile", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("quantile", "figures")
