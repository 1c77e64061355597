"""The run directory: its records, atomic writes, the commit order, and what a resume keeps.

One format for every method (sdpo, best-of-k, multi-turn); the directory is the only state of a run, and
a run killed at any moment (kill -9 included) resumes exactly:

    config.json        the resolved settings (with `method`), package and model versions, the model's fingerprint
    problem.json       the problem as loaded (so the run is self-contained)
    batches/s00003.jsonl  step 3's sampled batch, written (atomically) before any of it is graded
    attempts.jsonl     one line per graded attempt, flushed and fsynced as soon as it is graded
    steps.jsonl        one line per finished step (verdicts, loss and KL for sdpo, timings)
    state.json         the commit point: steps committed and the adapter version they leave
    adapters/v00003/   sdpo only: the adapter after 3 updates (peft format: what vLLM loads as a LoRA request),
                       the EMA teacher (teacher.safetensors) and, for the newest version, learner.pt
    summary.json       solved?, first-success index, attempts used, wall time split (the same fields for all methods)
    solution.py        the first passing attempt's code
    log.txt            libraries' warnings and log records (`solve` without --debug), when there are any

Commit order of step s: batch file -> attempt lines -> (sdpo) adapter v+1 with learner.pt -> steps.jsonl line
-> state.json (an atomic os.replace: the commit point). A step that ends the run (solved, or the budget
spent) takes no update and does not commit: its attempts are final and a resume with a larger budget
takes its update then, as an uninterrupted run would have. On resume (`reconcile`), state.json names the
steps committed s and the version v; attempts of steps < s are final; the batch and the attempts already
graded of step s are reused (never sampled or graded again, never counted twice); steps.jsonl lines of
steps >= s and adapter folders past v are dropped (their update did not commit). A torn last line
(killed mid-write) is dropped.

Imports only the standard library: reports, `explain` and the metrics read runs without torch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__
from .config import SolveConfig, complete_saved
from .problems import Problem, problem_from_dict

FORMAT = 2  # of the run directory; 1: before state.json (state.pt was the commit point, sdpo only)


class RunDirError(ValueError):
    """The run directory cannot be used (exists without --resume, is not a run, belongs to another problem)."""


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Attempt:
    """One line of attempts.jsonl: enough to recompute every figure of the run."""

    index: int  # 0-based, over the whole run, in sampling order
    step: int
    adapter_version: int | None  # sdpo: the adapter it was sampled from (= step); None: the base model
    response: str
    token_ids: list[int]
    truncated: bool
    status: str
    code: str | None
    tests: list[dict[str, Any]]
    error: str | None
    feedback: str | None
    fraction_passed: float
    n_tokens: int
    execute_s: float
    generate_s: float  # this attempt's share of its batch's generation time
    method: str = "sdpo"
    chain: int | None = None  # multi-turn: which conversation
    turn: int | None = None  # multi-turn: its turn in that conversation (0: the question alone)
    dropped: int | None = None  # multi-turn: earlier feedback items left out of its prompt (the context cap)
    prompt_tokens: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class StepRecord:
    """One line of steps.jsonl: a finished step (sampling, grading and, for sdpo unless it ended the run, the update)."""

    step: int
    attempts: int  # in this step
    passed: int
    verdicts: dict[str, int]  # attempt status -> count
    best_fraction: float  # best fraction of tests passed in this step
    loss: float | None
    kl: float | None
    grad_norm: float | None
    rollouts: int  # attempts that carried loss
    tokens: int
    generate_s: float
    execute_s: float
    update_s: float
    wall_s: float = 0.0  # the run's wall time when this step committed, over all sessions
    prompt_tokens: int = 0  # mean prompt length of the step's attempts (multi-turn prompts grow)


@dataclass
class Summary:
    problem: str
    solved: bool
    first_success_index: int | None  # k: 1-based, counting every generated attempt
    attempts_used: int
    budget: int
    steps: int
    wall_s: float
    generate_s: float
    execute_s: float
    update_s: float
    other_s: float
    run_dir: str
    solution: str | None
    stopped: str  # solved | budget | interrupted
    sandbox: str = ""  # what graded the attempts: docker, local (or a test's judge)
    method: str = "sdpo"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _known(cls: type, row: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in row.items() if k in names}


# ---------------------------------------------------------------------------------------------
# Durable writes


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write then rename: a reader (or a resume after kill -9) sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn last line (the writer was killed mid-write) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # only the last line can be torn: nothing valid follows it
    return rows


def rewrite_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


class JsonlAppender:
    """Append one JSON line and make it durable before returning (flush + fsync)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, row: dict[str, Any]) -> None:
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


# ---------------------------------------------------------------------------------------------
# The run directory


@dataclass
class Committed:
    """What a run directory holds that counts (RunDir.reconcile)."""

    steps: int  # steps committed: the next step to run is this one
    adapter_version: int  # sdpo: updates committed; 0 for the baselines
    attempts: dict[int, Attempt] = field(default_factory=dict)  # by index: steps < `steps`, and step `steps` so far
    step_records: list[dict[str, Any]] = field(default_factory=list)  # steps < `steps`
    wall_before: float = 0.0  # the run's wall time before this session

    @property
    def used(self) -> int:
        """Attempts of committed steps (those of the current step are reused, but counted when it ends)."""
        return sum(1 for a in self.attempts.values() if a.step < self.steps)


class RunDir:
    """Paths and readers of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.problem = self.path / "problem.json"
        self.attempts = self.path / "attempts.jsonl"
        self.steps = self.path / "steps.jsonl"
        self.state = self.path / "state.json"
        self.summary = self.path / "summary.json"
        self.solution = self.path / "solution.py"
        self.plot = self.path / "discovery.svg"
        self.batches = self.path / "batches"
        self.adapters = self.path / "adapters"
        self.log = self.path / "log.txt"

    def batch(self, step: int) -> Path:
        return self.batches / f"s{step:05d}.jsonl"

    def adapter(self, version: int) -> Path:
        return self.adapters / f"v{version:05d}"

    def is_run(self) -> bool:
        return self.config.is_file() and self.problem.is_file()

    def config_doc(self) -> dict[str, Any]:
        return json.loads(self.config.read_text())

    def settings(self) -> dict[str, Any]:
        """The run's settings as config.json holds them, completed (config.complete_saved): a run written before
        a setting existed ran with that setting's behaviour of then, not with today's default."""
        return complete_saved(self.config_doc()["config"])

    def load_config(self) -> SolveConfig:
        return SolveConfig.from_dict(self.settings(), where=str(self.config))

    def load_problem(self) -> Problem:
        return problem_from_dict(json.loads(self.problem.read_text()), str(self.problem))

    def load_attempts(self) -> list[Attempt]:
        return [Attempt(**_known(Attempt, r)) for r in read_jsonl(self.attempts)]

    def load_summary(self) -> Summary | None:
        try:
            return Summary(**_known(Summary, json.loads(self.summary.read_text())))
        except (OSError, ValueError):
            return None

    # -- creating and resuming -----------------------------------------------------------------

    def create(self, problem: Problem, cfg: SolveConfig, sampler_choice: str = "") -> None:
        """A new run directory for `problem`; an existing non-empty folder is refused."""
        if self.path.exists() and any(self.path.iterdir()):
            hint = "pass --resume to continue it" if self.is_run() else "choose an empty or new folder"
            raise RunDirError(f"{self.path}: exists and is not empty; {hint}, or choose another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.problem, json.dumps(problem.to_json(), indent=2))
        self.batches.mkdir(exist_ok=True)
        if cfg.method == "sdpo":
            self.adapters.mkdir(exist_ok=True)
        self.write_config(cfg, model_info={}, sampler_choice=sampler_choice)

    def write_config(self, cfg: SolveConfig, model_info: dict[str, Any], sampler_choice: str | None = None) -> None:
        """config.json; sampler_choice: what `--sampler auto` chose and why (kept from the file when not given)."""
        if sampler_choice is None:
            sampler_choice = self.config_doc().get("sampler_choice", "") if self.config.is_file() else ""
        write_atomic(self.config, json.dumps({
            "format": FORMAT, "config": cfg.to_json(), "versions": versions(), "model": model_info,
            "sampler_choice": sampler_choice, "argv": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=2))

    def check_resumable(self, problem: Problem | None = None) -> None:
        if not self.is_run():
            raise RunDirError(f"{self.path}: not a run directory (no config.json/problem.json); "
                              "start a new run with `sdpo-discover solve PROBLEM --out DIR`")
        if problem is not None and problem.to_json() != self.load_problem().to_json():
            raise RunDirError(f"{self.path}: this run is for problem '{self.load_problem().id}', not the given "
                              f"'{problem.id}'; resume without PROBLEM, or start a new run with another --out")
        if self.config_doc().get("format", 1) < FORMAT and (self.path / "state.pt").exists():
            raise RunDirError(f"{self.path}: written by an older sdpo-discover (run-directory format 1); its records "
                              "can still be read (explain, report) but it cannot be resumed: start a new run")

    def commit(self, steps: int, adapter_version: int, keep_adapters: str = "all") -> None:
        """The commit point of a step: every file it wrote is durable before this rename. After it, older
        adapter versions' learner state (learner.pt) is never needed again, and with keep_adapters = "last"
        neither are the older versions: removed (a crash midway leaves only extra files)."""
        write_atomic(self.state, json.dumps({"steps": steps, "adapter_version": adapter_version}))
        if adapter_version and self.adapters.is_dir():
            for old in self.adapters.glob("v*"):
                if old.name < self.adapter(adapter_version).name:
                    if keep_adapters == "last":
                        shutil.rmtree(old, ignore_errors=True)
                    else:
                        (old / "learner.pt").unlink(missing_ok=True)

    def reconcile(self) -> Committed:
        """Drop what did not commit (see the module's docstring) and return what did."""
        try:
            state = json.loads(self.state.read_text())
        except FileNotFoundError:
            state = {"steps": 0, "adapter_version": 0}
        steps, version = int(state["steps"]), int(state["adapter_version"])
        if self.adapters.is_dir():
            for folder in self.adapters.iterdir():  # written by an update whose step did not commit: redone
                num = folder.name[1:]
                if not (folder.name.startswith("v") and num.isdigit() and int(num) <= version):
                    shutil.rmtree(folder, ignore_errors=True)
        kept = [r for r in read_jsonl(self.attempts) if r["step"] <= steps]
        rewrite_jsonl(self.attempts, kept)
        records = [r for r in read_jsonl(self.steps) if r["step"] < steps]
        rewrite_jsonl(self.steps, records)
        prior = self.load_summary()
        # Time spent before a kill -9 is known up to the last commit (a step's record carries the run's wall
        # time); a Ctrl-C or a finished run also left a summary. The larger of the two is what came before.
        wall_before = max(prior.wall_s if prior else 0.0, float(records[-1].get("wall_s", 0.0)) if records else 0.0)
        return Committed(steps, version, {r["index"]: Attempt(**_known(Attempt, r)) for r in kept}, records,
                         wall_before)


@dataclass
class RunAttempt:
    """What `explain RUN_DIR --attempt K` needs, read from the run directory."""

    problem: Problem
    response: str
    token_ids: list[int]
    feedback: str | None
    adapter: Path | None  # the adapter version the attempt was sampled from; None: the base model (best-of-k)
    teacher: Path | None  # the EMA teacher's adapter weights at that version (teacher.safetensors)
    model: str  # the model the run used (a preset, a folder, a .gguf file)
    temperature: float
    label: str  # "attempt 5 (step 0, adapter v00000)"
    restate_format: bool = False  # the run's learner option: the teacher's reprompt ends with the answer line
    thinking: bool = False


def load_run_attempt(run_dir: Path, k: int) -> RunAttempt:
    """Attempt k (1-based, as `solve` reports) of a run. ValueError with what to do when it cannot be had."""
    rd = RunDir(run_dir)
    if not rd.is_run():
        raise ValueError(f"{run_dir}: not a run directory (no config.json/problem.json)")
    attempts = rd.load_attempts()
    if not 1 <= k <= len(attempts):
        raise ValueError(f"{run_dir}: --attempt {k}: the run has attempts 1..{len(attempts)}")
    a = attempts[k - 1]
    cfg = rd.load_config()
    if cfg.method == "multi-turn":
        raise ValueError(f"{run_dir}: attempt {k} was sampled in a multi-turn conversation (chain {a.chain}, turn "
                         f"{a.turn}), not from the question alone; explain scores SDPO's credit against the question: "
                         "save the attempt's response to a file and run `sdpo-discover explain PROBLEM FILE`")
    folder, teacher = None, None
    if a.adapter_version is not None:
        folder = rd.adapter(a.adapter_version)
        if not (folder / "adapter_config.json").is_file():
            raise ValueError(f"{folder}: the adapter this attempt was sampled from is not kept "
                             "(keep_adapters = 'last'?)")
        teacher = folder / "teacher.safetensors"
    where = f"adapter {folder.name}" if folder else "the base model"
    return RunAttempt(problem=rd.load_problem(), response=a.response, token_ids=a.token_ids, feedback=a.feedback,
                      adapter=folder, teacher=teacher if teacher is not None and teacher.is_file() else None,
                      model=cfg.model, temperature=float(rd.config_doc().get("model", {}).get("temperature") or 1.0),
                      label=f"attempt {k} (step {a.step}, {where})", restate_format=cfg.sdpo.restate_format,
                      thinking=cfg.thinking)


def default_run_dir(problem: Problem, root: Path = Path("runs")) -> Path:
    return root / f"{problem.id}-{time.strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    v = {"sdpo-discover": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "docker"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = "not installed"
    return v
