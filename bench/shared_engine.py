#!/usr/bin/env python3
"""Runs sharing one vLLM engine against the same runs one after another (issue 13, item 5), and grading
while the batch is sampled (`overlap_grading`, issue 15 item 5) against grading after it.

    python3 bench/shared_engine.py [--methods best-of-k,multi-turn] [--budget 32] [--workers 2]
                                   [--problems problems/cpu-hard/percent-round.json,problems/cpu-hard/lower-median.json]
                                   [--sandbox docker] [--out runs/shared-engine]

For each method, three benches of the same runs (each problem once: the best-of-k pool, or seed 0), with
the default model and the vllm sampler, through the product's own `sdpo_discover.bench.run`:

  no overlap   --workers 1, overlap_grading off: each batch graded after it is sampled
  sequential   --workers 1, overlap_grading on (each sample graded as soon as it ends); one
               engine, the runs one after another
  shared       --workers W: W runs at once in threads of one process, sharing one engine (each run's adapter
               versions its own LoRA requests; their batches sampled in the same engine steps)

The default problems pass 0 of 64 samples of the default model (problems/cpu-hard/ metadata): a
run rarely stops early, so both benches make (nearly) the same attempts; the table counts what they made.
It reports the seconds the runs took (the bench's wall time less the one model load and engine start, from
timing.json), attempts per second, the shared bench's speed-up, the most sequences the engine held at once,
and how many attempts have the same tokens in both benches (the per-sequence seeds make them equal unless the
engine's batch composition changes a float rounding). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PROBLEMS = "problems/cpu-hard/percent-round.json,problems/cpu-hard/lower-median.json"  # 0/64: no run stops early


def one_bench(out: Path, problems: list[Path], method: str, budget: int, workers: int, sandbox: str,
              overlap: bool = True) -> dict:
    from sdpo_discover.bench import BenchDir, run
    from sdpo_discover.store import RunDir, read_jsonl

    if out.exists():
        shutil.rmtree(out)
    engine: dict = {}

    def on_event(kind: str, payload: dict) -> None:
        if kind == "engine":
            engine.update(payload)

    t0 = time.monotonic()
    run(problems, out=out, methods=[method], seeds=[0], budget=budget, pool=budget, workers=workers,
        settings={"sampler": "vllm", "sandbox": sandbox, "overlap_grading": overlap}, on_event=on_event)
    wall = time.monotonic() - t0
    timing = json.loads((out / "timing.json").read_text())["sessions"][-1]
    bench = BenchDir(out)
    tokens, attempts, gen, ex = {}, 0, 0.0, 0.0
    for r in bench.load_plan().runs:
        rows = read_jsonl(RunDir(bench.run_dir(r)).attempts)
        attempts += len(rows)
        tokens[r.problem] = [a["token_ids"] for a in rows]
        for st in read_jsonl(RunDir(bench.run_dir(r)).steps):
            gen, ex = gen + st["generate_s"], ex + st["execute_s"]  # ex: grading left after generation
    runs_s = timing["runs_s"]
    return {"wall_s": wall, "runs_s": runs_s, "load_s": timing.get("model_load_s", 0.0), "attempts": attempts,
            "per_s": attempts / runs_s, "peak": engine.get("peak_sequences"), "tokens": tokens,
            "generate_s": gen, "grade_after_s": ex}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="best-of-k,multi-turn")
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS)
    ap.add_argument("--sandbox", default="docker")
    ap.add_argument("--out", default="runs/shared-engine")
    a = ap.parse_args()
    problems = [ROOT / p if not Path(p).is_absolute() else Path(p) for p in a.problems.split(",")]
    out = Path(a.out)
    rows = []
    for method in a.methods.split(","):
        arms = [("no overlap (W=1, overlap_grading off)", one_bench(out / f"{method}-no-overlap", problems, method,
                                                                     a.budget, 1, a.sandbox, overlap=False))]
        arms.append(("sequential (W=1)", one_bench(out / f"{method}-sequential", problems, method, a.budget, 1,
                                                   a.sandbox)))
        arms.append((f"shared (W={a.workers})", one_bench(out / f"{method}-shared", problems, method, a.budget,
                                                          a.workers, a.sandbox)))
        rows.append((method, arms))
        print(f"[{method}] " + ", ".join(f"{name}: {r['runs_s']:.0f} s" for name, r in arms), file=sys.stderr)
    print(f"\n{len(problems)} runs per bench (one per problem), budget {a.budget} each, batch 16\n")
    print("| method | bench | runs' seconds | attempts | attempts/s | against sequential | generation s "
          "| grading s after generation | engine's peak sequences | same tokens as sequential |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, arms in rows:
        seq = arms[1][1]
        for name, r in arms:
            same = sum(x == y for p in seq["tokens"] for x, y in zip(seq["tokens"][p], r["tokens"].get(p, [])))
            print(f"| {method} | {name} | {r['runs_s']:.0f} | {r['attempts']} | {r['per_s']:.3f} "
                  f"| {r['per_s'] / seq['per_s']:.2f}x | {r['generate_s']:.0f} | {r['grade_after_s']:.1f} "
                  f"| {r['peak']} | {same}/{r['attempts']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
