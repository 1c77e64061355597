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
- the time limit, `time_limit_s`, counts the program's own time: the CPU time (user + system) of
  every process of the test together (threads, children, escaped ones), plus the time during which
  none of them was runnable (sleeping, blocked). Time spent ready to run while other programs held
  the CPUs does not count: on an idle machine this is about the wall-clock time, and a busy machine
  does not change it (a verdict must not depend on what else runs). It starts at the fork, so the
  runner's own start-up never counts; the program's compile and imports do. A hard wall-clock limit,
  `wall_limit_s` (base.wall_limit_s: ten times the time limit plus 10 s), stops a test that cannot
  get a CPU at all. Either way the whole process group is killed with SIGKILL (an alarm signal alone
  does not stop work done in C, e.g. `10**10**8`);
- processes that escape the group (setsid, double fork) are reparented to the runner, which is a
  child subreaper, and killed after each test: nothing outlives its test;
- per process: CPU seconds (RLIMIT_CPU, a backstop at the next whole second above the limit), address space
  (RLIMIT_AS = the memory limit), file size (RLIMIT_FSIZE), no core dumps; with `drop_uid` (local
  executor running as root) the child runs as that uid with RLIMIT_NPROC, so it cannot signal the
  runner or read the caller's files;
- captured output: stdout + stderr together are capped; past the cap the child is killed and the
  test ends with an output-limit verdict;
- a fresh, randomly named directory per test, removed afterwards;
- environment: a fixed minimal environment, never the caller's.
Isolation from the host comes from the executor: docker's flags, or, for the local executor as
root, the namespaces this runner enters before the first test when asked (`unshare_net`: a network
namespace with no interfaces; `private_fs`: private_filesystem, its docstring says what it protects
and what not). A namespace that was asked for and is refused ends the runner with exit 3: it never
runs a test with less isolation than the executor announced.
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
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
SYS_MOUNT_SETATTR = 442  # Linux >= 5.12; the same number on every architecture but alpha and mips
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # each an empty, private, size-capped tmpfs (private_fs)
SCRATCH_OPTS = b"size=64m,nr_inodes=16384,mode=1777"
WORK_OPTS = b"size=256m,nr_inodes=65536,mode=0755"  # the work directory's tmpfs: root's, tests' dirs are chowned
STDERR_KEEP = 64 * 1024  # bytes of stderr kept for feedback (the cap on total output still applies)
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
             "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"}
# The program's namespace starts with these, so `List[int]` or `defaultdict` work without an import.
PRELUDE = ("from typing import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\n"
           "from itertools import *\nfrom functools import *\nfrom math import *\nimport sys, math, re, "
           "collections, heapq, bisect, itertools, functools, string, random, json")
ENOSPC_ERRNOS = {28, 122}  # ENOSPC, EDQUOT: the attempt filled its own work directory
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = max(1, len(os.sched_getaffinity(0)))  # a test's processes use CPU time at most this fast
CHECK_MIN_S = 0.01  # the time limit is exceeded by at most about this much (plus a clock tick)
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
        if req.get("nice"):
            os.nice(int(req["nice"]))  # the runner comes first: a fork bomb cannot starve the one who kills it
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


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _ok(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setattr(libc: ctypes.CDLL, path: str, set_: int, recursive: bool = False) -> None:
    """mount_setattr(2): set these attributes on the mount at path (and every mount below it)."""
    if os.uname().machine.startswith(("alpha", "mips")):
        raise OSError(f"mount_setattr: its system call number on {os.uname().machine} is not known here")
    attr = _MountAttr(set_, 0, 0, 0)
    rc = libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_long(AT_FDCWD), path.encode(),
                      ctypes.c_long(AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                      ctypes.c_long(ctypes.sizeof(attr)))
    _ok(rc, f"mount_setattr({path})")


def private_filesystem(libc: ctypes.CDLL, workdir: str) -> None:
    """Give this process, and every test forked from it, its own view of the filesystem (root only): a
    private mount namespace in which every mount is read-only and nosuid, and four fresh tmpfs are the
    only writable places: SCRATCH_DIRS (/tmp, /var/tmp, /dev/shm: empty, 64 MiB each) and `workdir`
    itself (256 MiB, like the docker sandbox's /work). All nosuid, nodev, noexec. They live in memory
    and vanish with the namespace, when the attempt's last process ends.

    What it protects: the host's files. A write outside those four places fails (EROFS, or EACCES as
    before); one inside them reaches neither the host nor another attempt (each attempt's runner has
    its own namespace, and another attempt's work directory is not even visible); the attempt cannot
    fill the host's disk; a setuid binary does not raise privileges. No mount of the host changes:
    the namespace's mounts are made private before anything else, so nothing propagates back.
    What it does not: reading. The program still reads whatever its uid may (world-readable files,
    /proc: other processes' command lines, for example); it may connect to a unix socket on the host
    that its uid may open (a read-only mount does not stop connect(); e.g. the D-Bus system bus); and
    it shares the host's kernel. The tmpfs are memory the attempt can fill (up to 448 MiB) until it ends.
    """
    _ok(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _ok(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    _setattr(libc, "/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, recursive=True)
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    for d in SCRATCH_DIRS:
        if os.path.isdir(d) and not os.path.islink(d):
            _ok(libc.mount(b"tmpfs", d.encode(), b"tmpfs", flags, SCRATCH_OPTS), f"mount tmpfs on {d}")
    os.makedirs(workdir, exist_ok=True)  # its path, where a scratch tmpfs now covers it
    _ok(libc.mount(b"tmpfs", workdir.encode(), b"tmpfs", flags, WORK_OPTS), f"mount tmpfs on {workdir}")
    os.chdir(workdir)  # the old working directory is the host's, now hidden and read-only


def _children_file(pid: int) -> list[int] | None:
    """Children of pid's main thread, from the small file the kernel offers (None where it does not)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return None


def _parents() -> dict[int, list[int]]:
    """ppid -> pids, from one scan of /proc."""
    out: dict[int, list[int]] = {}
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
        out.setdefault(ppid, []).append(int(name))
    return out


def _children(pid: int) -> list[int]:
    """Direct children of pid (orphans of the attempt land here: we are a subreaper). One small file
    where the kernel offers it (the runner is single-threaded), else a scan of /proc."""
    kids = _children_file(pid)
    return kids if kids is not None else _parents().get(pid, [])


def _descendants(me: int) -> list[int]:
    """Every process below the runner: the test's, escaped ones (setsid, double fork) included."""
    first = _children_file(me)
    tree = _parents() if first is None else None  # no children files in this kernel: one scan

    def kids(p: int) -> list[int]:
        return tree.get(p, []) if tree is not None else (_children_file(p) or [])

    out, todo = [], list(first if first is not None else kids(me))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids(p)
    return out


def tree_usage(me: int) -> tuple[float, bool]:
    """(CPU seconds used so far, any of them runnable now) over every process below the runner: user +
    system time of every thread, and of the children each reaped. What a test's time limit counts."""
    ticks, runnable = 0, False
    for pid in _descendants(me):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
            runnable = runnable or fields[0] == b"R"  # running, or ready and waiting for a CPU
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile: reaped by its parent (counted in its cutime) or by us
    return ticks / CLK_TCK, runnable


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
    wall = float(req["wall_limit_s"])
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
        return _fork_and_watch(req, index, tdir, in_path, tl, wall, cap)
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


def _fork_and_watch(req: dict, index: int, tdir: str, in_path: str, tl: float, wall: float, cap: int) -> dict:
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
    # The time limit counts the program's own time: the CPU time of all its processes, plus the time
    # during which none of them was runnable (sleeping, blocked). Time spent ready to run while other
    # programs held the CPUs does not count, so a busy machine does not change a verdict. It is read
    # only when it could have reached the limit (it grows by at most NCPU seconds per second): a test
    # that ends sooner costs no check at all. `wall`, far above it, stops a test that never gets a CPU.
    me, deadline, check = os.getpid(), start + wall, start + tl / NCPU
    cpu = waited = 0.0
    seen_at, seen_cpu = start, 0.0
    open_fds, status, ru, exited_at = 3, None, None, None
    total, timed_out, exceeded = 0, None, False
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
            timed_out = "wall"
            break
        if status is None and now >= check:
            cpu, runnable = tree_usage(me)
            if not runnable:  # all waiting now: call the interval's time not spent computing waiting
                waited += max(0.0, (now - seen_at) - (cpu - seen_cpu))
            seen_at, seen_cpu = now, cpu
            if cpu + waited >= tl:
                timed_out = "time"
                break
            check = now + max(CHECK_MIN_S, (tl - cpu - waited) / NCPU)
        wait = min(deadline, check) - now if status is None else 0.05 - (now - exited_at)
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
    cpu = max(cpu, ru.ru_utime + ru.ru_stime)  # the child and the children it reaped: exact
    if cpu + waited >= tl and not exceeded:
        # Over the limit, though no check saw it in time (a busy machine can delay the runner): the
        # verdict follows the time used, not when the runner looked.
        timed_out = "time"
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
        "timed_out": timed_out is not None, "time_limit": timed_out, "output_exceeded": exceeded,
        "elapsed_s": round(elapsed, 4), "cpu_s": round(cpu, 4), "waited_s": round(waited, 4),
        "max_rss_kb": ru.ru_maxrss,
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
    req["base_dir"] = os.path.abspath(req.get("workdir") or ".")
    # Root only: the isolation the executor asked for, or no run at all (exit 3).
    try:
        if (req.get("unshare_net") or req.get("private_fs")) and libc is None:
            raise OSError("cannot load the C library for unshare(2) and mount(2)")
        if req.get("unshare_net"):
            # A private network namespace with no interfaces but lo (down).
            _ok(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        if req.get("private_fs"):
            private_filesystem(libc, req["base_dir"])
    except OSError as e:
        sys.stderr.write(f"runner: {e}\n")
        sys.exit(3)
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
