"""`sdpo-discover lcb select` and `lcb screen`.

select: a small code_generation_lite written here (test.jsonl .. test6.jsonl, with the records of
problems/livecodebench/ among them, and the same rows as the dataset's parquet folder release_v6/), filtered by
release, window, platform and difficulty, ERRATA.md's questions left out; its output read back by
problems.load_problems and by bench; broken records, an empty window, missing pyarrow / datasets.

screen: a bench of best-of-k pools over very short questions with the tiny in-process model, a synthetic judge
(library) and the real command (local sandbox); labels against pass@k computed here by brute force."""

from __future__ import annotations

import base64
import builtins
import hashlib
import importlib.util
import json
import math
import pickle
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SyntheticJudge, require
from typer.testing import CliRunner

from sdpo_discover import lcb
from sdpo_discover.bench import BenchDir, gather_problems, run_bench
from sdpo_discover.cli import app
from sdpo_discover.models import save_tiny_model
from sdpo_discover.problems import Problem, load_problems
from sdpo_discover.store import read_jsonl

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
FIXTURES = Path(__file__).resolve().parent.parent / "problems" / "livecodebench"
PAPER = ["--release", "release_v6", "--since", "2025-02-01", "--until", "2025-05-01"]


def _encode(tests: list[dict[str, str]]) -> str:
    """LiveCodeBench's packing of private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def record(qid: str, date: str, platform: str = "atcoder", difficulty: str = "hard", title: str | None = None) -> dict[str, Any]:
    """A very short stdin question in code_generation_lite's layout (short enough for the tiny model's context)."""
    return {"question_title": title or f"Q {qid}", "question_content": "Print A+B.", "platform": platform,
            "question_id": qid, "contest_id": qid.split("_")[0], "contest_date": date, "starter_code": "",
            "difficulty": difficulty,
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": _encode([{"input": "5 7\n", "output": "12\n", "testtype": "stdin"}]),
            "metadata": "{}"}


def _lines(*recs: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in recs)


# The window [2025-02-01, 2025-05-01) of release_v6 holds: the three records of lcb-batch.jsonl, abc392_a (on
# --since), abc395_e and abc401_b; not abc402_a (on --until), nor the ERRATA.md questions arc189_a and LeetCode's
# most-frequent-ids (question_id 3363, named by its slug).
PAPER_IDS = ["lcb-leetcode-90001", "lcb-codeforces-9001a", "lcb-leetcode-90002", "lcb-atcoder-abc392_a",
             "lcb-atcoder-abc395_e", "lcb-atcoder-abc401_b"]
SHORT_IN_WINDOW = ["lcb-atcoder-abc392_a", "lcb-atcoder-abc395_e", "lcb-atcoder-abc401_b"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code_generation_lite")
    files = {
        "test.jsonl": _lines(record("abc301_a", "2023-05-13T00:00:00", difficulty="easy"),
                             record("2777", "2023-05-20T00:00:00", platform="leetcode", difficulty="medium")),
        "test2.jsonl": _lines(record("abc350_d", "2024-04-20T00:00:00")),
        "test3.jsonl": _lines(record("1990_C", "2024-07-01T00:00:00", platform="codeforces", difficulty="medium")),
        "test4.jsonl": _lines(record("abc370_e", "2024-09-07T00:00:00")),
        "test5.jsonl": json.dumps(json.loads((FIXTURES / "lcb-stdin.json").read_text())) + "\n",  # 2025-01-11
        "test6.jsonl": (FIXTURES / "lcb-batch.jsonl").read_text() + _lines(
            record("abc392_a", "2025-02-01T00:00:00", difficulty="easy"),
            record("arc189_a", "2025-02-08T00:00:00"),  # ERRATA.md: erroneous tests
            record("3363", "2025-03-01T00:00:00", platform="leetcode", title="most-frequent-ids"),  # ERRATA.md
            record("abc395_e", "2025-03-01T00:00:00"),
            record("abc401_b", "2025-04-30T23:59:59", difficulty="medium"),
            record("abc402_a", "2025-05-01T00:00:00", difficulty="easy")),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    # the dataset's parquet layout: one folder per version tag, contest_date a timestamp column there
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return root  # test_parquet_files_give_the_same_selection says so (a failure in CI)
    rows = [json.loads(line) for name in sorted(files, key=lcb.file_index) for line in files[name].splitlines()]
    for r in rows:
        r["contest_date"] = datetime.fromisoformat(r["contest_date"])
    (root / "parquet" / "release_v6").mkdir(parents=True)
    half = len(rows) // 2
    pq.write_table(pa.Table.from_pylist(rows[:half]), root / "parquet" / "release_v6" / "test-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[half:]), root / "parquet" / "release_v6" / "test-00001-of-00002.parquet")
    return root


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _raw(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_papers_selection_in_one_command(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "v6.jsonl"
    res = _cli("lcb", "select", str(dataset), *PAPER, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert [p.id for p in load_problems(out)] == PAPER_IDS
    assert "arc189_a (erroneous tests)" in res.output and "3363 (erroneous tests)" in res.output
    # the records as LiveCodeBench has them: each chosen line of test6.jsonl, byte for byte
    source = {json.loads(line)["question_id"]: line for line in (dataset / "test6.jsonl").read_text().splitlines()}
    assert out.read_text().splitlines() == [source[q] for q in ("90001", "9001A", "90002", "abc392_a", "abc395_e", "abc401_b")]
    # every other command reads it: bench's problem gathering takes the file as it is
    assert [p.id for p, _, _ in gather_problems([out])] == PAPER_IDS
    # --keep-errata keeps ERRATA.md's two
    res = _cli("lcb", "select", str(dataset), *PAPER, "--keep-errata", "--out", str(tmp_path / "all.jsonl"))
    assert res.exit_code == 0, res.output
    assert len(load_problems(tmp_path / "all.jsonl")) == len(PAPER_IDS) + 2


def test_release_platform_and_difficulty_filters(dataset: Path, tmp_path: Path) -> None:
    def ids(*args: str) -> list[str]:
        out = tmp_path / f"{hashlib.sha256(repr(args).encode()).hexdigest()[:8]}.jsonl"
        res = _cli("lcb", "select", str(dataset), *args, "--out", str(out))
        assert res.exit_code == 0, (args, res.output)
        return [json.loads(line)["question_id"] for line in out.read_text().splitlines()]

    assert ids("--release", "release_v1") == ["abc301_a", "2777"]
    assert ids("--release", "v1") == ["abc301_a", "2777"]
    assert ids("--release", "v2_v4") == ["abc350_d", "1990_C", "abc370_e"]
    assert ids("--release", "v5") == ["sdx001_c"]
    everything = ids("--release", "release_v6")
    assert len(everything) == 2 + 1 + 1 + 1 + 1 + 3 + 4  # every record less ERRATA.md's two
    assert ids() == everything == ids("--release", "release_latest")  # no --release: every test*.jsonl there
    assert ids("--release", "v6", "--since", "2025-02-01", "--until", "2025-05-01", "--platform", "atcoder") == \
        ["abc392_a", "abc395_e", "abc401_b"]
    assert ids("--release", "v6", "--platform", "leetcode,codeforces", "--difficulty", "easy") == ["9001A", "90002"]
    assert ids("--release", "v6", "--difficulty", "HARD") == ["abc395_e"]
    # an explicit testN.jsonl outside the release is skipped, with a note
    out = tmp_path / "explicit.jsonl"
    res = _cli("lcb", "select", str(dataset / "test.jsonl"), str(dataset / "test6.jsonl"), "--release", "v1",
               "--out", str(out))
    assert res.exit_code == 0 and "test6.jsonl: skipped, not part of v1" in res.output, res.output
    assert len(_raw(out)) == 2


def test_parquet_files_give_the_same_selection(dataset: Path, tmp_path: Path) -> None:
    require("pyarrow", importlib.util.find_spec("pyarrow") is not None, "pyarrow is not installed",
            "Run scripts/setup (it installs the lcb extra: pip install -e '.[dev,lcb]').")
    jl, pq = tmp_path / "jsonl.jsonl", tmp_path / "parquet.jsonl"
    assert _cli("lcb", "select", str(dataset), *PAPER, "--out", str(jl)).exit_code == 0
    res = _cli("lcb", "select", str(dataset / "parquet"), *PAPER, "--out", str(pq))
    assert res.exit_code == 0, res.output
    assert "release_v6/ (2 parquet files)" in res.output
    assert _raw(pq) == _raw(jl)  # the timestamp column comes back as the record's ISO string
    assert [p.to_json() for p in load_problems(pq)] == [p.to_json() for p in load_problems(jl)]
    # v1_v6 names the same files as release_v6; the folder itself, or its files, work too
    for source, release in ((dataset / "parquet", "v1_v6"), (dataset / "parquet" / "release_v6", "release_v6")):
        out = tmp_path / f"{release}.jsonl"
        res = _cli("lcb", "select", str(source), "--release", release, "--since", "2025-02-01", "--until",
                   "2025-05-01", "--out", str(out))
        assert res.exit_code == 0 and _raw(out) == _raw(jl), res.output
    # a version the parquet folder does not hold is refused, saying which folders there are
    res = _cli("lcb", "select", str(dataset / "parquet"), "--release", "v6", "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "no parquet folder for v6 (found: release_v6)" in res.output, res.output


def test_folder_output_is_read_by_every_command(dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "chosen"
    res = _cli("lcb", "select", str(dataset), *PAPER, "--out", str(folder))
    assert res.exit_code == 0, res.output
    assert sorted(f.name for f in folder.iterdir()) == sorted(f"{i}.json" for i in PAPER_IDS)
    assert sorted(p.id for p in load_problems(folder)) == sorted(PAPER_IDS)
    assert sorted(p.id for p, _, _ in gather_problems([folder])) == sorted(PAPER_IDS)
    res = _cli("problems", "validate", str(folder))
    assert res.exit_code == 0, res.output
    res = _cli("lcb", "select", str(dataset), *PAPER, "--out", str(folder))  # not empty now: refused
    assert res.exit_code == 2 and "exists and is not an empty folder" in res.output


def test_a_broken_record_is_named_and_left_out_only_with_skip_bad(tmp_path: Path) -> None:
    src = tmp_path / "lcb"
    src.mkdir()
    bad_tests = record("abc500_c", "2025-03-02T00:00:00")
    bad_tests["public_test_cases"] = "[{not json"
    no_date = record("abc500_d", "2025-03-03T00:00:00")
    no_date["contest_date"] = "March"
    good = [record("abc500_a", "2025-03-01T00:00:00"), record("abc500_e", "2025-03-04T00:00:00")]
    torn = json.dumps(record("abc500_b", "2025-03-01T00:00:00"))[:150]  # cut off: not JSON
    (src / "test6.jsonl").write_text(_lines(good[0]) + torn + "\n" + _lines(bad_tests, no_date, good[1]))
    out = tmp_path / "out.jsonl"
    res = _cli("lcb", "select", str(src), "--release", "v6", "--out", str(out))
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    for line, qid in ((2, "abc500_b"), (3, "abc500_c"), (4, "abc500_d")):
        assert f"test6.jsonl line {line} (question_id {qid})" in text, (qid, res.output)
    assert "3 broken LiveCodeBench records" in text and "--skip-bad" in text and not out.exists()
    res = _cli("lcb", "select", str(src), "--release", "v6", "--skip-bad", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert [r["question_id"] for r in _raw(out)] == ["abc500_a", "abc500_e"]
    assert "skipped a broken record" in res.output and "abc500_c" in res.output


def test_an_empty_window_says_what_the_files_hold(dataset: Path, tmp_path: Path) -> None:
    res = _cli("lcb", "select", str(dataset), "--release", "release_v6", "--since", "2026-01-01", "--until",
               "2026-02-01", "--out", str(tmp_path / "none.jsonl"))
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "the files hold 15 questions, dated 2023-05-13 to 2025-05-01" in text, text
    assert "contest date in [2026-01-01, 2026-02-01): 0" in text and not (tmp_path / "none.jsonl").exists()
    for args, message in ((["--release", "release_v9"], "test7.jsonl, test8.jsonl, test9.jsonl are not there"), (["--release", "v7_v3"], "not a code_generation_lite version tag"),
                          (["--since", "2025-02-30"], "--since '2025-02-30': not a date"),
                          (["--since", "2025-03-01", "--until", "2025-02-01"], "is not before --until"),
                          (["--platform", "topcoder"], "unknown topcoder")):
        res = _cli("lcb", "select", str(dataset), *args, "--out", str(tmp_path / "x.jsonl"))
        assert res.exit_code == 2 and message in " ".join(res.output.split()), (args, res.output)
    # a file whose release cannot be told is refused when a release is asked for, read whole when not
    res = _cli("lcb", "select", str(FIXTURES / "lcb-batch.jsonl"), "--release", "v6", "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "cannot tell which release" in res.output
    res = _cli("lcb", "select", str(FIXTURES / "lcb-batch.jsonl"), "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 0 and len(_raw(tmp_path / "x.jsonl")) == 3


def test_errata_are_data_with_their_source_named() -> None:
    doc = json.loads(lcb.ERRATA_FILE.read_text())
    assert "LiveCodeBench's ERRATA.md" in doc["source"]
    # the list of docs/reference/SDPO.md section 8, all of it
    section = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "SDPO.md").read_text()
    line = next(x for x in section.splitlines() if "Known-bad questions are listed in LiveCodeBench's ERRATA.md" in x)
    listed = {w.strip(" .,") for part in line.split(":")[2:] for w in part.replace("Interactive", "").replace(
        "Erroneous tests", "").split(",")}
    assert {w for w in listed if w} == set(doc["questions"]) and len(doc["questions"]) == 17
    assert lcb.errata_reason({"question_id": "abc337_e", "platform": "atcoder"}, lcb.errata()) == "interactive"
    assert lcb.errata_reason({"question_id": "3000", "platform": "leetcode", "question_title": "find-the-peaks"},
                             lcb.errata()) == "multiple accepted answers"
    assert lcb.errata_reason({"question_id": "3001", "platform": "leetcode", "question_title": "x"}, lcb.errata()) is None


def test_missing_pyarrow_and_datasets_say_how_to_install(dataset: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_optional(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("pyarrow", "datasets"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)  # every import statement asks it, cached or not
    res = _cli("lcb", "select", str(dataset / "parquet"), *PAPER, "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "needs pyarrow" in res.output and "pip install 'sdpo-discover[lcb]'" in res.output
    res = _cli("lcb", "select", "--hub", *PAPER, "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "pip install datasets" in res.output, res.output
    assert not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# screen


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    return 1 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(("n", "c", "k", "expect"), [
    (64, 0, 64, "very-hard"), (64, 1, 64, "not-hard"),  # from exactly 64 samples pass@64 is 0 or 1
    (256, 1, 64, "hard"), (256, 2, 64, "hard"), (256, 3, 64, "not-hard"),
    (2944, 1, 64, "very-hard"), (2944, 2, 64, "hard"), (2944, 40, 64, "not-hard"),
    (8, 0, 8, "very-hard"), (8, 1, 8, "not-hard"),  # a pool under 64: k = the pool
])
def test_labels_follow_the_papers_thresholds_on_pass_at_64(n: int, c: int, k: int, expect: str) -> None:
    got = lcb.label(n, c)
    want = _brute_pass_at_k(n, c, k)
    assert got["k"] == k and got["pass@k"] == pytest.approx(want, abs=1e-12)
    assert got["pass@1"] == pytest.approx(c / n)
    assert got["label"] == ("very-hard" if want < 0.03 else "hard" if want < 0.5 else "not-hard") == expect
    assert lcb.keeps(expect, "hard") == (expect != "not-hard")
    assert lcb.keeps(expect, "very-hard") == (expect == "very-hard")


class ShareJudge(SyntheticJudge):
    """abc392_a always passes, abc395_e when the attempt's sha256 falls in 1/4, abc401_b never."""

    def passes(self, problem_id: str, digest: int) -> bool:
        return {"lcb-atcoder-abc392_a": True, "lcb-atcoder-abc395_e": digest % 4 == 0}.get(problem_id, False)


@pytest.fixture(scope="module")
def short_questions(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("screen")
    sel = root / "short.jsonl"
    res = _cli("lcb", "select", str(dataset), *PAPER, "--platform", "atcoder", "--out", str(sel))
    assert res.exit_code == 0, res.output
    tiny = save_tiny_model(root / "tiny")
    return {"root": root, "file": sel, "tiny": tiny,
            "flags": {"model": str(tiny), "batch_size": 32, "sandbox": "local"},
            "sets": ["max_new_tokens=4", "gen_batch_size=32"]}


def test_screen_labels_each_pool_and_writes_the_subset(short_questions: dict[str, Any], tmp_path: Path) -> None:
    q = short_questions
    out = tmp_path / "screen"
    plan = lcb.start_screen(out, [q["file"]], pool=64, flags=q["flags"], config_file=None, assignments=q["sets"],
                            resume=False, command=["lcb", "screen"])
    assert plan.methods == ["best-of-k"] and plan.pool == 64 and [r.id for r in plan.runs] == \
        [f"{i}/best-of-k/pool" for i in SHORT_IN_WINDOW]
    assert (out / "questions.jsonl").read_text() == q["file"].read_text()  # the screened records, a select output
    assert run_bench(BenchDir(out), plan, judge=ShareJudge()) == "done"
    res = lcb.write_screen(out)
    assert json.loads((out / "screen.json").read_text()) == json.loads(json.dumps(res))
    rows = {r["id"]: r for r in res["questions"]}
    for pid, r in rows.items():  # from the pool itself: its attempts as graded
        attempts = read_jsonl(out / "runs" / pid / "best-of-k" / "pool" / "attempts.jsonl")
        assert r["pool"] == len(attempts) == 64
        assert r["passed"] == sum(a["status"] == "passed" for a in attempts)
        assert r["pass@k"] == pytest.approx(_brute_pass_at_k(64, r["passed"], 64))
    assert rows["lcb-atcoder-abc392_a"]["passed"] == 64 and rows["lcb-atcoder-abc392_a"]["label"] == "not-hard"
    assert 0 < rows["lcb-atcoder-abc395_e"]["passed"] < 64 and rows["lcb-atcoder-abc395_e"]["label"] == "not-hard"
    assert rows["lcb-atcoder-abc401_b"]["passed"] == 0 and rows["lcb-atcoder-abc401_b"]["label"] == "very-hard"
    assert res["k"] == 64 and res["warning"] is None and res["complete"]
    assert res["counts"] == {"very-hard": 1, "hard": 0, "not-hard": 2, "unfinished": 0}
    # --keep very-hard / hard: the records as select wrote them (hard includes very hard)
    kept = lcb.write_subset(out, res, "hard", tmp_path / "hard.jsonl")
    assert [i.problem.id for i in kept] == ["lcb-atcoder-abc401_b"]
    assert (tmp_path / "hard.jsonl").read_text().splitlines() == [q["file"].read_text().splitlines()[2]]


def test_screen_command_resume_and_a_bench_reusing_its_pools(short_questions: dict[str, Any], tmp_path: Path) -> None:
    q = short_questions
    out, sub = tmp_path / "screen", tmp_path / "very-hard"
    common = ["--model", str(q["tiny"]), "--sandbox", "local", "--batch-size", "4", "--set", "max_new_tokens=6",
              "--set", "gen_batch_size=4"]
    res = _cli("lcb", "screen", str(q["file"]), "--pool", "8", "--out", str(out), "--keep", "very-hard",
               "--write", str(sub), *common, "-q")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "--pool 8 < 64: questions are labelled by pass@8" in text
    assert "pass@8" in text and "very hard" in text
    res_json = json.loads((out / "screen.json").read_text())
    assert res_json["k"] == 8 and "pass@8, not pass@64" in res_json["warning"]
    # the random tiny model writes no code block: nothing passes, every question is very hard (pass@8 = 0)
    assert [(r["pool"], r["passed"], r["label"]) for r in res_json["questions"]] == [(8, 0, "very-hard")] * 3
    assert sorted(p.id for p in load_problems(sub)) == SHORT_IN_WINDOW
    attempts = {r: len(read_jsonl(out / "runs" / r / "best-of-k" / "pool" / "attempts.jsonl")) for r in SHORT_IN_WINDOW}
    # --resume: a finished screen samples nothing again; a plan that differs is refused
    res = _cli("lcb", "screen", "--resume", "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    assert {r: len(read_jsonl(out / "runs" / r / "best-of-k" / "pool" / "attempts.jsonl")) for r in SHORT_IN_WINDOW} == attempts
    res = _cli("lcb", "screen", "--resume", "--out", str(out), "--pool", "16")
    assert res.exit_code == 2 and "pool: 8 planned, 16 now" in res.output
    # a later bench of the subset reuses the pools: nothing is sampled again
    bench = tmp_path / "bench"
    res = _cli("bench", str(sub), "--methods", "best-of-k", "--pool", "8", "--pools-from", str(out), "--out", str(bench),
               *common)
    assert res.exit_code == 0, res.output
    assert "reused 3 best-of-k pool(s)" in res.output
    for r in SHORT_IN_WINDOW:
        a = read_jsonl(bench / "runs" / r / "best-of-k" / "pool" / "attempts.jsonl")
        assert a == read_jsonl(out / "runs" / r / "best-of-k" / "pool" / "attempts.jsonl")
    # a measured pass rate written into the problems' metadata keeps the pools reusable (the task is the same);
    # a changed test does not
    changed = tmp_path / "changed"
    changed.mkdir()
    for i, p in enumerate(load_problems(sub)):
        d = p.to_json()
        d["metadata"] = {**d["metadata"], "base_pass_rate": {"passed": 0, "pool": 8}}
        if i == 0:
            d["tests"][0]["output"] += "0"
        (changed / f"{p.id}.json").write_text(json.dumps(d))
    bench2 = tmp_path / "bench2"
    res = _cli("bench", str(changed), "--methods", "best-of-k", "--pool", "8", "--pools-from", str(out), "--out",
               str(bench2), *common)
    assert res.exit_code == 0, res.output
    assert "reused 2 best-of-k pool(s)" in res.output
    for i, p in enumerate(sorted(load_problems(changed), key=lambda p: p.id)):
        pool = bench2 / "runs" / p.id / "best-of-k" / "pool"
        assert json.loads((pool / "problem.json").read_text())["metadata"]["base_pass_rate"]["pool"] == 8


def test_screen_bad_input(short_questions: dict[str, Any], tmp_path: Path) -> None:
    q = short_questions
    out = tmp_path / "s"
    res = _cli("lcb", "screen", str(q["file"]), "--out", str(out), "--keep", "hard")
    assert res.exit_code == 2 and "--keep and --write go together" in res.output and not out.exists()
    res = _cli("lcb", "screen", str(Path(__file__).resolve().parent.parent / "problems" / "sum-two.json"), "--out", str(out))
    assert res.exit_code == 2 and "not a LiveCodeBench record" in res.output and not out.exists()
    res = _cli("lcb", "screen", str(q["file"]), "--out", str(out), "--pool", "2", "--batch-size", "4",
               "--model", str(q["tiny"]))
    assert res.exit_code == 2 and "--pool 2 is smaller than a batch" in res.output and not out.exists()
    res = _cli("lcb", "screen", "--resume", "--out", str(tmp_path / "nothing"))
    assert res.exit_code == 2 and "not a bench directory" in res.output
