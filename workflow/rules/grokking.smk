# grokking: AlQuabeh, Bojkovic, Nwadike & Inui (2025), grokking and the embedding layer.
# prepare -> train (one job per seed) -> evaluate -> figures; claims and report in report.smk.


rule grokking_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("grokking"),
    output:
        paper_file("grokking", "prepared.json"),
    log:
        paper_file("grokking", "logs/prepare.log"),
    benchmark:
        paper_file("grokking", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("grokking", "prepare")


rule grokking_train:
    input:
        rules.grokking_prepare.output,
        code=paper_sources("grokking"),
    output:
        paper_file("grokking", "runs/seed{seed}.npz"),
    log:
        paper_file("grokking", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("grokking", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc: 8000 if wc.scale == "paper" else 2000,
        gpu=lambda wc: 1 if wc.scale == "paper" else 0,  # 4 tasks x c sweep at paper scale
        runtime=lambda wc: 720 if wc.scale == "paper" else 30,
    shell:
        gdrepro("grokking", "train", seed=True, gpu=True)


rule grokking_evaluate:
    input:
        rules.grokking_prepare.output,
        seed_runs("grokking"),
        code=paper_sources("grokking"),
    output:
        paper_file("grokking", "metrics.json"),
        paper_file("grokking", "tables/runs.csv"),
    log:
        paper_file("grokking", "logs/evaluate.log"),
    benchmark:
        paper_file("grokking", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("grokking", "evaluate")


rule grokking_figures:
    input:
        paper_file("grokking", "metrics.json"),
        seed_runs("grokking"),
        code=paper_sources("grokking"),
    output:
        figure_files("grokking"),
    log:
        paper_file("grokking", "logs/figures.log"),
    benchmark:
        paper_file("grokking", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        gdrepro("grokking", "figures")
