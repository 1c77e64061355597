"""The three methods of the paper's section 5, behind one small protocol that the loop (discover.py) drives.

    sdpo         a per-question LoRA adapter, one SDPO update per graded batch (sdpo.py's learner)
    best-of-k    independent samples of the base model: no adapter, no optimizer, no teacher
    multi-turn   G independent conversations ("chains") with the judge: a chain's next prompt is the
                 question plus that chain's earlier feedback (docs/reference/SDPO.md section 5)

What differs between them is only this (`Method`):

    prompts(step, n, history)   the next batch's n prompts, from the attempts graded so far
    adapter()                   the adapter folder the next batch samples from (None: the base model)
    update(attempts)            after a graded batch that did not end the run; returns the learner's stats
    restore(version)            after a resume: the state of `version` committed updates
    close()                     the run is over: leave the model as it was given (sdpo: the adapter comes off)

A method's state is either derived from attempts.jsonl (multi-turn's chains) or saved in the adapter
folder of its version before the step commits (sdpo), so a resume rebuilds it from the run directory alone.
Imports only the standard library at module level; SDPOMethod imports torch and peft when built.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .config import ConfigError, SolveConfig
from .prompts import Prompts
from .store import Attempt, RunDir, fsync_dir

# torch's random state is the process's: runs in threads of one process (a bench sharing one vLLM engine) take
# turns at seeding it, so that each fresh adapter's init depends on its own run's seed only. (Nothing else in
# an update draws random numbers while lora_dropout is 0, the default.)
_RNG_LOCK = threading.Lock()
# One update at a time in a process: runs in threads (a shared engine) would otherwise train at once, each with
# a whole update's peak memory (on a GPU, two trainers' beside the engine) for no gain on cores they share;
# meanwhile the other runs sample. A process of one run never waits on it.
_UPDATE_LOCK = threading.Lock()


@dataclass
class Turn:
    """One sequence of the next batch: its prompt, and for multi-turn where it sits in its chain."""

    ids: list[int]
    chain: int | None = None
    turn: int | None = None
    dropped: int | None = None  # earlier feedback items left out (the prompt cap)


class Method(Protocol):
    name: str
    version: int  # updates committed: the adapter version the next batch samples from (0 for the baselines)

    def prompts(self, step: int, n: int, history: Sequence[Attempt]) -> list[Turn]: ...

    def adapter(self) -> Path | None: ...

    def update(self, attempts: Sequence[Attempt]) -> Any: ...

    def restore(self, version: int) -> None: ...

    def close(self) -> None: ...


class BestOfK:
    """Independent samples from the base model (docs/reference/SDPO.md section 5): the same prompt every time, nothing learnt."""

    name = "best-of-k"
    version = 0

    def __init__(self, prompts: Prompts) -> None:
        self.p = prompts

    def prompts(self, step: int, n: int, history: Sequence[Attempt]) -> list[Turn]:
        return [Turn(self.p.student_ids)] * n

    def adapter(self) -> Path | None:
        return None

    def update(self, attempts: Sequence[Attempt]) -> None:
        return None

    def restore(self, version: int) -> None:
        pass

    def close(self) -> None:
        pass


class MultiTurn(BestOfK):
    """G conversations with the judge, one attempt per chain per step. The chains are derived from the attempts
    alone (chain, turn, feedback), so a resume rebuilds them from attempts.jsonl; nothing else is saved."""

    name = "multi-turn"

    def __init__(self, prompts: Prompts, template: str, cap: int) -> None:
        super().__init__(prompts)
        self.template, self.cap = template, cap

    def prompts(self, step: int, n: int, history: Sequence[Attempt]) -> list[Turn]:
        chains: dict[int, list[Attempt]] = {}
        for a in sorted(history, key=lambda a: (a.chain or 0, a.turn or 0)):
            if a.chain is not None:
                chains.setdefault(a.chain, []).append(a)
        turns = []
        for c in range(n):
            done = chains.get(c, [])
            items = [(a.response, a.feedback) for a in done if a.feedback]  # every failed attempt has feedback
            try:
                ids, dropped = self.p.multi_turn_ids(items, self.template, self.cap)
            except ValueError as e:  # the question alone does not fit: a setting to change, not a crash
                raise ConfigError(f"{e}; lower max_new_tokens, or use a model with a longer context") from None
            turns.append(Turn(ids, chain=c, turn=len(done), dropped=dropped))
        return turns


class SDPOMethod:
    """A fresh LoRA adapter on the model, its learner (optimizer, EMA teacher) and the adapter's versions.

    Version v = the adapter after v updates; adapters/v{v}/ holds it (peft format), the EMA teacher's weights
    (teacher.safetensors) and, for the newest version only, learner.pt (optimizer, teacher, RNG): what a resume
    at version v restores. v0 is the fresh adapter (LoRA B = 0: the base model)."""

    name = "sdpo"

    def __init__(self, model: Any, prompts: Prompts, cfg: SolveConfig, rd: RunDir, pad_id: int) -> None:
        import torch

        from .sdpo import SDPOLearner, attach_lora

        self.p, self.cfg, self.rd = prompts, cfg, rd
        with _RNG_LOCK, torch.random.fork_rng():  # the fresh adapter's init is part of the run's seed
            torch.manual_seed(cfg.seed)
            self.model = attach_lora(model, cfg.sdpo)
        self.learner = SDPOLearner(self.model, cfg.sdpo, pad_id=pad_id)
        self.version = 0

    def prompts(self, step: int, n: int, history: Sequence[Attempt]) -> list[Turn]:
        return [Turn(self.p.student_ids)] * n

    def adapter(self) -> Path | None:
        return self.rd.adapter(self.version) if self.version else None

    def update(self, attempts: Sequence[Attempt]) -> Any:
        """One SDPO update on the batch (on-policy: one optimizer step, importance weight 1), then the new version
        saved, with the learner's state, before the loop commits the step."""
        from .sdpo import Rollout

        # No sibling has passed (the loop stops at the first success), so each teacher sees its attempt's feedback.
        rollouts = [Rollout(self.p.student_ids, a.token_ids, self.p.teacher_ids(a.feedback),
                            reward=1.0 if a.passed else 0.0) for a in attempts]
        with _UPDATE_LOCK:
            stats = self.learner.step(rollouts)
        self.version += 1
        self.save_adapter(self.version)
        return stats

    def save_adapter(self, version: int) -> None:
        import io
        import random

        import torch
        from safetensors.torch import save_file

        folder = self.rd.adapter(version)
        if (folder / "adapter_model.safetensors").is_file():
            return
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(str(tmp))
        # the EMA teacher's weights beside the student's, for `explain` and for anyone reproducing a step
        shadow = self.learner.teacher.shadow
        if shadow:
            save_file({k: v.detach().to(torch.float32).contiguous() for k, v in shadow.items()},
                      str(tmp / "teacher.safetensors"))
        buf = io.BytesIO()
        torch.save({"version": version, "learner": self.learner.state_dict(),
                    "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}, buf)
        (tmp / "learner.pt").write_bytes(buf.getvalue())
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, folder)
        fsync_dir(folder.parent)

    def restore(self, version: int) -> None:
        """The committed state of `version` updates: the adapter's weights, the optimizer, the teacher, the RNG."""
        import random

        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        self.version = version
        if version == 0:
            self.save_adapter(0)
            return
        folder = self.rd.adapter(version)
        set_peft_model_state_dict(self.model, load_file(str(folder / "adapter_model.safetensors")))
        st = torch.load(folder / "learner.pt", map_location="cpu", weights_only=False)
        self.learner.load_state_dict(st["learner"])
        torch.set_rng_state(st["rng"]["torch"])
        random.setstate(st["rng"]["python"])

    def close(self) -> None:
        """Take the LoRA layers off the base model (peft's unload), so that the model given to this run serves the
        next one as it was loaded (bench: one model load, a fresh adapter per SDPO run)."""
        if getattr(self, "model", None) is None or not hasattr(self.model, "unload"):
            return
        base = self.model.unload()
        if self.cfg.sdpo.gradient_checkpointing:  # the learner turned it on for this run's updates
            if hasattr(base, "gradient_checkpointing_disable"):
                base.gradient_checkpointing_disable()
            if hasattr(base, "disable_input_require_grads"):
                base.disable_input_require_grads()
        base.eval()
        self.model = None


def make_method(cfg: SolveConfig, prompts: Prompts, rd: RunDir, *, model: Any = None, pad_id: int = 0,
                context_len: int | None = None) -> Method:
    """The run's method. context_len: the model's context length (the multi-turn prompt cap is at most that
    minus max_new_tokens)."""
    if cfg.method == "sdpo":
        return SDPOMethod(model, prompts, cfg, rd, pad_id)
    if cfg.method == "multi-turn":
        cap = cfg.multi_turn.context_tokens
        if context_len:
            cap = min(cap, context_len - cfg.max_new_tokens)
        return MultiTurn(prompts, cfg.multi_turn.template, cap)
    return BestOfK(prompts)
