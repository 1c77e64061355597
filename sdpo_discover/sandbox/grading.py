"""Grading: a model response (or plain code) + a problem + an executor -> an AttemptResult."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..problems import Problem
from ..prompts import FENCE as _FENCE
from ..prompts import PY_TAGS as _PY_TAGS
from .base import Executor, RunOutcome, RunRequest, SandboxError, wall_limit_s
from .verdicts import (
    AttemptResult,
    AttemptStatus,
    TestVerdict,
    Verdict,
    functional_matches,
    stdout_matches,
)


def extract_code(response: str) -> tuple[str | None, str | None]:
    """The last fenced Python block of a model response (LiveCodeBench's rule) -> (code, problem).

    Returns (code, None) or (None, why): no code block, or a block opened but never closed (the
    response was cut off).
    """
    fences = list(_FENCE.finditer(response))
    blocks: list[str] = []
    i, unclosed = 0, False
    while i < len(fences):
        opener = fences[i]
        if i + 1 >= len(fences):
            unclosed = opener.group(1).lower() in _PY_TAGS
            break
        closer = fences[i + 1]
        if opener.group(1).lower() in _PY_TAGS:
            blocks.append(response[opener.end() + 1 : closer.start()])
        i += 2
    if blocks and blocks[-1].strip():
        return blocks[-1], None
    if unclosed:
        return None, "the code block is not closed: the response was cut off"
    return None, "no ```python code block in the response"


def code_from_text(text: str) -> tuple[str | None, str | None]:
    """A solution given by a user: a model response with a fenced block, or a plain .py file."""
    if _FENCE.search(text):
        return extract_code(text)
    return (text, None) if text.strip() else (None, "the solution is empty")


def request_for(problem: Problem, code: str) -> RunRequest:
    return RunRequest(
        code=code, test_type=problem.test_type, inputs=[t.input for t in problem.tests],
        function_name=problem.function_name, time_limit_s=problem.time_limit_s,
        memory_limit_mb=problem.memory_limit_mb,
    )


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def verdict_for(problem: Problem, rec: dict[str, Any]) -> TestVerdict:
    """One runner record -> one verdict. Order matters: limits first, then errors, then the answer."""
    i = rec["index"]
    test = problem.tests[i]
    err = rec.get("error") or {}
    sig = rec.get("signal")
    exit_code = rec.get("exit_code")
    v = TestVerdict(
        index=i, verdict=Verdict.PASSED, hidden=test.hidden, elapsed_s=rec.get("elapsed_s", 0.0),
        max_rss_kb=rec.get("max_rss_kb", 0), stdout=rec.get("stdout", ""), stderr=rec.get("stderr", ""),
        error_type=err.get("type"), error_message=err.get("message"), frames=err.get("frames") or [],
    )
    if problem.test_type == "functional" and rec.get("result") is not None:
        v.stdout = rec["result"]
    reported_oom = err.get("type") == "MemoryError" or (exit_code not in (0, None) and "MemoryError" in v.stderr[-300:])
    if rec.get("output_exceeded") or sig == signal.SIGXFSZ:
        v.verdict, v.detail = Verdict.OUTPUT_LIMIT, "the program printed (or wrote) more than the output limit"
    elif reported_oom or rec.get("max_rss_kb", 0) >= problem.memory_limit_mb * 1024:
        v.verdict, v.detail = Verdict.MEMORY_LIMIT, f"exceeded the {problem.memory_limit_mb} MiB memory limit"
    elif rec.get("timed_out") or sig == signal.SIGXCPU:
        v.verdict, tl = Verdict.TIME_LIMIT, problem.time_limit_s
        cpu, waited = rec.get("cpu_s", 0.0), rec.get("waited_s", 0.0)
        if rec.get("time_limit") == "wall":
            v.detail = (f"still running after {wall_limit_s(tl):g} s of wall-clock time, the hard limit, having "
                        f"used {cpu:.2f} s of CPU: the machine was too busy to run it")
        else:
            v.detail = f"took more than the {tl:g} s time limit ({cpu:.2f} s computing, {waited:.2f} s waiting)"
    elif sig == signal.SIGKILL and rec.get("max_rss_kb", 0) >= 0.9 * problem.memory_limit_mb * 1024:
        # Not killed by the runner (that would be a timeout) and near the limit: the kernel's OOM killer.
        v.verdict, v.detail = Verdict.MEMORY_LIMIT, "killed by the kernel (out of memory)"
    elif sig is not None:
        v.verdict, v.error_type = Verdict.RUNTIME_ERROR, v.error_type or f"Killed by {_signal_name(sig)}"
        v.detail = f"the program was killed by {_signal_name(sig)}"
    elif exit_code not in (0, None) or err:
        v.verdict = Verdict.RUNTIME_ERROR
        v.error_type = v.error_type or f"Exit code {exit_code}"
        v.detail = f"{v.error_type}: {v.error_message}" if v.error_message else v.error_type
    elif problem.test_type == "functional" and rec.get("result") is None:
        v.verdict, v.error_type = Verdict.RUNTIME_ERROR, "NoReturnValue"
        v.detail = "the program exited before the function returned a value"
    elif problem.test_type == "functional":
        ok = functional_matches(rec.get("result"), test.output)
        v.verdict = Verdict.PASSED if ok else Verdict.WRONG_ANSWER
    else:
        v.verdict = Verdict.PASSED if stdout_matches(v.stdout, test.output) else Verdict.WRONG_ANSWER
    if v.verdict is Verdict.WRONG_ANSWER:
        v.detail = "the output differs from the expected output"
    return v


def verdicts_from_outcome(problem: Problem, out: RunOutcome) -> list[TestVerdict]:
    verdicts = []
    for rec in out.records:
        if rec.get("attempt_filled_disk"):  # the program filled its work directory: its fault, not ours
            verdicts.append(TestVerdict(
                index=rec["index"], verdict=Verdict.RUNTIME_ERROR, hidden=problem.tests[rec["index"]].hidden,
                error_type="OSError", error_message="No space left on device (the program filled its work directory)",
                detail="the program filled its work directory; the remaining tests were not run",
            ))
            return verdicts
        if "runner_error" in rec:
            raise SandboxError(f"the runner failed on test {rec['index']}: {rec['runner_error']}")
        verdicts.append(verdict_for(problem, rec))
    if not out.complete and len(verdicts) < len(problem.tests):
        # The runner started, then vanished mid-test: the program killed it (kill(-1), kill of its parent).
        i = len(verdicts)
        verdicts.append(TestVerdict(
            index=i, verdict=Verdict.RUNTIME_ERROR, hidden=problem.tests[i].hidden, error_type="KilledTestRunner",
            error_message="the program killed the process running the tests",
            detail="the program killed the test runner; the remaining tests were not run",
        ))
    return verdicts


def grade_code(problem: Problem, code: str, executor: Executor) -> AttemptResult:
    start = time.monotonic()
    try:
        out = executor.run(request_for(problem, code))
        tests = verdicts_from_outcome(problem, out)
    except SandboxError as e:
        return AttemptResult(AttemptStatus.SANDBOX_ERROR, code=code, error=str(e), executor=executor.name,
                             elapsed_s=time.monotonic() - start)
    ok = len(tests) == len(problem.tests) and all(t.verdict is Verdict.PASSED for t in tests)
    return AttemptResult(AttemptStatus.PASSED if ok else AttemptStatus.FAILED, tests=tests, code=code,
                         executor=executor.name, elapsed_s=time.monotonic() - start)


def grade_response(problem: Problem, response: str, executor: Executor, truncated: bool = False,
                   allow_bare_code: bool = False) -> AttemptResult:
    """Grade a model response: extract the last ```python block, run it, compare outputs.

    `truncated`: the sampler stopped at its token limit; a response without a closed block is then a
    format error that says so. `allow_bare_code`: text without any fence is taken as code (files given
    by a user, not model output).
    """
    code, why = code_from_text(response) if allow_bare_code else extract_code(response)
    if code is None:
        if truncated:
            why = "the response was cut off at the token limit before the code block was complete"
        return AttemptResult(AttemptStatus.FORMAT_ERROR, error=why, truncated=truncated, executor=executor.name)
    result = grade_code(problem, code, executor)
    result.truncated = truncated
    return result


def grade_many(problem: Problem, responses: Iterable[str], executor: Executor, workers: int = 2,
               truncated: Iterable[bool] | None = None) -> list[AttemptResult]:
    """Grade several responses concurrently (the executor is thread-safe); results in input order."""
    responses = list(responses)
    flags = list(truncated) if truncated is not None else [False] * len(responses)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda rt: grade_response(problem, rt[0], executor, rt[1]), zip(responses, flags)))
