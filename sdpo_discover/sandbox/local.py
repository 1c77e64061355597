"""The local executor: the runner as a subprocess on this machine. Weaker than docker; for when no
Docker daemon is available.

What it enforces (each claim has a test in tests/test_sandbox_hostile.py):
- per test: wall-clock limit with the whole process group killed, CPU seconds, address space, file
  size, no core dumps; stray processes (setsid, double fork) are killed after every test;
- a fresh temporary directory per attempt, removed afterwards; a scrubbed environment (the program
  never sees this process's variables);
- when running as root: the program runs as an unprivileged uid (`nobody`) with a process limit, so
  it cannot signal the runner or this tool, read files private to root, or write outside
  world-writable directories; and in a private network namespace with no interfaces, so it cannot
  open a network connection.
What it does NOT protect against (use docker for these):
- when NOT root: the program runs as your own user. It can read and write whatever you can
  (your home directory included), signal your processes, and reach the network; no process limit
  applies (RLIMIT_NPROC counts all your processes);
- even as root: the filesystem is the host's (world-writable places like /tmp are writable),
  kernel vulnerabilities, and side channels.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from .base import Executor, RunOutcome, RunRequest, SandboxError, parse_runner_output, runner_source


def _nobody_uid() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def _runs_as(python: str, uid: int) -> bool:
    def drop() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    try:
        return subprocess.run([python, "-I", "-S", "-c", "pass"], preexec_fn=drop, capture_output=True,
                              timeout=20, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str | None = None, isolate_network: bool = True) -> None:
        self.python = python or sys.executable
        self.is_root = os.geteuid() == 0
        self.drop_uid = _nobody_uid() if self.is_root else None
        self.isolate_network = isolate_network and self.is_root
        self._runner = runner_source()
        # The unprivileged child needs a Python it may execute (a pyenv under /root is not one).
        self.child_python = self.python
        if self.drop_uid is not None:
            candidates = [self.python, shutil.which("python3") or "", "/usr/bin/python3", "/usr/local/bin/python3"]
            usable = [c for c in dict.fromkeys(candidates) if c and _runs_as(c, self.drop_uid)]
            if not usable:
                raise SandboxError(f"no Python interpreter that uid {self.drop_uid} may run; install python3 "
                                   "system-wide (apt-get install python3) or use --sandbox docker")
            self.child_python = usable[0]

    def describe(self) -> str:
        if self.is_root:
            return f"local subprocess as uid {self.drop_uid}, private network namespace, rlimits"
        return "local subprocess as your own user (no uid drop, network reachable): weaker than docker"

    def run(self, request: RunRequest) -> RunOutcome:
        base = tempfile.mkdtemp(prefix="sdpo-local-")
        os.chmod(base, 0o755)
        try:
            payload = request.to_runner_json(
                workdir=base, drop_uid=self.drop_uid, unshare_net=self.isolate_network,
                child_python=self.child_python,
            )
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
