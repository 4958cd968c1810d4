# aacbr: Gould & Toni (2025), Gradual AA-CBR (neuro-argumentative case-based classification).
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule aacbr_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("aacbr"),
        external=external_inputs("aacbr"),
    output:
        paper_file("aacbr", "prepared.json"),
    log:
        paper_file("aacbr", "logs/prepare.log"),
    benchmark:
        paper_file("aacbr", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("aacbr", "prepare")


rule aacbr_train:
    input:
        rules.aacbr_prepare.output,
        code=paper_sources("aacbr"),
    output:
        paper_file("aacbr", "runs/seed{seed}.npz"),
    log:
        paper_file("aacbr", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("aacbr", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc: 16000 if wc.scale == "paper" else 2000,
        gpu=lambda wc: 1 if wc.scale == "paper" else 0,  # n^3 blockers, n = 364-536 cases
        runtime=lambda wc: 600 if wc.scale == "paper" else 30,
    shell:
        gdrepro("aacbr", "train", seed=True, gpu=True)


rule aacbr_evaluate:
    input:
        rules.aacbr_prepare.output,
        seed_runs("aacbr"),
        code=paper_sources("aacbr"),
    output:
        paper_file("aacbr", "metrics.json"),
        paper_file("aacbr", "tables/accuracy.csv"),
    log:
        paper_file("aacbr", "logs/evaluate.log"),
    benchmark:
        paper_file("aacbr", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("aacbr", "evaluate")


rule aacbr_figures:
    input:
        paper_file("aacbr", "metrics.json"),
        seed_runs("aacbr"),
        code=paper_sources("aacbr"),
    output:
        figure_files("aacbr"),
    log:
        paper_file("aacbr", "logs/figures.log"),
    benchmark:
        paper_file("aacbr", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("aacbr", "figures")
