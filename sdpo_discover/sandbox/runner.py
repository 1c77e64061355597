"""The in-sandbox test runner: runs one attempt's program against every test, one process per test.

Stdlib only, Python >= 3.11, one file: the executors pass this file's source to `python3 -c` inside
the container (docker) or run it as a subprocess (local), so the image never needs rebuilding when
it changes. It reads one JSON request line on stdin (it starts on the newline, not at end of input)
and writes JSON lines on stdout:

    {"event": "start", "pid": ..}                      once, before the first test
    {"event": "test", "index": i, ...}                  one per test, flushed as soon as it ends
    {"event": "done"}                                   after the last test (exactly base.DONE_LINE)

Results stream so that when the attempt kills the runner itself (it can: in docker both run as the
same user), the host still knows which tests finished and which test was running.

Each test runs in a process *forked* from the runner after the runner has imported what programs
usually need and built the program's globals (a fork server: a test costs a fork, not an interpreter
start). The child drops into its own session and limits, then executes the program as `__main__`.
On a VM a test's cost is mostly page faults (each first write to a page shared with the runner
copies it, ~5 us here), so the per-test path runs as little Python as it can.

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
- a fresh, randomly named directory per test, removed afterwards;
- environment: a fixed minimal environment, never the caller's.
What it does not do: network isolation and the read-only filesystem come from the executor
(docker flags; a network namespace for local when the kernel allows it).
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import io
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback

# Imported once here so that every forked test starts with them loaded (LiveCodeBench's prelude).
import bisect, collections, functools, heapq, itertools, math, random, re, string, typing  # noqa: E401,F401

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
STDERR_KEEP = 64 * 1024  # bytes of stderr kept for feedback (the cap on total output still applies)
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
             "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"}
# The program's namespace starts with these, so `List[int]` or `defaultdict` work without an import.
PRELUDE = ("from typing import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\n"
           "from itertools import *\nfrom functools import *\nfrom math import *\nimport sys, math, re, "
           "collections, heapq, bisect, itertools, functools, string, random, json")
ENOSPC_ERRNOS = {28, 122}  # ENOSPC, EDQUOT: the attempt filled its own work directory
# The program's globals, PRELUDE already run, built once in the runner: every forked test starts from
# its own copy. On a VM a first write to a shared page costs ~5 us; running PRELUDE per test cost ~200.
NAMESPACE: dict = {"__name__": "__main__", "__builtins__": builtins, "__file__": "solution.py"}
exec(PRELUDE, NAMESPACE)


# --------------------------------------------------------------------------------------------
# In the child (after fork): never returns, always os._exit.


def _frames(tb: object) -> list[dict]:
    return [{"lineno": fr.lineno, "name": fr.name, "line": (fr.line or "").strip()}
            for fr in traceback.extract_tb(tb) if fr.filename == "solution.py"]


def _report(fd: int, obj: dict) -> None:
    try:
        os.write(fd, json.dumps(obj).encode())
    except (OSError, TypeError, ValueError):
        pass


def _child(req: dict, tdir: str, stdin_fd: int, out_w: int, err_w: int, res_w: int, base_vsz: int) -> None:
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, res_w)
        os.closerange(res_w + 1, 1 << 16)
        os.chdir(tdir)
        tl, mem, cap = float(req["time_limit_s"]), int(req["memory_limit_mb"]) << 20, int(req["output_limit_bytes"])
        resource.setrlimit(resource.RLIMIT_CPU, (int(tl) + 1, int(tl) + 2))
        # The memory limit is what the program may add to the interpreter it was forked from.
        resource.setrlimit(resource.RLIMIT_AS, (base_vsz + mem, base_vsz + mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        uid = req.get("drop_uid")
        if uid is not None:
            n = int(req.get("max_processes", 64))
            resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", write_through=True)
        sys.argv = ["solution.py"]
    except BaseException as e:  # noqa: BLE001 - the sandbox could not be set up: not the program's fault
        _report(res_w, {"setup_error": f"{type(e).__name__}: {e}"})
        os._exit(1)
    status = 1
    try:
        status = _run_program(req, res_w)
    except BaseException:  # noqa: BLE001 - the child must never fall back into the runner's code
        status = 1
    os._exit(status)


def _vsz() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 64 << 20


def _run_program(req: dict, res_w: int) -> int:
    builtins.exit = builtins.quit = sys.exit  # the site module (absent under -S) would define them
    ns = NAMESPACE  # this process's own copy (copy-on-write): the runner's stays pristine for the next test
    status = 0
    try:
        exec(compile(req["code"], "solution.py", "exec"), ns)
        if req["test_type"] == "functional":
            func = req.get("function_name") or ""
            args = [json.loads(line) for line in sys.stdin.read().strip().split("\n") if line.strip()]
            if "Solution" in ns:
                target = getattr(ns["Solution"](), func)
            elif func in ns:
                target = ns[func]
            else:
                raise NameError(f"no class Solution with method {func!r} and no function {func!r} defined")
            result = target(*args)
            try:
                text = json.dumps(result, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else repr(o))
            except (TypeError, ValueError):
                text = json.dumps(repr(result))
            _report(res_w, {"result": text})
        if "threading" in sys.modules:  # what interpreter shutdown does: wait for non-daemon threads
            sys.modules["threading"]._shutdown()
    except SystemExit as e:
        code = e.code
        if code is None or code == 0:
            status = 0
        else:
            status = code if isinstance(code, int) else 1
            if not isinstance(code, int):
                print(code, file=sys.stderr)
            _report(res_w, {"error": {"type": "SystemExit", "message": str(code), "frames": _frames(e.__traceback__)}})
    except BaseException as e:  # noqa: BLE001 - report any exception of the program
        _report(res_w, {"error": {"type": type(e).__name__, "message": str(e)[:2000], "frames": _frames(e.__traceback__)}})
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "solution.py":
            tb = tb.tb_next  # show the program's own frames only, as python3 solution.py would
        try:
            traceback.print_exception(type(e), e, tb)
        except BaseException:  # noqa: BLE001
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - e.g. a closed stdout: nothing more to say
            pass
    return status


# --------------------------------------------------------------------------------------------
# In the runner


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Direct children of pid (orphans of the attempt land here: we are a subreaper). One small file
    where the kernel offers it (the runner is single-threaded), else a scan of /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        pass
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


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


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


def run_test(req: dict, index: int, inp: str) -> dict:
    tl = float(req["time_limit_s"])
    cap = int(req["output_limit_bytes"])
    drop_uid = req.get("drop_uid")
    # A fresh directory per test with a random name: an earlier test's program cannot have prepared it
    # (mkdir fails if the name exists). Cheaper than tempfile.mkdtemp.
    tdir = os.path.join(req["base_dir"], f"t{index}-{os.urandom(8).hex()}")
    os.mkdir(tdir, 0o700)
    try:
        in_path = os.path.join(tdir, "input.txt")
        with open(in_path, "w", encoding="utf-8") as f:
            f.write(inp)
        with open(os.path.join(tdir, "solution.py"), "w", encoding="utf-8") as f:
            f.write(req["code"])  # for the program's own introspection; the code runs from memory
        if drop_uid is not None:
            os.chmod(tdir, 0o755)
            os.chown(tdir, drop_uid, drop_uid)
        return _fork_and_watch(req, index, tdir, in_path, tl, cap)
    finally:
        kill_descendants(os.getpid())
        _remove_test_dir(tdir)


def _remove_test_dir(tdir: str) -> None:
    # Usually the program left nothing: two unlinks and an rmdir. Anything else: the whole tree. (The
    # path's components are the runner's; nothing runs any more that could swap them.)
    try:
        for name in ("input.txt", "solution.py"):
            os.unlink(os.path.join(tdir, name))
        os.rmdir(tdir)
    except OSError:
        shutil.rmtree(tdir, ignore_errors=True)


def _fork_and_watch(req: dict, index: int, tdir: str, in_path: str, tl: float, cap: int) -> dict:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    stdin_fd = os.open(in_path, os.O_RDONLY)
    base_vsz = _vsz()
    sys.stdout.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(req, tdir, stdin_fd, out_w, err_w, res_w, base_vsz)  # never returns
    for fd in (out_w, err_w, res_w, stdin_fd):
        os.close(fd)
    # poll, not selectors: less Python code runs per test, and after a fork every page that code
    # touches (its refcounts, its specialised bytecode) is a page fault.
    poller = select.poll()
    names = {out_r: "stdout", err_r: "stderr", res_r: "result"}
    bufs: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray()}
    for fd in names:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    try:
        pidfd = os.pidfd_open(pid)  # readable when the child exits: no polling
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = None
    deadline = start + tl
    open_fds, status, ru, exited_at = 3, None, None, None
    total, timed_out, exceeded = 0, False, False
    while True:
        now = time.monotonic()
        if status is None:
            wpid, st, r = os.wait4(pid, os.WNOHANG)
            if wpid:
                status, ru, exited_at = st, r, now
                if pidfd is not None:
                    poller.unregister(pidfd)
        if status is not None and (not open_fds or now - exited_at > 0.05):
            break  # ended; a background process still holding the pipes does not keep the test going
        if status is None and now >= deadline:
            timed_out = True
            break
        wait = deadline - now if status is None else 0.05 - (now - exited_at)
        if pidfd is None and status is None:
            wait = min(wait, 0.005)
        for fd, _ in poller.poll(max(0.0, wait) * 1000):
            name = names.get(fd)
            if name is None:
                continue  # the pidfd: reaped at the top of the loop
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                poller.unregister(fd)
                open_fds -= 1
                continue
            buf = bufs[name]
            if name == "result":
                buf += chunk[: max(0, cap - len(buf))]
                continue
            total += len(chunk)
            keep = STDERR_KEEP if name == "stderr" else cap
            buf += chunk[: max(0, keep - len(buf))]
            if total > cap:
                exceeded = True
                break
        if exceeded:
            break
    try:
        os.killpg(pid, signal.SIGKILL)  # the group, whether the child ended or not: nothing outlives a test
    except OSError:
        pass
    if status is None:
        _, status, ru = os.wait4(pid, 0)
    elapsed = time.monotonic() - start
    for fd in (out_r, err_r, res_r) + ((pidfd,) if pidfd is not None else ()):
        os.close(fd)
    result = error = None
    if bufs["result"]:
        try:
            rep = json.loads(bufs["result"].decode("utf-8", "replace"))
            result, error = rep.get("result"), rep.get("error")
            if "setup_error" in rep:
                return {"event": "test", "index": index, "runner_error": f"test setup failed: {rep['setup_error']}"}
        except ValueError:
            pass
    return {
        "event": "test", "index": index,
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out, "output_exceeded": exceeded,
        "elapsed_s": round(elapsed, 4), "cpu_s": round(ru.ru_utime + ru.ru_stime, 4), "max_rss_kb": ru.ru_maxrss,
        "stdout": bufs["stdout"].decode("utf-8", "replace"), "stderr": bufs["stderr"].decode("utf-8", "replace"),
        "result": result, "error": error,
    }


def _on_signal(signum: int, frame: object) -> None:
    # Ctrl-C or the tool's death: no test process may outlive the runner.
    kill_descendants(os.getpid(), deadline_s=2.0)
    os._exit(128 + signum)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # The tests' environment, set once: forked tests inherit it.
    os.environ.clear()
    os.environ.update(CHILD_ENV)
    req = json.loads(sys.stdin.buffer.readline())  # one line; no need to wait for end of input
    libc = _libc()
    if libc is not None:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # the tool died (even kill -9): clean up too
        if req.get("unshare_net"):
            # Root only (or a user namespace): a private network namespace with no interfaces but lo (down).
            if libc.unshare(CLONE_NEWNET) != 0:
                sys.stderr.write(f"runner: unshare(CLONE_NEWNET) failed: errno {ctypes.get_errno()}\n")
                sys.exit(3)  # refuse to run without the isolation that was asked for
    req["base_dir"] = os.path.abspath(req.get("workdir") or ".")
    # The runner's objects stay out of the tests' garbage collections: a collection in a forked test
    # would otherwise touch (and so copy) every page of the runner's heap.
    gc.freeze()
    out = sys.stdout
    out.write(json.dumps({"event": "start", "pid": os.getpid()}) + "\n")
    out.flush()
    for i, inp in enumerate(req["inputs"]):
        try:
            res = run_test(req, i, inp)
        except OSError as e:
            # The work directory is full: the attempt filled it (its doing); anything else is ours.
            res = {"event": "test", "index": i, "runner_error": f"{type(e).__name__}: {e}",
                   "attempt_filled_disk": e.errno in ENOSPC_ERRNOS}
        out.write(json.dumps(res) + "\n")
        out.flush()
        if res.get("attempt_filled_disk"):
            break
    out.write(json.dumps({"event": "done"}) + "\n")
    out.flush()
    os._exit(0)  # every test process is gone already; skip the interpreter's teardown


if __name__ == "__main__":
    main()
