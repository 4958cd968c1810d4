# amppo: Sane (2025), AM-PPO advantage alpha-modulation on MuJoCo (gymnasium).
# prepare -> train (one job per seed: PPO, AM-PPO and AM-PPO with full-batch gating norm,
# checkpointed per iteration) -> evaluate -> figures; claims and report in report.smk.


rule amppo_prepare:
    input:
        data="results/{scale}/data.json",
        code=paper_sources("amppo"),
    output:
        paper_file("amppo", "prepared.json"),
    log:
        paper_file("amppo", "logs/prepare.log"),
    benchmark:
        paper_file("amppo", "benchmarks/prepare.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("amppo", "prepare")


rule amppo_train:
    input:
        rules.amppo_prepare.output,
        code=paper_sources("amppo"),
    output:
        paper_file("amppo", "runs/seed{seed}.npz"),
    log:
        paper_file("amppo", "logs/train_seed{seed}.log"),
    benchmark:
        paper_file("amppo", "benchmarks/train_seed{seed}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=lambda wc: 240 if wc.scale == "paper" else 30,  # CPU-bound: MuJoCo + 64-64 MLPs
    shell:
        gdrepro("amppo", "train", seed=True)


rule amppo_evaluate:
    input:
        rules.amppo_prepare.output,
        seed_runs("amppo"),
        code=paper_sources("amppo"),
    output:
        paper_file("amppo", "metrics.json"),
    log:
        paper_file("amppo", "logs/evaluate.log"),
    benchmark:
        paper_file("amppo", "benchmarks/evaluate.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("amppo", "evaluate")


rule amppo_figures:
    input:
        paper_file("amppo", "metrics.json"),
        seed_runs("amppo"),
        code=paper_sources("amppo"),
    output:
        figure_files("amppo"),
    log:
        paper_file("amppo", "logs/figures.log"),
    benchmark:
        paper_file("amppo", "benchmarks/figures.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        gdrepro("amppo", "figures")
