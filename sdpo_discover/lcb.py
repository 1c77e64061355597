"""`sdpo-discover lcb`: choose LiveCodeBench questions (`select`) and screen them by their base pass@k (`screen`).

**select** reads LiveCodeBench's `code_generation_lite` (docs/reference/SDPO.md section 8) from local files -- its
`test*.jsonl` files, or the dataset's parquet files -- or, for users with a model hub, through the `datasets`
library; filters by release version, platform, difficulty and contest-date window; leaves out the questions
listed in LiveCodeBench's ERRATA.md (`data/livecodebench_errata.json`); and writes the chosen records as they
are, as one `.jsonl` or a folder of one-record `.json` files: what `problems.load_problems` (and so `solve`,
`bench`, `check`, `problems validate`) reads.

Versions (the layout of code_generation_lite): `test.jsonl` holds release_v1's questions, `testN.jsonl` the
questions added by release N. A release tag names a set of those files:

    release_vN      test.jsonl .. testN.jsonl (cumulative: every question up to release N)
    release_latest  every test*.jsonl there is
    vN              testN.jsonl alone (test.jsonl for v1): the questions new in release N
    vA_vB           testA.jsonl .. testB.jsonl

The dataset's parquet files lie in one folder per such tag (`release_v6/test-00000-of-00009.parquet`, ...):
the folder's name tells the version of its rows.

**screen** is a bench of best-of-k pools only (bench.prepare, bench.run_bench): each question's pool of `--pool`
independent samples of the current model, saved as a bench directory that a later `bench --pools-from` reuses
(bench.import_pools). Each question is labelled by its base pass@64 from the pool (metrics.pass_at_k, the
unbiased estimator), as in the paper: hard when pass@64 < 0.5, very hard when pass@64 < 0.03 (very hard
questions are hard too). A pool smaller than 64 is labelled by pass@n (k = the pool) instead, and says so:
pass@n <= pass@64, so such labels call more questions hard than pass@64 would.

Standard library only at import; pyarrow (parquet), datasets (the hub) and the model stack are imported when
used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from .problems import Problem, ProblemError, problem_files, problem_from_livecodebench

ERRATA_FILE = Path(__file__).parent / "data" / "livecodebench_errata.json"
HUB_DATASET = "livecodebench/code_generation_lite"
PLATFORMS = ("leetcode", "codeforces", "atcoder")
DIFFICULTIES = ("easy", "medium", "hard")
PAPER_SELECTION = "--release release_v6 --since 2025-02-01 --until 2025-05-01"
INSTALL_LCB = "pip install 'sdpo-discover[lcb]' (or: pip install pyarrow)"
_TEST_RE = re.compile(r"^test(\d*)\.jsonl$")
_QID_RE = re.compile(r'"question_id"\s*:\s*"([^"\\]*)"')
_MAX_LISTED = 10


class LcbError(ValueError):
    """Bad input to `lcb select` / `lcb screen`: the message says what and what to do (exit 2)."""


# ---------------------------------------------------------------------------------------------
# The errata list and the version tags


def errata() -> dict[str, str]:
    """LiveCodeBench's ERRATA.md as data: question id (or LeetCode slug) -> why it is known to be bad."""
    return dict(json.loads(ERRATA_FILE.read_text(encoding="utf-8"))["questions"])


def errata_reason(rec: dict[str, Any], table: dict[str, str]) -> str | None:
    """Why `rec` is in the errata (None: it is not). ERRATA.md names AtCoder questions by question_id and LeetCode
    ones by their slug, which code_generation_lite keeps in question_title."""
    qid = str(rec.get("question_id", ""))
    if qid in table:
        return table[qid]
    title = str(rec.get("question_title") or "")
    return table.get(title) if rec.get("platform") == "leetcode" else None


def file_name(index: int) -> str:
    return "test.jsonl" if index == 1 else f"test{index}.jsonl"


def file_index(name: str) -> int | None:
    """test.jsonl -> 1, test6.jsonl -> 6; any other name -> None."""
    m = _TEST_RE.match(name)
    if not m or m.group(1) in ("0", "1"):
        return None
    return int(m.group(1) or 1)


def release_files(tag: str, available: Sequence[int] = ()) -> tuple[int, ...]:
    """The test*.jsonl indices a version tag names (release_latest: every index in `available`)."""
    if tag == "release_latest":
        return tuple(sorted(available))
    if m := re.fullmatch(r"release_v([1-9]\d*)", tag):
        return tuple(range(1, int(m.group(1)) + 1))
    if m := re.fullmatch(r"v([1-9]\d*)", tag):
        return (int(m.group(1)),)
    if (m := re.fullmatch(r"v([1-9]\d*)_v([1-9]\d*)", tag)) and int(m.group(1)) < int(m.group(2)):
        return tuple(range(int(m.group(1)), int(m.group(2)) + 1))
    raise LcbError(f"--release {tag!r}: not a code_generation_lite version tag; use release_vN (test.jsonl .. "
                   "testN.jsonl), release_latest, vN (testN.jsonl alone) or vA_vB (testA.jsonl .. testB.jsonl), "
                   "e.g. --release release_v6")


def _tag_files(name: str) -> frozenset[int] | None:
    """The indices a parquet config folder's name stands for (None: not a version tag; release_latest unknown)."""
    if name == "release_latest":
        return None
    try:
        return frozenset(release_files(name))
    except LcbError:
        return None


# ---------------------------------------------------------------------------------------------
# Sources: which files to read for a release


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str  # "jsonl", "json", "parquet", "hub"


def _files_in(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def resolve_sources(paths: Sequence[Path], release: str | None, notes: list[str]) -> list[Source]:
    """The files to read: a code_generation_lite folder (its test*.jsonl files of `release`, or its parquet config
    folder for `release`), or files (.jsonl, .json, .parquet). Files whose version cannot be told are refused when a
    release is asked for. `notes` gets a line on what was chosen."""
    want = release_files(release) if release not in (None, "release_latest") else None
    out: list[Source] = []
    for path in paths:
        if path.is_dir():
            out += _resolve_folder(path, release, want, notes)
        elif path.is_file():
            out += _resolve_file(path, release, want, notes)
        else:
            raise LcbError(f"{path}: no such file or folder. Pass code_generation_lite's folder (its test*.jsonl or "
                           "parquet files), such files, or --hub")
    if not out:
        raise LcbError(f"no LiveCodeBench files of {release} among {', '.join(map(str, paths))}")
    return out


def _resolve_folder(folder: Path, release: str | None, want: tuple[int, ...] | None, notes: list[str]) -> list[Source]:
    tests = {i: p for p in _files_in(folder, "test*.jsonl") if (i := file_index(p.name)) is not None}
    if tests:
        if want is None:
            chosen = [tests[i] for i in sorted(tests)]
            notes.append(f"{folder}: {release or 'no --release, so'} every test*.jsonl there: "
                         f"{', '.join(p.name for p in chosen)}")
            return [Source(p, "jsonl") for p in chosen]
        missing = [file_name(i) for i in want if i not in tests]
        if missing:
            raise LcbError(f"{folder}: {release} is {', '.join(file_name(i) for i in want)}, but {', '.join(missing)} "
                           f"{'is' if len(missing) == 1 else 'are'} not there (found: "
                           f"{', '.join(tests[i].name for i in sorted(tests))}). Download the missing files, or choose "
                           f"the release the files hold (vN: testN.jsonl alone)")
        notes.append(f"{folder}: {release} = {', '.join(file_name(i) for i in want)}")
        return [Source(tests[i], "jsonl") for i in want]
    direct = _files_in(folder, "*.parquet")
    if direct:
        return [s for p in direct for s in _resolve_file(p, release, want, notes)]
    configs = {sub.name: sub for sub in sorted(folder.iterdir()) if sub.is_dir() and _files_in(sub, "*.parquet")}
    if configs:
        tag = release or "release_latest"
        sub = configs.get(tag)
        if sub is None and want is not None:  # the same files under another name (release_v6 = v1_v6)
            sub = next((s for n, s in configs.items() if _tag_files(n) == frozenset(want)), None)
        if sub is None:
            raise LcbError(f"{folder}: no parquet folder for {tag} (found: {', '.join(configs)}); pass --release with "
                           "one of those, or the folder of the release you want")
        files = _files_in(sub, "*.parquet")
        notes.append(f"{folder}: {tag} = {sub.name}/ ({len(files)} parquet file{'s' * (len(files) != 1)})")
        return [Source(p, "parquet") for p in files]
    others = [p for p in _files_in(folder, "*.json*") if p.suffix in (".json", ".jsonl")]
    if others:
        return [s for p in others for s in _resolve_file(p, release, want, notes)]
    raise LcbError(f"{folder}: holds no test*.jsonl, no parquet files and no .json/.jsonl record files; pass "
                   "code_generation_lite's folder (from the dataset's files) or the files themselves")


def _resolve_file(path: Path, release: str | None, want: tuple[int, ...] | None, notes: list[str]) -> list[Source]:
    kind = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}.get(path.suffix)
    if kind is None:
        raise LcbError(f"{path}: not a .jsonl, .json or .parquet file of LiveCodeBench records")
    if release is None:
        return [Source(path, kind)]
    if kind == "parquet":  # the dataset keeps each version's rows in a folder named after it
        folder = path.parent.name
        has = _tag_files(folder)
        if folder != release and (has is None or want is None or not has <= set(want)):
            raise LcbError(f"{path}: cannot tell whether its rows belong to {release} (its folder '{folder}' is "
                           f"{'not a version tag' if has is None else 'another version'}); pass the parquet folder "
                           f"of {release} (e.g. code_generation_lite/{release}/), or drop --release to take every "
                           "record in the file")
        return [Source(path, kind)]
    idx = file_index(path.name)
    if idx is None:
        raise LcbError(f"{path}: cannot tell which release it belongs to (only test.jsonl .. testN.jsonl, or parquet "
                       "files in a version folder, say); drop --release to take every record in it")
    if want is not None and idx not in want:
        notes.append(f"{path}: skipped, not part of {release}")
        return []
    return [Source(path, kind)]


# ---------------------------------------------------------------------------------------------
# Reading records


@dataclass
class Item:
    """One record as read: where it is (file and line or row), its question_id if known, the record (or why not)."""

    where: str
    qid: str | None
    rec: dict[str, Any] | None
    text: str | None = None  # the record's own line, kept verbatim for a .jsonl source
    error: str | None = None
    date: datetime | None = None
    problem: Problem | None = None


def _jsonable(v: Any) -> Any:
    """Parquet and datasets give datetimes (contest_date) and numpy-ish values: the plain JSON a record holds."""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day).isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return v.item()
    return v


def _qid_of(obj: Any) -> str | None:
    if isinstance(obj, dict) and obj.get("question_id") not in (None, ""):
        return str(obj["question_id"])
    return None


def read_items(src: Source) -> Iterator[Item]:
    if src.kind == "jsonl":
        yield from _read_jsonl(src.path)
    elif src.kind == "json":
        yield from _read_json(src.path)
    elif src.kind == "parquet":
        yield from _read_parquet(src.path)
    else:  # pragma: no cover
        raise AssertionError(src.kind)


def _read_jsonl(path: Path) -> Iterator[Item]:
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise LcbError(f"{path}: cannot read: {e}") from None
    with f:
        n = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError as e:
                raise LcbError(f"{path}: line {n + 1}: not UTF-8 text ({e.reason}); is it a LiveCodeBench .jsonl?") from None
            if not line:
                return
            n += 1
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            where = f"{path} line {n}"
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                m = _QID_RE.search(text)
                yield Item(where, m.group(1) if m else None, None, error=f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(rec, dict):
                yield Item(where, None, None, error=f"a record must be a JSON object, got {type(rec).__name__}")
                continue
            yield Item(where, _qid_of(rec), rec, text=text.strip())


def _read_json(path: Path) -> Iterator[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LcbError(f"{path}: cannot read: {e}") from None
    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        m = _QID_RE.search(text)
        yield Item(f"{path} line {e.lineno}", m.group(1) if m else None, None, error=f"not valid JSON ({e.msg})")
        return
    if isinstance(v, dict):
        yield Item(f"{path} line 1", _qid_of(v), v, text=text.strip() if "\n" not in text.strip() else None)
        return
    if not isinstance(v, list):
        yield Item(f"{path} line 1", None, None, error="must hold a LiveCodeBench record (an object) or a list of them")
        return
    for i, rec in enumerate(v):
        where = f"{path} item {i + 1}"
        if isinstance(rec, dict):
            yield Item(where, _qid_of(rec), rec)
        else:
            yield Item(where, None, None, error=f"a record must be a JSON object, got {type(rec).__name__}")


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LcbError(f"reading parquet files needs pyarrow, which is not installed: {INSTALL_LCB}; or pass the "
                       "dataset's test*.jsonl files instead") from None
    return pq


def _read_parquet(path: Path) -> Iterator[Item]:
    pq = _pyarrow_parquet()
    try:
        pf = pq.ParquetFile(str(path))
        n = 0
        for batch in pf.iter_batches(batch_size=32):
            for row in batch.to_pylist():
                n += 1
                rec = _jsonable(row)
                yield Item(f"{path} row {n}", _qid_of(rec), rec)
    except LcbError:
        raise
    except Exception as e:  # pyarrow's errors: a truncated or foreign file
        raise LcbError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None


def read_hub(release: str | None, repo: str = HUB_DATASET) -> Iterator[Item]:
    """The records of one version through the `datasets` library (needs a model hub; optional)."""
    try:
        import datasets
    except ImportError:
        raise LcbError("--hub reads LiveCodeBench through the `datasets` library, which is not installed: "
                       "pip install datasets (and a reachable model hub). Without one, download code_generation_lite's "
                       "test*.jsonl (or parquet) files and pass their folder instead of --hub") from None
    config = release or "release_latest"
    try:
        ds = datasets.load_dataset(repo, config, split="test")  # the dataset's parquet configs, named by version
    except Exception as e:
        try:  # older copies of the dataset: a loading script that takes version_tag
            ds = datasets.load_dataset(repo, version_tag=config, split="test", trust_remote_code=True)
        except Exception:
            raise LcbError(f"could not load {repo} ({config}) through datasets: {type(e).__name__}: {e}. Newer "
                           "datasets versions no longer run the dataset's loading script; download its test*.jsonl "
                           "(or parquet) files and pass their folder instead") from None
    for n, row in enumerate(ds, 1):
        rec = _jsonable(dict(row))
        yield Item(f"{repo} ({config}) row {n}", _qid_of(rec), rec)


def contest_date(value: Any) -> datetime:
    """A record's contest_date as a naive datetime (UTC when it carries a zone). Raises ValueError."""
    if isinstance(value, datetime):
        d = value
    elif isinstance(value, str) and value.strip():
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"contest_date must be an ISO date, got {value!r:.40}")
    return d.astimezone(timezone.utc).replace(tzinfo=None) if d.tzinfo else d


def parse_day(text: str, option: str) -> datetime:
    try:
        return contest_date(text)
    except ValueError:
        raise LcbError(f"{option} {text!r}: not a date; give YYYY-MM-DD (e.g. 2025-02-01)") from None


def parse_choices(text: str | None, allowed: tuple[str, ...], option: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    got = tuple(dict.fromkeys(x.strip().lower() for x in text.split(",") if x.strip()))
    bad = [x for x in got if x not in allowed]
    if bad or not got:
        raise LcbError(f"{option} {text!r}: {'unknown ' + ', '.join(bad) if bad else 'nothing given'}; "
                       f"a comma-separated list of {', '.join(allowed)}")
    return got


def _check(item: Item) -> None:
    """The fields a selection reads: a bad one makes the record broken (item.error)."""
    rec = item.rec
    assert rec is not None
    if item.qid is None:
        item.error = "no question_id"
        return
    for k in ("platform", "question_content", "public_test_cases"):
        if k not in rec:
            item.error = f"field '{k}' is missing"
            return
    try:
        item.date = contest_date(rec.get("contest_date"))
    except (ValueError, TypeError) as e:
        item.error = f"field 'contest_date': {e}"


# ---------------------------------------------------------------------------------------------
# select


@dataclass
class Selection:
    chosen: list[Item]
    read: int  # records read (broken ones included)
    counts: list[tuple[str, int]]  # each filter and the records left after it
    errata_excluded: list[tuple[str, str]]  # (question_id, why)
    bad: list[str]  # "where (question_id X): why", skipped with --skip-bad
    notes: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None


def _bad_line(item: Item) -> str:
    return f"{item.where} (question_id {item.qid or 'unknown'}): {item.error}"


def select(paths: Sequence[Path], *, release: str | None = None, since: datetime | None = None,
           until: datetime | None = None, platforms: Sequence[str] | None = None,
           difficulties: Sequence[str] | None = None, keep_errata: bool = False, skip_bad: bool = False,
           hub: bool = False, hub_repo: str = HUB_DATASET) -> Selection:
    """The questions of `release` with since <= contest_date < until, of the platforms and difficulties asked, less
    the errata. Every record's question_id, platform and contest_date are checked; a chosen record is checked
    whole (its tests decoded: problems.problem_from_livecodebench). A broken record raises LcbError naming it
    (with its line) unless skip_bad. Raises LcbError when nothing is left, with what the files hold."""
    if since is not None and until is not None and since >= until:
        raise LcbError(f"--since {since.date()} is not before --until {until.date()}: the window "
                       "since <= contest_date < until is empty")
    if release is not None:
        release_files(release)  # a bad tag is refused before anything is read
    notes: list[str] = []
    if hub:
        if paths:
            raise LcbError("give either SOURCE files/folders or --hub, not both")
        streams: list[Iterator[Item]] = [read_hub(release, hub_repo)]
    else:
        if not paths:
            raise LcbError("give SOURCE: code_generation_lite's folder (its test*.jsonl or parquet files) or such "
                           "files; or --hub to load it through the datasets library")
        streams = [read_items(s) for s in resolve_sources(paths, release, notes)]
    table = {} if keep_errata else errata()
    read = 0
    stage = {"window": 0, "platform": 0, "difficulty": 0}
    bad: list[Item] = []
    errata_out: list[tuple[str, str]] = []
    chosen: list[Item] = []
    seen: dict[tuple[str, str], str] = {}
    first = last = None
    for stream in streams:
        for item in stream:
            read += 1
            if item.error is None:
                _check(item)
            if item.error is not None:
                bad.append(item)
                continue
            rec, d = item.rec, item.date
            assert rec is not None and d is not None
            first = d if first is None or d < first else first
            last = d if last is None or d > last else last
            if (since is not None and d < since) or (until is not None and d >= until):
                continue
            stage["window"] += 1
            if platforms is not None and str(rec.get("platform")).lower() not in platforms:
                continue
            stage["platform"] += 1
            if difficulties is not None and str(rec.get("difficulty")).lower() not in difficulties:
                continue
            stage["difficulty"] += 1
            why = errata_reason(rec, table)
            if why is not None:
                errata_out.append((item.qid or "?", why))
                continue
            try:
                item.problem = problem_from_livecodebench(rec, item.where)
            except ProblemError as e:
                item.error = str(e).replace(f"{item.where} (question_id {item.qid}): ", "")
                bad.append(item)
                continue
            key = (str(rec.get("platform")), item.qid or "")
            if key in seen:
                notes.append(f"{item.where}: question {item.qid} again (first at {seen[key]}); kept once")
                continue
            seen[key] = item.where
            chosen.append(item)
    if bad and not skip_bad:
        listed = "\n  ".join(_bad_line(b) for b in bad[:_MAX_LISTED])
        more = f"\n  ... and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise LcbError(f"{len(bad)} broken LiveCodeBench record{'s' * (len(bad) != 1)}; nothing was written:\n  "
                       f"{listed}{more}\nFix or re-download the file, or pass --skip-bad to leave "
                       f"{'them' if len(bad) != 1 else 'it'} out and load the rest")
    counts = [("read", read - len(bad))]
    if since is not None or until is not None:
        counts.append((f"contest date in [{since.date() if since else '-'}, {until.date() if until else '-'})",
                       stage["window"]))
    if platforms is not None:
        counts.append((f"platform {', '.join(platforms)}", stage["platform"]))
    if difficulties is not None:
        counts.append((f"difficulty {', '.join(difficulties)}", stage["difficulty"]))
    if not keep_errata:
        counts.append(("not in LiveCodeBench's ERRATA.md", stage["difficulty"] - len(errata_out)))
    sel = Selection(chosen=chosen, read=read, counts=counts, errata_excluded=errata_out,
                    bad=[_bad_line(b) for b in bad], notes=notes, first=first, last=last)
    if not chosen:
        raise LcbError(_nothing_left(sel, since, until))
    return sel


def _nothing_left(sel: Selection, since: datetime | None, until: datetime | None) -> str:
    held = sel.counts[0][1]
    if held == 0:
        return "the files hold no usable LiveCodeBench records" + (f" ({len(sel.bad)} broken, skipped)" if sel.bad else "")
    span = f"dated {sel.first.date() if sel.first else '?'} to {sel.last.date() if sel.last else '?'}"
    head = f"no questions left: the files hold {held} question{'s' * (held != 1)}, {span}"
    steps = "; ".join(f"{name}: {n}" for name, n in sel.counts[1:])
    hint = ("Choose a window inside that range (--since is inclusive, --until exclusive), or another --release"
            if len(sel.counts) > 1 and sel.counts[1][0].startswith("contest date") and sel.counts[1][1] == 0
            else "Loosen the filters")
    return f"{head}; {steps}. {hint}"


def record_text(item: Item) -> str:
    """The record as one JSON line: its own line when it came from a .jsonl, else serialized."""
    return item.text if item.text is not None else json.dumps(item.rec, ensure_ascii=False)


def write_records(items: Sequence[Item], out: Path) -> list[Path]:
    """`out` ending in .jsonl: one file, a record per line (replaced if it exists); else a folder (new or empty) of
    one-record files named after the problem ids. Either is what problems.load_problems and bench read."""
    from .store import write_atomic

    if out.suffix == ".jsonl":
        if out.is_dir():
            raise LcbError(f"--out {out}: is a folder; a .jsonl name writes one file")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, "".join(record_text(i) + "\n" for i in items))
        return [out]
    if out.suffix in (".json", ".parquet"):
        raise LcbError(f"--out {out}: give a .jsonl file (one record per line) or a folder (a .json per question)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LcbError(f"--out {out}: exists and is not an empty folder; choose a new folder, or a .jsonl file name")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in items:
        assert i.problem is not None
        p = out / f"{i.problem.id}.json"
        write_atomic(p, record_text(i) + "\n")
        paths.append(p)
    return paths


def check_out(out: Path) -> None:
    """Refuse an --out / --write that write_records would refuse, before any work."""
    if out.suffix == ".jsonl":
        if out.is_dir():
            raise LcbError(f"{out}: is a folder; a .jsonl name writes one file")
    elif out.suffix in (".json", ".parquet"):
        raise LcbError(f"{out}: give a .jsonl file (one record per line) or a folder (a .json per question)")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LcbError(f"{out}: exists and is not an empty folder; choose a new folder, or a .jsonl file name")


# ---------------------------------------------------------------------------------------------
# screen

SCREEN_K = 64
HARD, VERY_HARD = 0.5, 0.03  # the paper's thresholds on base pass@64 (SDPO.md section 6)
SCREEN_FORMAT = 1
QUESTIONS_FILE = "questions.jsonl"  # in the screen's bench directory: the screened records, a select output itself
LABELS = ("very-hard", "hard", "not-hard")


def read_questions(paths: Sequence[Path]) -> list[Item]:
    """The LiveCodeBench records of QUESTIONS (select's output: a .jsonl, a folder of .json records, or any such
    files), each checked whole. Anything else (a problem.json) is refused: screen writes its subset in select's
    formats, which hold LiveCodeBench records only."""
    items: list[Item] = []
    files, errors = problem_files(paths)
    for f in files:
        try:
            for it in read_items(Source(f, "jsonl" if f.suffix == ".jsonl" else "json")):
                if it.rec is not None and "question_content" not in it.rec:
                    it.error = ("not a LiveCodeBench record (a problem.json?): `lcb screen` takes LiveCodeBench "
                                "records, as `lcb select` writes them; screen other problems with "
                                "`sdpo-discover bench --methods best-of-k`")
                if it.error is None:
                    try:
                        it.problem = problem_from_livecodebench(it.rec, it.where)
                    except ProblemError as e:
                        it.error = str(e)
                if it.error is not None:
                    errors.append(f"{it.where}: {it.error}" if it.where not in it.error else it.error)
                else:
                    items.append(it)
        except LcbError as e:
            errors.append(str(e))
    if errors:
        raise LcbError("cannot read every question; nothing was started:\n  " + "\n  ".join(errors))
    if not items:
        raise LcbError("no questions given: pass the file or folder `sdpo-discover lcb select` wrote")
    return items


def label(n: int, c: int) -> dict[str, Any]:
    """A pool of n samples with c passing: k = min(64, n), pass@1, pass@k (metrics.pass_at_k) and the label."""
    from .metrics import pass_at_k

    if n < 1:
        return {"k": 0, "pass@1": None, "pass@k": None, "label": "unfinished"}
    k = min(SCREEN_K, n)
    curve = pass_at_k(n, c, k)
    pk = float(curve[k])
    return {"k": k, "pass@1": float(curve[1]), "pass@k": pk,
            "label": "very-hard" if pk < VERY_HARD else "hard" if pk < HARD else "not-hard"}


def keeps(lab: str, keep: str) -> bool:
    """--keep hard: every question with pass@64 < 0.5 (very hard ones included); --keep very-hard: < 0.03."""
    return lab == "very-hard" or (keep == "hard" and lab == "hard")


def start_screen(out: Path, questions: Sequence[Path], *, pool: int | None, flags: dict[str, Any],
                 config_file: Path | None, assignments: Sequence[str] | None, resume: bool,
                 command: Sequence[str]) -> Any:
    """The screen's bench directory, ready to run: a bench with methods best-of-k only, one pool of `pool` samples
    per question (bench.prepare), plus questions.jsonl (the records screened). On resume the saved plan."""
    from .bench import BenchDir, BenchError, prepare

    if resume:
        bench = BenchDir(out)
        if bench.is_bench() and bench.load_plan().methods != ["best-of-k"]:
            raise LcbError(f"{out}: a bench of {', '.join(bench.load_plan().methods)}, not an `lcb screen` directory "
                           f"(best-of-k pools only); continue it with `sdpo-discover bench --resume --out {out}`")
        try:
            plan = prepare(out, questions, methods=None, seeds=None, budget=None, pool=pool, flags=flags,
                           config_file=config_file, assignments=assignments, resume=True, command=command)
        except BenchError as e:
            raise LcbError(str(e)) from None
        if not (out / QUESTIONS_FILE).is_file():  # killed between plan.json and this file: rebuild it
            _write_questions(out, read_questions([Path(s) for s in dict.fromkeys(p["source"] for p in plan.problems)]))
        return plan
    items = read_questions(questions)
    pool = SCREEN_K if pool is None else pool
    try:
        plan = prepare(out, questions, methods=["best-of-k"], seeds=[0], budget=pool, pool=pool, flags=flags,
                       config_file=config_file, assignments=assignments, resume=False, command=command)
    except BenchError as e:
        raise LcbError(str(e)) from None
    _write_questions(out, items)
    return plan


def _write_questions(out: Path, items: Sequence[Item]) -> None:
    from .store import write_atomic

    write_atomic(out / QUESTIONS_FILE, "".join(record_text(i) + "\n" for i in items))


def screen_results(out: Path) -> dict[str, Any]:
    """screen.json's content, from the bench directory alone: per question its pool, passes, pass@1, pass@k (k = 64,
    or the pool when smaller) and label. Unfinished pools are listed as such."""
    from .bench import BenchDir
    from .results import read_run

    bench = BenchDir(out)
    plan = bench.load_plan()
    meta: dict[str, dict[str, Any]] = {}
    qfile = out / QUESTIONS_FILE
    if qfile.is_file():
        for it in _read_jsonl(qfile):
            if it.rec is not None:
                try:
                    meta[problem_from_livecodebench(it.rec, it.where).id] = it.rec
                except ProblemError:
                    pass
    rows = []
    for run in plan.runs:
        if run.method != "best-of-k":
            continue
        r = read_run(bench, run)
        n, c = (r["attempts_used"], r["passed"]) if r is not None else (0, 0)
        rec = meta.get(run.problem, {})
        rows.append({"id": run.problem, "question_id": rec.get("question_id"), "platform": rec.get("platform"),
                     "contest_date": rec.get("contest_date"), "difficulty": rec.get("difficulty"),
                     "pool": n, "passed": c, **label(n, c)})
    counts = {lab: sum(r["label"] == lab for r in rows) for lab in (*LABELS, "unfinished")}
    small = sorted({r["k"] for r in rows if 0 < r["k"] < SCREEN_K})
    return {
        "format": SCREEN_FORMAT, "bench": str(out), "pool": plan.pool, "k": SCREEN_K if not small else min(small),
        "thresholds": {"hard": HARD, "very-hard": VERY_HARD},
        "conventions": ("pass@k from each question's pool of n samples with c passing: the unbiased 1 - C(n-c,k)/"
                        "C(n,k) (metrics.pass_at_k), k = 64 (k = n for a pool smaller than 64: then pass@n <= "
                        "pass@64, and more questions look hard than pass@64 would say); hard: pass@64 < 0.5; very "
                        "hard: pass@64 < 0.03 (very hard questions are hard too)"),
        "warning": (f"pool of {', '.join(map(str, small))} < 64: labelled by pass@{min(small)}, not pass@64"
                    if small else None),
        "counts": counts, "complete": counts["unfinished"] == 0, "questions": rows,
    }


def write_screen(out: Path) -> dict[str, Any]:
    from .store import write_atomic

    res = screen_results(out)
    write_atomic(out / "screen.json", json.dumps(res, indent=2))
    return res


def write_subset(out: Path, res: dict[str, Any], keep: str, dest: Path) -> list[Item]:
    """The kept questions' records (from questions.jsonl), written as select writes them. Returns them."""
    if keep not in ("hard", "very-hard"):
        raise LcbError(f"--keep {keep!r}: hard or very-hard")
    if not res["complete"]:
        raise LcbError(f"{out}: some pools are unfinished; finish them (`sdpo-discover lcb screen --resume --out "
                       f"{out}`) before writing a subset")
    qfile = out / QUESTIONS_FILE
    if not qfile.is_file():
        raise LcbError(f"{qfile}: missing, so the records to write are unknown; rerun the screen from its questions")
    wanted = {r["id"] for r in res["questions"] if keeps(r["label"], keep)}
    items = []
    for it in _read_jsonl(qfile):
        if it.rec is None:
            continue
        it.problem = problem_from_livecodebench(it.rec, it.where)
        if it.problem.id in wanted:
            items.append(it)
    if items:
        write_records(items, dest)
    return items


__all__ = ["LcbError", "Selection", "errata", "label", "read_questions", "release_files", "resolve_sources",
           "screen_results", "select", "start_screen", "write_records", "write_screen", "write_subset"]
