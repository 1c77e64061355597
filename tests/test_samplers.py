"""Samplers on a tiny random Llama made here (2 layers, hidden 64, a character-level tokenizer).

HFSampler runs in-process. VLLMSampler tests (marker `vllm`) need the venv of scripts/setup-vllm: in CI
(CI=true) its absence is a failure; elsewhere they are skipped with a loud reason. The engine starts
once for the module (fixture `vllm_sampler`).

Adapters: LoRA r=8 on every projection, trained with a high learning rate on one fixed continuation
until the continuation holds nearly all the probability (so that even samples at temperature 1 equal it).
"""

from __future__ import annotations

import json
import math
import os
import signal
import string
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import conftest

from conftest import require
import torch

from sdpo_discover.samplers import (
    Completion,
    HFSampler,
    SamplerError,
    SamplingParams,
    VLLMSampler,
    VLLMUnavailableError,
    vllm_available,
    vllm_venv_path,
)

# peft 0.21 reads a property transformers 5.23 deprecated: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
TARGETS = ["loratarget modules", "adapter version two"]  # what adapters 1 and 2 are trained to say
PROMPT = "Q: say it\nA: "
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --------------------------------------------------------------------------------------------------
# The tiny model, its tokenizer and adapters
# --------------------------------------------------------------------------------------------------


def make_tokenizer():
    """Character-level: <pad>=0, <|im_end|>=1 (eos), <unk>=2, then printable ASCII."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<|im_end|>": 1, "<unk>": 2}
    for ch in sorted(set(string.printable) - set("\t\r\x0b\x0c")):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", unk_token="<unk>")


def make_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    # vLLM's CPU attention takes head sizes 32, 64, 80, ...: hidden 64 / 2 heads = 32.
    config = LlamaConfig(
        vocab_size=128,  # > the tokenizer's 98 entries: ids past it decode to nothing
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=False,
        # The default 0.02 caps every logit near +-1.3 (frozen lm_head rows times a normalised hidden
        # state): no LoRA could then make a continuation near-certain. 0.3 leaves ~3 nats of entropy.
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


@dataclass
class Tiny:
    dir: Path  # base model + tokenizer, as vLLM loads it
    tokenizer: object
    prompt_ids: list[int]
    adapters: list[Path]  # trained on TARGETS[i]
    target_ids: list[list[int]]  # TARGETS[i] tokenised, then eos
    random_adapter: Path  # LoRA with random A and B: moves every logit, peaks nothing


def load_peft(tiny: Tiny, folder: Path | None = None):
    """The base model from disk with a LoRA on top: fresh (B = 0, equal to the base) or from a folder."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny.dir, dtype=torch.float32)
    if folder is not None:
        return PeftModel.from_pretrained(base, folder).eval()
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, lora_dropout=0.0)).eval()


def train_adapter(model_dir: Path, prompt_ids: list[int], target_ids: list[int], out: Path,
                  nll: float = 0.005) -> None:
    """Train a fresh LoRA until the target continuation has probability > exp(-nll) (0.995), then save it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, lora_dropout=0.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.tensor([prompt_ids + target_ids])  # (1, P + T)
    labels = ids.clone()
    labels[:, : len(prompt_ids)] = -100
    for _ in range(400):
        loss = model(input_ids=ids, labels=labels).loss  # mean NLL over the T target tokens
        if loss.item() * len(target_ids) < nll:  # sequence probability > exp(-nll)
            break
        loss.backward()
        opt.step()
        opt.zero_grad()
    else:
        raise AssertionError(f"the adapter did not learn its target (loss {loss.item():.4f})")
    model.save_pretrained(out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = make_tokenizer()
    model = make_model()
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    prompt_ids = tokenizer(PROMPT).input_ids
    target_ids = [tokenizer(t).input_ids + [tokenizer.eos_token_id] for t in TARGETS]
    adapters = []
    for i, ids in enumerate(target_ids, start=1):
        train_adapter(root / "model", prompt_ids, ids, root / f"adapter-{i}")
        adapters.append(root / f"adapter-{i}")
    torch.manual_seed(2)
    rnd = get_peft_model(
        make_model(), LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, init_lora_weights=False)
    )
    rnd.save_pretrained(root / "adapter-random")
    return Tiny(root / "model", tokenizer, prompt_ids, adapters, target_ids, root / "adapter-random")


def forward_logprobs(model, prompt_ids: list[int], ids: list[int]) -> list[float]:
    """log p(ids[t] | prompt, ids[:t]) by one forward pass (fp32): the reference for samplers' logprobs."""
    with torch.inference_mode():
        x = torch.tensor([prompt_ids + ids])  # (1, P + T)
        logits = model(input_ids=x).logits[0, len(prompt_ids) - 1 : -1].float()  # (T, V)
        return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids)[:, None])[:, 0].tolist()  # (T,)


def check_consistent(c: Completion, tokenizer, max_new_tokens: int) -> None:
    assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
    assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
    assert all(lp <= 1e-4 for lp in c.logprobs)
    eos = tokenizer.eos_token_id
    assert eos not in c.token_ids[:-1]  # nothing kept after a stop token
    if c.truncated:
        assert len(c.token_ids) == max_new_tokens and c.token_ids[-1] != eos
    else:
        assert c.token_ids[-1] == eos and len(c.token_ids) <= max_new_tokens


# --------------------------------------------------------------------------------------------------
# SamplingParams
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", 2.5),
        ("temperature", -0.1),
        ("temperature", math.nan),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_k", -1),
        ("top_k", True),
    ],
)
def test_sampling_params_validation_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ValueError) as err:
        SamplingParams(**{field: value})
    assert f"SamplingParams.{field}" in str(err.value) and repr(value) in str(err.value)


def test_sampling_params_defaults() -> None:
    p = SamplingParams()
    assert (p.max_new_tokens, p.temperature, p.top_p, p.top_k, p.greedy) == (1024, 1.0, 1.0, 0, False)
    assert SamplingParams(temperature=0).greedy


# --------------------------------------------------------------------------------------------------
# HFSampler
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf(tiny: Tiny) -> HFSampler:
    return HFSampler(load_peft(tiny), tiny.tokenizer, batch_size=3)


def test_hf_n_completions_consistent_and_seeded(hf: HFSampler, tiny: Tiny) -> None:
    params = SamplingParams(max_new_tokens=24, temperature=1.0)
    a = hf.generate([tiny.prompt_ids] * 7, params, seed=11)  # 3 batches: 3 + 3 + 1
    assert len(a) == 7
    for c in a:
        check_consistent(c, tiny.tokenizer, 24)
    assert len({tuple(c.token_ids) for c in a}) == 7  # a near-uniform model: all different
    b = hf.generate([tiny.prompt_ids] * 7, params, seed=11)
    assert [c.token_ids for c in b] == [c.token_ids for c in a]
    assert [c.text for c in b] == [c.text for c in a]
    c = hf.generate([tiny.prompt_ids] * 7, params, seed=12)
    assert [x.token_ids for x in c] != [x.token_ids for x in a]


def test_hf_seed_leaves_callers_rng_and_training_mode(hf: HFSampler, tiny: Tiny) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    hf.model.train()
    try:
        hf.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=4), seed=0)
        assert hf.model.training
    finally:
        hf.model.eval()
    assert torch.equal(torch.get_rng_state(), state)


def test_hf_logprobs_are_raw_model_logprobs(hf: HFSampler, tiny: Tiny) -> None:
    """At temperature 0.5 and top-k 5 the recorded log-probs are still those of the raw model (T = 1)."""
    for c in hf.generate([tiny.prompt_ids] * 3, SamplingParams(max_new_tokens=10, temperature=0.5, top_k=5), seed=3):
        ref = forward_logprobs(hf.model, tiny.prompt_ids, c.token_ids)
        assert c.logprobs == pytest.approx(ref, abs=1e-4)


def test_hf_truncation_and_eos_stripping(tiny: Tiny) -> None:
    hf = HFSampler(load_peft(tiny), tiny.tokenizer)
    hf.load_adapter(tiny.adapters[0], 1)
    target = tiny.target_ids[0]
    full = hf.generate([tiny.prompt_ids] * 4, SamplingParams(max_new_tokens=len(target) + 10), seed=0)
    for c in full:  # stopped on eos: kept as the last id, nothing after it, not in the text
        assert c.token_ids == target and not c.truncated and c.text == TARGETS[0]
        check_consistent(c, tiny.tokenizer, len(target) + 10)
    short = hf.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=5), seed=0)
    for c in short:
        assert c.truncated and c.token_ids == target[:5] and c.text == TARGETS[0][:5]
    exact = hf.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=len(target)), seed=0)[0]
    assert not exact.truncated and exact.token_ids == target  # eos as the very last allowed token


def test_hf_left_padding_batches_prompts_of_different_lengths(tiny: Tiny) -> None:
    hf = HFSampler(load_peft(tiny, tiny.random_adapter), tiny.tokenizer)
    greedy = SamplingParams(max_new_tokens=12, temperature=0)
    prompts = [tiny.prompt_ids, tiny.tokenizer("x").input_ids, tiny.tokenizer("a longer prompt here").input_ids]
    with torch.random.fork_rng():
        batched = hf._generate_batch(prompts, greedy, torch.device("cpu"))
    alone = [hf.generate([p], greedy, seed=0)[0] for p in prompts]
    assert [c.token_ids for c in batched] == [c.token_ids for c in alone]


def test_hf_compact_decoding_drops_ended_rows_and_matches_generate(tiny: Tiny) -> None:
    """The compact loop (the default) gives transformers' generate's tokens, log-probs and truncation, and a row
    that has ended leaves the batch: later forwards run on fewer rows."""
    model = load_peft(tiny, tiny.random_adapter)
    greedy = SamplingParams(max_new_tokens=12, temperature=0)
    prompts = [tiny.prompt_ids, tiny.tokenizer("x").input_ids, tiny.tokenizer("a longer prompt here").input_ids]
    ref = HFSampler(model, tiny.tokenizer, compact=False)
    free = ref._generate_batch(prompts, greedy, torch.device("cpu"))
    # a stop token that ends the rows at different steps: row 0's 4th token (it ends at step <= 4)
    stop = free[0].token_ids[3]
    ref.stop_ids = [stop]
    want = ref._generate_batch(prompts, greedy, torch.device("cpu"))
    lengths = [len(c.token_ids) for c in want]
    assert len(set(lengths)) > 1 and min(lengths) <= 4  # the rows do end at different steps
    compact = HFSampler(model, tiny.tokenizer)
    compact.stop_ids = [stop]
    rows: list[int] = []
    original = model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    model.forward = counting
    try:
        got = compact._generate_batch(prompts, greedy, torch.device("cpu"))
    finally:
        model.forward = original
    assert [c.token_ids for c in got] == [c.token_ids for c in want]
    assert [c.truncated for c in got] == [c.truncated for c in want]
    assert [c.text for c in got] == [c.text for c in want]
    for g, w in zip(got, want):
        assert g.logprobs == pytest.approx(w.logprobs, abs=1e-4)
    # one forward per step, each on the rows that had not ended before it
    assert len(rows) == max(lengths)
    assert rows == [sum(n > k for n in lengths) for k in range(max(lengths))]


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 0, 0.95), (1.3, 5, 1.0), (0.5, 7, 0.6),
                                                     (1.0, 1, 0.9), (0.9, 0, 0.01)])
def test_warp_is_transformers_temperature_top_k_top_p(temperature: float, top_k: int, top_p: float) -> None:
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from sdpo_discover.samplers import _warp

    g = torch.Generator().manual_seed(int(temperature * 100) + top_k)
    logits = torch.randn(6, 50, generator=g) * 3  # (b, V)
    ids = torch.zeros(6, 1, dtype=torch.long)
    want = TemperatureLogitsWarper(temperature)(ids, logits.clone())
    if top_k:
        want = TopKLogitsWarper(top_k)(ids, want)
    if top_p < 1.0:
        want = TopPLogitsWarper(top_p)(ids, want)
    got = _warp(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    assert torch.allclose(got[~torch.isinf(got)], want[~torch.isinf(want)])
    assert (~torch.isinf(got)).sum(dim=1).min() >= 1


def test_hf_one_prompt_per_sequence(tiny: Tiny) -> None:
    """A batch of different prompts (a multi-turn step's chains) in one call: each sequence continues its own."""
    hf = HFSampler(load_peft(tiny, tiny.random_adapter), tiny.tokenizer, batch_size=2)
    greedy = SamplingParams(max_new_tokens=12, temperature=0)
    prompts = [tiny.prompt_ids, tiny.tokenizer("x").input_ids, tiny.tokenizer("a longer prompt here").input_ids]
    mixed = hf.generate([prompts[0], prompts[1], prompts[0], prompts[2]], greedy, seed=0)
    alone = [hf.generate([p], greedy, seed=0)[0] for p in prompts]
    assert [c.token_ids for c in mixed] == [alone[0].token_ids, alone[1].token_ids, alone[0].token_ids,
                                            alone[2].token_ids]
    sampled = SamplingParams(max_new_tokens=12)
    assert [c.token_ids for c in hf.generate(prompts, sampled, seed=4)] == [
        c.token_ids for c in hf.generate(prompts, sampled, seed=4)]  # seeded


def test_hf_ignores_the_checkpoints_generation_defaults(tiny: Tiny) -> None:
    """A checkpoint's generation_config (here top_k=1, i.e. greedy) must not leak into sampling."""
    model = load_peft(tiny)
    model.get_base_model().generation_config.top_k = 1
    hf = HFSampler(model, tiny.tokenizer)
    samples = hf.generate([tiny.prompt_ids] * 4, SamplingParams(max_new_tokens=8), seed=0)
    assert len({tuple(c.token_ids) for c in samples}) == 4
    assert model.get_base_model().generation_config.top_k == 1  # restored
    top1 = hf.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=8, top_k=1), seed=0)
    greedy = hf.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=8, temperature=0), seed=5)
    assert top1[0].token_ids == top1[1].token_ids == greedy[0].token_ids


def test_hf_load_adapter_changes_samples(tiny: Tiny) -> None:
    hf = HFSampler(load_peft(tiny), tiny.tokenizer)
    params = SamplingParams(max_new_tokens=32, temperature=1.0)
    before = hf.generate([tiny.prompt_ids] * 4, params, seed=0)
    assert all(c.token_ids != tiny.target_ids[0] for c in before)
    hf.load_adapter(tiny.adapters[0], 1)
    assert hf.adapter_version == 1
    assert [c.text for c in hf.generate([tiny.prompt_ids] * 4, params, seed=0)] == [TARGETS[0]] * 4
    hf.load_adapter(tiny.adapters[1], 2)
    assert [c.text for c in hf.generate([tiny.prompt_ids] * 4, params, seed=0)] == [TARGETS[1]] * 4
    hf.load_adapter(None, 3)  # the base model
    base = hf.generate([tiny.prompt_ids] * 4, params, seed=0)
    assert [c.token_ids for c in base] == [c.token_ids for c in before]
    hf.load_adapter(tiny.adapters[0], 1)  # an earlier version, from its own folder: fine
    assert hf.generate([tiny.prompt_ids], params, seed=0)[0].text == TARGETS[0]


def test_hf_in_process_sharing_needs_no_load(tiny: Tiny) -> None:
    """The trainer trains the very model the sampler samples from: a weight change shows at once."""
    model = load_peft(tiny)
    hf = HFSampler(model, tiny.tokenizer)
    params = SamplingParams(max_new_tokens=32, temperature=0)
    assert hf.generate([tiny.prompt_ids], params, seed=0)[0].text != TARGETS[1]
    trained = load_peft(tiny, tiny.adapters[1])
    with torch.no_grad():  # stands for an optimizer step on `model`
        for (name, p), (name2, q) in zip(model.named_parameters(), trained.named_parameters()):
            assert name == name2
            p.copy_(q)
    assert hf.generate([tiny.prompt_ids], params, seed=0)[0].text == TARGETS[1]


def test_adapter_versions_are_explicit(tiny: Tiny, tmp_path: Path) -> None:
    hf = HFSampler(load_peft(tiny), tiny.tokenizer)
    hf.load_adapter(tiny.adapters[0], 1)
    with pytest.raises(ValueError, match="version 1 was already loaded"):
        hf.load_adapter(tiny.adapters[1], 1)
    with pytest.raises(ValueError, match="already loaded as adapter version 1"):
        hf.load_adapter(tiny.adapters[0], 2)
    with pytest.raises(ValueError, match="integer >= 0"):
        hf.load_adapter(tiny.adapters[1], -1)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        hf.load_adapter(tmp_path, 5)
    with pytest.raises(TypeError, match="peft"):
        HFSampler(make_model(), tiny.tokenizer).load_adapter(tiny.adapters[0], 1)


def test_hf_rejects_an_adapter_of_another_shape(tiny: Tiny, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    get_peft_model(make_model(), LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj"])).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="r=4"):
        HFSampler(load_peft(tiny), tiny.tokenizer).load_adapter(tmp_path, 1)


def test_generate_argument_errors(hf: HFSampler, tiny: Tiny) -> None:
    with pytest.raises(ValueError, match="prompts must be a non-empty list"):
        hf.generate([], SamplingParams(), seed=0)
    with pytest.raises(ValueError, match="each prompt must be a non-empty list of token ids"):
        hf.generate([[]], SamplingParams(), seed=0)
    with pytest.raises(ValueError, match="each prompt must be a non-empty list of token ids"):
        hf.generate(tiny.prompt_ids, SamplingParams(), seed=0)  # type: ignore[arg-type]  # one prompt, not a list
    with pytest.raises(TypeError, match="SamplingParams"):
        hf.generate([tiny.prompt_ids], {"temperature": 1.0}, seed=0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# VLLMSampler
# --------------------------------------------------------------------------------------------------


def require_vllm() -> None:
    require("vllm", *vllm_available(), "bash scripts/setup-vllm builds the vLLM virtual environment.")


def test_missing_venv_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDPO_DISCOVER_VLLM_VENV", str(tmp_path / "nowhere"))
    assert vllm_venv_path() == tmp_path / "nowhere"
    assert vllm_venv_path(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("SDPO_DISCOVER_VLLM_VENV")
    monkeypatch.setenv("SDPO_DISCOVER_CACHE", str(tmp_path / "cache"))
    assert vllm_venv_path() == tmp_path / "cache" / "vllm-venv"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(VLLMUnavailableError, match="scripts/setup-vllm"):
        VLLMSampler(tmp_path / "model")


# The parent's side of the protocol, against a fake worker (no vLLM needed) ---------------------------

FAKE_WORKER = r"""
import json, os, sys, time
mode = os.environ["FAKE_WORKER_MODE"]
held = []
print("fake worker up", file=sys.stderr, flush=True)
def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "init":
        if mode == "crash-at-init":
            print("dying at init", file=sys.stderr, flush=True)
            sys.exit(3)
        version = req["dtype"] if mode == "echo-dtype" else "fake"  # echo-dtype: what the engine was asked for
        answer({"id": req["id"], "ok": True, "start_s": 0.0, "platform": "cpu", "vllm_version": version,
                "stop_token_ids": [1]})
    elif req["op"] == "generate":
        if mode == "hang":
            os.fork() or time.sleep(600)  # a child in the group too: close() must kill both
            time.sleep(600)
        if mode == "crash":
            os._exit(9)
        if mode in ("error", "fatal"):
            answer({"id": req["id"], "ok": False, "fatal": mode == "fatal", "error": "ValueError: no"})
            if mode == "fatal":
                break
            continue
        if mode == "pairs":  # runs sharing the engine: hold a generate until another arrives, answer the later first
            held.append(req)
            if len(held) == 2:
                for r in reversed(held):
                    name = (r.get("lora") or {}).get("name", "base")
                    c = {"text": name, "token_ids": [70], "finish_reason": "stop", "logprobs": [-0.5]}
                    answer({"id": r["id"], "ok": True, "seconds": 0.0, "completions": [c] * len(r["prompts"]),
                            "peak_sequences": sum(len(h["prompts"]) for h in held)})
                held.clear()
            continue
        c = {"text": "ab", "token_ids": [70, 71, 1], "finish_reason": "stop", "logprobs": [-0.5, -0.25, -0.125]}
        answer({"id": req["id"], "ok": True, "seconds": 0.0, "completions": [c] * len(req["prompts"])})
    elif req["op"] == "shutdown":
        answer({"id": req["id"], "ok": True})
        break
"""


def record_popen(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every process the samplers module starts, appended to the returned list."""
    import subprocess

    import sdpo_discover.samplers as samplers

    started: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(samplers.subprocess, "Popen", Recorded)
    return started


@pytest.fixture
def fake_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """VLLMSampler(model, venv=...) that runs FAKE_WORKER in mode `set_mode(...)`; yields (make, started)."""


    venv = conftest.fake_vllm_venv(tmp_path, monkeypatch, FAKE_WORKER)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # failed samplers keep their logs: here
    started = record_popen(monkeypatch)

    def make(mode: str, **kwargs) -> VLLMSampler:
        monkeypatch.setenv("FAKE_WORKER_MODE", mode)
        return VLLMSampler(tmp_path / "model", venv=venv, **kwargs)

    yield make, started


def group_gone(pgid: int, wait_s: float = 5.0) -> bool:
    """No process left in the group (killed processes whose parent died are reaped by init: wait a bit)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("asked, native_bf16, sent", [("auto", False, "float32"), ("auto", True, "bfloat16"),
                                                      ("bfloat16", False, "bfloat16"), ("float32", True, "float32")])
def test_engine_dtype_follows_the_cpu(fake_worker, monkeypatch: pytest.MonkeyPatch, asked: str, native_bf16: bool,
                                      sent: str) -> None:
    import sdpo_discover.models as models

    monkeypatch.setattr(models, "cpu_has_bf16", lambda: native_bf16)
    make, _ = fake_worker
    with make("echo-dtype", dtype=asked, device="cpu") as s:
        assert s.dtype == sent and s.vllm_version == sent
    with pytest.raises(ValueError, match="dtype"):
        make("ok", dtype="int8")


def test_protocol_round_trip_and_clean_shutdown(fake_worker) -> None:
    make, started = fake_worker
    with make("ok") as s:
        (c,) = s.generate([[5, 6]], SamplingParams(max_new_tokens=3), seed=0)
        assert c == Completion(text="ab", token_ids=[70, 71, 1], truncated=False, logprobs=[-0.5, -0.25, -0.125])
        assert s.stop_ids == [1] and s.vllm_version == "fake"
        log = s.log_path
    assert started[0].returncode == 0 and group_gone(started[0].pid) and not log.exists()
    with pytest.raises(SamplerError, match="closed"):
        s.generate([[5]], SamplingParams(), seed=0)


def test_lora_requests_are_unique_per_run_and_version(fake_worker, tmp_path: Path) -> None:
    """Two runs sharing one engine each number their versions from 0: names and ids must not collide (vLLM caches
    adapters by them), and a version's folder keeps its id."""
    make, _ = fake_worker
    folders = {}
    for name in ("a1", "b1", "a2"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "adapter_config.json").write_text(json.dumps({"r": 8}))
    with make("ok") as s:
        assert s.lora_request("run-a") is None
        s.load_adapter(folders["a1"], 1, run="run-a")
        assert s.lora_request("run-a") == {"name": "run-a-v1", "id": 1, "path": str(folders["a1"].resolve())}
        s.load_adapter(folders["b1"], 1, run="run-b")  # the other run's version 1: its own name and id
        assert s.lora_request("run-b") == {"name": "run-b-v1", "id": 2, "path": str(folders["b1"].resolve())}
        assert s.lora_request("run-a")["id"] == 1  # each run keeps its own adapter
        s.load_adapter(folders["a2"], 2, run="run-a")
        assert s.lora_request("run-a")["id"] == 3
        s.load_adapter(folders["a1"], 1, run="run-a")  # again: the same request
        assert s.lora_request("run-a")["id"] == 1
        with pytest.raises(ValueError, match="version 1 was already loaded"):
            s.load_adapter(folders["a2"], 1, run="run-a")
        s.load_adapter(None, 0, run="run-a")
        assert s.lora_request("run-a") is None and s.lora_request("run-b")["id"] == 2


def test_runs_sharing_the_engine_generate_at_once_each_with_its_adapter(fake_worker, tmp_path: Path) -> None:
    """Two threads (two runs sharing one engine, bench --workers 2) generate at once: both requests are in the
    worker together (it answers neither until it holds both), and the answers, sent in the other order, reach
    the thread that asked, each sampled with its own run's LoRA request."""
    make, _ = fake_worker
    for run in ("run-a", "run-b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "adapter_config.json").write_text(json.dumps({"r": 8}))
    with make("pairs", max_loras=2, generate_timeout_s=20) as s:
        assert s.max_loras == 2 and not s.sleep() and "shared by up to 2 runs" in s.sleep_why
        got: dict[str, list[str]] = {}

        def sample(run: str, n: int) -> None:
            s.load_adapter(tmp_path / run, 1, run=run)
            got[run] = [c.text for c in s.generate([[5]] * n, SamplingParams(stop_at_answer=False), seed=0, run=run)]

        threads = [threading.Thread(target=sample, args=(run, n)) for run, n in (("run-a", 3), ("run-b", 2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert got == {"run-a": ["run-a-v1"] * 3, "run-b": ["run-b-v1"] * 2}
        assert s.peak_sequences == 5


def test_worker_crash_at_init_is_an_error_with_its_log(fake_worker) -> None:
    make, started = fake_worker
    with pytest.raises(SamplerError, match=r"exited \(code 3\) during 'init'") as err:
        make("crash-at-init")
    assert "dying at init" in str(err.value)  # the tail of the worker's log
    assert group_gone(started[0].pid)


def test_worker_crash_during_generate(fake_worker) -> None:
    make, started = fake_worker
    s = make("crash")
    with pytest.raises(SamplerError, match=r"exited \(code 9\) during 'generate'"):
        s.generate([[5]], SamplingParams(), seed=0)
    assert group_gone(started[0].pid)


def test_generate_timeout_kills_the_group(fake_worker) -> None:
    make, started = fake_worker
    s = make("hang", generate_timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(SamplerError, match="did not answer 'generate' within 1.5 s: killed it"):
        s.generate([[5]], SamplingParams(), seed=0)
    assert time.monotonic() - t0 < 10
    assert group_gone(started[0].pid)  # the worker and the child it forked


def test_ctrl_c_in_a_with_block_kills_the_group(fake_worker) -> None:
    make, started = fake_worker
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        with make("hang") as s:
            timer.start()
            s.generate([[5]], SamplingParams(), seed=0)
    timer.join()
    assert group_gone(started[0].pid)


def test_error_answers(fake_worker) -> None:
    make, started = fake_worker
    s = make("error")
    for _ in range(2):  # a plain error: the worker goes on
        with pytest.raises(SamplerError, match="vLLM generate failed: ValueError: no"):
            s.generate([[5]], SamplingParams(), seed=0)
    s.close()
    s = make("fatal")
    with pytest.raises(SamplerError, match="the engine is gone"):
        s.generate([[5]], SamplingParams(), seed=0)
    with pytest.raises(SamplerError, match="closed"):
        s.generate([[5]], SamplingParams(), seed=0)
    assert all(group_gone(p.pid) for p in started)


def test_real_worker_protocol_without_vllm() -> None:
    """The worker script itself (run with this python: nothing imports vllm before init) answers bad
    requests with errors, keeps its stdout for responses only, and exits on shutdown."""
    import subprocess

    from sdpo_discover.samplers import WORKER_SCRIPT

    requests = [{"id": 1, "op": "nope"}, {"id": 2, "op": "generate"}, "not json", {"id": 3, "op": "shutdown"}]
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in requests) + "\n"
    out = subprocess.run(
        [sys.executable, str(WORKER_SCRIPT)], input=text, capture_output=True, text=True, timeout=60, check=True
    )
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(a["id"], a["ok"]) for a in answers] == [(1, False), (2, False), (None, False), (3, True)]
    assert "unknown op 'nope'" in answers[0]["error"] and "generate before init" in answers[1]["error"]


def test_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of the parent: the worker notices (it is re-parented) and kills its own group."""
    import subprocess

    from sdpo_discover.samplers import WORKER_SCRIPT

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"w = subprocess.Popen([sys.executable, {str(WORKER_SCRIPT)!r}], stdin=subprocess.PIPE,\n"
            "                     start_new_session=True)\n"
            "print(w.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = int(parent.stdout.readline())
    assert not group_gone(worker, wait_s=0)
    parent.kill()
    parent.wait()
    assert group_gone(worker, wait_s=10)


# The real engine ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_sampler(tiny: Tiny):
    require_vllm()
    sampler = VLLMSampler(tiny.dir, max_model_len=256, max_lora_rank=8, kv_cache_gib=1, device="cpu")
    print(f"\n[vllm] engine started in {sampler.start_seconds:.1f} s ({sampler.platform}, vllm {sampler.vllm_version})")
    yield sampler
    sampler.close()


@pytest.mark.vllm
def test_vllm_adapter_versions_without_restart(vllm_sampler: VLLMSampler, tiny: Tiny) -> None:
    s = vllm_sampler
    pid = s._proc.pid
    params = SamplingParams(max_new_tokens=32, temperature=1.0)
    base = s.generate([tiny.prompt_ids] * 4, params, seed=0)
    assert len(base) == 4
    for c in base:
        check_consistent(c, tiny.tokenizer, 32)
        assert c.token_ids != tiny.target_ids[0]
    assert [c.token_ids for c in s.generate([tiny.prompt_ids] * 4, params, seed=0)] == [c.token_ids for c in base]

    s.load_adapter(tiny.adapters[0], 1)
    first = s.generate([tiny.prompt_ids] * 8, params, seed=1)
    assert [c.token_ids for c in first] == [tiny.target_ids[0]] * 8
    assert [c.text for c in first] == [TARGETS[0]] * 8 and not any(c.truncated for c in first)

    s.load_adapter(tiny.adapters[1], 2)  # a new LoRARequest: its own name, id and folder
    second = s.generate([tiny.prompt_ids] * 8, params, seed=1)
    assert [c.text for c in second] == [TARGETS[1]] * 8

    mixed = s.generate([tiny.prompt_ids, tiny.tokenizer("x").input_ids], params, seed=1)  # one prompt per sequence
    assert mixed[0].text == TARGETS[1] and len(mixed) == 2

    s.load_adapter(None, 3)  # back to the base model
    assert [c.token_ids for c in s.generate([tiny.prompt_ids] * 4, params, seed=0)] == [c.token_ids for c in base]
    assert s._proc.pid == pid and s._proc.poll() is None  # one engine all along
    with pytest.raises(ValueError, match="version 1 was already loaded"):
        s.load_adapter(tiny.adapters[1], 1)


@pytest.mark.vllm
def test_vllm_runs_sharing_one_engine_are_sampled_in_the_same_steps(tiny: Tiny) -> None:
    """Two runs (threads) with different adapters generate at once on one engine (max_loras=2): each gets its
    own adapter's text, and the engine held both requests' sequences at once (continuous batching). Greedy: a
    sequence that got the other run's adapter (or none) in any step would say something else."""
    require_vllm()
    params = SamplingParams(max_new_tokens=32, temperature=0.0, stop_at_answer=False)
    with VLLMSampler(tiny.dir, max_model_len=256, max_lora_rank=8, kv_cache_gib=1, device="cpu", max_loras=2) as s:
        go = threading.Barrier(2)
        got: dict[str, list[str]] = {}

        def sample(run: str, k: int) -> None:
            s.load_adapter(tiny.adapters[k], 1, run=run)
            go.wait()
            got[run] = [c.text for c in s.generate([tiny.prompt_ids] * 8, params, seed=k, run=run)]

        threads = [threading.Thread(target=sample, args=(run, k)) for k, run in enumerate(("run-a", "run-b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert got == {"run-a": [TARGETS[0]] * 8, "run-b": [TARGETS[1]] * 8}, repr(got)[:2000]
        assert s.peak_sequences > 8, s.peak_sequences  # both runs' sequences in the engine at once
        alone = s.generate([tiny.prompt_ids] * 8, params, seed=0, run="run-a")  # one run alone: its own batch
        assert [c.text for c in alone] == [TARGETS[0]] * 8


@pytest.mark.vllm
def test_vllm_a_run_without_an_adapter_beside_two_with_gets_the_base_model(tiny: Tiny) -> None:
    """Three runs on one engine at once, greedy: two with their adapters (every slot of max_loras=2 taken) and
    a best-of-k-like run without one. vLLM marks a token without an adapter -1; its CPU ops index the slots with
    it, which picks the last slot: the run without an adapter must still get the base model's text."""
    require_vllm()
    params = SamplingParams(max_new_tokens=32, temperature=0.0, stop_at_answer=False)
    with VLLMSampler(tiny.dir, max_model_len=256, max_lora_rank=8, kv_cache_gib=1, device="cpu", max_loras=2) as s:
        base = [c.text for c in s.generate([tiny.prompt_ids] * 4, params, seed=0, run="plain")]
        assert base[0] not in TARGETS
        go = threading.Barrier(3)
        got: dict[str, list[str]] = {}

        def sample(run: str, k: int | None) -> None:
            s.load_adapter(None if k is None else tiny.adapters[k], 1, run=run)
            go.wait()
            got[run] = [c.text for c in s.generate([tiny.prompt_ids] * 4, params, seed=0, run=run)]

        threads = [threading.Thread(target=sample, args=a) for a in (("run-a", 0), ("run-b", 1), ("plain", None))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert s.peak_sequences > 8, s.peak_sequences  # the three runs' sequences were in the engine at once
        assert got == {"run-a": [TARGETS[0]] * 4, "run-b": [TARGETS[1]] * 4, "plain": base}, repr(got)[:2000]


@pytest.mark.vllm
def test_vllm_truncation(vllm_sampler: VLLMSampler, tiny: Tiny) -> None:
    vllm_sampler.load_adapter(tiny.adapters[0], 1)
    short = vllm_sampler.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=5), seed=0)
    for c in short:
        assert c.truncated and c.token_ids == tiny.target_ids[0][:5] and c.text == TARGETS[0][:5]


@pytest.mark.vllm
def test_hf_and_vllm_agree(vllm_sampler: VLLMSampler, tiny: Tiny) -> None:
    """Same adapter, greedy: the same token ids. The random adapter moves every logit without peaking
    any: vLLM's log-probs of its own samples match an fp32 forward pass with that adapter (so vLLM
    applies the LoRA, with its alpha/r scaling, as peft does) and do not match the base model."""
    greedy = SamplingParams(max_new_tokens=24, temperature=0)
    for version, folder in ((1, tiny.adapters[0]), (2, tiny.adapters[1])):
        vllm_sampler.load_adapter(folder, version)
        v = vllm_sampler.generate([tiny.prompt_ids] * 2, greedy, seed=0)
        h = HFSampler(load_peft(tiny, folder), tiny.tokenizer).generate([tiny.prompt_ids], greedy, seed=0)
        assert v[0].token_ids == v[1].token_ids == h[0].token_ids == tiny.target_ids[version - 1]
        assert v[0].logprobs == pytest.approx(h[0].logprobs, abs=0.05)

    # on a CPU the worker's LoRA matmuls (vllm_worker.lora_matmul) replace vLLM's: these are their results
    assert vllm_sampler.platform != "cpu" or vllm_sampler.lora_ops.startswith("sdpo-discover"), vllm_sampler.lora_ops
    vllm_sampler.load_adapter(tiny.random_adapter, 4)
    hf_model = load_peft(tiny, tiny.random_adapter)
    base_model = load_peft(tiny)
    samples = vllm_sampler.generate([tiny.prompt_ids] * 4, SamplingParams(max_new_tokens=16), seed=7)
    err_lora, err_base = [], []
    for c in samples:
        ref = forward_logprobs(hf_model, tiny.prompt_ids, c.token_ids)
        base = forward_logprobs(base_model, tiny.prompt_ids, c.token_ids)
        err_lora += [abs(a - b) for a, b in zip(c.logprobs, ref)]
        err_base += [abs(a - b) for a, b in zip(c.logprobs, base)]
    mean_lora, mean_base = sum(err_lora) / len(err_lora), sum(err_base) / len(err_base)
    # vLLM runs dtype auto: float32 on a CPU without native bf16 (this VM), bf16 on one with it. Measured in
    # bf16: ~0.07 against the adapter (bf16 rounding of logits ~10 in size), ~3 against the base.
    assert mean_lora < 0.15 and mean_base > 10 * mean_lora, (mean_lora, mean_base)
    # Greedy on the random adapter: in bf16, vLLM and HF (fp32) differ by ~0.07 per log-prob, enough to
    # flip a near-tie, and one flip changes everything after it: compare a short prefix (all 8 tokens
    # agreed when measured in bf16 and in float32).
    greedy = SamplingParams(max_new_tokens=8, temperature=0)
    v = vllm_sampler.generate([tiny.prompt_ids], greedy, seed=0)[0]
    h = HFSampler(hf_model, tiny.tokenizer).generate([tiny.prompt_ids], greedy, seed=0)[0]
    assert v.token_ids[:4] == h.token_ids[:4]


@pytest.mark.vllm
def test_vllm_errors_are_answers(vllm_sampler: VLLMSampler, tiny: Tiny, tmp_path: Path) -> None:
    """A bad adapter or a prompt too long fails that request with vLLM's message; the engine goes on."""
    bad = tmp_path / "bad-adapter"
    bad.mkdir()
    cfg = json.loads((tiny.adapters[0] / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    (bad / "adapter_model.safetensors").write_bytes(b"not safetensors")
    vllm_sampler.load_adapter(bad, 99)
    with pytest.raises(SamplerError, match="vLLM generate failed"):
        vllm_sampler.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=4), seed=0)
    vllm_sampler.load_adapter(tiny.adapters[0], 1)
    with pytest.raises(SamplerError, match="vLLM generate failed.*256"):  # longer than max_model_len
        vllm_sampler.generate([tiny.prompt_ids * 30], SamplingParams(max_new_tokens=4), seed=0)
    assert vllm_sampler.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=32), seed=0)[0].text == TARGETS[0]
    big = tmp_path / "rank-32"
    big.mkdir()
    (big / "adapter_config.json").write_text(json.dumps({**cfg, "r": 32}))
    with pytest.raises(ValueError, match="max_lora_rank=8"):
        vllm_sampler.load_adapter(big, 100)


@pytest.mark.vllm
def test_vllm_start_timeout_kills_the_worker_group(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker that does not answer in time is killed with its whole process group."""


    require_vllm()
    started = record_popen(monkeypatch)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # failed samplers keep their logs: here
    with pytest.raises(SamplerError, match="did not answer 'init' within 3 s") as err:
        VLLMSampler(tiny.dir, max_model_len=256, max_lora_rank=8, kv_cache_gib=1, start_timeout_s=3)
    assert "worker's log" in str(err.value)
    (proc,) = started
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


# --------------------------------------------------------------------------------------------------
# stop_at_answer: a sample ends where its answer does (prompts.answer_end)
# --------------------------------------------------------------------------------------------------

STUB_THEN_CODE = "```python\n# YOUR CODE HERE\n```\n\n```python\nprint(1)\n```\nThis prints 1, as asked.\n"
ANSWER = "```python\n# YOUR CODE HERE\n```\n\n```python\nprint(1)\n```\n"  # where it must end


def test_answer_end_is_the_close_of_the_first_python_block_with_code() -> None:
    from sdpo_discover.prompts import answer_end

    assert answer_end(STUB_THEN_CODE) == len(ANSWER)
    assert answer_end("```python\nprint(1)\n```") is None  # the closing line has not ended yet
    assert answer_end("```python\nprint(1)\n```\n") == len("```python\nprint(1)\n```\n")
    assert answer_end("```python\nprint(1)\n```py") is None  # an opening fence being written
    text = "```text\nnot python\n```\n```py\nx = 1\n```\nmore"  # a non-Python block first
    assert answer_end(text) == text.index("more")
    assert answer_end("```python\n\n```\n") is None  # an empty block: no answer
    assert answer_end("Here it is:\n  ```python\n  print(2)\n  ```\nbye") == len("Here it is:\n  ```python\n  print(2)\n  ```\n")
    # what it keeps is what the grader grades: the same code as from the whole response
    from sdpo_discover.sandbox.grading import extract_code

    assert extract_code(STUB_THEN_CODE[: answer_end(STUB_THEN_CODE)]) == extract_code(STUB_THEN_CODE)


def _scripted(model: Any, tokenizer: Any, scripts: list[str], eos: int = 1) -> None:
    """Make `model` emit scripts[row] token by token (then eos), whatever it is asked: every forward call's last
    logits are -inf except the scripted token's (the sampled tokens are then known exactly)."""
    rows = [tokenizer(s, add_special_tokens=False)["input_ids"] + [eos] for s in scripts]
    calls = {"n": 0}

    def pick(input_ids: torch.Tensor) -> list[int]:
        if input_ids.shape[1] > 1:  # the prompt's forward: a new generate call
            calls["n"] = 0
        k = calls["n"]
        calls["n"] += 1
        return [rows[r][min(k, len(rows[r]) - 1)] for r in range(input_ids.shape[0])]

    _forced(model, pick)


def _forced(model: Any, pick: Callable[[torch.Tensor], list[int]]) -> None:
    """Make every forward of `model` put all its last-position logits at -1e4 but one per row, pick(input_ids)[row]
    (0.0): the next token of each row is then known exactly, at any temperature."""
    original = model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        logits = torch.full_like(out.logits[:, -1, :], -1e4)  # (B, V)
        for r, t in enumerate(pick(kwargs["input_ids"])):
            logits[r, t] = 0.0
        out.logits[:, -1, :] = logits
        return out

    model.forward = forward


@pytest.mark.parametrize("stop", [True, False], ids=["stop_at_answer", "whole"])
def test_hf_stops_at_the_answer_with_exactly_the_tokens_sampled(stop: bool) -> None:
    tok = make_tokenizer()
    model = make_model()
    _scripted(model, tok, [STUB_THEN_CODE, "no code at all"])
    hf = HFSampler(model, tok, batch_size=2)
    params = SamplingParams(max_new_tokens=120, temperature=1.0, stop_at_answer=stop)
    a, b = hf.generate([[5, 6, 7]] * 2, params, seed=0)
    want = ANSWER if stop else STUB_THEN_CODE
    assert a.text == want and not a.truncated
    ids = tok(want, add_special_tokens=False)["input_ids"]
    assert a.token_ids == (ids if stop else ids + [1])  # stopped at the answer: no eos was sampled
    assert len(a.logprobs) == len(a.token_ids) and all(lp == pytest.approx(0.0, abs=1e-6) for lp in a.logprobs)
    assert b.text == "no code at all" and b.token_ids[-1] == 1 and not b.truncated  # ended by eos, as before
    short = hf.generate([[5, 6, 7]], SamplingParams(max_new_tokens=20, temperature=1.0, stop_at_answer=stop), seed=0)
    assert short[0].truncated and len(short[0].token_ids) == 20


# --------------------------------------------------------------------------------------------------
# stop_at_loop: a sample stuck in a loop ends there, as cut off
# --------------------------------------------------------------------------------------------------


def test_loop_period_is_a_block_repeated_at_the_end() -> None:
    from sdpo_discover.vllm_worker import loop_check, loop_period

    assert loop_period([7] * 128) == 1 and loop_period([7] * 127) is None  # 128 tokens at least
    assert loop_period([1, 2, 3] + [4, 5] * 64) == 2  # the prefix before the loop does not matter
    assert loop_period([1, 2, 3] + [4, 5] * 63) is None  # 126 tokens of the loop: not yet
    block = list(range(100, 150))  # p = 50: 3 repeats, 150 tokens
    assert loop_period(block * 3) == 50 and loop_period((block * 3)[1:]) is None
    assert loop_period(list(range(200, 265)) * 4) is None  # p = 65: longer than any loop it looks for
    assert loop_period(list(range(300, 500))) is None  # no repeat at all
    assert loop_period([4, 5] * 70 + [6]) is None  # the loop must reach the end
    # checked at multiples of 8 tokens only, where both samplers look
    assert [n for n in range(120, 150) if loop_check([1, 2, 3] + [4, 5] * ((n - 3) // 2) + [4] * ((n - 3) % 2))] == [136, 144]


def _markov(model: Any, nxt: dict[int, int], eos: int = 1) -> None:
    """Make `model` emit, after each token t, the token nxt[t] (eos after any other): a row's tokens depend on its
    own last token only, so they stay known exactly while rows leave the batch (compact decoding)."""
    _forced(model, lambda input_ids: [nxt.get(t, eos) for t in input_ids[:, -1].tolist()])


@pytest.mark.parametrize("compact", [True, False], ids=["compact", "generate"])
def test_hf_stops_a_sample_stuck_in_a_loop_as_cut_off(compact: bool) -> None:
    tok = make_tokenizer()
    model = make_model()
    # row 0 (prompt ends in 3): 7 8 9, then 10 11 10 11 ...: a loop of period 2 from token 3, so the rule holds
    # from 3 + 128 = 131 tokens, and the first checkpoint (a multiple of 8) there is 136.
    # row 1 (4): 60 61 ... 109 60 61 ...: period 50 from the first token: 3 repeats = 150 tokens, checked at 152.
    # row 2 (5): 13 14 15 eos: ends by itself.
    nxt = {3: 7, 7: 8, 8: 9, 9: 10, 10: 11, 11: 10, 4: 60, 5: 13, 13: 14, 14: 15, 15: 1}
    nxt.update({60 + i: 60 + (i + 1) % 50 for i in range(50)})
    _markov(model, nxt)
    looping = [7, 8, 9] + [10, 11] * 150
    wide = [60 + i % 50 for i in range(300)]
    hf = HFSampler(model, tok, batch_size=3, compact=compact)
    prompts = [[5, 6, 3], [5, 6, 4], [5, 6, 5]]
    a, b, c = hf.generate(prompts, SamplingParams(max_new_tokens=250, stop_at_loop=True), seed=0)
    assert a.token_ids == looping[:136] and a.truncated and len(a.logprobs) == 136
    assert b.token_ids == wide[:152] and b.truncated
    assert c.token_ids == [13, 14, 15, 1] and not c.truncated
    a, b, c = hf.generate(prompts, SamplingParams(max_new_tokens=250), seed=0)  # off: to the cap
    assert a.token_ids == looping[:250] and a.truncated and b.token_ids == wide[:250] and c.token_ids == [13, 14, 15, 1]


@pytest.mark.parametrize("slots", [[0] * 6, [1, 0, 1, 1, 0, 2], [-1, -1, 0, -1, 1, 0]], ids=["one", "mixed", "minus-one"])
@pytest.mark.parametrize("four_d", [False, True], ids=["3d", "4d"])
def test_worker_lora_matmul_is_vllms_per_token_einsum(slots: list[int], four_d: bool) -> None:
    """vllm_worker's CPU LoRA ops against vLLM 0.32's definition (torch_ops/lora_ops.py): gather each token's
    slot, then einsum("bi, boi -> bo"), written out here; shrink scales and writes, expand adds or writes, in a
    slice or a prefix of the output. One difference, on purpose: a token of index -1 (no adapter) gets zeros,
    where vLLM's CPU ops take the last slot."""
    w = conftest.load_worker_module()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 24, generator=g)  # (T, in)
    weights = torch.randn(3, 1, 8, 24, generator=g) if four_d else torch.randn(3, 8, 24, generator=g)  # (L, out, in)
    idx = torch.tensor(slots)

    def reference(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        sel = weights[idx]
        sel = sel.squeeze(1) if sel.dim() == 4 else sel  # (T, out, in)
        return torch.einsum("bi, boi -> bo", inputs, sel) * (idx >= 0)[:, None]  # -1: no adapter

    assert torch.allclose(w.lora_matmul(x, weights, idx, torch.float32), reference(x, weights), atol=1e-5)
    y = torch.zeros(6, 10)
    w._bgmv_shrink(x, weights, y, idx, 0.5)
    assert torch.allclose(y[:, :8], 0.5 * reference(x, weights), atol=1e-5) and not y[:, 8:].any()
    b = torch.randn(3, 24, 8, generator=g)  # expand: (L, out, r)
    h = torch.randn(6, 8, generator=g)
    out = torch.ones(6, 30)
    w._bgmv_expand(h, b, out, idx, add_inputs=True)
    assert torch.allclose(out[:, :24], 1 + reference(h, b), atol=1e-5) and (out[:, 24:] == 1).all()
    out = torch.ones(6, 40)
    w._bgmv_expand_slice(h, b, out, idx, 10, 24, add_inputs=False)
    assert torch.allclose(out[:, 10:34], reference(h, b), atol=1e-5) and (out[:, :10] == 1).all()


def test_the_worker_ends_a_looping_sequence_and_aborts_it_in_the_engine() -> None:
    from types import SimpleNamespace

    w = conftest.load_worker_module()
    scripts = {"0": [7, 8] + [9] * 200, "1": list(range(20, 60)) + [2]}  # request 1 ends by itself (40 tokens)
    aborted: list[str] = []

    class Engine:
        steps = 0

        def get_num_unfinished_requests(self) -> int:
            return len([r for r in scripts if r not in aborted])

        def has_unfinished_requests(self) -> bool:
            return self.get_num_unfinished_requests() > 0

        def abort_request(self, ids: list[str]) -> None:
            aborted.extend(ids)

        def step(self) -> list[Any]:
            self.steps += 1
            outs = []
            for rid, ids in scripts.items():
                if rid in aborted or self.steps > len(ids):
                    continue
                done = self.steps == len(ids)
                out = SimpleNamespace(text="x" * self.steps, token_ids=ids[: self.steps], logprobs=None,
                                      finish_reason="stop" if done else None, stop_reason=None)
                outs.append(SimpleNamespace(request_id=rid, finished=done, outputs=[out]))
            return outs

    w.LLM_ENGINE = SimpleNamespace(llm_engine=Engine())
    g = w._Generation(3, ["0", "1"], stop_at_loop=True)
    running = {"0": g, "1": g}
    while running:
        done, _ = w._step(running)
    assert done == [g] and aborted == ["0"]
    assert g.completions[0]["token_ids"] == ([7, 8] + [9] * 200)[:136] and g.completions[0]["finish_reason"] == "loop"
    assert g.completions[1]["finish_reason"] == "stop" and len(g.completions[1]["token_ids"]) == 41


FAKE_STOP_WORKER = r"""
import json, os, sys
SCRIPT = os.environ["FAKE_SCRIPT"]
log = open(os.environ["FAKE_WORKER_OPS"], "a")
def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    log.write(json.dumps(req) + "\n"); log.flush()
    if req["op"] == "init":
        answer({"id": req["id"], "ok": True, "start_s": 0.0, "platform": "cpu", "vllm_version": "fake",
                "stop_token_ids": [1], "sleep_mode": False, "sleep_why": "fake"})
    elif req["op"] == "generate":
        out = []
        for prompt, m in zip(req["prompts"], req["max_tokens"]):
            done = len(prompt) - 1  # a prompt of one token, then what was sampled so far: one token per character
            rest, reason, finish = SCRIPT[done:], None, "stop"
            for s in req.get("stop") or []:
                if s in rest:
                    rest, reason = rest[: rest.index(s) + len(s)], s
            if len(rest) > m:
                rest, reason, finish = rest[:m], None, "length"
            if req["params"].get("stop_at_loop") and "@" in rest:  # '@': where this fake's loop check fires
                rest, reason, finish = rest[: rest.index("@")], None, "loop"
            ids = [ord(c) for c in rest] + ([1] if finish == "stop" and reason is None else [])
            out.append({"text": rest, "token_ids": ids, "finish_reason": finish, "logprobs": [-0.5] * len(ids),
                        "stop_reason": reason})
        for i in reversed(range(len(out)) if req.get("stream") else []):  # each sequence as it ends: last first
            answer({"id": req["id"], "partial": True, "index": i, "completion": out[i]})
        answer({"id": req["id"], "ok": True, "seconds": 0.0, "completions": out,
                "stop_at_loop": bool(req["params"].get("stop_at_loop"))})
    elif req["op"] == "shutdown":
        answer({"id": req["id"], "ok": True})
        break
"""


def test_vllm_stops_at_a_closing_fence_and_continues_a_sample_whose_block_held_no_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdpo_discover.samplers import sequence_seed

    venv = conftest.fake_vllm_venv(tmp_path, monkeypatch, FAKE_STOP_WORKER)
    ops = tmp_path / "ops.jsonl"
    monkeypatch.setenv("FAKE_WORKER_OPS", str(ops))
    monkeypatch.setenv("FAKE_SCRIPT", STUB_THEN_CODE)
    with VLLMSampler(tmp_path / "model", venv=venv) as s:
        got = s.generate([[0], [0]], SamplingParams(max_new_tokens=200, stop_at_answer=True), seed=3)
        gens = [json.loads(x) for x in ops.read_text().splitlines() if json.loads(x)["op"] == "generate"]
        for c in got:  # round 1 stopped at the stub's fence; round 2 from the prompt plus those tokens
            assert c.text == ANSWER and c.token_ids == [ord(ch) for ch in ANSWER] and not c.truncated
            assert len(c.logprobs) == len(c.token_ids)
        assert len(gens) == 2 and gens[0]["stop"] == ["\n```\n"]
        first = "```python\n# YOUR CODE HERE\n```\n"
        assert gens[1]["prompts"] == [[0] + [ord(ch) for ch in first]] * 2
        assert gens[0]["seeds"] == [sequence_seed(3, 0), sequence_seed(3, 1)]  # as without stop_at_answer
        assert gens[1]["seeds"] != gens[0]["seeds"] and gens[1]["max_tokens"] == [200 - len(first)] * 2
        seen: list[tuple[int, Completion]] = []  # streamed (overlap_grading): each sample once, when final
        again = s.generate([[0], [0]], SamplingParams(max_new_tokens=200, stop_at_answer=True), seed=3,
                           on_done=lambda i, c: seen.append((i, c)))
        assert again == got and sorted(i for i, _ in seen) == [0, 1] and all(c == got[i] for i, c in seen)
        assert [json.loads(x).get("stream") for x in ops.read_text().splitlines()][-2:] == [True, True]
        whole = s.generate([[0]], SamplingParams(max_new_tokens=200), seed=3)[0]
        assert whole.text == STUB_THEN_CODE and whole.token_ids[-1] == 1
        cut = s.generate([[0]], SamplingParams(max_new_tokens=40, stop_at_answer=True), seed=3)[0]
        assert cut.truncated and len(cut.token_ids) == 40  # the budget runs out in the second round
    monkeypatch.setenv("FAKE_SCRIPT", "```python\nprint(1)@@@@")  # the worker says the sample looped
    with VLLMSampler(tmp_path / "model", venv=venv) as s:
        looped = s.generate([[0]], SamplingParams(max_new_tokens=200, stop_at_loop=True), seed=3)[0]
        assert looped.text == "```python\nprint(1)" and looped.truncated  # cut off, as at max_new_tokens
        assert json.loads(ops.read_text().splitlines()[-1])["params"]["stop_at_loop"] is True


@pytest.mark.vllm
def test_vllm_stop_at_loop_end_to_end(vllm_sampler: VLLMSampler, tiny: Tiny, tmp_path: Path) -> None:
    """The real engine, with an adapter trained to write one line over and over: greedy, with stop_at_loop its
    sample is the same tokens up to the first checkpoint where the rule holds, cut off, and the engine (which
    aborted the sequence) samples on."""
    from sdpo_discover.vllm_worker import loop_check

    n = min(180, 256 - len(tiny.prompt_ids) - 1)
    train_adapter(tiny.dir, tiny.prompt_ids, tiny.tokenizer("x = 1\n" + "y\n" * 90).input_ids, tmp_path / "adapter-loop",
                  nll=0.5)
    s = vllm_sampler
    s.load_adapter(tmp_path / "adapter-loop", 1, run="loop")
    whole = s.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=n, temperature=0), seed=0, run="loop")[0]
    fires = [k for k in range(1, len(whole.token_ids) + 1) if loop_check(whole.token_ids[:k])]
    assert fires, f"the tiny model's greedy sample does not loop: {whole.token_ids}"
    got = s.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=n, temperature=0, stop_at_loop=True),
                     seed=0, run="loop")
    assert not s._said_no_loop_stop  # the worker could watch the sequences' tokens
    for c in got:
        assert c.token_ids == whole.token_ids[: fires[0]] and c.truncated and len(c.logprobs) == fires[0]
    again = s.generate([tiny.prompt_ids], SamplingParams(max_new_tokens=n, temperature=0), seed=0, run="loop")[0]
    assert again.token_ids == whole.token_ids


@pytest.mark.vllm
def test_vllm_stop_at_answer_end_to_end(vllm_sampler: VLLMSampler, tiny: Tiny, tmp_path: Path) -> None:
    """The real engine, with an adapter trained to write the stub block, then code, then an explanation: with
    stop_at_answer the sample is the answer and nothing after it, in two rounds (the stub's fence stops the
    first), with exactly the tokens sampled; without it, the whole text."""
    script, answer = "```py\n#\n```\n```py\n1\n```\nhi\n", "```py\n#\n```\n```py\n1\n```\n"  # short: learnt fast
    ids = tiny.tokenizer(script).input_ids + [tiny.tokenizer.eos_token_id]
    train_adapter(tiny.dir, tiny.prompt_ids, ids, tmp_path / "adapter-answer", nll=0.05)  # then greedy: exact
    s = vllm_sampler
    s.load_adapter(tmp_path / "adapter-answer", 1, run="stop-at-answer")
    whole = s.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=60, temperature=0), seed=0,
                       run="stop-at-answer")
    assert [c.text for c in whole] == [script] * 2
    got = s.generate([tiny.prompt_ids] * 2, SamplingParams(max_new_tokens=60, temperature=0, stop_at_answer=True),
                     seed=0, run="stop-at-answer")
    for c in got:
        assert c.text == answer and c.token_ids == tiny.tokenizer(answer).input_ids and not c.truncated
        assert len(c.logprobs) == len(c.token_ids)
    s.load_adapter(None, 2, run="stop-at-answer")
