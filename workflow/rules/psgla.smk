# psgla: Renaud, De Bortoli, Leclaire & Papadakis (2025), PSGLA.
# prepare -> sample (one job per seed: 2-D GMM chains, TV imaging chains, stability
# quadrature) -> evaluate -> figures; claims and report in report.smk.


rule psgla_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("psgla"),
    output:
        paper_file("psgla", "prepared.json"),
    log:
        paper_file("psgla", "logs/prepare.log"),
    benchmark:
        paper_file("psgla", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("psgla", "prepare")


rule psgla_sample:
    input:
        rules.psgla_prepare.output,
        code=paper_sources("psgla"),
    output:
        paper_file("psgla", "runs/seed{seed}.npz"),
    log:
        paper_file("psgla", "logs/sample_seed{seed}.log"),
    benchmark:
        paper_file("psgla", "benchmarks/sample_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("psgla", "sample", seed=True)


rule psgla_evaluate:
    input:
        rules.psgla_prepare.output,
        seed_runs("psgla"),
        code=paper_sources("psgla"),
    output:
        paper_file("psgla", "metrics.json"),
    log:
        paper_file("psgla", "logs/evaluate.log"),
    benchmark:
        paper_file("psgla", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("psgla", "evaluate")


rule psgla_figures:
    input:
        paper_file("psgla", "metrics.json"),
        seed_runs("psgla"),
        code=paper_sources("psgla"),
    output:
        figure_files("psgla"),
    log:
        paper_file("psgla", "logs/figures.log"),
    benchmark:
        paper_file("psgla", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("psgla", "figures")
