"""The SDPO loss against hand-computed values on tiny vocabularies."""

from __future__ import annotations

import math

import pytest
import torch

from sdpo_discover.sdpo import (
    divergence, grpo_advantages, importance_weights, kl, log_tail, reverse_kl_clipped, sdpo_loss, sequence_norm,
    topk_logprobs, trust_region_logits,
)

P = [0.7, 0.2, 0.1]
Q = [0.5, 0.25, 0.25]


def lp(x: list[float]) -> torch.Tensor:
    return torch.tensor([x], dtype=torch.float64).log()


def hand_kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_kl_directions_match_the_textbook() -> None:
    assert divergence(lp(P), lp(Q), 1.0).item() == pytest.approx(hand_kl(P, Q), abs=1e-12)  # reverse: KL(pi||q)
    assert divergence(lp(P), lp(Q), 0.0).item() == pytest.approx(hand_kl(Q, P), abs=1e-12)  # forward: KL(q||pi)
    assert hand_kl(P, Q) == pytest.approx(0.7 * math.log(1.4) + 0.2 * math.log(0.8) + 0.1 * math.log(0.4))


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.9])
def test_jsd_matches_the_textbook(alpha: float) -> None:
    m = [(1 - alpha) * a + alpha * b for a, b in zip(P, Q)]
    expected = (1 - alpha) * hand_kl(P, m) + alpha * hand_kl(Q, m)
    assert divergence(lp(P), lp(Q), alpha).item() == pytest.approx(expected, abs=1e-12)


def test_jsd_half_is_symmetric_and_zero_on_equal_inputs() -> None:
    assert divergence(lp(P), lp(Q), 0.5).item() == pytest.approx(divergence(lp(Q), lp(P), 0.5).item())
    for a in (0.0, 0.3, 1.0):
        assert divergence(lp(P), lp(P), a).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        divergence(lp(P), lp(Q), 1.5)


def test_topk_with_k_equal_vocab_is_the_full_divergence() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    full = divergence(torch.log_softmax(s, -1), torch.log_softmax(t, -1), 1.0)
    for k in (7, None, 100):
        sl, tl = topk_logprobs(s, t, k)
        assert torch.allclose(divergence(sl, tl, 1.0), full)


def test_tail_bucket_makes_each_side_sum_to_one() -> None:
    torch.manual_seed(1)
    s, t = torch.randn(4, 50), torch.randn(4, 50)
    sl, tl = topk_logprobs(s, t, 5, tail=True)
    assert sl.shape == (4, 6)
    assert torch.allclose(sl.exp().sum(-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(tl.exp().sum(-1), torch.ones(4), atol=1e-5)
    # the kept ids are the student's 5 most likely, and the teacher is read at the same ids
    ids = torch.log_softmax(s, -1).topk(5, -1).indices
    assert torch.allclose(tl[:, :5], torch.log_softmax(t, -1).gather(-1, ids))


def test_tail_bucket_hand_value_and_finite_when_topk_hold_everything() -> None:
    top = torch.tensor([[math.log(0.6), math.log(0.3)]])
    assert log_tail(top).item() == pytest.approx(math.log(0.1), rel=1e-5)
    assert torch.isfinite(log_tail(torch.tensor([[0.0, -100.0]]))).all()


def test_without_tail_the_topk_are_renormalised() -> None:
    s = torch.tensor([[math.log(0.5), math.log(0.3), math.log(0.2)]])
    t = torch.tensor([[math.log(0.2), math.log(0.2), math.log(0.6)]])
    sl, tl = topk_logprobs(s, t, 2, tail=False)
    assert torch.allclose(sl.exp(), torch.tensor([[0.5 / 0.8, 0.3 / 0.8]]))
    assert torch.allclose(tl.exp(), torch.tensor([[0.5, 0.5]]))


def test_gradient_is_the_policy_gradient_with_advantage_log_q_minus_log_pi() -> None:
    # Paper Prop. 2.1: d KL(pi||q) / d z_j = -sum_v d pi(v)/d z_j * (log q(v) - log pi(v)),
    # which for a softmax equals pi_j * (log pi_j - log q_j - KL).
    z = torch.tensor([[1.0, -0.5, 0.3, 2.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    kl(torch.log_softmax(z, -1), q.log()).sum().backward()
    pi = torch.softmax(z.detach(), -1)
    adv = q.log() - pi.log()
    hand = pi * (-adv - (pi * -adv).sum())
    assert torch.allclose(z.grad, hand)
    z2 = z.detach().clone().requires_grad_(True)
    pi2 = torch.softmax(z2, -1)
    (-(pi2 * adv).sum()).backward()  # the policy-gradient surrogate with a detached advantage
    assert torch.allclose(z2.grad, z.grad)


def test_advantage_clip_changes_only_the_gradient_of_clipped_logits() -> None:
    z = torch.tensor([[0.0, 0.0, -8.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[0.2, 0.2, 0.6]], dtype=torch.float64).log()  # log q - log pi = about 7.4 at id 2
    s = torch.log_softmax(z, -1)
    loss = reverse_kl_clipped(s, q, adv_clip=5.0)
    assert loss.item() == pytest.approx(kl(s, q).item())  # the value is the true KL
    loss.sum().backward()
    pi = torch.softmax(z.detach(), -1)
    adv = (q - pi.log()).clamp(max=5.0)
    hand = pi * (-adv - (pi * -adv).sum())
    assert torch.allclose(z.grad, hand)
    z_unclipped = z.detach().clone().requires_grad_(True)
    reverse_kl_clipped(torch.log_softmax(z_unclipped, -1), q, adv_clip=1e9).sum().backward()
    assert not torch.allclose(z.grad, z_unclipped.grad)


def test_importance_weights() -> None:
    now = torch.tensor([-1.0, -1.0, -1.0])
    old = torch.tensor([-1.0, -2.0, -0.5])
    assert torch.allclose(importance_weights(now, old), torch.tensor([1.0, 2.0, math.exp(-0.5)]))  # e^1 clipped at 2
    assert torch.equal(importance_weights(now, None), torch.ones(3))


def test_sdpo_loss_token_mean_masking_and_stop_gradient() -> None:
    torch.manual_seed(2)
    s = torch.randn(4, 6, requires_grad=True)
    t = torch.randn(4, 6, requires_grad=True)
    ids = torch.tensor([0, 1, 2, 3])
    mask = torch.tensor([1.0, 1.0, 0.0, 1.0])
    loss, stats = sdpo_loss(s, t, ids, mask, top_k=None, adv_clip=None)
    per_tok = kl(torch.log_softmax(s, -1), torch.log_softmax(t, -1))
    assert loss.item() == pytest.approx(((per_tok * mask).sum() / 3).item(), rel=1e-6)
    loss.backward()
    assert t.grad is None  # no gradient reaches the teacher
    assert torch.count_nonzero(s.grad[2]) == 0  # a masked token contributes exactly zero
    assert stats["tokens"].item() == 3 and stats["is_weight"].item() == pytest.approx(1.0)


def test_masked_positions_cannot_poison_the_loss() -> None:
    s = torch.zeros(2, 3, requires_grad=True)
    with torch.no_grad():
        bad = s.clone()
        bad[1] = float("nan")
    s2 = bad.clone().requires_grad_(True)
    t = torch.zeros(2, 3)
    loss, _ = sdpo_loss(s2, t, torch.tensor([0, 0]), torch.tensor([1.0, 0.0]), top_k=None, adv_clip=None)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(s2.grad).all() and torch.equal(s2.grad[1], torch.zeros(3))  # the masked row: exactly 0
    assert s2.grad[0].abs().max() < 1e-6  # student = teacher at row 0: KL 0 and a zero gradient (up to rounding)
    # with the default top-K, tail bucket and advantage clip too, and a NaN in the teacher's masked row
    s3 = torch.tensor([[1.0, 0.0, -1.0], [float("nan")] * 3], requires_grad=True)
    t3 = torch.tensor([[0.0, 0.0, 0.0], [float("nan")] * 3])
    loss, _ = sdpo_loss(s3, t3, torch.tensor([0, 0]), torch.tensor([1.0, 0.0]), top_k=2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s3.grad).all() and torch.equal(s3.grad[1], torch.zeros(3))
    assert s3.grad[0].abs().sum() > 0


def test_sequence_norm_weighs_attempts_equally_and_token_norm_weighs_tokens() -> None:
    """Two attempts, of 1 and 3 tokens, with per-token KLs a and b, c, d (hand-computed below).
    sequence: (a / 1 + (b + c + d) / 3) / 2;  token: (a + b + c + d) / 4."""
    s = torch.log(torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8]], dtype=torch.float64))
    t = torch.log(torch.tensor([[0.4, 0.6], [0.5, 0.5], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64))
    per = [hand_kl(p, q) for p, q in ([[0.7, 0.3], [0.4, 0.6]], [[0.5, 0.5], [0.5, 0.5]], [[0.9, 0.1], [0.6, 0.4]],
                                      [[0.2, 0.8], [0.3, 0.7]])]
    ids, mask = torch.zeros(4, dtype=torch.long), torch.ones(4)
    assert sequence_norm([1, 3]).tolist() == [2.0, 6.0, 6.0, 6.0]  # len_i * G
    seq, _ = sdpo_loss(s, t, ids, mask, top_k=None, adv_clip=None, norm=sequence_norm([1, 3]))
    tok, _ = sdpo_loss(s, t, ids, mask, top_k=None, adv_clip=None, norm=4.0)
    assert seq.item() == pytest.approx((per[0] / 1 + sum(per[1:]) / 3) / 2, rel=1e-9)
    assert tok.item() == pytest.approx(sum(per) / 4, rel=1e-9)
    # micro-batches: each passes its own attempts' lengths and the batch's G; the parts add up to the whole
    a, _ = sdpo_loss(s[:1], t[:1], ids[:1], mask[:1], top_k=None, adv_clip=None, norm=sequence_norm([1], 2))
    b, _ = sdpo_loss(s[1:], t[1:], ids[1:], mask[1:], top_k=None, adv_clip=None, norm=sequence_norm([3], 2))
    assert (a + b).item() == pytest.approx(seq.item(), rel=1e-12)


def test_trust_region_teacher_mixes_as_the_authors_define_it() -> None:
    """lerp(reference, student, c) = (1 - c) * reference + c * student: c = 0.05 is mostly the reference."""
    ref, stu = torch.tensor([[1.0, 0.0, -2.0]]), torch.tensor([[0.0, 4.0, 2.0]])
    got = trust_region_logits(ref, stu, 0.05)
    assert got[0].tolist() == pytest.approx([0.95 * 1.0, 0.05 * 4.0, 0.95 * -2.0 + 0.05 * 2.0])
    assert torch.equal(trust_region_logits(ref, stu, 0.0), ref) and torch.equal(trust_region_logits(ref, stu, 1.0), stu)


def test_temperature_divides_both_sides() -> None:
    s, t = torch.tensor([[2.0, 0.0, -2.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    got, _ = sdpo_loss(s, t, torch.tensor([0]), torch.ones(1), temperature=2.0, top_k=None, adv_clip=None)
    want = kl(torch.log_softmax(s / 2, -1), torch.log_softmax(t / 2, -1))
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_grpo_advantages() -> None:
    assert torch.equal(grpo_advantages(torch.zeros(4)), torch.zeros(4))  # no success yet: no signal
    a = grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert a[0].item() == pytest.approx(0.75 / math.sqrt(0.1875), rel=1e-5) and a.sum().abs().item() < 1e-5


def test_bf16_logits_are_divided_in_fp32_after_the_upcast() -> None:
    """A bf16 model's logits: upcast, then / T in fp32, so the loss is the fp32 loss of the same values exactly
    (dividing in bf16 first, as the loss once did, rounds logits / 0.7 to 8 bits and moves the loss)."""
    torch.manual_seed(4)
    s16 = (torch.randn(8, 50) * 3).bfloat16().requires_grad_(True)
    t16 = (torch.randn(8, 50) * 3).bfloat16()
    s32 = s16.detach().float().requires_grad_(True)
    ids, mask = torch.randint(0, 50, (8,)), torch.ones(8)
    got, _ = sdpo_loss(s16, t16, ids, mask, temperature=0.7, top_k=5)
    want, _ = sdpo_loss(s32, t16.float(), ids, mask, temperature=0.7, top_k=5)
    assert got.dtype == torch.float32 and torch.equal(got, want)
    got.backward()
    want.backward()
    assert s16.grad is not None and s16.grad.dtype == torch.bfloat16  # the in-place division kept the graph
    assert torch.allclose(s16.grad.float(), s32.grad, rtol=1e-2, atol=1e-4)  # the same gradient, rounded to bf16


def test_on_policy_weights_equal_weights_from_the_sampled_log_probs() -> None:
    """logp_old None (on-policy: w_t = 1 without computing log pi(y_t)) gives the value and gradient that
    logp_old = the student's own log-probs of the sampled tokens gives (w_t = exp(0))."""
    torch.manual_seed(5)
    s = torch.randn(6, 30, requires_grad=True)
    t = torch.randn(6, 30)
    ids, mask = torch.randint(0, 30, (6,)), torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    old = torch.log_softmax(s.detach() / 0.7, -1).gather(-1, ids[:, None]).squeeze(-1)
    a, sa = sdpo_loss(s, t, ids, mask, temperature=0.7)
    (ga,) = torch.autograd.grad(a, s)
    b, sb = sdpo_loss(s, t, ids, mask, temperature=0.7, logp_old=old)
    (gb,) = torch.autograd.grad(b, s)
    assert a.item() == pytest.approx(b.item(), rel=1e-6) and torch.allclose(ga, gb, rtol=1e-5, atol=1e-8)
    assert sb["is_weight"].item() == pytest.approx(1.0, abs=1e-6) and sa["is_weight"].item() == 1.0
    c, _ = sdpo_loss(s, t, ids, mask, temperature=0.7, logp_old=old - 0.5)  # off-policy: weights e^0.5 > 1
    assert c.item() == pytest.approx(a.item() * math.exp(0.5), rel=1e-5)
