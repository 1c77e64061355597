"""Running a bench's runs on several workers at once: processes on this machine (`--workers W`), or Ray actors
on a cluster (`--ray-address ADDRESS`).

Each worker is a bench.RunWorker in its own process: it loads the model once and runs one planned run at a
time, new or resumed from the run's own directory. The driver (this module) hands out run ids, one at a time,
to whichever worker is free, and re-queues the run of a worker that died; the new worker resumes that run
from its directory (store.py's commit order: nothing is sampled, graded or counted twice), so a retry is
always safe.

Assumption: **a filesystem shared by the driver and every worker**, with the bench directory at the same path
everywhere (one machine, or NFS / a cluster filesystem). Chosen over having the driver collect each finished
run directory because a run's directory *is* its crash-safe state: a run whose worker dies mid-way is
resumed by another worker (on another node) from what it committed, instead of starting over; with
collected directories the partial state of a dead worker would be lost with its node.

Imports only the standard library at module level; Ray is imported when asked for.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_mod
import time
from collections.abc import Callable
from typing import Any

from .bench import BenchDir, BenchError, Plan, PlannedRun, record_timing
from .store import RunDir

EventSink = Callable[[str, dict[str, Any]], None]
MAX_TRIES = 3  # a run whose worker died this many times stops the bench (something about the run kills workers)


class RayUnavailable(RuntimeError):
    """The Ray cluster cannot be reached (or ray is not installed): exit 3, with what to check (not bad input:
    hence not a BenchError, which is exit 2)."""


def _worker_main(bench_path: str, tasks: Any, results: Any) -> None:
    """A local worker process: take run ids until None, report each start and result."""
    import os
    import signal

    from .bench import RunWorker

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides about Ctrl-C; it terminates its workers
    worker = RunWorker(bench_path)
    try:
        while True:
            run_id = tasks.get()
            if run_id is None:
                return
            results.put(("start", run_id, os.getpid()))
            try:
                results.put(("done", run_id, worker.run_by_id(run_id)))
            except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the bench with it
                results.put(("error", run_id, f"{type(e).__name__}: {e}"))
                return
    finally:
        worker.close()


def run_local(bench: BenchDir, plan: Plan, workers: int, *, on_event: EventSink = lambda k, p: None) -> str:
    """The plan's unfinished runs on `workers` processes of this machine (one model each)."""
    ctx = multiprocessing.get_context("spawn")
    todo = [r for r in plan.runs if not bench.finished(r)]
    on_event("bench_start", {"plan": plan, "todo": len(todo), "total": len(plan.runs)})
    t0 = time.monotonic()
    tasks, results = ctx.Queue(), ctx.Queue()
    for r in todo:
        tasks.put(r.id)
    procs: dict[int, Any] = {}
    running: dict[int, str] = {}  # pid -> run id
    tries: dict[str, int] = {}
    remaining = {r.id for r in todo}
    by_id = {r.id: r for r in plan.runs}

    def spawn() -> None:
        p = ctx.Process(target=_worker_main, args=(str(bench.path), tasks, results), daemon=True)
        p.start()
        procs[p.pid] = p

    stopped = "done"
    try:
        for _ in range(min(workers, len(todo))):
            spawn()
        while remaining:
            try:
                kind, run_id, value = results.get(timeout=1.0)
            except queue_mod.Empty:
                for pid, p in list(procs.items()):
                    if not p.is_alive():  # died (killed, out of memory): its run goes back in the queue
                        del procs[pid]
                        lost = running.pop(pid, None)
                        if lost is not None:
                            _retry(lost, tries, on_event)
                            tasks.put(lost)
                        if remaining and len(procs) < min(workers, len(remaining)):
                            spawn()
                continue
            if kind == "start":
                running[value] = run_id
                on_event("run_start", {"run": by_id[run_id], "index": plan.runs.index(by_id[run_id]),
                                       "total": len(plan.runs), "resumed": False, "worker": value})
            elif kind == "done":
                running = {pid: rid for pid, rid in running.items() if rid != run_id}
                remaining.discard(run_id)
                on_event("run_done", {"run": by_id[run_id], "summary": _summary(value)})
            else:
                raise BenchError(f"run {run_id} failed in a worker: {value}")
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        for _ in procs:
            tasks.put(None)
        for p in procs.values():
            p.join(timeout=5 if stopped == "done" else 0.1)
            if p.is_alive():
                p.terminate()  # SIGTERM: the run saves and stops (resumable), like Ctrl-C of solve
                p.join(timeout=30)
        record_timing(bench, time.monotonic() - t0, time.monotonic() - t0, 0.0)
    on_event("bench_done", {"stopped": stopped})
    return stopped


def run_shared(bench: BenchDir, plan: Plan, workers: int, *, on_event: EventSink = lambda k, p: None,
               progress: Callable[[str], None] = lambda m: None, model: Any = None, tokenizer: Any = None,
               judge: Any = None) -> str:
    """The plan's unfinished runs, `workers` at once, in threads of this process that share one vLLM engine
    (the vllm sampler): each run's adapter versions are its own LoRA requests, and the runs' batches are
    sampled in the same engine steps. One model load, one sandbox pool; each SDPO run trains its own copy of
    the model (threads at once cannot share one: the adapter sits on the model). Returns "done" or
    "interrupted" (Ctrl-C: the runs stop as if killed, each resumable from its last commit).
    model/tokenizer/judge: for tests, as bench.RunWorker's."""
    import copy
    import threading

    from .bench import RunWorker
    from .discover import LoadedModel

    todo = [r for r in plan.runs if not bench.finished(r)]
    on_event("bench_start", {"plan": plan, "todo": len(todo), "total": len(plan.runs)})
    if not todo:
        on_event("bench_done", {"stopped": "done"})
        return "done"
    t0 = time.monotonic()
    lock = threading.Lock()  # one event at a time reaches the renderer

    def emit(kind: str, payload: dict[str, Any]) -> None:
        with lock:
            on_event(kind, payload)

    worker = RunWorker(bench.path, model=model, tokenizer=tokenizer, judge=judge, progress=progress,
                       warn=lambda m: emit("warning", {"message": m}), share=workers)
    queue_: queue_mod.Queue = queue_mod.Queue()
    for r in todo:
        queue_.put(r)
    failed: list[BaseException | None] = []  # the first run's error stops the bench (None: interrupted)
    by_index = {r.id: i for i, r in enumerate(plan.runs)}

    def slot(k: int, loaded: Any) -> None:
        while not failed:
            try:
                run = queue_.get_nowait()
            except queue_mod.Empty:
                return
            emit("run_start", {"run": run, "index": by_index[run.id], "total": len(plan.runs),
                               "resumed": RunDir(bench.run_dir(run)).is_run(), "worker": f"thread {k + 1}"})
            try:
                summary = worker.execute(run, emit, loaded=loaded)
            except BaseException as e:  # noqa: BLE001 - the bench stops with it; the other runs are resumable
                if not failed:
                    emit("warning", {"message": f"run {run.id} failed: {type(e).__name__}: {e}; the runs in "
                                                "progress finish, then the bench stops (continue with --resume)"})
                    failed.append(e)
                return
            emit("run_done", {"run": run, "summary": summary})

    stopped = "done"
    threads: list[threading.Thread] = []
    t_runs = None
    try:
        worker.setup(todo)
        t_runs = time.monotonic()  # the runs' time: while any of them runs (they overlap)
        base = worker.loaded
        trains = any(r.method == "sdpo" for r in todo)
        for k in range(min(workers, len(todo))):
            # slot 0 trains the loaded model itself; the others a copy each (weights and tokenizer)
            loaded = base if k == 0 or not trains else LoadedModel(
                copy.deepcopy(base.model), copy.deepcopy(base.tokenizer), base.info, base.path, base.preset)
            t = threading.Thread(target=slot, args=(k, loaded), name=f"bench-run-{k + 1}", daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
    except KeyboardInterrupt:
        stopped = "interrupted"
        failed.append(None)  # no new runs; the running ones stop when the engine goes (closed below)
    finally:
        if worker.sampler is not None:  # how many sequences the engine held at once: > one run's batch = shared
            emit("engine", {"peak_sequences": worker.sampler.peak_sequences, "max_loras": worker.sampler.max_loras})
        worker.close()  # an interrupted bench: the engine's end stops the threads' runs where they are
        for t in threads:
            t.join(timeout=30)
        record_timing(bench, time.monotonic() - t0, 0.0 if t_runs is None else time.monotonic() - t_runs, worker.load_s)
    if failed and failed[0] is not None:
        raise failed[0]  # its own type: a sandbox failure is exit 3, as in a bench of one worker
    on_event("bench_done", {"stopped": stopped})
    return stopped


def _retry(run_id: str, tries: dict[str, int], on_event: EventSink) -> None:
    tries[run_id] = tries.get(run_id, 0) + 1
    if tries[run_id] >= MAX_TRIES:
        raise BenchError(f"run {run_id}: its worker died {tries[run_id]} times; the run is saved (resumable) — "
                         "look at its log, then continue with --resume")
    on_event("warning", {"message": f"the worker of run {run_id} died; the run continues from its directory on "
                                    f"another worker (try {tries[run_id] + 1} of {MAX_TRIES})"})


def _summary(d: dict[str, Any]) -> Any:
    from .store import Summary

    return Summary(**d)


# ---------------------------------------------------------------------------------------------
# Ray


def connect_ray(address: str) -> Any:
    """ray.init(address); RayUnavailable (exit 3) with what to check when it cannot connect."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray-address needs Ray: pip install 'sdpo-discover[ray]' (or pip install ray)") from None
    hint = ("Check that the head node runs (`ray status` on it), that ADDRESS is its host:port (default port 6379; "
            "`auto` finds one started on this machine with `ray start --head`), and that this machine's Ray and "
            "Python versions match the cluster's")
    if address not in ("auto", "local") and not address.startswith("ray://"):
        import socket

        host, _, port = address.rpartition(":")
        try:  # ray.init itself retries an unreachable address for minutes: ask the port first
            socket.create_connection((host or address, int(port) if port.isdigit() else 6379), timeout=5).close()
        except (OSError, ValueError) as e:
            raise RayUnavailable(f"cannot reach a Ray cluster at {address!r}: {e}. {hint}") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level="ERROR")
    except Exception as e:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ValueError, ... for this
        raise RayUnavailable(f"cannot reach a Ray cluster at {address!r}: {type(e).__name__}: {e}. {hint}") from None
    return ray


def run_ray(bench: BenchDir, plan: Plan, address: str, *, workers: int | None = None, num_cpus: float = 1,
            num_gpus: float = 0, on_event: EventSink = lambda k, p: None) -> str:
    """The plan's unfinished runs as tasks on Ray actors (bench.RunWorker, one model load each), each asking for
    num_cpus / num_gpus; a run whose actor died is retried (resuming from its directory) up to MAX_TRIES."""
    ray = connect_ray(address)
    from .bench import RunWorker

    todo = [r for r in plan.runs if not bench.finished(r)]
    on_event("bench_start", {"plan": plan, "todo": len(todo), "total": len(plan.runs)})
    t0 = time.monotonic()
    if workers is None:  # as many as the cluster holds at once
        res = ray.cluster_resources()
        fit = [res.get("CPU", 1) / max(num_cpus, 1e-9)] + ([res.get("GPU", 0) / num_gpus] if num_gpus else [])
        workers = max(1, int(min(fit)))
    Actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=-1, max_task_retries=0)(RunWorker)
    actors = [Actor.remote(str(bench.path)) for _ in range(max(1, min(workers, len(todo))))]
    pending: dict[Any, tuple[Any, PlannedRun]] = {}
    queue = list(todo)
    tries: dict[str, int] = {}
    by_index = {r.id: i for i, r in enumerate(plan.runs)}

    lost = (ray.exceptions.RayActorError, getattr(ray.exceptions, "ActorUnavailableError", ray.exceptions.RayActorError))

    def submit(actor: Any) -> None:
        run = queue.pop(0)
        for _ in range(600):  # a restarting actor (its process died) answers once its constructor ran again
            try:
                pid = ray.get(actor.pid.remote())
                break
            except lost:
                time.sleep(0.5)
        else:
            raise BenchError(f"a Ray worker did not come back after it died; run {run.id} is saved (resumable)")
        on_event("run_start", {"run": run, "index": by_index[run.id], "total": len(plan.runs), "resumed": False,
                               "worker": pid})
        pending[actor.run_by_id.remote(run.id)] = (actor, run)

    stopped = "done"
    try:
        for a in actors:
            if queue:
                submit(a)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            actor, run = pending.pop(ref)
            try:
                summary = ray.get(ref)
            except lost:  # the actor's process died: Ray restarts it (max_restarts), the run goes back in the queue
                _retry(run.id, tries, on_event)
                queue.insert(0, run)
            except ray.exceptions.RayTaskError as e:
                raise BenchError(f"run {run.id} failed on its Ray worker: {e.cause if hasattr(e, 'cause') else e}") from None
            else:
                on_event("run_done", {"run": run, "summary": _summary(summary)})
            if queue:
                submit(actor)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        for a in actors:
            ray.kill(a)  # an interrupted run resumes from its directory with --resume
        record_timing(bench, time.monotonic() - t0, time.monotonic() - t0, 0.0)
    on_event("bench_done", {"stopped": stopped})
    return stopped
