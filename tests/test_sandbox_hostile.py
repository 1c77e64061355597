"""Hostile programs, on both executors: each ends with the right verdict within its hard wall-clock
limit (plus a margin), leaves no process or container behind, and leaves the host untouched; and
the same verdicts while CPU hogs load the machine.

These are the tests that runner.py, local.py and container.py name in their docstrings. Every test
that takes `executor` runs twice: on the local executor and on the docker executor (conftest.py).
Docker tests fail in CI (CI=true) when docker is unusable and are skipped loudly elsewhere.

Run with `SDPO_DISCOVER_IMAGE=<image>` to use another image than the default sandbox image.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, require, require_docker
from sdpo_discover.problems import Problem, problem_from_dict
from sdpo_discover.sandbox import AttemptResult, AttemptStatus, Executor, Verdict, grade_code, grade_response
from sdpo_discover.sandbox.base import wall_limit_s
from sdpo_discover.sandbox.container import LABEL, OWNER_LABEL  # imports no docker package
from sdpo_discover.sandbox.local import UID_BASE
from sdpo_discover.sandbox.local import LocalExecutor

MARGIN_S = 5.0
CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"


# --------------------------------------------------------------------------------------------
# Helpers


def stdin_problem(time_limit_s: float = 1.0, n_tests: int = 2, memory_limit_mb: int = 256) -> Problem:
    """A tiny stdin problem: print the sum of two integers."""
    tests = [{"input": f"{i} {i + 1}\n", "output": f"{2 * i + 1}\n"} for i in range(n_tests)]
    return problem_from_dict({
        "id": "hostile", "title": "Sum", "statement": "Print a + b.", "test_type": "stdin",
        "time_limit_s": time_limit_s, "memory_limit_mb": memory_limit_mb, "tests": tests,
    }, "<test_sandbox_hostile>")


def grade(executor: Executor, code: str, problem: Problem | None = None, as_response: bool = False) -> tuple[AttemptResult, float]:
    """Grade `code`, asserting it finished within the wall-clock limit * tests + margin and was not a
    sandbox error."""
    problem = problem or stdin_problem()
    start = time.monotonic()
    if as_response:
        result = grade_response(problem, f"Here is my solution.\n```python\n{code}\n```\n", executor)
    else:
        result = grade_code(problem, code, executor)
    wall = time.monotonic() - start
    bound = wall_limit_s(problem.time_limit_s) * len(problem.tests) + MARGIN_S
    assert wall <= bound, f"{executor.name}: took {wall:.1f} s, more than {bound:.1f} s"
    assert result.status is not AttemptStatus.SANDBOX_ERROR, f"{executor.name}: sandbox error: {result.error}"
    assert result.executor == executor.name
    # Shown with -rP or -s: what each executor decided.
    print(f"[{executor.name}] {result.status.value} {[t.verdict.value for t in result.tests]} "
          f"{[t.error_type for t in result.tests if t.error_type]} wall {wall:.2f} s")
    return result, wall


def verdicts(result: AttemptResult) -> list[Verdict]:
    return [t.verdict for t in result.tests]


def stdout_of(result: AttemptResult) -> str:
    return "\n".join(t.stdout for t in result.tests)


def _skip_unless_root_local(executor: Executor, what: str) -> None:
    if isinstance(executor, LocalExecutor) and not executor.is_root:
        pytest.skip(f"local executor not running as root: {what} is a documented limitation (local.py)")


def _require_private_fs(executor: Executor) -> None:
    """The local executor as root must have its mount namespace (in CI a failure; elsewhere a loud skip)."""
    _skip_unless_root_local(executor, "writing the host's world-writable places")
    if isinstance(executor, LocalExecutor):
        require("local mount namespace", executor.private_fs, executor.refused.get("private_fs", "turned off"),
                "Run as root on Linux >= 5.12 where mount namespaces are allowed (not an unprivileged container).")


# -- processes (local) ------------------------------------------------------------------------

SANDBOX_UIDS = range(UID_BASE, UID_BASE + 256)  # the local executor's per-attempt uids (as root)


def _ps() -> dict[int, tuple[int, int]]:
    """pid -> (uid, ppid), from `ps -eo uid,pid,ppid`."""
    out = subprocess.run(["ps", "-eo", "uid,pid,ppid"], capture_output=True, text=True, check=True).stdout
    procs = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3 and all(x.isdigit() for x in parts):
            procs[int(parts[1])] = (int(parts[0]), int(parts[2]))
    return procs


def _is_runner(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"PR_SET_CHILD_SUBREAPER" in cmdline  # the runner's source is on its command line (-c)


def leftover_nobody_processes() -> list[int]:
    """Processes of a sandbox uid that this test process is responsible for.

    Any sandbox-uid process counts, except one that lives under a runner which is not ours (another
    test session on this machine, grading at this very moment). Ours are never alive between tests:
    our runners have ended when grade_code returned, so a sandbox-uid process under our pid, or
    orphaned to init, is a leftover.
    """
    procs = _ps()
    me = os.getpid()
    leftovers = []
    for pid, (user, _) in procs.items():
        if user not in SANDBOX_UIDS:
            continue
        foreign, p, seen = False, procs[pid][1], 0
        while p > 1 and p in procs and seen < 64:
            if p == me:
                break
            if procs[p][0] not in SANDBOX_UIDS and _is_runner(p):
                foreign = True  # a live runner that is not a child of ours (ours are all gone)
                break
            p, seen = procs[p][1], seen + 1
        if not foreign:
            leftovers.append(pid)
    return leftovers


def assert_no_nobody_leftovers(deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        left = leftover_nobody_processes()
        if not left:
            return
        if time.monotonic() > end:
            detail = subprocess.run(["ps", "-o", "user,pid,ppid,stat,cmd", "-p", ",".join(map(str, left))],
                                    capture_output=True, text=True).stdout
            pytest.fail(f"processes of a sandbox uid left behind:\n{detail}")
        time.sleep(0.1)


# -- containers (docker) ----------------------------------------------------------------------

_client: Any = None


def _docker() -> Any:
    global _client
    if _client is None:
        from sdpo_discover.sandbox.container import docker_client

        _client = docker_client()
    return _client


def owner_pid(owner: str) -> int | None:
    try:
        return int(owner.rsplit(":", 2)[1])
    except (ValueError, IndexError):
        return None


def sandbox_containers(pid: int) -> dict[str, str]:
    """id -> state of every container labelled as a sandbox whose owner label names `pid` (this host)."""
    host = socket.gethostname()
    out = {}
    for c in _docker().api.containers(all=True, filters={"label": LABEL}):
        owner = (c.get("Labels") or {}).get(OWNER_LABEL, "")
        if owner.split(":", 1)[0] == host and owner_pid(owner) == pid:
            out[c["Id"]] = c.get("State", "?")
    return out


def wait_for_containers(pid: int, allowed: set[str] = frozenset(), deadline_s: float = 20.0) -> None:
    """Poll until every sandbox container owned by `pid` is in `allowed` (containers are destroyed in the background)."""
    end = time.monotonic() + deadline_s
    while True:
        extra = {k: v for k, v in sandbox_containers(pid).items() if k not in allowed}
        if not extra:
            return
        if time.monotonic() > end:
            pytest.fail(f"sandbox containers of pid {pid} still exist {deadline_s:.0f} s later: "
                        f"{ {k[:12]: v for k, v in extra.items()} }")
        time.sleep(0.2)


def wait_docker_settled(ex: Any, deadline_s: float = 20.0) -> set[str]:
    """Wait until the executor is idle with a full pool and docker shows exactly the pool's containers
    for this process: the attempt's single-use container is gone. Returns the pool's container ids."""
    end = time.monotonic() + deadline_s
    while True:
        st = ex.stats()
        ours = sandbox_containers(os.getpid())
        if st["live"] == st["ready"] == ex.pool_size and len(ours) == ex.pool_size:
            return set(ours)
        if time.monotonic() > end:
            pytest.fail(f"docker executor did not settle within {deadline_s:.0f} s: stats {st}, "
                        f"containers of this process: { {k[:12]: v for k, v in ours.items()} }")
        time.sleep(0.2)


def assert_clean(executor: Executor) -> None:
    """Nothing of the attempt is left: no process (local), no container beyond the warm pool (docker)."""
    if executor.name == "local":
        if isinstance(executor, LocalExecutor) and executor.is_root:
            assert_no_nobody_leftovers()
    else:
        wait_docker_settled(executor)


# --------------------------------------------------------------------------------------------
# Sanity


def test_correct_program_passes(executor: Executor) -> None:
    result, _ = grade(executor, CORRECT, as_response=True)
    assert result.status is AttemptStatus.PASSED, [t.detail for t in result.tests]
    assert verdicts(result) == [Verdict.PASSED, Verdict.PASSED]
    assert_clean(executor)


# --------------------------------------------------------------------------------------------
# Resource exhaustion


FORK_BOMB = textwrap.dedent("""\
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
""")


def test_fork_bomb(executor: Executor) -> None:
    result, _ = grade(executor, FORK_BOMB)
    assert result.status is AttemptStatus.FAILED
    assert set(verdicts(result)) <= {Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT}, verdicts(result)
    assert len(result.tests) == 2
    assert_clean(executor)


# Two processes, 0.07 s of CPU each: 0.14 s together, over a 0.1 s limit that each alone stays under.
# The workers end and are reaped: their CPU time is the parent's, in its rusage.
TWO_WORKERS = textwrap.dedent("""\
    import os, time
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            while time.process_time() < 0.07:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
""") + CORRECT


# Busy workers that never end, one escaped from the process group, while the program itself sleeps:
# its own CPU time stays near zero, theirs counts while they run (and they are runnable: no waiting).
BUSY_CHILDREN = textwrap.dedent("""\
    import os, time
    for escape in (False, True):
        if os.fork() == 0:
            if escape:
                os.setsid()
            while True:
                pass
    time.sleep(10**6)
""")


@pytest.mark.parametrize("code", [pytest.param(TWO_WORKERS, id="reaped-workers"),
                                  pytest.param(BUSY_CHILDREN, id="running-workers")])
def test_the_time_limit_counts_every_process(executor: Executor, code: str) -> None:
    result, _ = grade(executor, code, stdin_problem(time_limit_s=0.1, n_tests=1))
    assert verdicts(result) == [Verdict.TIME_LIMIT], [t.detail for t in result.tests]
    m = re.fullmatch(r"took more than the 0.1 s time limit \((\S+) s computing, (\S+) s waiting\)",
                     result.tests[0].detail or "")
    assert m and float(m.group(1)) >= 0.08, result.tests[0].detail  # the workers' CPU time counted
    assert_clean(executor)


def test_interpreter_start_up_does_not_count(executor: Executor) -> None:
    # A test's CPU time starts at the fork of the warm runner, whose own start (an interpreter and the
    # imports every test inherits) takes about 0.05 s of CPU; the program itself about 0.005 s.
    result, _ = grade(executor, CORRECT, stdin_problem(time_limit_s=0.03))
    assert result.status is AttemptStatus.PASSED, [t.detail for t in result.tests]


MEMORY_BOMB_FAST = "x = bytearray(10**10)\nprint(len(x))\n"
MEMORY_BOMB_GRADUAL = "blocks = []\nwhile True:\n    blocks.append([0] * 100_000)\n"


def test_memory_bomb_fast(executor: Executor) -> None:
    result, wall = grade(executor, MEMORY_BOMB_FAST)
    assert verdicts(result) == [Verdict.MEMORY_LIMIT] * 2, [t.detail for t in result.tests]
    assert wall < 2 * 1.0  # an allocation refused at once, not a timeout
    assert_clean(executor)


def test_memory_bomb_gradual(executor: Executor) -> None:
    result, _ = grade(executor, MEMORY_BOMB_GRADUAL, stdin_problem(time_limit_s=5.0))
    assert verdicts(result) == [Verdict.MEMORY_LIMIT] * 2, [t.detail for t in result.tests]
    assert_clean(executor)


BUSY_LOOP = "while True:\n    pass\n"
# One C call that never returns to the interpreter: an alarm or KeyboardInterrupt cannot stop it.
HUGE_INT = "x = 10 ** (10 ** 9)\nprint(x % 7)\n"
SLEEP = "import time\ntime.sleep(10**6)\n"


@pytest.mark.parametrize("code", [pytest.param(BUSY_LOOP, id="busy-loop"), pytest.param(HUGE_INT, id="huge-int"),
                                  pytest.param(SLEEP, id="sleep")])  # sleeping counts: it is its own time
def test_time_limit(executor: Executor, code: str) -> None:
    result, _ = grade(executor, code)
    assert verdicts(result) == [Verdict.TIME_LIMIT] * 2, [t.detail for t in result.tests]
    for t in result.tests:
        assert (t.detail or "").startswith("took more than the 1 s time limit"), t.detail
        if code is SLEEP:  # nothing else wants its CPU: it is stopped when its 1 s has passed
            assert 1.0 <= t.elapsed_s < 2.0, t.elapsed_s
    assert_clean(executor)


ENDLESS_OUTPUT = 'while True:\n    print("x" * 65536)\n'


def test_endless_output_is_cut_quickly(executor: Executor) -> None:
    problem = stdin_problem(time_limit_s=5.0)
    result, wall = grade(executor, ENDLESS_OUTPUT, problem)
    assert verdicts(result) == [Verdict.OUTPUT_LIMIT] * 2, [t.detail for t in result.tests]
    # Well before the time limit: both tests together take less than one test's limit.
    assert wall < problem.time_limit_s, f"output limit took {wall:.1f} s"
    assert all(t.elapsed_s < 1.0 for t in result.tests), [t.elapsed_s for t in result.tests]
    assert_clean(executor)


# --------------------------------------------------------------------------------------------
# Isolation from the host


def _host_ipv4_addresses() -> list[str]:
    addrs = {"127.0.0.1"}
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=10).stdout
        addrs.update(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out))
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(addrs)


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    """A TCP listener on every host address (loopback included), on a free port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 0))
    s.listen(16)
    s.setblocking(False)
    yield s
    s.close()


def test_no_network(executor: Executor, host_listener: socket.socket) -> None:
    _skip_unless_root_local(executor, "network access")
    port = host_listener.getsockname()[1]
    targets = [(a, port) for a in _host_ipv4_addresses()] + [("10.255.255.1", 80)]
    code = textwrap.dedent(f"""\
        import socket
        for host, port in {targets!r}:
            try:
                s = socket.create_connection((host, port), timeout=0.5)
                s.sendall(b"pwned")
                print("CONNECTED", host, port)
            except OSError as e:
                print("FAILED", host, port, type(e).__name__, e.errno)
        try:
            print("RESOLVED", socket.getaddrinfo("example.com", 80)[0][4])
        except OSError as e:
            print("FAILED dns", type(e).__name__)
    """)
    result, _ = grade(executor, code, stdin_problem(time_limit_s=3.0))
    out = stdout_of(result)
    assert "CONNECTED" not in out and "RESOLVED" not in out, out
    assert out.count("FAILED") == 2 * (len(targets) + 1), out  # the program really ran every attempt
    with pytest.raises(BlockingIOError):
        conn, addr = host_listener.accept()
        conn.close()
        pytest.fail(f"the host listener received a connection from {addr}")
    assert_clean(executor)


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory on the host, readable by all but writable only by its owner, with a private file."""
    d = Path(tempfile.mkdtemp(prefix="sdpo-hostile-"))
    d.chmod(0o755)
    (d / "private.txt").write_text("PRIVATE-" + secrets.token_hex(8))
    (d / "private.txt").chmod(0o600)
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        p.unlink() if not p.is_dir() else p.rmdir()
    d.rmdir()


def test_cannot_write_outside_the_work_dir(executor: Executor, host_dir: Path) -> None:
    _skip_unless_root_local(executor, "writing the user's files")
    etc = Path("/etc/sdpo-pwned")
    pkg = ROOT / "sdpo_discover" / "sdpo_pwned.py"
    assert not etc.exists() and not pkg.exists(), "left over from an earlier run: remove it"
    targets = [host_dir / "pwned", host_dir / "private.txt", etc, pkg]
    if pkg.parent.stat().st_mode & 0o002:
        targets.remove(pkg)  # a world-writable checkout is writable by anyone; nothing to test there
    secret = (host_dir / "private.txt").read_text()
    code = textwrap.dedent(f"""\
        for path in {[str(t) for t in targets]!r}:
            try:
                with open(path, "a") as f:
                    f.write("pwned")
                print("WROTE", path)
            except OSError as e:
                print("FAILED", path, type(e).__name__)
        try:
            print("READ", open({str(host_dir / "private.txt")!r}).read())
        except OSError as e:
            print("FAILED read", type(e).__name__)
    """)
    try:
        result, _ = grade(executor, code)
        out = stdout_of(result)
        assert "WROTE" not in out, out
        assert secret not in out, out
        assert out.count("FAILED") == 2 * (len(targets) + 1), out
        assert not (host_dir / "pwned").exists()
        assert (host_dir / "private.txt").read_text() == secret
        assert not etc.exists()
        assert not pkg.exists()
    finally:
        for p in (etc, pkg):
            if p.exists():
                p.unlink()
    assert_clean(executor)


SCRATCH_DIRS = ["/tmp", "/var/tmp", "/dev/shm"]


def _searchable_by_all(d: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [d, *d.parents])


@pytest.fixture
def world_writable_dir() -> Iterator[Path]:
    """A directory on the host that anyone may write to, outside the scratch directories (in this
    checkout, unless it lies in one of them): only a read-only view of the host's filesystem keeps an
    attempt out of it."""
    where = next(c for c in (ROOT, Path("/var/lib"), Path("/opt"), Path("/"))
                 if c.is_dir() and _searchable_by_all(c) and not any(c.is_relative_to(d) for d in SCRATCH_DIRS))
    d = Path(tempfile.mkdtemp(prefix=".sdpo-world-writable-", dir=where))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_writes_outside_the_work_dir_never_reach_the_host(executor: Executor, world_writable_dir: Path) -> None:
    """/tmp, /var/tmp and /dev/shm are the attempt's own (empty: the host's files there are invisible;
    what it writes there, a second attempt does not see); a write anywhere else outside its work
    directory fails inside the attempt; and afterwards none of the files exists on the host."""
    _require_private_fs(executor)
    name = f"sdpo-pwned-{secrets.token_hex(6)}"
    markers = [Path(d) / f"sdpo-host-file-{secrets.token_hex(6)}" for d in SCRATCH_DIRS]
    elsewhere = ["/etc", "/", str(Path.home()), str(world_writable_dir)]
    written = [Path(d) / name for d in SCRATCH_DIRS + elsewhere]
    assert not any(p.exists() for p in written)
    code = textwrap.dedent(f"""\
        import os
        here = os.getcwd()
        for d in {SCRATCH_DIRS!r}:
            try:  # what is there, but the path to its own work directory
                print("SEES", d, sorted(x for x in os.listdir(d) if not here.startswith(os.path.join(d, x) + "/")))
            except OSError as e:
                print("SEES", d, type(e).__name__)
        for d in {SCRATCH_DIRS + elsewhere!r}:
            try:
                with open(os.path.join(d, {name!r}), "w") as f:
                    f.write("pwned")
                print("WROTE", d)
            except OSError as e:
                print("FAILED", d, e.errno)
    """)
    look = f"import os\nprint([d for d in {SCRATCH_DIRS!r} if os.path.exists(os.path.join(d, {name!r}))])\n"
    try:
        for m in markers:
            m.write_text("the host's")
            m.chmod(0o644)
        result, _ = grade(executor, code, stdin_problem(n_tests=1))
        out = stdout_of(result)
        for d in SCRATCH_DIRS:
            assert f"SEES {d} []" in out, out  # its own, empty
        for d in elsewhere:
            assert f"FAILED {d} " in out, out
        assert "WROTE /tmp" in out, out  # a scratch directory of its own, on both executors
        if isinstance(executor, LocalExecutor):
            assert all(f"WROTE {d}" in out for d in SCRATCH_DIRS), out
            assert f"FAILED {world_writable_dir} {errno.EROFS}" in out, out  # read-only, not just another uid
        second, _ = grade(executor, look, stdin_problem(n_tests=1))
        assert stdout_of(second).strip() == "[]", stdout_of(second)
        left = [str(p) for p in written if p.exists()]
        assert not left, f"the attempt's files are on the host: {left}"
    finally:
        for p in written + markers:
            p.unlink(missing_ok=True)
    assert_clean(executor)


FILL_WORK_DIR = textwrap.dedent("""\
    i = 0
    try:
        while True:
            with open(f"fill{i}", "wb") as f:
                f.write(b"x" * (4000 << 10))  # under the 4 MiB file-size limit
            i += 1
    except OSError as e:
        print("FULL", e.errno, i)
""")


def test_the_local_work_dir_is_capped_memory_not_the_host_disk(local_executor: LocalExecutor) -> None:
    """As in docker (test_filling_the_work_dir_is_the_attempts_fault), the work directory is a 256 MiB
    tmpfs: filling it ends in ENOSPC there, not on the host's disk."""
    _require_private_fs(local_executor)
    result, _ = grade(local_executor, FILL_WORK_DIR, stdin_problem(time_limit_s=5.0, n_tests=1))
    m = re.search(r"FULL (\d+) (\d+)", stdout_of(result))
    assert m, stdout_of(result)
    assert int(m.group(1)) == errno.ENOSPC and 50 <= int(m.group(2)) <= 66, m.group(0)  # 256 MiB / 3.9 MiB
    assert_clean(local_executor)


REFUSED_PROBE = textwrap.dedent("""\
    import json
    from sdpo_discover.problems import problem_from_dict
    from sdpo_discover.sandbox import grade_code, make_executor
    warnings = []
    ex = make_executor("local", warn=warnings.append)
    problem = problem_from_dict({"id": "p", "title": "t", "statement": "s", "test_type": "stdin",
                                 "tests": [{"input": "1 2\\n", "output": "3\\n"}]})
    status = grade_code(problem, "print(sum(map(int, input().split())))", ex).status.value
    print(json.dumps({"describe": ex.describe(), "exposed": ex.exposed(), "refused": sorted(ex.refused),
                      "warnings": warnings, "status": status}))
""")
DOCTOR = ("import sys\nfrom sdpo_discover.cli import main\n"
          "sys.argv = ['sdpo-discover', 'sandbox', 'doctor', '--json']\nmain()\n")


def test_local_says_what_stays_exposed_where_namespaces_are_refused() -> None:
    """As root without CAP_SYS_ADMIN (an unprivileged container, say) the kernel refuses both namespaces:
    the local executor still grades, with the isolation it has, and its description, an explicit
    `--sandbox local`'s warning and `sandbox doctor` say plainly what stays exposed."""
    if os.geteuid() != 0:
        pytest.skip("not root: the local executor asks for no namespace, so none can be refused")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing: it drops CAP_SYS_ADMIN for this test")
    drop = [setpriv, "--bounding-set=-sys_admin", sys.executable, "-c"]
    probe = subprocess.run(drop + [REFUSED_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    facts = json.loads(probe.stdout.splitlines()[-1])
    assert facts["status"] == "passed"
    assert facts["refused"] == ["private_fs", "unshare_net"]
    assert "NO private network namespace" in facts["describe"] and "NO private filesystem" in facts["describe"]
    assert facts["exposed"][0].startswith("the network: the kernel refused"), facts["exposed"]
    assert facts["exposed"][1].startswith("the host's world-writable places (/tmp, /var/tmp, /dev/shm"), \
        facts["exposed"]
    assert len(facts["warnings"]) == 1 and "world-writable places" in facts["warnings"][0], facts["warnings"]
    doctor = subprocess.run(drop + [DOCTOR], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert doctor.returncode == 0, doctor.stderr[-2000:]
    report = json.loads(doctor.stdout)
    assert report["local_exposed"] == facts["exposed"]
    assert any("prefer docker" in line for line in report["advice"]), report["advice"]


DAEMON = textwrap.dedent("""\
    import os, signal, time
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            time.sleep(10**6)  # keeps stdout and stderr open too
            os._exit(0)
        os._exit(0)
    os.close(w)
    print("DAEMON", os.read(r, 64).decode(), flush=True)
""")


def _daemon_pids(result: AttemptResult) -> list[int]:
    pids = [int(m) for m in re.findall(r"DAEMON (\d+)", stdout_of(result))]
    assert len(pids) == 2, stdout_of(result)
    return pids


def _alive_as_nobody(pid: int) -> bool:
    """A process with this host pid exists and runs as a sandbox uid (a recycled pid of another user does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    m = re.search(r"^Uid:\s+(\d+)", status, re.M)
    return m is not None and int(m.group(1)) in SANDBOX_UIDS


def test_background_process_does_not_outlive_the_attempt(executor: Executor) -> None:
    result, wall = grade(executor, DAEMON)
    pids = _daemon_pids(result)
    assert wall < 2 * 1.0 + 2.0, "a process holding stdout open must not keep the test going"
    if executor.name == "local":
        # The pids are host pids: nothing with them may exist (recycled by another user at most).
        alive = [p for p in pids if (_alive_as_nobody(p) if executor.is_root else os.path.exists(f"/proc/{p}"))]
        assert not alive, f"background processes survived the attempt: {alive}"
    assert_clean(executor)


def test_background_process_gone_after_docker_close(docker_executor: Executor) -> None:
    """A separate executor: after its close() no container of this process remains but the session pool's."""
    from sdpo_discover.sandbox.container import DockerExecutor

    pool = wait_docker_settled(docker_executor)
    ex = DockerExecutor(pool_size=1)
    try:
        result, _ = grade(ex, DAEMON)
        _daemon_pids(result)
        result, _ = grade(ex, FORK_BOMB)
        assert result.status is AttemptStatus.FAILED
    finally:
        ex.close()
    wait_for_containers(os.getpid(), allowed=pool, deadline_s=10.0)
    # The session executor is untouched by the other one's close.
    assert wait_docker_settled(docker_executor) == pool


def test_no_host_environment(executor: Executor, monkeypatch: pytest.MonkeyPatch) -> None:
    name, value = f"SDPO_SECRET_{secrets.token_hex(6).upper()}", secrets.token_hex(16)
    monkeypatch.setenv(name, value)
    code = textwrap.dedent("""\
        import os
        print(dict(os.environ))
        paths = ["/proc/1/environ", "/proc/self/environ", f"/proc/{os.getppid()}/environ"]
        paths += [f"/proc/{p}/environ" for p in os.listdir("/proc") if p.isdigit()]
        for path in paths:
            try:
                with open(path, "rb") as f:
                    print(path, f.read().decode("utf-8", "replace"))
            except OSError as e:
                print(path, type(e).__name__)
        print("ENV-DUMP-END")
    """)
    result, _ = grade(executor, code)
    out = stdout_of(result)
    assert out.count("ENV-DUMP-END") == 2, out[-2000:]
    # The dump is real: it read its own environment (docker), or the kernel hid it after the uid drop (local).
    assert "/proc/self/environ PATH=" in out or "/proc/self/environ PermissionError" in out
    assert "'PATH': " in out
    assert name not in out and value not in out
    assert_clean(executor)


# --------------------------------------------------------------------------------------------
# Killing the runner

KILL_PARENT = "import os\nos.kill(os.getppid(), 9)\n"
KILL_ALL = "import os\nos.kill(-1, 9)\n"


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        pytest.param(KILL_PARENT, {Verdict.RUNTIME_ERROR}, id="kill-parent"),
        # kill(-1) reaches every process the program may signal; as a sandbox uid (local, root) that is not
        # the runner, so it may have no effect (wrong answer: it printed nothing).
        pytest.param(KILL_ALL, {Verdict.RUNTIME_ERROR, Verdict.WRONG_ANSWER}, id="kill-all"),
    ],
)
def test_killing_the_runner(executor: Executor, code: str, allowed: set[Verdict]) -> None:
    if "kill(-1" in code:
        _skip_unless_root_local(executor, "kill(-1) of all your processes")
    result, _ = grade(executor, code)
    assert result.status is AttemptStatus.FAILED, result.error
    assert result.tests and result.tests[0].verdict in allowed, [(t.verdict, t.detail) for t in result.tests]
    assert set(verdicts(result)) <= allowed
    # The next attempt on the same executor works normally.
    after, _ = grade(executor, CORRECT)
    assert after.status is AttemptStatus.PASSED, [(t.verdict, t.detail) for t in after.tests]
    assert_clean(executor)


SEGFAULT = "import ctypes\nctypes.string_at(0)\n"


def test_interpreter_crash_names_the_signal(executor: Executor) -> None:
    result, _ = grade(executor, SEGFAULT)
    assert verdicts(result) == [Verdict.RUNTIME_ERROR] * 2
    for t in result.tests:
        assert re.search(r"SIG[A-Z]+", t.error_type or ""), t.error_type
        assert "SIGSEGV" in (t.detail or "")
    assert_clean(executor)


# --------------------------------------------------------------------------------------------
# Concurrent attempts must not interfere


def test_concurrent_attempts_do_not_interfere_local(local_executor: LocalExecutor) -> None:
    if not local_executor.is_root:
        pytest.skip("the uid drop applies only when running as root")
    problem = stdin_problem(time_limit_s=4.0, n_tests=1)
    victim = "import time\ntime.sleep(2.0)\n" + CORRECT
    attacker = textwrap.dedent("""\
        import os, time
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                os.kill(-1, 9)
            except OSError:
                pass
            time.sleep(0.05)
    """)
    results: dict[str, AttemptResult] = {}

    def run(name: str, code: str) -> None:
        results[name] = grade_code(problem, code, local_executor)

    threads = [threading.Thread(target=run, args=a) for a in (("victim", victim), ("attacker", attacker))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert_no_nobody_leftovers()
    v = results["victim"]
    assert v.status is AttemptStatus.PASSED, [(t.verdict.value, t.detail) for t in v.tests]


# --------------------------------------------------------------------------------------------
# The work directory (docker: a 256 MiB tmpfs at /work shared by all tests of an attempt)


def test_scratch_files_do_not_accumulate_across_tests(docker_executor: Executor) -> None:
    # A legitimate program: a 3.9 MiB scratch file (under the 4 MiB file-size limit) in each test.
    code = "with open('scratch.bin', 'wb') as f:\n    f.write(b'x' * (4000 << 10))\n" + CORRECT
    result = grade_code(stdin_problem(time_limit_s=2.0, n_tests=80), code, docker_executor)
    assert result.status is AttemptStatus.PASSED, f"{result.status.value}: {result.error}"
    wait_docker_settled(docker_executor)


def test_filling_the_work_dir_is_the_attempts_fault(docker_executor: Executor) -> None:
    # Writes 4 MiB files into /work itself (writable by the sandbox user), outside its test directory.
    code = textwrap.dedent("""\
        i = 0
        for size in (4000 << 10, 64 << 10, 1):  # big files, then small ones: fill it to the last byte
            try:
                while True:
                    with open(f"../junk{i}", "wb") as f:
                        f.write(b"x" * size)
                    i += 1
            except OSError:
                pass
    """) + CORRECT
    # The second test's input is larger than what the first test's directory frees: the runner cannot write it.
    base = stdin_problem(time_limit_s=5.0)
    tests = [base.tests[0].__dict__, {"input": "1 2\n" + " " * (512 << 10) + "\n", "output": "3\n"}]
    problem = problem_from_dict({**base.to_json(), "tests": tests})
    result = grade_code(problem, code, docker_executor)
    wait_docker_settled(docker_executor)
    assert result.status is AttemptStatus.FAILED, f"{result.status.value}: {result.error}"
    last = result.tests[-1]
    assert last.verdict is Verdict.RUNTIME_ERROR and "filled its work directory" in (last.detail or "")


# --------------------------------------------------------------------------------------------
# The tool itself interrupted: Ctrl-C, SIGTERM, kill -9 (docker)

SIGNAL_SCRIPT = textwrap.dedent("""\
    import signal, sys

    def _term(signum, frame):
        raise KeyboardInterrupt  # as the CLI does

    signal.signal(signal.SIGTERM, _term)
    # A parent that ignores SIGINT (a background job of a non-interactive shell) passes SIG_IGN on.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from sdpo_discover.problems import problem_from_dict
    from sdpo_discover.sandbox import grade_code
    from sdpo_discover.sandbox.container import DockerExecutor

    problem = problem_from_dict({"id": "sleepy", "title": "t", "statement": "s", "test_type": "stdin",
                                 "time_limit_s": 30.0, "tests": [{"input": "1\\n", "output": "1\\n"}]})
    ex = DockerExecutor(pool_size=2)
    talk = ex._talk

    def announced(*a, **k):
        print("READY", flush=True)  # grading has started: the request goes to a warm runner
        return talk(*a, **k)

    ex._talk = announced
    try:
        result = grade_code(problem, "import time\\ntime.sleep(100)\\n", ex)
        print("GRADED", result.status.value, flush=True)
    finally:
        ex.close()
""")


def _start_grading_subprocess() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.strip())
            if line.strip() == "READY":
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(60)
    if "READY" not in lines:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"the grading subprocess never got ready: {lines} {err[-2000:]}")
    time.sleep(1.5)  # let the runner start the test in its container
    return proc


@pytest.mark.docker
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_removes_containers(sig: signal.Signals) -> None:
    require_docker()
    proc = _start_grading_subprocess()
    try:
        assert sandbox_containers(proc.pid), "the subprocess has no container: nothing to test"
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the process did not exit within 20 s of {sig.name}")
        assert "GRADED" not in out, f"{sig.name} did not interrupt grading: {out}"
        wait_for_containers(proc.pid, deadline_s=20.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.docker
def test_kill_9_containers_reaped_by_next_executor() -> None:
    require_docker()
    from sdpo_discover.sandbox.container import DockerExecutor

    proc = _start_grading_subprocess()
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(1.0)  # a container creation in flight when it died has landed
    stale = sandbox_containers(proc.pid)
    assert stale, "kill -9 left no container: nothing to reap (the test is not testing anything)"
    ex = DockerExecutor(pool_size=1)  # reaps stale containers when it starts
    try:
        wait_for_containers(proc.pid, deadline_s=10.0)
    finally:
        ex.close()


# --------------------------------------------------------------------------------------------
# The same verdicts on a loaded machine

N_HOGS = 4
# Under load an attempt also waits longer for its sandbox: an interpreter start (local), a fresh
# container from the pool, whose refills the load slows down (docker: 20 s and more on a shared 2-core
# machine). The bound only catches a hang; the verdicts are what this test checks.
LOADED_MARGIN_S = 60.0
# Each hog ends by itself after 120 s, should this test process die before it kills them.
HOG = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end:\n    pass\n"
# A short time limit keeps the test short; a small memory limit keeps the gradual memory bomb's CPU
# time (page faults) at a fifth of it.
LOADED_TIME_LIMIT_S, LOADED_MEMORY_MB = 0.5, 128
# Needs half its time limit, in CPU time; the load stretches its wall-clock time past the limit.
BOUNDED_CPU_S = 0.25
BOUNDED_WORK = f"import time\nwhile time.process_time() < {BOUNDED_CPU_S}:\n    pass\n" + CORRECT
NETWORK = textwrap.dedent("""\
    import socket
    for target in [("127.0.0.1", 9), ("10.255.255.1", 80)]:
        try:
            socket.create_connection(target, timeout=0.5)
            print("CONNECTED", target)
        except OSError as e:
            print("FAILED", target, type(e).__name__)
""")
WRITE_ETC = "try:\n    open('/etc/sdpo-pwned-load', 'a').write('x')\nexcept OSError as e:\n    print('FAILED', e)\n"
ENV_DUMP = "import os\nprint(dict(os.environ))\n"
RE, TL, ML, WA = Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT, Verdict.MEMORY_LIMIT, Verdict.WRONG_ANSWER
# (name, code, allowed verdicts): the hostile programs of the tests above, each allowed what its own test
# allows unloaded, plus a correct program and one that needs half its time limit.
LOADED_SET = [
    ("correct", CORRECT, {Verdict.PASSED}), ("bounded-work", BOUNDED_WORK, {Verdict.PASSED}),
    ("fork-bomb", FORK_BOMB, {RE, TL}), ("memory-fast", MEMORY_BOMB_FAST, {ML}),
    ("memory-gradual", MEMORY_BOMB_GRADUAL, {ML}), ("busy-loop", BUSY_LOOP, {TL}), ("huge-int", HUGE_INT, {TL}),
    ("sleep", SLEEP, {TL}), ("endless-output", ENDLESS_OUTPUT, {Verdict.OUTPUT_LIMIT}), ("network", NETWORK, {WA}),
    ("write-etc", WRITE_ETC, {WA}), ("daemon", DAEMON, {WA}), ("environment", ENV_DUMP, {WA}),
    ("kill-parent", KILL_PARENT, {RE}), ("kill-all", KILL_ALL, {RE, WA}), ("segfault", SEGFAULT, {RE}),
]


@pytest.fixture
def cpu_hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """N_HOGS busy processes for the duration of a test, each in its own session: with autogroup
    scheduling (the kernel's default) a session is scheduled as one, so hogs in this test's session
    would take CPU only from pytest, not from the sandbox's tests, which run in sessions of their own."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(N_HOGS)]
    yield hogs
    for h in hogs:
        h.kill()
    for h in hogs:
        h.wait()


def test_the_same_verdicts_under_load(executor: Executor, cpu_hogs: list[subprocess.Popen[bytes]]) -> None:
    """Every hostile program's verdict while N_HOGS busy processes keep the machine's load well above its
    2 cores: a time limit counts the program's own time, not the time it waited for a CPU, so the load
    neither fails a program with time to spare nor turns a memory limit into a time limit."""
    programs = LOADED_SET
    if isinstance(executor, LocalExecutor) and not executor.is_root:
        programs = [p for p in programs if p[0] != "kill-all"]  # it would kill every process of yours
    problem = stdin_problem(time_limit_s=LOADED_TIME_LIMIT_S, n_tests=1, memory_limit_mb=LOADED_MEMORY_MB)
    bound = wall_limit_s(problem.time_limit_s) + LOADED_MARGIN_S

    def run(name: str, code: str) -> AttemptResult:
        start = time.monotonic()
        result = grade_code(problem, code, executor)
        wall = time.monotonic() - start
        print(f"[{executor.name}] {name}: {result.status.value} {verdicts(result)} "
              f"{[t.elapsed_s for t in result.tests]} s, wall {wall:.2f} s")
        assert result.status is not AttemptStatus.SANDBOX_ERROR, f"{name}: sandbox error: {result.error}"
        assert wall <= bound, f"{name}: took {wall:.1f} s, more than {bound:.1f} s"
        return result

    results = {name: run(name, code) for name, code, _ in programs}
    wrong = {name: [(t.verdict.value, t.detail) for t in results[name].tests]
             for name, _, allowed in programs if not results[name].tests or set(verdicts(results[name])) - allowed}
    assert not wrong, f"wrong verdicts under load: {wrong}"
    assert all(h.poll() is None for h in cpu_hogs), "a hog ended early: the machine was not loaded throughout"
    # The load was real: the program that needs half its limit in CPU time took much longer than that
    # on the clock (a wall-clock time limit often failed it).
    took = results["bounded-work"].tests[0].elapsed_s
    assert took > 1.5 * BOUNDED_CPU_S, f"{took:.2f} s: the hogs did not slow the attempt down; nothing was tested"
    assert not Path("/etc/sdpo-pwned-load").exists()
    assert_clean(executor)


# --------------------------------------------------------------------------------------------
# After everything above


def test_local_work_dirs_removed(local_executor: LocalExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempt's temporary directory is gone afterwards, whatever the program left in it."""
    base = Path(tempfile.mkdtemp(prefix="sdpo-hostile-tmp-"))
    base.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # LocalExecutor's mkdtemp lands here
    litter = textwrap.dedent("""\
        import os
        os.makedirs("a/b/c", exist_ok=True)
        for i in range(50):
            with open(f"a/b/c/f{i}", "w") as f:
                f.write("x" * 1000)
        os.chmod("a/b", 0o500)  # a directory its owner cannot write: still removed
    """)
    try:
        for code in (litter, DAEMON, CORRECT):
            grade(local_executor, code)
        assert list(base.iterdir()) == []
    finally:
        monkeypatch.undo()
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_no_leftovers_after_hostile_tests(executor: Executor) -> None:
    """After every hostile test above: no process of a sandbox uid (local); no container of this process
    outside the warm pool, and none at all of an executor after its close() (docker)."""
    if executor.name == "local":
        if not (isinstance(executor, LocalExecutor) and executor.is_root):
            pytest.skip("no uid drop when not root: the program's processes are yours")
        assert_no_nobody_leftovers()
    else:
        from sdpo_discover.sandbox.container import DockerExecutor

        pool = wait_docker_settled(executor)
        ex = DockerExecutor(pool_size=2)
        try:
            grade(ex, CORRECT)
        finally:
            ex.close()
        wait_for_containers(os.getpid(), allowed=pool, deadline_s=10.0)
