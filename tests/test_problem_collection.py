"""The shipped problems: every reference solution passes every test and every wrong solution fails
at least one, on both executors (and the LiveCodeBench records' references pass, and so do those of the
cpu-hard suite, problems/cpu-hard/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdpo_discover.problems import load_livecodebench, load_problem, load_problems
from sdpo_discover.sandbox import Executor, Verdict, grade_code

ROOT = Path(__file__).resolve().parents[1] / "problems"
IDS = sorted(p.stem for p in ROOT.glob("*.json"))
CPU_HARD = ROOT / "cpu-hard"
CPU_HARD_IDS = sorted(p.stem for p in CPU_HARD.glob("*.json"))


def test_collection_shape() -> None:
    problems = [load_problem(ROOT / f"{i}.json") for i in IDS]
    assert len(problems) >= 10
    assert {p.test_type for p in problems} == {"stdin", "functional"}
    assert sum(p.difficulty == "hard" for p in problems) >= 3
    for p in problems:
        assert len(p.tests) >= 6, p.id
        assert (ROOT / "reference" / f"{p.id}.py").is_file() and (ROOT / "wrong" / f"{p.id}.py").is_file(), p.id
    assert "sum-two" in IDS  # the README's demo


@pytest.mark.parametrize("pid", IDS)
def test_reference_passes_and_wrong_fails(pid: str, executor: Executor) -> None:
    p = load_problem(ROOT / f"{pid}.json")
    good = grade_code(p, (ROOT / "reference" / f"{pid}.py").read_text(), executor)
    assert good.passed, [(t.index, t.verdict.value, t.detail, t.stderr[-300:]) for t in good.tests]
    bad = grade_code(p, (ROOT / "wrong" / f"{pid}.py").read_text(), executor)
    assert bad.status.value == "failed" and any(t.verdict is not Verdict.PASSED for t in bad.tests)


def test_livecodebench_references_pass(local_executor: Executor) -> None:
    lcb = ROOT / "livecodebench"
    problems = load_livecodebench(lcb / "lcb-stdin.json") + load_livecodebench(lcb / "lcb-batch.jsonl")
    for p in problems:
        qid = p.metadata["livecodebench"]["question_id"]
        result = grade_code(p, (lcb / "reference" / f"{qid}.py").read_text(), local_executor)
        assert result.passed, (p.id, json.dumps(result.to_json())[:800])


def test_cpu_hard_suite_shape() -> None:
    problems = load_problems(CPU_HARD)  # the folder, as bench/discovery_cpu.sh loads it
    assert sorted(p.id for p in problems) == CPU_HARD_IDS and len(CPU_HARD_IDS) == 34  # four screening rounds
    assert not set(CPU_HARD_IDS) & set(IDS)
    for p in problems:
        assert (p.test_type, p.difficulty, p.time_limit_s, p.memory_limit_mb) == ("stdin", "easy", 2.0, 256), p.id
        assert p.metadata["suite"] == "cpu-hard" and p.metadata["twist"].strip(), p.id
        assert 7 <= len(p.tests) <= 8 and sum(t.hidden for t in p.tests) == 2, p.id
        assert (CPU_HARD / "reference" / f"{p.id}.py").is_file(), p.id
        rate = p.metadata["base_pass_rate"]  # measured with the product's own pool, its settings beside it
        assert rate["samples"] >= 64 and rate["rate"] == round(rate["passed"] / rate["samples"], 4), p.id
        assert rate["settings"]["model"] == "qwen2.5-coder-0.5b" and rate["settings"]["fingerprint"], p.id


@pytest.mark.parametrize("pid", CPU_HARD_IDS)
def test_cpu_hard_reference_passes(pid: str, local_executor: Executor) -> None:
    p = load_problem(CPU_HARD / f"{pid}.json")
    good = grade_code(p, (CPU_HARD / "reference" / f"{pid}.py").read_text(), local_executor)
    assert good.passed, [(t.index, t.verdict.value, t.detail, t.stderr[-300:]) for t in good.tests]
