"""What a run shows and leaves behind: the live view of `solve` (rich), its JSON-lines form for scripts,
and the discovery plot (an SVG written into the run directory, no plotting library needed).

The view consumes the loop's events (discover.EventSink) and never feeds anything back. Without a
terminal (a pipe, a CI log) the progress bar is off and every line is printed plainly.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .store import Attempt, StepRecord, Summary

_SHORT = {"passed": "pass", "failed": "fail", "format_error": "format", "sandbox_error": "sandbox"}
_SPARK = "▁▂▃▄▅▆▇█"


def best_so_far(attempts: Sequence[Attempt]) -> list[float]:
    """Best fraction of tests passed among the first k attempts, for k = 1..n (1.0 once solved)."""
    best, out = 0.0, []
    for a in attempts:
        best = max(best, 1.0 if a.passed else a.fraction_passed)
        out.append(best)
    return out


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """values in [0, 1] -> a one-line bar chart of at most `width` characters (bucket maxima)."""
    if not values:
        return ""
    n = len(values)
    w = min(width, n)  # fewer values than characters: one character each (bucket i spans values[i n/w : (i+1) n/w])
    buckets = [max(values[i * n // w : (i + 1) * n // w]) for i in range(w)]
    return "".join(_SPARK[min(len(_SPARK) - 1, int(v * (len(_SPARK) - 1) + 0.5))] for v in buckets)


def _fmt_s(s: float) -> str:
    return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"


def step_line(rec: StepRecord) -> str:
    mix = ", ".join(f"{_SHORT.get(k, k)} {v}" for k, v in sorted(rec.verdicts.items(), key=lambda kv: -kv[1]))
    learn = (f"loss {rec.loss:.4f}  KL {rec.kl:.4f}  ({rec.rollouts} taught)" if rec.loss is not None
             else "no update") + (f"  prompt {rec.prompt_tokens} tok" if rec.prompt_tokens else "")
    return (f"step {rec.step:>3}  {rec.passed}/{rec.attempts} passed  [{mix}]  best {rec.best_fraction:.0%} of tests  "
            f"{learn}  gen {_fmt_s(rec.generate_s)} exec {_fmt_s(rec.execute_s)} upd {_fmt_s(rec.update_s)}")


class LiveView:
    """mode 'rich' (progress bar on a terminal, a line per step), 'quiet' (the outcome line only) or
    'json' (one JSON object per step and one for the summary, on stdout)."""

    def __init__(self, mode: str = "rich", console: Console | None = None, err: Console | None = None) -> None:
        self.mode = mode
        self.out = console or Console()
        self.err = err or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: Any = None
        self.attempts: list[Attempt] = []
        self.graded_now = 0  # attempts graded in this session: the rate excludes those a resumed run had
        self.t0 = time.monotonic()

    # the EventSink
    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        getattr(self, f"_on_{kind}", lambda p: None)(payload)

    def _on_warning(self, p: dict[str, Any]) -> None:
        self.err.print(f"[yellow]Warning:[/] {escape(p['message'])}", highlight=False)

    def _on_notice(self, p: dict[str, Any]) -> None:  # the sampler chosen: always said when it is a fallback
        if self.mode == "rich" or p.get("fallback"):
            self.err.print(f"[dim]{escape(p['message'])}[/]", highlight=False)

    def _on_start(self, p: dict[str, Any]) -> None:
        cfg, prob = p["config"], p["problem"]
        self.attempts = list(p["attempts"])
        if self.mode == "json":
            print(json.dumps({"event": "start", "problem": prob.id, "run_dir": str(p["run_dir"]),
                              "resumed_at_step": p["resumed_at"], "attempts_done": len(self.attempts)}), flush=True)
            return
        if self.mode == "quiet":
            return
        learn = {"sdpo": f"SDPO (lr {cfg.sdpo.lr:g}, teacher {cfg.sdpo.teacher})",
                 "best-of-k": "best-of-k (independent samples of the base model)",
                 "multi-turn": f"multi-turn ({cfg.step_size} chain(s), {cfg.multi_turn.template})"}[cfg.method]
        self.out.print(f"[bold]{escape(prob.id)}[/] — {escape(prob.title)}  [dim]({prob.test_type}, {len(prob.tests)} tests)[/]",
                       highlight=False)
        self.out.print(f"[dim]model {escape(cfg.model)} · {cfg.sampler} sampler · temperature {p['temperature']:g}, "
                       f"top-p {p['top_p']:g} · {learn} · batch {cfg.batch_size} · budget {cfg.budget} · seed {cfg.seed}[/]",
                       highlight=False)
        self.out.print(f"[dim]run directory {escape(str(p['run_dir']))}[/]", highlight=False)
        if p["resumed_at"] or self.attempts:
            self.out.print(f"Resumed at step {p['resumed_at']} with {len(self.attempts)} attempt(s) already graded.")
        for rec in p["steps"]:
            self.out.print(f"[dim]{escape(step_line(StepRecord(**rec)))}[/]", highlight=False)
        if self.out.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("attempts · {task.fields[rate]}"), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(), console=self.out, transient=True)
            self.task = self.progress.add_task("starting", total=cfg.budget, completed=len(self.attempts), rate="")
            self.progress.start()

    def _describe(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)

    def _on_sampled(self, p: dict[str, Any]) -> None:
        self._describe(f"step {p['step']}: grading {p['n']}")

    def _on_attempt(self, p: dict[str, Any]) -> None:
        self.attempts.append(p["attempt"])
        self.graded_now += 1
        if self.progress is not None:
            rate = self.graded_now / max(time.monotonic() - self.t0, 1e-9) * 60
            self.progress.update(self.task, advance=1, rate=f"{rate:.1f}/min")

    def _on_step(self, p: dict[str, Any]) -> None:
        rec: StepRecord = p["record"]
        if self.mode == "json":
            print(json.dumps({"event": "step", **rec.__dict__, "used": p["used"], "budget": p["budget"]}), flush=True)
            return
        if self.mode == "quiet":
            return
        line = escape(step_line(rec))
        (self.progress.console if self.progress else self.out).print(
            f"[green]{line}[/]" if rec.passed else line, highlight=False)
        self._describe(f"step {rec.step + 1}: sampling")

    def _on_done(self, p: dict[str, Any]) -> None:
        s: Summary = p["summary"]
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.mode == "json":
            print(json.dumps({"event": "done", **s.to_json()}), flush=True)
            return
        if s.solved:
            outcome = f"[bold green]Solved[/] at attempt {s.first_success_index} of {s.budget} (step {s.steps - 1})"
        elif s.stopped == "interrupted":
            outcome = f"[bold yellow]Interrupted[/] after {s.attempts_used} attempts: continue with --resume"
        else:
            outcome = f"[bold red]Not solved[/] within {s.attempts_used} attempts"
        if p.get("already"):
            outcome += " [dim](this run had finished already)[/]"
        if self.mode == "quiet":
            self.out.print(outcome, highlight=False)
            return
        lines = [outcome,
                 f"wall {_fmt_s(s.wall_s)}: generation {_fmt_s(s.generate_s)}, execution {_fmt_s(s.execute_s)}, "
                 f"update {_fmt_s(s.update_s)}, other {_fmt_s(s.other_s)}"]
        if self.attempts:
            lines.append(f"best fraction of tests passed, attempts 1..{len(self.attempts)}:")
            lines.append(f"[cyan]{sparkline(best_so_far(self.attempts))}[/]")
        files = Table.grid(padding=(0, 2))
        files.add_row("run", escape(s.run_dir))
        if s.solution:
            files.add_row("solution", escape(s.solution))
        files.add_row("attempts", escape(str(Path(s.run_dir) / "attempts.jsonl")))
        files.add_row("plot", escape(str(Path(s.run_dir) / "discovery.svg")))
        self.out.print(Panel.fit("\n".join(lines), title="sdpo-discover solve", title_align="left"), highlight=False)
        self.out.print(files, highlight=False)


# ---------------------------------------------------------------------------------------------
# The plot


def discovery_svg(attempts: Sequence[Attempt], budget: int, title: str, width: int = 720, height: int = 300) -> str:
    """Per-attempt fraction of tests passed (dots), best so far (line), first success (green rule)."""
    left, right, top, bottom = 50, 15, 30, 40
    pw, ph = width - left - right, height - top - bottom
    n_max = max(budget, len(attempts), 1)

    def x(i: int) -> float:
        return left + pw * (i + 1) / n_max

    def y(v: float) -> float:
        return top + ph * (1 - v)

    colours = {"passed": "#2a2", "failed": "#c33", "format_error": "#999", "sandbox_error": "#e90"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>']
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{v:.0%}</text>')
    for t in (0, n_max // 2, n_max):
        parts.append(f'<text x="{left + pw * t / n_max}" y="{top + ph + 16}" text-anchor="middle">{t}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">attempts (budget {budget})</text>')
    for a in attempts:
        v = 1.0 if a.passed else a.fraction_passed
        parts.append(f'<circle cx="{x(a.index):.1f}" cy="{y(v):.1f}" r="2" fill="{colours.get(a.status, "#555")}"/>')
    best = best_so_far(attempts)
    if best:
        pts = " ".join(f"{x(a.index):.1f},{y(b):.1f}" for a, b in zip(attempts, best))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#36c" stroke-width="1.5"/>')
    first = next((a for a in attempts if a.passed), None)
    if first is not None:
        parts.append(f'<line x1="{x(first.index):.1f}" y1="{top}" x2="{x(first.index):.1f}" y2="{top + ph}" '
                     f'stroke="#2a2" stroke-dasharray="4 3"/><text x="{x(first.index) + 4:.1f}" y="{top + 12}" '
                     f'fill="#2a2">solved at {first.index + 1}</text>')
    parts.append(f'<text x="{left + pw}" y="18" text-anchor="end" fill="#36c">— best fraction of tests passed so far'
                 f'</text></svg>')
    return "\n".join(parts)


def write_plot(run_dir: Path, attempts: Sequence[Attempt], budget: int, title: str) -> Path:
    path = Path(run_dir) / "discovery.svg"
    path.write_text(discovery_svg(sorted(attempts, key=lambda a: a.index), budget, title), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# bench


class BenchView:
    """The live view of `bench`: runs done / total with an ETA, each running run's attempts (several at once with
    --workers), a line per finished run; plain lines without a terminal. Consumes bench.run_bench's events (and
    each run's, forwarded with its run)."""

    def __init__(self, quiet: bool = False, console: Console | None = None, err: Console | None = None) -> None:
        self.quiet = quiet
        self.out = console or Console()
        self.err = err or Console(stderr=True)
        self.progress: Progress | None = None
        self.runs_task: Any = None
        self.run_tasks: dict[str, Any] = {}  # run id -> its progress bar, while it runs
        self.t_run: dict[str, float] = {}

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        getattr(self, f"_on_{kind}", lambda p: None)(payload)

    def _print(self, text: str) -> None:
        if not self.quiet:
            (self.progress.console if self.progress else self.out).print(text, highlight=False)

    def _on_warning(self, p: dict[str, Any]) -> None:
        self.err.print(f"[yellow]Warning:[/] {escape(p['message'])}", highlight=False)

    def _on_notice(self, p: dict[str, Any]) -> None:  # the sampler chosen: always said when it is a fallback
        if not self.quiet or p.get("fallback"):
            self.err.print(f"[dim]{escape(p['message'])}[/]", highlight=False)

    def _on_bench_start(self, p: dict[str, Any]) -> None:
        plan = p["plan"]
        done = p["total"] - p["todo"]
        self._print(f"[bold]bench[/]: {len(plan.problems)} problem(s) × {', '.join(plan.methods)}; seeds {plan.seeds}; "
                    f"budget {plan.budget}; best-of-k pool {plan.pool} — {p['total']} runs"
                    + (f", {done} finished already" if done else ""))
        if self.out.is_terminal and not self.quiet and p["todo"]:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.out,
                                     transient=True)
            self.runs_task = self.progress.add_task("runs", total=p["total"], completed=done)
            self.progress.start()

    def _on_run_start(self, p: dict[str, Any]) -> None:
        run = p["run"]
        self.t_run[run.id] = time.monotonic()
        budget = run.settings["budget"]
        if self.progress is not None:
            self.run_tasks[run.id] = self.progress.add_task(f"  {run.id} attempts", total=budget, completed=0)
        elif not self.quiet:
            self._print(f"[dim]run {p['index'] + 1}/{p['total']}: {escape(run.id)}"
                        + (" (resumed)" if p["resumed"] else "") + "[/]")

    def _task(self, p: dict[str, Any]) -> Any:
        run = p.get("run")
        return None if self.progress is None or run is None else self.run_tasks.get(run.id)

    def _on_start(self, p: dict[str, Any]) -> None:
        if (task := self._task(p)) is not None:
            self.progress.update(task, completed=len(p["attempts"]))  # type: ignore[union-attr]

    def _on_attempt(self, p: dict[str, Any]) -> None:
        if (task := self._task(p)) is not None:
            self.progress.update(task, advance=1)  # type: ignore[union-attr]

    def _on_run_done(self, p: dict[str, Any]) -> None:
        s: Summary = p["summary"]
        run = p["run"]
        task = self.run_tasks.pop(run.id, None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)
        t_run = self.t_run.pop(run.id, time.monotonic())
        if s.stopped == "interrupted":
            return
        if self.progress is not None:
            self.progress.update(self.runs_task, advance=1)
        what = (f"[green]solved at attempt {s.first_success_index}[/]" if s.solved and run.seed is not None
                else f"pool of {s.attempts_used}: {'first pass at ' + str(s.first_success_index) if s.solved else 'no pass'}"
                if run.seed is None else f"not solved in {s.attempts_used}")
        self._print(f"{escape(run.id)}: {what}  [dim]({_fmt_s(time.monotonic() - t_run)})[/]")

    def _on_bench_done(self, p: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def render_tables(rows: Sequence[tuple[str, list[str], list[list[str]]]]) -> list[Table]:
    out = []
    for title, header, body in rows:
        t = Table(title=title, title_justify="left", show_lines=False)
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
        for r in body:
            t.add_row(*[escape(c) for c in r])
        out.append(t)
    return out
