"""bench/update_cost.py's count of an update's floating-point work, against a hand-computed value."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import update_cost  # noqa: E402

from sdpo_discover.models import tiny_model  # noqa: E402


def test_work_counts_the_trunk_the_attention_and_the_head_and_a_backward_only_with_grad() -> None:
    model, _ = tiny_model()  # hidden 32, 2 layers, MLP 64, 4 heads of 8, 2 KV heads, vocab 64, untied head
    work = update_cost.Work(model)
    # per layer: q 32x32, k 32x16, v 32x16, o 32x32, gate 32x64, up 32x64, down 64x32
    assert work.trunk_params == 2 * (1024 + 512 + 512 + 1024 + 2048 + 2048 + 2048) == 18432
    assert work.head_params == 64 * 32
    ids = torch.randint(0, 64, (2, 5))
    with torch.no_grad():
        model(input_ids=ids)
    # trunk: 2 * 18432 * 10 tokens; attention: 4 * 2 layers * 32 * 10 tokens * (0 past + (5 + 1) / 2);
    # head: 2 * 2048 * 10 rows
    hand = 2 * 18432 * 10 + 4 * 2 * 32 * 10 * 3 + 2 * 2048 * 10
    assert work.fwd == hand == 417280
    assert work.bwd == 0 and work.tokens == {"no grad": 10, "grad": 0}
    model(input_ids=ids)  # with grad: the backward counted as one more forward
    assert work.fwd == 2 * hand and work.bwd == hand and work.tokens["grad"] == 10


def test_matmul_rate_is_positive() -> None:
    assert update_cost.matmul_gflops(32, torch.float32, reps=1) > 0


def test_generation_samples_the_batch_plain_and_through_a_saved_adapter(tmp_path: Path) -> None:
    from sdpo_discover.config import SolveConfig
    from sdpo_discover.sdpo import attach_lora

    model, tok = tiny_model()
    cfg = SolveConfig(problem="p.json", sampler="hf", max_new_tokens=6, gen_batch_size=4)
    peft_model = attach_lora(model, cfg.sdpo)
    prompt = tok("def f(x):")["input_ids"]
    gen = update_cost.Generation(cfg, {"temperature": 0.7, "top_p": 0.95}, None, peft_model, tok, prompt, n=4, step=0)
    seconds, tokens = gen.plain()
    assert seconds > 0 and 4 <= tokens <= 4 * 6  # 4 samples of 1 to 6 tokens
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 1.0)  # an adapter that changes the samples
    peft_model.save_pretrained(str(tmp_path / "v1"))
    assert gen.through(tmp_path / "v1", 1)[1] >= 4
    assert gen.sampler.adapter_version == 1 and not gen.sampler._use_base
    gen.plain()
    assert gen.sampler._use_base  # plain is the base model again: best-of-k's batch
