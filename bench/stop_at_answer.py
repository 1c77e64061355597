"""What stop_at_answer does to real samples, measured offline on saved best-of-k pools (issue 15, item 2).

    python bench/stop_at_answer.py BENCH_DIR [BENCH_DIR...]

The pools were sampled to the end of each response (stop_at_answer off). Stopping is a function of the
prefix alone, and every token is sampled given its prefix, so a pool's sample cut where prompts.answer_end
fires IS the sample the same seed would have given with the setting on. Its tokens and its graded program
can therefore be measured exactly on the saved samples, without sampling again. (vLLM's seeded sampler draws
the same tokens for the same prefix; with the setting on it also continues a sample after a stub block in a
new round, which this reproduces: the cut is the same.)

Prints, per bench and in all: samples; tokens per attempt to the end and to the answer; samples cut short;
samples with two or more ```python blocks; samples whose graded program (sandbox/grading.extract_code)
differs, and how many of those had passed. Standard library plus the model's tokenizer (`tokenizers`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tokenizers import Tokenizer

from sdpo_discover.prompts import answer_end
from sdpo_discover.sandbox.grading import extract_code

PY_OPEN = re.compile(r"^[ \t]*```[ \t]*(python|py|python3|py3)?[ \t]*$", re.MULTILINE)


def measure(bench: Path, tok: Tokenizer) -> dict[str, float]:
    def dec(ids: list[int]) -> str:
        return tok.decode(ids, skip_special_tokens=True)

    n = before = after = cut = multi = changed = changed_passed = passed = 0
    for f in sorted(bench.glob("runs/*/best-of-k/pool/attempts.jsonl")):
        for line in f.read_text().splitlines():
            a = json.loads(line)
            ids, text = a["token_ids"], dec(a["token_ids"])
            n, before, passed = n + 1, before + len(ids), passed + (a["status"] == "passed")
            multi += sum(1 for m in PY_OPEN.finditer(text) if m.group(1)) >= 2
            if answer_end(text) is None:
                after += len(ids)
                continue
            lo, hi = 1, len(ids)  # the fewest tokens whose text holds the answer (monotone in the prefix)
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if answer_end(dec(ids[:mid])) is not None else (mid + 1, hi)
            after += lo
            cut += lo < len(ids) and dec(ids[lo:]).strip() != ""  # something but an end token followed
            if extract_code(dec(ids[:lo]))[0] != extract_code(text)[0]:
                changed, changed_passed = changed + 1, changed_passed + (a["status"] == "passed")
    return {"samples": n, "passed": passed, "tokens_before": before / max(n, 1), "tokens_after": after / max(n, 1),
            "cut_short": cut, "two_blocks": multi, "program_changed": changed, "changed_passed": changed_passed}


def main() -> None:
    from sdpo_discover.models import cache_dir

    tok = Tokenizer.from_file(str(cache_dir() / "models" / "qwen2.5-coder-0.5b" / "tokenizer.json"))
    rows = [(str(b), measure(Path(b), tok)) for b in sys.argv[1:]]
    if len(rows) > 1:
        tot = {k: sum(r[k] for _, r in rows) for k in rows[0][1]}
        for k in ("tokens_before", "tokens_after"):
            tot[k] = sum(r[k] * r["samples"] for _, r in rows) / tot["samples"]
        rows.append(("all", tot))
    print("| pools | samples (passed) | tokens/attempt: to the end | to the answer | cut short | ≥2 python blocks "
          "| graded program differs (had passed) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['samples']} ({r['passed']}) | {r['tokens_before']:.1f} | {r['tokens_after']:.1f} "
              f"({100 * (1 - r['tokens_after'] / r['tokens_before']):.1f}% fewer) | {r['cut_short']} | {r['two_blocks']} "
              f"| {r['program_changed']} ({r['changed_passed']}) |")


if __name__ == "__main__":
    main()
