# gdrepro: `snakemake --cores all` re-runs every paper at the configured scale.
# Rules live in workflow/rules/ and are generated from the paper registry (gdrepro.papers);
# all logic lives in the gdrepro package (the `gdrepro` CLI).

from gdrepro import papers
from gdrepro.config import apply_overrides, validate_config
from gdrepro.errors import GdreproError


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


try:
    validate_config(config)
    for slug in config.get("papers", papers.SLUGS):
        papers.get(slug)
    # fail now, not in a job (this loads the code of the papers with overrides)
    for slug, settings in config["overrides"].items():
        apply_overrides(papers.get(slug).settings[config["scale"]], settings, slug)
except GdreproError as error:
    sys.exit(f"gdrepro: error: {error}")


include: "workflow/rules/common.smk"
include: "workflow/rules/papers.smk"
include: "workflow/rules/report.smk"


onstart:
    shell("gdrepro tracking init")
    # REPORT.md records the command and config it was produced with (read by `gdrepro report`)
    record_invocation(sys.argv, config)


rule all:
    default_target: True
    input:
        report_outputs(SCALE),
