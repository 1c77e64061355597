"""The local executor: the runner as a subprocess on this machine. Weaker than docker; for when no
Docker daemon is available.

What it enforces (each claim has a test in tests/test_sandbox_hostile.py):
- per test: wall-clock limit with the whole process group killed, CPU seconds, address space, file
  size, no core dumps; stray processes (setsid, double fork) are killed after every test;
- a fresh temporary directory per attempt, removed afterwards; a scrubbed environment (the program
  never sees this process's variables);
- when running as root: each concurrent attempt runs as its own unprivileged uid (61000 + slot, no
  login, owns no files) with a process limit, so it cannot signal the runner, this tool or another
  attempt, read files private to root, or write outside world-writable directories; and in a
  private network namespace with no interfaces, so it cannot open a network connection.
What it does NOT protect against (use docker for these):
- when NOT root: the program runs as your own user. It can read and write whatever you can
  (your home directory included), signal your processes, and reach the network; no process limit
  applies (RLIMIT_NPROC counts all your processes);
- even as root: the filesystem is the host's (world-writable places like /tmp are writable and
  shared between attempts), kernel vulnerabilities, and side channels.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time

from .base import Executor, RunOutcome, RunRequest, SandboxError, parse_runner_output, runner_source

UID_BASE = 61000  # uids UID_BASE .. UID_BASE + slots - 1 are the sandbox's (as root only)


def _runs_as(python: str, uid: int) -> bool:
    """Can `uid` run this interpreter and import stdlib modules lazily (a pyenv under /root cannot)?"""

    def drop() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    try:
        return subprocess.run([python, "-I", "-S", "-c", "import fractions, decimal, statistics"], preexec_fn=drop,
                              capture_output=True, timeout=20, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str | None = None, isolate_network: bool = True, slots: int = 16) -> None:
        self.is_root = os.geteuid() == 0
        self.isolate_network = isolate_network and self.is_root
        self._runner = runner_source()
        self.uids: list[int] = [UID_BASE + i for i in range(slots)] if self.is_root else []
        self._free: queue.Queue[int | None] = queue.Queue()
        for uid in self.uids or [None] * slots:
            self._free.put(uid)
        self.python = python or sys.executable
        if self.is_root:
            # Tests are forked from the runner and import modules after dropping privileges, so the
            # runner's interpreter must be readable by the sandbox uids.
            candidates = [self.python, shutil.which("python3") or "", "/usr/bin/python3", "/usr/local/bin/python3"]
            usable = [c for c in dict.fromkeys(candidates) if c and _runs_as(c, self.uids[0])]
            if not usable:
                raise SandboxError(f"no Python interpreter that an unprivileged uid may run; install python3 "
                                   "system-wide (apt-get install python3) or use --sandbox docker")
            self.python = usable[0]

    def describe(self) -> str:
        if self.is_root:
            return (f"local subprocess ({self.python}) as uids {self.uids[0]}-{self.uids[-1]}, "
                    "private network namespace, rlimits")
        return "local subprocess as your own user (no uid drop, network reachable): weaker than docker"

    def run(self, request: RunRequest) -> RunOutcome:
        uid = self._free.get()  # one uid per concurrent attempt: attempts cannot signal each other
        base = tempfile.mkdtemp(prefix="sdpo-local-")
        try:
            os.chmod(base, 0o755)
            payload = request.to_runner_json(workdir=base, drop_uid=uid, unshare_net=self.isolate_network)
            start = time.monotonic()
            # Generous outer bound: the runner enforces every per-test limit itself.
            outer = len(request.inputs) * (request.time_limit_s + 5.0) + 30.0
            try:
                proc = subprocess.run(
                    [self.python, "-I", "-S", "-c", self._runner],
                    input=payload, capture_output=True, timeout=outer, cwd=base,
                    env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                )
            except subprocess.TimeoutExpired:
                raise SandboxError(f"local runner did not finish within {outer:.0f} s") from None
            except OSError as e:
                raise SandboxError(f"cannot start the local runner ({self.python}): {e}") from None
            out = parse_runner_output(proc.stdout, proc.stderr)
            out.elapsed_s = time.monotonic() - start
            if not out.started:
                raise SandboxError(f"local runner failed to start (exit {proc.returncode}): {out.runner_stderr[-800:]}")
            return out
        finally:
            shutil.rmtree(base, ignore_errors=True)
            self._free.put(uid)
