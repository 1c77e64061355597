"""One lm_head chunk's SDPO loss and its backward, after the lm_head, timed for one or more checkouts.

    python3 bench/loss_chunk.py                               # this checkout
    python3 bench/loss_chunk.py --roots /tmp/old /tmp/new     # two checkouts, interleaved

A chunk is the learner's default (256 positions) of the default model's vocabulary (151,936), bf16 logits
from a bf16 lm_head, temperature 0.7, top-K 20 with the tail bucket, on-policy. Each checkout's
sdpo_discover/sdpo.py is loaded under its own name; repetitions alternate between them, so a VM's drift
falls on all of them alike. Prints the median and every repetition, in ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

import sdpo_discover  # the package the loaded files' relative imports resolve in

ROOT = Path(__file__).resolve().parents[1]


def load(root: Path, i: int) -> ModuleType:
    name = f"sdpo_discover._bench_sdpo_{i}"
    spec = importlib.util.spec_from_file_location(name, root / "sdpo_discover" / "sdpo.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--roots", nargs="+", type=Path, default=[ROOT], help="checkouts to compare (default: this one)")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=151_936)
    args = ap.parse_args()
    mods = [load(r, i) for i, r in enumerate(args.roots)]
    torch.manual_seed(0)
    h = torch.randn(args.chunk, 896, dtype=torch.bfloat16)  # (C, H)
    w = (torch.randn(args.vocab, 896) * 0.05).bfloat16()  # (V, H)
    h_t = h + 0.1 * torch.randn_like(h)  # the teacher's hidden states: close to the student's
    ids, mask = torch.randint(0, args.vocab, (args.chunk,)), torch.ones(args.chunk)

    def once(mod: ModuleType) -> tuple[float, float]:
        leaf = h.clone().requires_grad_(True)
        s = leaf @ w.T  # (C, V) bf16
        with torch.no_grad():
            t = h_t @ w.T  # (C, V)
        t0 = time.perf_counter()
        loss, _ = mod.sdpo_loss(s, t, ids, mask, temperature=0.7, top_k=20, norm=1000.0, any_masked=False)
        loss.backward()
        return time.perf_counter() - t0, float(loss.detach())

    for m in mods:
        once(m)  # warm-up: first-touch page faults, oneDNN's kernel choice
    times: list[list[float]] = [[] for _ in mods]
    losses: list[float] = [0.0] * len(mods)
    for _ in range(args.reps):
        for i, m in enumerate(mods):
            dt, losses[i] = once(m)
            times[i].append(dt)
    print(f"bench/loss_chunk.py: a ({args.chunk}, {args.vocab}) bf16 chunk, T 0.7, top-K 20, {args.reps} reps, "
          f"{torch.get_num_threads()} threads")
    print("| checkout | median (ms) | every repetition (ms) | loss |\n|---|---:|---|---:|")
    for r, ts, loss in zip(args.roots, times, losses):
        print(f"| {r} | {sorted(ts)[len(ts) // 2] * 1000:.0f} | {', '.join(f'{t * 1000:.0f}' for t in ts)} | {loss:.6g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
