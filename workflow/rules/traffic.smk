# traffic: Lei et al. (2025), PIML traffic flow models with multi-gradient descent.
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule traffic_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("traffic"),
    output:
        paper_file("traffic", "prepared.json"),
    log:
        paper_file("traffic", "logs/prepare.log"),
    benchmark:
        paper_file("traffic", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("traffic", "prepare")


rule traffic_train:
    input:
        rules.traffic_prepare.output,
        code=paper_sources("traffic"),
    output:
        paper_file("traffic", "runs/seed{seed}.npz"),
    log:
        paper_file("traffic", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("traffic", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=lambda wc: 600 if wc.scale == "paper" else 20,
        gpu=lambda wc: 1 if wc.scale == "paper" else 0,
    shell:
        gdrepro("traffic", "train", seed=True, gpu=True)


rule traffic_evaluate:
    input:
        rules.traffic_prepare.output,
        seed_runs("traffic"),
        code=paper_sources("traffic"),
    output:
        paper_file("traffic", "metrics.json"),
        paper_file("traffic", "tables/macro.csv"),
        paper_file("traffic", "tables/micro.csv"),
    log:
        paper_file("traffic", "logs/evaluate.log"),
    benchmark:
        paper_file("traffic", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("traffic", "evaluate")


rule traffic_figures:
    input:
        paper_file("traffic", "metrics.json"),
        seed_runs("traffic"),
        code=paper_sources("traffic"),
    output:
        figure_files("traffic"),
    log:
        paper_file("traffic", "logs/figures.log"),
    benchmark:
        paper_file("traffic", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("traffic", "figures")
