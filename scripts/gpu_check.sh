#!/usr/bin/env bash
# On a CUDA machine: is the GPU path right, and how fast is paper-scale training?
#
#   bash scripts/gpu_check.sh            # from the repository root, after pip install -e ".[test]"
#
# 1. every paper's smoke run on CUDA gives the CPU's metrics up to float noise (tests/test_cuda.py);
# 2. each stage declared to train on a GPU runs briefly at paper settings (Paper.brief shortens the budget) and
#    prints its throughput line.
set -euo pipefail
export GDREPRO_TRACKING=off
python - <<'PY'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA device"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
python -m pytest -q tests/test_cuda.py
out=$(mktemp -d)
# one line per paper whose declaration says its per-seed stage trains on a GPU (Resources(gpu=1)):
# slug|stage label|--set options of its shortened paper budget (brief)|public datasets it downloads
python - > "$out/gpu_papers" <<'PY'
from gdrepro import papers
for slug in papers.SLUGS:
    paper = papers.get(slug)
    if paper.trains_on_gpu:
        sets = " ".join(f"--set {k}={v}" for k, v in paper.brief.items())
        print(f"{slug}|{paper.run_label}|{sets}|{' '.join(paper.external)}")
PY
while IFS='|' read -r paper stage sets external; do
    [ -n "$external" ] && gdrepro external fetch $external  # needs the network once
    echo "== $paper $stage at paper settings, shortened: $sets"
    start=$(date +%s)
    GDREPRO_DEVICE=cuda gdrepro "$paper" "$stage" --scale paper --out "$out/$paper" --seed 0 $sets 2>&1 | tail -3
    echo "   $(( $(date +%s) - start )) s wall"
done < "$out/gpu_papers"
