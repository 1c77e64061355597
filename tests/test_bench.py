"""`sdpo-discover bench` and `report`: two tiny synthetic problems, all three methods x 2 seeds, killed mid-way
(a hard kill: os._exit in a spawned child) and resumed; every attempt counted once and equal to an
uninterrupted bench; `report` reproducing results.json exactly, also on the partial bench; bad input.

The model is the tiny random one (models.save_tiny_model); the judge is synthetic so that some attempts pass:
an attempt passes when the sha256 of its text falls in a problem's share (1/3, 1/6), and the feedback is the
real renderer's over that verdict. Everything else is the production path."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import SyntheticJudge
from safetensors.torch import load_file
from typer.testing import CliRunner

from sdpo_discover.bench import BenchDir, prepare, run_bench
from sdpo_discover.cli import app
from sdpo_discover.discover import Solver
from sdpo_discover.models import save_tiny_model
from sdpo_discover.problems import Problem, TestCase
from sdpo_discover.results import build_results, write_all
from sdpo_discover.store import RunDir, read_jsonl

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
VOLATILE = {"execute_s", "generate_s", "update_s", "wall_s"}
RATES = {"tiny-a": 3, "tiny-b": 6, "s-a": 10**9, "s-b": 10**9}  # s-*: (almost) never passes
ARGS = dict(methods=["sdpo", "best-of-k", "multi-turn"], seeds=[0, 1], budget=8, pool=12)


class HashJudge(SyntheticJudge):
    def passes(self, problem_id: str, digest: int) -> bool:
        return digest % RATES.get(problem_id, 5) == 0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    tiny = save_tiny_model(root / "tiny")
    files = []
    for pid, text in (("tiny-a", "Print A+B."), ("tiny-b", "Print A-B.")):
        p = Problem(id=pid, title=pid, statement=text, test_type="stdin", tests=(TestCase("1 2\n", "3\n"),))
        f = root / f"{pid}.json"
        f.write_text(json.dumps(p.to_json()))
        files.append(f)
    flags = {"model": str(tiny), "batch_size": 4, "sandbox": "local"}
    sets = ["max_new_tokens=8", "gen_batch_size=4", "sdpo.lr=0.05"]
    return {"root": root, "tiny": tiny, "files": files, "flags": flags, "sets": sets}


def _plan(setup: dict[str, Any], out: Path, resume: bool = False) -> Any:
    return prepare(out, [] if resume else setup["files"], flags={} if resume else setup["flags"],
                   config_file=None, assignments=None if resume else setup["sets"], resume=resume,
                   command=["bench", "tiny-a.json", "tiny-b.json"], **({k: None for k in ARGS} if resume else ARGS))


def _contents(bench: Path) -> dict[str, Any]:
    out = {}
    for run in BenchDir(bench).load_plan().runs:
        rd = RunDir(BenchDir(bench).run_dir(run))
        s = json.loads(rd.summary.read_text())
        out[run.id] = {
            "attempts": [{k: v for k, v in a.items() if k not in VOLATILE} for a in read_jsonl(rd.attempts)],
            "steps": [{k: v for k, v in a.items() if k not in VOLATILE} for a in read_jsonl(rd.steps)],
            "summary": {k: s[k] for k in ("solved", "first_success_index", "attempts_used", "steps", "stopped")},
            "adapters": sorted(f.name for f in rd.adapters.glob("v*")) if rd.adapters.exists() else []}
    return out


@pytest.fixture(scope="module")
def reference(setup: dict[str, Any]) -> Path:
    out = setup["root"] / "reference"
    plan = _plan(setup, out)
    assert run_bench(BenchDir(out), plan, judge=HashJudge()) == "done"
    return out


def _killed_bench(setup: dict[str, Any], out: str, after: int) -> None:
    """In a spawned child: run the bench and die like kill -9 at the `after`-th graded attempt."""
    seen = {"n": 0}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "attempt":
            seen["n"] += 1
            if seen["n"] == after:
                os._exit(137)

    run_bench(BenchDir(Path(out)), BenchDir(Path(out)).load_plan(), judge=HashJudge(), on_event=on_event)
    os._exit(0)


def test_a_killed_bench_resumes_exactly_and_report_reproduces_results(setup: dict[str, Any], reference: Path,
                                                                     tmp_path: Path) -> None:
    ref = _contents(reference)
    total = sum(len(r["attempts"]) for r in ref.values())
    out = tmp_path / "bench"
    _plan(setup, out)
    assert BenchDir(out).plan_path.is_file() and not (out / "runs").exists()  # plan.json first, nothing run yet
    after = total // 2 + 1
    proc = multiprocessing.get_context("spawn").Process(target=_killed_bench, args=(setup, str(out), after))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 137
    finished_before = [r.id for r in BenchDir(out).load_plan().runs if BenchDir(out).finished(r)]
    assert 0 < len(finished_before) < len(ref)

    # the partial bench: report works on what is finished, and says so
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    partial = json.loads((out / "results.json").read_text())
    assert not partial["complete"] and partial["runs_finished"] == len(finished_before)
    assert "partial" in (out / "report.md").read_text()
    mtimes = {rid: (BenchDir(out).path / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in finished_before}

    # resume: finished runs are not redone; the unfinished one continues from its own run directory
    plan = _plan(setup, out, resume=True)
    assert run_bench(BenchDir(out), plan, judge=HashJudge()) == "done"
    assert {rid: (BenchDir(out).path / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in finished_before} == mtimes
    got = _contents(out)
    assert got.keys() == ref.keys()
    for rid in ref:
        assert [a["index"] for a in got[rid]["attempts"]] == list(range(len(got[rid]["attempts"]))), rid  # once each
        assert got[rid] == ref[rid], rid
    assert any(r["summary"]["solved"] for r in got.values()) and not all(r["summary"]["solved"] for r in got.values())
    # the pool spends its whole budget (it does not stop at a success); a bench keeps the last adapter only
    pool = got["tiny-a/best-of-k/pool"]
    assert pool["summary"]["attempts_used"] == 12 and pool["adapters"] == []
    assert all(len(r["adapters"]) <= 1 for r in got.values())

    written = write_all(out)
    first = (out / "results.json").read_bytes()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "results.json").read_bytes() == first  # rebuilt from the run directories alone: the same
    assert written["complete"] and written["problems_included"] == ["tiny-a", "tiny-b"]
    for name in ("report.md", "discovery.png", "discovery.svg"):
        assert (out / name).stat().st_size > 0
    # the attempt statistics equal the uninterrupted bench's (the seconds differ: they are measured)
    ref_res = build_results(reference)
    for key in ("curves", "discovery_at_budget", "mean_attempts", "per_problem"):
        assert written[key] == ref_res[key], key
    for m in ("sdpo", "best-of-k", "multi-turn"):
        assert written["curves"][m]["lo"][8] <= written["curves"][m]["mean"][8] <= written["curves"][m]["hi"][8]
    assert "sdpo-discover bench tiny-a.json tiny-b.json" in (out / "report.md").read_text()


def test_results_agree_with_the_run_directories(reference: Path) -> None:
    res = build_results(reference)
    plan = BenchDir(reference).load_plan()
    B = plan.budget
    # best-of-k's discovery@k is the unbiased estimator over each pool; sdpo's is the mean over seeds of its runs
    from sdpo_discover import metrics

    pools = [res["per_problem"][p]["best-of-k"] for p in ("tiny-a", "tiny-b")]
    expect = sum(metrics.pass_at_k(x["pool"], x["passed"], B)[B] for x in pools) / 2
    assert res["discovery_at_budget"]["best-of-k"]["mean"] == pytest.approx(expect, rel=1e-5)
    solved = [r for r in res["runs"] if r["method"] == "sdpo"]
    assert res["discovery_at_budget"]["sdpo"]["mean"] == pytest.approx(sum(r["solved"] for r in solved) / len(solved), rel=1e-5)
    assert res["mean_attempts"]["sdpo"]["censored_runs"] == sum(not r["solved"] for r in solved)
    assert res["model"]["fingerprint"] and res["sampling"]["temperature"] == 1.0
    assert all(r["disk_bytes"] > 0 for r in res["runs"])
    assert res["seconds_per_attempt"]["sdpo"]["first_steps"] > 0
    assert res["time_curves"]["t"][0] == 0 and len(res["time_curves"]["t"]) == 401
    json.dumps(res, allow_nan=False)


def test_an_sdpo_run_in_a_bench_equals_the_same_run_alone(setup: dict[str, Any], reference: Path, tmp_path: Path) -> None:
    """The bench's second sdpo run shares the model with the first (its adapter taken off again): it must equal a
    run of the same settings in a fresh process state."""
    plan = BenchDir(reference).load_plan()
    run = next(r for r in plan.runs if r.id == "tiny-b/sdpo/seed-1")
    alone = tmp_path / "alone"
    Solver(run.config, alone, problem=BenchDir(reference).load_problem("tiny-b"), judge=HashJudge()).run()
    a = [{k: v for k, v in x.items() if k not in VOLATILE} for x in read_jsonl(RunDir(alone).attempts)]
    b = [{k: v for k, v in x.items() if k not in VOLATILE}
         for x in read_jsonl(RunDir(BenchDir(reference).run_dir(run)).attempts)]
    assert a == b
    last = sorted(RunDir(alone).adapters.glob("v*"))[-1].name
    x = load_file(str(RunDir(alone).adapters / last / "adapter_model.safetensors"))
    y = load_file(str(RunDir(BenchDir(reference).run_dir(run)).adapters / last / "adapter_model.safetensors"))
    assert x.keys() == y.keys() and all((x[k] == y[k]).all() for k in x)


# -- bad input: exit 2 with what to do, and nothing started ------------------------------------------------


def _bench(setup: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(app, ["bench", *args, "--model", str(setup["tiny"]), "--sandbox", "local"])


def test_bad_input_is_refused_before_anything_starts(setup: dict[str, Any], tmp_path: Path) -> None:
    a, b = (str(f) for f in setup["files"])
    out = tmp_path / "b"
    cases = [
        (["--methods", "sdpo,bogus"], "unknown method(s) bogus"),
        (["--budget", "2", "--batch-size", "4"], "--budget 2 is smaller than one batch of sdpo (4 attempts)"),
        (["--seeds", "x"], "--seeds 'x'"),
        (["--set", "seed=3"], "setting 'seed' is set by the bench per run: use --seeds"),
        (["--set", "multi_turn.chains=0"], "multi_turn.chains"),
    ]
    for extra, message in cases:
        res = _bench(setup, a, b, "--out", str(out), *extra)
        assert res.exit_code == 2 and message in res.output, (extra, res.output)
        assert not out.exists(), extra
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    missing = tmp_path / "missing.json"
    res = _bench(setup, a, str(bad), b, str(missing), "--out", str(out))
    assert res.exit_code == 2 and "broken.json" in res.output and "missing.json" in res.output and "nothing was started" in res.output
    assert not out.exists()
    res = _bench(setup, a, a, "--out", str(out))
    assert res.exit_code == 2 and "two problems have the id 'tiny-a'" in res.output and not out.exists()


def test_resume_of_a_bench_with_a_different_plan_is_refused(setup: dict[str, Any], reference: Path) -> None:
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(reference), "--budget", "16"])
    assert res.exit_code == 2 and "budget: 8 planned, 16 now" in res.output, res.output
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(reference), "--methods", "sdpo"])
    assert res.exit_code == 2 and "methods: ['sdpo', 'best-of-k', 'multi-turn'] planned, ['sdpo'] now" in res.output
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(reference), "--set", "sdpo.lr=0.1"])
    assert res.exit_code == 2 and "sdpo.lr" in res.output
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(reference / "runs")])
    assert res.exit_code == 2 and "not a bench directory" in res.output
    # the same plan resumes: every run finished already, nothing is redone
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(reference), "--budget", "8", "-q"])
    assert res.exit_code == 0, res.output


def test_pools_of_another_bench_are_reused_and_continued_to_the_planned_pool(setup: dict[str, Any], reference: Path,
                                                                            tmp_path: Path) -> None:
    from sdpo_discover.bench import import_pools

    screen = tmp_path / "screen"  # what `lcb screen` leaves: a bench of best-of-k pools only, smaller
    plan = prepare(screen, setup["files"], methods=["best-of-k"], seeds=[0], budget=8, pool=8, flags=setup["flags"],
                   config_file=None, assignments=setup["sets"], resume=False, command=[])
    assert run_bench(BenchDir(screen), plan, judge=HashJudge()) == "done"
    out = tmp_path / "bench"
    plan = _plan(setup, out)
    assert sorted(import_pools(BenchDir(out), plan, screen)) == ["tiny-a/best-of-k/pool", "tiny-b/best-of-k/pool"]
    assert import_pools(BenchDir(out), plan, screen) == []  # present already: never overwritten
    rd = RunDir(BenchDir(out).path / "runs" / "tiny-a" / "best-of-k" / "pool")
    assert len(read_jsonl(rd.attempts)) == 8 and not rd.summary.exists()
    other = prepare(tmp_path / "other", setup["files"], methods=["best-of-k"], seeds=[0], budget=8, pool=8,
                    flags=setup["flags"], config_file=None, assignments=[*setup["sets"], "top_k=5"], resume=False,
                    command=[])
    assert import_pools(BenchDir(tmp_path / "other"), other, screen) == []  # other settings: not the same pool
    # continued to the planned 12: the same attempts as the reference bench's pool sampled in one go
    run_bench(BenchDir(out), BenchDir(out).load_plan(), judge=HashJudge())
    for rid in ("tiny-a/best-of-k/pool", "tiny-b/best-of-k/pool"):
        assert _contents(out)[rid] == _contents(reference)[rid]


def test_the_python_api_plans_runs_and_reports(setup: dict[str, Any], tmp_path: Path) -> None:
    from sdpo_discover.bench import run

    out = run(setup["files"][:1], out=tmp_path / "api", methods=["sdpo", "best-of-k"], seeds=[0], budget=4,
              settings={"model": str(setup["tiny"]), "batch_size": 4, "sandbox": "local", "max_new_tokens": 8,
                        "sdpo": {"lr": 0.05}})
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["methods"] == ["sdpo", "best-of-k"] and res["runs_finished"] == 2
    plan = BenchDir(out).load_plan()
    assert plan.runs[0].settings["sdpo"]["lr"] == 0.05 and plan.runs[0].settings["max_new_tokens"] == 8
    assert run([], out=out, resume=True) == out  # resumed: every run finished, nothing redone


@pytest.mark.vllm
def test_one_vllm_engine_serves_every_run_and_baselines_load_no_weights(tmp_path: Path) -> None:
    """With --sampler vllm one engine serves the bench: each SDPO run's adapter versions are its own LoRA
    requests (named by run directory), and a bench of baselines only loads no weights into this process."""
    from conftest import require
    from sdpo_discover.bench import RunWorker
    from sdpo_discover.models import ConfigOnly
    from sdpo_discover.samplers import vllm_available

    require("vllm", *vllm_available(), "bash scripts/setup-vllm builds the vLLM virtual environment.")
    model = save_tiny_model(tmp_path / "model", hidden_size=128)  # vLLM's CPU attention: head size 32
    p = Problem(id="v-a", title="v", statement="Print A+B.", test_type="stdin", tests=(TestCase("1 2\n", "3\n"),))
    (tmp_path / "v-a.json").write_text(json.dumps(p.to_json()))
    flags = {"model": str(model), "batch_size": 4, "sandbox": "local", "sampler": "vllm", "device": "cpu"}
    sets = ["max_new_tokens=8", "sdpo.lr=0.05", "vllm_kv_cache_gib=1"]
    out = tmp_path / "bench"
    plan = prepare(out, [tmp_path / "v-a.json"], methods=["sdpo", "best-of-k"], seeds=[0, 1], budget=8, pool=8,
                   flags=flags, config_file=None, assignments=sets, resume=False, command=[])
    served: list[Any] = []
    engines: set[int] = set()
    worker = RunWorker(out, judge=HashJudge())
    try:
        for run in plan.runs:
            def on_event(kind: str, payload: dict[str, Any]) -> None:
                if kind == "sampled":
                    served.append(worker.sampler.lora_request(str(BenchDir(out).run_dir(payload["run"]).resolve())))
                    engines.add(id(worker.sampler))
            worker.execute(run, on_event)
    finally:
        worker.close()
    assert len(engines) == 1
    names = [s["name"] for s in served if s]
    assert len(names) == len(set(names)) and {n.rsplit("-v", 1)[0] for n in names} == {
        str(BenchDir(out).run_dir(r).resolve()) for r in plan.runs if r.method == "sdpo"}
    assert all(RunDir(BenchDir(out).run_dir(r)).load_summary() for r in plan.runs)
    baselines = prepare(tmp_path / "b2", [tmp_path / "v-a.json"], methods=["best-of-k"], seeds=[0], budget=4, pool=4,
                        flags=flags, config_file=None, assignments=sets[:1], resume=False, command=[])
    w2 = RunWorker(tmp_path / "b2", judge=HashJudge())
    try:
        w2.setup(baselines.runs)
        assert isinstance(w2.loaded.model, ConfigOnly)
    finally:
        w2.close()


@pytest.mark.vllm
def test_runs_sharing_one_vllm_engine_are_sampled_together(tmp_path: Path) -> None:
    """--workers 2 with the vllm sampler: two runs at a time in threads of one process, one engine. Each run's
    adapter versions are its own LoRA requests, the engine held more sequences at once than one run's batch
    (the runs were sampled together), and every run finished with each attempt recorded once."""
    from conftest import require
    from sdpo_discover.samplers import vllm_available
    from sdpo_discover.workers import run_shared

    require("vllm", *vllm_available(), "bash scripts/setup-vllm builds the vLLM virtual environment.")
    model = save_tiny_model(tmp_path / "model", hidden_size=128)  # vLLM's CPU attention: head size 32
    files = []
    for pid, text in (("s-a", "Print A+B."), ("s-b", "Print A-B.")):
        p = Problem(id=pid, title=pid, statement=text, test_type="stdin", tests=(TestCase("1 2\n", "3\n"),))
        (tmp_path / f"{pid}.json").write_text(json.dumps(p.to_json()))
        files.append(tmp_path / f"{pid}.json")
    flags = {"model": str(model), "batch_size": 4, "sandbox": "local", "sampler": "vllm", "device": "cpu"}
    sets = ["max_new_tokens=16", "sdpo.lr=0.05", "vllm_kv_cache_gib=1", "overlap_grading=true"]  # streamed too
    out = tmp_path / "bench"
    plan = prepare(out, files, methods=["sdpo", "best-of-k"], seeds=[0], budget=12, pool=12, flags=flags,
                   config_file=None, assignments=sets, resume=False, command=[])
    bench = BenchDir(out)
    served: dict[str, set[str]] = {}
    threads: set[str] = set()
    engine: dict[str, Any] = {}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "run_start":
            threads.add(payload["worker"])
        elif kind == "engine":
            engine.update(payload)
        elif kind == "sampled" and payload["run"].method == "sdpo":
            served.setdefault(payload["run"].id, set()).add(payload["step"])

    assert run_shared(bench, plan, 2, on_event=on_event, judge=HashJudge()) == "done"
    assert threads == {"thread 1", "thread 2"} and engine["max_loras"] == 2
    assert engine["peak_sequences"] > 4, engine  # more than one run's batch in the engine at once
    for r in plan.runs:
        rd = RunDir(bench.run_dir(r))
        attempts = rd.load_attempts()
        assert [a.index for a in attempts] == list(range(12)) and rd.load_summary().attempts_used == 12, r.id
        if r.method == "sdpo":  # its own adapter versions, updated after each batch but the last
            assert [a.adapter_version for a in attempts] == [0] * 4 + [1] * 4 + [2] * 4, r.id
            assert served[r.id] == {0, 1, 2}
    adapters = [load_file(RunDir(bench.run_dir(r)).adapter(2) / "adapter_model.safetensors")
                for r in plan.runs if r.method == "sdpo"]
    # two runs, two learners: runs training one model object would save the same adapter
    assert any(not (adapters[0][k] == adapters[1][k]).all() for k in adapters[0])


def test_finished_runs_of_another_bench_are_reused_by_runs_from(setup: dict[str, Any], reference: Path,
                                                                tmp_path: Path) -> None:
    """--runs-from: a bench grown by a problem takes the finished runs (every method) of the smaller bench; only
    the new problem's runs are run, and every run equals the bench run in one go."""
    from sdpo_discover.bench import import_runs

    small = tmp_path / "small"
    plan = prepare(small, setup["files"][:1], flags=setup["flags"], config_file=None, assignments=setup["sets"],
                   resume=False, command=[], **ARGS)
    assert run_bench(BenchDir(small), plan, judge=HashJudge()) == "done"
    other = tmp_path / "other"  # another learning rate: no SDPO run is the same; the baselines are
    plan = prepare(other, setup["files"], flags=setup["flags"], config_file=None,
                   assignments=[*setup["sets"], "sdpo.lr=0.1"], resume=False, command=[], **ARGS)
    assert not [r for r in import_runs(BenchDir(other), plan, small) if "/sdpo/" in r]
    out = tmp_path / "grown"
    plan = _plan(setup, out)
    copied = import_runs(BenchDir(out), plan, small)
    assert sorted(copied) == sorted(r.id for r in plan.runs if r.problem == "tiny-a")
    assert import_runs(BenchDir(out), plan, small) == []  # present already: never overwritten
    before = {r: (BenchDir(out).path / "runs" / r / "summary.json").stat().st_mtime_ns for r in copied}
    assert run_bench(BenchDir(out), BenchDir(out).load_plan(), judge=HashJudge()) == "done"
    assert {r: (BenchDir(out).path / "runs" / r / "summary.json").stat().st_mtime_ns for r in copied} == before
    assert _contents(out) == _contents(reference)
