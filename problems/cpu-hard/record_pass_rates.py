#!/usr/bin/env python3
"""Write each problem's measured base pass rate into its metadata, from a screening bench of best-of-k pools:

    sdpo-discover bench problems/cpu-hard/ --methods best-of-k --pool 64 --budget 64 --out SCREEN
    python3 problems/cpu-hard/record_pass_rates.py SCREEN
    python3 problems/cpu-hard/record_pass_rates.py --table SCREEN [SCREEN...]   # bench/README.md's table

metadata.base_pass_rate = {passed, samples, rate, settings (model, its fingerprint, sampler, dtype, temperature,
top-p, top-k, max_new_tokens, thinking), measured (the pool's date), command}. make_problems.py keeps it when it
regenerates the files. Problems the bench has no finished pool for are left as they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table(screens: list[Path]) -> None:
    """The screening table of bench/README.md: one row per pool of the given screening benches."""
    print("| problem | passed | rate | in 1/64–1/8 | no code | mean tokens | generation s/attempt | grading s/attempt |")
    print("|---|---:|---:|:---:|---:|---:|---:|---:|")
    for screen in screens:
        for folder in sorted((screen / "runs").glob("*/best-of-k/pool")):
            lines = (folder / "attempts.jsonl").read_text().splitlines() if (folder / "summary.json").is_file() else []
            a = [json.loads(x) for x in lines if x.strip()]
            if not a:
                continue
            passed, n = sum(x["status"] == "passed" for x in a), len(a)
            band = "yes" if 1 / 64 <= passed / n <= 1 / 8 else ("above" if passed / n > 1 / 8 else "no (0)")
            # no code: a block of comments only (the echoed `# YOUR CODE HERE` stub), or none at all
            stubs = sum(1 for x in a if not any(ln.strip() and not ln.strip().startswith("#")
                                                for ln in (x.get("code") or "").splitlines()))
            steps = [json.loads(x) for x in (folder / "steps.jsonl").read_text().splitlines() if x.strip()]
            print(f"| `{folder.parts[-3]}` | {passed}/{n} | {100 * passed / n:.1f}% | {band} | {stubs} | "
                  f"{sum(x['n_tokens'] for x in a) / n:.0f} | {sum(x['generate_s'] for x in steps) / n:.1f} | "
                  f"{sum(x['execute_s'] for x in steps) / n:.2f} |")


def main() -> None:
    if sys.argv[1] == "--table":
        table([Path(x) for x in sys.argv[2:]])
        return
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
