"""problem.json validation and the LiveCodeBench loader."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from sdpo_discover.problems import (
    ProblemError, decode_private_tests, load_livecodebench, load_problem, load_problems, problem_from_dict,
    problem_from_livecodebench,
)

GOOD = {
    "id": "add", "title": "Add", "statement": "Add two numbers.", "test_type": "stdin",
    "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "2 2\n", "output": "4\n", "hidden": True}],
}


def test_minimal_problem_gets_defaults() -> None:
    p = problem_from_dict(GOOD, "x.json")
    assert (p.time_limit_s, p.memory_limit_mb, p.function_name) == (2.0, 256, None)
    assert [t.hidden for t in p.tests] == [False, True]


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"id": "Bad Id"}, "id", "must match"),
        ({"title": ""}, "title", "non-empty string"),
        ({"test_type": "interactive"}, "test_type", "'stdin' or 'functional'"),
        ({"test_type": "functional"}, "function_name", "is required"),
        ({"function_name": "f"}, "function_name", "only applies"),
        ({"time_limit_s": 0}, "time_limit_s", "(0, 600]"),
        ({"time_limit_s": "2"}, "time_limit_s", "must be"),
        ({"memory_limit_mb": 8}, "memory_limit_mb", "[32, 16384]"),
        ({"memory_limit_mb": True}, "memory_limit_mb", "must be an integer"),
        ({"difficulty": "insane"}, "difficulty", "one of"),
        ({"tests": []}, "tests", "non-empty list"),
        ({"tests": [{"input": "1"}]}, "tests[0].output", "must be a string"),
        ({"tests": [{"input": "1", "output": "1", "hidden": "yes"}]}, "tests[0].hidden", "true or false"),
        ({"tests": [{"input": "1", "output": "1", "weight": 2}]}, "tests[0].weight", "unknown field"),
        ({"colour": "blue"}, "colour", "unknown field"),
    ],
)
def test_invalid_fields_are_named(patch: dict, field: str, words: str) -> None:
    with pytest.raises(ProblemError) as e:
        problem_from_dict({**GOOD, **patch}, "p.json")
    msg = str(e.value)
    assert msg.startswith("p.json: field '" + field + "'") and words in msg


def test_missing_required_field() -> None:
    d = dict(GOOD)
    del d["statement"]
    with pytest.raises(ProblemError, match=r"field 'statement': is required"):
        problem_from_dict(d, "p.json")


def test_functional_tests_must_be_json() -> None:
    d = {**GOOD, "test_type": "functional", "function_name": "add",
         "tests": [{"input": "[1, 2]\nnot json", "output": "3"}]}
    with pytest.raises(ProblemError, match=r"tests\[0\]\.input': line 2 is not a JSON value"):
        problem_from_dict(d, "p.json")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="no such file"):
        load_problem(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x",\n  oops}')
    with pytest.raises(ProblemError, match=r"bad.json: not valid JSON: .* line 2"):
        load_problem(bad)


def test_schema_file_accepts_the_collection_and_rejects_bad_input() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    root = Path(__file__).resolve().parents[1]
    schema = json.loads((root / "sdpo_discover/schemas/problem.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    files = sorted((root / "problems").glob("*.json"))
    assert len(files) >= 10
    for f in files:
        d = json.loads(f.read_text())
        assert not list(v.iter_errors(d)), f
        load_problem(f)  # and our own validator agrees
    assert list(v.iter_errors({**GOOD, "test_type": "functional"}))  # function_name missing
    # what the loader refuses, the schema refuses too
    for bad in ({**GOOD, "title": "  \n"}, {**GOOD, "statement": "\t"}, {**GOOD, "function_name": "f"}):
        assert list(v.iter_errors(bad)), bad
        with pytest.raises(ProblemError):
            problem_from_dict(bad)


# ---- LiveCodeBench -----------------------------------------------------------------------------


def _pickled(obj: object) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


def _record(**kw: object) -> dict:
    rec = {
        "question_title": "Q", "question_content": "Print n.", "platform": "atcoder", "question_id": "abc001_a",
        "contest_id": "abc001", "contest_date": "2024-01-01T00:00:00", "starter_code": "", "difficulty": "easy",
        "public_test_cases": json.dumps([{"input": "1\n", "output": "1\n", "testtype": "stdin"}]),
        "private_test_cases": _pickled(json.dumps([{"input": "2\n", "output": "2\n", "testtype": "stdin"}])),
        "metadata": "{}",
    }
    rec.update(kw)
    return rec


def test_lcb_record_with_pickled_private_tests() -> None:
    p = problem_from_livecodebench(_record())
    assert p.id == "lcb-atcoder-abc001_a" and p.test_type == "stdin"
    assert [(t.input, t.hidden) for t in p.tests] == [("1\n", False), ("2\n", False)]
    assert problem_from_livecodebench(_record(), hide_private=True).tests[1].hidden


class _Evil:
    def __reduce__(self):  # noqa: ANN204 - what an attacker would ship
        return (print, ("pwned",))


def test_lcb_zlib_layer_refuses_a_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    import sdpo_discover.problems as problems

    text = json.dumps([{"input": "2\n", "output": "2\n", "testtype": "stdin"}])
    monkeypatch.setattr(problems, "MAX_DECOMPRESSED", len(pickle.dumps(text)))  # exactly fits: accepted
    assert decode_private_tests(_pickled(text))[0]["input"] == "2\n"
    bomb = base64.b64encode(zlib.compress(b"\0" * 10_000_000)).decode()  # 10 MB from ~13 kB of base64
    assert len(bomb) < 20_000
    monkeypatch.setattr(problems, "MAX_DECOMPRESSED", 1_000_000)
    with pytest.raises(ProblemError, match="more than 1,000,000 bytes; refusing"):
        decode_private_tests(bomb)
    truncated = base64.b64encode(zlib.compress(pickle.dumps(text))[:-6]).decode()
    with pytest.raises(ProblemError, match="neither JSON nor base64"):
        decode_private_tests(truncated)


def test_lcb_pickle_layer_rejects_anything_but_strings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ProblemError, match="rejected pickle payload"):
        decode_private_tests(_pickled(_Evil()))
    assert "pwned" not in capsys.readouterr().out
    with pytest.raises(ProblemError, match="must hold a string"):
        decode_private_tests(_pickled([1, 2]))
    with pytest.raises(ProblemError, match="neither JSON nor base64"):
        decode_private_tests("%%%not-base64%%%")


def test_lcb_functional_record() -> None:
    rec = _record(
        platform="leetcode", question_id="1", starter_code="class Solution:\n    def twoSum(self, a: int, b: int) -> int:\n",
        public_test_cases=json.dumps([{"input": "1\n2", "output": "3", "testtype": "functional"}]),
        private_test_cases=json.dumps([{"input": "5\n5", "output": "10", "testtype": "functional"}]),
        metadata=json.dumps({"func_name": "twoSum"}),
    )
    p = problem_from_livecodebench(rec)
    assert (p.test_type, p.function_name, len(p.tests)) == ("functional", "twoSum", 2)
    assert p.metadata["livecodebench"]["platform"] == "leetcode"


def test_lcb_record_errors_name_the_question() -> None:
    with pytest.raises(ProblemError, match=r"question_id q9.*public_test_cases"):
        problem_from_livecodebench(_record(question_id="q9", public_test_cases="[oops"))
    with pytest.raises(ProblemError, match="question_content"):
        problem_from_livecodebench({"question_id": "x", "public_test_cases": "[]"})


def test_lcb_files_in_the_repo_load() -> None:
    root = Path(__file__).resolve().parents[1] / "problems" / "livecodebench"
    one = load_livecodebench(root / "lcb-stdin.json")
    many = load_livecodebench(root / "lcb-batch.jsonl")
    assert len(one) == 1 and len(many) >= 2
    assert any(p.test_type == "functional" for p in many)
    assert all(len(p.tests) >= 2 for p in one + many)
    assert load_problem(root / "lcb-stdin.json").id == one[0].id


def test_lcb_jsonl_line_errors_give_the_line(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(_record()) + "\n{broken\n")
    with pytest.raises(ProblemError, match=r"x.jsonl: line 2"):
        load_livecodebench(f)


def test_a_folder_loads_its_subfolders_too(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1] / "problems"
    got = load_problems(root)
    ids = {p.id for p in got}
    assert "sum-two" in ids and any(i.startswith("lcb-") for i in ids)  # problems/livecodebench/ is included
    assert len(got) == len(list(root.glob("*.json"))) + sum(
        len(load_problems(f)) for sub in ("livecodebench", "cpu-hard") for f in (root / sub).iterdir()
        if f.suffix in (".json", ".jsonl"))
    assert "rotate-right" in ids  # problems/cpu-hard/ too
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "b" / "p.json").write_text(json.dumps(GOOD))
    (tmp_path / ".hidden" / "junk.json").write_text("{")
    assert [p.id for p in load_problems(tmp_path)] == [GOOD["id"]]
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    with pytest.raises(ProblemError, match="at any depth"):
        load_problems(tmp_path / "empty")
