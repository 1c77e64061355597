"""The test-time discovery loop: sample -> execute -> feedback -> SDPO update, until solved or out of budget.

Hübotter et al., "Reinforcement Learning via Self-Distillation" (arXiv 2601.20802), section 5; SDPO.md
sections 1-4. One question, one per-question LoRA adapter, G attempts per step, one optimizer step per
batch (on-policy, so importance weights are 1 and the sampler's log-probs are not needed).

    step s:  adapter v_s  --sample G-->  batch  --grade-->  verdicts + feedback  --SDPO-->  adapter v_{s+1}

The run directory is the only state; a run killed at any moment (kill -9 included) resumes exactly:

    config.json        the resolved config, package and model versions, the model's fingerprint
    problem.json       the problem as loaded (so the run is self-contained)
    batches/s00003.jsonl  step 3's sampled batch, written (atomically) before any of it is graded
    attempts.jsonl     one line per graded attempt, flushed and fsynced as soon as it is graded
    steps.jsonl        one line per finished update (loss, KL, timings)
    adapters/v00003/   the adapter after 3 updates (peft format: what vLLM loads as a LoRA request)
    state.pt           the learner after the last finished update: optimizer, EMA teacher, RNG, version
    summary.json       solved?, first-success index, attempts used, wall time split
    solution.py        the first passing attempt's code

Commit order of step s: batch file -> attempt lines -> adapter v_{s+1} -> steps.jsonl line -> state.pt
(an atomic os.replace: the commit point). On resume, state.pt names the version v; attempts of steps
< v are final; the batch and the attempts already graded of step v are reused (never sampled or
graded again, never counted twice); steps.jsonl lines of steps >= v are dropped (their update did
not commit). A torn last line (killed mid-write) is dropped.

Imports only the standard library at module level; torch and the models are imported by `Solver`.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .feedback import render_feedback
from .problems import SYSTEM_MESSAGE, Problem, problem_from_dict, question_prompt
from .sandbox.verdicts import AttemptResult, AttemptStatus
from .sdpo import SDPOConfig, teacher_message

SAMPLERS = ("hf", "vllm")
SANDBOXES = ("auto", "docker", "local")
DEVICES = ("auto", "cpu", "cuda")
KEEP_ADAPTERS = ("all", "last")


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and the bad value."""


class RunDirError(ValueError):
    """The run directory cannot be used (exists without --resume, is not a run, belongs to another problem)."""


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class SolveConfig:
    """Everything a run depends on. Saved resolved to config.json; loadable from TOML (`[sdpo]` table for
    the learner). temperature/top_p None = the model preset's measured defaults (the paper's 1.0/1.0
    for other models); the learner's temperature always equals the sampling temperature (SDPO.md 2.5)."""

    problem: str = ""
    budget: int = 2750  # attempts, every generated one counted (paper: 2750)
    model: str = "qwen2.5-coder-0.5b"
    sampler: str = "hf"  # hf | vllm
    sandbox: str = "auto"  # auto | docker | local
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (models.resolve_dtype: bf16 on CUDA or native-bf16 CPUs, else float32) | bfloat16 | float16 | float32
    batch_size: int = 16  # attempts per step (paper: 16)
    seed: int = 0
    learn: bool = True  # False: no update, i.e. independent sampling (best-of-k) through the same loop
    max_new_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    top_k: int = 0  # sampling top-k; 0 = off
    gen_batch_size: int = 16  # hf: sequences per generate call (a whole default batch: decoding is bandwidth-bound)
    workers: int = 2  # attempts graded at once
    keep_adapters: str = "all"  # all: every version's adapter stays (explain, reproduce); last: only the newest
    vllm_max_model_len: int = 4096
    vllm_kv_cache_gib: float = 2.0
    vllm_gpu_memory_utilization: float = 0.5  # the engine's share of the GPU; the trainer uses the rest
    sdpo: SDPOConfig = field(default_factory=SDPOConfig)

    def validate(self) -> None:
        def bad(name: str, value: Any, must: str) -> ConfigError:
            return ConfigError(f"setting '{name}' = {value!r}: {must}")

        for name in ("budget", "batch_size", "max_new_tokens", "gen_batch_size", "workers", "vllm_max_model_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, v, "must be an integer >= 1")
        for name, allowed in (("sampler", SAMPLERS), ("sandbox", SANDBOXES), ("device", DEVICES),
                              ("keep_adapters", KEEP_ADAPTERS)):
            if getattr(self, name) not in allowed:
                raise bad(name, getattr(self, name), f"must be one of {', '.join(allowed)}")
        if self.temperature is not None and not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise bad("temperature", self.temperature, "must be > 0 (SDPO samples; greedy decoding would repeat one attempt)")
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise bad("top_p", self.top_p, "must be in (0, 1]")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise bad("top_k", self.top_k, "must be an integer >= 0 (0 = off)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise bad("seed", self.seed, "must be an integer")
        if not self.vllm_kv_cache_gib > 0 or not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise bad("vllm_kv_cache_gib / vllm_gpu_memory_utilization", (self.vllm_kv_cache_gib,
                      self.vllm_gpu_memory_utilization), "must be > 0 and in (0, 1]")
        self.sdpo.validate()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sdpo"] = self.sdpo.to_json()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> SolveConfig:
        """From a TOML/JSON mapping; unknown keys are errors (a typo must not be silently ignored)."""
        d = dict(d)
        sdpo = d.pop("sdpo", {}) or {}
        names = {f.name for f in fields(cls)} - {"sdpo"}
        sdpo_names = {f.name for f in fields(SDPOConfig)}
        unknown = [k for k in d if k not in names] + [f"sdpo.{k}" for k in sdpo if k not in sdpo_names]
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}, "
                              f"and under [sdpo]: {', '.join(sorted(sdpo_names))}")
        try:
            cfg = cls(**d, sdpo=SDPOConfig(**sdpo))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
        return cfg


# Learner settings added after runs were first written, with the value that older runs used.
SETTINGS_ADDED_LATER: dict[str, Any] = {"restate_format": False}


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file: {e}") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """'sdpo.lr=3e-5' -> ('sdpo.lr', 3e-5): the value is read as TOML (numbers, booleans, strings), or
    taken as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set sdpo.lr=3e-5")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    if raw.strip().lower() in ("none", "null"):
        value = None
    return key, value


def merge_settings(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """`updates` (dotted keys allowed: 'sdpo.lr') over `base` (a nested mapping)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in updates.items():
        if key.startswith("sdpo."):
            out.setdefault("sdpo", {})[key[5:]] = value
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Attempt:
    """One line of attempts.jsonl: enough to recompute every figure of the run."""

    index: int  # 0-based, over the whole run, in sampling order
    step: int
    adapter_version: int  # = step: the adapter it was sampled from
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

    @property
    def passed(self) -> bool:
        return self.status == AttemptStatus.PASSED.value


@dataclass
class StepRecord:
    """One line of steps.jsonl: a finished step (sampling, grading and, unless solved, the update)."""

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
    wall_s: float = 0.0  # the run's wall time when this step committed, over all sessions (0: older runs)


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Events for the live view (report.py): (kind, payload). Kinds: start, sampled, attempt, step, done.
EventSink = Callable[[str, dict[str, Any]], None]


def _silent(kind: str, payload: dict[str, Any]) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# The run directory


def _fsync_dir(path: Path) -> None:
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
    _fsync_dir(path.parent)


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


class RunDir:
    """Paths and readers of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.problem = self.path / "problem.json"
        self.attempts = self.path / "attempts.jsonl"
        self.steps = self.path / "steps.jsonl"
        self.state = self.path / "state.pt"
        self.summary = self.path / "summary.json"
        self.solution = self.path / "solution.py"
        self.plot = self.path / "discovery.svg"
        self.batches = self.path / "batches"
        self.adapters = self.path / "adapters"

    def batch(self, step: int) -> Path:
        return self.batches / f"s{step:05d}.jsonl"

    def adapter(self, version: int) -> Path:
        return self.adapters / f"v{version:05d}"

    def is_run(self) -> bool:
        return self.config.is_file() and self.problem.is_file()

    def settings(self) -> dict[str, Any]:
        """The run's settings as config.json holds them, completed with SETTINGS_ADDED_LATER: a run written
        before a setting existed ran with that setting's behaviour of then, not with today's default."""
        d = json.loads(self.config.read_text())["config"]
        d["sdpo"] = {**SETTINGS_ADDED_LATER, **(d.get("sdpo") or {})}
        return d

    def load_config(self) -> SolveConfig:
        return SolveConfig.from_dict(self.settings(), where=str(self.config))

    def load_problem(self) -> Problem:
        return problem_from_dict(json.loads(self.problem.read_text()), str(self.problem))

    def load_attempts(self) -> list[Attempt]:
        return [Attempt(**r) for r in read_jsonl(self.attempts)]


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


# ---------------------------------------------------------------------------------------------
# Judging: responses -> results and feedback


class Judge(Protocol):
    """Grades attempts. The loop only needs this; the sandbox judge is the real one."""

    name: str

    def grade(self, problem: Problem, response: str, truncated: bool) -> AttemptResult: ...

    def feedback(self, problem: Problem, result: AttemptResult) -> str | None: ...

    def close(self) -> None: ...


class SandboxJudge:
    """Run the last ```python block in an executor (docker or local) and render the judge's feedback."""

    def __init__(self, executor: Any, retries: int = 2) -> None:
        self.executor, self.retries, self.name = executor, retries, executor.name

    def grade(self, problem: Problem, response: str, truncated: bool) -> AttemptResult:
        from .sandbox import grade_response

        for _ in range(self.retries + 1):  # a sandbox error is the infrastructure's, never the attempt's: retry
            result = grade_response(problem, response, self.executor, truncated=truncated)
            if result.status is not AttemptStatus.SANDBOX_ERROR:
                return result
        return result

    def feedback(self, problem: Problem, result: AttemptResult) -> str | None:
        return render_feedback(problem, result)

    def close(self) -> None:
        self.executor.close()


class SandboxFailed(RuntimeError):
    """An attempt could not be graded after retries: the run stops (resumable) instead of blaming attempts."""


# ---------------------------------------------------------------------------------------------
# The loop


def sampling_seed(seed: int, step: int) -> int:
    """A distinct, reproducible seed per step (the same after a resume)."""
    return (seed * 1_000_003 + step * 7919) % (2**31 - 1)


class Solver:
    """One run: owns the model, the adapter, the learner, the sampler and the judge.

    `model`/`tokenizer` may be given (tests, benchmarks); otherwise `config.model` is resolved and loaded.
    """

    def __init__(self, config: SolveConfig, run_dir: Path, *, problem: Problem | None = None,
                 resume: bool = False, judge: Judge | None = None, on_event: EventSink = _silent,
                 model: Any = None, tokenizer: Any = None, progress: Callable[[str], None] | None = None) -> None:
        self.cfg, self.rd, self.on_event = config, RunDir(run_dir), on_event
        self.progress = progress or (lambda m: None)
        config.validate()
        self._prepare_dir(problem, resume)
        self.problem = self.rd.load_problem()
        self.judge = judge
        self._model_arg, self._tok_arg = model, tokenizer
        self.sampler: Any = None
        self.learner: Any = None

    # -- the run directory ---------------------------------------------------------------------

    def _prepare_dir(self, problem: Problem | None, resume: bool) -> None:
        rd = self.rd
        if resume:
            if not rd.is_run():
                raise RunDirError(f"{rd.path}: not a run directory (no config.json/problem.json); "
                                  "start a new run with `sdpo-discover solve PROBLEM --out DIR`")
            if problem is not None and problem.to_json() != rd.load_problem().to_json():
                raise RunDirError(f"{rd.path}: this run is for problem '{rd.load_problem().id}', not the given "
                                  f"'{problem.id}'; resume without PROBLEM, or start a new run with another --out")
            return
        if problem is None:
            raise RunDirError("no problem given")
        if rd.path.exists() and any(rd.path.iterdir()):
            hint = "pass --resume to continue it" if rd.is_run() else "choose an empty or new folder"
            raise RunDirError(f"{rd.path}: exists and is not empty; {hint}, or choose another --out")
        rd.path.mkdir(parents=True, exist_ok=True)
        write_atomic(rd.problem, json.dumps(problem.to_json(), indent=2))
        rd.batches.mkdir(exist_ok=True)
        rd.adapters.mkdir(exist_ok=True)
        self._write_config(model_info={})

    def _write_config(self, model_info: dict[str, Any]) -> None:
        write_atomic(self.rd.config, json.dumps({
            "config": self.cfg.to_json(), "versions": versions(), "model": model_info,
            "argv": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=2))

    # -- set-up --------------------------------------------------------------------------------

    def _load(self) -> None:
        import torch

        from .models import chat_prompt_ids, folder_fingerprint, load_model, resolve_model
        from .samplers import HFSampler, stop_token_ids
        from .sdpo import SDPOLearner, attach_lora

        cfg = self.cfg
        if self._model_arg is None:
            self.progress(f"resolving model {cfg.model}")
            resolved = resolve_model(cfg.model, progress=self.progress)
            self.progress(f"loading {resolved.path}")
            model, tok = load_model(resolved, device=cfg.device, dtype=cfg.dtype)
            info = {"spec": cfg.model, "kind": resolved.kind, "path": resolved.path,
                    "fingerprint": resolved.fingerprint, "gguf_sha256": resolved.gguf_sha256}
            preset = resolved.preset
            self.model_path = resolved.path
        else:
            model, tok = self._model_arg, self._tok_arg
            info = {"spec": cfg.model, "kind": "in-process", "path": cfg.model,
                    "fingerprint": folder_fingerprint(Path(cfg.model)) if Path(cfg.model, "config.json").is_file() else None}
            preset = None
            self.model_path = cfg.model
        # Sampling defaults: the preset's measured ones for small models, else the paper's (1.0, 1.0).
        self.temperature = cfg.temperature if cfg.temperature is not None else (preset.temperature if preset else 1.0)
        self.top_p = cfg.top_p if cfg.top_p is not None else (preset.top_p if preset else 1.0)
        cfg.sdpo.temperature = float(self.temperature)  # the learner scores at the sampling temperature
        info["temperature"], info["top_p"] = self.temperature, self.top_p
        if self._read_config_model() != info:
            self._write_config(info)
        self.tokenizer = tok
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else stop_token_ids(tok, model)[0]
        with torch.random.fork_rng():  # the fresh adapter's init is part of the run's seed
            torch.manual_seed(cfg.seed)
            self.model = attach_lora(model, cfg.sdpo)
        self.learner = SDPOLearner(self.model, cfg.sdpo, pad_id=self.pad_id)
        question = question_prompt(self.problem)
        self.question = question
        self.prompt_ids = chat_prompt_ids(tok, question, SYSTEM_MESSAGE)
        self._teacher_ids: dict[str, list[int]] = {}
        if cfg.sampler == "hf":
            self.sampler = HFSampler(self.model, tok, batch_size=cfg.gen_batch_size)
        else:
            from .samplers import VLLMSampler

            self.progress("starting the vLLM engine")
            self.sampler = VLLMSampler(
                self.model_path, max_model_len=cfg.vllm_max_model_len, max_lora_rank=max(8, cfg.sdpo.lora_r),
                gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, kv_cache_gib=cfg.vllm_kv_cache_gib,
                device=cfg.device, dtype=cfg.dtype, seed=cfg.seed)

    def _read_config_model(self) -> dict[str, Any]:
        try:
            return json.loads(self.rd.config.read_text()).get("model", {})
        except (OSError, ValueError):
            return {}

    def _make_judge(self) -> Judge:
        from .sandbox import make_executor

        # A warm container per attempt of a batch: the pool refills in the background while the model generates.
        pool = min(self.cfg.batch_size, 16) if self.cfg.sandbox in ("docker", "auto") else 1
        ex = make_executor(self.cfg.sandbox, pool_size=pool,  # type: ignore[arg-type]
                           warn=lambda m: self.on_event("warning", {"message": m}))
        return SandboxJudge(ex)

    # -- state ---------------------------------------------------------------------------------

    def _save_adapter(self, version: int) -> None:
        import torch
        from safetensors.torch import save_file

        folder = self.rd.adapter(version)
        if folder.is_dir() and (folder / "adapter_model.safetensors").is_file():
            return
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(str(tmp))
        # the EMA teacher's weights beside the student's, for `explain` and for anyone reproducing a step
        shadow = self.learner.teacher.shadow
        if shadow:
            save_file({k: v.detach().to(torch.float32).contiguous() for k, v in shadow.items()},
                      str(tmp / "teacher.safetensors"))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, folder)
        _fsync_dir(folder.parent)
        if self.cfg.keep_adapters == "last":
            for old in self.rd.adapters.glob("v*"):
                if old != folder and old.name < folder.name:
                    shutil.rmtree(old, ignore_errors=True)

    def _save_state(self, steps: int) -> None:
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"steps": steps, "adapter_version": self.version, "learner": self.learner.state_dict(),
                    "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}, buf)
        write_atomic(self.rd.state, buf.getvalue())

    def _restore(self) -> int:
        """Load the last committed state: the adapter, optimizer, teacher and RNG. Returns the steps committed."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        self.version = 0
        if not self.rd.state.exists():
            return 0
        st = torch.load(self.rd.state, map_location="cpu", weights_only=False)
        self.version = int(st["adapter_version"])
        weights = load_file(str(self.rd.adapter(self.version) / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model, weights)
        self.learner.load_state_dict(st["learner"])
        torch.set_rng_state(st["rng"]["torch"])
        random.setstate(st["rng"]["python"])
        return int(st["steps"])

    # -- the loop ------------------------------------------------------------------------------

    def _teacher_prompt(self, feedback: str | None) -> list[int] | None:
        from .models import chat_prompt_ids

        # no sibling has passed: we stop first
        text = teacher_message(self.question, feedback, None, self.cfg.sdpo.restate_format)
        if text is None:
            return None
        if text not in self._teacher_ids:
            self._teacher_ids[text] = chat_prompt_ids(self.tokenizer, text, SYSTEM_MESSAGE)
        return self._teacher_ids[text]

    def _sample(self, step: int, n: int) -> tuple[list[dict[str, Any]], float]:
        """The batch of step `step`: from its file when a killed run had sampled it, else sampled now."""
        path = self.rd.batch(step)
        rows = read_jsonl(path)
        if rows and rows[0].get("step") == step and len(rows) == rows[0]["n"] + 1:  # written atomically: whole
            return rows[1 : n + 1], float(rows[0]["generate_s"])
        from .samplers import SamplingParams

        params = SamplingParams(max_new_tokens=self.cfg.max_new_tokens, temperature=float(self.temperature),
                                top_p=float(self.top_p), top_k=self.cfg.top_k)
        if self.cfg.sampler == "vllm":  # a new LoRA request per adapter version; the engine keeps running
            self.sampler.load_adapter(self.rd.adapter(self.version) if self.version else None, self.version)
        t0 = time.monotonic()
        comps = self.sampler.generate(self.prompt_ids, n, params, seed=sampling_seed(self.cfg.seed, step))
        gen_s = time.monotonic() - t0
        batch = [{"text": c.text, "token_ids": list(c.token_ids), "truncated": bool(c.truncated)} for c in comps]
        rewrite_jsonl(path, [{"step": step, "n": n, "generate_s": gen_s}, *batch])
        return batch, gen_s

    def _grade(self, step: int, first_index: int, batch: list[dict[str, Any]], gen_s: float,
               done: dict[int, Attempt], log: JsonlAppender) -> list[Attempt]:
        """Grade the batch's attempts not graded yet (in parallel); each is recorded as soon as it is graded."""
        todo = [j for j in range(len(batch)) if first_index + j not in done]

        def one(j: int) -> Attempt:
            c = batch[j]
            t0 = time.monotonic()
            res = self.judge.grade(self.problem, c["text"], c["truncated"])
            if res.status is AttemptStatus.SANDBOX_ERROR:
                raise SandboxFailed(f"attempt {first_index + j + 1} could not be graded: {res.error}")
            fb = self.judge.feedback(self.problem, res)
            return Attempt(
                index=first_index + j, step=step, adapter_version=self.version, response=c["text"], token_ids=c["token_ids"],
                truncated=c["truncated"], status=res.status.value, code=res.code,
                tests=[t.to_json() for t in res.tests], error=res.error, feedback=fb,
                fraction_passed=res.fraction_passed, n_tokens=len(c["token_ids"]),
                execute_s=time.monotonic() - t0, generate_s=gen_s / max(len(batch), 1),
            )

        with ThreadPoolExecutor(max_workers=max(1, min(self.cfg.workers, len(todo) or 1))) as pool:
            for a in pool.map(one, todo):  # in index order: lines land in order
                log.write(asdict(a))
                done[a.index] = a
                self.on_event("attempt", {"attempt": a})
        return [done[first_index + j] for j in range(len(batch))]

    def _update(self, attempts: list[Attempt]) -> Any:
        from .sdpo import Rollout

        rollouts = [Rollout(self.prompt_ids, a.token_ids, self._teacher_prompt(a.feedback),
                            reward=1.0 if a.passed else 0.0) for a in attempts]
        return self.learner.step(rollouts)  # on-policy: one optimizer step per batch, importance weight 1

    def run(self) -> Summary:
        t_start = time.monotonic()
        rd, cfg = self.rd, self.cfg
        prior = json.loads(rd.summary.read_text()) if rd.summary.exists() else None
        if prior and prior.get("solved"):
            s = Summary(**prior)
            self.on_event("done", {"summary": s, "already": True})
            return s
        self._load()
        version = self._restore()  # steps committed
        for folder in rd.adapters.glob("v*"):  # written by an update whose step did not commit: redo it
            if not folder.name.startswith("v") or not folder.name[1:].isdigit() or int(folder.name[1:]) > self.version:
                shutil.rmtree(folder, ignore_errors=True)
        if not rd.adapter(0).exists():
            self._save_adapter(0)
        # What committed: attempts of steps < version; of step == version, what was graded before the kill.
        kept = [r for r in read_jsonl(rd.attempts) if r["step"] <= version]
        rewrite_jsonl(rd.attempts, kept)
        steps_done = [r for r in read_jsonl(rd.steps) if r["step"] < version]
        rewrite_jsonl(rd.steps, steps_done)
        done = {r["index"]: Attempt(**r) for r in kept}
        times = {k: sum(r[f"{k}_s"] for r in steps_done) for k in ("generate", "execute", "update")}
        # Time spent before a kill -9 is known up to the last commit (a step's record carries the run's wall
        # time); a Ctrl-C or a finished run also left a summary. The larger of the two is what came before.
        wall_before = max(float(prior["wall_s"]) if prior else 0.0,
                          float(steps_done[-1].get("wall_s", 0.0)) if steps_done else 0.0)
        used = sum(1 for a in done.values() if a.step < version)
        if cfg.budget < len(done):
            raise ConfigError(f"setting 'budget' = {cfg.budget}: this run has graded {len(done)} attempts already")
        self.on_event("start", {"config": cfg, "problem": self.problem, "run_dir": rd.path, "resumed_at": version,
                                "attempts": [done[i] for i in sorted(done)], "steps": steps_done,
                                "temperature": self.temperature, "top_p": self.top_p})
        if self.judge is None:
            self.judge = self._make_judge()
        log = JsonlAppender(rd.attempts)
        steplog = JsonlAppender(rd.steps)
        step, solved_by, stopped = version, None, "budget"
        try:
            while used < cfg.budget:
                n = min(cfg.batch_size, cfg.budget - used)
                batch, gen_s = self._sample(step, n)
                self.on_event("sampled", {"step": step, "n": n, "generate_s": gen_s})
                t0 = time.monotonic()
                attempts = self._grade(step, used, batch, gen_s, done, log)
                exec_s = time.monotonic() - t0
                used += n
                winners = [a for a in attempts if a.passed]
                stats, upd_s = None, 0.0
                if winners:
                    solved_by, stopped = winners[0], "solved"
                elif cfg.learn and used < cfg.budget:
                    t0 = time.monotonic()
                    stats = self._update(attempts)
                    self.version += 1
                    self._save_adapter(self.version)
                    upd_s = time.monotonic() - t0
                counts: dict[str, int] = {}
                for a in attempts:
                    counts[a.status] = counts.get(a.status, 0) + 1
                rec = StepRecord(
                    step=step, attempts=n, passed=len(winners), verdicts=counts,
                    best_fraction=max(a.fraction_passed for a in attempts), loss=stats.loss if stats else None,
                    kl=stats.kl if stats else None, grad_norm=stats.grad_norm if stats else None,
                    rollouts=stats.rollouts if stats else 0, tokens=stats.tokens if stats else 0,
                    generate_s=gen_s, execute_s=exec_s, update_s=upd_s,
                    wall_s=wall_before + time.monotonic() - t_start)
                steplog.write(asdict(rec))
                if stats is not None or (not cfg.learn and not winners):
                    self._save_state(step + 1)  # the commit point of this step
                times["generate"] += gen_s
                times["execute"] += exec_s
                times["update"] += upd_s
                self.on_event("step", {"record": rec, "used": used, "budget": cfg.budget})
                step += 1
                if solved_by:
                    break
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            log.close()
            steplog.close()
            if self.judge is not None:
                self.judge.close()
            if self.sampler is not None:
                self.sampler.close()
        if solved_by is not None:
            write_atomic(rd.solution, solved_by.code or "")
        wall = wall_before + time.monotonic() - t_start
        summary = Summary(
            problem=self.problem.id, solved=solved_by is not None,
            first_success_index=solved_by.index + 1 if solved_by else None,
            attempts_used=len(read_jsonl(rd.attempts)) if stopped == "interrupted" else used, budget=cfg.budget,
            steps=step, wall_s=wall, generate_s=times["generate"], execute_s=times["execute"],
            update_s=times["update"], other_s=max(0.0, wall - sum(times.values())), run_dir=str(rd.path),
            solution=str(rd.solution) if solved_by else None, stopped=stopped,
            sandbox=getattr(self.judge, "name", ""))
        write_atomic(rd.summary, json.dumps(summary.to_json(), indent=2))
        self.on_event("done", {"summary": summary, "already": False})
        return summary
