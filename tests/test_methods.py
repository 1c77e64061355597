"""The three methods behind one loop: what each creates and records, the multi-turn prompts (templates, the
context cap, chains), the thinking switch, the settings' one merge and its errors, the torch-free store,
and the generated settings table. The crash-safety of all three is in test_discover.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sdpo_discover import config
from sdpo_discover.cli import app
from sdpo_discover.config import ConfigError, SolveConfig, merge_settings, resolve_settings
from sdpo_discover.discover import Solver
from sdpo_discover.models import CHATML_TEMPLATE, save_tiny_model, tiny_tokenizer
from sdpo_discover.problems import load_problem
from sdpo_discover.prompts import (SYSTEM_MESSAGE, Prompts, chat_prompt_ids, feedback_turn, multi_turn_message,
                                   question_prompt)
from sdpo_discover.store import RunDir, Summary, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ROOT / "problems" / "sum-two.json"
runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def cfg(tiny_dir: Path, method: str, **kw: Any) -> SolveConfig:
    base = dict(problem=str(PROBLEM), model=str(tiny_dir), budget=8, batch_size=4, sandbox="local", seed=1,
                max_new_tokens=6, gen_batch_size=4, method=method)
    return SolveConfig.from_dict(merge_settings(base, kw))


def test_best_of_k_creates_no_adapter_optimizer_or_teacher(tiny_dir: Path, tmp_path: Path) -> None:
    solver = Solver(cfg(tiny_dir, "best-of-k"), tmp_path / "run", problem=load_problem(PROBLEM))
    summary = solver.run()
    rd = RunDir(tmp_path / "run")
    assert type(solver.method).__name__ == "BestOfK" and not hasattr(solver.method, "learner")
    assert not hasattr(solver.model, "peft_config")  # the base model, no LoRA wrapper
    assert not rd.adapters.exists() and not list(rd.path.rglob("*.pt")) and not list(rd.path.rglob("*.safetensors"))
    attempts = rd.load_attempts()
    assert {a.method for a in attempts} == {"best-of-k"} and {a.adapter_version for a in attempts} == {None}
    assert all(a.chain is None and a.turn is None for a in attempts)
    assert summary.method == "best-of-k" and summary.update_s == 0.0
    assert all(s["loss"] is None for s in read_jsonl(rd.steps))
    assert json.loads(rd.config.read_text())["config"]["method"] == "best-of-k"


def test_summary_has_the_same_fields_for_every_method(tiny_dir: Path, tmp_path: Path) -> None:
    keys = set()
    for method in config.METHODS:
        Solver(cfg(tiny_dir, method, budget=4), tmp_path / method, problem=load_problem(PROBLEM)).run()
        doc = json.loads((tmp_path / method / "summary.json").read_text())
        assert doc["method"] == method and set(doc) == set(Summary.__dataclass_fields__)
        keys.add(frozenset(doc))
        line = read_jsonl(tmp_path / method / "attempts.jsonl")[0]
        assert line["method"] == method and {"chain", "turn", "dropped", "prompt_tokens"} <= line.keys()
    assert len(keys) == 1


def test_multi_turn_chains_carry_their_own_feedback(tiny_dir: Path, tmp_path: Path) -> None:
    """Each chain's prompt at turn t holds exactly its own t earlier feedbacks, in docs/reference/SDPO.md section 5's template."""
    from sdpo_discover.models import ResolvedModel, load_model

    model, tok = load_model(ResolvedModel(str(tiny_dir), "folder", str(tiny_dir), ""), device="cpu")
    model.config.max_position_embeddings = 1300  # room for the question (819 tokens) and two feedbacks, not three
    solver = Solver(cfg(tiny_dir, "multi-turn", budget=16, batch_size=4), tmp_path / "run", problem=load_problem(PROBLEM),
                    model=model, tokenizer=tok)
    solver.run()
    rd = RunDir(tmp_path / "run")
    attempts = rd.load_attempts()
    assert [(a.step, a.chain, a.turn) for a in attempts] == [(s, c, s) for s in range(4) for c in range(4)]
    p = solver.method.p
    q = question_prompt(load_problem(PROBLEM))
    for a in attempts:
        earlier = [b.feedback for b in attempts if b.chain == a.chain and b.turn < a.turn]
        want = chat_prompt_ids(solver.tokenizer, multi_turn_message(q, earlier[a.dropped:]))  # the oldest dropped
        assert a.prompt_tokens == len(want) <= solver.method.cap
        if a.dropped:  # only when keeping one more would not have fitted
            more = chat_prompt_ids(solver.tokenizer, multi_turn_message(q, earlier[a.dropped - 1 :]))
            assert len(more) > solver.method.cap
        if a.turn == 0:
            assert want == p.student_ids  # a chain's first turn is the question alone
    steps = read_jsonl(rd.steps)
    assert steps[0]["prompt_tokens"] < steps[1]["prompt_tokens"] < steps[2]["prompt_tokens"]  # the prompts grow...
    assert any(a.dropped for a in attempts if a.step == 3)  # ...until the model's context caps them


def test_multi_turn_single_chain_is_one_attempt_per_step(tiny_dir: Path, tmp_path: Path) -> None:
    Solver(cfg(tiny_dir, "multi-turn", budget=3, multi_turn={"chains": 1}), tmp_path / "run",
           problem=load_problem(PROBLEM)).run()
    attempts = RunDir(tmp_path / "run").load_attempts()
    assert [(a.step, a.chain, a.turn) for a in attempts] == [(0, 0, 0), (1, 0, 1), (2, 0, 2)]


def test_multi_turn_prompt_templates_and_the_context_cap() -> None:
    tok = tiny_tokenizer(100)  # one token per character
    from sdpo_discover.problems import Problem, TestCase

    prob = Problem(id="p", title="P", statement="Add.", test_type="stdin", tests=(TestCase("1\n", "1\n"),))
    p = Prompts(tok, prob)
    history = [(f"attempt {i}", f"feedback number {i}") for i in range(6)]
    q = question_prompt(prob)
    full, dropped = p.multi_turn_ids(history, "feedback_only", cap=100_000)
    assert dropped == 0 and full == chat_prompt_ids(tok, multi_turn_message(q, [f for _, f in history]))
    assert multi_turn_message(q, ["f1", "f2"]) == (
        q.rstrip() + "\n\nThe following is feedback from your unsuccessful earlier attempts:\n\nf1\n\nf2\n\n"
        "Correctly solve the original question.")
    # the cap: the oldest feedback goes first, and the prompt fits
    cap = len(full) - 2 * len("feedback number 0")
    ids, dropped = p.multi_turn_ids(history, "feedback_only", cap=cap)
    assert len(ids) <= cap and dropped >= 2
    assert ids == chat_prompt_ids(tok, multi_turn_message(q, [f for _, f in history[dropped:]]))
    longer, _ = p.multi_turn_ids(history[dropped - 1 :], "feedback_only", cap=100_000)
    assert len(longer) > cap  # one item fewer dropped would not have fitted
    # attempt_and_feedback: a chat of earlier attempts and feedback turns
    chat, dropped = p.multi_turn_ids(history[:2], "attempt_and_feedback", cap=100_000)
    text = tok.apply_chat_template([
        {"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": q},
        {"role": "assistant", "content": "attempt 0"}, {"role": "user", "content": feedback_turn("feedback number 0")},
        {"role": "assistant", "content": "attempt 1"}, {"role": "user", "content": feedback_turn("feedback number 1")},
    ], tokenize=False, add_generation_prompt=True)
    assert dropped == 0 and chat == tok(text, add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="the question alone takes"):
        p.multi_turn_ids(history, "feedback_only", cap=10)


def test_the_multi_turn_cap_follows_the_models_context(tiny_dir: Path, tmp_path: Path) -> None:
    solver = Solver(cfg(tiny_dir, "multi-turn", max_new_tokens=24), tmp_path / "run", problem=load_problem(PROBLEM))
    solver._load()
    assert solver.method.cap == 1024 - 24  # the tiny model's max_position_embeddings minus max_new_tokens (< 32000)


THINKING_TEMPLATE = CHATML_TEMPLATE.replace(
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking %}<think>{% else %}<no_think>{% endif %}{% endif %}")


@pytest.mark.parametrize("thinking", [False, True])
def test_every_prompt_sets_the_thinking_switch(thinking: bool) -> None:
    """Qwen3-style templates read enable_thinking: student, teacher and multi-turn prompts all pass it (default off,
    as in the paper)."""
    tok = tiny_tokenizer(100)
    tok.chat_template = THINKING_TEMPLATE
    want = "<think>" if thinking else "<no_think>"
    p = Prompts(tok, load_problem(PROBLEM), thinking=thinking)
    for ids in (p.student_ids, p.teacher_ids("Wrong Answer"), p.multi_turn_ids([("a", "f")], "feedback_only", 10**6)[0],
                p.multi_turn_ids([("a", "f")], "attempt_and_feedback", 10**6)[0]):
        assert tok.decode(ids).endswith("assistant\n" + want)
    assert tok.decode(Prompts(tok, load_problem(PROBLEM)).student_ids).endswith("<no_think>")  # the default


def test_the_run_records_thinking_and_passes_it(tiny_dir: Path, tmp_path: Path) -> None:
    solver = Solver(cfg(tiny_dir, "sdpo", thinking=True), tmp_path / "run", problem=load_problem(PROBLEM))
    solver._load()
    assert solver.method.p.thinking is True and RunDir(tmp_path / "run").load_config().thinking is True


# -- settings: the one merge, and its errors -------------------------------------------------------------


def test_resolve_settings_precedence_and_method_sections(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('method = "multi-turn"\nbudget = 10\n[multi_turn]\nchains = 2\n')
    c = resolve_settings({"budget": 20}, config_file=toml, assignments=["multi_turn.template=attempt_and_feedback"])
    assert (c.method, c.budget, c.multi_turn.chains, c.multi_turn.template) == ("multi-turn", 20, 2, "attempt_and_feedback")
    assert c.step_size == 2
    with pytest.raises(ConfigError, match=r"'multi_turn.chains' applies to --method multi-turn only, and this run's "
                                          r"method is sdpo: drop it, or pass --method multi-turn"):
        resolve_settings({}, assignments=["multi_turn.chains=1"])
    with pytest.raises(ConfigError, match=r"'sdpo.lr' applies to --method sdpo only, and this run's method is best-of-k"):
        resolve_settings({"method": "best-of-k", "sdpo.lr": 1e-3})
    saved = SolveConfig(method="best-of-k").to_json()
    with pytest.raises(ConfigError, match=r"setting 'method' = 'sdpo': this run's method is 'best-of-k'; a run keeps "
                                          r"its method"):
        resolve_settings({"method": "sdpo"}, saved=saved)
    assert resolve_settings({"budget": 99, "method": "best-of-k"}, saved=saved).budget == 99  # the same method: fine


def test_old_settings_keep_their_meaning() -> None:
    """A config.json of an earlier version: learn = false was best-of-k; trust_region_mix m weighed the reference,
    the authors' rate c weighs the student: c = 1 - m; settings added later take the value older runs used."""
    d = config.complete_saved({"learn": False, "sdpo": {"trust_region_mix": 0.25}})
    c = SolveConfig.from_dict(d)
    assert c.method == "best-of-k" and c.sdpo.trust_region_rate == 0.75
    assert c.sdpo.restate_format is False and c.sdpo.loss_norm == "token"
    assert c.stop_at_answer is False and SolveConfig().stop_at_answer is True  # runs before it sampled to the end
    assert SolveConfig.from_dict(config.complete_saved({})).method == "sdpo"
    # a bench plan of then: its runs keep their settings' meaning too
    from sdpo_discover.bench import Plan

    run = {"id": "p/sdpo/seed-0", "problem": "p", "method": "sdpo", "seed": 0,
           "settings": {k: v for k, v in SolveConfig().to_json().items() if k != "stop_at_answer"}}
    plan = Plan.from_json({"problems": [], "methods": ["sdpo"], "seeds": [0], "budget": 16, "pool": 16, "runs": [run]})
    assert plan.runs[0].config.stop_at_answer is False


def test_cli_bad_method_input(tiny_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["solve", str(PROBLEM), "--method", "grpo"])
    assert r.exit_code == 2 and "grpo" in r.output
    r = runner.invoke(app, ["solve", str(PROBLEM), "--set", "multi_turn.chains=1", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "'multi_turn.chains' applies to --method multi-turn only" in " ".join(r.output.split())
    r = runner.invoke(app, ["solve", str(PROBLEM), "--no-learn", "--method", "multi-turn"])
    assert r.exit_code == 2 and "--no-learn is an alias of --method best-of-k" in r.output
    run = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tiny_dir), "--sandbox", "local", "--budget", "2",
                            "--batch-size", "2", "--set", "max_new_tokens=4", "--no-learn", "--out", str(run), "--quiet"])
    assert r.exit_code == 1, r.output
    assert json.loads((run / "config.json").read_text())["config"]["method"] == "best-of-k"  # --no-learn: the alias
    r = runner.invoke(app, ["solve", "--resume", "--out", str(run), "--method", "multi-turn"])
    assert r.exit_code == 2 and "this run's method is 'best-of-k'" in " ".join(r.output.split())
    r = runner.invoke(app, ["solve", "--resume", "--out", str(run), "--method", "best-of-k", "--budget", "4", "--quiet"])
    assert r.exit_code == 1 and "Not solved within 4 attempts" in r.output


def test_help_shows_the_dataclass_defaults_and_choices() -> None:
    r = runner.invoke(app, ["solve", "--help"], env={"COLUMNS": "250"})
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", r.output).split())
    assert r.exit_code == 0 and "Example:" in text
    for line in ("(default: 2750)", "(default: qwen2.5-coder-0.5b)", "(default: sdpo)", "(default: 0.0001)",
                 "sdpo|best-of-k|multi-turn"):
        assert line in text, line
    assert f"(default: {config.default_of(SolveConfig, 'batch_size')})" in text


def test_settings_table_matches_the_code() -> None:
    """docs/settings.md is generated (python -m sdpo_discover.config > docs/settings.md): it cannot drift."""
    assert (ROOT / "docs" / "settings.md").read_text() == config.settings_markdown()
    for f in ("method", "multi_turn.context_tokens", "sdpo.loss_norm", "sdpo.trust_region_rate", "thinking"):
        assert f"| `{f}` |" in config.settings_markdown()


def test_the_store_and_the_reports_import_no_torch() -> None:
    code = ("import sys, sdpo_discover.store, sdpo_discover.report, sdpo_discover.config, sdpo_discover.prompts, "
            "sdpo_discover.methods, sdpo_discover.discover; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sdpo_py_imports_no_problem_or_prompt_code() -> None:
    src = (ROOT / "sdpo_discover" / "sdpo.py").read_text()
    assert "from .problems" not in src and "from .prompts" not in src and "import problems" not in src


def test_explain_reads_baseline_runs(tiny_dir: Path, tmp_path: Path) -> None:
    """A best-of-k attempt was sampled from the base model: explained without an adapter; a multi-turn attempt's
    prompt was a conversation, not the question: refused with what to do instead."""
    for method in ("best-of-k", "multi-turn"):
        Solver(cfg(tiny_dir, method, budget=8), tmp_path / method, problem=load_problem(PROBLEM)).run()
    r = runner.invoke(app, ["explain", str(tmp_path / "best-of-k"), "--attempt", "5"])
    assert r.exit_code == 0, r.output
    assert "attempt 5 (step 1, the base model)" in r.output and "the student re-prompted" in r.output
    r = runner.invoke(app, ["explain", str(tmp_path / "multi-turn"), "--attempt", "5"])
    assert r.exit_code == 2 and "sampled in a multi-turn conversation (chain 0, turn 1)" in " ".join(r.output.split())


def test_sparkline_shows_every_value_in_order() -> None:
    from sdpo_discover.report import sparkline

    assert sparkline([0, 0, 0, 1, 1]) == "▁▁▁██"  # fewer values than characters: one each, in order
    assert sparkline([0.0] * 90 + [1.0] * 30, width=60) == "▁" * 45 + "█" * 15  # bucket maxima
    assert sparkline([1.0] + [0.0] * 119, width=60) == "█" + "▁" * 59


def test_a_question_that_cannot_fit_the_multi_turn_cap_is_a_setting_error(tiny_dir: Path, tmp_path: Path) -> None:
    solver = Solver(cfg(tiny_dir, "multi-turn", multi_turn={"context_tokens": 100}), tmp_path / "run",
                    problem=load_problem(PROBLEM))
    with pytest.raises(ConfigError, match=r"the question alone takes \d+ tokens, more than the prompt cap of 100 .*"
                                          r"lower max_new_tokens, or use a model with a longer context"):
        solver.run()


@pytest.mark.parametrize("method", config.METHODS)
def test_a_prompt_that_cannot_fit_the_context_is_refused_before_sampling(method: str, tiny_dir: Path,
                                                                         tmp_path: Path) -> None:
    """The tiny model's context is 1024 tokens and sum-two's prompt 819 of them: max_new_tokens 300 cannot fit."""
    run = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(PROBLEM), "--model", str(tiny_dir), "--sandbox", "local", "--method", method,
                            "--set", "max_new_tokens=300", "--out", str(run), "--quiet"])
    assert r.exit_code == 2, r.output
    assert ("Error: problem 'sum-two': its prompt takes 819 tokens and max_new_tokens is 300, more than the 1024 "
            "tokens of the model's context; lower max_new_tokens (--set max_new_tokens=205 fits)") in " ".join(r.output.split())
    assert not list((run / "batches").iterdir()) and not (run / "attempts.jsonl").exists()  # nothing sampled


def test_library_warnings_go_to_the_runs_log_not_the_terminal(tiny_dir: Path, tmp_path: Path) -> None:
    """An SDPO update on the tiny model makes torch/transformers warn (past_key_values is deprecated): under
    --quiet the terminal shows the outcome only, the warning is in RUN/log.txt; --debug shows it."""
    def solve(out: Path, *pre: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sdpo_discover.cli", *pre, "solve", str(PROBLEM), "--model",
                               str(tiny_dir), "--sandbox", "local", "--budget", "8", "--batch-size", "4",
                               "--set", "max_new_tokens=8", "--out", str(out), "--quiet"],
                              capture_output=True, text=True, timeout=300)
    quiet = solve(tmp_path / "quiet")
    assert quiet.returncode == 1 and quiet.stdout.strip() == "Not solved within 8 attempts"
    assert quiet.stderr == "", quiet.stderr
    assert "past_key_values" in (tmp_path / "quiet" / "log.txt").read_text()
    debug = solve(tmp_path / "debug", "--debug")
    assert debug.returncode == 1 and "past_key_values" in debug.stderr
    assert not (tmp_path / "debug" / "log.txt").exists()
