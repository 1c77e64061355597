#!/usr/bin/env python3
"""stop_at_loop measured offline, on saved samples that were sampled with it off.

    python3 bench/stop_at_loop.py [LABEL=]GLOB...      e.g. 'sdpo=runs/discovery-cpu-10/runs/*/sdpo'

Each argument is one row: every attempts.jsonl under the folders its glob matches (quote it). For each sample, the rule the samplers apply
(vllm_worker.loop_check: at a multiple of 8 tokens, the last 128 or more tokens are one block of at most
64 tokens repeated 3 times or more) is run on each prefix of its tokens, as a sampler would while it
samples. Sampling is token by token given the prefix, so where the rule fires the sample with the setting
on is this prefix, cut off; where it never fires the sample is the same. Exact, not an estimate, except
for time. It reports:

  samples           the saved samples (and how many ran to max_new_tokens: "cut at the cap")
  rule fired        samples the rule would have cut, and of those, how many had ended by themselves
                    (a stop token or the answer's end: these are the rule's false alarms)
  fired at          the token at which it fired (min / max)
  tokens            generated tokens per sample without the rule and with it
  had passed        cut samples that had passed: the only ones whose verdict the rule could change for the
                    worse (a cut sample is graded as cut off: a format error unless a complete block came first)

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdpo_discover.vllm_worker import loop_check  # noqa: E402


def first_fire(ids: list[int]) -> int | None:
    return next((k for k in range(8, len(ids) + 1, 8) if loop_check(ids[:k])), None)


def measure(folders: list[Path]) -> dict:
    rows = [json.loads(line) for folder in folders for f in sorted(folder.rglob("attempts.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]
    fired, natural, passed, at = 0, 0, 0, []
    before = after = 0
    for a in rows:
        ids = a["token_ids"]
        k = first_fire(ids)
        before += len(ids)
        after += len(ids) if k is None else k
        if k is not None:
            fired += 1
            at.append(k)
            natural += not a["truncated"]
            passed += a["status"] == "passed"
    return {"samples": len(rows), "capped": sum(bool(a["truncated"]) for a in rows), "fired": fired,
            "natural": natural, "passed": passed, "at": (min(at), max(at)) if at else None,
            "before": before / max(len(rows), 1), "after": after / max(len(rows), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", nargs="+", metavar="[LABEL=]GLOB")
    args = ap.parse_args()
    print("| samples | samples (cut at the cap) | rule fired | of which had ended by themselves | fired at token | "
          "tokens/sample: without | with | had passed |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for row in args.rows:
        label, _, pattern = row.rpartition("=")
        folders = sorted(Path(p) for p in glob.glob(pattern))
        if not folders:
            sys.exit(f"{pattern}: no such folder")
        m = measure(folders)
        label = label or pattern
        at = "—" if m["at"] is None else f"{m['at'][0]}–{m['at'][1]}"
        print(f"| {label} | {m['samples']} ({m['capped']}) | {m['fired']} | {m['natural']} | {at} | "
              f"{m['before']:.1f} | {m['after']:.1f} ({1 - m['after'] / max(m['before'], 1e-9):.1%} fewer) | {m['passed']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
