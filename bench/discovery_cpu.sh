#!/usr/bin/env bash
# The CPU-scale discovery bench (issue 12, item 5): SDPO against best-of-k and multi-turn on the problems of
# problems/cpu-hard/ (each rarely but not never solved by the default model: base pass rates in its metadata),
# with the default model at its preset sampling, sized to finish within about 2 hours on a 2-core machine.
#
#   bash bench/discovery_cpu.sh [OUT_DIR] [extra bench options...]
#
# Defaults: 2 seeds, budget 64, best-of-k pool 64, the vLLM sampler when its venv is installed
# (scripts/setup-vllm; about 5x the hf sampler's speed on this CPU), the Docker sandbox when available.
# Killed? Run it again with the same OUT_DIR: it resumes (finished runs are kept).
# The table, plot and timings go in bench/README.md ("bench/discovery_cpu.sh").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-runs/discovery-cpu}
shift || true
SAMPLER=hf
if ./scripts/setup-vllm --print-venv >/dev/null 2>&1 && [ -x "$(./scripts/setup-vllm --print-venv)/bin/python" ]; then
    SAMPLER=vllm
fi
if [ -f "$OUT/plan.json" ]; then
    exec sdpo-discover bench --resume --out "$OUT" "$@"
fi
exec sdpo-discover bench problems/cpu-hard/ --methods sdpo,best-of-k,multi-turn --seeds 2 --budget 64 --pool 64 \
    --sampler "$SAMPLER" --out "$OUT" "$@"
