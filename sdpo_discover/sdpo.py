"""Self-Distillation Policy Optimization (SDPO) at test time: the loss, the self-teacher, one update.

Hübotter et al., "Reinforcement Learning via Self-Distillation" (arXiv 2601.20802), sections 2 and 5;
docs/reference/SDPO.md summarises the settings. Imports only torch (and the settings dataclass): the
model is any transformers-style causal LM with a peft LoRA adapter; prompts arrive as token ids (their
text is built in prompts.py).

    loss functions   topk_logprobs, divergence, reverse_kl_clipped, sdpo_loss, sequence_norm, grpo_*   (pure)
    the teacher      Teacher (EMA / frozen / trust-region / current)
    one update       Rollout, SDPOLearner.step (settings: config.SDPOConfig)

Notation (docs/reference/SDPO.md section 2, paper section 2): for each response token t the student gives
log pi(.|x, y_<t) and the self-teacher, re-prompted with feedback, gives log q(.|c, y_<t), over the
same response tokens. Shapes: N = number of response positions (flattened over the batch), V = the
vocabulary, K = top-K kept ids (+1 with the tail bucket).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .config import TEACHERS, SDPOConfig

_TAIL_EPS = 1e-6  # keeps log(1 - sum top-K p) finite when the top-K hold (almost) all the mass


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits -> fp32 before any softmax (fp64 stays fp64)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def log_tail(top_logp: torch.Tensor) -> torch.Tensor:
    """log(1 - sum_k p_k) of the mass outside the top-K, clamped finite.  (N, K) -> (N, 1)"""
    lse = torch.logsumexp(top_logp, dim=-1, keepdim=True)  # (N, 1) = log sum_k p_k <= 0
    return torch.log(-torch.expm1(lse.clamp(max=-_TAIL_EPS)))  # log(1 - exp(lse))


def topk_logprobs(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, k: int | None, tail: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher log-probs restricted to the student's top-K ids.

    student_logits, teacher_logits: (N, V), already divided by the sampling temperature.
    Returns (student_logp, teacher_logp), each (N, K+1) with the tail bucket
    log(1 - sum_topK p) as the last column, or (N, K) renormalised over the K ids without it.
    k = None or k >= V keeps the full vocabulary: (N, V), exact.
    Paper section 2 ("top-K distillation"): K = 20 for code and test time.
    """
    s_logp = F.log_softmax(_upcast(student_logits), dim=-1)  # (N, V)
    t_logp = F.log_softmax(_upcast(teacher_logits), dim=-1)  # (N, V)
    return _restrict_topk(s_logp, t_logp, k, tail)


def _scaled_logp(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log_softmax(logits / T) in fp32 or wider.  (N, V) -> (N, V)

    bf16/fp16 logits are upcast first and divided in place on that fresh copy: one (N, V) fp32 tensor
    instead of a divided low-precision copy and then its upcast (with a 151k vocabulary each is ~150 MiB
    per 256-position chunk), and the division rounds in fp32, not in bf16. fp32/fp64 logits are divided
    out of place, exactly as before (x / 1.0 is x)."""
    x = _upcast(logits)
    if temperature != 1.0:
        x = x.div_(temperature) if x is not logits else x / temperature  # the copy is ours; autograd allows it
    return F.log_softmax(x, dim=-1)


def _restrict_topk(
    s_logp: torch.Tensor, t_logp: torch.Tensor, k: int | None, tail: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """topk_logprobs on full-vocabulary log-probs.  (N, V) x2 -> (N, K') x2"""
    if k is None or k >= s_logp.shape[-1]:
        return s_logp, t_logp
    s_top, idx = s_logp.topk(k, dim=-1)  # (N, K), (N, K): ids chosen by the student
    t_top = t_logp.gather(-1, idx)  # (N, K): the teacher at the same ids
    if tail:
        return torch.cat([s_top, log_tail(s_top)], -1), torch.cat([t_top, log_tail(t_top)], -1)  # (N, K+1)
    return s_top - torch.logsumexp(s_top, -1, keepdim=True), t_top - torch.logsumexp(t_top, -1, keepdim=True)


def kl(p_logp: torch.Tensor, q_logp: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_v p(v) (log p(v) - log q(v)) over the last axis.  (N, V) -> (N,)"""
    return (p_logp.exp() * (p_logp - q_logp)).sum(-1)


def divergence(student_logp: torch.Tensor, teacher_logp: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-token divergence D_t between student pi and teacher q.  (N, V) x2 -> (N,)

    alpha = 1: reverse KL, KL(pi || q) (the paper's choice for code and test time);
    alpha = 0: forward KL, KL(q || pi);
    0 < alpha < 1: generalised Jensen-Shannon with M = (1 - alpha) pi + alpha q,
        D = (1 - alpha) KL(pi || M) + alpha KL(q || M).
    docs/reference/SDPO.md section 2, step 5. The teacher must already be detached.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 1.0:
        return kl(student_logp, teacher_logp)
    if alpha == 0.0:
        return kl(teacher_logp, student_logp)
    log_m = torch.logsumexp(
        torch.stack([student_logp + math.log(1 - alpha), teacher_logp + math.log(alpha)]), dim=0
    )  # (N, V): log of the mixture
    return (1 - alpha) * kl(student_logp, log_m) + alpha * kl(teacher_logp, log_m)


def reverse_kl_clipped(student_logp: torch.Tensor, teacher_logp: torch.Tensor, adv_clip: float) -> torch.Tensor:
    """Reverse KL whose gradient uses the per-logit advantage A = log q - log pi clamped at adv_clip.

    The gradient of KL(pi || q) is -sum_v grad pi(v) * A(v) (paper Prop. 2.1: a policy gradient with
    per-token, per-logit advantage log q - log pi). The test-time runs clip A from above at 5.0.
    Value: the reverse KL itself (for logging); gradient: -sum_v grad pi(v) * min(A(v), adv_clip).
    (N, V) x2 -> (N,)
    """
    adv = (teacher_logp - student_logp).detach().clamp(max=adv_clip)  # (N, V)
    surrogate = -(student_logp.exp() * adv).sum(-1)  # (N,)
    value = kl(student_logp, teacher_logp).detach()  # (N,)
    return value + surrogate - surrogate.detach()


def importance_weights(logp_now: torch.Tensor, logp_old: torch.Tensor | None, clip: float = 2.0) -> torch.Tensor:
    """exp(log pi_theta(y_t) - log pi_old(y_t)), detached and clipped at `clip`; 1 when on-policy.  (N,) -> (N,)"""
    if logp_old is None:
        return torch.ones_like(logp_now)
    return torch.exp(logp_now.detach() - logp_old).clamp(max=clip)


def sdpo_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    response_ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    alpha: float = 1.0,
    top_k: int | None = 20,
    tail: bool = True,
    temperature: float = 1.0,
    logp_old: torch.Tensor | None = None,
    is_clip: float = 2.0,
    adv_clip: float | None = 5.0,
    norm: torch.Tensor | float | None = None,
    any_masked: bool | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The SDPO distillation loss on response tokens (docs/reference/SDPO.md section 2, paper sections 2 and 5).

        L = sum_t m_t * w_t * D_t(pi(.|x, y_<t) / T, sg q(.|c, y_<t) / T) / n_t

    student_logits, teacher_logits: (N, V) at the N response positions (the teacher under no_grad);
    response_ids: (N,) the tokens the student sampled; mask: (N,) 1 for tokens that count;
    logp_old: (N,) the sampler's log-probs of response_ids (None: on-policy, w_t = 1);
    norm: n_t, what each token's term is divided by: a number (token-mean: the whole batch's token
    count, so that micro-batches accumulate to one mean), or an (N,) tensor (sequence-mean:
    sequence_norm, each attempt over its own tokens); default: this mask's sum. Masked tokens
    contribute exactly zero, to the value and to the gradient. any_masked: whether the mask has a 0 (None:
    read it from the mask; a caller that knows, or whose mask has no value, a FakeTensor, says so).
    Returns (loss, stats) with stats detached: mean KL and mean importance weight.
    """
    teacher_logits = teacher_logits.detach()  # stop-gradient: the teacher is never differentiated
    keep = (mask > 0)[:, None]  # (N, 1)
    if any_masked if any_masked is not None else not bool(keep.all()):
        # masked rows become zeros first: a NaN there reaches neither the value nor the gradient
        student_logits = torch.where(keep, student_logits, torch.zeros_like(student_logits))  # (N, V)
        teacher_logits = torch.where(keep, teacher_logits, torch.zeros_like(teacher_logits))  # (N, V)
    s_full = _scaled_logp(student_logits, temperature)  # (N, V): computed once, for the top-K and the weights
    s_logp, t_logp = _restrict_topk(s_full, _scaled_logp(teacher_logits, temperature), top_k, tail)  # (N, K')
    if alpha == 1.0 and adv_clip is not None:
        d = reverse_kl_clipped(s_logp, t_logp, adv_clip)  # (N,)
    else:
        d = divergence(s_logp, t_logp, alpha)  # (N,)
    if logp_old is None:  # on-policy (one optimizer step per batch, as the product runs): w_t = 1
        w = torch.ones(d.shape, dtype=d.dtype, device=d.device)  # (N,)
    else:
        tok_logp = s_full.gather(-1, response_ids[:, None]).squeeze(-1)  # (N,) log pi_theta(y_t)
        w = importance_weights(tok_logp, logp_old, is_clip)  # (N,)
    m = mask.to(d.dtype)  # (N,)
    denom = m.sum().clamp(min=1.0) if norm is None else torch.as_tensor(norm, dtype=d.dtype).clamp(min=1.0)  # () or (N,)
    loss = (torch.where(m > 0, w * d / denom, torch.zeros_like(d))).sum()  # where(): NaN-safe masking
    with torch.no_grad():
        n = m.sum().clamp(min=1.0)
        stats = {"kl": (kl(s_logp, t_logp) * m).sum() / n, "is_weight": (w * m).sum() / n, "tokens": m.sum()}
    return loss, stats


def sequence_norm(lengths: Sequence[int], n_sequences: int | None = None) -> torch.Tensor:
    """Per-token divisors for the sequence mean: token t of attempt i gets len_i * G.  -> (sum len_i,)

        L = 1/G sum_i 1/len_i sum_{t in y_i} D_it    (G = n_sequences, default len(lengths))

    The authors' runs: micro-batches of one sequence, each divided by its own token count, then
    averaged over micro-batches (docs/reference/SDPO.md section 2, step 5), so a long attempt weighs as much as a
    short one. A micro-batch passes its own attempts' lengths and the whole batch's G.
    """
    g = float(n_sequences if n_sequences is not None else len(lengths))
    return torch.cat([torch.full((n,), float(n) * g) for n in lengths]) if lengths else torch.zeros(0)


def trust_region_logits(reference: torch.Tensor, student: torch.Tensor, rate: float) -> torch.Tensor:
    """The trust-region teacher as the authors define it: lerp(reference, student, c).  (N, V) x2 -> (N, V)

        teacher = (1 - c) * reference + c * student

    reference: the base model's logits on the teacher context (adapter off); student: the current
    adapter's on the same context; c = sdpo.trust_region_rate (authors: the teacher update rate,
    0.05: mostly the reference). Mixing logits equals mixing log-probs up to the log-normaliser, which
    the softmax removes.
    """
    return torch.lerp(reference, student, rate)


def grpo_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages (r - mean) / (std + eps) over one batch of attempts.  (G,) -> (G,)

    All-equal rewards (at test time: until the first success) give zero advantages.
    """
    r = rewards.float()
    return (r - r.mean()) / (r.std(unbiased=False) + eps)


def grpo_token_loss(tok_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, w: torch.Tensor,
                    norm: torch.Tensor | float | None = None) -> torch.Tensor:
    """-sum_t m_t w_t A_t log pi(y_t) / n_t: the policy-gradient term of the hybrid objective (n_t as in
    sdpo_loss).  (N,) x4 -> ()"""
    m = mask.to(tok_logp.dtype)
    denom = m.sum().clamp(min=1.0) if norm is None else torch.as_tensor(norm, dtype=tok_logp.dtype).clamp(min=1.0)
    return -(m * w * adv * tok_logp / denom).sum()


# ---------------------------------------------------------------------------------------------
# The self-teacher


class Teacher:
    """Which weights score the teacher context. The base model is frozen and shared; only the LoRA
    adapter differs, so a teacher is a set of adapter tensors swapped in for its forward pass.

    ema:          theta' <- (1 - r) theta' + r theta after every update, from the initial adapter
                  (LoRA's B = 0, so the initial teacher is the base model). Paper default, r = 0.01.
    frozen:       the initial adapter forever (EMA with r = 0).
    trust-region: logits (1 - c) * reference + c * current, the reference being the base model
                  (adapter disabled), c = trust_region_rate (the authors': lerp(reference, student, c)).
    current:      the student itself under no_grad (diverges in the paper; an option only).
    """

    def __init__(self, model: torch.nn.Module, kind: str = "ema", ema_rate: float = 0.01) -> None:
        if kind not in TEACHERS:
            raise ValueError(f"teacher must be one of {', '.join(TEACHERS)}, got {kind!r}")
        self.kind = kind
        self.rate = 0.0 if kind == "frozen" else ema_rate
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}  # the adapter
        self.shadow = {n: p.detach().clone() for n, p in self.params.items()} if kind in ("ema", "frozen") else {}

    @torch.no_grad()
    def update(self) -> None:
        """theta' <- (1 - r) theta' + r theta (after each optimizer step)."""
        if self.rate and self.shadow:
            for n, p in self.params.items():
                self.shadow[n].lerp_(p.detach(), self.rate)

    @contextlib.contextmanager
    def weights(self) -> Iterator[None]:
        """Within the block the model computes with the teacher's adapter weights."""
        if not self.shadow:
            yield
            return
        saved = {n: p.detach().clone() for n, p in self.params.items()}
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.params.items():
                    p.copy_(saved[n])

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate, "shadow": {n: t.clone() for n, t in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for n, t in state["shadow"].items():
            self.shadow[n].copy_(t)


# ---------------------------------------------------------------------------------------------
# One update


@dataclass
class Rollout:
    """One attempt as the learner sees it: token ids only."""

    prompt_ids: list[int]  # the student's context x (chat-templated question)
    response_ids: list[int]  # the attempt y
    teacher_prompt_ids: list[int] | None  # the teacher's context c, or None: no feedback and no sibling
    reward: float = 0.0  # 1 when every test passed
    logp_old: list[float] | None = None  # the sampler's log-probs of response_ids (None: on-policy)


@dataclass
class StepStats:
    loss: float = 0.0
    kl: float = 0.0  # mean per-token KL(student || teacher) on the top-K support
    is_weight: float = 1.0
    grad_norm: float = 0.0
    tokens: int = 0  # response tokens that carried loss
    rollouts: int = 0  # rollouts that carried loss
    extra: dict[str, float] = field(default_factory=dict)


def _trunk_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The transformer trunk (hidden states) and the lm_head, through peft's wrapper if any."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder() if hasattr(base, "get_decoder") else base.model, base.get_output_embeddings()


def _pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad: real tokens at the start, so default position ids are correct.  -> (B, T), (B, T)"""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)  # (B, T)
    att = torch.zeros((len(seqs), T), dtype=torch.long)  # (B, T)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        att[i, : len(s)] = 1
    return ids, att


@dataclass
class Prefix:
    """The key/value cache of the first `length` tokens that every context of a batch shares (encode_prefix)."""

    length: int
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (1, heads, length, head_dim)


def shared_prefix_len(contexts: Sequence[list[int]]) -> int:
    """Length of the contexts' longest common prefix, kept at least one token short of every context: the
    position that predicts a response's first token (the context's last) must stay in each suffix."""
    n = min(len(c) for c in contexts) - 1
    first = contexts[0]
    for c in contexts[1:]:
        n = next((j for j in range(n) if c[j] != first[j]), n)
    return max(n, 0)


def encode_prefix(model: torch.nn.Module, ids: list[int], parent: Prefix | None = None) -> Prefix:
    """One forward of a shared prefix (batch of one); with grad when grad is enabled. With `parent`, the
    cache of parent.length first tokens of `ids`, only the rest of `ids` runs, attending to it."""
    trunk, _ = _trunk_and_head(model)
    device = next(model.parameters()).device
    L = parent.length if parent else 0
    if parent and len(ids) == L:
        return parent
    cache = None
    if parent:
        from transformers import DynamicCache

        cache = DynamicCache(list(parent.kv), config=getattr(model, "config", None))  # update() concatenates: parent kept
    cache = trunk(input_ids=torch.tensor([ids[L:]], device=device), past_key_values=cache,
                  use_cache=True).past_key_values
    return Prefix(len(ids), [(layer.keys, layer.values) for layer in cache.layers])


def response_hidden(model: torch.nn.Module, contexts: Sequence[list[int]], responses: Sequence[list[int]],
                    pad_id: int = 0, prefix: Prefix | None = None, pack: bool = False) -> torch.Tensor:
    """Hidden states at the positions that predict each response token, concatenated.  -> (N, H)

    For a sequence [c_0..c_{P-1}, y_0..y_{R-1}], y_j is predicted at position P - 1 + j. Logits are
    NOT computed here: the caller applies the lm_head chunk by chunk (memory, see SDPOLearner.step).
    With `prefix`, its tokens (the first prefix.length of every context) are not run again: the forward
    covers the rest of each sequence, attending to the prefix's cache broadcast over the batch. With `pack`
    too, those rests run as one row (packed_hidden): no padding.
    """
    if prefix is not None and pack and len(contexts) > 1 and can_pack(model):
        return packed_hidden(model, contexts, responses, prefix)
    trunk, _ = _trunk_and_head(model)
    device = next(model.parameters()).device
    L = prefix.length if prefix else 0
    ids, att = _pad([(c + r)[L:] for c, r in zip(contexts, responses)], pad_id)  # (B, T - L)
    cache = None
    if prefix:
        from transformers import DynamicCache  # only here: the pure part of this module needs torch alone

        B = len(contexts)
        cache = DynamicCache([(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in prefix.kv],
                             config=getattr(model, "config", None))
        att = torch.cat([torch.ones((B, L), dtype=att.dtype), att], 1)  # (B, T)
    h = trunk(input_ids=ids.to(device), attention_mask=att.to(device), past_key_values=cache,
              use_cache=cache is not None).last_hidden_state  # (B, T - L, H)
    rows = [h[i, len(c) - 1 - L : len(c) - 1 - L + len(r)] for i, (c, r) in enumerate(zip(contexts, responses))]
    return torch.cat(rows, 0)  # (N, H)


PACKABLE = ("sdpa", "eager")  # attention that applies an arbitrary 4D mask (flash-attention-2 takes none)


def can_pack(model: torch.nn.Module) -> bool:
    """Whether the model's attention honours packed_hidden's block mask; else the padded path runs."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None) in PACKABLE


def packed_hidden(model: torch.nn.Module, contexts: Sequence[list[int]], responses: Sequence[list[int]],
                  prefix: Prefix) -> torch.Tensor:
    """response_hidden after a shared prefix, with the sequences' rests packed into one row.  -> (N, H)

    Padded rows cost the trunk's work on every pad (15% of an update's at micro-batch 4, bench/README.md,
    "bench/update_cost.py"). Here segment i (its context's rest and its response) attends to the whole prefix
    and causally to itself only, through a (1, 1, T, L + T) mask; its positions restart at L, so each
    token sees what it would in its own row. The prefix's cache is used as it is (batch 1): its gradient needs
    no sum over a broadcast. The mask is additive (0 where a token attends, the dtype's minimum where not):
    transformers hands a 4D mask to the attention as it is, and eager attention adds it to the scores while
    SDPA takes either form, in the 4.x releases and the 5.x ones alike (a boolean one would be added as 0/1).
    """
    from transformers import DynamicCache

    trunk, _ = _trunk_and_head(model)
    device = next(model.parameters()).device
    L = prefix.length
    segs = [(c + r)[L:] for c, r in zip(contexts, responses)]
    lens = [len(s) for s in segs]
    T = sum(lens)
    seg_of = torch.repeat_interleave(torch.arange(len(segs)), torch.tensor(lens))  # (T,)
    pos = torch.cat([torch.arange(n) for n in lens])  # (T,) position within its segment
    own = (seg_of[:, None] == seg_of[None, :]) & (pos[:, None] >= pos[None, :])  # (T, T) block-causal
    keep = torch.cat([torch.ones((T, L), dtype=torch.bool), own], 1)[None, None]  # (1, 1, T, L + T)
    dtype = prefix.kv[0][0].dtype  # the attention's: a bf16 model's keys, whatever dtype the adapter holds
    mask = torch.zeros(keep.shape, dtype=dtype).masked_fill_(~keep, torch.finfo(dtype).min)  # (1, 1, T, L + T)
    cache = DynamicCache(list(prefix.kv), config=getattr(model, "config", None))
    h = trunk(input_ids=torch.tensor([[t for s in segs for t in s]], device=device), attention_mask=mask.to(device),
              position_ids=(pos + L)[None].to(device), past_key_values=cache, use_cache=True).last_hidden_state[0]  # (T, H)
    starts = [0, *torch.cumsum(torch.tensor(lens), 0).tolist()[:-1]]
    rows = [h[o + len(c) - 1 - L : o + len(c) - 1 - L + len(r)] for o, c, r in zip(starts, contexts, responses)]
    return torch.cat(rows, 0)  # (N, H)


class SDPOLearner:
    """Owns the optimizer and the teacher of one per-question LoRA adapter; `step` is one update."""

    def __init__(self, model: torch.nn.Module, config: SDPOConfig, pad_id: int = 0) -> None:
        self.model, self.cfg, self.pad_id = model, config, pad_id
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters: attach a LoRA adapter first (attach_lora)")
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.teacher = Teacher(model, config.teacher, config.ema_rate)
        self.steps = 0
        if config.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(model, "enable_input_require_grads"):
                model.enable_input_require_grads()

    @contextlib.contextmanager
    def _adapter_compute(self) -> Iterator[None]:
        """The trunk's passes with the adapter's matmuls in the base model's dtype (sdpo.adapter_in_model_dtype).

        peft keeps a bf16 model's adapter in fp32 and, in each LoRA layer, casts the input up, computes
        x A^T B^T * scale in fp32 and adds it to the bf16 base output, then casts the sum back to bf16: three
        (T, d_out) elementwise passes in fp32 and two casts per layer, for a sum that ends in bf16 anyway.
        Under autocast the adapter's weights are cast down per call and the layer stays in bf16; the weights,
        their gradients and AdamW's state stay fp32 (mixed precision). The cast cache is off: the EMA teacher
        swaps its weights into the same tensors, and a cached cast would hand one side the other's weights.
        """
        base = next((p for p in self.model.parameters() if not p.requires_grad and p.is_floating_point()), None)
        if (not self.cfg.adapter_in_model_dtype or base is None
                or base.dtype not in (torch.bfloat16, torch.float16)):
            yield
            return
        from peft.helpers import disable_input_dtype_casting  # peft: a runtime dependency, kept out of the pure part

        with torch.autocast(base.device.type, dtype=base.dtype, cache_enabled=False), \
                disable_input_dtype_casting(self.model):
            yield

    def _hidden(self, contexts: list[list[int]], responses: list[list[int]], prefix: Prefix | None) -> torch.Tensor:
        """response_hidden over micro-batches.  -> (N, H)"""
        m = self.cfg.micro_batch_size
        return torch.cat([response_hidden(self.model, contexts[i : i + m], responses[i : i + m], self.pad_id, prefix,
                                          self.cfg.pack) for i in range(0, len(contexts), m)], 0)

    def _prefix(self, contexts: list[list[int]]) -> Prefix | None:
        n = shared_prefix_len(contexts) if self.cfg.share_prefix and len(contexts) > 1 else 0
        return encode_prefix(self.model, contexts[0][:n]) if n else None

    def _context_hidden(self, contexts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        """_hidden for the teacher (called under no_grad), where each distinct context runs once: the
        contexts' common prefix (system prompt, question) once, then the rest of each context that several
        rollouts share (the same feedback) once, then only their responses. A batch's 16 attempts often get
        a handful of distinct feedbacks, so this skips about 40% of the teacher's forward.  -> (N, H)"""
        shared = self._prefix(contexts)
        if not self.cfg.share_prefix or len(contexts) < 2:
            return self._hidden(contexts, responses, shared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(contexts):
            groups.setdefault(tuple(c), []).append(i)
        rows: list[torch.Tensor | None] = [None] * len(contexts)

        def place(idx: list[int], h: torch.Tensor) -> None:  # h: the rows of idx's responses, concatenated
            for i, part in zip(idx, torch.split(h, [len(responses[i]) for i in idx])):
                rows[i] = part

        single = [i for idx in groups.values() if len(idx) == 1 for i in idx]  # one batch, as before
        if single:
            place(single, self._hidden([contexts[i] for i in single], [responses[i] for i in single], shared))
        for key, idx in groups.items():
            if len(idx) > 1:  # keep the context's last token out: it predicts each response's first
                pre = encode_prefix(self.model, list(key[:-1]), shared) if len(key) > 1 else None
                place(idx, self._hidden([list(key)] * len(idx), [responses[i] for i in idx], pre))
        missing = [i for i, r in enumerate(rows) if r is None]
        assert not missing, f"rollouts {missing} got no hidden states"  # every index is in exactly one group
        return torch.cat(rows, 0)  # type: ignore[arg-type]

    def _teacher_hidden(self, ctx: list[list[int]], resp: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher hidden states (N, H), and for trust-region the reference's (N, H) too, without grad.
        One weight swap for all the rollouts; shared context runs once (_context_hidden)."""
        was_training = self.model.training
        self.model.eval()  # no dropout in the teacher
        try:
            with torch.no_grad():
                with self.teacher.weights():
                    h_t = self._context_hidden(ctx, resp)
                h_ref = None
                if self.cfg.teacher == "trust-region":
                    with self.model.disable_adapter():
                        h_ref = self._context_hidden(ctx, resp)
        finally:
            self.model.train(was_training)
        return h_t, h_ref

    def step(self, rollouts: Sequence[Rollout]) -> StepStats:
        """One SDPO update on a batch of attempts (one optimizer step: on-policy, docs/reference/SDPO.md section 2).

        Teacher hidden states for all attempts first, under no_grad on the teacher context + the same
        response. The student's prompt, shared by the batch, runs once with grad; its key/value cache is
        detached into leaves that every micro-batch attends to. Per micro-batch: the student's hidden
        states on the rest of the sequences; chunk by chunk over response positions, lm_head logits
        (chunk, V) for both, the loss, and its backward into the detached hidden states; then one
        backward through the trunk, which also accumulates the gradient of the prefix cache; last, one
        backward through the prefix. Peak logits memory: one chunk, not (N, V).
        """
        cfg = self.cfg
        rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)
        adv_seq = grpo_advantages(rewards) if cfg.hybrid_lambda > 0 else torch.zeros(len(rollouts))  # (G,)
        use = [i for i, r in enumerate(rollouts) if r.response_ids and (r.teacher_prompt_ids is not None
                                                                        or (cfg.hybrid_lambda > 0 and adv_seq[i] != 0))]
        stats = StepStats(rollouts=len(use))
        if not use:
            return stats  # nothing to learn from: no feedback, no successful sibling, no GRPO signal
        use.sort(key=lambda i: len(rollouts[i].prompt_ids) + len(rollouts[i].response_ids))  # less padding
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        n_tok = float(sum(len(rollouts[i].response_ids) for i in use))  # loss_norm "token": one mean over the batch
        # Teacher first: swapping its weights in and out must not touch tensors the student's graph saved.
        with self._adapter_compute():
            h_t_all, h_ref_all = self._teacher_hidden([rollouts[i].teacher_prompt_ids or rollouts[i].prompt_ids
                                                       for i in use], [rollouts[i].response_ids for i in use])  # (N_all, H)
            # Gradient checkpointing drops a layer's cache (transformers), so it runs every prompt in full.
            prefix = None if cfg.gradient_checkpointing else self._prefix([rollouts[i].prompt_ids for i in use])
        leaves = None if prefix is None else Prefix(prefix.length, [
            (k.detach().requires_grad_(True), v.detach().requires_grad_(True)) for k, v in prefix.kv])
        row = 0  # where this micro-batch's response positions start in h_t_all
        _, head = _trunk_and_head(self.model)
        tot_loss = tot_kl = tot_w = 0.0
        for mb in range(0, len(use), cfg.micro_batch_size):
            idx = use[mb : mb + cfg.micro_batch_size]
            resp = [rollouts[i].response_ids for i in idx]
            n = sum(len(r) for r in resp)
            h_t = h_t_all[row : row + n]  # (N, H)
            h_ref = None if h_ref_all is None else h_ref_all[row : row + n]
            row += n
            with self._adapter_compute():
                h_s = response_hidden(self.model, [rollouts[i].prompt_ids for i in idx], resp, self.pad_id, leaves,
                                      cfg.pack)  # (N, H)
            ids = torch.tensor([t for r in resp for t in r], device=h_s.device)  # (N,)
            has_teacher = torch.tensor([float(rollouts[i].teacher_prompt_ids is not None)
                                        for i, r in zip(idx, resp) for _ in r], device=h_s.device)  # (N,)
            any_masked = any(rollouts[i].teacher_prompt_ids is None for i in idx)
            adv = torch.tensor([float(adv_seq[i]) for i, r in zip(idx, resp) for _ in r], device=h_s.device)  # (N,)
            old = [rollouts[i].logp_old for i in idx]
            logp_old = (torch.tensor([x for o, r in zip(old, resp) for x in (o or [0.0] * len(r))], device=h_s.device)
                        if all(o is not None for o in old) else None)  # (N,)
            # loss_norm "sequence": token t of attempt i is divided by len_i * G (each attempt over its own tokens)
            norm = sequence_norm([len(r) for r in resp], len(use)).to(h_s.device) if cfg.loss_norm == "sequence" else None  # (N,)
            h_leaf = h_s.detach().requires_grad_(True)  # (N, H): chunk losses backprop into this first
            for c in range(0, ids.numel(), cfg.logit_chunk):
                sl = slice(c, c + cfg.logit_chunk)
                s_logits = head(h_leaf[sl])  # (C, V)
                with torch.no_grad():
                    t_logits = head(h_t[sl])  # (C, V)
                    if h_ref is not None:
                        t_logits = trust_region_logits(head(h_ref[sl]), t_logits, cfg.trust_region_rate)
                loss, st = sdpo_loss(
                    s_logits, t_logits, ids[sl], has_teacher[sl], alpha=cfg.alpha, top_k=cfg.top_k,
                    tail=cfg.tail_bucket, temperature=cfg.temperature,
                    logp_old=None if logp_old is None else logp_old[sl], is_clip=cfg.is_clip,
                    adv_clip=cfg.adv_clip, norm=n_tok if norm is None else norm[sl], any_masked=any_masked,
                )
                if cfg.hybrid_lambda > 0:
                    tok_logp = F.log_softmax(_upcast(s_logits) / cfg.temperature, -1).gather(-1, ids[sl, None]).squeeze(-1)
                    w = importance_weights(tok_logp, None if logp_old is None else logp_old[sl], cfg.is_clip)
                    g = grpo_token_loss(tok_logp, adv[sl], torch.ones_like(tok_logp), w,
                                        norm=n_tok if norm is None else norm[sl])
                    loss = (1 - cfg.hybrid_lambda) * loss + cfg.hybrid_lambda * g
                loss.backward()
                n_c = float(st["tokens"])
                tot_loss += float(loss.detach())
                tot_kl += float(st["kl"]) * n_c
                tot_w += float(st["is_weight"]) * n_c
                stats.tokens += int(n_c)
            h_s.backward(h_leaf.grad)  # one backward through the trunk for all chunks
        if prefix is not None and leaves is not None:  # the cache's gradient, summed over micro-batches, into the prefix
            pairs = [(t, leaf.grad) for kv, lv in zip(prefix.kv, leaves.kv) for t, leaf in zip(kv, lv)
                     if t.requires_grad and leaf.grad is not None]  # e.g. layer 0's k, v: no adapter before them
            if pairs:
                torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        gn = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        self.teacher.update()
        self.steps += 1
        self.model.eval()
        stats.loss, stats.grad_norm = tot_loss, float(gn)
        stats.kl = tot_kl / max(stats.tokens, 1)
        stats.is_weight = tot_w / max(stats.tokens, 1) if stats.tokens else 1.0
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.opt.state_dict(), "teacher": self.teacher.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.teacher.load_state_dict(state["teacher"])
        self.steps = state["steps"]


def attach_lora(model: torch.nn.Module, cfg: SDPOConfig) -> torch.nn.Module:
    """Wrap a causal LM with a fresh LoRA adapter (peft); only the adapter is trainable."""
    from peft import LoraConfig, get_peft_model  # peft is a runtime dependency, kept out of the pure part

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in cfg.lora_targets if t in names]
    if not targets:
        raise ValueError(f"none of the LoRA targets {list(cfg.lora_targets)} exist in this model")
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg)
