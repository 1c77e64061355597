#!/usr/bin/env python3
"""The SDPO update's cost: wall time and peak memory of one step, against generating the same batch.

    python3 bench/learner.py [--models smollm2-135m,qwen2.5-coder-0.5b] [--batch 16] [--tokens 256]
                             [--reps N] [--quick] [--max-gib 14] [--no-vllm] [--no-live]

One update = one `SDPOLearner`-style step (teacher forward, student forward + backward, AdamW) on a
batch of --batch attempts of exactly --tokens response tokens each, on a fresh LoRA (r 8, all linear
layers, seed 0), in --dtype (auto: float32 on a CPU without native bf16). The student prompt is
problems/second-largest.json through the chat template; the teacher context adds a judge's
wrong-answer feedback (the reprompt of docs/reference/SDPO.md section 3). Responses are random ordinary token ids:
the cost of a step does not depend on them.

  optimised        SDPOLearner.step as shipped: the shared prompt run once (its cache broadcast over the
                   batch), hidden states only at response positions, lm_head applied in chunks of
                   logit_chunk positions, top-K 20, micro-batches of 4 sorted by length
  naive            one forward of the whole batch per model with full logits model(ids).logits
                   (B, T, V) at every position, response rows sliced out, the same sdpo_loss (top-K 20,
                   so the loss is identical: only where logits are computed differs), one backward
  naive, micro-batched   (--naive-mb) the same, but in micro-batches of 4 like the optimised path

Tensor memory (unless --no-live): the peak bytes of live tensor storage during one step, above the
loaded model, LoRA and optimizer (live_tensor_bytes: what torch.cuda.max_memory_allocated counts on a
GPU). The optimised step is measured on real tensors. The naive whole-batch step does not fit in this
machine, so it runs on FakeTensors (the same operators and shapes, no data); at --check-batch, where it
fits, it runs both ways, and the two counts must agree within 5% for the fake count to be trusted.

Every measurement runs in a fresh subprocess. Peak memory: the process's peak RSS is reset
(/proc/self/clear_refs) once the model, the LoRA and the optimizer exist; "peak" is
getrusage(RUSAGE_SELF).ru_maxrss after the steps, "+ over loaded" is that minus the RSS at the reset.
A watchdog kills any subprocess whose RSS passes --max-gib: a naive whole-batch step that does not fit
is reported as "> LIMIT", and the memory ratio as the lower bound LIMIT / optimised peak. Wall time:
median of --reps steps (each a real step: the adapter changes between them).

Generation of the same batch: HFSampler.generate(prompt, n=batch, max_new_tokens=tokens) at the
preset's temperature/top-p, with stop tokens disabled so every sample is exactly --tokens long; the
policy is the same peft model with its fresh adapter. vLLM (when its venv exists): VLLMSampler with
the fresh adapter as a LoRARequest; its worker cannot ignore stop tokens, so samples may end early:
the table gives the tokens it produced and the time scaled to batch x tokens at its measured rate.

Targets (issue 3): peak memory at least 3x lower on the optimised path than the naive one (tensor
memory; peak RSS too, where the naive step finishes or its lower bound already shows it); the update
at most 1x the HF generation time of its batch. Exits 1 when a target is missed. Timings on a shared
machine vary; the table states the host.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBLEM = ROOT / "problems" / "second-largest.json"
WRONG = ROOT / "problems" / "wrong" / "second-largest.py"
MICRO = 4  # the micro-batch of the optimised path (SDPOConfig.micro_batch_size) and of "naive, micro-batched"
GIB = 1024**3


# -- in the worker subprocess --------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM, and ru_maxrss with it) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _feedback() -> str:
    """Real judge feedback: the plausible wrong solution of the problem, graded in the local sandbox."""
    from sdpo_discover.feedback import render_feedback
    from sdpo_discover.problems import load_problem
    from sdpo_discover.sandbox import grade_code, make_executor

    problem = load_problem(PROBLEM)
    ex = make_executor("local")
    try:
        return render_feedback(problem, grade_code(problem, WRONG.read_text(), ex)) or "Wrong Answer"
    finally:
        ex.close()


def pick_dtype(dtype: str) -> str:
    """'auto': what the project loads models in on this CPU (models.resolve_dtype)."""
    from sdpo_discover.models import resolve_dtype

    return resolve_dtype(dtype, "cpu")


def _load(model_name: str, dtype: str, seed: int = 0) -> tuple[Any, Any, Any]:
    import torch

    from sdpo_discover.models import load_model, resolve_model
    from sdpo_discover.sdpo import SDPOConfig, attach_lora

    resolved = resolve_model(model_name)
    model, tok = load_model(resolved, device="cpu", dtype=dtype)
    torch.manual_seed(seed)  # the same initial adapter in every subprocess
    return attach_lora(model, SDPOConfig()), tok, resolved


def _batch(tok: Any, batch: int, tokens: int, feedback: str, seed: int = 0) -> list[Any]:
    import torch

    from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
    from sdpo_discover.problems import load_problem
    from sdpo_discover.sdpo import Rollout, SDPOConfig

    q = question_prompt(load_problem(PROBLEM))
    x = chat_prompt_ids(tok, q, SYSTEM_MESSAGE)  # the student's context
    # The teacher's: a distinct feedback per attempt (the worst case: the learner runs each distinct
    # context once, so shared feedback would make the step cheaper than a real batch's).
    ctx = [chat_prompt_ids(tok, teacher_message(q, f"{feedback} (attempt {i + 1:02d})", None, SDPOConfig.restate_format), SYSTEM_MESSAGE)
           for i in range(batch)]
    special = set(tok.all_special_ids)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        ids = torch.randint(0, len(tok), (tokens * 2,), generator=g).tolist()
        out.append(Rollout(x, [t for t in ids if t not in special][:tokens], ctx[len(out)]))
    return out


def _mask(att: Any, ctxs: list[list[int]], resps: list[list[int]]) -> Any:
    """No padding mask when no sequence is padded. transformers then runs causal attention without building a
    (B, 1, T, T) mask; with one, it also builds it for FakeTensors (whose values it cannot inspect) and
    repeats K/V per head, so the fake and the real step would take different paths."""
    return None if len({len(c) + len(r) for c, r in zip(ctxs, resps)}) == 1 else att


def naive_step(learner: Any, rollouts: list[Any], micro: int | None = None,
               fake: bool = False) -> tuple[float, float]:
    """The reference path: full logits (B, T, V) at every position of whole sequences, then the same
    sdpo_loss on the response rows, one backward (per micro-batch when `micro`), one AdamW step.
    Returns (loss, grad_norm). fake: the tensors are FakeTensors (shapes, no data): stop after the
    backward (AdamW cannot step real weights with fake gradients; its LoRA state is a few MiB) -> (nan, nan)."""
    import torch

    from sdpo_discover.sdpo import _pad, sdpo_loss

    cfg, model, pad = learner.cfg, learner.model, learner.pad_id
    learner.opt.zero_grad(set_to_none=True)
    n_tok = float(sum(len(r.response_ids) for r in rollouts))
    size = micro or len(rollouts)
    total: Any = 0.0

    def rows(logits: torch.Tensor, ctxs: list[list[int]], resps: list[list[int]]) -> torch.Tensor:
        # y_j is predicted at position len(c) - 1 + j
        return torch.cat([logits[i, len(c) - 1 : len(c) - 1 + len(r)] for i, (c, r) in enumerate(zip(ctxs, resps))])  # (N, V)

    for mb in range(0, len(rollouts), size):
        rs = rollouts[mb : mb + size]
        resp = [r.response_ids for r in rs]
        t_ctx, s_ctx = [r.teacher_prompt_ids for r in rs], [r.prompt_ids for r in rs]
        # Teacher first (as SDPOLearner.step): swapping its weights must not touch tensors the student's graph saved.
        model.eval()
        with torch.no_grad(), learner.teacher.weights():
            ids, att = _pad([c + r for c, r in zip(t_ctx, resp)], pad)  # (B, T')
            t_logits = rows(model(input_ids=ids, attention_mask=_mask(att, t_ctx, resp)).logits, t_ctx, resp)  # (B, T', V) -> (N, V)
        model.train()
        ids, att = _pad([c + r for c, r in zip(s_ctx, resp)], pad)  # (B, T)
        full = model(input_ids=ids, attention_mask=_mask(att, s_ctx, resp)).logits  # (B, T, V): every position, whole vocabulary
        s_logits = rows(full, s_ctx, resp)  # (N, V)
        targets = torch.tensor([t for r in resp for t in r])  # (N,)
        loss, _ = sdpo_loss(s_logits, t_logits, targets, torch.ones_like(targets), alpha=cfg.alpha, top_k=cfg.top_k,
                            tail=cfg.tail_bucket, temperature=cfg.temperature, is_clip=cfg.is_clip,
                            adv_clip=cfg.adv_clip, norm=n_tok, any_masked=False)  # a FakeTensor mask has no value
        loss.backward()
        total = total + loss.detach()  # no float() here: a FakeTensor has no value
        del full, s_logits, t_logits, loss
    if fake:
        return float("nan"), float("nan")
    gn = torch.nn.utils.clip_grad_norm_(learner.params, cfg.grad_clip)
    learner.opt.step()
    learner.teacher.update()
    model.eval()
    return float(total), float(gn)


def live_tensor_bytes() -> Any:
    """A TorchDispatchMode measuring the peak bytes of live tensor storage created inside its block: what
    torch.cuda.max_memory_allocated counts on a GPU (after reset_peak_memory_stats), here on a CPU, and for
    FakeTensors too (`.peak`).

    Every tensor an operator returns is counted once per storage until the storage is freed; views and
    in-place results (which share an input's storage) and tensors made before the block (weights, the
    LoRA, optimizer state) are not counted. Not seen: scratch memory an operator allocates and frees
    inside its own kernel, and what the allocator keeps after a free (RSS counts both)."""
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.weak import WeakIdKeyDictionary

    class LiveTensorBytes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live: Any = WeakIdKeyDictionary()  # storage -> weakref whose callback subtracts its bytes
            self.now = self.peak = 0

        def _freed(self, nbytes: int) -> None:
            self.now -= nbytes

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if func.is_view:  # a view never allocates (and of a weight FakeTensorMode converts, looks new)
                return out
            ins = {x.untyped_storage()._cdata for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)}
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    if st._cdata not in ins and st not in self.live:  # in-place results reuse an input's storage
                        n = st.nbytes()
                        self.live[st] = weakref.ref(st, lambda _, n=n: self._freed(n))
                        self.now += n
            self.peak = max(self.peak, self.now)
            return out

    return LiveTensorBytes()


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    mode, reps = spec["mode"], spec["reps"]
    model, tok, resolved = _load(spec["model"], spec["dtype"])
    if mode.startswith("gen-"):
        return _generate(mode, model, tok, resolved, spec)
    from sdpo_discover.sdpo import SDPOConfig, SDPOLearner

    rollouts = _batch(tok, spec["batch"], spec["tokens"], spec["feedback"])
    cfg = SDPOConfig(micro_batch_size=MICRO, gradient_checkpointing=mode == "optimised-gc")
    learner = SDPOLearner(model, cfg, pad_id=tok.pad_token_id)
    if mode.startswith("live-"):
        return _live(mode, learner, rollouts)
    loaded_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    times, first = [], None
    for _ in range(reps):
        t = time.perf_counter()
        if mode.startswith("optimised"):
            st = learner.step(rollouts)
            out = (st.loss, st.grad_norm)
        else:
            out = naive_step(learner, rollouts, MICRO if mode == "naive-mb" else None)
        times.append(time.perf_counter() - t)
        first = first or out
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"time_s": statistics.median(times), "times_s": times, "peak_gib": peak_kib / 2**20,
            "loaded_gib": loaded_kib / 2**20, "peak_reset": reset, "loss": first[0], "grad_norm": first[1],
            "threads": torch.get_num_threads(), "load": os.getloadavg()[0]}


def _live(mode: str, learner: Any, rollouts: list[Any]) -> dict[str, Any]:
    """Peak live tensor bytes of one step (live_tensor_bytes), above the loaded model, LoRA and optimizer.

    live-optimised    SDPOLearner.step, real tensors
    live-naive        naive_step, real tensors (only where it fits: the check of live-naive-fake)
    live-naive-fake   naive_step on FakeTensors: the same operators and shapes, no data, so a batch whose
                      real step cannot fit in this machine is measured as it would allocate
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    t = time.perf_counter()
    tracker = live_tensor_bytes()
    if mode == "live-naive-fake":
        # Only the step's own tensors are fake: the weights stay real and are converted as they are read.
        with FakeTensorMode(allow_non_fake_inputs=True), tracker:
            naive_step(learner, rollouts, fake=True)
    else:
        with tracker:
            if mode == "live-optimised":
                learner.step(rollouts)
            else:
                naive_step(learner, rollouts)
    return {"time_s": time.perf_counter() - t, "live_peak_gib": tracker.peak / GIB, "load": os.getloadavg()[0]}


def _generate(mode: str, model: Any, tok: Any, resolved: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt
    from sdpo_discover.problems import load_problem
    from sdpo_discover.samplers import HFSampler, SamplingParams, VLLMSampler

    preset = resolved.preset
    params = SamplingParams(max_new_tokens=spec["tokens"], temperature=preset.temperature if preset else 0.7,
                            top_p=preset.top_p if preset else 0.95)
    prompt = chat_prompt_ids(tok, question_prompt(load_problem(PROBLEM)), SYSTEM_MESSAGE)
    n, times, toks = spec["batch"], [], []
    if mode == "gen-hf":
        sampler = HFSampler(model, tok)
        sampler.stop_ids = [len(tok) + 1000]  # an id no sample can produce: every sample runs to max_new_tokens
        for rep in range(spec["reps"]):
            t = time.perf_counter()
            out = sampler.generate(prompt, n=n, params=params, seed=rep)
            times.append(time.perf_counter() - t)
            toks.append(sum(len(c.token_ids) for c in out))
        return {"time_s": statistics.median(times), "times_s": times, "tokens": toks, "sampler_batch": sampler.batch_size,
                "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-learner-") as tmp:
        model.save_pretrained(tmp)  # the fresh adapter: the solve loop samples through one from step 1 on
        del model
        with VLLMSampler(resolved.path, max_model_len=1024, kv_cache_gib=2.0, device="cpu", dtype=spec["dtype"],
                         start_timeout_s=600,
                         generate_timeout_s=900) as sampler:
            sampler.load_adapter(tmp, 1)
            sampler.generate(prompt, n=2, params=SamplingParams(max_new_tokens=8), seed=99)  # warm-up
            for rep in range(spec["reps"]):
                t = time.perf_counter()
                out = sampler.generate(prompt, n=n, params=params, seed=rep)
                times.append(time.perf_counter() - t)
                toks.append(sum(len(c.token_ids) for c in out))
            start = sampler.start_seconds
    rate = sum(toks) / sum(times)  # tokens/s
    return {"time_s": statistics.median(times), "times_s": times, "tokens": toks, "start_s": start,
            "scaled_s": n * spec["tokens"] / rate, "tok_per_s": rate, "load": os.getloadavg()[0]}


# -- in the parent -------------------------------------------------------------------------------


def run_worker(spec: dict[str, Any], max_gib: float, store: Path | None = None, measure: bool = True) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; kill it if its RSS passes max_gib.

    With `store` (a JSON file), a measurement already there under the same spec is reused, and new
    ones are added: a long run can be resumed, and the table printed again without measuring."""
    key = json.dumps({k: v for k, v in spec.items() if k != "feedback"}, sort_keys=True)
    saved = json.loads(store.read_text()) if store and store.is_file() else {}
    if key in saved:
        return saved[key]
    if not measure:
        return {"error": "not measured"}
    result = _run_worker(spec, max_gib)
    if store and "time_s" in result:
        saved = json.loads(store.read_text()) if store.is_file() else {}
        saved[key] = result
        store.write_text(json.dumps(saved, indent=1))
    return result


def _run_worker(spec: dict[str, Any], max_gib: float) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    peak = 0.0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 2**20
        except (OSError, StopIteration):
            rss = 0.0
        peak = max(peak, rss)
        if rss > max_gib:
            proc.kill()
            proc.wait()
            return {"killed": f"killed when its RSS passed {max_gib:g} GiB", "peak_at_least_gib": max_gib}
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0 or not out.strip():
        return {"error": f"exit {proc.returncode}"}
    return json.loads(out.strip().splitlines()[-1])


FEEDBACK = ""  # filled in by main() (the sandbox runs once, not in every subprocess)


def main() -> int:
    global FEEDBACK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b", help="comma-separated presets or paths")
    ap.add_argument("--batch", type=int, default=16, help="attempts per update (default 16)")
    ap.add_argument("--tokens", type=int, default=256, help="response tokens per attempt (default 256)")
    ap.add_argument("--reps", type=int, default=1, help="steps (and generations) per measurement; the median is reported (default 1)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float32"),
                    help="weights' dtype; auto = bfloat16 on CPUs with native bf16, else float32")
    ap.add_argument("--naive-mb", action="store_true", help=f"also measure the naive path in micro-batches of {MICRO}")
    ap.add_argument("--gc", action="store_true",
                    help="also measure the optimised path with gradient_checkpointing=True")
    ap.add_argument("--no-live", action="store_true", help="skip the live-tensor-bytes measurements")
    ap.add_argument("--check-batch", type=int, default=2,
                    help="batch at which the naive step runs both on real tensors and on FakeTensors, to check that the "
                         "two count the same bytes (default 2)")
    ap.add_argument("--quick", action="store_true", help="smollm2-135m only, no vLLM")
    ap.add_argument("--max-gib", type=float, default=14.0, help="kill any measurement whose RSS passes this (default 14)")
    ap.add_argument("--no-vllm", action="store_true", help="skip the vLLM generation")
    ap.add_argument("--store", type=Path, default=None,
                    help="JSON file of measurements: reuse those already there (same settings), add new ones")
    ap.add_argument("--table-only", action="store_true", help="print the tables from --store; measure nothing")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.models, args.no_vllm = "smollm2-135m", True

    from sdpo_discover.samplers import vllm_available

    FEEDBACK = _feedback()
    dtype = args.dtype = pick_dtype(args.dtype)
    vllm_ok, why = (False, "--no-vllm") if args.no_vllm else vllm_available()
    B, R = args.batch, args.tokens
    results: dict[str, dict[str, Any]] = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        reps = args.reps
        res: dict[str, Any] = {"reps": reps}

        def measure(key: str, mode: str, batch: int) -> None:
            print(f"[{name}] {key} (batch {batch}, {reps} rep(s)) ...", file=sys.stderr, flush=True)
            spec = {"mode": mode, "model": name, "batch": batch, "tokens": R, "reps": reps if mode[:5] != "live-" else 1,
                    "feedback": FEEDBACK, "dtype": dtype}
            res[key] = run_worker(spec, args.max_gib, args.store, not args.table_only)
            print(f"[{name}] {key}: {res[key]}", file=sys.stderr, flush=True)

        measure("optimised", "optimised", B)
        # The naive whole-batch step usually cannot fit (Qwen's full logits alone: ~17 GiB): the watchdog kills it
        # when its RSS passes --max-gib, which measures a lower bound of its peak.
        measure("naive", "naive", B)
        if args.gc:
            measure("optimised-gc", "optimised-gc", B)
        if args.naive_mb:
            measure("naive-mb", "naive-mb", B)
        if not args.no_live:  # the tensor memory of one step, as a GPU's allocator counts it
            measure("live-optimised", "live-optimised", B)
            measure("live-naive-fake", "live-naive-fake", B)
            measure("check-real", "live-naive", args.check_batch)
            measure("check-fake", "live-naive-fake", args.check_batch)
        measure("gen-hf", "gen-hf", B)
        if vllm_ok:
            measure("gen-vllm", "gen-vllm", B)
        results[name] = res
    return report(results, args, vllm_ok, why)


def _load_avg(r: dict[str, Any]) -> str:
    """The 1-minute load average when the measurement ended (2 cores: above 2, others were running)."""
    return f"{r['load']:.1f}" if "load" in r else "-"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, vllm_ok: bool, why: str) -> int:
    import torch

    B, R = args.batch, args.tokens
    print(f"\nSDPO learner benchmark: one update on {B} attempts x {R} response tokens, LoRA r8 (all linear layers), "
          f"{args.dtype}, {args.reps} rep(s), micro-batch {MICRO}, top-K 20.")
    print(f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs (shared with other "
          f"jobs), torch {torch.__version__}, Python {platform.python_version()}\n")
    print("| model | path | batch | wall time (s) | peak RSS (GiB) | + over loaded model (GiB) | loss | load | note |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    labels = {"optimised": "optimised (SDPOLearner.step)", "naive": "naive, whole batch", "naive-mb": f"naive, micro-batches of {MICRO}",
              "optimised-gc": "optimised + gradient_checkpointing"}
    for name, res in results.items():
        for key in ("optimised", "naive", "optimised-gc", "naive-mb"):
            if key not in res:
                continue
            r = res[key]
            note = r.get("killed") or r.get("error") or ""
            if "time_s" in r:
                inc = r["peak_gib"] - r["loaded_gib"]
                print(f"| {name} | {labels[key]} | {B} | {r['time_s']:.1f} | {r['peak_gib']:.2f} | {inc:.2f} | "
                      f"{r['loss']:.4f} | {_load_avg(r)} | {note} |")
            elif "peak_at_least_gib" in r:
                print(f"| {name} | {labels[key]} | {B} | - | > {r['peak_at_least_gib']:g} | - | - | - | {note} |")
            else:
                print(f"| {name} | {labels[key]} | {B} | - | - | - | - | - | {note} |")

    if not args.no_live:
        print("\n| model | tensor memory of one step (live bytes, what a GPU's max_memory_allocated counts) | batch "
              "| peak (GiB) | measured on |")
        print("|---|---|---:|---:|---|")
        rows = (("live-optimised", "optimised (SDPOLearner.step)", B, "real tensors"),
                ("live-naive-fake", "naive, whole batch", B, "FakeTensors (shapes only: it does not fit here)"),
                ("check-real", "naive, whole batch (check)", args.check_batch, "real tensors"),
                ("check-fake", "naive, whole batch (check)", args.check_batch, "FakeTensors"))
        for name, res in results.items():
            for key, label, b, how in rows:
                r = res.get(key, {})
                val = f"{r['live_peak_gib']:.2f}" if "live_peak_gib" in r else (r.get("killed") or r.get("error") or "-")
                print(f"| {name} | {label} | {b} | {val} | {how} |")

    print("\n| model | generation of the same batch | wall time (s) | tokens | update / generation | load |")
    print("|---|---|---:|---:|---:|---:|")
    for name, res in results.items():
        upd = res["optimised"].get("time_s")
        g = res.get("gen-hf", {})
        if "time_s" in g:
            ratio = f"{upd / g['time_s']:.2f}x" if upd else "-"
            print(f"| {name} | hf (HFSampler, batches of {g['sampler_batch']}, stop tokens off) | {g['time_s']:.1f} | "
                  f"{statistics.median(g['tokens']):.0f} | {ratio} | {_load_avg(g)} |")
        elif g:
            print(f"| {name} | hf | {g.get('killed') or g.get('error')} | - | - | - |")
        v = res.get("gen-vllm")
        if v and "time_s" in v:
            ratio = f"{upd / v['scaled_s']:.2f}x" if upd else "-"
            print(f"| {name} | vllm (VLLMSampler + LoRA; engine start {v['start_s']:.0f} s) | {v['time_s']:.1f} "
                  f"(scaled to {B}x{R}: {v['scaled_s']:.1f}) | {statistics.median(v['tokens']):.0f} | {ratio} | {_load_avg(v)} |")
        elif v:
            print(f"| {name} | vllm | {v.get('killed') or v.get('error')} | - | - | - |")
        else:
            print(f"| {name} | vllm | n/a ({'no vLLM venv' if not args.no_vllm else '--no-vllm'}) | - | - | - |")

    ok = True
    print("\n| model | target | value | target | met |")
    print("|---|---|---:|---:|:---:|")
    for name, res in results.items():
        nv, op = res.get("naive", {}), res.get("optimised", {})
        if "peak_gib" in op and ("peak_gib" in nv or "peak_at_least_gib" in nv):
            ratio = nv.get("peak_gib", nv.get("peak_at_least_gib", 0.0)) / op["peak_gib"]
            bound = "" if "peak_gib" in nv else ">= "  # killed: its peak is at least the limit
            met = ratio >= 3.0
            # A lower bound under the target shows nothing either way: the naive path could not finish here.
            verdict = "yes" if met else ("not shown (bound)" if bound else "NO")
            ok &= met or bool(bound)
            print(f"| {name} | peak RSS naive / optimised (batch {B}) | {bound}{ratio:.2f}x | >= 3x | {verdict} |")
        lo, lf, cr, cf = (res.get(k, {}).get("live_peak_gib") for k in ("live-optimised", "live-naive-fake",
                                                                          "check-real", "check-fake"))
        if lo and lf and cr and cf:
            agree = abs(cf - cr) / cr  # FakeTensors must count what real tensors count, where both can run
            print(f"| {name} | FakeTensor count vs real (naive, batch {args.check_batch}) | {100 * agree:.1f}% apart "
                  f"| <= 5% | {'yes' if agree <= 0.05 else 'NO'} |")
            ratio = lf / lo
            met = ratio >= 3.0 and agree <= 0.05
            ok &= met
            print(f"| {name} | peak tensor memory naive / optimised (batch {B}) | {ratio:.2f}x | >= 3x | "
                  f"{'yes' if met else 'NO'} |")
        g, upd = res.get("gen-hf", {}), res.get("optimised", {})
        if "time_s" in g and "time_s" in upd:
            ratio = upd["time_s"] / g["time_s"]
            met = ratio <= 1.0
            ok &= met
            print(f"| {name} | update / hf generation (batch {B}) | {ratio:.2f}x | <= 1x | {'yes' if met else 'NO'} |")
    if not vllm_ok:
        print(f"\nvLLM: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
