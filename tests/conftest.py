"""Shared fixtures. Docker tests need a daemon and the sandbox image: in CI (CI=true) their absence
is a failure; elsewhere they are skipped, and the skip is repeated loudly at the end of the run."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

# `--sampler auto` (the default) picks vLLM wherever its venv is installed, as in CI: the tests that do not ask for
# a sampler mean the in-process one (their references are computed with it), so auto picks hf for them. The tests
# of auto itself unset this.
os.environ.setdefault("SDPO_DISCOVER_SAMPLER", "hf")

import pytest  # noqa: E402

from sdpo_discover.feedback import render_feedback
from sdpo_discover.problems import Problem, load_problem
from sdpo_discover.sandbox.verdicts import AttemptResult, AttemptStatus, TestVerdict, Verdict
from sdpo_discover.sandbox import Executor, docker_available
from sdpo_discover.sandbox.local import LocalExecutor

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ROOT / "problems"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_skips: dict[str, tuple[list[str], str]] = {}  # what -> (reasons, how to get it)


def require(what: str, ok: bool, why: str, how: str) -> None:
    """Tests that need `what`: in CI its absence is a failure; elsewhere a skip, repeated loudly at the end."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI and is not usable: {why}", pytrace=False)
    _skips.setdefault(what, ([], how))[0].append(why)
    pytest.skip(f"{what.upper()} UNAVAILABLE, test not run: {why}")


def require_docker() -> None:
    require("docker", *docker_available(),
            "Run scripts/setup (as root) to install docker.io, start dockerd and build the image.")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    for what, (reasons, how) in _skips.items():
        terminalreporter.write_sep("!", f"{what.upper()} TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(f"{len(reasons)} {what} test(s) did not run: {reasons[0]}", red=True)
        terminalreporter.write_line(how, red=True)


@pytest.fixture(scope="session")
def local_executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    yield ex
    ex.close()


@pytest.fixture(scope="session")
def docker_executor() -> Iterator[Executor]:
    require_docker()
    from sdpo_discover.sandbox.container import DockerExecutor

    ex = DockerExecutor(pool_size=2)
    yield ex
    ex.close()


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def executor(request: pytest.FixtureRequest) -> Executor:
    """Each test that takes `executor` runs on both executors."""
    return request.getfixturevalue(f"{request.param}_executor")


def problem(pid: str) -> Problem:
    return load_problem(PROBLEMS / f"{pid}.json")


def fake_vllm_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_source: str) -> Path:
    """A venv that looks like the vLLM sampler's (its python is this one, a `vllm` package is importable by
    name), a model folder tmp_path/model, and samplers.WORKER_SCRIPT pointed at `worker_source`: VLLMSampler
    then drives that fake worker. Returns the venv."""
    import sdpo_discover.samplers as samplers

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (venv / "lib" / "python3" / "site-packages" / "vllm").mkdir(parents=True)
    (venv / "lib" / "python3" / "site-packages" / "vllm" / "__init__.py").write_text("")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "worker.py").write_text(worker_source)
    monkeypatch.setattr(samplers, "WORKER_SCRIPT", tmp_path / "worker.py")
    return venv


def load_worker_module():  # noqa: ANN201 - the module
    """vllm_worker.py as a fresh module of this interpreter (it imports vllm only inside its ops), so that a test
    can give it a fake engine (LLM_ENGINE) without touching another test's copy."""
    import importlib.util

    from sdpo_discover.samplers import WORKER_SCRIPT

    spec = importlib.util.spec_from_file_location("vllm_worker_under_test", WORKER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SyntheticJudge:
    """A judge without a sandbox: an attempt passes when `passes(problem id, sha256 of its text)` says so, so
    the outcome is a fixed function of the text (the same on a rerun, a resume or another worker)."""

    name = "synthetic"

    def passes(self, problem_id: str, digest: int) -> bool:
        raise NotImplementedError

    def grade(self, problem: Problem, response: str, truncated: bool) -> AttemptResult:
        ok = self.passes(problem.id, int(hashlib.sha256(response.encode()).hexdigest(), 16))
        v = TestVerdict(index=0, verdict=Verdict.PASSED if ok else Verdict.WRONG_ANSWER, stdout=response[:30])
        return AttemptResult(AttemptStatus.PASSED if ok else AttemptStatus.FAILED, tests=[v], code=response)

    def feedback(self, problem: Problem, result: AttemptResult) -> str | None:
        return render_feedback(problem, result)

    def close(self) -> None:
        pass
