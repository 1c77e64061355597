"""A bench's results, rebuilt from its run directories alone: results.json, report.md, discovery.png/.svg.

`sdpo-discover bench` writes them when it stops; `sdpo-discover report BENCH_DIR` rebuilds the same files at
any time, also on a partial bench (the problems whose runs have all finished enter the figures; the others
are listed). results.json is a pure function of plan.json and the run directories (the bootstrap is seeded),
so `report` reproduces it exactly. The statistics and their conventions: metrics.py.
No torch; numpy for the statistics, matplotlib (Agg) for the plot.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .bench import BenchDir, Plan, PlannedRun
from .store import RunDir, read_jsonl, write_atomic

RESULTS_FORMAT = 1
REPS = 1000  # bootstrap replicates
TIME_POINTS = 401
P_FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # headline p's: these fractions of the weaker method's discovery@budget


def _r(x: Any) -> Any:
    """Floats to 6 significant digits (and NaN/inf to None), recursively: compact and exactly reproducible."""
    if isinstance(x, float | np.floating):
        x = float(x)
        return None if not math.isfinite(x) else float(f"{x:.6g}")
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return [_r(v) for v in x.tolist()]
    if isinstance(x, dict):
        return {k: _r(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_r(v) for v in x]
    return x


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------
# One run


def read_run(bench: BenchDir, run: PlannedRun) -> dict[str, Any] | None:
    """A finished run's figures (None while unfinished)."""
    path = bench.run_dir(run)
    rd = RunDir(path)
    summary = rd.load_summary()
    if summary is None or summary.stopped == "interrupted":
        return None
    steps = read_jsonl(rd.steps)
    attempts = read_jsonl(rd.attempts)
    sizes = [int(s["attempts"]) for s in steps]
    loop = [float(s["generate_s"] + s["execute_s"] + s["update_s"]) for s in steps]
    ends = list(np.cumsum(loop)) if loop else []
    first = next((i for i, s in enumerate(steps) if s["passed"] > 0), None)
    by_step: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_step.setdefault(int(a["step"]), []).append(a)
    per_step = []
    for i, s in enumerate(steps):
        rows = by_step.get(s["step"], [])
        per_step.append({"step": s["step"], "attempts": s["attempts"], "passed": s["passed"], "loop_s": loop[i],
                         "tokens": float(np.mean([a["n_tokens"] for a in rows])) if rows else None,
                         "format_error": sum(a["status"] == "format_error" for a in rows) / max(len(rows), 1),
                         "truncated": sum(bool(a["truncated"]) for a in rows) / max(len(rows), 1),
                         "kl": s.get("kl"), "loss": s.get("loss"), "prompt_tokens": s.get("prompt_tokens", 0)})
    verdicts: dict[str, int] = {}
    for a in attempts:
        verdicts[a["status"]] = verdicts.get(a["status"], 0) + 1
    model = rd.config_doc().get("model", {})
    return {
        "id": run.id, "problem": run.problem, "method": run.method, "seed": run.seed,
        "solved": summary.solved, "first_success_index": summary.first_success_index,
        "attempts_used": summary.attempts_used, "budget": summary.budget, "steps": len(steps),
        "passed": sum(a["status"] == "passed" for a in attempts),
        "first_batch": None if first is None else {"start": int(sum(sizes[:first])), "g": sizes[first],
                                                    "m": int(steps[first]["passed"]), "step": first},
        "step_sizes": sizes, "step_ends_s": ends, "loop_s": float(sum(loop)),
        "wall_s": summary.wall_s, "generate_s": summary.generate_s, "execute_s": summary.execute_s,
        "update_s": summary.update_s, "other_s": summary.other_s,
        "verdicts": dict(sorted(verdicts.items())), "disk_bytes": _disk_bytes(path), "per_step": per_step,
        "model": model,
    }


# ---------------------------------------------------------------------------------------------
# The whole bench


def _seconds_per_attempt(runs: Sequence[dict[str, Any]], which: str) -> float | None:
    """Mean over runs of the loop seconds per attempt of their first (or last) two steps."""
    vals = []
    for r in runs:
        ps = r["per_step"][:2] if which == "first" else r["per_step"][-2:]
        n = sum(s["attempts"] for s in ps)
        if n:
            vals.append(sum(s["loop_s"] for s in ps) / n)
    return float(np.mean(vals)) if vals else None


def _per_step_means(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Step i averaged over the runs that reached it: how attempts' length, format and the KL move over a run."""
    longest = max((len(r["per_step"]) for r in runs), default=0)
    out = []
    for i in range(longest):
        rows = [r["per_step"][i] for r in runs if len(r["per_step"]) > i]

        def mean(key: str) -> float | None:
            vals = [x[key] for x in rows if x.get(key) is not None]
            return float(np.mean(vals)) if vals else None

        out.append({"step": i, "runs": len(rows), "tokens": mean("tokens"), "format_error": mean("format_error"),
                    "truncated": mean("truncated"), "passed": float(np.mean([x["passed"] / x["attempts"] for x in rows])),
                    "kl": mean("kl"), "prompt_tokens": mean("prompt_tokens"),
                    "s_per_attempt": float(np.mean([x["loop_s"] / x["attempts"] for x in rows]))})
    return out


def build_results(bench_path: Path) -> dict[str, Any]:
    """Everything the tables and the plot show, from plan.json and the run directories."""
    bench = BenchDir(bench_path)
    plan: Plan = bench.load_plan()
    runs = {r.id: read_run(bench, r) for r in plan.runs}
    finished = {k: v for k, v in runs.items() if v is not None}
    complete_problems = [p["id"] for p in plan.problems
                         if all(runs[r.id] is not None for r in plan.runs if r.problem == p["id"])]
    B = plan.budget
    methods = plan.methods
    k_axis = np.arange(B + 1)
    first_settings = plan.runs[0].settings
    out: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "command": plan.command,
        "conventions": metrics.CONVENTIONS,
        "methods": methods, "seeds": plan.seeds, "budget": B, "pool": plan.pool,
        "problems": [p["id"] for p in plan.problems],
        "problems_included": complete_problems,
        "runs_finished": len(finished), "runs_planned": len(plan.runs),
        "complete": len(finished) == len(plan.runs),
        "sampling": {k: first_settings.get(k) for k in ("model", "sampler", "device", "dtype", "batch_size",
                                                          "max_new_tokens", "temperature", "top_p", "top_k", "thinking")},
        "model": next((r["model"] for r in finished.values()), {}),
        "bootstrap": {"replicates": REPS, "level": 0.9, "seed": 0},
        "runs": [{k: v for k, v in r.items() if k not in ("per_step", "model", "step_ends_s", "step_sizes")}
                 for r in finished.values()],
        "disk_bytes": {m: sum(r["disk_bytes"] for r in finished.values() if r["method"] == m) for m in methods},
    }
    # the temperature and top-p the runs actually used (a preset's defaults when the settings say none)
    if out["model"]:
        out["sampling"]["temperature"] = out["model"].get("temperature", out["sampling"]["temperature"])
        out["sampling"]["top_p"] = out["model"].get("top_p", out["sampling"]["top_p"])
    by_method = {m: [r for r in finished.values() if r["method"] == m and r["problem"] in complete_problems]
                 for m in methods}
    out["seconds_per_attempt"] = {m: {"first_steps": _seconds_per_attempt(by_method[m], "first"),
                                      "last_steps": _seconds_per_attempt(by_method[m], "last")} for m in methods}
    out["per_step"] = {m: _per_step_means(by_method[m]) for m in methods}
    out["per_problem"] = {}
    for pid in complete_problems:
        row = {}
        for m in methods:
            rs = [r for r in by_method[m] if r["problem"] == pid]
            if m == "best-of-k":
                n, c = rs[0]["attempts_used"], rs[0]["passed"]
                row[m] = {"pool": n, "passed": c, "pass_rate": c / n if n else None,
                          "discovery_at_budget": float(metrics.pass_at_k(n, c, min(n, B))[-1])}
            else:
                row[m] = {"runs": len(rs), "solved": sum(r["solved"] for r in rs),
                          "first_success": [r["first_success_index"] for r in rs]}
        out["per_problem"][pid] = row
    if not complete_problems:
        out["curves"] = out["time_curves"] = None
        out["headline"], out["mean_attempts"], out["mean_seconds"], out["discovery_at_budget"] = [], {}, {}, {}
        return _r(out)

    # -- attempts axis ----------------------------------------------------------------------------------
    def pool_k(n: int, c: int) -> np.ndarray:
        curve = metrics.pass_at_k(n, c, min(n, B))
        return np.concatenate([curve, np.full(B + 1 - curve.size, np.nan)])

    # -- seconds axis ------------------------------------------------------------------------------------
    spa = {}  # pool seconds per attempt, per problem
    t_max = 0.0
    for pid in complete_problems:
        for m in methods:
            for r in by_method[m]:
                if r["problem"] != pid:
                    continue
                if m == "best-of-k":
                    spa[pid] = r["loop_s"] / max(r["attempts_used"], 1)
                    t_max = max(t_max, spa[pid] * min(r["attempts_used"], B))
                elif r["step_ends_s"]:
                    t_max = max(t_max, r["step_ends_s"][-1])
    grid = np.linspace(0.0, t_max or 1.0, TIME_POINTS)

    data_k: dict[str, metrics.MethodData] = {}
    data_t: dict[str, metrics.MethodData] = {}
    for m in methods:
        rs = by_method[m]
        if m == "best-of-k":
            pools = [(r["attempts_used"], r["passed"]) for pid in complete_problems for r in rs if r["problem"] == pid]
            data_k[m] = metrics.MethodData([pool_k(n, c)[None] for n, c in pools], pools, lambda p, n, c: pool_k(n, c))
            data_t[m] = metrics.MethodData(
                [metrics.pool_time_curve(n, c, spa[pid], grid, B)[None] for (n, c), pid in zip(pools, complete_problems)],
                pools, lambda p, n, c: metrics.pool_time_curve(n, c, spa[complete_problems[p]], grid, B))
        else:
            ck, ct = [], []
            for pid in complete_problems:
                seeds = [r for r in rs if r["problem"] == pid]
                ck.append(np.stack([metrics.sequential_curve(
                    None if r["first_batch"] is None else r["first_batch"]["start"],
                    r["first_batch"]["g"] if r["first_batch"] else 1, r["first_batch"]["m"] if r["first_batch"] else 0,
                    B) for r in seeds]))
                ct.append(np.stack([metrics.time_curve(
                    r["step_ends_s"], r["step_sizes"],
                    None if r["first_batch"] is None else (r["first_batch"]["step"], r["first_batch"]["m"]), grid)
                    for r in seeds]))
            data_k[m], data_t[m] = metrics.MethodData(ck), metrics.MethodData(ct)
    mean_k = {m: np.mean([c.mean(axis=0) for c in d.curves], axis=0) for m, d in data_k.items()}
    mean_t = {m: np.mean([c.mean(axis=0) for c in d.curves], axis=0) for m, d in data_t.items()}
    reps_k = metrics.bootstrap(data_k, reps=REPS, seed=0)
    reps_t = metrics.bootstrap(data_t, reps=REPS, seed=1)
    out["curves"] = {"k": k_axis, **{m: _band(mean_k[m], reps_k[m]) for m in methods}}
    out["time_curves"] = {"t": grid, **{m: _band(mean_t[m], reps_t[m]) for m in methods}}
    out["discovery_at_budget"] = {m: {"mean": mean_k[m][B], **dict(zip(("lo", "hi"), metrics.quantiles(reps_k[m][:, B])))}
                                  for m in methods}
    # censored mean attempts to first success (restricted mean), with intervals
    out["mean_attempts"] = {}
    for m in methods:
        vals = [metrics.restricted_mean(rep, B) for rep in reps_k[m]]
        censored = (sum(not r["solved"] for r in by_method[m]) if m != "best-of-k" else None)
        out["mean_attempts"][m] = {"mean": metrics.restricted_mean(mean_k[m], B),
                                   **dict(zip(("lo", "hi"), metrics.quantiles(vals))),
                                   "censored_runs": censored, "runs": len(by_method[m]),
                                   "unsolved_at_budget": 1.0 - mean_k[m][B]}
    # seconds: restricted mean up to the horizon every method's curve reaches
    horizons = {m: _horizon(mean_t[m], grid) for m in methods}
    h = min(horizons.values())
    hi_idx = int(np.searchsorted(grid, h, side="right"))
    out["mean_seconds"] = {"horizon_s": h, **{m: {
        "mean": _integral(mean_t[m], grid, hi_idx),
        **dict(zip(("lo", "hi"), metrics.quantiles([_integral(rep, grid, hi_idx) for rep in reps_t[m]]))),
        "horizon_s": horizons[m]} for m in methods}}
    out["headline"] = _headline(methods, mean_k, reps_k, mean_t, reps_t, grid, B)
    return _r(out)


def _band(mean: np.ndarray, reps: np.ndarray) -> dict[str, Any]:
    lo, hi = metrics.interval(reps)
    return {"mean": mean, "lo": lo, "hi": hi}


def _horizon(curve: np.ndarray, grid: np.ndarray) -> float:
    """The last time the curve is known (NaN after an unsolved run's end)."""
    known = np.nonzero(~np.isnan(curve))[0]
    return float(grid[known[-1]]) if known.size else 0.0


def _integral(curve: np.ndarray, grid: np.ndarray, hi_idx: int) -> float:
    """Restricted mean time: the integral of 1 - discovery(t) over [0, horizon] (trapezoid on the grid)."""
    y = 1.0 - curve[:hi_idx]
    if hi_idx < 2 or np.isnan(y).any():
        return float("nan")
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(grid[:hi_idx])))


def _headline(methods: Sequence[str], mean_k: dict[str, np.ndarray], reps_k: dict[str, np.ndarray],
              mean_t: dict[str, np.ndarray], reps_t: dict[str, np.ndarray], grid: np.ndarray, B: int) -> list[dict]:
    """For each baseline against sdpo: at p = fractions of the weaker one's discovery@budget, the attempts (and
    seconds) each needs to reach p, and the baseline's over sdpo's, with 90% intervals (paired replicates)."""
    if "sdpo" not in methods:
        return []
    rows = []

    def first_t(curve: np.ndarray, p: float) -> float:
        hit = np.nonzero(np.nan_to_num(curve, nan=-1.0) >= p - 1e-12)[0]
        return float(grid[hit[0]]) if hit.size else float("inf")

    def ratio(a: float, b: float) -> float:
        if math.isinf(a) and math.isinf(b):
            return float("nan")
        return a / b if b > 0 else float("inf")

    for base in (m for m in methods if m != "sdpo"):
        weaker = min(mean_k[base][B], mean_k["sdpo"][B])
        if not np.isfinite(weaker) or weaker <= 0:
            rows.append({"baseline": base, "p": None, "note": "one of the two never succeeded: no ratio"})
            continue
        for frac in P_FRACTIONS:
            p = float(f"{frac * weaker:.3g}")
            kb, ks = metrics.first_k(np.nan_to_num(mean_k[base], nan=-1.0), p), metrics.first_k(mean_k["sdpo"], p)
            tb, ts = first_t(mean_t[base], p), first_t(mean_t["sdpo"], p)
            rk = [ratio(metrics.first_k(np.nan_to_num(a, nan=-1.0), p), metrics.first_k(b, p))
                  for a, b in zip(reps_k[base], reps_k["sdpo"])]
            rt = [ratio(first_t(a, p), first_t(b, p)) for a, b in zip(reps_t[base], reps_t["sdpo"])]
            rk_ok, rt_ok = [x for x in rk if not math.isnan(x)], [x for x in rt if not math.isnan(x)]
            rows.append({"baseline": base, "p": p, "fraction": frac,
                         "attempts_baseline": kb, "attempts_sdpo": ks, "attempt_ratio": ratio(kb, ks),
                         "attempt_ratio_interval": metrics.quantiles(rk_ok) if rk_ok else None,
                         "seconds_baseline": tb, "seconds_sdpo": ts, "time_ratio": ratio(tb, ts),
                         "time_ratio_interval": metrics.quantiles(rt_ok) if rt_ok else None})
    return rows


# ---------------------------------------------------------------------------------------------
# Tables, report, plot


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "∞"
        return f"{x:.{digits}g}"
    return str(x)


def _iv(pair: Any) -> str:
    return "—" if not pair else f"[{_fmt(pair[0])}, {_fmt(pair[1])}]"


def tables(res: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table: report.md and the terminal render the same rows."""
    out = []
    B = res["budget"]
    rows = []
    for m in res["methods"]:
        d, ma = res["discovery_at_budget"].get(m), res["mean_attempts"].get(m)
        ms = res["mean_seconds"].get(m) if res["mean_seconds"] else None
        spa = res["seconds_per_attempt"][m]
        rows.append([m, f"{_fmt(d['mean'])} {_iv((d['lo'], d['hi']))}" if d else "—",
                     f"{_fmt(ma['mean'], 4)} {_iv((ma['lo'], ma['hi']))}" if ma else "—",
                     _fmt(ma.get("censored_runs")) if ma else "—",
                     f"{_fmt(ms['mean'], 4)} {_iv((ms['lo'], ms['hi']))}" if ms else "—",
                     f"{_fmt(spa['first_steps'])} → {_fmt(spa['last_steps'])}",
                     f"{res['disk_bytes'][m] / 1e6:.1f}"])
    h = res["mean_seconds"].get("horizon_s") if res["mean_seconds"] else None
    out.append((f"Per method ({len(res['problems_included'])} problems; 90% bootstrap intervals)",
                ["method", f"discovery@{B}", f"mean attempts to first success (censored at {B})", "censored runs",
                 f"mean seconds to first success (censored at {_fmt(h)} s)", "s/attempt first → last steps", "disk MB"],
                rows))
    hl = [[r["baseline"], _fmt(r["p"]), _fmt(r.get("attempts_baseline")), _fmt(r.get("attempts_sdpo")),
           f"{_fmt(r.get('attempt_ratio'))} {_iv(r.get('attempt_ratio_interval'))}",
           _fmt(r.get("seconds_baseline"), 4), _fmt(r.get("seconds_sdpo"), 4),
           f"{_fmt(r.get('time_ratio'))} {_iv(r.get('time_ratio_interval'))}"] if r.get("p") is not None
          else [r["baseline"], "—", "—", "—", r.get("note", ""), "—", "—", "—"] for r in res["headline"]]
    if hl:
        out.append(("What each method needs to reach discovery probability p (p = 25/50/75/100% of the weaker "
                    "method's discovery@budget); ratio = baseline / sdpo",
                    ["baseline", "p", "attempts baseline", "attempts sdpo", "attempt ratio [90%]",
                     "seconds baseline", "seconds sdpo", "time ratio [90%]"], hl))
    pp = []
    for pid, row in res["per_problem"].items():
        cells = [pid]
        for m in res["methods"]:
            x = row[m]
            cells.append(f"{x['passed']}/{x['pool']} pass" if m == "best-of-k"
                         else f"{x['solved']}/{x['runs']} (" + ", ".join(_fmt(v) for v in x["first_success"]) + ")")
        pp.append(cells)
    out.append(("Per problem (best-of-k: passing samples in its pool; others: seeds solved, and at which attempt)",
                ["problem", *res["methods"]], pp))
    return out


def markdown(res: dict[str, Any], plot_name: str = "discovery.png") -> str:
    lines = ["# Bench report", ""]
    status = ("complete" if res["complete"] else
              f"**partial**: {res['runs_finished']} of {res['runs_planned']} runs finished; the figures use the "
              f"{len(res['problems_included'])} problems whose runs have all finished")
    missing = [p for p in res["problems"] if p not in res["problems_included"]]
    lines += [f"Status: {status}." + (f" Not yet included: {', '.join(missing)}." if missing else ""), "",
              "Command:", "", "```", "sdpo-discover " + shlex.join(res["command"]) if res["command"] else "(unknown)", "```", ""]
    s, m = res["sampling"], res["model"]
    lines += [f"Model `{s['model']}` (fingerprint `{(m.get('fingerprint') or '')[:16]}`), {s['sampler']} sampler, "
              f"temperature {s['temperature']}, top-p {s['top_p']}, top-k {s['top_k']}, max_new_tokens "
              f"{s['max_new_tokens']}, batch {s['batch_size']}; methods {', '.join(res['methods'])}; seeds "
              f"{res['seeds']}; budget {res['budget']}; best-of-k pool {res['pool']}.", "",
              f"Conventions: {res['conventions']}.", ""]
    if res["curves"] is None:
        lines += ["No problem has all its runs finished yet: nothing to plot.", ""]
    else:
        lines += [f"![discovery]({plot_name})", ""]
    for title, header, rows in tables(res) if res["curves"] is not None else []:
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    if res["curves"] is not None:
        lines += ["## Over the runs (step i averaged over the runs that reached it)", "",
                  "| method | step | runs | mean tokens | format errors | cut off | passed | KL (sdpo) | prompt tokens | s/attempt |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for meth, steps in res["per_step"].items():
            show = steps if len(steps) <= 8 else steps[:4] + steps[-4:]
            for st in show:
                lines.append(f"| {meth} | {st['step']} | {st['runs']} | {_fmt(st['tokens'])} | {_fmt(st['format_error'])} | "
                             f"{_fmt(st['truncated'])} | {_fmt(st['passed'])} | {_fmt(st['kl'])} | {_fmt(st['prompt_tokens'])} | "
                             f"{_fmt(st['s_per_attempt'])} |")
        lines.append("")
    return "\n".join(lines)


COLOURS = {"sdpo": "#1f77b4", "best-of-k": "#ff7f0e", "multi-turn": "#2ca02c"}


def plot(res: dict[str, Any], folder: Path, log_k: bool = False) -> list[Path]:
    """discovery.png and discovery.svg: discovery against attempts (left) and seconds (right), one curve per
    method with its shaded 90% band, the budget marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, axis_key, label in ((axes[0], "curves", "k", "attempts k"),
                                     (axes[1], "time_curves", "t", "seconds of loop time")):
        c = res[key]
        x = np.array(c[axis_key], dtype=float)
        for m in res["methods"]:
            y = np.array([np.nan if v is None else v for v in c[m]["mean"]], dtype=float)
            lo = np.array([np.nan if v is None else v for v in c[m]["lo"]], dtype=float)
            hi = np.array([np.nan if v is None else v for v in c[m]["hi"]], dtype=float)
            sel = x > 0 if (log_k and key == "curves") else slice(None)
            ax.plot(x[sel], y[sel], color=COLOURS.get(m), label=m, lw=1.8)
            ax.fill_between(x[sel], lo[sel], hi[sel], color=COLOURS.get(m), alpha=0.18, lw=0)
        if key == "curves":
            ax.axvline(res["budget"], color="#555", ls="--", lw=1)
            ax.text(res["budget"], 1.01, f" budget {res['budget']}", color="#555", fontsize=8, va="bottom", ha="right")
            if log_k:
                ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("discovery probability")
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    n = len(res["problems_included"])
    fig.suptitle(f"discovery@k, {n} problem{'s' * (n != 1)} × seeds {res['seeds']} (90% bootstrap bands)"
                 + ("" if res["complete"] else f" — partial: {res['runs_finished']}/{res['runs_planned']} runs"),
                 fontsize=11)
    fig.tight_layout()
    paths = [folder / "discovery.png", folder / "discovery.svg"]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def write_all(bench_path: Path, log_k: bool = False) -> dict[str, Any]:
    """results.json, report.md and (when any problem is complete) the plot; returns the results."""
    res = build_results(bench_path)
    bench = BenchDir(bench_path)
    write_atomic(bench.results, json.dumps(res, indent=1, allow_nan=False))
    if res["curves"] is not None:
        plot(res, bench.path, log_k=log_k)
    text = markdown(res)
    timing = _timing_md(bench)
    write_atomic(bench.report, text + timing)
    return res


def _timing_md(bench: BenchDir) -> str:
    """The bench's own overhead (timing.json: what is outside the runs), when the bench recorded it."""
    try:
        sessions = json.loads(bench.timing.read_text())["sessions"]
    except (OSError, ValueError, KeyError):
        return ""
    wall = sum(s["wall_s"] for s in sessions)
    runs = sum(s["runs_s"] for s in sessions)
    load = sum(s["model_load_s"] for s in sessions)
    share = (wall - runs) / wall if wall else 0.0
    return (f"\n## The bench's own time\n\n{len(sessions)} session(s): wall {wall:.0f} s, inside runs {runs:.0f} s, "
            f"outside them {wall - runs:.0f} s ({share:.1%}; of which the model load {load:.0f} s).\n")
