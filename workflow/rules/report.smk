# Data check, the paper scale's downloads, claim verdicts for every paper, and the roll-up REPORT.md.


rule data:
    input:
        "data.dvc",
    output:
        "results/{scale}/data.json",
    log:
        "results/{scale}/logs/data.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "gdrepro data verify --build-missing --out {output} > {log} 2>&1"


rule external_dataset:
    output:
        f"{EXTERNAL}/.fetched/{{name}}",
    log:
        "results/logs/external_{name}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "gdrepro external fetch {wildcards.name} > {log} 2>&1"


rule claims:
    input:
        metrics="results/{scale}/{paper}/metrics.json",
        claims="src/gdrepro/papers/{paper}/claims.yaml",
        # the summary run in MLflow carries the figures beside the verdicts
        figures=lambda wc: figure_files(wc.paper, wc.scale, annotate=False),
        code=house_sources(),
    output:
        "results/{scale}/{paper}/claims.md",
        "results/{scale}/{paper}/claims.json",
        "results/{scale}/{paper}/tables/claims.csv",
        report(
            "results/{scale}/{paper}/tables/claims.html",
            caption="../report/claims.rst",
            category="{paper}",
            subcategory="claims",
            labels={"paper": "{paper}", "table": "claims"},
        ),
    log:
        "results/{scale}/{paper}/logs/claims.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "gdrepro {wildcards.paper} claims --scale {wildcards.scale} "
        "--out results/{wildcards.scale}/{wildcards.paper} --no-deps > {log} 2>&1"


rule report:
    input:
        claims=lambda wc: expand(
            "results/{scale}/{paper}/claims.json", scale=wc.scale, paper=PAPERS
        ),
        figures=lambda wc: [
            f for p in PAPERS for f in figure_files(p, wc.scale, annotate=False)
        ],
        code=house_sources(),
    output:
        "results/{scale}/REPORT.md",
        "results/{scale}/summary.csv",
        report(
            "results/{scale}/summary.html",
            caption="../report/summary.rst",
            category="summary",
            labels={"table": "verdicts per paper"},
        ),
    log:
        "results/{scale}/logs/report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "gdrepro report --scale {wildcards.scale} --results results/{wildcards.scale} "
        f"--papers {' '.join(PAPERS)} > {{log}} 2>&1"
