#!/usr/bin/env python3
"""Script a batch of benches from Python with `sdpo_discover.bench.run` (the API behind `sdpo-discover bench`).

    python3 bench/api_example.py QUESTIONS.jsonl OUT_DIR [--ray-address auto]

Runs SDPO against best-of-k on the questions, once per learning rate, each as its own bench directory, then
prints each one's discovery@budget and headline ratio from its results.json. Everything else (resume after
a crash, reports) is the command's: `sdpo-discover bench --resume --out DIR`, `sdpo-discover report DIR`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdpo_discover.bench import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("questions", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--budget", type=int, default=64)
    args = ap.parse_args()
    for lr in (1e-4, 3e-5):
        out = args.out / f"lr-{lr:g}"
        bench_dir = run([args.questions], out=out, methods=["sdpo", "best-of-k"], seeds=[0, 1], budget=args.budget,
                        settings={"sdpo": {"lr": lr}}, resume=(out / "plan.json").exists(),
                        ray_address=args.ray_address)
        res = json.loads((bench_dir / "results.json").read_text())
        at_budget = {m: d["mean"] for m, d in res["discovery_at_budget"].items()}
        head = next((h for h in res["headline"] if h.get("p") is not None), None)
        print(f"lr {lr:g}: discovery@{res['budget']} {at_budget}; "
              + (f"best-of-k/sdpo attempts {head['attempt_ratio']} and seconds {head['time_ratio']} at p={head['p']}"
                 if head else "no ratio (a method never succeeded)"))


if __name__ == "__main__":
    main()
