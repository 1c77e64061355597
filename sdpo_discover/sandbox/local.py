"""The local executor: the runner as a subprocess on this machine. Weaker than docker; for when no
Docker daemon is available.

What it enforces (each claim has a test in tests/test_sandbox_hostile.py):
- per test (runner.py): the time limit and a hard wall-clock limit with the whole process group
  killed, address space, file size, no core dumps; stray processes (setsid, double fork) are killed after every test;
- a fresh temporary directory per attempt, removed afterwards; a scrubbed environment (the program
  never sees this process's variables);
- when running as root: each concurrent attempt runs as its own unprivileged uid (61000 + slot, no
  login, owns no files) with a process limit, so it cannot signal the runner, this tool or another
  attempt, or read files private to root; in a private network namespace with no interfaces, so it
  cannot open a network connection; and in a private mount namespace (runner.private_filesystem):
  every mount read-only and nosuid, its own empty /tmp, /var/tmp and /dev/shm (tmpfs, 64 MiB each)
  and its work directory (tmpfs, 256 MiB) the only writable places, so a write anywhere else fails
  and nothing it writes reaches the host or another attempt.
What it does NOT protect against (use docker for these; `exposed()` says it in words, and
`sandbox doctor` prints it):
- when NOT root: the program runs as your own user. It can read and write whatever you can
  (your home directory included), signal your processes, and reach the network; no process limit
  applies (RLIMIT_NPROC counts all your processes);
- as root where the kernel refuses namespaces (an unprivileged container, a kernel before 5.12
  for mount_setattr): without the mount namespace the program may write to the host's
  world-writable places (/tmp, /var/tmp, /dev/shm), shared with other attempts; without the
  network namespace it reaches the network. The executor probes once and says which it got;
- even with both: the program reads what its uid may (world-readable files, other processes'
  command lines in /proc), may connect to world-writable unix sockets on the host, and shares the
  kernel with no seccomp filter (exploits, side channels).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time

from .base import (Executor, RunOutcome, RunRequest, SandboxError, outer_timeout_s, parse_runner_output,
                   runner_source)

UID_BASE = 61000  # uids UID_BASE .. UID_BASE + slots - 1 are the sandbox's (as root only)
RUNNER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


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


PROBE_CODE = "import fractions, decimal, statistics"  # modules a test imports lazily, as its uid


def _refused(python: str, runner: str, uid: int, **isolation: bool) -> str | None:
    """Run one test as `uid` with this isolation: None if it ran and imported what tests import, else why not."""
    base = tempfile.mkdtemp(prefix="sdpo-local-probe-")
    try:
        os.chmod(base, 0o755)
        payload = RunRequest(code=PROBE_CODE, test_type="stdin", inputs=[""]).to_runner_json(
            workdir=base, drop_uid=uid, **isolation)
        proc = subprocess.run([python, "-I", "-S", "-c", runner], input=payload, capture_output=True, timeout=60,
                              cwd=base, env=RUNNER_ENV)
        out = parse_runner_output(proc.stdout, proc.stderr)
        if not out.complete:
            return out.runner_stderr.strip() or f"the runner exited with {proc.returncode}"
        rec = out.records[0] if out.records else {}
        if rec.get("exit_code") != 0:
            return f"a test could not import the standard library: {rec.get('stderr', '')[-300:].strip()}"
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    finally:
        shutil.rmtree(base, ignore_errors=True)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str | None = None, isolate_network: bool = True, private_fs: bool = True,
                 slots: int = 16) -> None:
        self.is_root = os.geteuid() == 0
        self.isolate_network = isolate_network and self.is_root
        self.private_fs = private_fs and self.is_root
        self.refused: dict[str, str] = {}  # isolation the kernel refused here -> why
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
            self._probe()

    def _probe(self) -> None:
        """Ask the kernel, once, for the namespaces this executor means to use (one runner start when it
        grants both), and check that a test still imports the standard library inside them (it would not
        if this interpreter lived under /tmp); keep the ones that work and remember why the others did not."""
        wanted = {"unshare_net": self.isolate_network, "private_fs": self.private_fs}
        if not any(wanted.values()) or _refused(self.python, self._runner, self.uids[0], **wanted) is None:
            return
        for flag in [k for k, v in wanted.items() if v]:
            why = _refused(self.python, self._runner, self.uids[0], **{flag: True})
            if why is not None:
                self.refused[flag] = why
        self.isolate_network = self.isolate_network and "unshare_net" not in self.refused
        self.private_fs = self.private_fs and "private_fs" not in self.refused

    def describe(self) -> str:
        if not self.is_root:
            return ("local subprocess as your own user (no uid drop, no private network or filesystem): "
                    "weaker than docker")
        parts = [f"local subprocess ({self.python}) as uids {self.uids[0]}-{self.uids[-1]}"]
        parts.append("private network namespace" if self.isolate_network else "NO private network namespace")
        parts.append("private read-only filesystem (own /tmp, /var/tmp, /dev/shm)" if self.private_fs
                     else "NO private filesystem")
        return ", ".join(parts + ["rlimits"])

    def exposed(self) -> list[str]:
        """What an attempt can still reach on this machine, in plain words: the weakest first."""
        if not self.is_root:
            return ["everything your user can: it runs as you, so it can read and write your files (your home "
                    "directory included), signal your processes and use the network, with no process limit "
                    "(run as root, or use docker)"]

        def why(flag: str, what: str) -> str:
            return f"the kernel refused {what} ({self.refused[flag]})" if flag in self.refused else f"{what} turned off"

        out = []
        if not self.isolate_network:
            out.append(f"the network: {why('unshare_net', 'a network namespace')}")
        if not self.private_fs:
            out.append("the host's world-writable places (/tmp, /var/tmp, /dev/shm, ...), shared with other attempts: "
                       f"{why('private_fs', 'a private mount namespace')}")
        out.append("what its unprivileged uid may read (world-readable files, other processes' command lines in /proc) "
                   "and world-writable unix sockets on the host")
        out.append("the host's kernel, with no seccomp filter narrowing its system calls (exploits, side channels)")
        return out

    def run(self, request: RunRequest) -> RunOutcome:
        uid = self._free.get()  # one uid per concurrent attempt: attempts cannot signal each other
        base = tempfile.mkdtemp(prefix="sdpo-local-")
        try:
            os.chmod(base, 0o755)
            payload = request.to_runner_json(workdir=base, drop_uid=uid, unshare_net=self.isolate_network,
                                             private_fs=self.private_fs)
            start = time.monotonic()
            outer = outer_timeout_s(request)
            try:
                proc = subprocess.run(
                    [self.python, "-I", "-S", "-c", self._runner],
                    input=payload, capture_output=True, timeout=outer, cwd=base, env=RUNNER_ENV,
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
