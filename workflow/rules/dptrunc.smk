# dptrunc: Zampetakis & Zhou (2025), private statistical estimation via truncation.
# prepare -> simulate (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule dptrunc_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("dptrunc"),
    output:
        paper_file("dptrunc", "prepared.json"),
    log:
        paper_file("dptrunc", "logs/prepare.log"),
    benchmark:
        paper_file("dptrunc", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("dptrunc", "prepare")


rule dptrunc_simulate:
    input:
        rules.dptrunc_prepare.output,
        code=paper_sources("dptrunc"),
    output:
        paper_file("dptrunc", "runs/seed{seed}.npz"),
    log:
        paper_file("dptrunc", "logs/simulate_seed{seed}.log"),
    benchmark:
        paper_file("dptrunc", "benchmarks/simulate_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("dptrunc", "simulate", seed=True)


rule dptrunc_evaluate:
    input:
        rules.dptrunc_prepare.output,
        seed_runs("dptrunc"),
        code=paper_sources("dptrunc"),
    output:
        paper_file("dptrunc", "metrics.json"),
        paper_file("dptrunc", "tables/mean_rmse.csv"),
        paper_file("dptrunc", "tables/cov_rmse.csv"),
    log:
        paper_file("dptrunc", "logs/evaluate.log"),
    benchmark:
        paper_file("dptrunc", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("dptrunc", "evaluate")


rule dptrunc_figures:
    input:
        rules.dptrunc_prepare.output,
        paper_file("dptrunc", "metrics.json"),
        seed_runs("dptrunc"),
        code=paper_sources("dptrunc"),
    output:
        figure_files("dptrunc"),
    log:
        paper_file("dptrunc", "logs/figures.log"),
    benchmark:
        paper_file("dptrunc", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("dptrunc", "figures")
