"""The SDPO update on a tiny random Llama built in-process: teacher arithmetic, what is trained,
the chunked path equals the naive one, and that repeated steps move the student toward a teacher
that knows the answer."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sdpo_discover.sdpo import (Rollout, SDPOConfig, SDPOLearner, Teacher, attach_lora, can_pack, encode_prefix, kl,
                                response_hidden, shared_prefix_len)
from sdpo_discover.prompts import teacher_message

X = [1, 2, 3, 4]  # the question
C = [1, 2, 3, 4, 30, 31]  # the teacher's context: the question + "feedback" that reveals the answer
ANSWER = [7, 8, 9, 10]
WRONG = [11, 12, 13, 14]


def tiny_llama(seed: int = 0, attn: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      attn_implementation=attn)
    return LlamaForCausalLM(cfg).eval()


def knowing_teacher_model(x: list[int] = X, c: list[int] = C, answer: list[int] = ANSWER,
                          wrong: list[int] = WRONG) -> LlamaForCausalLM:
    """A base model that continues c with answer and x with wrong: the feedback context carries the answer."""
    m = tiny_llama()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    batch = torch.tensor([c + answer, x + wrong + [0] * (len(c) - len(x))])
    labels = batch.clone()
    labels[1, len(x) + len(wrong) :] = -100  # the padding carries no loss
    m.train()
    for _ in range(60):
        opt.zero_grad()
        m(input_ids=batch, labels=labels).loss.backward()
        opt.step()
    return m.eval()


def seq_logp(model: torch.nn.Module, ctx: list[int], resp: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + resp])).logits[0, len(ctx) - 1 : -1]  # (R, V)
        return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(resp)[:, None]).sum().item()


def test_teacher_message_follows_the_template() -> None:
    assert teacher_message("Q", None, None) is None
    assert teacher_message("Q", "Wrong Answer", None) == (
        "Q\nThe following is feedback from your unsuccessful earlier attempt:\n\nWrong Answer\n\n"
        "\nCorrectly solve the original question.\n")
    assert teacher_message("Q", "fb", "sol") == (
        "Q\nCorrect solution:\n\nsol\n\n\nThe following is feedback from your unsuccessful earlier attempt:\n\n"
        "fb\n\n\nCorrectly solve the original question.\n")
    # restate_format: the paper's text unchanged, then the question's answer line once more, last
    assert teacher_message("Q", "fb", None, restate_format=True) == (
        "Q\nThe following is feedback from your unsuccessful earlier attempt:\n\nfb\n\n"
        "\nCorrectly solve the original question.\n\n### Answer: (use the provided format with backticks)\n")
    assert teacher_message("Q", None, None, restate_format=True) is None


def test_ema_arithmetic() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    model = torch.nn.Module()
    model.w = p
    t = Teacher(model, "ema", ema_rate=0.25)
    with torch.no_grad():
        p.copy_(torch.tensor([5.0, 6.0]))
    t.update()  # 0.75 * [1, 2] + 0.25 * [5, 6]
    assert torch.allclose(t.shadow["w"], torch.tensor([2.0, 3.0]))
    t.update()  # 0.75 * [2, 3] + 0.25 * [5, 6]
    assert torch.allclose(t.shadow["w"], torch.tensor([2.75, 3.75]))
    with t.weights():
        assert torch.allclose(p, torch.tensor([2.75, 3.75]))
    assert torch.allclose(p, torch.tensor([5.0, 6.0]))  # restored
    frozen = Teacher(model, "frozen", ema_rate=0.25)
    frozen.update()
    assert torch.allclose(frozen.shadow["w"], torch.tensor([5.0, 6.0]))


def test_config_validation_names_the_field_and_value() -> None:
    with pytest.raises(ValueError, match=r"'sdpo.alpha' = 2: must be in \[0, 1\]"):
        SDPOConfig(alpha=2)
    with pytest.raises(ValueError, match=r"'sdpo.teacher' = 'magic'"):
        SDPOConfig(teacher="magic")
    with pytest.raises(ValueError, match=r"'sdpo.top_k' = 0"):
        SDPOConfig(top_k=0)


def test_one_step_changes_the_adapter_and_not_the_base() -> None:
    model = attach_lora(tiny_llama(), SDPOConfig())
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    learner = SDPOLearner(model, SDPOConfig(lr=1e-2))
    st = learner.step([Rollout(X, WRONG, C), Rollout(X, ANSWER, C)])
    assert st.tokens == 8 and st.loss > 0 and st.grad_norm > 0
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if not p.requires_grad)
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, lora[n])]
    assert changed, "no adapter weight changed"
    # EMA teacher after one step: 0.99 * initial + 0.01 * new
    for n, p in learner.teacher.params.items():
        assert torch.allclose(learner.teacher.shadow[n], 0.99 * lora[n] + 0.01 * p.detach(), atol=1e-6)


def test_rollouts_without_feedback_teach_nothing() -> None:
    model = attach_lora(tiny_llama(), SDPOConfig())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    st = SDPOLearner(model, SDPOConfig(lr=1e-2)).step([Rollout(X, WRONG, None)])
    assert st.rollouts == 0 and all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def _grads(chunk: int, micro: int, top_k: int | None, share_prefix: bool = True,
           rollouts: list[Rollout] | None = None, targets: tuple[str, ...] | None = None,
           pack: bool = True, attn: str = "sdpa", checkpointing: bool = False) -> dict[str, torch.Tensor]:
    lora = {"lora_targets": targets} if targets else {}
    model = attach_lora(tiny_llama(attn=attn), SDPOConfig(**lora))
    with torch.no_grad():  # non-zero B so that gradients reach A too
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    cfg = SDPOConfig(logit_chunk=chunk, micro_batch_size=micro, top_k=top_k, lr=1e-3, grad_clip=1e9,
                     share_prefix=share_prefix, pack=pack, gradient_checkpointing=checkpointing, **lora)
    learner = SDPOLearner(model, cfg)
    learner.opt.step = lambda: None  # keep the gradients, skip the update
    learner.step(rollouts or [Rollout(X, WRONG, C), Rollout(X + [5], ANSWER + [6], C), Rollout(X, [9, 9], C)])
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("top_k", [None, 5])
def test_chunking_and_micro_batching_do_not_change_the_gradient(top_k: int | None) -> None:
    ref = _grads(chunk=10_000, micro=100, top_k=top_k)
    for chunk, micro in ((1, 1), (3, 2)):
        got = _grads(chunk, micro, top_k)
        for n in ref:
            assert torch.allclose(got[n], ref[n], atol=1e-6, rtol=1e-4), n


def test_shared_prefix_len_leaves_every_context_its_last_token() -> None:
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # identical: position 2 predicts y_0, so it stays out
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3, 4, 5]]) == 2
    assert shared_prefix_len([[7, 2], [1, 2]]) == 0
    assert shared_prefix_len([[1]]) == 0


@pytest.mark.parametrize("attn", ["sdpa", "eager"])  # the two attentions that take packing's 4D mask
def test_prefix_cache_gives_the_hidden_states_of_the_full_forward(attn: str) -> None:
    model = attach_lora(tiny_llama(attn=attn), SDPOConfig())
    assert model.config._attn_implementation == attn and can_pack(model)
    ctx, resp = [X + [5, 6], X + [7], C], [WRONG, ANSWER + [6, 6], [9]]  # ragged: padding inside the suffixes
    with torch.no_grad():
        full = response_hidden(model, ctx, resp)  # (N, H)
        n = shared_prefix_len(ctx)
        assert n == len(X)
        cached = response_hidden(model, ctx, resp, prefix=encode_prefix(model, ctx[0][:n]))  # (N, H)
    assert cached.shape == full.shape and torch.allclose(cached, full, atol=1e-5)
    with torch.no_grad():
        packed = response_hidden(model, ctx, resp, prefix=encode_prefix(model, ctx[0][:n]), pack=True)  # (N, H)
    assert packed.shape == full.shape and torch.allclose(packed, full, atol=1e-5)  # one row, no padding
    # an attention that ignores a 4D mask is never handed one: the padded path runs instead
    model.config._attn_implementation = "flash_attention_2"
    assert not can_pack(model)


@pytest.mark.parametrize("micro", [1, 3])
def test_repeated_teacher_contexts_run_once_and_give_the_full_forwards_states(micro: int) -> None:
    model = attach_lora(tiny_llama(), SDPOConfig())
    learner = SDPOLearner(model, SDPOConfig(micro_batch_size=micro))
    q = X + [20, 21]
    ctx = [q + [30, 31], q + [29], q + [30, 31], q + [30, 31], q + [28, 27, 26], q + [29], q + [25]]
    resp = [WRONG, [9], ANSWER + [6], [3, 4], WRONG[:2], [7, 7, 7], [8]]  # ragged inside each group
    real_tokens: list[int] = []  # per trunk forward, padding excluded

    def count(mod: torch.nn.Module, args: tuple, kw: dict, out: object) -> None:
        ids, att = kw["input_ids"], kw.get("attention_mask")
        packed = att is None or att.dim() == 4  # a packed row's block mask: it has no padding
        real_tokens.append(ids.numel() if packed else int(att[:, -ids.shape[1]:].sum()))

    model.get_base_model().model.register_forward_hook(count, with_kwargs=True)
    with torch.no_grad():
        got = learner._context_hidden(ctx, resp)  # (N, H)
        full = response_hidden(model, ctx, resp)  # (N, H): every context in full, no cache
    assert got.shape == full.shape and torch.allclose(got, full, atol=1e-5)
    # q once; the rest of each distinct context once ([30] for the 3 repeats, [28, 27] for a single one;
    # [29] and [25] have no middle); then per rollout its context's last token and its response
    assert sum(real_tokens[:-1]) == len(q) + 3 + sum(1 + len(r) for r in resp)
    assert real_tokens[-1] == sum(len(c) + len(r) for c, r in zip(ctx, resp))


@pytest.mark.parametrize("micro, targets", [(1, None), (2, None), (100, None), (2, ("v_proj", "down_proj"))])
def test_sharing_the_prompt_does_not_change_the_gradient(micro: int, targets: tuple[str, ...] | None) -> None:
    # targets without k_proj: layer 0's cached keys depend on no adapter weight (no gradient to carry back)
    # 5 rollouts on one prompt (as in a solve step), teacher contexts with a shared prefix but different feedback
    q = X + [20, 21, 22]
    rs = [Rollout(q, WRONG, q + [30, 31]), Rollout(q, ANSWER + [6], q + [30]), Rollout(q, [9, 9], q + [29, 28, 27]),
          Rollout(q, [3], q + [30, 31]), Rollout(q, WRONG[:2] + ANSWER, None)]
    ref = _grads(chunk=7, micro=micro, top_k=5, share_prefix=False, rollouts=rs, targets=targets)
    # padded rows after the prefix; one packed row, under both attentions that take its mask
    for pack, attn in ((False, "sdpa"), (True, "sdpa"), (True, "eager")):
        got = _grads(chunk=7, micro=micro, top_k=5, share_prefix=True, rollouts=rs, targets=targets, pack=pack,
                     attn=attn)
        for n in ref:
            assert ref[n].abs().max() > 0, n
            assert torch.allclose(got[n], ref[n], atol=1e-6, rtol=1e-4), (n, pack, attn)


@pytest.mark.parametrize("share_prefix, pack", [(False, False), (True, False), (True, True)])
def test_gradient_checkpointing_does_not_change_the_gradient(share_prefix: bool, pack: bool) -> None:
    # checkpointing drops a layer's cache, so the student runs its prompts in full whatever share_prefix says
    # (SDPOLearner.step); the teacher (no grad) still shares and packs them, on the checkpointed model
    q = X + [20, 21, 22]
    rs = [Rollout(q, WRONG, q + [30, 31]), Rollout(q, ANSWER + [6], q + [30]), Rollout(q, [9, 9], q + [29, 28, 27])]
    ref = _grads(chunk=7, micro=2, top_k=5, share_prefix=False, rollouts=rs)
    got = _grads(chunk=7, micro=2, top_k=5, share_prefix=share_prefix, rollouts=rs, pack=pack, checkpointing=True)
    for n in ref:
        assert ref[n].abs().max() > 0 and torch.allclose(got[n], ref[n], atol=1e-6, rtol=1e-4), n


def test_repeated_steps_raise_the_probability_of_the_answer() -> None:
    base = knowing_teacher_model()
    assert seq_logp(base, C, ANSWER) > seq_logp(base, X, ANSWER) + 5  # the teacher knows, the student does not
    model = attach_lora(base, SDPOConfig())
    learner = SDPOLearner(model, SDPOConfig(lr=5e-3, top_k=20))
    start = seq_logp(model, X, ANSWER)
    for _ in range(15):
        learner.step([Rollout(X, WRONG, C), Rollout(X, ANSWER, C)])
    end = seq_logp(model, X, ANSWER)
    assert end > start + 2.0, (start, end)
    # and the student's next-token distribution moved toward the teacher's on the answer
    with torch.no_grad():
        s = torch.log_softmax(model(input_ids=torch.tensor([X])).logits[0, -1], -1)
        with learner.teacher.weights():
            t = torch.log_softmax(model(input_ids=torch.tensor([C])).logits[0, -1], -1)
    assert s.argmax().item() == ANSWER[0]
    assert kl(s[None], t[None]).item() < 1.0


@pytest.mark.parametrize("teacher", ["frozen", "current", "trust-region"])
def test_other_teachers_run(teacher: str) -> None:
    model = attach_lora(knowing_teacher_model(), SDPOConfig())
    learner = SDPOLearner(model, SDPOConfig(teacher=teacher, lr=5e-3))
    start = seq_logp(model, X, ANSWER)
    for _ in range(5):
        learner.step([Rollout(X, ANSWER, C)])
    assert seq_logp(model, X, ANSWER) > start


def test_hybrid_grpo_uses_rewards_without_feedback() -> None:
    model = attach_lora(tiny_llama(), SDPOConfig())
    learner = SDPOLearner(model, SDPOConfig(hybrid_lambda=0.9, lr=1e-2))
    start = seq_logp(model, X, ANSWER)
    for _ in range(5):
        st = learner.step([Rollout(X, ANSWER, None, reward=1.0), Rollout(X, WRONG, None, reward=0.0)])
    assert st.rollouts == 2 and seq_logp(model, X, ANSWER) > start


@pytest.mark.parametrize("micro", [1, 2])
def test_loss_norm_sequence_averages_attempts_and_token_averages_tokens(micro: int) -> None:
    """Two attempts of 2 and 6 tokens. Alone, each gives the loss L_i = its own token mean. Together:
    sequence (the authors' runs): (L_1 + L_2) / 2; token: (2 L_1 + 6 L_2) / 8 (the long one weighs 3x).
    In float64: the packed micro-batch sums in another order than each attempt alone (float32 differs in the
    5th digit of a KL of 2e-3), and the check is of the averaging, not of the rounding."""
    a, b = Rollout(X, WRONG[:2], C), Rollout(X, WRONG + [15, 16], C)

    def loss(rollouts: list[Rollout], norm: str) -> float:
        model = attach_lora(tiny_llama().double(), SDPOConfig()).double()
        return SDPOLearner(model, SDPOConfig(loss_norm=norm, micro_batch_size=micro)).step(rollouts).loss

    l1, l2 = loss([a], "sequence"), loss([b], "sequence")
    assert l1 == pytest.approx(loss([a], "token"), rel=1e-6) and l1 != pytest.approx(l2)  # one attempt: the same
    assert loss([a, b], "sequence") == pytest.approx((l1 + l2) / 2, rel=1e-9)
    assert loss([a, b], "token") == pytest.approx((2 * l1 + 6 * l2) / 8, rel=1e-9)


def _bf16_grads(in_model_dtype: bool) -> tuple[dict[str, torch.Tensor], set[torch.dtype]]:
    """Gradients of one step on a bf16 model whose EMA teacher differs from the student, and the dtypes the
    adapter's A matmuls returned."""
    model = attach_lora(tiny_llama().to(torch.bfloat16), SDPOConfig())
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    cfg = SDPOConfig(lr=1e-3, grad_clip=1e9, adapter_in_model_dtype=in_model_dtype)
    learner = SDPOLearner(model, cfg)
    for t in learner.teacher.shadow.values():  # a teacher far from the student: a stale weight would show
        t.normal_(0, 0.5)
    seen: set[torch.dtype] = set()
    for n, mod in model.named_modules():
        if n.endswith("lora_A.default"):
            mod.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    learner.opt.step = lambda: None  # keep the gradients
    learner.step([Rollout(X, WRONG, C), Rollout(X + [5], ANSWER + [6], C), Rollout(X, [9, 9], C + [2])])
    assert all(p.dtype == torch.float32 for p in learner.params)  # the adapter's weights stay fp32 either way
    return {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}, seen


def test_a_bf16_models_adapter_runs_in_bf16_with_the_fp32_gradient() -> None:
    """sdpo.adapter_in_model_dtype: the LoRA matmuls of a bf16 model run in bf16, and the gradient is the
    fp32 adapter's to bf16 rounding. The EMA teacher's weights differ from the student's here, and the
    teacher runs in the same autocast region as the student's prompt: a cached cast of the swapped-in
    weights would give the student the teacher's adapter and a different gradient."""
    on, dtypes_on = _bf16_grads(True)
    off, dtypes_off = _bf16_grads(False)
    assert dtypes_on == {torch.bfloat16} and dtypes_off == {torch.float32}
    num = sum(float((on[n] - off[n]).norm() ** 2) for n in off) ** 0.5
    den = sum(float(off[n].norm() ** 2) for n in off) ** 0.5
    assert den > 0 and num / den < 0.03, f"relative gradient difference {num / den:.4f}"
