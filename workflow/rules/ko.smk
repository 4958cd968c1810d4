# ko: Feng, Huang, Fu, Wang & Yan (2025), KO kinetics-inspired optimizer.
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule ko_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("ko"),
        external=external_inputs("ko"),
    output:
        paper_file("ko", "prepared.json"),
    log:
        paper_file("ko", "logs/prepare.log"),
    benchmark:
        paper_file("ko", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("ko", "prepare")


rule ko_train:
    input:
        rules.ko_prepare.output,
        code=paper_sources("ko"),
    output:
        paper_file("ko", "runs/seed{seed}.npz"),
    log:
        paper_file("ko", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("ko", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc: 16000 if wc.scale == "paper" else 2000,
        gpu=lambda wc: 1 if wc.scale == "paper" else 0,  # ResNet-18 on CIFAR at paper scale
        runtime=lambda wc: 1440 if wc.scale == "paper" else 60,
    shell:
        gdrepro("ko", "train", seed=True, gpu=True)


rule ko_evaluate:
    input:
        rules.ko_prepare.output,
        seed_runs("ko"),
        code=paper_sources("ko"),
    output:
        paper_file("ko", "metrics.json"),
        paper_file("ko", "tables/arms.csv"),
    log:
        paper_file("ko", "logs/evaluate.log"),
    benchmark:
        paper_file("ko", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("ko", "evaluate")


rule ko_figures:
    input:
        paper_file("ko", "metrics.json"),
        seed_runs("ko"),
        code=paper_sources("ko"),
    output:
        figure_files("ko"),
    log:
        paper_file("ko", "logs/figures.log"),
    benchmark:
        paper_file("ko", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("ko", "figures")
