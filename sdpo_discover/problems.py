"""Problems and their tests: the `problem.json` format and the LiveCodeBench loader.

A problem is what one `solve` run attacks: a statement, how a program is called (stdin or a
function), its tests, and its limits. Everything the rest of the tool needs about a problem is here;
nothing here knows about models, sandboxes or feedback.

`problem.json` (JSON Schema: `sdpo_discover/schemas/problem.schema.json`)::

    {
      "id": "max-subarray",                 # [a-z0-9][a-z0-9._-]*, unique within a collection
      "title": "Maximum subarray",
      "statement": "Given n integers ...",  # shown to the model verbatim
      "starter_code": null,                 # optional; functional problems usually have one
      "test_type": "stdin",                 # "stdin" or "functional"
      "function_name": null,                # required when test_type is "functional"
      "time_limit_s": 2.0,                  # per test: own time     (default 2.0; docs/sandbox.md)
      "memory_limit_mb": 256,               # per test               (default 256)
      "tests": [
        {"input": "3\\n1 -2 3\\n", "output": "3\\n", "hidden": false}
      ],
      "difficulty": "easy",                 # optional: easy | medium | hard
      "metadata": {}                        # optional, free-form, kept as is
    }

A test marked `"hidden": true` still decides pass/fail, but feedback never reveals its input or
expected output (see feedback.py). For `functional` problems each line of `input` is one JSON
argument and `output` is one JSON value (LiveCodeBench's convention).
"""

from __future__ import annotations

import base64
import json
import pickle
import re
import zlib
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

TestType = Literal["stdin", "functional"]
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_DIFFICULTIES = ("easy", "medium", "hard")


class ProblemError(ValueError):
    """A problem file that cannot be used. The message names the file and the field."""


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    input: str
    output: str
    hidden: bool = False


@dataclass(frozen=True)
class Problem:
    id: str
    title: str
    statement: str
    test_type: TestType
    tests: tuple[TestCase, ...]
    function_name: str | None = None
    starter_code: str | None = None
    time_limit_s: float = 2.0
    memory_limit_mb: int = 256
    difficulty: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where it was loaded from (file path, LiveCodeBench id); not part of the format

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tests"] = [asdict(t) for t in self.tests]
        d.pop("source")
        return d


# --------------------------------------------------------------------------------------------
# problem.json


def _fail(where: str, fieldname: str, msg: str) -> ProblemError:
    return ProblemError(f"{where}: field '{fieldname}': {msg}")


def problem_from_dict(d: Any, where: str = "<problem>") -> Problem:
    """Validate a decoded problem.json object and build a Problem. Raises ProblemError."""
    if not isinstance(d, dict):
        raise ProblemError(f"{where}: expected a JSON object at the top level, got {type(d).__name__}")
    known = {
        "id", "title", "statement", "starter_code", "test_type", "function_name", "time_limit_s",
        "memory_limit_mb", "tests", "difficulty", "metadata", "$schema",
    }
    unknown = sorted(set(d) - known)
    if unknown:
        raise _fail(where, unknown[0], f"unknown field (allowed: {', '.join(sorted(known - {'$schema'}))})")

    def req_str(name: str) -> str:
        if name not in d:
            raise _fail(where, name, "is required")
        v = d[name]
        if not isinstance(v, str) or not v.strip():
            raise _fail(where, name, f"must be a non-empty string, got {v!r:.60}")
        return v

    def opt(name: str, types: type | tuple[type, ...], default: Any) -> Any:
        v = d.get(name, default)
        if v is None:
            return default
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise _fail(where, name, f"must be {_tname(types)}, got {v!r}")
        if not isinstance(v, types):
            raise _fail(where, name, f"must be {_tname(types)}, got {v!r:.60}")
        return v

    pid = req_str("id")
    if not _ID_RE.match(pid):
        raise _fail(where, "id", f"{pid!r} must match {_ID_RE.pattern} (lower-case letters, digits, '.', '_', '-')")
    title = req_str("title")
    statement = req_str("statement")
    test_type = req_str("test_type")
    if test_type not in ("stdin", "functional"):
        raise _fail(where, "test_type", f"must be 'stdin' or 'functional', got {test_type!r}")
    function_name = opt("function_name", str, None)
    if test_type == "functional":
        if not function_name:
            raise _fail(where, "function_name", "is required when test_type is 'functional'")
        if not function_name.isidentifier():
            raise _fail(where, "function_name", f"{function_name!r} is not a Python identifier")
    elif function_name is not None:
        raise _fail(where, "function_name", "only applies when test_type is 'functional'")
    starter_code = opt("starter_code", str, None)
    time_limit_s = float(opt("time_limit_s", (int, float), 2.0))
    if not 0 < time_limit_s <= 600:
        raise _fail(where, "time_limit_s", f"must be in (0, 600] seconds, got {time_limit_s}")
    memory_limit_mb = opt("memory_limit_mb", int, 256)
    if not 32 <= memory_limit_mb <= 16384:
        raise _fail(where, "memory_limit_mb", f"must be in [32, 16384] MiB, got {memory_limit_mb}")
    difficulty = opt("difficulty", str, None)
    if difficulty is not None and difficulty not in _DIFFICULTIES:
        raise _fail(where, "difficulty", f"must be one of {', '.join(_DIFFICULTIES)}, got {difficulty!r}")
    metadata = opt("metadata", dict, {})

    raw_tests = d.get("tests")
    if not isinstance(raw_tests, list) or not raw_tests:
        raise _fail(where, "tests", "must be a non-empty list of {input, output, hidden?} objects")
    tests = []
    for i, t in enumerate(raw_tests):
        name = f"tests[{i}]"
        if not isinstance(t, dict):
            raise _fail(where, name, f"must be an object, got {t!r:.60}")
        extra = sorted(set(t) - {"input", "output", "hidden"})
        if extra:
            raise _fail(where, f"{name}.{extra[0]}", "unknown field (allowed: input, output, hidden)")
        for k in ("input", "output"):
            if not isinstance(t.get(k), str):
                raise _fail(where, f"{name}.{k}", f"must be a string, got {t.get(k)!r:.60}")
        hidden = t.get("hidden", False)
        if not isinstance(hidden, bool):
            raise _fail(where, f"{name}.hidden", f"must be true or false, got {hidden!r}")
        if test_type == "functional":
            _check_functional_test(t["input"], t["output"], where, name)
        tests.append(TestCase(t["input"], t["output"], hidden))

    return Problem(
        id=pid, title=title, statement=statement, test_type=test_type,  # type: ignore[arg-type]
        tests=tuple(tests), function_name=function_name, starter_code=starter_code,
        time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb, difficulty=difficulty,
        metadata=metadata, source=where,
    )


def _tname(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {"str": "a string", "int": "an integer", "float": "a number", "dict": "an object", "bool": "true or false"}
    return " or ".join(dict.fromkeys(names.get(t.__name__, t.__name__) for t in ts))


def _check_functional_test(inp: str, out: str, where: str, name: str) -> None:
    for j, line in enumerate(inp.strip().split("\n") if inp.strip() else []):
        try:
            json.loads(line)
        except json.JSONDecodeError as e:
            raise _fail(where, f"{name}.input", f"line {j + 1} is not a JSON value ({e.msg}): {line!r:.60}") from None
    try:
        json.loads(out)
    except json.JSONDecodeError as e:
        raise _fail(where, f"{name}.output", f"is not a JSON value ({e.msg}): {out!r:.60}") from None


def _read_text(path: Path) -> str:
    """A problem file's text, or a ProblemError that names the file and what went wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProblemError(f"{path}: cannot read: {e}") from None


def load_problem_json(path: str | Path) -> Problem:
    path = Path(path)
    text = _read_text(path)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProblemError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    return problem_from_dict(d, str(path))


# --------------------------------------------------------------------------------------------
# LiveCodeBench (code_generation_lite), docs/reference/SDPO.md section 8


class _StringsOnlyUnpickler(pickle.Unpickler):
    """Refuses every global: a pickle can then only build plain values (we accept a str only)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain strings are allowed")


MAX_DECOMPRESSED = 512 * 2**20  # bytes: far above any real record's tests, far below a zip bomb's output


def _inflate(data: bytes, where: str) -> bytes:
    """zlib-decompress at most MAX_DECOMPRESSED bytes: a small blob must not expand into all of memory."""
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED or d.unconsumed_tail:
        raise _fail(where, "private_test_cases",
                    f"decompresses to more than {MAX_DECOMPRESSED:,} bytes; refusing it (a corrupt or hostile "
                    "record?). Check the record, or raise sdpo_discover.problems.MAX_DECOMPRESSED if it is genuine")
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def decode_private_tests(blob: str, where: str = "<record>") -> list[dict[str, Any]]:
    """LiveCodeBench's private_test_cases: plain JSON, or base64 -> zlib -> pickle -> JSON string.
    The zlib layer is capped at MAX_DECOMPRESSED bytes; the pickle may build a plain string only."""
    blob = blob.strip()
    if not blob:
        return []
    if blob.startswith("["):
        try:
            v = json.loads(blob)
        except json.JSONDecodeError as e:
            raise _fail(where, "private_test_cases", f"not valid JSON: {e.msg}") from None
    else:
        try:
            raw = _inflate(base64.b64decode(blob, validate=True), where)
        except (ValueError, zlib.error) as e:
            raise _fail(where, "private_test_cases", f"neither JSON nor base64+zlib: {e}") from None
        try:
            s = _StringsOnlyUnpickler(BytesIO(raw)).load()
        except Exception as e:  # any unpickling failure is bad input, never code execution
            raise _fail(where, "private_test_cases", f"rejected pickle payload: {e}") from None
        if not isinstance(s, str):
            raise _fail(where, "private_test_cases", f"pickle must hold a string, got {type(s).__name__}")
        try:
            v = json.loads(s)
        except json.JSONDecodeError as e:
            raise _fail(where, "private_test_cases", f"decoded payload is not JSON: {e.msg}") from None
    if not isinstance(v, list):
        raise _fail(where, "private_test_cases", "must decode to a list of test objects")
    return v


def problem_from_livecodebench(rec: Any, where: str = "<record>", hide_private: bool = False) -> Problem:
    """Build a Problem from one code_generation_lite record.

    Public tests are always shown in feedback; private tests are shown too unless `hide_private`
    (the paper's feedback reports any failing test).
    """
    if not isinstance(rec, dict):
        raise ProblemError(f"{where}: a LiveCodeBench record must be a JSON object")
    for k in ("question_id", "question_content", "public_test_cases"):
        if k not in rec:
            raise _fail(where, k, "is required in a LiveCodeBench record")
    qid = str(rec["question_id"])
    where = f"{where} (question_id {qid})"
    public = rec["public_test_cases"]
    if isinstance(public, str):
        try:
            public = json.loads(public) if public.strip() else []
        except json.JSONDecodeError as e:
            raise _fail(where, "public_test_cases", f"not valid JSON: {e.msg}") from None
    private = rec.get("private_test_cases") or []
    if isinstance(private, str):
        private = decode_private_tests(private, where)
    metadata = rec.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata) if metadata.strip() else {}
        except json.JSONDecodeError as e:
            raise _fail(where, "metadata", f"not valid JSON: {e.msg}") from None

    tests: list[dict[str, Any]] = []
    test_types = set()
    for group, items, hidden in (("public_test_cases", public, False), ("private_test_cases", private, hide_private)):
        if not isinstance(items, list):
            raise _fail(where, group, "must be a list of {input, output, testtype}")
        for i, t in enumerate(items):
            if not isinstance(t, dict) or not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
                raise _fail(where, f"{group}[{i}]", "must be an object with string input and output")
            test_types.add(t.get("testtype", "stdin"))
            tests.append({"input": t["input"], "output": t["output"], "hidden": hidden})
    if len(test_types) > 1:
        raise _fail(where, "public_test_cases", f"mixed test types {sorted(test_types)}")
    test_type = test_types.pop() if test_types else "stdin"
    slug = re.sub(r"[^a-z0-9._-]+", "-", f"lcb-{rec.get('platform', 'x')}-{qid}".lower()).strip("-")
    d = {
        "id": slug,
        "title": rec.get("question_title") or qid,
        "statement": rec["question_content"],
        "starter_code": rec.get("starter_code") or None,
        "test_type": test_type,
        "function_name": metadata.get("func_name") if test_type == "functional" else None,
        "tests": tests,
        "difficulty": rec.get("difficulty") if rec.get("difficulty") in _DIFFICULTIES else None,
        "metadata": {
            "livecodebench": {
                k: rec.get(k) for k in ("question_id", "contest_id", "contest_date", "platform") if k in rec
            },
            **metadata,
        },
    }
    return problem_from_dict(d, where)


def load_livecodebench(path: str | Path, hide_private: bool = False) -> list[Problem]:
    """Load one record (.json) or many (.jsonl, or a .json list) of LiveCodeBench records."""
    path = Path(path)
    text = _read_text(path)
    records: list[tuple[str, Any]] = []
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or (stripped.startswith("{") and "\n{" in text.strip()):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((f"{path}:{n}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ProblemError(f"{path}: line {n}: not valid JSON: {e.msg}") from None
    else:
        try:
            v = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProblemError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
        records = [(f"{path}[{i}]", r) for i, r in enumerate(v)] if isinstance(v, list) else [(str(path), v)]
    if not records:
        raise ProblemError(f"{path}: no LiveCodeBench records in the file")
    return [problem_from_livecodebench(r, w, hide_private) for w, r in records]


def is_livecodebench_record(d: Any) -> bool:
    return isinstance(d, dict) and "question_content" in d and "public_test_cases" in d


def problem_files(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The files named by `paths`: files as given, folders as their *.json and *.jsonl files (sorted, not
    recursive, hidden files left out). Returns (files, errors): one error per missing path or empty folder."""
    files: list[Path] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file()
                           and not p.name.startswith("."))
            if not found:
                errors.append(f"{path}: a folder with no .json or .jsonl files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def load_problems(path: str | Path, hide_private: bool = False) -> list[Problem]:
    """Load a problem.json, a LiveCodeBench record file (.json / .jsonl), or a folder: every such file in
    it and its subfolders (hidden ones skipped), in path order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.suffix in (".json", ".jsonl") and f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(path).parts))
        if not files:
            raise ProblemError(f"{path}: folder holds no *.json or *.jsonl problem files, at any depth")
        return [p for f in files for p in load_problems(f, hide_private)]
    if path.suffix == ".jsonl":
        return load_livecodebench(path, hide_private)
    try:
        first = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProblemError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProblemError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise ProblemError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if is_livecodebench_record(first) or (isinstance(first, list) and first and is_livecodebench_record(first[0])):
        return load_livecodebench(path, hide_private)
    return [problem_from_dict(first, str(path))]


def load_problem(path: str | Path, hide_private: bool = False) -> Problem:
    """Exactly one problem from a file (a problem.json or a one-record LiveCodeBench file)."""
    problems = load_problems(path, hide_private)
    if len(problems) != 1:
        raise ProblemError(f"{path}: holds {len(problems)} problems; pass a file with exactly one")
    return problems[0]
