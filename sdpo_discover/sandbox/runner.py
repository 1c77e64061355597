"""The in-sandbox test runner: runs one attempt's program against every test, one child per test.

Stdlib only, Python >= 3.11, one file: the executors pass this file's source to `python3 -c` inside
the container (docker) or run it as a subprocess (local), so the image never needs rebuilding when
it changes. It reads one JSON request on stdin and writes JSON lines on stdout:

    {"event": "start", "pid": ..}                      once, before the first test
    {"event": "test", "index": i, ...}                  one per test, flushed as soon as it ends
    {"event": "done"}                                   after the last test

Results stream so that when the attempt kills the runner itself (it can: in docker both run as the
same user), the host still knows which tests finished and which test was running.

What it enforces per test (each has a test in tests/test_sandbox_hostile.py):
- wall clock: the child runs in its own session; at the deadline the whole process group is killed
  with SIGKILL (an alarm signal alone does not stop work done in C, e.g. `10**10**8`);
- processes that escape the group (setsid, double fork) are reparented to the runner, which is a
  child subreaper, and killed after each test: nothing outlives its test;
- CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS = the memory limit), file size (RLIMIT_FSIZE),
  no core dumps; with `drop_uid` (local executor running as root) the child runs as that uid with
  RLIMIT_NPROC, so it cannot signal the runner or read the caller's files;
- captured output: stdout + stderr together are capped; past the cap the child is killed and the
  test ends with an output-limit verdict;
- environment: the child gets a fixed minimal environment, never the caller's.
What it does not do: network isolation and the read-only filesystem come from the executor
(docker flags; a network namespace for local when the kernel allows it).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
STDERR_KEEP = 64 * 1024  # bytes of stderr kept for feedback (the cap on total output still applies)
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
             "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"}

# The child: executes solution.py in a namespace pre-filled with LiveCodeBench's usual imports (so
# `List[int]` or `defaultdict` work without an import), then for functional tests calls the method.
# Line numbers of solution.py are untouched. A structured error / the result goes to the fd in argv[3].
HARNESS = r'''
import sys, json, traceback, builtins
def _report(obj):
    try:
        with open(int(sys.argv[3]), "w", closefd=True) as f:
            f.write(json.dumps(obj))
    except OSError:
        pass
def _frames(tb):
    out = []
    for fr in traceback.extract_tb(tb):
        if fr.filename == "solution.py":
            out.append({"lineno": fr.lineno, "name": fr.name, "line": (fr.line or "").strip()})
    return out
mode, func = sys.argv[1], sys.argv[2]
builtins.exit = builtins.quit = sys.exit
src = open("solution.py", encoding="utf-8").read()
ns = {"__name__": "__main__", "__builtins__": builtins}
exec("from typing import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\n"
     "from itertools import *\nfrom functools import *\nfrom math import *\nimport sys, math, re, "
     "collections, heapq, bisect, itertools, functools, string, random, json", ns)
try:
    code = compile(src, "solution.py", "exec")
    exec(code, ns)
    if mode == "functional":
        args = [json.loads(l) for l in sys.stdin.read().strip().split("\n") if l.strip()]
        if "Solution" in ns:
            target = getattr(ns["Solution"](), func)
        elif func in ns:
            target = ns[func]
        else:
            raise NameError(f"no class Solution with method {func!r} and no function {func!r} defined")
        result = target(*args)
        try:
            _report({"result": json.dumps(result, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else repr(o))})
        except (TypeError, ValueError) as e:
            _report({"result": json.dumps(repr(result))})
    sys.stdout.flush()
except SystemExit as e:
    sys.stdout.flush()
    code = e.code
    if code is None or code == 0:
        raise
    _report({"error": {"type": "SystemExit", "message": str(code), "frames": _frames(e.__traceback__)}})
    raise
except BaseException as e:
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    _report({"error": {"type": type(e).__name__, "message": str(e)[:2000], "frames": _frames(e.__traceback__),
                       "syntax": {"lineno": e.lineno, "text": (e.text or "").rstrip()} if isinstance(e, SyntaxError) else None}})
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "solution.py":
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb if tb is not None else None)
    sys.exit(1)
'''


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Direct children of pid, read from /proc (orphans of the attempt land here: we are a subreaper)."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(name))
    return out


def kill_descendants(me: int, deadline_s: float = 3.0) -> int:
    """SIGKILL every descendant until none is left; returns how many were killed."""
    killed, end = 0, time.monotonic() + deadline_s
    while time.monotonic() < end:
        kids = _children(me)
        if not kids:
            break
        for k in kids:
            try:
                os.killpg(k, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(k, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        _reap()
        time.sleep(0.002)
    _reap()
    return killed


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_test(req: dict, index: int, inp: str) -> dict:
    tl = float(req["time_limit_s"])
    mem = int(req["memory_limit_mb"]) << 20
    cap = int(req["output_limit_bytes"])
    drop_uid = req.get("drop_uid")
    nproc = int(req.get("max_processes", 64))
    # A fresh directory per test with a random name: an earlier test's program cannot have prepared it.
    tdir = tempfile.mkdtemp(prefix=f"t{index}-", dir=req["base_dir"])
    for name, text in (("input.txt", inp), ("solution.py", req["code"]), ("harness.py", HARNESS)):
        with open(os.path.join(tdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    if drop_uid is not None:
        os.chmod(tdir, 0o755)
        os.chown(tdir, drop_uid, drop_uid)
    r_res, w_res = os.pipe()

    def preexec() -> None:
        os.setsid()
        cpu = int(tl) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            os.setgroups([])
            os.setgid(drop_uid)
            os.setuid(drop_uid)

    start = time.monotonic()
    with open(os.path.join(tdir, "input.txt"), "rb") as stdin:
        proc = subprocess.Popen(
            [req.get("child_python") or sys.executable, "-I", "-S", "harness.py", req["test_type"], req.get("function_name") or "-", str(w_res)],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV,
            preexec_fn=preexec, pass_fds=(w_res,), close_fds=True, cwd=tdir,
        )
    os.close(w_res)
    sel = selectors.DefaultSelector()
    bufs: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray()}
    total = 0
    timed_out = exceeded = False
    for name, fobj in (("stdout", proc.stdout), ("stderr", proc.stderr), ("result", r_res)):
        fd = fobj if isinstance(fobj, int) else fobj.fileno()
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, name)
    deadline = start + tl
    open_fds, status, ru, exited_at = 3, None, None, None
    while True:
        now = time.monotonic()
        if status is None:
            pid, st, r = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, ru, exited_at = st, r, now
        if status is not None and (not open_fds or now - exited_at > 0.05):
            break  # ended; a background process still holding the pipes does not keep the test going
        if status is None and now >= deadline:
            timed_out = True
            break
        for key, _ in sel.select(timeout=max(0.0, min(deadline - now, 0.01 if status is not None else 0.05))):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fd)
                open_fds -= 1
                continue
            buf = bufs[key.data]
            if key.data == "result":
                buf += chunk[: max(0, cap - len(buf))]
                continue
            total += len(chunk)
            keep = STDERR_KEEP if key.data == "stderr" else cap
            buf += chunk[: max(0, keep - len(buf))]
            if total > cap:
                exceeded = True
                break
        if exceeded:
            break
    # Kill the group (and anything that left it) whether the child ended or not: nothing outlives a test.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        _, status, ru = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    leftovers = kill_descendants(os.getpid())
    for key in list(sel.get_map().values()):
        sel.unregister(key.fd)
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
    os.close(r_res)
    result = error = None
    if bufs["result"]:
        try:
            rep = json.loads(bufs["result"].decode("utf-8", "replace"))
            result, error = rep.get("result"), rep.get("error")
        except ValueError:
            pass
    return {
        "event": "test", "index": index,
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out, "output_exceeded": exceeded,
        "elapsed_s": round(elapsed, 4), "cpu_s": round(ru.ru_utime + ru.ru_stime, 4), "max_rss_kb": ru.ru_maxrss,
        "stdout": bufs["stdout"].decode("utf-8", "replace"), "stderr": bufs["stderr"].decode("utf-8", "replace"),
        "result": result, "error": error, "leftover_processes": leftovers,
    }


def _on_signal(signum: int, frame: object) -> None:
    # Ctrl-C or the tool's death: no test process may outlive the runner.
    kill_descendants(os.getpid(), deadline_s=2.0)
    os._exit(128 + signum)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    req = json.loads(sys.stdin.buffer.read())
    libc = _libc()
    if libc is not None:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # the tool died (even kill -9): clean up too
        if req.get("unshare_net"):
            # Root only (or a user namespace): a private network namespace with no interfaces but lo (down).
            if libc.unshare(CLONE_NEWNET) != 0:
                sys.stderr.write(f"runner: unshare(CLONE_NEWNET) failed: errno {ctypes.get_errno()}\n")
    req["base_dir"] = os.path.abspath(req.get("workdir") or ".")
    out = sys.stdout
    out.write(json.dumps({"event": "start", "pid": os.getpid()}) + "\n")
    out.flush()
    for i, inp in enumerate(req["inputs"]):
        try:
            res = run_test(req, i, inp)
        except OSError as e:  # e.g. the attempt filled the work directory: its doing, reported as its error
            kill_descendants(os.getpid())
            res = {"event": "test", "index": i, "runner_error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(res) + "\n")
        out.flush()
    out.write(json.dumps({"event": "done"}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
