#!/usr/bin/env python3
"""Sampling speed against the hardware's floor (issue 15, item 1).

    python3 bench/sampling.py [--model qwen2.5-coder-0.5b] [--samplers hf,hf-generate,vllm,vllm-lora] [--batch 16]
                              [--problems problems/cpu-hard/rotate-right.json,...] [--max-new-tokens 1024]
                              [--stop-at-answer on|off] [--stop-at-loop on|off]

For each sampler, one batch of `--batch` samples of each problem's real prompt (prompts.Prompts: the
question as the loop sends it), at the preset's sampling (temperature 0.7, top-p 0.95), seed 0. `hf` is the
HF sampler as the product runs it (its compact decode loop: a row that ends leaves the batch); `hf-generate`
is the same sampler on transformers' `generate`, which keeps every row to the batch's longest (issue 15,
item 3). `vllm-lora` is vllm sampling through a LoRA request of a random adapter of the product's shape (rank 8,
every linear layer), as SDPO's batches after its first update do (issue 15, item 7). It reports:

  s/attempt      generation seconds per sample (the batch's wall time / batch)
  tokens/s       generated tokens per second
  longest        the longest sample of each batch, in tokens (mean over the batches): what a batch that
                 keeps every row to the end costs in steps
  floor          (mean generated tokens per sample) x (the bare decode step at batch B with a KV cache) / B:
                 the time a perfectly packed batch would take. The decode step is the HF model's forward of
                 B new tokens on a KV cache of the prompt plus 40 tokens (about half the mean answer), the
                 median of 20, in this process, once before any sampler runs (the same for every row).
  x floor        s/attempt over the floor: 1.0 is a sampler that wastes nothing. Target: the default sampling
                 path (vllm when installed, `--sampler auto`) within 1.5x.

Prints a markdown table. Exits 1 when the default path misses the target, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 1.5
EXTRA = 40  # tokens of answer in the KV cache when the decode step is timed
DEFAULT_PROBLEMS = "problems/cpu-hard/rotate-right.json,problems/cpu-hard/spread-cases.json"


def decode_step_s(model, prompt_ids: list[int], batch: int, extra: int) -> float:  # noqa: ANN001
    """The median seconds of one forward of `batch` new tokens on a KV cache of prompt + `extra` tokens."""
    import torch

    ids = torch.tensor([prompt_ids + [prompt_ids[-1]] * extra] * batch)  # (B, L)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache, nxt = out.past_key_values, ids[:, -1:]  # (B, 1)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            times.append(time.perf_counter() - t)
            cache = out.past_key_values
    return statistics.median(times)


def random_adapter(model, folder: Path) -> Path:  # noqa: ANN001
    """A LoRA adapter of the product's shape (SDPOConfig's rank and targets) with small random B, as after a few
    updates (B = 0 would be the base model), saved to `folder`; the model is left as it was."""
    import torch

    from sdpo_discover.config import SDPOConfig
    from sdpo_discover.sdpo import attach_lora

    torch.manual_seed(0)
    peft_model = attach_lora(model, SDPOConfig())
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 1e-3)
    peft_model.save_pretrained(str(folder))
    peft_model.unload()
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--samplers", default="hf,hf-generate,vllm,vllm-lora")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS)
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--stop-at-answer", choices=("on", "off"), default="on")
    ap.add_argument("--stop-at-loop", choices=("on", "off"), default="on")
    ap.add_argument("--dump", type=Path, help="write each sampler's samples to DUMP/SAMPLER.jsonl")
    args = ap.parse_args()

    from sdpo_discover.discover import load_model_for
    from sdpo_discover.config import SolveConfig
    from sdpo_discover.problems import load_problem
    from sdpo_discover.prompts import Prompts
    from sdpo_discover.samplers import HFSampler, SamplingParams, VLLMSampler, choose_sampler

    cfg = SolveConfig(model=args.model, sampler="hf")
    lm = load_model_for(cfg)
    preset = lm.preset
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=preset.temperature if preset else 1.0,
                            top_p=preset.top_p if preset else 1.0, stop_at_answer=args.stop_at_answer == "on",
                            stop_at_loop=args.stop_at_loop == "on")
    prompts = [Prompts(lm.tokenizer, load_problem(ROOT / p)).student_ids for p in args.problems.split(",")]
    default = choose_sampler("cpu")[0]
    rows = []
    # The decode step, once, before any sampler runs (an engine's threads or a freed cache must not colour it),
    # on a KV cache of the prompt plus EXTRA tokens (about half this model's mean answer): one step for every row.
    step = statistics.mean(decode_step_s(lm.model, ids, args.batch, EXTRA) for ids in prompts)
    print(f"  decode step at batch {args.batch}: {step:.3f} s", file=sys.stderr)
    for name in args.samplers.split(","):
        if name in ("hf", "hf-generate"):
            sampler = HFSampler(lm.model, lm.tokenizer, batch_size=args.batch, compact=name == "hf")
        else:
            sampler = VLLMSampler(lm.path, max_model_len=4096, seed=0, device="cpu")
            if name == "vllm-lora":  # what SDPO's batches after an update cost: each a LoRA request
                sampler.load_adapter(random_adapter(lm.model, Path(tempfile.mkdtemp()) / "adapter"), 1)
        gen_s, tokens, n, longest = 0.0, 0, 0, []
        try:
            for i, ids in enumerate(prompts):
                t = time.monotonic()
                comps = sampler.generate([ids] * args.batch, params, seed=i)
                gen_s += time.monotonic() - t
                tokens += sum(len(c.token_ids) for c in comps)
                if args.dump:
                    args.dump.mkdir(parents=True, exist_ok=True)
                    with open(args.dump / f"{name}.jsonl", "a") as f:
                        for c in comps:
                            f.write(json.dumps({"problem": i, "text": c.text, "token_ids": c.token_ids,
                                                "truncated": c.truncated}) + "\n")
                n += len(comps)
                longest.append(max(len(c.token_ids) for c in comps))
                print(f"  {name}: problem {i + 1}/{len(prompts)}: {time.monotonic() - t:.1f} s, "
                      f"{sum(len(c.token_ids) for c in comps) / len(comps):.0f} tokens/sample, "
                      f"longest {longest[-1]}", file=sys.stderr)
        finally:
            sampler.close()
        mean_tokens = tokens / n
        floor = mean_tokens * step / args.batch
        rows.append((name, gen_s / n, tokens / gen_s, mean_tokens, statistics.mean(longest), step, floor,
                     gen_s / n / floor))
    dtype = str(next(lm.model.parameters()).dtype).replace("torch.", "")  # vLLM's follows it (--dtype auto)
    print(f"\n{args.model} ({dtype}), batch {args.batch}, stop_at_answer {args.stop_at_answer}, stop_at_loop {args.stop_at_loop}, "
          f"{len(prompts)} problem(s) x {args.batch} samples; default sampler here: {default}\n")
    print("| sampler | s/attempt | tokens/s | mean tokens | longest | decode step (s, batch) | floor s/attempt | x floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, spa, tps, mt, lo, step, floor, ratio in rows:
        print(f"| {name}{' (default)' if name == default else ''} | {spa:.2f} | {tps:.1f} | {mt:.0f} | {lo:.0f} | "
              f"{step:.3f} | {floor:.2f} | {ratio:.2f} |")
    worst = [r for r in rows if r[0] == default]
    return 1 if worst and worst[0][-1] > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
