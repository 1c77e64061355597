#!/usr/bin/env python3
"""Per-attempt wall time of `sdpo-discover solve` (SDPO) against plain sampling, on a CPU.

    python3 bench/solve_cpu.py [--model qwen2.5-coder-0.5b] [--budget 32] [--batch-size 16]
                               [--problem problems/digit-sum-range.json] [--sandbox docker|local]
                               [--max-new-tokens 512] [--only sdpo|plain] [--keep DIR] [--quick]

Runs the real command twice, each in its own process, on a problem the model does not solve within
the budget (so both runs spend every attempt):

  sdpo     sdpo-discover solve PROBLEM --budget B --batch-size G --sandbox S --seed 0 --json
  plain    the same with --method best-of-k: the same loop, model (without a LoRA adapter: at zero init it
           changes nothing), sampler, seed, batch size and sandbox, no update (best-of-k sampling)

and reads the split of each step from the run directory's steps.jsonl (generate_s, execute_s,
update_s) and summary.json. One-off costs (interpreter, imports, model load, LoRA attach: from the
process start to the run's `start` event) are reported apart from the loop. The loop skips the update
after the last batch (no attempt would use it), so a run of B/G steps makes B/G - 1 updates; the
steady-state column counts one update per batch, as in a long run. Target: SDPO's steady-state time
per attempt at most 1.5x plain sampling's. `--only sdpo` skips the plain run and compares the SDPO
run's update with its own generation + execution (the same work as plain sampling's, under the same
load: use it on a busy machine). The defaults (2 steps of 16, 512 new tokens) are sized to take
about 15-20 minutes on an idle 2-core machine, by the rates in docs/reference/MODELS.md; a loaded one takes longer. Prints markdown tables; exits 1 when the target is missed,
2 when a run failed or solved the problem early (the attempt counts would differ: no ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 1.5


def _events(proc: subprocess.Popen, t0: float, name: str):  # noqa: ANN202
    """(seconds since t0, event) for each JSON line the run prints, as it arrives."""
    for line in proc.stdout:  # type: ignore[union-attr]
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        now = time.monotonic() - t0
        if ev.get("event") == "step":
            print(f"  [{now:6.0f}s] {name} step {ev['step']}: {ev['passed']}/{ev['attempts']} passed, "
                  f"gen {ev['generate_s']:.0f}s exec {ev['execute_s']:.1f}s upd {ev['update_s']:.0f}s "
                  f"loss {ev['loss']}", file=sys.stderr, flush=True)
        yield now, ev


def run_solve(args: argparse.Namespace, learn: bool, out: Path) -> dict:
    """One `solve` process; returns its summary, step records, and the one-off set-up time."""
    argv = [sys.executable, "-m", "sdpo_discover.cli", "solve", str(args.problem), "--budget", str(args.budget),
            "--batch-size", str(args.batch_size), "--model", args.model, "--sampler", "hf", "--sandbox", args.sandbox,
            "--seed", str(args.seed), "--out", str(out), "--json", "--set", f"max_new_tokens={args.max_new_tokens}"]
    if args.gen_batch_size:
        argv += ["--set", f"gen_batch_size={args.gen_batch_size}"]
    argv += [x for s in args.set for x in ("--set", s)]
    if not learn:
        argv += ["--method", "best-of-k"]
    name = "sdpo" if learn else "plain"
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv[3:])}", file=sys.stderr, flush=True)
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    t_start = t_done = None
    errf = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty stderr cannot block the run
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=errf, text=True)
    assert proc.stdout is not None
    try:
        events = list(_events(proc, t0, name))
    except BaseException:  # Ctrl-C, SIGTERM: stop the run too (it cleans up its sandbox and stays resumable)
        proc.terminate()
        proc.wait()
        raise
    for now, ev in events:
        if ev.get("event") == "start":
            t_start = now
        elif ev.get("event") == "done":
            t_done = now
    rc = proc.wait()
    errf.seek(0)
    stderr = errf.read()
    wall = time.monotonic() - t0
    summary_path = out / "summary.json"
    if not summary_path.exists() or t_start is None:
        raise RuntimeError(f"{name}: solve exited {rc} without a summary:\n{stderr[-2000:]}")
    summary = json.loads(summary_path.read_text())
    steps = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines() if x.strip()]
    attempts = [json.loads(x) for x in (out / "attempts.jsonl").read_text().splitlines() if x.strip()]
    model = json.loads((out / "config.json").read_text()).get("model", {})
    return {"name": name, "model": model, "rc": rc, "summary": summary, "steps": steps, "attempts": attempts,
            "setup_s": t_start, "loop_s": (t_done or wall) - t_start, "process_s": wall,
            "load": (load0, os.getloadavg()[0])}


def per_attempt(r: dict) -> dict:
    steps, n = r["steps"], r["summary"]["attempts_used"]
    gen = sum(s["generate_s"] for s in steps)
    exe = sum(s["execute_s"] for s in steps)
    upd = sum(s["update_s"] for s in steps)
    updates = [s["update_s"] for s in steps if s["loss"] is not None]
    other = r["loop_s"] - gen - exe - upd  # the loop's own bookkeeping: records, state.json, the plot
    tokens = [a["n_tokens"] for a in r["attempts"]]
    # steady state: every batch followed by an update (a long run), at this run's mean update time
    upd_each = statistics.mean(updates) if updates else 0.0
    steady = (gen + exe + other) / n + upd_each * len(steps) / n
    return {"n": n, "steps": len(steps), "updates": len(updates), "gen": gen / n, "exe": exe / n, "upd": upd / n,
            "other": other / n, "total": r["loop_s"] / n, "steady": steady, "upd_each": upd_each,
            "tok_mean": statistics.mean(tokens) if tokens else 0.0, "tok_total": sum(tokens),
            "gen_tok_s": sum(tokens) / gen if gen else 0.0, "truncated": sum(a["truncated"] for a in r["attempts"]),
            "verdicts": {k: sum(s["verdicts"].get(k, 0) for s in steps) for k in
                         sorted({k for s in steps for k in s["verdicts"]})},
            "update_tokens": sum(s["tokens"] for s in steps)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="model preset or folder (default qwen2.5-coder-0.5b)")
    ap.add_argument("--problem", type=Path, default=ROOT / "problems" / "digit-sum-range.json",
                    help="a problem the model does not solve within the budget (default problems/digit-sum-range.json)")
    ap.add_argument("--budget", type=int, default=32, help="attempts per run (default 32: 2 steps of 16, one update)")
    ap.add_argument("--batch-size", type=int, default=16, help="attempts per step (default 16, as solve)")
    ap.add_argument("--gen-batch-size", type=int, default=0, help="sequences per generate call (default: solve's)")
    ap.add_argument("--max-new-tokens", type=int, default=512, help="per attempt (default 512; solve's is 1024)")
    ap.add_argument("--sandbox", default=None, help="docker (default when available) or local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE passed to both runs (solve --set)")
    ap.add_argument("--only", choices=("sdpo", "plain"), default=None, help="run one mode only (sdpo: the ratio against its own generation + execution)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run directories under this folder")
    ap.add_argument("--quick", action="store_true", help="smollm2-135m, budget 16 in steps of 8, 256 tokens")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.quick:  # smaller defaults; options given explicitly still count
        for name, default, quick in (("model", "qwen2.5-coder-0.5b", "smollm2-135m"), ("budget", 32, 16),
                                     ("batch_size", 16, 8), ("max_new_tokens", 512, 256)):
            if getattr(args, name) == default:
                setattr(args, name, quick)
    if args.sandbox is None:
        from sdpo_discover.sandbox import docker_available
        from sdpo_discover.sandbox.container import DEFAULT_IMAGE

        ok, why = docker_available(DEFAULT_IMAGE)
        args.sandbox = "docker" if ok else "local"
        if not ok:
            print(f"docker unavailable ({why}): using the local sandbox", file=sys.stderr)

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-solve-"))
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs: dict[str, dict] = {}
    uptime0 = os.getloadavg()
    try:
        for learn in (False, True):  # plain first: it also warms the page cache for the model files equally
            name = "sdpo" if learn else "plain"
            if args.only and args.only != name:
                continue
            runs[name] = run_solve(args, learn, root / f"{name}-{stamp}")
    except RuntimeError as e:
        print(f"a run failed, no numbers: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return report(args, runs, uptime0, os.getloadavg())


def report(args: argparse.Namespace, runs: dict[str, dict], uptime0: tuple, uptime1: tuple) -> int:
    solved = [n for n, r in runs.items() if r["summary"]["solved"]]
    prob = json.loads(args.problem.read_text())
    m = runs[next(iter(runs))]["model"]
    print(f"\nSolve benchmark: {prob['id']} ({len(prob['tests'])} tests), model {args.model}, hf sampler, "
          f"sandbox {args.sandbox}, budget {args.budget} in batches of {args.batch_size}, "
          f"max_new_tokens {args.max_new_tokens}, seed {args.seed}"
          f", temperature {m.get('temperature')}, top-p {m.get('top_p')}.")
    print(f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; load average (1/5/15 min) {uptime0[0]:.1f}/{uptime0[1]:.1f}/"
          f"{uptime0[2]:.1f} before, {uptime1[0]:.1f}/{uptime1[1]:.1f}/{uptime1[2]:.1f} after")
    print(f"solved within the budget: {', '.join(solved) if solved else 'neither run (both spent every attempt)'}\n")

    pa = {n: per_attempt(r) for n, r in runs.items()}
    print("| run | attempts | steps | updates | generation (s/attempt) | execution (s/attempt) | update (s/attempt) "
          "| other (s/attempt) | loop total (s/attempt) | steady state (s/attempt) | one-off set-up (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, p in pa.items():
        print(f"| {n} | {p['n']} | {p['steps']} | {p['updates']} | {p['gen']:.2f} | {p['exe']:.2f} | {p['upd']:.2f} | "
              f"{p['other']:.2f} | {p['total']:.2f} | {p['steady']:.2f} | {runs[n]['setup_s']:.0f} |")
    print("\n| run | tokens/attempt (mean) | generated tok/s | truncated | verdicts | one update (s) | tokens taught |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for n, p in pa.items():
        v = ", ".join(f"{k} {c}" for k, c in p["verdicts"].items())
        print(f"| {n} | {p['tok_mean']:.0f} | {p['gen_tok_s']:.1f} | {p['truncated']} | {v} | "
              f"{p['upd_each']:.0f} | {p['update_tokens']} |")
    for n, r in runs.items():
        print(f"\n{n}: per step (gen / exec / update s): "
              + "; ".join(f"{s['generate_s']:.0f} / {s['execute_s']:.1f} / {s['update_s']:.0f}" for s in r["steps"])
              + f"; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}")
    if "sdpo" in pa and "plain" not in pa and not solved:  # --only sdpo: the same work under the same load
        s = pa["sdpo"]
        r_within = s["steady"] / (s["gen"] + s["exe"] + s["other"])
        met = r_within <= TARGET
        print("\n| ratio SDPO / plain (per attempt), SDPO run alone | value | target | met |")
        print("|---|---:|---:|:---:|")
        print(f"| steady state: (generation + execution + other + one update per batch) / (generation + execution + "
              f"other) | {r_within:.2f}x | <= {TARGET}x | {'yes' if met else 'NO'} |")
        return 0 if met else 1
    if "sdpo" not in pa or "plain" not in pa:
        return 0
    if solved:
        print("\nA run solved the problem before spending the budget: the attempt counts differ, no ratio.")
        return 2
    s, p = pa["sdpo"], pa["plain"]
    r_loop, r_steady = s["total"] / p["total"], s["steady"] / p["total"]
    # generation alone depends on how long the attempts are: after an update they are no longer the same samples
    r_gen_tok = (s["gen"] / max(s["tok_mean"], 1)) / (p["gen"] / max(p["tok_mean"], 1))
    # The same work under the same load: step 0 samples the same attempts in both runs (same seed, the
    # adapter's B = 0), and SDPO's own generation + execution is what plain sampling would have cost it.
    steps_s = runs["sdpo"]["steps"]
    r_within = (s["gen"] + s["exe"] + s["other"] + s["upd_each"] * len(steps_s) / s["n"]) / (s["gen"] + s["exe"] + s["other"])
    same0 = runs["sdpo"]["attempts"][0]["token_ids"] == runs["plain"]["attempts"][0]["token_ids"]
    g0s, g0p = runs["sdpo"]["steps"][0]["generate_s"], runs["plain"]["steps"][0]["generate_s"]
    met = r_steady <= TARGET
    print("\n| ratio SDPO / plain (per attempt) | value | target | met |")
    print("|---|---:|---:|:---:|")
    print(f"| steady state (an update after every batch) | {r_steady:.2f}x | <= {TARGET}x | {'yes' if met else 'NO'} |")
    print(f"| this run ({s['updates']} updates in {s['steps']} steps) | {r_loop:.2f}x | | |")
    print(f"| steady state, SDPO run alone (its own generation + execution as the baseline) | {r_within:.2f}x | | |")
    print(f"| generation per generated token | {r_gen_tok:.2f}x | | |")
    print(f"\nstep 0 is the same work in both runs (first attempt identical: {'yes' if same0 else 'no'}): generation "
          f"{g0s:.0f}s in the SDPO run, {g0p:.0f}s in the plain run ({g0s / g0p:.2f}x: the load changed by that much)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
