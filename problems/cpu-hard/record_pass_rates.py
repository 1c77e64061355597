#!/usr/bin/env python3
"""Write each problem's measured base pass rate into its metadata, from a screening bench of best-of-k pools:

    sdpo-discover bench problems/cpu-hard/ --methods best-of-k --pool 64 --budget 64 --out SCREEN
    python3 problems/cpu-hard/record_pass_rates.py SCREEN

metadata.base_pass_rate = {passed, samples, rate, settings (model, its fingerprint, sampler, dtype, temperature,
top-p, top-k, max_new_tokens, thinking), measured (the pool's date), command}. make_problems.py keeps it when it
regenerates the files. Problems the bench has no finished pool for are left as they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    screen = Path(sys.argv[1])
    plan = json.loads((screen / "plan.json").read_text())
    for run in plan["runs"]:
        if run["seed"] is not None:
            continue
        folder = screen / "runs" / run["id"]
        if not (folder / "summary.json").is_file():
            continue
        summary = json.loads((folder / "summary.json").read_text())
        if summary.get("stopped") == "interrupted":
            continue
        attempts = [json.loads(line) for line in (folder / "attempts.jsonl").read_text().splitlines() if line.strip()]
        cfg = json.loads((folder / "config.json").read_text())
        s, model = cfg["config"], cfg.get("model", {})
        passed = sum(a["status"] == "passed" for a in attempts)
        record = {
            "passed": passed, "samples": len(attempts), "rate": round(passed / len(attempts), 4),
            "settings": {"model": s["model"], "fingerprint": model.get("fingerprint"), "sampler": s["sampler"],
                         "dtype": s["dtype"], "temperature": model.get("temperature"), "top_p": model.get("top_p"),
                         "top_k": s["top_k"], "max_new_tokens": s["max_new_tokens"], "thinking": s["thinking"],
                         "batch_size": s["batch_size"], "seed": s["seed"]},
            "measured": cfg.get("created", ""),
            "command": "sdpo-discover " + " ".join(plan.get("command", [])),
        }
        path = HERE / f"{run['problem']}.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text(encoding="utf-8"))
        d.setdefault("metadata", {})["base_pass_rate"] = record
        path.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
        print(f"{run['problem']}: {passed}/{len(attempts)}")


if __name__ == "__main__":
    main()
