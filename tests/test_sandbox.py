"""The executors' ordinary behaviour, on both: stdin and functional programs, errors with tracebacks,
single use, and that expected outputs never enter the sandbox. (Hostile programs:
test_sandbox_hostile.py.)"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sdpo_discover.problems import problem_from_dict
from sdpo_discover.sandbox import AttemptStatus, Executor, Verdict, grade_code, grade_response, make_executor
from sdpo_discover.sandbox.base import DONE_LINE, RunRequest, parse_runner_output, runner_source

STDIN = problem_from_dict({
    "id": "sum", "title": "Sum", "statement": "Sum the numbers.", "test_type": "stdin", "time_limit_s": 2,
    "tests": [{"input": "3\n1 2 3\n", "output": "6\n"}, {"input": "1\n-7\n", "output": "-7\n"},
              {"input": "2\n10 5\n", "output": "15\n", "hidden": True}],
})
FUNC = problem_from_dict({
    "id": "pair", "title": "Pair", "statement": "Return the indices of two numbers adding to target.",
    "test_type": "functional", "function_name": "twoSum",
    "tests": [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]"}, {"input": "[3, 3]\n6", "output": "[0, 1]"}],
})
SUM = "n = int(input())\nprint(sum(map(int, input().split())))\n"


def test_stdin_program_passes(executor: Executor) -> None:
    r = grade_code(STDIN, SUM, executor)
    assert r.status is AttemptStatus.PASSED and r.n_passed == 3 and r.executor == executor.name


def test_functional_with_typing_names_and_tuples(executor: Executor) -> None:
    code = (
        "class Solution:\n"
        "    def twoSum(self, nums: List[int], target: int) -> Tuple[int, int]:\n"  # List/Tuple: no import needed
        "        seen = {}\n"
        "        for i, x in enumerate(nums):\n"
        "            if target - x in seen:\n"
        "                print('debug', i)\n"  # prints do not disturb the returned value
        "                return (seen[target - x], i)\n"
        "            seen[x] = i\n"
    )
    assert grade_code(FUNC, code, executor).passed
    plain_function = "def twoSum(nums, target):\n    return [0, 1]\n"
    assert grade_code(FUNC, plain_function, executor).passed


def test_runtime_error_has_the_users_frames_only(executor: Executor) -> None:
    code = "def f(x):\n    return 10 // x\n\nn = int(input())\nprint(f(0))\n"
    t = grade_code(STDIN, code, executor).tests[0]
    assert t.verdict is Verdict.RUNTIME_ERROR and t.error_type == "ZeroDivisionError"
    assert [(f["lineno"], f["name"], f["line"]) for f in t.frames] == [(5, "<module>", "print(f(0))"), (2, "f", "return 10 // x")]
    assert "harness" not in t.stderr and "ZeroDivisionError" in t.stderr


def test_syntax_error_is_a_runtime_error(executor: Executor) -> None:
    t = grade_code(STDIN, "def f(:\n  pass\n", executor).tests[0]
    assert t.verdict is Verdict.RUNTIME_ERROR and t.error_type == "SyntaxError"


def test_format_error_never_reaches_the_sandbox(executor: Executor) -> None:
    r = grade_response(STDIN, "I think the answer is 6.", executor)
    assert r.status is AttemptStatus.FORMAT_ERROR and r.tests == []


def test_expected_outputs_never_enter_the_sandbox(executor: Executor) -> None:
    # The hidden test's expected output is 15; a program that searches every readable file for a
    # marker from the expected outputs must find nothing. (Inputs are there: the program reads them.)
    marker = "EXPECTED-MARKER-81412"
    p = problem_from_dict({**STDIN.to_json(), "tests": [{"input": "1\n1\n", "output": marker + "\n"}]})
    code = (
        "import os\nhits = []\n"
        "paths = [os.path.join(r, f) for top in (os.path.dirname(os.getcwd()),) for r, _, fs in os.walk(top) for f in fs]\n"
        "paths += [f'/proc/{p}/{f}' for p in ('self', os.getppid()) for f in ('cmdline', 'environ')]\n"
        "for path in paths:\n"
        "    try:\n"
        "        if b'EXPECTED-' b'MARKER' in open(path, 'rb').read(1 << 22): hits.append(path)\n"
        "    except OSError: pass\n"
        "print(hits)\n"
    )
    t = grade_code(p, code, executor).tests[0]
    assert t.stdout.strip() == "[]", t.stdout


@pytest.mark.docker
def test_docker_containers_are_single_use(docker_executor: Executor) -> None:
    # Attempt 1 leaves files in /work and /tmp; attempt 2 runs in a fresh container and sees none.
    leave = "open('/work/left-behind', 'w').write('x'); open('/tmp/left-behind', 'w').write('x')\nprint(6)\n"
    grade_code(STDIN, leave, docker_executor)
    look = "import os\nprint(int(os.path.exists('/work/left-behind')) + int(os.path.exists('/tmp/left-behind')))\n"
    r = grade_code(STDIN, look, docker_executor)
    assert [t.stdout.strip() for t in r.tests] == ["0", "0", "0"]


@pytest.mark.docker
def test_docker_container_hardening(docker_executor: Executor) -> None:
    code = (
        "import os\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'NoNewPrivs'))]\n"
        "try:\n    open('/usr/x', 'w'); ro = 'writable'\nexcept OSError as e:\n    ro = 'read-only'\n"
        "print(os.getuid(), ro, ' '.join(c.split()[1] for c in caps), sorted(os.listdir('/sys/class/net')))\n"
    )
    out = grade_code(STDIN, code, docker_executor).tests[0].stdout.strip().split(maxsplit=2)
    assert out[0] == "1000" and out[1] == "read-only"
    assert out[2] == "0000000000000000 1 ['lo']"  # no capabilities, no_new_privs, loopback only


def test_auto_picks_a_working_executor() -> None:
    warnings: list[str] = []
    with make_executor("auto", warn=warnings.append) as ex:
        assert grade_code(STDIN, SUM, ex).passed
        assert ex.name == "docker" or (warnings and "local" in warnings[0])


def test_runner_protocol_starts_on_newline_and_ends_with_the_done_line(tmp_path: Path) -> None:
    # The docker executor relies on both: the runner starts on the request's newline (end of input
    # through `docker exec` is a round trip), and reading stops at DONE_LINE (no wait for the exit).
    payload = RunRequest(code=SUM, test_type="stdin", inputs=["1\n5\n", "2\n1 2\n"]).to_runner_json(workdir=str(tmp_path))
    assert payload.count(b"\n") == 1 and payload.endswith(b"\n")
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", runner_source()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path)
    watchdog = threading.Timer(60, proc.kill)  # a runner waiting for end of input would hang here
    watchdog.start()
    try:
        proc.stdin.write(payload)
        proc.stdin.flush()  # and stdin stays open
        stdout = proc.stdout.read()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    assert stdout.endswith(DONE_LINE) and stdout.count(DONE_LINE) == 1
    out = parse_runner_output(stdout)
    assert out.complete and [r["stdout"] for r in out.records] == ["5\n", "3\n"]


def test_printing_the_done_line_does_not_end_the_attempt(executor: Executor) -> None:
    code = "import sys\nsys.stdout.write(" + repr(DONE_LINE.decode()) + ")\n" + SUM
    r = grade_code(STDIN, code, executor)
    assert r.status is AttemptStatus.FAILED and len(r.tests) == 3  # every test ran (and printed extra)


class _FlakyDaemon:
    """A fake Docker API for DockerExecutor's bookkeeping: containers are dicts of labels, exec
    sockets are socket pairs. `remove_fails` makes the next removes fail as a timed-out request does;
    `create_times_out` makes the next create fail on the client's side after the daemon made it."""

    class Timeout(Exception):
        response = None

    def __init__(self) -> None:
        self.containers_: dict[str, dict[str, str]] = {}
        self.remove_fails = 0
        self.create_times_out = 0
        self.lock = threading.Lock()

    def inspect_image(self, image: str) -> dict:
        return {}

    def create_host_config(self, **kw: object) -> dict:
        return dict(kw)

    def create_container(self, image: str, labels: dict[str, str], **kw: object) -> dict:
        import uuid

        cid = uuid.uuid4().hex
        with self.lock:
            self.containers_[cid] = dict(labels)
            if self.create_times_out:
                self.create_times_out -= 1
                raise self.Timeout("Read timed out. (read timeout=60)")
        return {"Id": cid}

    def start(self, cid: str) -> None:
        pass

    def exec_create(self, cid: str, cmd: list[str], **kw: object) -> dict:
        return {"Id": "exec-" + cid}

    def exec_start(self, exec_id: str, socket: bool) -> object:
        import socket as so

        a, b = so.socketpair()
        b.close()
        return a

    def remove_container(self, cid: str, force: bool) -> None:
        with self.lock:
            if self.remove_fails:
                self.remove_fails -= 1
                raise self.Timeout("Read timed out. (read timeout=60)")
            if self.containers_.pop(cid, None) is None:
                class NotFound(Exception):
                    class response:
                        status_code = 404
                raise NotFound(cid)

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict]:
        key, _, value = filters["label"].partition("=")
        with self.lock:
            return [{"Id": c, "Labels": l} for c, l in self.containers_.items()
                    if key in l and (not value or l[key] == value)]


@pytest.fixture
def flaky_daemon(monkeypatch: pytest.MonkeyPatch) -> _FlakyDaemon:
    from types import SimpleNamespace

    import sdpo_discover.sandbox.container as container

    daemon = _FlakyDaemon()
    monkeypatch.setattr(container, "docker_client", lambda timeout=60: SimpleNamespace(api=daemon))
    return daemon


def test_docker_executor_retries_a_failed_remove_and_close_sweeps_its_label(flaky_daemon: _FlakyDaemon) -> None:
    # The clean-clone CI of 17f4f8a leaked one container that nothing ever removed: a remove that fails
    # once (a daemon busy past the client's timeout) used to forget the container.
    from sdpo_discover.sandbox.container import DockerExecutor

    ex = DockerExecutor(image="fake", pool_size=2)
    assert ex.wait_ready(10)
    mine = set(flaky_daemon.containers_)
    assert len(mine) == 2
    flaky_daemon.remove_fails = 2  # the next remove fails twice, then works
    cid = next(iter(mine))
    assert ex._destroy(cid) and cid not in flaky_daemon.containers_
    flaky_daemon.remove_fails = 10  # a remove that keeps failing: the container stays ours to retry
    other = next(iter(mine - {cid}))
    assert not ex._destroy(other) and other in ex._live and other in flaky_daemon.containers_
    flaky_daemon.remove_fails = 0
    flaky_daemon.create_times_out = 1  # a create the client gave up on, which the daemon made anyway
    with pytest.raises(_FlakyDaemon.Timeout):
        ex._create(256)
    foreign = flaky_daemon.create_container("fake", labels={"sdpo-discover.sandbox": "1"})  # another executor's
    ex.close()
    assert set(flaky_daemon.containers_) == {foreign["Id"]}
