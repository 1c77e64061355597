"""Verdicts -> feedback text, in the style of an online judge (docs/reference/SDPO.md section 7).

The text is what the self-teacher sees (and what the multi-turn baseline appends to its prompt), so
it follows the paper's format and caps exactly:

- a runtime error alone: `Runtime Error`, the exception line, up to 3 frames of the program's own
  code with their source lines, then `Last Executed Input` and the input;
- else a time limit alone: `Time Limit Exceeded` and the last executed input (memory and output
  limits, which the paper folds into runtime errors, get the same shape with their own title);
- else a format error alone (no code block; or the response was cut off: say so and ask for a
  shorter answer);
- else up to 2 wrong-answer cases, shortest input first: `Test Case i: Wrong Answer` with Input,
  Output, Expected (each value at most 250 characters, the input at most 8 lines) and the program's
  stderr as `Debug Output` when it printed any;
- the whole text at most 2000 characters.

A hidden test's input and expected output are never shown. An attempt that passed, or whose
execution failed for reasons of the sandbox, has no feedback (None): it teaches nothing.
"""

from __future__ import annotations

from .problems import Problem
from .sandbox.verdicts import AttemptResult, AttemptStatus, TestVerdict, Verdict

MAX_TOTAL = 2000
MAX_VALUE = 250
MAX_INPUT_LINES = 8
MAX_WRONG_CASES = 2
MAX_FRAMES = 3

_LIMIT_TITLES = {
    Verdict.TIME_LIMIT: "Time Limit Exceeded",
    Verdict.MEMORY_LIMIT: "Memory Limit Exceeded",
    Verdict.OUTPUT_LIMIT: "Output Limit Exceeded",
}
HIDDEN_INPUT = "(hidden test: input not shown)"


def clip(text: str, limit: int = MAX_VALUE) -> str:
    text = text.rstrip("\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip_input(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    if len(lines) > MAX_INPUT_LINES:
        lines = lines[:MAX_INPUT_LINES] + ["..."]
    return clip("\n".join(lines))


def _input_of(problem: Problem, v: TestVerdict) -> str:
    return HIDDEN_INPUT if v.hidden else clip_input(problem.tests[v.index].input)


def runtime_error_text(problem: Problem, v: TestVerdict) -> str:
    exc = f"{v.error_type}: {v.error_message}" if v.error_message else (v.error_type or "Runtime error")
    parts = ["Runtime Error", clip(exc)]
    for fr in v.frames[-MAX_FRAMES:]:  # innermost last, as Python prints them
        where = f"Line {fr.get('lineno')} in {fr.get('name')} (solution.py)"
        parts.append(f"{where}\n    {clip(fr.get('line') or '', 200)}" if fr.get("line") else where)
    parts += ["Last Executed Input", _input_of(problem, v)]
    return "\n".join(parts)


def limit_text(problem: Problem, v: TestVerdict) -> str:
    return "\n".join([_LIMIT_TITLES[v.verdict], "Last Executed Input", _input_of(problem, v)])


def format_error_text(result: AttemptResult) -> str:
    if result.truncated:
        return ("Format Error\nYour response was cut off before the code was complete. "
                "Give a shorter answer: the complete program in one ```python code block.")
    return ("Format Error\nYour response did not contain a complete ```python code block"
            f" ({result.error}). Put the complete program in one ```python code block.")


def wrong_answer_text(problem: Problem, cases: list[TestVerdict]) -> str:
    blocks = []
    for n, v in enumerate(cases, 1):
        if v.hidden:
            blocks.append(f"Test Case {n}: Wrong Answer\n(hidden test: input and expected output not shown)")
            continue
        t = problem.tests[v.index]
        b = [f"Test Case {n}: Wrong Answer", "Input:", clip_input(t.input), "Output:", clip(v.stdout) or "(empty)",
             "Expected:", clip(t.output)]
        if v.stderr.strip():
            b += ["Debug Output:", clip(v.stderr)]
        blocks.append("\n".join(b))
    return "\n\n".join(blocks)


def render_feedback(problem: Problem, result: AttemptResult) -> str | None:
    """The judge's feedback for one graded attempt, or None when there is nothing to teach."""
    if result.status in (AttemptStatus.PASSED, AttemptStatus.SANDBOX_ERROR):
        return None
    if result.status is AttemptStatus.FORMAT_ERROR:
        return _cap(format_error_text(result))
    failing = [v for v in result.tests if v.verdict is not Verdict.PASSED]
    by = {kind: [v for v in failing if v.verdict is kind] for kind in Verdict}
    if by[Verdict.RUNTIME_ERROR]:
        return _cap(runtime_error_text(problem, by[Verdict.RUNTIME_ERROR][0]))
    for kind in _LIMIT_TITLES:
        if by[kind]:
            return _cap(limit_text(problem, by[kind][0]))
    wrong = sorted(by[Verdict.WRONG_ANSWER], key=lambda v: (v.hidden, len(problem.tests[v.index].input), v.index))
    if wrong:
        return _cap(wrong_answer_text(problem, wrong[:MAX_WRONG_CASES]))
    return None


def _cap(text: str) -> str:
    return text if len(text) <= MAX_TOTAL else text[: MAX_TOTAL - 3] + "..."
