#!/usr/bin/env python3
"""Grading while the batch is sampled (`overlap_grading`, issue 15 item 5) against grading after it.

    python3 bench/overlap.py [--methods best-of-k,multi-turn] [--budget 32] [--sandbox docker]
                             [--problems problems/cpu-hard/percent-round.json,problems/cpu-hard/lower-median.json]
                             [--out runs/overlap]

For each setting (on, off), one bench of the same runs (each problem once: the best-of-k pool, multi-turn seed 0)
with the default model and sampler, through the product's own `sdpo_discover.bench.run`. It reports, summed
over the runs' steps (steps.jsonl): generation seconds, the grading seconds left after generation (all of the
grading when off; the rest of it when on), and seconds per attempt. With the vllm sampler each sequence is
graded as soon as it ends; with hf, as each gen_batch_size sub-batch ends (one sub-batch by default: no overlap).
The default problems pass 0 of 64 samples (problems/cpu-hard/ metadata), so no run stops early. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PROBLEMS = "problems/cpu-hard/percent-round.json,problems/cpu-hard/lower-median.json"


def main() -> int:
    from sdpo_discover.bench import BenchDir, run
    from sdpo_discover.store import RunDir, read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="best-of-k,multi-turn")
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS)
    ap.add_argument("--sandbox", default="docker")
    ap.add_argument("--sampler", default="vllm")
    ap.add_argument("--out", default="runs/overlap")
    a = ap.parse_args()
    problems = [ROOT / p if not Path(p).is_absolute() else Path(p) for p in a.problems.split(",")]
    rows = []
    for overlap in (False, True):
        out = Path(a.out) / ("on" if overlap else "off")
        if out.exists():
            shutil.rmtree(out)
        run(problems, out=out, methods=a.methods.split(","), seeds=[0], budget=a.budget, pool=a.budget,
            settings={"sampler": a.sampler, "sandbox": a.sandbox, "overlap_grading": overlap})
        bench = BenchDir(out)
        for method in a.methods.split(","):
            steps = [s for r in bench.load_plan().runs if r.method == method
                     for s in read_jsonl(RunDir(bench.run_dir(r)).steps)]
            n = sum(s["attempts"] for s in steps)
            gen, ex = sum(s["generate_s"] for s in steps), sum(s["execute_s"] for s in steps)
            rows.append((method, overlap, n, gen, ex))
    print(f"\n{len(problems)} problems, budget {a.budget} per run, sampler {a.sampler}, sandbox {a.sandbox}\n")
    print("| method | overlap_grading | attempts | generation s | grading s after generation | s/attempt |")
    print("|---|---|---|---|---|---|")
    for method, overlap, n, gen, ex in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {method} | {'on' if overlap else 'off'} | {n} | {gen:.0f} | {ex:.1f} | {(gen + ex) / n:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
