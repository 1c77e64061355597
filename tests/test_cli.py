"""The CLI: exit codes, exact error messages, --json, --help; and that importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdpo_discover.cli import app

runner = CliRunner()
PROBLEM = {"id": "sum", "title": "Sum", "statement": "Add.", "test_type": "stdin",
           "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 5\n", "output": "9\n", "hidden": True}]}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "p.json").write_text(json.dumps(PROBLEM))
    (tmp_path / "ok.py").write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    (tmp_path / "wrong.py").write_text("a, b = map(int, input().split())\nprint(a * b)\n")
    (tmp_path / "response.md").write_text("Sure!\n```python\nprint(sum(map(int, input().split())))\n```\n")
    (tmp_path / "prose.md").write_text("I cannot solve this.\n")
    return tmp_path


def test_check_pass_fail_and_response(files: Path) -> None:
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "ok.py"), "--sandbox", "local"])
    assert r.exit_code == 0, r.output
    assert "passed — 2/2 tests passed" in r.output
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "wrong.py"), "--sandbox", "local"])
    assert r.exit_code == 1
    assert "Test Case 1: Wrong Answer" in r.output and "4 5" not in r.output  # hidden input never shown
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "response.md"), "--sandbox", "local"])
    assert r.exit_code == 0, r.output


def test_check_json(files: Path) -> None:
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "wrong.py"), "--sandbox", "local", "--json"])
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["status"] == "failed" and [t["verdict"] for t in d["tests"]] == ["wrong_answer", "wrong_answer"]
    assert d["feedback"].startswith("Test Case 1: Wrong Answer")


def test_check_format_error_is_a_failed_attempt(files: Path) -> None:
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "prose.md"), "--sandbox", "local", "--json"])
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["status"] == "format_error" and d["tests"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json", "ok.py"], "Error: {d}/missing.json: no such file"),
        (["p.json", "missing.py"], "Error: {d}/missing.py: no such file. Pass a .py file"),
        (["bad.json", "ok.py"], "Error: {d}/bad.json: field 'test_type': must be 'stdin' or 'functional', got 'x'"),
    ],
)
def test_check_bad_input_exits_2_with_a_clear_message(files: Path, args: list[str], message: str) -> None:
    (files / "bad.json").write_text(json.dumps({**PROBLEM, "test_type": "x"}))
    r = runner.invoke(app, ["check", *[str(files / a) for a in args], "--sandbox", "local"])
    assert r.exit_code == 2
    assert message.format(d=files) in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.output


def test_bad_option_value_exits_2(files: Path) -> None:
    r = runner.invoke(app, ["check", str(files / "p.json"), str(files / "ok.py"), "--sandbox", "vm"])
    assert r.exit_code == 2


def test_every_command_has_help_with_an_example() -> None:
    for cmd in (["check"], ["sandbox", "build"], ["sandbox", "doctor"], ["sandbox", "clean"], ["problems", "validate"]):
        r = runner.invoke(app, [*cmd, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output, cmd


def test_problems_validate(files: Path) -> None:
    r = runner.invoke(app, ["problems", "validate", str(files / "p.json")])
    assert r.exit_code == 0 and "sum" in r.output
    (files / "bad.json").write_text("{")
    r = runner.invoke(app, ["problems", "validate", str(files / "bad.json")])
    assert r.exit_code == 2 and "not valid JSON" in r.stderr


def test_importing_the_cli_imports_neither_torch_nor_docker() -> None:
    code = "import sys, sdpo_discover.cli; print(sorted(m for m in ('torch', 'docker', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sandbox_doctor_reports_the_image_that_will_be_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDPO_DISCOVER_IMAGE", "my-own-sandbox:7")
    r = runner.invoke(app, ["sandbox", "doctor", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["image"] == "my-own-sandbox:7"
    monkeypatch.delenv("SDPO_DISCOVER_IMAGE")
    r = runner.invoke(app, ["sandbox", "doctor", "--json"])
    assert json.loads(r.stdout)["image"] == "sdpo-discover-sandbox:1"


@pytest.mark.parametrize("env", [{}, {"XDG_CACHE_HOME": "xdg"}, {"SDPO_DISCOVER_CACHE": "mine"},
                                 {"XDG_CACHE_HOME": "xdg", "SDPO_DISCOVER_CACHE": "mine"},
                                 {"SDPO_DISCOVER_VLLM_VENV": "venv"}])
def test_the_vllm_venv_follows_the_cache_rule_in_python_and_in_the_script(env: dict[str, str], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from sdpo_discover.samplers import vllm_venv_path

    for k in ("XDG_CACHE_HOME", "SDPO_DISCOVER_CACHE", "SDPO_DISCOVER_VLLM_VENV"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, str(tmp_path / v))
    script = Path(__file__).resolve().parents[1] / "scripts" / "setup-vllm"
    printed = subprocess.run(["bash", str(script), "--print-venv"], capture_output=True, text=True, check=True).stdout
    assert Path(printed.strip()) == vllm_venv_path()
    if "SDPO_DISCOVER_VLLM_VENV" in env:
        want = tmp_path / "venv"
    elif "SDPO_DISCOVER_CACHE" in env:
        want = tmp_path / "mine" / "vllm-venv"
    elif "XDG_CACHE_HOME" in env:
        want = tmp_path / "xdg" / "sdpo-discover" / "vllm-venv"
    else:
        want = Path.home() / ".cache" / "sdpo-discover" / "vllm-venv"
    assert vllm_venv_path() == want
