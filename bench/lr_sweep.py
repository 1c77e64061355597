#!/usr/bin/env python3
"""A small learning-rate sweep for the per-question LoRA: which lr makes SDPO steps lower the
student-teacher divergence fastest without diverging. It chose SDPOConfig.lr.

    python3 bench/lr_sweep.py [--model smollm2-135m] [--problem problems/second-largest.json]
                              [--lrs 1e-5,3e-5,1e-4,3e-4,1e-3] [--steps 4] [--train 6] [--held 6]
                              [--tokens 128] [--seed 0] [--quick]

1. Sample --train + --held attempts of one problem from the base model (HFSampler, the preset's
   temperature and top-p), grade them in the local sandbox and render the judge's feedback.
2. Build rollouts exactly as the learner expects: student context chat_prompt_ids(question_prompt(p),
   SYSTEM_MESSAGE), teacher context the reprompt teacher_message(question, feedback, a successful
   sibling if any) through the same chat template; attempts with neither feedback nor a sibling carry
   no loss. The learner's temperature is the sampling temperature (docs/reference/SDPO.md section 2).
3. For each lr: the same fresh LoRA (seeded), a new SDPOLearner (all other settings default: reverse
   KL, top-K 20, EMA teacher 0.01, AdamW), --steps updates on the training attempts (the same batch
   each step: on-policy importance weights, w = 1), and after each step the mean per-token reverse
   KL(student || teacher) on the top-K support, on the held-out attempts (same question, not trained
   on) and on the training batch. Diverged: a NaN/inf loss or KL, or a held-out KL above its start.

Rule: the default is the largest lr whose held-out KL falls at every step (monotonically) and ends
below its start, with no divergence. Prints the table and the choice; exits 1 when no lr qualifies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def mean_kl(learner: Any, rollouts: list[Any]) -> float:
    """Mean per-token KL(student || teacher) over the rollouts that carry loss: the loss's own KL
    statistic, with the learner's current student and teacher, without a gradient."""
    import torch

    from sdpo_discover.sdpo import _trunk_and_head, response_hidden, sdpo_loss

    cfg, model = learner.cfg, learner.model
    use = [r for r in rollouts if r.teacher_prompt_ids is not None and r.response_ids]
    _, head = _trunk_and_head(model)
    total = n = 0.0
    model.eval()
    with torch.no_grad():
        for mb in range(0, len(use), cfg.micro_batch_size):
            rs = use[mb : mb + cfg.micro_batch_size]
            resp = [r.response_ids for r in rs]
            h_t, _ = learner._teacher_hidden([r.teacher_prompt_ids for r in rs], resp)  # (N, H)
            h_s = response_hidden(model, [r.prompt_ids for r in rs], resp, learner.pad_id)  # (N, H)
            ids = torch.tensor([t for r in resp for t in r])  # (N,)
            for c in range(0, ids.numel(), cfg.logit_chunk):
                sl = slice(c, c + cfg.logit_chunk)
                _, st = sdpo_loss(head(h_s[sl]), head(h_t[sl]), ids[sl], torch.ones_like(ids[sl]), alpha=cfg.alpha,
                                  top_k=cfg.top_k, tail=cfg.tail_bucket, temperature=cfg.temperature)
                total += float(st["kl"]) * float(st["tokens"])
                n += float(st["tokens"])
    return total / max(n, 1.0)


def sample_rollouts(model: Any, tok: Any, problem: Any, n: int, tokens: int, temperature: float, top_p: float,
                    seed: int) -> tuple[list[Any], list[str]]:
    """n graded attempts as Rollouts (teacher context from each one's feedback or a passing sibling)."""
    from sdpo_discover.feedback import render_feedback
    from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
    from sdpo_discover.sandbox import grade_response, make_executor
    from sdpo_discover.samplers import HFSampler, SamplingParams
    from sdpo_discover.sdpo import Rollout, SDPOConfig

    q = question_prompt(problem)
    x = chat_prompt_ids(tok, q, SYSTEM_MESSAGE)
    comps = HFSampler(model, tok).generate(x, n=n, params=SamplingParams(max_new_tokens=tokens, temperature=temperature,
                                                                          top_p=top_p), seed=seed)
    ex = make_executor("local")
    try:
        results = [grade_response(problem, c.text, ex, truncated=c.truncated) for c in comps]
    finally:
        ex.close()
    statuses = [r.status.value for r in results]
    passing = [i for i, r in enumerate(results) if r.status.value == "passed"]
    rollouts = []
    for i, (c, r) in enumerate(zip(comps, results)):
        fb = render_feedback(problem, r)
        sibling = next((comps[j].text for j in passing if j != i), None)  # never the attempt itself
        msg = teacher_message(q, fb, sibling, SDPOConfig.restate_format)
        rollouts.append(Rollout(x, list(c.token_ids), None if msg is None else chat_prompt_ids(tok, msg, SYSTEM_MESSAGE),
                                reward=float(r.status.value == "passed")))
    return rollouts, statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m", help="preset, folder or .gguf (default smollm2-135m)")
    ap.add_argument("--problem", default=str(ROOT / "problems" / "second-largest.json"))
    ap.add_argument("--lrs", default="1e-5,3e-5,1e-4,3e-4,1e-3", help="comma-separated learning rates")
    ap.add_argument("--steps", type=int, default=4, help="SDPO steps per lr (default 4)")
    ap.add_argument("--train", type=int, default=6, help="training attempts (default 6)")
    ap.add_argument("--held", type=int, default=6, help="held-out attempts (default 6)")
    ap.add_argument("--tokens", type=int, default=128, help="max new tokens per attempt (default 128)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float32"),
                    help="auto = bfloat16 on CPUs with native bf16, else float32 (as bench/learner.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3 lrs (1e-5, 1e-4, 1e-3), 2 steps, 4 + 4 attempts of 64 tokens")
    args = ap.parse_args()
    if args.quick:
        args.lrs, args.steps, args.train, args.held, args.tokens = "1e-5,1e-4,1e-3", 2, 4, 4, 64
    lrs = sorted(float(v) for v in args.lrs.split(","))

    import torch

    from learner import pick_dtype  # bench/learner.py: the same dtype rule
    from sdpo_discover.models import load_model, resolve_model
    from sdpo_discover.problems import load_problem
    from sdpo_discover.sdpo import SDPOConfig, SDPOLearner, attach_lora

    t0 = time.perf_counter()
    dtype = pick_dtype(args.dtype)
    resolved = resolve_model(args.model)
    model, tok = load_model(resolved, device="cpu", dtype=dtype)
    torch.manual_seed(args.seed)
    model = attach_lora(model, SDPOConfig())
    init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}  # the fresh adapter
    temperature = resolved.preset.temperature if resolved.preset else 0.7
    top_p = resolved.preset.top_p if resolved.preset else 0.95
    problem = load_problem(args.problem)
    print(f"sampling {args.train} + {args.held} attempts ...", file=sys.stderr, flush=True)
    rollouts, statuses = sample_rollouts(model, tok, problem, args.train + args.held, args.tokens, temperature, top_p,
                                         args.seed)
    train, held = rollouts[: args.train], rollouts[args.train :]
    sampled_s = time.perf_counter() - t0

    rows = []
    for lr in lrs:
        with torch.no_grad():  # the same fresh adapter for every lr
            for n, p in model.named_parameters():
                if p.requires_grad:
                    p.copy_(init[n])
        learner = SDPOLearner(model, SDPOConfig(lr=lr, temperature=temperature), pad_id=tok.pad_token_id)
        held_kl, train_kl, losses, gnorms = [mean_kl(learner, held)], [], [], []
        for s in range(args.steps):
            print(f"lr {lr:g}: step {s + 1}/{args.steps} ...", file=sys.stderr, flush=True)
            st = learner.step(train)
            train_kl.append(st.kl)  # before this step's update
            losses.append(st.loss)
            gnorms.append(st.grad_norm)
            held_kl.append(mean_kl(learner, held))
        train_kl.append(mean_kl(learner, train))
        finite = all(math.isfinite(v) for v in (*held_kl, *train_kl, *losses, *gnorms))
        monotone = all(b < a for a, b in zip(held_kl, held_kl[1:]))
        diverged = not finite or max(held_kl[1:]) > held_kl[0]
        rows.append({"lr": lr, "held": held_kl, "train": train_kl, "gnorm": max(gnorms), "diverged": diverged,
                     "ok": finite and monotone and not diverged and held_kl[-1] < held_kl[0]})
        print(f"lr {lr:g}: held {held_kl} train {train_kl}", file=sys.stderr, flush=True)

    print(json.dumps(rows), file=sys.stderr, flush=True)  # the raw numbers, whatever happens below
    ok = [r for r in rows if r["ok"]]
    chosen = max(ok, key=lambda r: r["lr"]) if ok else None
    n_loss = sum(r.teacher_prompt_ids is not None for r in train)
    print(f"\nLR sweep: {resolved.spec} ({dtype}), problem {problem.id}, {args.train} training + {args.held} held-out "
          f"attempts (<= {args.tokens} tokens, temperature {temperature}, top-p {top_p}, seed {args.seed}; "
          f"{n_loss} training attempts carry loss); {args.steps} SDPO steps per lr on the training batch; "
          f"other settings SDPOConfig defaults.")
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    print(f"attempts: {', '.join(f'{v} {k}' for k, v in counts.items())}; "
          f"{platform.node()}: {os.cpu_count()} CPUs (shared), torch {torch.__version__}; "
          f"total {time.perf_counter() - t0:.0f} s (sampling and grading {sampled_s:.0f} s)\n")
    print("| lr | held-out KL: start -> after each step | relative change | training KL: start -> end | "
          "max grad norm | monotone | diverged |")
    print("|---:|---|---:|---|---:|:---:|:---:|")
    for r in rows:
        h = r["held"]
        rel = (h[-1] - h[0]) / h[0] if h[0] else float("nan")
        mono = all(b < a for a, b in zip(h, h[1:]))
        print(f"| {r['lr']:g} | {' -> '.join(f'{v:.4f}' for v in h)} | {rel:+.1%} | {r['train'][0]:.4f} -> "
              f"{r['train'][-1]:.4f} | {r['gnorm']:.3f} | {'yes' if mono else 'no'} | {'YES' if r['diverged'] else 'no'} |")
    if chosen is None:
        print("\nno lr lowered the held-out KL monotonically without diverging")
        return 1
    print(f"\nchosen: lr = {chosen['lr']:g} (the largest lr whose held-out KL fell at every step, without divergence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
