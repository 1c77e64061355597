"""The executor interface: run one program against a list of inputs, in isolation.

An executor only runs code and returns the runner's raw per-test records (see runner.py); it never
sees expected outputs (so hidden tests never enter the sandbox). grading.py turns records into
verdicts.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RUNNER_PATH = Path(__file__).with_name("runner.py")
DONE_LINE = b'{"event": "done"}\n'  # the runner's last line (runner.py writes exactly this)


def wall_limit_s(time_limit_s: float) -> float:
    """A test's hard wall-clock limit. The time limit itself counts the program's own time, not the
    time it waited for a CPU (runner.py); this one stops a test that cannot get a CPU at all. Ten
    times the limit and 10 s: a program that needs its whole time limit still finishes with a
    twelfth of a CPU."""
    return 10.0 * time_limit_s + 10.0


def outer_timeout_s(request: RunRequest) -> float:
    """How long an executor waits for the whole attempt before calling it a sandbox error: every test
    at its wall-clock limit, plus generous slack (the runner enforces every per-test limit itself)."""
    return len(request.inputs) * (wall_limit_s(request.time_limit_s) + 5.0) + 30.0


class SandboxError(RuntimeError):
    """The infrastructure failed (daemon gone, container died, runner never started): not the attempt's fault."""


@dataclass(frozen=True)
class RunRequest:
    code: str
    test_type: str  # "stdin" | "functional"
    inputs: list[str]
    function_name: str | None = None
    time_limit_s: float = 2.0  # the program's own time per test (runner.py); a hard wall-clock limit follows
    memory_limit_mb: int = 256
    output_limit_bytes: int = 4 << 20  # stdout + stderr per test
    max_processes: int = 64

    def to_runner_json(self, **extra: Any) -> bytes:
        # One line: the runner starts on the newline, without waiting for end of input (which, through
        # `docker exec`, is a round trip through dockerd and containerd-shim).
        return json.dumps({**asdict(self), "wall_limit_s": wall_limit_s(self.time_limit_s), **extra}).encode() + b"\n"


@dataclass
class RunOutcome:
    records: list[dict[str, Any]] = field(default_factory=list)  # one per finished test, in order
    started: bool = False  # the runner reported it was up (so a missing record is the attempt's doing)
    complete: bool = False  # the runner reported done
    elapsed_s: float = 0.0
    runner_stderr: str = ""


def parse_runner_output(stdout: bytes, stderr: bytes = b"") -> RunOutcome:
    """The runner's JSON lines -> RunOutcome. A half-written last line (the runner was killed) is dropped."""
    out = RunOutcome(runner_stderr=stderr.decode("utf-8", "replace")[-4000:])
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        kind = ev.get("event") if isinstance(ev, dict) else None
        if kind == "start":
            out.started = True
        elif kind == "test":
            out.records.append(ev)
        elif kind == "done":
            out.complete = True
    return out


def runner_source() -> str:
    return RUNNER_PATH.read_text(encoding="utf-8")


class Executor(ABC):
    """Runs untrusted code. Thread-safe: `run` may be called from several threads at once."""

    name: str = "executor"

    @abstractmethod
    def run(self, request: RunRequest) -> RunOutcome:
        """Run every input; raise SandboxError when the infrastructure fails."""

    def close(self) -> None:
        """Release containers, processes and folders. Idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
