#!/usr/bin/env bash
# Snakemake runs this once after building the conda env (--use-conda): install the gdrepro
# package itself, from the repository Snakemake runs in (GDREPRO_ROOT overrides).
set -euo pipefail
python -m pip install --no-deps -e "${GDREPRO_ROOT:-.}"
