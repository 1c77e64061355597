"""A bench on several workers: `--workers 2` processes on this machine, and a real local Ray cluster started by
the test (`ray start --head`, no mock). In each, one run's worker is killed (SIGKILL) while the run is half
done; the bench still finishes, and every run equals the same bench run in one process: every attempt
counted once. The tiny random model and the local sandbox (its attempts never pass: every run spends its
budget, so the runs are long enough to be killed in)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import require
from sdpo_discover.bench import BenchDir, prepare, run_bench
from sdpo_discover.cli import app
from sdpo_discover.models import save_tiny_model
from sdpo_discover.problems import Problem, TestCase
from sdpo_discover.store import RunDir, read_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]
VOLATILE = {"execute_s", "generate_s", "update_s", "wall_s"}
ARGS = dict(methods=["sdpo", "best-of-k", "multi-turn"], seeds=[0], budget=16, pool=16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("workers")
    tiny = save_tiny_model(root / "tiny")
    files = []
    for pid in ("w-a", "w-b"):
        p = Problem(id=pid, title=pid, statement="Print A+B.", test_type="stdin", tests=(TestCase("1 2\n", "3\n"),))
        (root / f"{pid}.json").write_text(json.dumps(p.to_json()))
        files.append(root / f"{pid}.json")
    flags = {"model": str(tiny), "batch_size": 4, "sandbox": "local"}
    sets = ["max_new_tokens=8", "gen_batch_size=4", "sdpo.lr=0.05"]
    ref = root / "reference"
    plan = prepare(ref, files, flags=flags, config_file=None, assignments=sets, resume=False, command=[], **ARGS)
    assert run_bench(BenchDir(ref), plan) == "done"
    return {"root": root, "files": files, "flags": flags, "sets": sets, "reference": ref}


LEARNER_STATS = ("loss", "kl", "grad_norm", "is_weight")


def _contents(bench: Path, approx_stats: bool = False) -> dict[str, Any]:
    """What a bench wrote, less its volatile fields. approx_stats: an update's float statistics compared to 1%:
    a Ray worker gets its own torch thread count (num_cpus), and a float sum's order follows the threads, so
    they can differ in their last digits; the attempts (what was sampled and graded) are compared exactly."""
    out = {}
    for run in BenchDir(bench).load_plan().runs:
        rd = RunDir(BenchDir(bench).run_dir(run))
        out[run.id] = {"attempts": [{k: v for k, v in a.items() if k not in VOLATILE} for a in read_jsonl(rd.attempts)],
                       "steps": [{k: (pytest.approx(v, rel=1e-2, abs=1e-5) if approx_stats and k in LEARNER_STATS
                                      and isinstance(v, float) else v)
                                  for k, v in a.items() if k not in VOLATILE} for a in read_jsonl(rd.steps)],
                       "summary": {k: json.loads(rd.summary.read_text())[k] for k in ("attempts_used", "steps", "stopped")}}
    return out


class KillOnce:
    """An event sink: at the start of the `nth` run, waits until that run has graded a few attempts (not all),
    then SIGKILLs its worker process; records what it killed."""

    def __init__(self, bench: Path, nth: int = 2) -> None:
        self.bench, self.nth, self.starts, self.killed = bench, nth, 0, None

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind != "run_start" or self.killed is not None:
            return
        self.starts += 1
        if self.starts != self.nth:
            return
        rd = RunDir(BenchDir(self.bench).run_dir(payload["run"]))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            n = len(read_jsonl(rd.attempts)) if rd.attempts.exists() else 0
            if n >= 2:
                break
            time.sleep(0.02)
        assert not rd.summary.exists(), "the run finished before it could be killed: make the runs longer"
        os.kill(payload["worker"], signal.SIGKILL)
        self.killed = (payload["run"].id, len(read_jsonl(rd.attempts)))


def _plan(setup: dict[str, Any], out: Path) -> Any:
    return prepare(out, setup["files"], flags=setup["flags"], config_file=None, assignments=setup["sets"],
                   resume=False, command=[], **ARGS)


def test_two_local_workers_survive_a_killed_worker(setup: dict[str, Any], tmp_path: Path) -> None:
    from sdpo_discover.workers import run_local

    out = tmp_path / "bench"
    plan = _plan(setup, out)
    killer = KillOnce(out)
    events: list[str] = []

    def sink(kind: str, payload: dict[str, Any]) -> None:
        events.append(kind if kind != "warning" else payload["message"])
        killer(kind, payload)

    assert run_local(BenchDir(out), plan, 2, on_event=sink) == "done"
    assert killer.killed is not None and 0 < killer.killed[1]
    assert any("died" in e for e in events)
    assert _contents(out) == _contents(setup["reference"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    try:
        import ray  # noqa: F401
    except ImportError as e:
        require("ray", False, str(e), "pip install ray (scripts/setup installs the ray extra)")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, env=env, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_a_bench_on_a_local_ray_cluster_survives_a_killed_worker(setup: dict[str, Any], ray_cluster: str,
                                                                tmp_path: Path) -> None:
    from sdpo_discover.workers import run_ray

    out = tmp_path / "bench"
    plan = _plan(setup, out)
    killer = KillOnce(out)
    assert run_ray(BenchDir(out), plan, ray_cluster, workers=2, num_cpus=1, on_event=killer) == "done"
    assert killer.killed is not None
    assert _contents(out) == _contents(setup["reference"], approx_stats=True)
    # a killed driver resumes the bench: here, every run finished already, so nothing is redone
    res = CliRunner().invoke(app, ["bench", "--resume", "--out", str(out), "--ray-address", ray_cluster, "-q"])
    assert res.exit_code == 0, res.output
    assert _contents(out) == _contents(setup["reference"], approx_stats=True)


def test_an_unreachable_ray_address_is_exit_3_with_what_to_check(setup: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    res = CliRunner().invoke(app, ["bench", str(setup["files"][0]), "--out", str(tmp_path / "b"), "--budget", "4",
                                   "--ray-address", f"127.0.0.1:{_free_port()}", "--model", setup["flags"]["model"],
                                   "--batch-size", "4"])
    assert res.exit_code == 3 and "cannot reach a Ray cluster" in res.output and "ray status" in res.output
