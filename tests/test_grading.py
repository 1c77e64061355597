"""Output comparison, code extraction, and the record -> verdict mapping (no sandbox needed)."""

from __future__ import annotations

import signal

import pytest

from sdpo_discover.problems import problem_from_dict
from sdpo_discover.sandbox.base import RunOutcome, parse_runner_output
from sdpo_discover.sandbox.grading import code_from_text, extract_code, verdict_for, verdicts_from_outcome
from sdpo_discover.sandbox.verdicts import AttemptResult, AttemptStatus, Verdict, functional_matches, stdout_matches

STDIN = problem_from_dict({"id": "p", "title": "t", "statement": "s", "test_type": "stdin", "time_limit_s": 1.5,
                           "tests": [{"input": "1\n", "output": "1\n"}, {"input": "2\n", "output": "2\n"}]})
FUNC = problem_from_dict({"id": "f", "title": "t", "statement": "s", "test_type": "functional", "function_name": "f",
                          "tests": [{"input": "1", "output": "[1, 2]"}]})


@pytest.mark.parametrize(
    ("got", "expected", "ok"),
    [
        ("3\n", "3\n", True),
        ("  3  \n\n", "3", True),  # whole output and each line stripped
        ("1 2\r\n3\n", "1 2\n3\n", True),
        ("1.0 2\n", "1 2\n", True),  # tokens equal as decimals
        ("1.50\n", "1.5\n", True),
        ("1.5000001\n", "1.5\n", False),  # exact decimals, no tolerance (LiveCodeBench)
        ("1  2\n", "1 2\n", True),  # whitespace between tokens
        ("3\n4\n", "3\n", False),  # line count must match
        ("Yes\n", "YES\n", False),
        ("nan\n", "nan\n", True),  # equal strings match before any number parsing
        ("inf\n", "Infinity\n", False),
        ("", "\n", True),
        ("1 2 3\n", "1 2\n", False),
    ],
)
def test_stdout_comparison(got: str, expected: str, ok: bool) -> None:
    assert stdout_matches(got, expected) is ok


@pytest.mark.parametrize(
    ("got", "expected", "ok"),
    [("[1, 2]", "[1, 2]", True), ("[[1, 2], [3]]", "[[1,2],[3]]", True), ("3", "3.0", True),
     ("[2, 1]", "[1, 2]", False), ('"a"', '"a"', True), ("null", "[]", False), (None, "1", False), ("{bad", "1", False)],
)
def test_functional_comparison(got: str | None, expected: str, ok: bool) -> None:
    assert functional_matches(got, expected) is ok


def test_extract_code_takes_the_last_python_block() -> None:
    text = "Idea:\n```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```\nDone."
    assert extract_code(text) == ("print(2)\n", None)
    assert extract_code("```\nprint(3)\n```")[0] == "print(3)\n"  # an untagged block counts
    assert extract_code("```python\nprint(1)\n```\n```text\nout\n```")[0] == "print(1)\n"  # non-python skipped


@pytest.mark.parametrize(
    ("text", "why"),
    [("just prose, no code", "no ```python code block"), ("```python\nprint(1)\n", "cut off"),
     ("```python\n\n```", "no ```python code block")],
)
def test_extract_code_format_errors(text: str, why: str) -> None:
    code, reason = extract_code(text)
    assert code is None and why in reason


def test_code_from_text_accepts_a_bare_file() -> None:
    assert code_from_text("print(1)\n") == ("print(1)\n", None)
    assert code_from_text("text\n```python\nprint(2)\n```")[0] == "print(2)\n"
    assert code_from_text("   \n")[0] is None


def rec(**kw: object) -> dict:
    base = {"index": 0, "exit_code": 0, "signal": None, "timed_out": False, "output_exceeded": False,
            "elapsed_s": 0.1, "max_rss_kb": 9000, "stdout": "1\n", "stderr": "", "result": None, "error": None}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("kw", "verdict"),
    [
        ({}, Verdict.PASSED),
        ({"stdout": "7\n"}, Verdict.WRONG_ANSWER),
        ({"timed_out": True, "exit_code": None, "signal": 9}, Verdict.TIME_LIMIT),
        ({"signal": int(signal.SIGXCPU), "exit_code": None}, Verdict.TIME_LIMIT),
        ({"output_exceeded": True, "timed_out": True}, Verdict.OUTPUT_LIMIT),
        ({"exit_code": 1, "error": {"type": "MemoryError", "message": "", "frames": []}}, Verdict.MEMORY_LIMIT),
        ({"exit_code": 1, "stderr": "Traceback ...\nMemoryError\n"}, Verdict.MEMORY_LIMIT),
        ({"stdout": "1\n", "stderr": "debug: MemoryError is a word\n"}, Verdict.PASSED),  # exit 0: just a print
        ({"exit_code": None, "signal": 9, "max_rss_kb": 250_000}, Verdict.MEMORY_LIMIT),  # near the limit: OOM killer
        ({"exit_code": None, "signal": 9}, Verdict.RUNTIME_ERROR),  # far from it: killed (by itself, say)
        ({"exit_code": None, "signal": 11}, Verdict.RUNTIME_ERROR),
        ({"exit_code": 1, "error": {"type": "ValueError", "message": "bad", "frames": []}}, Verdict.RUNTIME_ERROR),
        ({"exit_code": 3}, Verdict.RUNTIME_ERROR),
    ],
)
def test_record_to_verdict(kw: dict, verdict: Verdict) -> None:
    assert verdict_for(STDIN, rec(**kw)).verdict is verdict


def test_signal_and_exception_details() -> None:
    v = verdict_for(STDIN, rec(exit_code=None, signal=11))
    assert v.error_type == "Killed by SIGSEGV"
    v = verdict_for(STDIN, rec(exit_code=1, error={"type": "ZeroDivisionError", "message": "division by zero",
                                                   "frames": [{"lineno": 3, "name": "<module>", "line": "1/0"}]}))
    assert (v.error_type, v.frames[0]["lineno"]) == ("ZeroDivisionError", 3)


def test_functional_verdicts() -> None:
    assert verdict_for(FUNC, rec(result="[1, 2]", stdout="debug\n")).verdict is Verdict.PASSED
    assert verdict_for(FUNC, rec(result="[2, 1]")).verdict is Verdict.WRONG_ANSWER
    v = verdict_for(FUNC, rec(result=None))
    assert v.verdict is Verdict.RUNTIME_ERROR and v.error_type == "NoReturnValue"


def test_runner_killed_midway_is_the_attempts_fault_not_a_timeout() -> None:
    out = RunOutcome(records=[rec()], started=True, complete=False)
    vs = verdicts_from_outcome(STDIN, out)
    assert [v.verdict for v in vs] == [Verdict.PASSED, Verdict.RUNTIME_ERROR]
    assert vs[1].error_type == "KilledTestRunner"


def test_parse_runner_output_drops_a_half_written_line() -> None:
    raw = b'{"event": "start", "pid": 1}\n{"event": "test", "index": 0}\n{"event": "te'
    out = parse_runner_output(raw)
    assert out.started and not out.complete and len(out.records) == 1


def test_attempt_result_round_trips_through_json() -> None:
    vs = verdicts_from_outcome(STDIN, RunOutcome(records=[rec(), rec(index=1, stdout="5\n")], started=True, complete=True))
    r = AttemptResult(AttemptStatus.FAILED, tests=vs, code="print(1)", executor="local")
    back = AttemptResult.from_json(r.to_json())
    assert back == r and back.n_passed == 1 and back.fraction_passed == 0.5


def test_a_time_limit_names_the_limit_that_stopped_the_program() -> None:
    v = verdict_for(STDIN, rec(timed_out=True, time_limit="time", cpu_s=1.2, waited_s=0.31, exit_code=None, signal=9))
    assert (v.verdict, v.detail) == (Verdict.TIME_LIMIT, "took more than the 1.5 s time limit (1.20 s computing, "
                                                         "0.31 s waiting)")
    v = verdict_for(STDIN, rec(timed_out=True, time_limit="wall", cpu_s=0.01, exit_code=None, signal=9))
    assert v.verdict is Verdict.TIME_LIMIT
    assert "after 25 s of wall-clock time, the hard limit, having used 0.01 s of CPU" in v.detail  # 10 * 1.5 s + 10 s
