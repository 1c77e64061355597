"""The tensor-memory measure bench/learner.py reports for issue 3's memory target: it must count what
is allocated, not what is viewed or overwritten, and count FakeTensors as it counts real ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import learner as bench_learner  # noqa: E402

from sdpo_discover.models import tiny_model  # noqa: E402
from sdpo_discover.sdpo import Rollout, SDPOConfig, SDPOLearner, attach_lora  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def test_live_tensor_bytes_counts_allocations_not_views_or_in_place_writes() -> None:
    w = torch.ones(1000)  # made before the block: not counted
    with bench_learner.live_tensor_bytes() as t:
        a = torch.zeros(250, 4)  # 4000 bytes
        v = a.view(-1)[:10]  # a view: nothing new
        a.add_(1.0)  # in place: nothing new
        w.mul_(2.0)  # in place on an outside tensor: nothing new
        wt = w.view(10, 100).t()  # views of an outside tensor: nothing new
        assert t.now == 4000
        b = a * 2  # 4000 more
        assert t.now == t.peak == 8000
        del a, v  # the view kept a's storage alive until now
        assert t.now == 4000
        c = torch.empty(100, dtype=torch.float64)  # 800
        assert t.now == 4800 and t.peak == 8000
    del b, c, wt


def test_fake_tensors_count_what_real_ones_do_on_the_naive_step() -> None:
    model, tok = tiny_model(vocab_size=64, hidden_size=32)
    torch.manual_seed(0)
    model = attach_lora(model, SDPOConfig(lora_r=4))
    learner = SDPOLearner(model, SDPOConfig(lora_r=4), pad_id=tok.pad_token_id)
    g = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(8, 64, (n,), generator=g).tolist()

    x, c = ids(12), ids(20)
    rollouts = [Rollout(x, ids(16), c) for _ in range(3)]
    real = bench_learner.live_tensor_bytes()
    with real:
        bench_learner.naive_step(learner, rollouts)
    fake = bench_learner.live_tensor_bytes()
    with FakeTensorMode(allow_non_fake_inputs=True), fake:
        bench_learner.naive_step(learner, rollouts, fake=True)
    # the (B, T, V) logits of student and teacher alone: 3 x (12 + 16) and 3 x (20 + 16) positions x 64 x 4 bytes
    assert real.peak > 3 * (12 + 16 + 20 + 16) * 64 * 4
    assert fake.peak == real.peak
