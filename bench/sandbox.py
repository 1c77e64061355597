#!/usr/bin/env python3
"""Sandbox latency and throughput: what isolation costs per graded attempt.

    python3 bench/sandbox.py [--attempts N] [--tests 10] [--workers 2]

One attempt = one correct solution of a stdin problem with --tests tests (read n numbers, print their
sum), graded end to end. Four ways to run it:

  docker warm pool   DockerExecutor: a pre-started hardened container per attempt, one `docker exec`
  docker run         a fresh `docker run --rm` per attempt, same hardening flags, same runner
  local              LocalExecutor: the runner as a subprocess (uid drop + network namespace as root)
  bare python3       the floor: one plain `python3` subprocess per test, no isolation, no runner

Latency is the median wall time of one attempt graded alone (sequentially; for the warm pool, after
the pool has refilled and no container is being started or removed, as between two batches of the
solve loop: `DockerExecutor.wait_ready`); throughput is attempts per second
with --workers threads grading back to back (for the warm pool this includes waiting for
replacement containers: the pool's refill rate bounds it). Targets: warm pool latency at most 2x local, and
a docker run per attempt at least 3x slower than the warm pool. Set SDPO_DISCOVER_IMAGE to use
another image than the default sandbox image. Prints a markdown table; exits 1 when a target is
missed (2 when an attempt does not pass: the numbers would mean nothing).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdpo_discover.problems import Problem, problem_from_dict  # noqa: E402
from sdpo_discover.sandbox import AttemptStatus, grade_code  # noqa: E402
from sdpo_discover.sandbox.base import parse_runner_output, runner_source  # noqa: E402
from sdpo_discover.sandbox.grading import request_for, verdicts_from_outcome  # noqa: E402
from sdpo_discover.sandbox.verdicts import Verdict, stdout_matches  # noqa: E402

SOLUTION = "n = int(input())\nprint(sum(map(int, input().split())))\n"


def make_problem(n_tests: int) -> Problem:
    rng = random.Random(0)
    tests = []
    for _ in range(n_tests):
        xs = [rng.randint(-10**9, 10**9) for _ in range(rng.randint(1, 1000))]
        tests.append({"input": f"{len(xs)}\n{' '.join(map(str, xs))}\n", "output": f"{sum(xs)}\n"})
    return problem_from_dict({"id": "bench-sum", "title": "Sum", "statement": "Print the sum of n numbers.",
                              "test_type": "stdin", "time_limit_s": 2.0, "tests": tests}, "<bench>")


# -- the four ways to grade one attempt; each raises when the attempt does not pass ------------------


def via_executor(executor) -> Callable[[Problem], None]:  # noqa: ANN001
    def attempt(problem: Problem) -> None:
        r = grade_code(problem, SOLUTION, executor)
        if r.status is not AttemptStatus.PASSED:
            raise RuntimeError(f"{executor.name}: {r.status.value} {r.error} {[t.detail for t in r.tests]}")
    return attempt


def docker_run_argv(image: str, memory_mb: int = 1024, work_tmpfs_mb: int = 256) -> list[str]:
    """The same hardening as container.py's _create, as docker CLI flags, running the runner directly."""
    from sdpo_discover.sandbox.container import LABEL, OWNER_LABEL, _owner_id

    return [
        "docker", "run", "--rm", "-i", "--network", "none", "--read-only",
        "--tmpfs", f"/work:rw,nosuid,nodev,noexec,size={work_tmpfs_mb}m,uid=1000,gid=1000,mode=0755",
        "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=64m,mode=1777",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "128",
        "--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m", "--cpus", "1", "--ipc", "private",
        "--user", "1000:1000", "--workdir", "/work",
        # labelled like the pool's containers, so `reap_stale` removes any an interrupted bench leaves
        "--label", f"{LABEL}=1", "--label", f"{OWNER_LABEL}={_owner_id()}",
        image, "python3", "-I", "-S", "-c", runner_source(),
    ]


def via_docker_run(image: str) -> Callable[[Problem], None]:
    argv = docker_run_argv(image)

    def attempt(problem: Problem) -> None:
        payload = request_for(problem, SOLUTION).to_runner_json(workdir="/work")
        proc = subprocess.run(argv, input=payload, capture_output=True, timeout=120)
        out = parse_runner_output(proc.stdout, proc.stderr)
        tests = verdicts_from_outcome(problem, out)
        if not out.complete or any(t.verdict is not Verdict.PASSED for t in tests):
            raise RuntimeError(f"docker run: exit {proc.returncode} {[t.verdict.value for t in tests]} {out.runner_stderr[-500:]}")
    return attempt


def via_bare_python(problem: Problem) -> None:
    for t in problem.tests:
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", SOLUTION], input=t.input.encode(),
                              capture_output=True, timeout=30)
        if proc.returncode != 0 or not stdout_matches(proc.stdout.decode(), t.output):
            raise RuntimeError(f"bare python3: exit {proc.returncode} {proc.stderr[-300:]!r}")


# -- measuring ---------------------------------------------------------------------------------------


def measure(attempt: Callable[[Problem], None], problem: Problem, n: int, workers: int,
            settle: Callable[[], object] = lambda: None) -> dict[str, float]:
    attempt(problem)  # warm-up: imports, page cache, the pool's first containers
    lat = []
    for _ in range(n):
        settle()  # latency = an attempt that arrives when the sandbox is ready (a warm pool is warm)
        t = time.perf_counter()
        attempt(problem)
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda _: attempt(problem), range(n)))
    wall = time.perf_counter() - t
    lat.sort()
    return {"median_ms": statistics.median(lat) * 1000, "p90_ms": lat[min(len(lat) - 1, int(0.9 * len(lat)))] * 1000,
            "throughput": n / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attempts", type=int, default=15, help="attempts per mode, for latency and again for throughput (default 15)")
    ap.add_argument("--tests", type=int, default=10, help="tests per attempt (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="concurrent graders for throughput (default 2)")
    ap.add_argument("--image", default=None, help="sandbox image (default: $SDPO_DISCOVER_IMAGE or the built-in one)")
    ap.add_argument("--no-docker", action="store_true", help="only local and bare python3")
    args = ap.parse_args()

    from sdpo_discover.sandbox import docker_available
    from sdpo_discover.sandbox.container import DEFAULT_IMAGE
    from sdpo_discover.sandbox.local import LocalExecutor

    image = args.image or DEFAULT_IMAGE
    problem = make_problem(args.tests)
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    rows: dict[str, dict[str, float]] = {}
    docker_ok, why = (False, "--no-docker") if args.no_docker else docker_available(image)
    if not docker_ok:
        print(f"docker modes skipped: {why}", file=sys.stderr)

    def run(name: str, attempt: Callable[[Problem], None], settle: Callable[[], object] = lambda: None) -> None:
        print(f"measuring {name} ({args.attempts} + {args.attempts} attempts) ...", file=sys.stderr, flush=True)
        rows[name] = measure(attempt, problem, args.attempts, args.workers, settle)

    local = LocalExecutor()
    try:
        if docker_ok:
            from sdpo_discover.sandbox.container import DockerExecutor

            with DockerExecutor(image=image, pool_size=max(2, args.workers)) as ex:
                run("docker warm pool", via_executor(ex), settle=ex.wait_ready)
            run("docker run per attempt", via_docker_run(image))
        run("local", via_executor(local))
        run("bare python3 (floor)", via_bare_python)
    except RuntimeError as e:
        print(f"an attempt did not pass, no numbers: {e}", file=sys.stderr)
        return 2
    finally:
        local.close()

    print(f"\nSandbox benchmark: one attempt = {args.tests} stdin tests of a correct solution; "
          f"{args.attempts} attempts per mode; throughput with {args.workers} concurrent workers.")
    print(f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, image {image if docker_ok else '-'}; local: {local.describe()}")
    print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| mode | median latency (ms) | p90 latency (ms) | throughput (attempts/s) |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} | {r['throughput']:.2f} |")
    ok = True
    if docker_ok:
        warm, cold, loc = rows["docker warm pool"], rows["docker run per attempt"], rows["local"]
        r1 = warm["median_ms"] / loc["median_ms"]
        r2 = cold["median_ms"] / warm["median_ms"]
        t1, t2 = r1 <= 2.0, r2 >= 3.0
        ok = t1 and t2
        print("\n| ratio (median latency) | value | target | met |")
        print("|---|---:|---:|:---:|")
        print(f"| warm pool / local | {r1:.2f}x | <= 2x | {'yes' if t1 else 'NO'} |")
        print(f"| docker run / warm pool | {r2:.2f}x | >= 3x | {'yes' if t2 else 'NO'} |")
        print(f"\nthroughput ratio warm pool / local: {warm['throughput'] / loc['throughput']:.2f}x; "
              f"warm pool / docker run: {warm['throughput'] / cold['throughput']:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
