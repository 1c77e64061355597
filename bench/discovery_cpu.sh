#!/usr/bin/env bash
# The CPU-scale discovery bench (issue 12, item 5): SDPO against best-of-k and multi-turn on the problems of
# problems/cpu-hard/ (each rarely but not never solved by the default model: base pass rates in its metadata),
# with the default model at its preset sampling, sized to finish within about 2 hours on a 2-core machine.
#
#   bash bench/discovery_cpu.sh [OUT_DIR] [extra bench options...]
#
# The suite: the problems of problems/cpu-hard/ whose measured base pass rate (metadata.base_pass_rate, written
# by problems/cpu-hard/record_pass_rates.py from a screening bench) lies in the band 1/64 to 1/8.
# Defaults: 1 seed, budget 64, best-of-k pool 64, the vLLM sampler when its venv is installed
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
mapfile -t SUITE < <(python3 - <<'EOF'
import json, pathlib
for f in sorted(pathlib.Path("problems/cpu-hard").glob("*.json")):
    r = json.loads(f.read_text()).get("metadata", {}).get("base_pass_rate")
    if r and 1 / 64 <= r["passed"] / r["samples"] <= 1 / 8:
        print(f)
EOF
)
if [ "${#SUITE[@]}" -eq 0 ]; then
    echo "no problem of problems/cpu-hard/ has a measured base pass rate in the band (record_pass_rates.py)" >&2
    exit 2
fi
echo "the suite: ${#SUITE[@]} problems with a base pass rate in 1/64..1/8" >&2
exec sdpo-discover bench "${SUITE[@]}" --methods sdpo,best-of-k,multi-turn --seeds 1 --budget 64 --pool 64 \
    --sampler "$SAMPLER" --out "$OUT" "$@"
