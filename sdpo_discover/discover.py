"""The test-time discovery loop, one for every method: prompts -> sample -> grade -> feedback -> update -> commit.

Hübotter et al., "Reinforcement Learning via Self-Distillation" (arXiv 2601.20802), section 5;
docs/reference/SDPO.md sections 1-5. One question; G attempts per step; what the method does between
steps (an SDPO update, nothing, or the next turn of each conversation) sits behind methods.Method:

    step s:  method.prompts --sample G--> batch --grade--> verdicts + feedback --method.update--> commit s+1

The run directory (store.py) is the only state: a run killed at any moment (kill -9 included) resumes
exactly, whatever its method. store.py's docstring lists the files and the commit order.

Imports only the standard library at module level; torch and the models are imported by `Solver`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .config import ConfigError, SolveConfig, is_fallback, resolve_sampler
from .feedback import render_feedback
from .problems import Problem
from .sandbox.verdicts import AttemptResult, AttemptStatus
from .store import (Attempt, JsonlAppender, RunDir, RunDirError, StepRecord, Summary, read_jsonl, rewrite_jsonl,
                    write_atomic)

__all__ = ["ConfigError", "RunDirError", "SandboxFailed", "SandboxJudge", "Solver", "sampling_seed"]

# Events for the live view (report.py): (kind, payload). Kinds: start, sampled, attempt, step, done, warning.
EventSink = Callable[[str, dict[str, Any]], None]


def _silent(kind: str, payload: dict[str, Any]) -> None:
    pass


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


@dataclass
class LoadedModel:
    """A loaded model with what config.json records of it. One serves many runs (`bench`): an SDPO run wraps
    it with a fresh LoRA adapter and takes the adapter off again when it ends (methods.SDPOMethod.close)."""

    model: Any
    tokenizer: Any
    info: dict[str, Any]  # spec, kind, path, fingerprint, gguf_sha256
    path: str
    preset: Any = None  # models.Preset: its measured sampling defaults

    @classmethod
    def in_process(cls, spec: str, model: Any, tokenizer: Any) -> LoadedModel:
        from .models import folder_fingerprint

        fp = folder_fingerprint(Path(spec)) if Path(spec, "config.json").is_file() else None
        return cls(model, tokenizer, {"spec": spec, "kind": "in-process", "path": spec, "fingerprint": fp}, spec)


def load_model_for(cfg: SolveConfig, progress: Callable[[str], None] = lambda m: None,
                   weights: bool | None = None) -> LoadedModel:
    """Resolve and load `cfg.model` on `cfg.device` in `cfg.dtype` (the model every run of these settings uses).
    weights None: loaded unless vLLM samples and nothing trains (cfg.method is not sdpo)."""
    from .models import load_model, resolve_model

    if weights is None:
        weights = cfg.sampler != "vllm" or cfg.method == "sdpo"
    progress(f"resolving model {cfg.model}")
    resolved = resolve_model(cfg.model, progress=progress)
    progress(f"loading {resolved.path}" + ("" if weights else " (tokenizer and config: vLLM samples it)"))
    model, tok = load_model(resolved, device=cfg.device, dtype=cfg.dtype, weights=weights)
    info = {"spec": cfg.model, "kind": resolved.kind, "path": resolved.path, "fingerprint": resolved.fingerprint,
            "gguf_sha256": resolved.gguf_sha256}
    return LoadedModel(model, tok, info, resolved.path, resolved.preset)


def vllm_context(cfg: SolveConfig, model: Any) -> int:
    """The vLLM engine's context: vllm_max_model_len, but never past the model's own (vLLM refuses that)."""
    own = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(cfg.vllm_max_model_len, int(own)) if own else cfg.vllm_max_model_len


def check_fits(cfg: SolveConfig, problem: Problem, prompts: Any, model: Any) -> int | None:
    """The model's context length (the engine's for vllm); a ConfigError when the problem's prompt with
    max_new_tokens does not fit: refused before any sampling (bench: before any run starts)."""
    context_len = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if cfg.sampler == "vllm":
        context_len = min(context_len or cfg.vllm_max_model_len, cfg.vllm_max_model_len)
    if context_len and len(prompts.student_ids) >= context_len:
        raise ConfigError(f"problem '{problem.id}': its prompt alone takes {len(prompts.student_ids)} tokens, the model's "
                          f"context {context_len}" + (" (vllm_max_model_len)" if cfg.sampler == "vllm" else "")
                          + ": use a model with a longer context, or shorten the statement")
    if context_len and len(prompts.student_ids) + cfg.max_new_tokens > context_len:
        raise ConfigError(
            f"problem '{problem.id}': its prompt takes {len(prompts.student_ids)} tokens and max_new_tokens is "
            f"{cfg.max_new_tokens}, more than the {context_len} tokens of the model's context"
            + (" (vllm_max_model_len)" if cfg.sampler == "vllm" else "") + "; lower max_new_tokens (--set "
            f"max_new_tokens={max(context_len - len(prompts.student_ids), 1)} fits), or use a model with a longer context")
    return context_len


def sampling_seed(seed: int, step: int) -> int:
    """A distinct, reproducible seed per step (the same after a resume)."""
    return (seed * 1_000_003 + step * 7919) % (2**31 - 1)


class Solver:
    """One run: owns the model, the sampler, the judge and the method (methods.py).

    `model`/`tokenizer` may be given (tests, benchmarks), or a `loaded` model (bench: one load serves every
    run); otherwise `config.model` is resolved and loaded. A `judge` or `sampler` given is shared: the run
    uses it and leaves it open; the ones it makes itself it closes.
    """

    def __init__(self, config: SolveConfig, run_dir: Path, *, problem: Problem | None = None,
                 resume: bool = False, judge: Judge | None = None, on_event: EventSink = _silent,
                 model: Any = None, tokenizer: Any = None, progress: Callable[[str], None] | None = None,
                 loaded: LoadedModel | None = None, sampler: Any = None) -> None:
        self.cfg, self.rd, self.on_event = config, RunDir(run_dir), on_event
        self.progress = progress or (lambda m: None)
        config.validate()
        if resume:
            self.rd.check_resumable(problem)
            if config.sampler == "auto":  # the sampler the run chose when it started, not a new choice
                config.sampler = self.rd.settings().get("sampler", "hf")
        elif problem is None:
            raise RunDirError("no problem given")
        else:
            if config.sampler == "auto" and model is not None:
                config.sampler = "hf"  # a model object given: sampled where it is
            choice = resolve_sampler(config)  # `auto` made concrete: config.json records which, and why
            if choice:  # a fallback (auto found no vLLM for this device) is said even under --quiet
                on_event("notice", {"message": choice, "fallback": is_fallback(choice)})
            self.rd.create(problem, config, sampler_choice=choice or "")
        self.problem = self.rd.load_problem()
        self.judge, self._own_judge = judge, judge is None
        self._model_arg, self._tok_arg, self._loaded = model, tokenizer, loaded
        self.sampler: Any = sampler
        self._own_sampler = sampler is None
        self.method: Any = None
        self._pool: ThreadPoolExecutor | None = None  # grading during sampling (overlap_grading)

    # -- set-up --------------------------------------------------------------------------------

    def _load(self) -> None:
        from .methods import make_method
        from .prompts import Prompts
        from .samplers import HFSampler, stop_token_ids

        cfg = self.cfg
        if self._loaded is None:
            if self._model_arg is None:
                self._loaded = load_model_for(cfg, self.progress)
            else:
                self._loaded = LoadedModel.in_process(cfg.model, self._model_arg, self._tok_arg)
        lm = self._loaded
        model, tok, preset, info = lm.model, lm.tokenizer, lm.preset, dict(lm.info)
        self.model_path = lm.path
        # Sampling defaults: the preset's measured ones for small models, else the paper's (1.0, 1.0).
        self.temperature = cfg.temperature if cfg.temperature is not None else (preset.temperature if preset else 1.0)
        self.top_p = cfg.top_p if cfg.top_p is not None else (preset.top_p if preset else 1.0)
        cfg.sdpo.temperature = float(self.temperature)  # the learner scores at the sampling temperature
        info["temperature"], info["top_p"] = self.temperature, self.top_p
        if self.rd.config_doc().get("model", {}) != info:
            self.rd.write_config(cfg, info)
        self.tokenizer = tok
        prompts = Prompts(tok, self.problem, thinking=cfg.thinking, restate_format=cfg.sdpo.restate_format)
        context_len = check_fits(cfg, self.problem, prompts, model)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else stop_token_ids(tok, model)[0]
        self.method = make_method(cfg, prompts, self.rd, model=model, pad_id=pad_id, context_len=context_len)
        self.model = getattr(self.method, "model", model)  # sdpo: the model with its LoRA adapter
        if self.sampler is not None:
            pass  # shared (bench): a vLLM engine serving several runs, each its own LoRA requests
        elif cfg.sampler == "hf":
            self.sampler = HFSampler(self.model, tok, batch_size=cfg.gen_batch_size)
        elif cfg.sampler != "vllm":
            raise ConfigError(f"sampler {cfg.sampler!r} was not resolved to hf or vllm")  # a bug, never user input
        else:
            from .samplers import VLLMSampler

            self.progress("starting the vLLM engine")
            self.sampler = VLLMSampler(
                self.model_path, max_model_len=vllm_context(cfg, model), max_lora_rank=max(8, cfg.sdpo.lora_r),
                gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, kv_cache_gib=cfg.vllm_kv_cache_gib,
                device=cfg.device, dtype=cfg.dtype, seed=cfg.seed)

    def _make_judge(self) -> Judge:
        from .sandbox import make_executor

        # A warm container per attempt of a batch: the pool refills in the background while the model generates.
        pool = min(self.cfg.step_size, 16) if self.cfg.sandbox in ("docker", "auto") else 1
        ex = make_executor(self.cfg.sandbox, pool_size=pool,  # type: ignore[arg-type]
                           warn=lambda m: self.on_event("warning", {"message": m}))
        return SandboxJudge(ex)

    # -- one step's parts ----------------------------------------------------------------------

    def _overlaps(self) -> bool:
        """Grading starts while the batch is sampled: for the methods whose update does not wait on the grades of
        the whole batch to be useful (best-of-k and multi-turn learn nothing; sdpo's update needs them all)."""
        return self.cfg.overlap_grading and self.cfg.method != "sdpo"

    def _judge(self, text: str, truncated: bool) -> tuple[Any, float]:
        t0 = time.monotonic()
        res = self.judge.grade(self.problem, text, truncated)
        return res, time.monotonic() - t0

    def _sample(self, step: int, turns: list[Any], early: dict[int, Any] | None = None
                ) -> tuple[list[dict[str, Any]], float]:
        """The batch of step `step`: from its file when a killed run had sampled it, else sampled now. `early`:
        grades started while sampling (overlap_grading), by index in the batch: futures of (result, seconds)."""
        path, n = self.rd.batch(step), len(turns)
        rows = read_jsonl(path)
        if rows and rows[0].get("step") == step and len(rows) == rows[0]["n"] + 1:  # written atomically: whole
            return rows[1 : n + 1], float(rows[0]["generate_s"])
        from .samplers import SamplingParams

        params = SamplingParams(max_new_tokens=self.cfg.max_new_tokens, temperature=float(self.temperature),
                                top_p=float(self.top_p), top_k=self.cfg.top_k, stop_at_answer=self.cfg.stop_at_answer,
                                stop_at_loop=self.cfg.stop_at_loop)
        run: dict[str, str] = {}
        if self.cfg.sampler == "vllm":  # a new LoRA request per adapter version; the engine keeps running
            # keyed by the run directory's full path: runs sharing an engine each number their versions from 0
            run = {"run": str(self.rd.path.resolve())}
            self.sampler.load_adapter(self.method.adapter(), self.method.version, **run)
        kw: dict[str, Any] = dict(run)
        if early is not None and self._overlaps():
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=max(1, self.cfg.workers), thread_name_prefix="grade")
            pool = self._pool

            def on_done(j: int, c: Any) -> None:  # from the sampler's thread: only hand the grading on
                early[j] = pool.submit(self._judge, c.text, bool(c.truncated))

            kw["on_done"] = on_done
        t0 = time.monotonic()
        comps = self.sampler.generate([t.ids for t in turns], params, seed=sampling_seed(self.cfg.seed, step), **kw)
        gen_s = time.monotonic() - t0
        batch = [{"text": c.text, "token_ids": list(c.token_ids), "truncated": bool(c.truncated)} for c in comps]
        rewrite_jsonl(path, [{"step": step, "n": n, "generate_s": gen_s}, *batch])
        return batch, gen_s

    def _grade(self, step: int, first_index: int, batch: list[dict[str, Any]], turns: list[Any], gen_s: float,
               done: dict[int, Attempt], log: JsonlAppender, early: dict[int, Any] | None = None) -> list[Attempt]:
        """Grade the batch's attempts not graded yet (in parallel; those started during sampling, `early`, are
        waited for); each is recorded as soon as it is graded, in index order."""
        early = early or {}
        todo = [j for j in range(len(batch)) if first_index + j not in done]
        version = self.method.version if self.cfg.method == "sdpo" else None

        def one(j: int) -> Attempt:
            c, t = batch[j], turns[j]
            res, exec_s = early[j].result() if j in early else self._judge(c["text"], c["truncated"])
            if res.status is AttemptStatus.SANDBOX_ERROR:
                raise SandboxFailed(f"attempt {first_index + j + 1} could not be graded: {res.error}")
            return Attempt(
                index=first_index + j, step=step, adapter_version=version, response=c["text"],
                token_ids=c["token_ids"], truncated=c["truncated"], status=res.status.value, code=res.code,
                tests=[t.to_json() for t in res.tests], error=res.error, feedback=self.judge.feedback(self.problem, res),
                fraction_passed=res.fraction_passed, n_tokens=len(c["token_ids"]), execute_s=exec_s,
                generate_s=gen_s / max(len(batch), 1), method=self.cfg.method, chain=t.chain, turn=t.turn,
                dropped=t.dropped, prompt_tokens=len(t.ids))

        with ThreadPoolExecutor(max_workers=max(1, min(self.cfg.workers, len(todo) or 1))) as pool:
            for a in pool.map(one, todo):  # in index order: lines land in order
                log.write(asdict(a))
                done[a.index] = a
                self.on_event("attempt", {"attempt": a})
        return [done[first_index + j] for j in range(len(batch))]

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> Summary:
        t_start = time.monotonic()
        rd, cfg = self.rd, self.cfg
        prior = rd.load_summary()
        if prior and ((prior.solved and cfg.stop_on_success)
                      or (prior.stopped == "budget" and prior.attempts_used == cfg.budget)):
            self.on_event("done", {"summary": prior, "already": True})
            return prior
        self._load()
        state = rd.reconcile()  # what committed; the rest is dropped (store.py)
        self.method.restore(state.adapter_version)
        done, used, step = state.attempts, state.used, state.steps
        times = {k: sum(r[f"{k}_s"] for r in state.step_records) for k in ("generate", "execute", "update")}
        if cfg.budget < len(done):
            raise ConfigError(f"setting 'budget' = {cfg.budget}: this run has graded {len(done)} attempts already")
        self.on_event("start", {"config": cfg, "problem": self.problem, "run_dir": rd.path, "resumed_at": step,
                                "attempts": [done[i] for i in sorted(done)], "steps": state.step_records,
                                "temperature": self.temperature, "top_p": self.top_p})
        if self.judge is None:
            self.judge = self._make_judge()
        log, steplog = JsonlAppender(rd.attempts), JsonlAppender(rd.steps)
        # the first passing attempt so far (a run that does not stop at it, a best-of-k pool, may have one already)
        solved_by, stopped = next((done[i] for i in sorted(done) if done[i].passed), None), "budget"
        try:
            while used < cfg.budget:
                n = min(cfg.step_size, cfg.budget - used)
                turns = self.method.prompts(step, n, [done[i] for i in sorted(done)])
                early: dict[int, Any] = {}  # grades started while the batch was sampled (overlap_grading)
                batch, gen_s = self._sample(step, turns, early)
                self.on_event("sampled", {"step": step, "n": n, "generate_s": gen_s})
                t0 = time.monotonic()
                attempts = self._grade(step, used, batch, turns, gen_s, done, log, early)
                exec_s, used = time.monotonic() - t0, used + n
                winners = [a for a in attempts if a.passed]
                solved_by = solved_by or (winners[0] if winners else None)
                # a step that ends the run takes no update, and does not commit
                ends_run = (bool(winners) and cfg.stop_on_success) or used >= cfg.budget
                stats, upd_s = None, 0.0
                if not ends_run:
                    t0 = time.monotonic()
                    if cfg.sampler == "vllm" and cfg.method == "sdpo":  # its GPU memory to the update; generate wakes it
                        self.sampler.sleep()  # a no-op where vLLM has no sleep mode (a CPU build)
                    stats = self.method.update(attempts)
                    upd_s = time.monotonic() - t0 if stats is not None else 0.0  # the baselines learn nothing
                counts: dict[str, int] = {}
                for a in attempts:
                    counts[a.status] = counts.get(a.status, 0) + 1
                rec = StepRecord(
                    step=step, attempts=n, passed=len(winners), verdicts=counts,
                    best_fraction=max(a.fraction_passed for a in attempts), loss=getattr(stats, "loss", None),
                    kl=getattr(stats, "kl", None), grad_norm=getattr(stats, "grad_norm", None),
                    rollouts=getattr(stats, "rollouts", 0), tokens=getattr(stats, "tokens", 0),
                    generate_s=gen_s, execute_s=exec_s, update_s=upd_s,
                    wall_s=state.wall_before + time.monotonic() - t_start,
                    prompt_tokens=round(sum(len(t.ids) for t in turns) / len(turns)))
                steplog.write(asdict(rec))
                if not ends_run:
                    rd.commit(step + 1, self.method.version, cfg.keep_adapters)  # the commit point of this step
                for k, v in (("generate", gen_s), ("execute", exec_s), ("update", upd_s)):
                    times[k] += v
                self.on_event("step", {"record": rec, "used": used, "budget": cfg.budget})
                step += 1
                if winners and cfg.stop_on_success:
                    stopped = "solved"
                    break
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            log.close()
            steplog.close()
            if self._pool is not None:  # before the judge closes: no grading left running
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            if self.judge is not None and self._own_judge:
                self.judge.close()
            if self.sampler is not None and self._own_sampler:
                self.sampler.close()
            if self.method is not None:
                self.method.close()  # sdpo: the adapter comes off the model, which may serve the next run
        if solved_by is not None:
            write_atomic(rd.solution, solved_by.code or "")
        wall = state.wall_before + time.monotonic() - t_start
        summary = Summary(
            problem=self.problem.id, solved=solved_by is not None,
            first_success_index=solved_by.index + 1 if solved_by else None,
            attempts_used=len(read_jsonl(rd.attempts)) if stopped == "interrupted" else used, budget=cfg.budget,
            steps=step, wall_s=wall, generate_s=times["generate"], execute_s=times["execute"],
            update_s=times["update"], other_s=max(0.0, wall - sum(times.values())), run_dir=str(rd.path),
            solution=str(rd.solution) if solved_by else None, stopped=stopped,
            sandbox=getattr(self.judge, "name", ""), method=cfg.method)
        write_atomic(rd.summary, json.dumps(summary.to_json(), indent=2))
        self.on_event("done", {"summary": summary, "already": False})
        return summary
