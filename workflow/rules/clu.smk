# clu: Huang et al. (2025), UG-CLU task-agnostic continual learning-unlearning.
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule clu_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("clu"),
        external=external_inputs("clu"),
    output:
        paper_file("clu", "prepared.json"),
    log:
        paper_file("clu", "logs/prepare.log"),
    benchmark:
        paper_file("clu", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("clu", "prepare")


rule clu_train:
    input:
        rules.clu_prepare.output,
        code=paper_sources("clu"),
    output:
        paper_file("clu", "runs/seed{seed}.npz"),
    log:
        paper_file("clu", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("clu", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc: 16000 if wc.scale == "paper" else 2000,
        gpu=lambda wc: 1 if wc.scale == "paper" else 0,  # ResNet-18 on CIFAR-10 / TinyImageNet at paper scale
        runtime=lambda wc: 2880 if wc.scale == "paper" else 60,
    shell:
        gdrepro("clu", "train", seed=True, gpu=True)


rule clu_evaluate:
    input:
        rules.clu_prepare.output,
        seed_runs("clu"),
        code=paper_sources("clu"),
    output:
        paper_file("clu", "metrics.json"),
        paper_file("clu", "tables/class.csv"),
    log:
        paper_file("clu", "logs/evaluate.log"),
    benchmark:
        paper_file("clu", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("clu", "evaluate")


rule clu_figures:
    input:
        paper_file("clu", "metrics.json"),
        seed_runs("clu"),
        code=paper_sources("clu"),
    output:
        figure_files("clu"),
    log:
        paper_file("clu", "logs/figures.log"),
    benchmark:
        paper_file("clu", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("clu", "figures")
