"""The discovery loop (`discover.Solver`, `sdpo-discover solve`) for all three methods: the run directory,
exact resume after a hard kill at every phase of a step, Ctrl-C and SIGTERM, settings, and the CLI. Tiny
random models built in-process; the learning-signal test is in test_discover_learning.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from sdpo_discover.cli import app
from sdpo_discover.config import ConfigError, SolveConfig, merge_settings, parse_assignment
from sdpo_discover.discover import RunDirError, Solver
from sdpo_discover.store import Attempt, RunDir, read_jsonl
from sdpo_discover.models import save_tiny_model
from sdpo_discover.problems import load_problem

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ROOT / "problems" / "sum-two.json"
VOLATILE = {"execute_s", "generate_s", "update_s", "wall_s"}  # wall times: the only fields a resume may change

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


METHODS = ("sdpo", "best-of-k", "multi-turn")
METHOD_ARGS = {"sdpo": ["--set", "sdpo.lr=0.05"], "best-of-k": ["--method", "best-of-k"],
               "multi-turn": ["--method", "multi-turn"]}  # the CLI's form of small_config's settings


def small_config(tiny_dir: Path, method: str = "sdpo", **kw: Any) -> SolveConfig:
    base = dict(problem=str(PROBLEM), model=str(tiny_dir), budget=12, batch_size=4, sandbox="local", seed=3,
                max_new_tokens=8, gen_batch_size=4, method=method)
    if method == "sdpo":
        base["sdpo"] = {"lr": 0.05}
    return SolveConfig.from_dict(merge_settings(base, kw))


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def run_contents(run: Path) -> dict[str, Any]:
    """Everything a resume must reproduce exactly: attempts, steps, the adapters, the summary's counts."""
    rd = RunDir(run)
    summary = json.loads(rd.summary.read_text())
    return {
        "attempts": stable(read_jsonl(rd.attempts)),
        "steps": stable(read_jsonl(rd.steps)),
        "adapters": {f.name: load_file(str(f / "adapter_model.safetensors")) for f in sorted(rd.adapters.glob("v*"))},
        "teacher": {f.name: load_file(str(f / "teacher.safetensors")) for f in sorted(rd.adapters.glob("v*"))},
        "summary": {k: summary[k] for k in ("solved", "first_success_index", "attempts_used", "steps", "stopped",
                                            "method")},
    }


def assert_same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["summary"] == b["summary"]
    assert [r["index"] for r in b["attempts"]] == list(range(len(b["attempts"])))  # none lost, none twice
    assert a["attempts"] == b["attempts"]
    assert a["steps"] == b["steps"]
    assert a["adapters"].keys() == b["adapters"].keys()
    for v in a["adapters"]:
        for name in (("adapters", "teacher")):
            for k, t in a[name][v].items():
                assert (t == b[name][v][k]).all(), (name, v, k)


@pytest.fixture(scope="module")
def references(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Uninterrupted runs, one per method: what every killed-and-resumed run must equal."""
    out = {}
    for method in METHODS:
        run = tmp_path_factory.mktemp("ref") / method
        Solver(small_config(tiny_dir, method), run, problem=load_problem(PROBLEM)).run()
        out[method] = run_contents(run)
    return out


@pytest.fixture(scope="module")
def reference(references: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return references["sdpo"]


def test_run_directory_holds_everything(reference: dict[str, Any], tiny_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = Solver(small_config(tiny_dir), run, problem=load_problem(PROBLEM)).run()
    rd = RunDir(run)
    cfg = json.loads(rd.config.read_text())
    assert cfg["config"]["budget"] == 12 and cfg["config"]["sdpo"]["lr"] == 0.05
    assert {"sdpo-discover", "torch", "transformers", "peft", "python"} <= cfg["versions"].keys()
    assert len(cfg["model"]["fingerprint"]) == 64 and cfg["model"]["temperature"] == 1.0
    assert load_problem(rd.problem).to_json() == load_problem(PROBLEM).to_json()
    attempts = rd.load_attempts()
    assert [a.index for a in attempts] == list(range(12)) and [a.step for a in attempts] == [0] * 4 + [1] * 4 + [2] * 4
    a = attempts[0]
    assert a.n_tokens == len(a.token_ids) > 0 and a.status == "format_error" and a.feedback.startswith("Format Error")
    steps = read_jsonl(rd.steps)
    assert [s["step"] for s in steps] == [0, 1, 2]
    assert steps[0]["loss"] is not None and steps[0]["rollouts"] == 4 and steps[2]["loss"] is None  # no update after the last
    assert sorted(f.name for f in rd.adapters.iterdir()) == ["v00000", "v00001", "v00002"]
    assert (rd.adapter(1) / "adapter_config.json").is_file() and (rd.adapter(1) / "teacher.safetensors").is_file()
    assert json.loads(rd.state.read_text()) == {"steps": 2, "adapter_version": 2} and rd.batch(2).is_file()
    assert not (rd.adapter(1) / "learner.pt").exists() and (rd.adapter(2) / "learner.pt").is_file()  # the newest only
    assert not summary.solved and summary.attempts_used == 12 and summary.steps == 3 and summary.stopped == "budget"
    assert abs(summary.wall_s - (summary.generate_s + summary.execute_s + summary.update_s + summary.other_s)) < 1e-6
    # the adapter moved, the EMA teacher moved 1% of the way
    v0, v1 = load_file(str(rd.adapter(0) / "adapter_model.safetensors")), load_file(str(rd.adapter(1) / "adapter_model.safetensors"))
    assert any(not (v0[k] == v1[k]).all() for k in v0)
    # the same seed gives the same run
    assert_same_run(reference, run_contents(run))


# -- crash safety: a hard kill (os._exit, no clean-up) at each phase of a step, then resume ---------------------

PHASES = [(m, p) for m in METHODS for p in ("sampled", "mid-grading", "committed")] + [
    ("sdpo", "after-optimizer-step"), ("sdpo", "adapter-written")]


def _killed_run(tiny_dir: str, run: str, method: str, phase: str) -> None:
    """In a spawned child: run, and die like kill -9 at `phase` of step 1 (no finally, no flush, no atexit)."""
    import sdpo_discover.methods as m
    import sdpo_discover.store as st

    def die() -> None:
        os._exit(137)

    seen = {"attempt": 0}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "sampled" and payload["step"] == 1 and phase == "sampled":
            die()
        if kind == "attempt" and payload["attempt"].step == 1:
            seen["attempt"] += 1
            if phase == "mid-grading" and seen["attempt"] == 2:
                die()

    orig_save, orig_commit = m.SDPOMethod.save_adapter, st.RunDir.commit

    def save_adapter(self: Any, version: int) -> None:
        if phase == "after-optimizer-step" and version == 2:
            die()  # the optimizer has stepped, nothing of version 2 is on disk
        orig_save(self, version)
        if phase == "adapter-written" and version == 2:
            die()

    def commit(self: Any, steps: int, *args: Any) -> None:
        orig_commit(self, steps, *args)
        if phase == "committed" and steps == 2:
            die()

    m.SDPOMethod.save_adapter, st.RunDir.commit = save_adapter, commit
    from sdpo_discover.discover import Solver as S

    S(small_config(Path(tiny_dir), method), Path(run), problem=load_problem(PROBLEM), on_event=on_event).run()
    os._exit(0)


@pytest.mark.parametrize(("method", "phase"), PHASES, ids=[f"{m}-{p}" for m, p in PHASES])
def test_resume_after_a_hard_kill_is_exact(method: str, phase: str, references: dict[str, Any], tiny_dir: Path,
                                           tmp_path: Path) -> None:
    run = tmp_path / "run"
    # spawn, not fork: a forked child of a process whose torch thread pool is running can deadlock
    proc = multiprocessing.get_context("spawn").Process(target=_killed_run, args=(str(tiny_dir), str(run), method, phase))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 137, f"the child was to die at {phase}, exit code {proc.exitcode}"
    assert not RunDir(run).summary.exists()
    steps_committed = json.loads(RunDir(run).state.read_text())["steps"]
    committed = [r for r in read_jsonl(RunDir(run).steps) if r["step"] < steps_committed]
    assert committed and all(r["wall_s"] > 0 for r in committed)
    summary = Solver(small_config(tiny_dir, method), run, resume=True).run()
    assert summary.attempts_used == 12 and summary.method == method
    assert_same_run(references[method], run_contents(run))
    # The killed session's time up to its last commit is not lost: its step records stay, and the resumed
    # run's wall time continues from the last of them.
    final = read_jsonl(RunDir(run).steps)
    assert [r["wall_s"] for r in final[: len(committed)]] == [r["wall_s"] for r in committed]
    walls = [r["wall_s"] for r in final]
    assert walls == sorted(walls) and summary.wall_s > committed[-1]["wall_s"]


def test_a_torn_last_line_is_dropped_and_regraded(reference: dict[str, Any], tiny_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    Solver(small_config(tiny_dir, budget=8), run, problem=load_problem(PROBLEM)).run()
    rd = RunDir(run)
    text = rd.attempts.read_text()
    rd.attempts.write_text(text[: len(text) - 40])  # killed in the middle of writing attempt 8's line
    rd.summary.unlink()
    Solver(small_config(tiny_dir), run, resume=True).run()  # resumed with the reference's budget of 12
    assert_same_run(reference, run_contents(run))


def test_budget_can_grow_on_resume_and_a_finished_run_is_not_rerun(reference: dict[str, Any], tiny_dir: Path,
                                                                   tmp_path: Path) -> None:
    run = tmp_path / "run"
    s = Solver(small_config(tiny_dir, budget=8), run, problem=load_problem(PROBLEM)).run()
    assert s.attempts_used == 8 and s.stopped == "budget"
    s = Solver(small_config(tiny_dir, budget=12), run, resume=True).run()
    assert s.attempts_used == 12
    assert_same_run(reference, run_contents(run))
    with pytest.raises(ConfigError, match="'budget' = 4: this run has graded 12 attempts already"):
        Solver(small_config(tiny_dir, budget=4), run, resume=True).run()


class TimedJudge:
    """The local sandbox's judge, noting when each grading starts."""

    name = "local"

    def __init__(self) -> None:
        from sdpo_discover.discover import SandboxJudge
        from sdpo_discover.sandbox import make_executor

        self.inner = SandboxJudge(make_executor("local"))
        self.starts: list[float] = []

    def grade(self, problem: Any, response: str, truncated: bool) -> Any:
        self.starts.append(time.monotonic())
        return self.inner.grade(problem, response, truncated)

    def feedback(self, problem: Any, result: Any) -> str | None:
        return self.inner.feedback(problem, result)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("method", ["best-of-k", "multi-turn"])
def test_grading_overlaps_sampling_and_changes_nothing_else(method: str, tiny_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """overlap_grading: the first sub-batch (gen_batch_size 2 of a batch of 4) is graded while the second is
    sampled, and the run equals one without overlap in every attempt, step and count (only timings differ)."""
    from sdpo_discover.samplers import HFSampler

    ends: list[float] = []  # when each sub-batch's sampling ended
    sub_batch = HFSampler._generate_batch

    def timed(self: Any, *args: Any, **kw: Any) -> Any:
        out = sub_batch(self, *args, **kw)
        ends.append(time.monotonic())
        return out

    monkeypatch.setattr(HFSampler, "_generate_batch", timed)
    runs = {}
    for overlap in (True, False):
        judge = TimedJudge()
        ends.clear()
        cfg = small_config(tiny_dir, method, gen_batch_size=2, overlap_grading=overlap, stop_on_success=False)
        Solver(cfg, tmp_path / str(overlap), problem=load_problem(PROBLEM), judge=judge).run()
        # step 0: two sub-batches; its first grading starts before the second sub-batch is sampled, or after
        assert (judge.starts[0] < ends[1]) == overlap, (overlap, judge.starts[:2], ends[:2])
        judge.close()
        c = run_contents(tmp_path / str(overlap))
        runs[overlap] = c
    assert runs[True]["attempts"] and runs[True]["attempts"] == runs[False]["attempts"]
    assert runs[True]["steps"] == runs[False]["steps"] and runs[True]["summary"] == runs[False]["summary"]


def test_run_dir_errors(tiny_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RunDirError, match="exists and is not empty; choose an empty or new folder"):
        Solver(small_config(tiny_dir), tmp_path / "full", problem=load_problem(PROBLEM))
    with pytest.raises(RunDirError, match="not a run directory"):
        Solver(small_config(tiny_dir), tmp_path / "full", resume=True)


def test_settings_parse_and_validate() -> None:
    assert parse_assignment("sdpo.lr=3e-5") == ("sdpo.lr", 3e-5)
    assert parse_assignment("sampler=vllm") == ("sampler", "vllm")
    assert parse_assignment("sdpo.top_k=none") == ("sdpo.top_k", None)
    assert parse_assignment("learn=false") == ("learn", False)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignment("lr")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) bugdet, sdpo.lrr"):
        SolveConfig.from_dict({"bugdet": 3, "sdpo": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"'sdpo.alpha' = 3: must be in \[0, 1\]"):
        SolveConfig.from_dict({"sdpo": {"alpha": 3}})
    with pytest.raises(ConfigError, match=r"'multi_turn.template' = 'chat': must be one of feedback_only, "):
        SolveConfig.from_dict({"multi_turn": {"template": "chat"}})
    for key, value, msg in (("budget", 0, "must be an integer >= 1"), ("sampler", "tgi", "must be one of auto, hf, vllm"),
                            ("temperature", 0, "must be > 0"),
                            ("method", "grpo", "must be one of sdpo, best-of-k, multi-turn")):
        with pytest.raises(ConfigError, match=f"'{key}' = {value!r}: {msg}"):
            SolveConfig.from_dict({key: value}).validate()


# -- the CLI ------------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_solve_writes_the_run_and_exits_1_when_unsolved(tiny_dir: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("budget = 4\nbatch_size = 2\nmax_new_tokens = 6\n[sdpo]\nlr = 0.01\ntop_k = 5\n")
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tiny_dir), "--sandbox", "local", "--config", str(toml),
                            "--set", "sdpo.top_k=7", "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 1, r.output
    events = [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["start", "step", "step", "done"]
    assert events[-1]["attempts_used"] == 4 and events[-1]["solved"] is False
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert cfg["budget"] == 4 and cfg["sdpo"]["lr"] == 0.01 and cfg["sdpo"]["top_k"] == 7  # flag over file
    assert (tmp_path / "run" / "discovery.svg").read_text().startswith("<svg")
    # a resumed run keeps its settings
    r = runner.invoke(app, ["solve", "--resume", "--out", str(tmp_path / "run"), "--lr", "0.5"])
    assert r.exit_code == 2 and "only --budget may change); these differ: sdpo.lr" in r.output
    r = runner.invoke(app, ["solve", "--resume", "--out", str(tmp_path / "run"), "--budget", "6", "--quiet"])
    assert r.exit_code == 1 and "Not solved within 6 attempts" in r.output
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tiny_dir), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "pass --resume to continue it" in r.output


def test_a_run_written_before_restate_format_existed_keeps_the_papers_template(tiny_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tiny_dir), "--sandbox", "local", "--budget", "2",
                            "--batch-size", "2", "--set", "max_new_tokens=6", "--out", str(run), "--quiet"])
    assert r.exit_code == 1, r.output
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["sdpo"].pop("restate_format") is True  # today's default
    (run / "config.json").write_text(json.dumps(doc))  # as a run of stop 7 wrote it
    assert RunDir(run).load_config().sdpo.restate_format is False
    r = runner.invoke(app, ["solve", "--resume", "--out", str(run), "--set", "sdpo.restate_format=true"])
    assert r.exit_code == 2 and "these differ: sdpo.restate_format" in r.output
    r = runner.invoke(app, ["solve", "--resume", "--out", str(run), "--budget", "4", "--quiet",
                            "--set", "sdpo.restate_format=false"])  # what it ran with: no change
    assert r.exit_code == 1 and "Not solved within 4 attempts" in r.output, r.output


def test_cli_solve_bad_input(tmp_path: Path) -> None:
    r = runner.invoke(app, ["solve", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["solve", str(PROBLEM), "--set", "sdpo.alpha=2", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "Error: setting 'sdpo.alpha' = 2: must be in [0, 1]" in r.output
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["solve", "--resume"])
    assert r.exit_code == 2 and "--resume needs --out RUN_DIR" in r.output


def solve_args(tiny_dir: Path, run: Path, method: str) -> list[str]:
    """The command line of small_config(tiny_dir, method)."""
    return [sys.executable, "-m", "sdpo_discover.cli", "solve", str(PROBLEM), "--model", str(tiny_dir), "--budget", "12",
            "--batch-size", "4", "--sandbox", "local", "--seed", "3", "--set", "max_new_tokens=8",
            "--set", "gen_batch_size=4", *METHOD_ARGS[method], "--out", str(run), "--quiet"]


@pytest.mark.parametrize("method", METHODS)
def test_cli_kill_9_mid_run_then_resume(method: str, references: dict[str, Any], tiny_dir: Path, tmp_path: Path) -> None:
    """The real command, killed with SIGKILL while it works (twice), then resumed: the same run as never killed."""
    run = tmp_path / "run"
    args = solve_args(tiny_dir, run, method)
    for kill_at in (2, 6):  # attempts graded when the kill lands (then it lands wherever the run is by then)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 300
        while len(read_jsonl(run / "attempts.jsonl")) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        args = [sys.executable, "-m", "sdpo_discover.cli", "solve", "--resume", "--out", str(run), "--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    assert_same_run(references[method], run_contents(run))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_ctrl_c_saves_exits_130_and_resumes(sig: int, method: str, references: dict[str, Any], tiny_dir: Path,
                                                tmp_path: Path) -> None:
    """Ctrl-C (or SIGTERM) of the real command mid-run: exit 130, a summary saying 'interrupted' that counts the
    attempts on disk, and a resume that ends as the run would have without the interruption."""
    run = tmp_path / "run"
    args = solve_args(tiny_dir, run, method)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(read_jsonl(run / "attempts.jsonl")) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # into step 1
    proc.send_signal(sig)
    assert proc.wait(120) == 130, proc.stderr.read().decode()[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "interrupted" and not summary["solved"]
    assert summary["attempts_used"] == len(read_jsonl(run / "attempts.jsonl")) >= 5
    assert summary["wall_s"] > 0
    done = subprocess.run([sys.executable, "-m", "sdpo_discover.cli", "solve", "--resume", "--out", str(run), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    assert_same_run(references[method], run_contents(run))
    final = json.loads((run / "summary.json").read_text())
    assert final["stopped"] == "budget" and final["wall_s"] > summary["wall_s"]


def test_attempt_records_roundtrip(reference: dict[str, Any]) -> None:
    a = Attempt(**{**reference["attempts"][0], "execute_s": 0.0, "generate_s": 0.0})
    assert a.index == 0 and not a.passed


def test_restate_format_ends_the_teachers_reprompt_with_the_answer_line(tiny_dir: Path, tmp_path: Path) -> None:
    from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
    from sdpo_discover.prompts import ANSWER_LINE

    q = question_prompt(load_problem(PROBLEM))
    for flag in (False, True):
        solver = Solver(small_config(tiny_dir, sdpo={"restate_format": flag}), tmp_path / str(flag),
                        problem=load_problem(PROBLEM))
        solver._load()
        want = chat_prompt_ids(solver.tokenizer, teacher_message(q, "Wrong Answer", None, flag), SYSTEM_MESSAGE)
        assert solver.method.p.teacher_ids("Wrong Answer") == want
    assert teacher_message(q, "fb", None, restate_format=True).endswith("original question.\n\n" + ANSWER_LINE + "\n")


def test_explain_an_attempt_of_a_run(tiny_dir: Path, tmp_path: Path) -> None:
    """explain RUN_DIR --attempt K scores the stored tokens with the adapter and EMA teacher of their step."""
    run = tmp_path / "run"
    Solver(small_config(tiny_dir, budget=8), run, problem=load_problem(PROBLEM)).run()
    page = tmp_path / "a6.html"
    r = runner.invoke(app, ["explain", str(run), "--attempt", "6", "--html", str(page)])
    assert r.exit_code == 0, r.output
    assert "attempt 6 (step 1, adapter v00001)" in r.output and "the EMA teacher at that step" in r.output
    assert "Format Error" in r.output and page.read_text().startswith("<!DOCTYPE html>")
    r = runner.invoke(app, ["explain", str(run), "--attempt", "6", "--paper-template"])
    assert r.exit_code == 2 and "the teacher's template the run used" in r.output
    r = runner.invoke(app, ["explain", str(run), "--attempt", "9"])
    assert r.exit_code == 2 and "the run has attempts 1..8" in r.output
    r = runner.invoke(app, ["explain", str(run)])
    assert r.exit_code == 2 and "pass --attempt K" in r.output


@pytest.mark.vllm
@pytest.mark.slow
def test_solve_with_the_vllm_sampler_serves_each_adapter_version(tmp_path: Path) -> None:
    """The loop with vLLM: the engine starts once; step s samples through a LoRA request for adapter v_s."""
    from conftest import require

    from sdpo_discover.samplers import vllm_available

    require("vllm", *vllm_available(), "bash scripts/setup-vllm builds the vLLM virtual environment.")
    model = save_tiny_model(tmp_path / "model", hidden_size=128)  # vLLM's CPU attention: head size 32
    cfg = small_config(model, budget=8, sampler="vllm", device="cpu", vllm_max_model_len=1024, vllm_kv_cache_gib=1)
    served: list[Any] = []
    solver: Solver

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "sampled":
            served.append(solver.sampler.lora_request(str(solver.rd.path.resolve())))

    solver = Solver(cfg, tmp_path / "run", problem=load_problem(PROBLEM), on_event=on_event)
    summary = solver.run()
    rd = RunDir(tmp_path / "run")
    assert summary.attempts_used == 8 and [a.adapter_version for a in rd.load_attempts()] == [0] * 4 + [1] * 4
    # v0 = the base model (LoRA B = 0), then v1's folder under a name and id unique to this run and version
    assert served == [None, {"name": f"{rd.path.resolve()}-v1", "id": 1, "path": str(rd.adapter(1).resolve())}]
    assert all(a.n_tokens > 0 for a in rd.load_attempts())
