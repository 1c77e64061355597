"""Feedback text: the judge style and caps of docs/reference/SDPO.md section 7, checked against exact strings."""

from __future__ import annotations

from sdpo_discover.feedback import MAX_TOTAL, render_feedback
from sdpo_discover.problems import problem_from_dict
from sdpo_discover.sandbox.verdicts import AttemptResult, AttemptStatus, TestVerdict, Verdict

P = problem_from_dict({
    "id": "p", "title": "t", "statement": "s", "test_type": "stdin",
    "tests": [
        {"input": "1 2 3\n", "output": "6\n"},
        {"input": "5\n", "output": "5\n"},
        {"input": "9 9\n", "output": "18\n", "hidden": True},
        {"input": "\n".join(str(i) for i in range(20)) + "\n", "output": "x" * 400 + "\n"},
    ],
})


def tv(i: int, verdict: Verdict, **kw: object) -> TestVerdict:
    return TestVerdict(index=i, verdict=verdict, hidden=P.tests[i].hidden, **kw)


def result(*tests: TestVerdict) -> AttemptResult:
    ok = all(t.verdict is Verdict.PASSED for t in tests)
    return AttemptResult(AttemptStatus.PASSED if ok else AttemptStatus.FAILED, tests=list(tests))


def test_runtime_error_alone_with_frames_and_last_input() -> None:
    frames = [{"lineno": n, "name": f"f{n}", "line": f"line {n}"} for n in range(1, 6)]
    r = result(tv(0, Verdict.WRONG_ANSWER, stdout="7\n"), tv(1, Verdict.RUNTIME_ERROR, error_type="IndexError",
                                                             error_message="list index out of range", frames=frames))
    assert render_feedback(P, r) == (
        "Runtime Error\nIndexError: list index out of range\n"
        "Line 3 in f3 (solution.py)\n    line 3\nLine 4 in f4 (solution.py)\n    line 4\n"
        "Line 5 in f5 (solution.py)\n    line 5\n"
        "Last Executed Input\n5"
    )


def test_time_limit_alone() -> None:
    r = result(tv(0, Verdict.WRONG_ANSWER, stdout="1\n"), tv(1, Verdict.TIME_LIMIT))
    assert render_feedback(P, r) == "Time Limit Exceeded\nLast Executed Input\n5"


def test_hidden_input_is_never_shown() -> None:
    r = result(tv(2, Verdict.RUNTIME_ERROR, error_type="ValueError", error_message="boom"))
    fb = render_feedback(P, r)
    assert "9 9" not in fb and "hidden test" in fb
    r = result(tv(2, Verdict.WRONG_ANSWER, stdout="17\n"))
    fb = render_feedback(P, r)
    assert "9 9" not in fb and "18" not in fb and fb.startswith("Test Case 1: Wrong Answer")


def test_up_to_two_wrong_answers_shortest_input_first_with_debug_output() -> None:
    r = result(tv(0, Verdict.WRONG_ANSWER, stdout="7\n", stderr="dbg\n"), tv(1, Verdict.WRONG_ANSWER, stdout="4\n"),
               tv(3, Verdict.WRONG_ANSWER, stdout="y\n"))
    assert render_feedback(P, r) == (
        "Test Case 1: Wrong Answer\nInput:\n5\nOutput:\n4\nExpected:\n5\n\n"
        "Test Case 2: Wrong Answer\nInput:\n1 2 3\nOutput:\n7\nExpected:\n6\nDebug Output:\ndbg"
    )


def test_caps_input_lines_and_value_length() -> None:
    r = result(tv(3, Verdict.WRONG_ANSWER, stdout="z" * 1000))
    fb = render_feedback(P, r)
    assert "Input:\n0\n1\n2\n3\n4\n5\n6\n7\n...\nOutput:" in fb  # 8 lines, then an ellipsis
    out = fb.split("Output:\n")[1].split("\nExpected:")[0]
    exp = fb.split("Expected:\n")[1]
    assert len(out) == 250 and out.endswith("...") and len(exp) == 250


def test_total_cap() -> None:
    r = result(tv(0, Verdict.RUNTIME_ERROR, error_type="E", error_message="m" * 5000,
                  frames=[{"lineno": 1, "name": "f", "line": "x" * 5000}] * 3))
    fb = render_feedback(P, r)
    assert len(fb) <= MAX_TOTAL


def test_format_errors() -> None:
    cut = AttemptResult(AttemptStatus.FORMAT_ERROR, error="the code block is not closed", truncated=True)
    assert "cut off" in render_feedback(P, cut) and "shorter" in render_feedback(P, cut)
    none = AttemptResult(AttemptStatus.FORMAT_ERROR, error="no ```python code block in the response")
    assert render_feedback(P, none).startswith("Format Error\n")


def test_passed_and_sandbox_errors_teach_nothing() -> None:
    assert render_feedback(P, result(tv(0, Verdict.PASSED))) is None
    assert render_feedback(P, AttemptResult(AttemptStatus.SANDBOX_ERROR, error="daemon gone")) is None
