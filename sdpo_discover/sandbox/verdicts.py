"""Verdicts: what happened to each test of an attempt, and to the attempt as a whole.

An explicit, closed set. A missing result is a sandbox error (the infrastructure failed), never a
time limit and never the attempt's fault.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    """Per test."""

    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    RUNTIME_ERROR = "runtime_error"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"


class AttemptStatus(str, Enum):
    """Per attempt."""

    PASSED = "passed"  # every test passed
    FAILED = "failed"  # ran; at least one test did not pass
    FORMAT_ERROR = "format_error"  # no code to run (no code block, or the response was cut off)
    SANDBOX_ERROR = "sandbox_error"  # the infrastructure failed; says nothing about the attempt


@dataclass
class TestVerdict:
    __test__ = False  # not a pytest class

    index: int
    verdict: Verdict
    hidden: bool = False
    elapsed_s: float = 0.0
    max_rss_kb: int = 0
    stdout: str = ""  # what the program printed (capped); for functional tests, the JSON of its return value
    stderr: str = ""  # capped
    error_type: str | None = None  # runtime errors: exception class ("ZeroDivisionError"), or "Killed by signal 11"
    error_message: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # the user's own frames: lineno, name, line
    detail: str | None = None  # one line for humans: why this verdict

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TestVerdict:
        return cls(**{**d, "verdict": Verdict(d["verdict"])})


@dataclass
class AttemptResult:
    status: AttemptStatus
    tests: list[TestVerdict] = field(default_factory=list)
    code: str | None = None  # the code that ran (extracted from the response)
    error: str | None = None  # format or sandbox error: what went wrong
    truncated: bool = False  # the response was cut off at the token limit
    executor: str = ""
    elapsed_s: float = 0.0  # wall time of the whole execution, including the sandbox's overhead

    @property
    def passed(self) -> bool:
        return self.status is AttemptStatus.PASSED

    @property
    def n_passed(self) -> int:
        return sum(t.verdict is Verdict.PASSED for t in self.tests)

    @property
    def fraction_passed(self) -> float:
        return self.n_passed / len(self.tests) if self.tests else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["tests"] = [t.to_json() for t in self.tests]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AttemptResult:
        return cls(**{**d, "status": AttemptStatus(d["status"]), "tests": [TestVerdict.from_json(t) for t in d["tests"]]})


# --------------------------------------------------------------------------------------------
# Output comparison, following LiveCodeBench's grader (docs/reference/SDPO.md section 8).


def _as_decimal(tok: str) -> Decimal | None:
    try:
        d = Decimal(tok)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def stdout_matches(got: str, expected: str) -> bool:
    """stdin tests: strip the whole output, split lines, strip each; same line count; a line matches
    exactly or its whitespace tokens match pairwise as exact decimals ("1.0" == "1")."""
    g_lines = [ln.strip() for ln in got.strip().split("\n")]
    e_lines = [ln.strip() for ln in expected.strip().split("\n")]
    if len(g_lines) != len(e_lines):
        return False
    for g, e in zip(g_lines, e_lines):
        if g == e:
            continue
        gt, et = g.split(), e.split()
        if len(gt) != len(et):
            return False
        for a, b in zip(gt, et):
            if a == b:
                continue
            da, db = _as_decimal(a), _as_decimal(b)
            if da is None or db is None or da != db:
                return False
    return True


def _normalise(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_normalise(x) for x in v]
    if isinstance(v, dict):
        return {k: _normalise(x) for k, x in v.items()}
    return v


def functional_matches(got_json: str | None, expected: str) -> bool:
    """functional tests: the returned value equals the expected JSON value; tuples count as lists."""
    if got_json is None:
        return False
    try:
        got = json.loads(got_json)
        exp = json.loads(expected)
    except ValueError:
        return False
    return bool(_normalise(got) == _normalise(exp))  # plain ==, as LiveCodeBench's grader does
