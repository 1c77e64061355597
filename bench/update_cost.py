#!/usr/bin/env python3
"""Where one SDPO update's time goes, against its compute floor: a run's real batch, replayed.

    sdpo-discover solve problems/cpu-hard/percent-round.json --budget 16 --sandbox local --out /tmp/pr
    python3 bench/update_cost.py /tmp/pr [--step 0] [--reps 2] [--set sdpo.logit_chunk=128 ...] [--generate]

It loads the run's model (its config.json, dtype auto), attaches a fresh LoRA adapter (the run's seed and
sdpo settings), and takes the update of step --step on that step's attempts and feedback, exactly as the run
built them (methods.SDPO.update: student prompt, teacher reprompt with each attempt's feedback). For step 0
the loss equals the run's, which the table shows. Each update is timed by phase:

  teacher          SDPOLearner._teacher_hidden: the EMA teacher's trunk on every distinct context, no grad
  student forward  the shared prompt with grad (encode_prefix) and the micro-batches' responses
  loss             lm_head chunks of both, sdpo_loss, and the loss's backward into the hidden states
  rest             the rest of the step: the trunk's backward, the prefix's backward, AdamW, the EMA

The floor: the step's floating-point work at this machine's matmul rate. Work is counted from hooks on the
trunk and the lm_head (tokens actually run, padding included; attention against each token's context), with
the backward counted as one more forward of the trunk and the head for every row run with grad (the base
weights are frozen: only gradients of activations and of the small LoRA matrices are computed). The rate is
the best of several (512 x H) @ (H x 4H) matmuls in the model's dtype on all threads, an upper bound for the
step's own kernels. Against it the run's own generation time of that step gives the least SDPO can cost per
attempt relative to sampling without updates, on this machine, valid only where the run and this script ran
at the same speed (a shared VM's speed can swing 2x within the hour): (generation + grading + floor) / (generation
+ grading), with the generation through the adapter taken as plain sampling's.

With --generate the generation is measured here too, so that the bound does not mix two times: the run's
sampler (its config: vllm or hf, its sampling and seed) samples the step's batch again, without an adapter
(best-of-k's batch) before each update and through the adapter just updated (SDPO's next batch) after it,
with the matmul rate measured around each update. Each repetition then gives SDPO's seconds per attempt over
best-of-k's at steady state (an update after every batch; the run's grading time for both), as measured and
with the update at its floor.

Times on a shared machine vary: run it alone. The table goes in bench/README.md ("bench/update_cost.py").
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdpo_discover import sdpo as S  # noqa: E402
from sdpo_discover.config import ConfigError, SolveConfig, merge_settings, parse_assignment  # noqa: E402
from sdpo_discover.discover import sampling_seed, vllm_context  # noqa: E402
from sdpo_discover.models import load_model, resolve_model  # noqa: E402
from sdpo_discover.prompts import Prompts  # noqa: E402
from sdpo_discover.store import RunDir, read_jsonl  # noqa: E402


def matmul_gflops(hidden: int, dtype: torch.dtype, reps: int = 5) -> float:
    """Best rate of (512, H) @ (H, 4H), the shape of an MLP projection on a micro-batch's rows."""
    a, b = torch.randn(512, hidden, dtype=dtype), torch.randn(hidden, 4 * hidden, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * 512 * hidden * 4 * hidden / best / 1e9


class Work:
    """FLOPs of the trunk and the head, counted from forward hooks (2 per multiply-add)."""

    def __init__(self, model: Any) -> None:
        trunk, head = S._trunk_and_head(model)
        cfg = model.config
        self.layers, self.hidden = cfg.num_hidden_layers, cfg.hidden_size
        # the frozen base linear weights of the trunk: peft's LoRA matrices and the embedding excluded
        self.trunk_params = sum(p.numel() for n, p in trunk.named_parameters()
                                if p.dim() == 2 and "lora_" not in n and "embed" not in n)
        self.head_params = head.weight.numel()
        self.fwd = self.bwd = 0.0
        self.tokens = {"no grad": 0, "grad": 0}
        trunk.register_forward_pre_hook(self._trunk, with_kwargs=True)
        head.register_forward_pre_hook(self._head)

    def _trunk(self, _mod: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        B, T = ids.shape
        past = kwargs.get("past_key_values")
        P = past.get_seq_length() if past is not None else 0
        lin = 2 * self.trunk_params * B * T
        att = 4 * self.layers * self.hidden * B * T * (P + (T + 1) / 2)  # q.k and p.v over each token's context
        self._add(lin + att, B * T)

    def _head(self, _mod: Any, args: tuple) -> None:
        rows = args[0].numel() // args[0].shape[-1]
        self._add(2 * self.head_params * rows, 0)

    def _add(self, flops: float, tokens: int) -> None:
        grad = torch.is_grad_enabled()
        self.fwd += flops
        self.bwd += flops if grad else 0.0
        if tokens:
            self.tokens["grad" if grad else "no grad"] += tokens


class Generation:
    """The step's batch sampled again by the run's sampler: `plain()` without an adapter, `through(folder, v)`
    through a saved adapter version. Each returns the batch's wall seconds and its generated tokens."""

    def __init__(self, cfg: SolveConfig, info: dict, resolved: Any, model: Any, tok: Any, prompt: list[int],
                 n: int, step: int) -> None:
        from sdpo_discover.samplers import HFSampler, SamplingParams, VLLMSampler

        self.prompts, self.seed = [prompt] * n, sampling_seed(cfg.seed, step)
        self.params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=float(info["temperature"]),
                                     top_p=float(info["top_p"]), top_k=cfg.top_k, stop_at_answer=cfg.stop_at_answer,
                                     stop_at_loop=cfg.stop_at_loop)
        if cfg.sampler == "vllm":
            self.sampler: Any = VLLMSampler(resolved.path, max_model_len=vllm_context(cfg, model),
                                            max_lora_rank=max(8, cfg.sdpo.lora_r), kv_cache_gib=cfg.vllm_kv_cache_gib,
                                            device="cpu", dtype=cfg.dtype, seed=cfg.seed)
        else:
            self.sampler = HFSampler(model, tok, batch_size=cfg.gen_batch_size)  # the live peft model
        self.name = cfg.sampler

    def _run(self) -> tuple[float, int]:
        t = time.perf_counter()
        comps = self.sampler.generate(self.prompts, self.params, seed=self.seed)
        return time.perf_counter() - t, sum(len(c.token_ids) for c in comps)

    def plain(self) -> tuple[float, int]:
        self.sampler.load_adapter(None, 0)
        return self._run()

    def through(self, folder: Path, version: int) -> tuple[float, int]:
        self.sampler.load_adapter(folder, version)
        return self._run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run directory of `sdpo-discover solve` (method sdpo)")
    ap.add_argument("--step", type=int, default=0, help="whose attempts to replay (default 0)")
    ap.add_argument("--reps", type=int, default=2, help="updates in a row on the same batch (default 2)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting over the run's, as solve's --set takes it, e.g. sdpo.micro_batch_size=2")
    ap.add_argument("--generate", action="store_true",
                    help="also sample the batch here (the run's sampler), without and through the adapter, around "
                         "each update: the bound from times measured together")
    args = ap.parse_args()

    rd = RunDir(args.run)
    if not rd.is_run():
        ap.error(f"{args.run} is not a run directory (no config.json and problem.json)")
    try:
        cfg = SolveConfig.from_dict(merge_settings(rd.settings(), dict(parse_assignment(a) for a in args.set)),
                                    where="--set")
        cfg.validate()
    except ConfigError as e:
        ap.error(str(e))
    attempts = [a for a in rd.load_attempts() if a.step == args.step]
    step = next((s for s in read_jsonl(rd.steps) if s["step"] == args.step), None)
    if not attempts or step is None:
        ap.error(f"{args.run} has no committed step {args.step}")

    model, tok = load_model(resolve_model(cfg.model), device="cpu", dtype=cfg.dtype)
    prompts = Prompts(tok, rd.load_problem(), thinking=cfg.thinking, restate_format=cfg.sdpo.restate_format)
    torch.manual_seed(cfg.seed)  # the fresh adapter's init, as methods.SDPO draws it
    peft_model = S.attach_lora(model, cfg.sdpo)
    learner = S.SDPOLearner(peft_model, cfg.sdpo, pad_id=tok.pad_token_id if tok.pad_token_id is not None else 0)
    rollouts = [S.Rollout(prompts.student_ids, a.token_ids, prompts.teacher_ids(a.feedback),
                          reward=1.0 if a.passed else 0.0) for a in attempts]  # as methods.SDPO.update builds them
    dtype = next(peft_model.parameters()).dtype
    work = Work(peft_model)
    rate = matmul_gflops(work.hidden, dtype)
    gen = None
    if args.generate:
        if cfg.sampler not in ("hf", "vllm"):
            ap.error(f"the run's sampler is {cfg.sampler!r}: --generate needs hf or vllm")
        gen = Generation(cfg, rd.config_doc()["model"], resolve_model(cfg.model), peft_model, tok,
                         prompts.student_ids, len(rollouts), args.step)
        scratch = Path(tempfile.mkdtemp(prefix="update-cost-"))

    phases: dict[str, float] = {}

    def timed(obj: Any, name: str, phase: str, when: Callable[..., bool] = lambda *a: True) -> None:
        """obj.name's seconds added to phases[phase], for the calls `when(*args)` is true of."""
        f = getattr(obj, name)

        def g(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                if when(*a):
                    phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t
        setattr(obj, name, g)

    with_grad = lambda *a: torch.is_grad_enabled()  # noqa: E731 - the teacher's calls run under no_grad
    timed(learner, "_teacher_hidden", "teacher")
    timed(S, "response_hidden", "student forward", with_grad)
    timed(S, "encode_prefix", "student forward", with_grad)
    timed(S, "sdpo_loss", "loss")
    # the chunk losses' backward into the hidden states: a scalar's; the trunk's (h_s.backward(grad)) is not
    timed(torch.Tensor, "backward", "loss backward", lambda self, *a: self.dim() == 0)

    rows, gens = [], []
    print(f"bench/update_cost.py: {args.run} step {args.step}: {len(rollouts)} attempts, "
          f"{sum(len(r.response_ids) for r in rollouts)} response tokens, prompt {len(prompts.student_ids)} tokens; "
          f"{cfg.model}, {str(dtype).replace('torch.', '')}, {torch.get_num_threads()} threads; "
          f"{platform.node()}, {platform.processor() or platform.machine()}", flush=True)
    print(f"the run's step: generation {step['generate_s']:.1f} s, grading {step['execute_s']:.1f} s, "
          f"update {step.get('update_s') or 0:.1f} s, loss {step.get('loss')}", flush=True)
    for rep in range(args.reps):
        phases.clear()
        work.fwd = work.bwd = 0.0
        work.tokens = {"no grad": 0, "grad": 0}
        if gen is not None:
            plain = gen.plain()
            rate_now = matmul_gflops(work.hidden, dtype)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        st = learner.step(rollouts)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if gen is not None:
            rate_now = max(rate_now, matmul_gflops(work.hidden, dtype))  # the best around the update: the lower floor
            peft_model.save_pretrained(str(scratch / f"v{rep + 1}"))
            lora = gen.through(scratch / f"v{rep + 1}", rep + 1)
            gens.append((rep, plain, lora, wall, (work.fwd + work.bwd) / rate_now / 1e9, rate_now))
        floor = (work.fwd + work.bwd) / rate / 1e9
        parts = {"teacher": phases.get("teacher", 0.0), "student forward": phases.get("student forward", 0.0),
                 "loss": phases.get("loss", 0.0) + phases.get("loss backward", 0.0)}
        parts["rest (trunk backward, AdamW)"] = wall - sum(parts.values())
        rows.append((rep, wall, parts, floor, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt, st.loss))

    print()
    print(f"matmul rate: {rate:.0f} GFLOP/s; work of one update: {(work.fwd + work.bwd) / 1e12:.2f} TFLOP "
          f"({work.fwd / 1e12:.2f} forward, {work.bwd / 1e12:.2f} backward; trunk tokens {work.tokens['no grad']} "
          f"without grad, {work.tokens['grad']} with)")
    print()
    names = list(rows[0][2])
    print("| update | wall (s) | " + " | ".join(names) + " | floor (s) | x floor | kernel CPU s | minor faults | loss |")
    print("|---:|---:|" + "---:|" * len(names) + "---:|---:|---:|---:|---:|")
    for rep, wall, parts, floor, sys_s, flt, loss in rows:
        print(f"| {rep + 1} | {wall:.1f} | " + " | ".join(f"{parts[n]:.1f}" for n in names)
              + f" | {floor:.1f} | {wall / floor:.2f} | {sys_s:.1f} | {flt} | {loss:.5f} |")
    grade = step["execute_s"]
    if gen is None:
        g = step["generate_s"]
        best = min(r[1] for r in rows)
        print()
        print(f"update / the run's generation of this batch: {best / g:.2f} (measured), {rows[0][3] / g:.2f} (floor)")
        print(f"SDPO's seconds per attempt against sampling alone, with the update at its floor: at least "
              f"{(g + grade + rows[0][3]) / (g + grade):.2f}x; with the update as measured: {(g + grade + best) / (g + grade):.2f}x"
              " (the run's generation: valid only if the run ran at this script's speed; --generate measures it here)")
        return 0
    gen.sampler.close()
    print()
    print(f"Measured together ({gen.name} sampler; grading {grade:.1f} s, the run's; ratio: SDPO's seconds per attempt "
          "over best-of-k's, an update after every batch):")
    print()
    print("| update | plain generation (s) | tokens | through the adapter (s) | tokens | update (s) | matmul GFLOP/s "
          "| floor (s) | ratio as measured | ratio, update at its floor | ratio, floor and plain generation |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rep, (p_s, p_tok), (l_s, l_tok), wall, floor, rate_now in gens:
        base = p_s + grade
        print(f"| {rep + 1} | {p_s:.1f} | {p_tok} | {l_s:.1f} | {l_tok} | {wall:.1f} | {rate_now:.0f} | {floor:.1f} "
              f"| {(l_s + grade + wall) / base:.2f} | {(l_s + grade + floor) / base:.2f} | {(base + floor) / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
