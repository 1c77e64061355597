"""`sdpo-discover bench`: every problem x method x seed as one run directory (the solve format), under one bench
directory; one model load and one sandbox pool serve every run.

    BENCH/plan.json                         written first: problems (with their hashes), methods, seeds, budget,
                                            pool, each run's resolved settings, the command
    BENCH/problems/<id>.json                the problems as planned (a resume needs no source files)
    BENCH/runs/<id>/best-of-k/pool/         best-of-k: one pool of `pool` independent samples per problem
                                            (stop_on_success false; seeds do not apply; SDPO.md section 5)
    BENCH/runs/<id>/<method>/seed-<s>/      sdpo and multi-turn: one run per seed, stopping at the first success
    BENCH/results.json, report.md, discovery.png, discovery.svg   results.py (`sdpo-discover report` rebuilds them)

A run with summary.json (not interrupted) is finished and never redone; an unfinished one resumes exactly as
`solve --resume` does (store.py). `--resume` of a bench whose plan would differ is refused with what differs.
Imports only the standard library at module level; running imports the models.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import METHODS, ConfigError, SolveConfig, complete_saved, load_toml, merge_settings, parse_assignment
from .problems import Problem, ProblemError, load_problem, load_problems, problem_files
from .store import RunDir, write_atomic

PLAN_FORMAT = 1
EventSink = Callable[[str, dict[str, Any]], None]
# Settings a bench sets itself, per run: given in --set or a config file they would be silently replaced.
_BENCH_OWNED = {"method": "--methods", "seed": "--seeds", "budget": "--budget", "stop_on_success": "(per run)",
                "problem": "PROBLEMS"}


class BenchError(ValueError):
    """The bench cannot start or continue (bad input, a plan that differs from the saved one)."""


@dataclass
class PlannedRun:
    id: str  # "<problem>/<method>/seed-<s>", or "<problem>/best-of-k/pool"
    problem: str
    method: str
    seed: int | None  # None: the best-of-k pool
    settings: dict[str, Any]  # SolveConfig.to_json(), resolved

    @property
    def config(self) -> SolveConfig:
        return SolveConfig.from_dict(self.settings, where=f"plan run {self.id}")


@dataclass
class Plan:
    problems: list[dict[str, str]]  # id, source, sha256
    methods: list[str]
    seeds: list[int]
    budget: int
    pool: int
    runs: list[PlannedRun]
    command: list[str]
    format: int = PLAN_FORMAT
    sampler_choice: str = ""  # what `--sampler auto` chose for every run, and why ("" when a sampler was given)

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "command": self.command, "problems": self.problems, "methods": self.methods,
                "seeds": self.seeds, "budget": self.budget, "pool": self.pool, "sampler_choice": self.sampler_choice,
                "runs": [asdict(r) for r in self.runs]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        return cls(problems=d["problems"], methods=d["methods"], seeds=d["seeds"], budget=d["budget"],
                   pool=d["pool"], runs=[PlannedRun(**{**r, "settings": complete_saved(r["settings"])}) for r in d["runs"]],
                   command=d.get("command", []),
                   format=d.get("format", PLAN_FORMAT), sampler_choice=d.get("sampler_choice", ""))


# ---------------------------------------------------------------------------------------------
# Planning


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise BenchError(f"unknown method(s) {', '.join(bad) or '(none given)'}: --methods takes a comma-separated "
                         f"list of {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise BenchError(f"--methods lists a method twice: {text}")
    return methods


def parse_seeds(text: str) -> list[int]:
    """'3' -> seeds 0, 1, 2; '0,5,7' -> those."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return list(range(n))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"--seeds {text!r}: give a count (3: seeds 0, 1, 2) or a comma-separated list (0,5,7)") from None
    if len(set(seeds)) != len(seeds) or not seeds:
        raise BenchError(f"--seeds {text!r}: a seed is listed twice")
    return seeds


def gather_problems(paths: Sequence[Path]) -> list[tuple[Problem, str, bytes]]:
    """Every problem of the given files (a problem.json, a LiveCodeBench .json/.jsonl of one or more records) and
    folders (their *.json and *.jsonl files, not recursive): (problem, source, its canonical JSON). Every
    unreadable or invalid file is named (all of them, not the first only); a problem id seen twice is an error."""
    problems: list[tuple[Problem, str, bytes]] = []
    files, errors = problem_files(paths)
    for f in files:
        try:
            found = load_problems(f) if f.suffix == ".jsonl" else [load_problem(f)]
        except (ProblemError, OSError, ValueError) as e:
            errors.append(str(e) if str(f) in str(e) else f"{f}: {e}")
            continue
        problems += [(p, str(f), json.dumps(p.to_json(), sort_keys=True).encode()) for p in found]
    if errors:
        raise BenchError("cannot read every problem; nothing was started:\n  " + "\n  ".join(errors))
    if not problems:
        raise BenchError("no problems given: pass problem files or folders")
    seen: dict[str, str] = {}
    for p, src, _ in problems:
        if p.id in seen:
            raise BenchError(f"two problems have the id '{p.id}' ({seen[p.id]} and {src}); a bench needs each id once "
                             "(its runs are named after it): rename one")
        seen[p.id] = src
    return problems


def base_settings(flags: dict[str, Any], config_file: Path | None, assignments: Sequence[str] | None) -> dict[str, Any]:
    """The settings every run of the bench shares (defaults < config file < flags < --set), not yet per method."""
    updates = dict(flags)
    for item in assignments or []:
        k, v = parse_assignment(item)
        updates[k] = v
    base = load_toml(config_file) if config_file is not None else {}
    for key, how in _BENCH_OWNED.items():
        if key in updates or key in base:
            if key == "budget" and key not in updates:
                continue  # a config file's budget is the bench's budget unless --budget says otherwise
            raise BenchError(f"setting '{key}' is set by the bench per run: use {how} instead")
    merged = merge_settings(base, updates)
    merged.setdefault("keep_adapters", "last")  # a bench keeps each run's last adapter only, unless asked
    return merged


def run_settings(base: dict[str, Any], method: str, seed: int, budget: int, stop_on_success: bool = True) -> SolveConfig:
    """One run's settings: the bench's, with only the sections that apply to `method` (sdpo.* to sdpo,
    multi_turn.* to multi-turn), validated."""
    d = {k: v for k, v in base.items() if not (k == "sdpo" and method != "sdpo")
         and not (k == "multi_turn" and method != "multi-turn")}
    d.update(method=method, seed=seed, budget=budget, stop_on_success=stop_on_success)
    cfg = SolveConfig.from_dict(d, where="bench settings")
    cfg.validate()
    return cfg


def make_plan(problem_paths: Sequence[Path], methods: Sequence[str], seeds: Sequence[int], budget: int | None,
              pool: int | None, *, flags: dict[str, Any] | None = None, config_file: Path | None = None,
              assignments: Sequence[str] | None = None, command: Sequence[str] = ()) -> tuple[Plan, list[Problem]]:
    """Check everything a bench needs before anything starts: problems, methods, seeds, settings, budget."""
    problems = gather_problems(problem_paths)
    base = base_settings(flags or {}, config_file, assignments)
    choice = ""
    if base.get("sampler", SolveConfig().sampler) == "auto":  # decided once: every run of the bench samples alike
        from .samplers import choose_sampler

        base["sampler"], why = choose_sampler(str(base.get("device", "auto")))
        choice = f"sampler: {base['sampler']} (auto: {why})"
    budget = int(budget if budget is not None else base.pop("budget", SolveConfig().budget))
    base.pop("budget", None)
    pool = int(pool if pool is not None else budget)
    if budget < 1 or pool < 1:
        raise BenchError(f"--budget and --pool must be >= 1 (got {budget}, {pool})")
    runs: list[PlannedRun] = []
    for prob, _, _ in problems:
        for method in methods:
            if method == "best-of-k":
                cfg = run_settings(base, method, seeds[0], pool, stop_on_success=False)
                if pool < cfg.step_size:
                    raise BenchError(f"--pool {pool} is smaller than a batch ({cfg.step_size} attempts): raise --pool "
                                     f"or lower --batch-size")
                runs.append(PlannedRun(f"{prob.id}/best-of-k/pool", prob.id, method, None, cfg.to_json()))
                continue
            for seed in seeds:
                cfg = run_settings(base, method, seed, budget)
                if budget < cfg.step_size:
                    raise BenchError(f"--budget {budget} is smaller than one batch of {method} ({cfg.step_size} "
                                     "attempts): raise --budget or lower --batch-size"
                                     + (" (multi_turn.chains)" if method == "multi-turn" else ""))
                runs.append(PlannedRun(f"{prob.id}/{method}/seed-{seed}", prob.id, method, seed, cfg.to_json()))
    plan = Plan(problems=[{"id": p.id, "source": src, "sha256": hashlib.sha256(b).hexdigest()} for p, src, b in problems],
                methods=list(methods), seeds=list(seeds), budget=budget, pool=pool, runs=runs, command=list(command),
                sampler_choice=choice)
    return plan, [p for p, _, _ in problems]


# ---------------------------------------------------------------------------------------------
# The bench directory


class BenchDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    plan_path = property(lambda self: self.path / "plan.json")
    results = property(lambda self: self.path / "results.json")
    report = property(lambda self: self.path / "report.md")
    log = property(lambda self: self.path / "log.txt")
    timing = property(lambda self: self.path / "timing.json")

    def run_dir(self, run: PlannedRun) -> Path:
        return self.path / "runs" / run.id

    def problem_file(self, problem_id: str) -> Path:
        return self.path / "problems" / f"{problem_id}.json"

    def is_bench(self) -> bool:
        return self.plan_path.is_file()

    def load_plan(self) -> Plan:
        try:
            return Plan.from_json(json.loads(self.plan_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BenchError(f"{self.plan_path}: not a readable bench plan ({e})") from None

    def create(self, plan: Plan, problems: Sequence[Problem]) -> None:
        if self.path.exists() and any(self.path.iterdir()):
            hint = "pass --resume to continue it" if self.is_bench() else "choose an empty or new folder"
            raise BenchError(f"{self.path}: exists and is not empty; {hint}, or choose another --out")
        (self.path / "problems").mkdir(parents=True, exist_ok=True)
        for p in problems:
            write_atomic(self.problem_file(p.id), json.dumps(p.to_json(), indent=2))
        write_atomic(self.plan_path, json.dumps(plan.to_json(), indent=2))  # last: its presence means complete

    def load_problem(self, problem_id: str) -> Problem:
        return load_problem(self.problem_file(problem_id))

    def finished(self, run: PlannedRun) -> bool:
        s = RunDir(self.run_dir(run)).load_summary()
        return s is not None and s.stopped != "interrupted"


# ---------------------------------------------------------------------------------------------
# Running


class RunWorker:
    """Runs planned runs one after another in this process, with what they share: one model load (the first run's
    model: every run of a plan has the same), one sandbox pool, and for the vllm sampler one engine (each run's
    adapter versions are its own LoRA requests). `run_bench` uses one; workers.py runs several (processes on one
    machine, or Ray actors), each with its own.

    model/tokenizer/judge: for tests (an in-process model, a synthetic judge)."""

    def __init__(self, bench_path: Path | str, *, model: Any = None, tokenizer: Any = None, judge: Any = None,
                 progress: Callable[[str], None] = lambda m: None, warn: Callable[[str], None] | None = None,
                 share: int = 1) -> None:
        self.bench = BenchDir(Path(bench_path))
        self.share = share  # runs at once in threads of this process (workers.run_shared): the engine's max_loras
        self._model, self._tok, self.judge, self._own_judge = model, tokenizer, judge, judge is None
        self.progress, self.warn = progress, warn
        self.loaded: Any = None
        self.sampler: Any = None
        self.load_s = 0.0

    def pid(self) -> int:
        import os

        return os.getpid()

    def setup(self, runs: Sequence[PlannedRun]) -> None:
        """Load the model, check that every problem of `runs` fits its context, make the sandbox pool and the
        engine; once (later calls do nothing)."""
        if self.loaded is not None:
            return
        from .discover import LoadedModel, load_model_for

        first = runs[0].config
        t0 = time.monotonic()
        self.loaded = (LoadedModel.in_process(first.model, self._model, self._tok) if self._model is not None
                       else load_model_for(first, self.progress,  # weights when anything trains or hf samples
                                           weights=first.sampler != "vllm" or any(r.method == "sdpo" for r in runs)))
        self.load_s = time.monotonic() - t0
        _preflight(self.bench, runs, self.loaded)
        if self.judge is None:
            from .discover import SandboxJudge
            from .sandbox import make_executor

            pool = min(max(r.config.step_size for r in runs), 16) if first.sandbox in ("docker", "auto") else 1
            self.judge = SandboxJudge(make_executor(first.sandbox, pool_size=pool,  # type: ignore[arg-type]
                                                    warn=self.warn))
        if first.sampler == "vllm":
            from .discover import vllm_context
            from .samplers import VLLMSampler

            self.progress("starting the vLLM engine")
            self.sampler = VLLMSampler(self.loaded.path, max_model_len=vllm_context(first, self.loaded.model),
                                       max_lora_rank=max([8] + [r.config.sdpo.lora_r for r in runs]),
                                       gpu_memory_utilization=first.vllm_gpu_memory_utilization,
                                       kv_cache_gib=first.vllm_kv_cache_gib, device=first.device, dtype=first.dtype,
                                       seed=first.seed, max_loras=self.share)

    def execute(self, run: PlannedRun, on_event: EventSink = lambda k, p: None, loaded: Any = None) -> Any:
        """One run, new or resumed from its directory (exactly as `solve --resume`); returns its Summary.
        loaded: a copy of the loaded model for this run (runs in threads at once each train their own)."""
        from .discover import Solver
        from .report import write_plot

        self.setup([run])
        path = self.bench.run_dir(run)
        rd = RunDir(path)
        resume = rd.is_run()
        if not resume and path.exists():
            shutil.rmtree(path)  # killed before its config was written: nothing of it counted yet

        def forward(kind: str, payload: dict[str, Any]) -> None:
            on_event(kind, {**payload, "run": run})

        solver = Solver(run.config, path, problem=None if resume else self.bench.load_problem(run.problem),
                        resume=resume, judge=self.judge, on_event=forward, progress=self.progress,
                        loaded=loaded or self.loaded, sampler=self.sampler)
        summary = solver.run()
        write_plot(path, rd.load_attempts(), summary.budget, f"{summary.problem} ({run.method}"
                   f"{'' if run.seed is None else ', seed ' + str(run.seed)})")
        return summary

    def run_by_id(self, run_id: str) -> dict[str, Any]:
        """For workers.py: run `run_id` of the saved plan; its summary as JSON."""
        plan = self.bench.load_plan()
        run = next(r for r in plan.runs if r.id == run_id)
        self.setup([r for r in plan.runs if not self.bench.finished(r)] or [run])
        return self.execute(run).to_json()

    def close(self) -> None:
        if self._own_judge and self.judge is not None:
            self.judge.close()
            self.judge = None
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None


def run_bench(bench: BenchDir, plan: Plan, *, on_event: EventSink = lambda k, p: None,
              progress: Callable[[str], None] = lambda m: None, model: Any = None, tokenizer: Any = None,
              judge: Any = None) -> str:
    """Run every unfinished run of the plan, in order, in this process; returns "done" or "interrupted"
    (Ctrl-C, SIGTERM). model/tokenizer/judge: for tests, as RunWorker's."""
    t_start = time.monotonic()
    todo = [r for r in plan.runs if not bench.finished(r)]
    on_event("bench_start", {"plan": plan, "todo": len(todo), "total": len(plan.runs)})
    if not todo:
        on_event("bench_done", {"stopped": "done"})
        return "done"
    worker = RunWorker(bench.path, model=model, tokenizer=tokenizer, judge=judge, progress=progress,
                       warn=lambda m: on_event("warning", {"message": m}))
    stopped, runs_s = "done", 0.0
    try:
        worker.setup(todo)
        for i, run in enumerate(plan.runs):
            if bench.finished(run):
                continue
            on_event("run_start", {"run": run, "index": i, "total": len(plan.runs),
                                   "resumed": RunDir(bench.run_dir(run)).is_run()})
            t_run = time.monotonic()
            try:
                summary = worker.execute(run, on_event)
            finally:  # a run that raised (a sandbox failure) spent its time inside the run too
                runs_s += time.monotonic() - t_run
            on_event("run_done", {"run": run, "summary": summary})
            if summary.stopped == "interrupted":
                stopped = "interrupted"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if worker.sampler is not None:
            on_event("engine", {"peak_sequences": worker.sampler.peak_sequences, "max_loras": worker.sampler.max_loras})
        worker.close()
        record_timing(bench, time.monotonic() - t_start, runs_s, worker.load_s)
    on_event("bench_done", {"stopped": stopped})
    return stopped


def _preflight(bench: BenchDir, todo: Sequence[PlannedRun], loaded: Any) -> None:
    """What each run would refuse at its start (a prompt that does not fit the context), checked for every
    problem before the first run: a bench does not stop hours in on its tenth problem."""
    from .discover import check_fits
    from .prompts import Prompts

    seen = set()
    for run in todo:
        cfg = run.config
        key = (run.problem, cfg.max_new_tokens, cfg.thinking)
        if key in seen:
            continue
        seen.add(key)
        prob = bench.load_problem(run.problem)
        prompts = Prompts(loaded.tokenizer, prob, thinking=cfg.thinking, restate_format=cfg.sdpo.restate_format)
        check_fits(cfg, prob, prompts, loaded.model)


def task_sha256(problem: Problem) -> str:
    """The problem as the model and the judge see it: everything but its free-form metadata, so that writing a
    measured pass rate into a problem's file (problems/cpu-hard/record_pass_rates.py) keeps its pools reusable."""
    d = problem.to_json()
    d.pop("metadata", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def import_pools(bench: BenchDir, plan: Plan, source: Path) -> list[str]:
    """Reuse the best-of-k pools of another bench directory (e.g. `lcb screen`'s): a pool run of `source` with
    the same task (task_sha256: metadata such as a recorded pass rate may differ) and the same settings except
    its budget, which may be smaller than this plan's pool (the copied run then continues to the planned pool,
    as `solve --resume --budget` does: its samples come from the same distribution, step by step seeded), is
    copied into this bench unless this bench has the run already. Returns the ids copied."""
    return import_runs(bench, plan, source, seeded=False, flag="--pools-from")


def import_runs(bench: BenchDir, plan: Plan, source: Path, *, seeded: bool = True, flag: str = "--runs-from") -> list[str]:
    """Reuse the finished runs of another bench directory: its best-of-k pools as import_pools does and, with
    `seeded`, every other finished run (SDPO, multi-turn) with the same task and exactly the same settings
    (seed and budget included): the same run, so sampling it again would only repeat it. Unfinished runs are
    not copied (one writer per run directory: they are run here). The model is compared by its setting (a
    preset name or a path), not by its files. Returns the ids copied."""
    src = BenchDir(source)
    if not src.is_bench():
        raise BenchError(f"{flag} {source}: not a bench directory (no plan.json)")
    their_runs = {r.id: r for r in src.load_plan().runs if seeded or r.seed is None}
    copied = []
    for run in plan.runs:
        other = their_runs.get(run.id)
        dst = bench.run_dir(run)
        if (run.seed is not None and not seeded) or other is None or RunDir(dst).is_run():
            continue
        if task_sha256(bench.load_problem(run.problem)) != task_sha256(src.load_problem(run.problem)):
            continue
        a, b = dict(run.settings), dict(other.settings)
        mine, theirs = a.pop("budget"), b.pop("budget")
        if a != b or mine < theirs or (run.seed is not None and mine != theirs):
            continue
        src_rd = RunDir(src.run_dir(other))
        summary = src_rd.load_summary()
        if summary is None or summary.stopped == "interrupted":
            continue  # unfinished there: run here instead (one writer per run directory)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".importing")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src_rd.path, tmp)
        rd = RunDir(tmp)
        rd.write_config(run.config, rd.config_doc().get("model", {}))  # this plan's budget (a pool's)
        write_atomic(rd.problem, json.dumps(bench.load_problem(run.problem).to_json(), indent=2))  # its metadata
        if run.seed is None and summary.attempts_used < run.config.budget:
            rd.summary.unlink()  # a smaller pool, to continue to the planned pool: unfinished here
        tmp.rename(dst)
        copied.append(run.id)
    return copied


def record_timing(bench: BenchDir, wall_s: float, runs_s: float, load_s: float) -> None:
    """timing.json: one entry per bench session (wall time, time inside runs, the model load), for the overhead
    split; not part of results.json (which is rebuilt from the run directories alone)."""
    try:
        sessions = json.loads(bench.timing.read_text()).get("sessions", [])
    except (OSError, ValueError):
        sessions = []
    sessions.append({"wall_s": round(wall_s, 3), "runs_s": round(runs_s, 3), "model_load_s": round(load_s, 3),
                     "argv": sys.argv[1:]})
    write_atomic(bench.timing, json.dumps({"sessions": sessions}, indent=2))


def prepare(bench_path: Path, problem_paths: Sequence[Path], *, methods: Sequence[str] | None, seeds: Sequence[int] | None,
            budget: int | None, pool: int | None, flags: dict[str, Any], config_file: Path | None,
            assignments: Sequence[str] | None, resume: bool, command: Sequence[str]) -> Plan:
    """The bench directory ready to run: a new one planned and created, or a saved one checked against what this
    invocation asks (on --resume, anything given must agree with the saved plan)."""
    bench = BenchDir(bench_path)
    if resume:
        if not bench.is_bench():
            raise BenchError(f"{bench_path}: not a bench directory (no plan.json); start one with "
                             f"`sdpo-discover bench PROBLEMS... --out {bench_path}`")
        saved = bench.load_plan()
        if config_file is not None:
            raise BenchError("a resumed bench keeps its settings: drop --config (start a new bench, another --out, to "
                             "change them)")
        diff = []
        for name, given in (("methods", methods), ("seeds", seeds), ("budget", budget), ("pool", pool)):
            if given is not None and (list(given) if isinstance(given, list | tuple) else given) != getattr(saved, name):
                diff.append(f"{name}: {getattr(saved, name)} planned, {list(given) if isinstance(given, tuple) else given} now")
        if problem_paths:
            new = {p.id: hashlib.sha256(b).hexdigest() for p, _, b in gather_problems(problem_paths)}
            old = {p["id"]: p["sha256"] for p in saved.problems}
            if new.keys() != old.keys():
                diff.append(f"problems: {sorted(old)} planned, {sorted(new)} now")
            diff += [f"problem {k}: its file changed (sha256 differs)" for k in old if k in new and old[k] != new[k]]
        updates = dict(flags)
        for item in assignments or []:
            k, v = parse_assignment(item)
            updates[k] = v
        for key, value in updates.items():
            section = key.split(".", 1)[0] if "." in key else None
            owners = [r for r in saved.runs if section is None or (section == "sdpo" and r.method == "sdpo")
                      or (section == "multi_turn" and r.method == "multi-turn")]
            if any(merge_settings(r.settings, {key: value}) != r.settings for r in owners):
                diff.append(f"setting {key}: {value!r} now")
        if diff:
            raise BenchError(f"{bench_path}: this bench was planned differently; --resume continues the saved plan "
                             "as it is. What differs:\n  " + "\n  ".join(diff)
                             + "\nResume without those options, or start a new bench (another --out).")
        return saved
    if methods is None:
        methods = list(METHODS)
    plan, problems = make_plan(problem_paths, methods, seeds or [0], budget, pool, flags=flags,
                               config_file=config_file, assignments=assignments, command=command)
    bench.create(plan, problems)
    return plan


def dispatch(bench: BenchDir, plan: Plan, *, workers: int = 1, ray_address: str | None = None,
             ray_resources: dict[str, float] | None = None, on_event: EventSink = lambda k, p: None,
             progress: Callable[[str], None] = lambda m: None, shared_engine: bool = True) -> str:
    """Run the plan's unfinished runs: in this process (workers 1), `workers` at once on this machine, or on a
    Ray cluster (ray_address; ray_resources: num_cpus, num_gpus per run). Returns "done" or "interrupted".

    `workers` > 1 on this machine: with the vllm sampler and shared_engine, threads of this process sharing one
    engine (workers.run_shared: the runs' batches are sampled together); otherwise one process per worker,
    each with its own model (and engine)."""
    if ray_address:
        from .workers import run_ray

        res = ray_resources or {}
        return run_ray(bench, plan, ray_address, workers=None if workers == 1 else workers,
                       num_cpus=float(res.get("num_cpus", 1)), num_gpus=float(res.get("num_gpus", 0)), on_event=on_event)
    if workers > 1 and shared_engine and plan.runs and plan.runs[0].config.sampler == "vllm":
        from .workers import run_shared

        return run_shared(bench, plan, workers, on_event=on_event, progress=progress)
    if workers > 1:
        from .workers import run_local

        return run_local(bench, plan, workers, on_event=on_event)
    return run_bench(bench, plan, on_event=on_event, progress=progress)


def _dotted(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def run(problems: Sequence[Path | str], *, out: Path | str, methods: Sequence[str] = METHODS,
        seeds: Sequence[int] = (0,), budget: int | None = None, pool: int | None = None,
        settings: dict[str, Any] | None = None, resume: bool = False, workers: int = 1, ray_address: str | None = None,
        ray_resources: dict[str, float] | None = None, on_event: EventSink = lambda k, p: None,
        shared_engine: bool = True) -> Path:
    """The Python API of `sdpo-discover bench`: plan (or resume) the bench in `out`, run it, write its results.

    problems: problem files or folders (problem.json, LiveCodeBench .json/.jsonl); settings: any run settings
    as a (nested) dict, e.g. {"model": "qwen2.5-coder-0.5b", "sampler": "vllm", "sdpo": {"lr": 1e-4}};
    workers > 1: that many runs at once on this machine (with the vllm sampler and shared_engine, threads sharing
    one engine, whose batches are sampled together; else processes with a model each); ray_address: a Ray cluster ("auto", or
    host:port) with ray_resources {"num_cpus": .., "num_gpus": ..} per run. Returns the bench directory, whose
    results.json holds every figure (results.py). Raises BenchError / ConfigError on bad input; an
    interrupted bench (Ctrl-C) raises KeyboardInterrupt after saving: call again with resume=True."""
    from .results import write_all

    path = Path(out)
    plan = prepare(path, [Path(p) for p in problems], methods=list(methods) if not resume else None,
                   seeds=list(seeds) if not resume else None, budget=budget, pool=pool,
                   flags=_dotted(settings or {}) if not resume else {}, config_file=None, assignments=None,
                   resume=resume, command=["(python api)"])
    stopped = dispatch(BenchDir(path), plan, workers=workers, ray_address=ray_address, ray_resources=ray_resources,
                       on_event=on_event, shared_engine=shared_engine)
    write_all(path)
    if stopped == "interrupted":
        raise KeyboardInterrupt
    return path


__all__ = ["BenchDir", "BenchError", "ConfigError", "Plan", "PlannedRun", "make_plan", "parse_methods",
           "parse_seeds", "prepare", "run", "run_bench", "dispatch", "RunWorker"]
