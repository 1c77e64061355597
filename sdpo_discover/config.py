"""A run's settings: the dataclasses, their validation, and the one merge of TOML / flags / `--set` / a
resumed run's config. Imports only the standard library (no torch), so the CLI, the run store and the
reports can read settings without loading a model.

    SolveConfig         everything a run depends on; `method` picks sdpo | best-of-k | multi-turn
      .sdpo             SDPOConfig: the learner (used by method sdpo only)
      .multi_turn       MultiTurnConfig: the feedback conversation (method multi-turn only)
    resolve_settings    flags + TOML file + --set (+ a resumed run's saved settings) -> a validated SolveConfig
    settings_markdown   the settings table of docs/settings.md, generated from the dataclasses' help

Every field's help lives in its `field(metadata={"help": ...})`: the CLI's option help, the
generated settings table and the validation messages all read the same source.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

METHODS = ("sdpo", "best-of-k", "multi-turn")
SAMPLERS = ("auto", "hf", "vllm")
SANDBOXES = ("auto", "docker", "local")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "bfloat16", "float16", "float32")
KEEP_ADAPTERS = ("all", "last")
TEACHERS = ("ema", "frozen", "trust-region", "current")
LOSS_NORMS = ("sequence", "token")
MT_TEMPLATES = ("feedback_only", "attempt_and_feedback")
SECTIONS = ("sdpo", "multi_turn")  # nested tables: [sdpo] in TOML, sdpo.NAME with --set


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and the bad value, and what to do."""


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - `help` reads best at the call sites
    if isinstance(default, type):  # a nested settings dataclass: a fresh one per instance
        return field(default_factory=default, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def _bad(name: str, value: Any, must: str) -> ConfigError:
    return ConfigError(f"setting '{name}' = {value!r}: {must}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class SDPOConfig:
    """The SDPO update (docs/reference/SDPO.md sections 2-4), with the paper's test-time defaults where it has one."""

    alpha: float = _f(1.0, "Divergence: 1 reverse KL(student || teacher) (the paper's, for code and test time), "
                           "0 forward KL, between: generalised JSD.")
    top_k: int | None = _f(20, "Distil over the student's top-K ids per position (paper: 20); none: the full vocabulary.")
    tail_bucket: bool = _f(True, "Add one bucket for the mass outside the top-K (paper); false: renormalise over the K ids.")
    temperature: float = _f(1.0, "Set by the run to its sampling temperature (logits are divided by it); not a knob.")
    is_clip: float = _f(2.0, "Importance-weight clip (the weight is 1 with one optimizer step per batch).")
    adv_clip: float | None = _f(5.0, "Upper clamp on the per-token advantage log q - log pi (paper's test time: 5.0); "
                                     "none: off. Reverse KL only.")
    teacher: str = _f("ema", "Which weights score the teacher context: ema (paper), frozen (the initial adapter), "
                             "trust-region, current (diverges in the paper).", choices=TEACHERS)
    ema_rate: float = _f(0.01, "EMA teacher: theta' <- (1 - r) theta' + r theta after each update (paper's test time: 0.01).")
    trust_region_rate: float = _f(0.05, "trust-region teacher, as the authors define it: teacher logits = "
                                        "(1 - c) * reference + c * student, c this rate (the reference is the base "
                                        "model; default 0.05: mostly the reference).")
    hybrid_lambda: float = _f(0.0, "A = lambda A_GRPO + (1 - lambda) A_SDPO. No effect at test time: GRPO's advantage "
                                   "is zero whenever every attempt of a batch failed, which is the only time the loop "
                                   "updates (it stops at the first success).")
    loss_norm: str = _f("sequence", "How token losses are averaged: sequence (each attempt over its own tokens, then "
                                    "the attempts: the authors' runs) or token (one mean over all tokens of the batch: "
                                    "long attempts weigh more).", choices=LOSS_NORMS)
    # LoRA lr (paper: 1e-6 for full fine-tuning; 1e-5..1e-4 usual for a LoRA). 1e-3 turned every answer of Qwen
    # into prose after one update (docs/learner.md, "Choosing the learning rate").
    lr: float = _f(1e-4, "The LoRA learning rate (AdamW).")
    weight_decay: float = _f(0.01, "AdamW weight decay (paper: 0.01).")
    grad_clip: float = _f(1.0, "Gradient-norm clip (paper: 1.0).")
    micro_batch_size: int = _f(4, "Sequences per forward; gradients accumulate over the batch.")
    logit_chunk: int = _f(256, "Response positions per lm_head chunk (a 151k vocabulary dominates memory).")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward (less memory, slower; the student then runs each prompt in full, padded).")
    share_prefix: bool = _f(True, "Run the batch's shared prompt once per step, and each distinct teacher context once.")
    adapter_in_model_dtype: bool = _f(True, "A bf16/fp16 model's adapter matmuls run in that dtype (autocast; the adapter's "
                                            "weights and AdamW state stay fp32); off: peft's default, the adapter "
                                            "computed in fp32.")
    pack: bool = _f(True, "With share_prefix: a micro-batch's sequences run as one row after the shared prefix, "
                          "without padding (a block mask keeps them apart; SDPA or eager attention, "
                          "else padded).")
    # Not in the paper: under its template the self-teacher favours prose-first answers, which the update then
    # teaches whatever the feedback says (docs/learner.md, "The teacher's template").
    restate_format: bool = _f(True, "End the teacher's reprompt with the question's answer-format line again (not in "
                                    "the paper); false: the paper's template.")
    lora_r: int = _f(8, "LoRA rank.")
    lora_alpha: int = _f(16, "LoRA alpha.")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_targets: tuple[str, ...] = _f(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                                       "Module names that get a LoRA adapter (those the model lacks are skipped).")

    def __post_init__(self) -> None:
        self.lora_targets = tuple(self.lora_targets)
        self.validate()

    def validate(self) -> None:
        def bad(name: str, must: str) -> ConfigError:
            return _bad(f"sdpo.{name}", getattr(self, name), must)

        for name in ("alpha", "temperature", "is_clip", "ema_rate", "trust_region_rate", "hybrid_lambda", "lr",
                     "weight_decay", "grad_clip", "lora_dropout"):
            if not _is_real(getattr(self, name)):
                raise bad(name, "must be a number")
        if not 0.0 <= self.alpha <= 1.0:
            raise bad("alpha", "must be in [0, 1] (1 reverse KL, 0 forward KL, between JSD)")
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 1):
            raise bad("top_k", "must be an integer >= 1, or none for the full vocabulary")
        for name in ("temperature", "lr", "grad_clip", "is_clip"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        if self.adv_clip is not None and not (_is_real(self.adv_clip) and self.adv_clip > 0):
            raise bad("adv_clip", "must be > 0, or none to turn it off")
        if self.teacher not in TEACHERS:
            raise bad("teacher", f"must be one of {', '.join(TEACHERS)}")
        if self.loss_norm not in LOSS_NORMS:
            raise bad("loss_norm", f"must be one of {', '.join(LOSS_NORMS)}")
        for name in ("ema_rate", "trust_region_rate", "hybrid_lambda", "lora_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be in [0, 1]")
        for name in ("micro_batch_size", "logit_chunk", "lora_r", "lora_alpha"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad(name, "must be an integer >= 1")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d


@dataclass
class MultiTurnConfig:
    """The multi-turn baseline (docs/reference/SDPO.md section 5): each chain is one conversation with the judge."""

    chains: int | None = _f(None, "Independent conversations sampled per step; none: the batch size. 1: the single "
                                  "conversation of the authors' baseline (one attempt per turn).")
    template: str = _f("feedback_only", "feedback_only: the question plus all of the chain's earlier feedback in one "
                                        "user turn (the paper's); attempt_and_feedback: a chat of earlier attempts "
                                        "and feedback turns.", choices=MT_TEMPLATES)
    context_tokens: int = _f(32000, "Prompt cap in tokens (paper: 32000), lowered to the model's context length minus "
                                    "max_new_tokens; past it the oldest feedback is dropped first.")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.chains is not None and (not _is_int(self.chains) or self.chains < 1):
            raise _bad("multi_turn.chains", self.chains, "must be an integer >= 1, or none for the batch size")
        if self.template not in MT_TEMPLATES:
            raise _bad("multi_turn.template", self.template, f"must be one of {', '.join(MT_TEMPLATES)}")
        if not _is_int(self.context_tokens) or self.context_tokens < 16:
            raise _bad("multi_turn.context_tokens", self.context_tokens, "must be an integer >= 16")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SolveConfig:
    """Everything a run depends on. Saved resolved to config.json; loadable from TOML ([sdpo] and [multi_turn]
    tables). temperature/top_p none = the model preset's measured defaults (the paper's 1.0/1.0 for other
    models); the learner's temperature always equals the sampling temperature (docs/reference/SDPO.md 2.5)."""

    problem: str = _f("", "The problem file the run was started from (recorded; the run keeps its own copy).",
                      internal=True)
    method: str = _f("sdpo", "sdpo (sample, grade, one SDPO update per batch), best-of-k (independent samples of the "
                             "base model) or multi-turn (feedback conversations).", choices=METHODS)
    budget: int = _f(2750, "Attempts to spend at most, every generated one counted (paper: 2750).")
    model: str = _f("qwen2.5-coder-0.5b", "A preset (`sdpo-discover models list`), a local Hugging Face folder, a "
                                          ".gguf file, or a hub id.")
    sampler: str = _f("auto", "auto (vllm where its venv is installed for this device, else hf; the run records "
                              "which and why), hf (transformers, in this process) or vllm (its own venv: "
                              "scripts/setup-vllm).", choices=SAMPLERS)
    sandbox: str = _f("auto", "Where attempts run: docker, local, or auto (docker when available).", choices=SANDBOXES)
    device: str = _f("auto", "auto (cuda when available), cpu or cuda.", choices=DEVICES)
    dtype: str = _f("auto", "auto: bfloat16 on CUDA or a CPU with native bf16, else float32.", choices=DTYPES)
    batch_size: int = _f(16, "Attempts per step (paper: 16); sdpo takes one update per batch.")
    seed: int = _f(0, "Seed of the adapter's init and of every step's sampling.")
    max_new_tokens: int = _f(1024, "Tokens per attempt at most; a longer attempt is cut off (a format error).")
    temperature: float | None = _f(None, "Sampling temperature; none: the preset's measured value (0.7 for the "
                                         "small presets), else the paper's 1.0.")
    top_p: float | None = _f(None, "Sampling top-p; none: the preset's (0.95), else the paper's 1.0.")
    top_k: int = _f(0, "Sampling top-k; 0 = off.")
    stop_on_success: bool = _f(True, "Stop at the first attempt that passes every test; false spends the whole "
                                     "budget (bench's best-of-k pool, which measures a pass rate, runs so).")
    stop_at_answer: bool = _f(True, "End each sample where its answer ends: at the line closing its first "
                                    "```python block with code (a block of comments only, like the echoed "
                                    "`# YOUR CODE HERE` stub, is passed over). What follows is never sampled, "
                                    "graded or trained on.")
    stop_at_loop: bool = _f(True, "End a sample stuck in a loop, as cut off: when its last 128 or more tokens are one "
                                  "block of at most 64 tokens repeated 3 times or more (the same line over and "
                                  "over). Without it such a sample runs to max_new_tokens, and its batch waits.")
    thinking: bool = _f(False, "Chat templates with a thinking switch (Qwen3) get enable_thinking=this in every "
                               "prompt: student, teacher, multi-turn. The paper: off.")
    gen_batch_size: int = _f(16, "hf sampler: sequences per generate call (decoding on a CPU is bound by reading "
                                 "the weights, so a whole batch at once).")
    workers: int = _f(2, "Attempts graded at once.")
    overlap_grading: bool = _f(False, "best-of-k and multi-turn: grade each sample as soon as the sampler has it "
                                      "(vllm: as each sequence ends; hf: as each gen_batch_size sub-batch ends), "
                                      "while the rest of the batch is sampled; attempts are recorded only once the "
                                      "whole batch is saved, as without it. Off by default: on a 2-core CPU the "
                                      "grading took cores from the sampler and cost more than it saved "
                                      "(bench/README.md); on where the sampler does not use the CPU (a GPU).")
    keep_adapters: str = _f("all", "sdpo: all (every version's adapter stays, for explain and reproduction) or last "
                                   "(only the newest).", choices=KEEP_ADAPTERS)
    vllm_max_model_len: int = _f(4096, "vllm sampler: the engine's context length.")
    vllm_kv_cache_gib: float = _f(2.0, "vllm sampler on a CPU: GiB of KV cache.")
    vllm_gpu_memory_utilization: float = _f(0.5, "vllm sampler on a GPU: the engine's share of its memory (the "
                                                 "trainer uses the rest).")
    sdpo: SDPOConfig = _f(SDPOConfig, "The learner (method sdpo).")
    multi_turn: MultiTurnConfig = _f(MultiTurnConfig, "The feedback conversation (method multi-turn).")

    @property
    def step_size(self) -> int:
        """Attempts sampled per step: a multi-turn step is one turn of every chain."""
        if self.method == "multi-turn":
            return self.multi_turn.chains or self.batch_size
        return self.batch_size

    def validate(self) -> None:
        for name in ("budget", "batch_size", "max_new_tokens", "gen_batch_size", "workers", "vllm_max_model_len"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise _bad(name, v, "must be an integer >= 1")
        for f in fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise _bad(f.name, getattr(self, f.name), f"must be one of {', '.join(allowed)}")
        if self.temperature is not None and not (_is_real(self.temperature) and self.temperature > 0):
            raise _bad("temperature", self.temperature, "must be > 0 (greedy decoding would repeat one attempt)")
        if self.top_p is not None and not (_is_real(self.top_p) and 0 < self.top_p <= 1):
            raise _bad("top_p", self.top_p, "must be in (0, 1]")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise _bad("top_k", self.top_k, "must be an integer >= 0 (0 = off)")
        if not _is_int(self.seed):
            raise _bad("seed", self.seed, "must be an integer")
        for name in ("thinking", "stop_on_success"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "must be true or false")
        if not (_is_real(self.vllm_kv_cache_gib) and self.vllm_kv_cache_gib > 0):
            raise _bad("vllm_kv_cache_gib", self.vllm_kv_cache_gib, "must be > 0")
        if not (_is_real(self.vllm_gpu_memory_utilization) and 0 < self.vllm_gpu_memory_utilization <= 1):
            raise _bad("vllm_gpu_memory_utilization", self.vllm_gpu_memory_utilization, "must be in (0, 1]")
        self.sdpo.validate()
        self.multi_turn.validate()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sdpo"] = self.sdpo.to_json()
        d["multi_turn"] = self.multi_turn.to_json()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> SolveConfig:
        """From a TOML/JSON mapping; unknown keys are errors (a typo must not be silently ignored)."""
        d = dict(d)
        sections = {"sdpo": SDPOConfig, "multi_turn": MultiTurnConfig}
        parts = {name: d.pop(name, {}) or {} for name in sections}
        names = {f.name for f in fields(cls)} - set(sections)
        unknown = [k for k in d if k not in names]
        for name, kind in sections.items():
            if not isinstance(parts[name], dict):
                raise ConfigError(f"{where}: '{name}' must be a table of settings ({name}.NAME), got {parts[name]!r}")
            known = {f.name for f in fields(kind)}
            unknown += [f"{name}.{k}" for k in parts[name] if k not in known]
        if unknown:
            raise ConfigError(f"{where + ': ' if where else ''}unknown setting(s) {', '.join(unknown)}; see `sdpo-discover solve --help` "
                              f"and docs/settings.md for the list ({', '.join(sorted(names))}; "
                              + "; ".join(f"{n}.NAME" for n in sections) + ")")
        try:
            return cls(**d, sdpo=SDPOConfig(**parts["sdpo"]), multi_turn=MultiTurnConfig(**parts["multi_turn"]))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}" if where else str(e)) from None


# Learner settings added after runs were first written, with the value that older runs used: a run written
# before a setting existed ran with that setting's behaviour of then, not with today's default.
SETTINGS_ADDED_LATER: dict[str, Any] = {"restate_format": False, "loss_norm": "token"}  # sdpo.*
TOP_SETTINGS_ADDED_LATER: dict[str, Any] = {"stop_at_answer": False, "overlap_grading": False, "stop_at_loop": False}


def complete_saved(d: dict[str, Any]) -> dict[str, Any]:
    """A saved config's settings, completed with SETTINGS_ADDED_LATER and old names mapped to new ones."""
    d = dict(d)
    learn = d.pop("learn", True)  # before `method` existed, learn = false was best-of-k
    d.setdefault("method", "sdpo" if learn else "best-of-k")
    for k, v in TOP_SETTINGS_ADDED_LATER.items():
        d.setdefault(k, v)
    sdpo = d["sdpo"] = {**SETTINGS_ADDED_LATER, **(d.get("sdpo") or {})}
    if "trust_region_mix" in sdpo:  # old: (1 - m) current + m reference; the authors' rate c = 1 - m
        sdpo["trust_region_rate"] = 1.0 - float(sdpo.pop("trust_region_mix"))
    return d


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file: {e}") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """'sdpo.lr=3e-5' -> ('sdpo.lr', 3e-5): the value is read as TOML (numbers, booleans, strings), or
    taken as a bare string; none/null is None."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set sdpo.lr=3e-5")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    if raw.strip().lower() in ("none", "null"):
        value = None
    return key, value


def merge_settings(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """`updates` (dotted keys allowed: 'sdpo.lr', 'multi_turn.chains') over `base` (a nested mapping)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in updates.items():
        section, dot, name = key.partition(".")
        if dot and section in SECTIONS:
            out.setdefault(section, {})[name] = value
        else:
            out[key] = value
    return out


def _check_method_sections(merged: dict[str, Any], where: str) -> None:
    """A multi_turn.* setting given to another method would be silently ignored: refuse it (and sdpo.*
    to the baselines likewise)."""
    method = merged.get("method", "sdpo")
    for section, owner in (("multi_turn", "multi-turn"), ("sdpo", "sdpo")):
        given = sorted((merged.get(section) or {}).keys())
        if given and method != owner:
            raise ConfigError(f"{where + ': ' if where else ''}setting '{section}.{given[0]}' applies to --method {owner} only, and this "
                              f"run's method is {method}: drop it, or pass --method {owner}")


def resolve_settings(flags: dict[str, Any], *, config_file: Path | None = None, assignments: list[str] | None = None,
                     saved: dict[str, Any] | None = None, saved_where: str = "config.json") -> SolveConfig:
    """The one merge of a run's settings, validated. Precedence: defaults < TOML file < flags < --set.

    flags: CLI options that were given (None values left out), with dotted keys ('sdpo.lr').
    saved: a resumed run's settings (config.json, completed with complete_saved). A resumed run keeps
    them: only `budget` may change; a flag, --set or a file that changes anything else is an error that
    names what differs (a --set that repeats the saved value is no change).
    """
    updates = dict(flags)
    for item in assignments or []:
        key, value = parse_assignment(item)
        updates[key] = value
    if saved is not None:
        if config_file is not None:
            raise ConfigError("a resumed run keeps its settings: drop --config (start a new run, another --out, "
                              "to change them)")
        changed = sorted(k for k, v in updates.items() if k != "budget"
                         and merge_settings(saved, {k: v}) != merge_settings(saved, {}))
        if "method" in changed:
            raise ConfigError(f"setting 'method' = {updates['method']!r}: this run's method is {saved['method']!r}; "
                              "a run keeps its method: resume without --method, or start a new run (another --out)")
        if changed:
            raise ConfigError(f"a resumed run keeps its settings (only --budget may change); these differ: "
                              f"{', '.join(changed)}. Start a new run (another --out) to change them.")
        cfg = SolveConfig.from_dict(merge_settings(saved, {k: v for k, v in updates.items() if k == "budget"}),
                                    where=saved_where)
    else:
        base = load_toml(config_file) if config_file is not None else {}
        where = str(config_file) if config_file is not None else ""
        merged = merge_settings(base, updates)
        _check_method_sections(merged, where)
        cfg = SolveConfig.from_dict(merged, where=where)
    cfg.validate()
    return cfg


def resolve_sampler(cfg: SolveConfig) -> str | None:
    """A new run's `auto` sampler made concrete (samplers.choose_sampler), so that config.json records the one
    it uses and a resume uses it again. Returns the line that says which and why (None if it was given)."""
    if cfg.sampler != "auto":
        return None
    from .samplers import choose_sampler

    cfg.sampler, why = choose_sampler(cfg.device)
    return f"sampler: {cfg.sampler} (auto: {why})"


def is_fallback(choice: str) -> bool:
    """Whether resolve_sampler's line reports a fallback: auto took hf because vLLM is not installed for this
    device (not because $SDPO_DISCOVER_SAMPLER asked for it)."""
    return choice.startswith("sampler: hf") and "$SDPO_DISCOVER_SAMPLER" not in choice


def default_of(cls: type, name: str) -> Any:
    """A field's default, for help texts that show it (never retyped)."""
    f = next(f for f in fields(cls) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def help_of(cls: type, name: str) -> str:
    f = next(f for f in fields(cls) if f.name == name)
    return str(f.metadata.get("help", ""))


def _fmt_default(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return ", ".join(v)
    if isinstance(v, str):
        return f'"{v}"'
    return f"{v:g}" if isinstance(v, float) else str(v)


def settings_markdown() -> str:
    """The table of every setting (docs/settings.md is this text; a test checks it did not drift)."""
    lines = ["# Settings", "",
             "Generated from `sdpo_discover/config.py` (`python -m sdpo_discover.config > docs/settings.md`); a test "
             "checks that this file matches the code.", "",
             "Every setting can be given in a TOML file (`--config FILE`; the learner's in an `[sdpo]` table, the "
             "multi-turn baseline's in `[multi_turn]`) or one at a time with `--set KEY=VALUE` (`--set sdpo.lr=3e-5`); "
             "flags override the file, `--set` overrides flags. `config.json` in a run directory holds the same keys, "
             "resolved. A resumed run keeps its settings (only `budget` may change).", ""]
    for title, cls, prefix in (("Run", SolveConfig, ""), ("Learner: `sdpo.*` (method sdpo)", SDPOConfig, "sdpo."),
                               ("Multi-turn: `multi_turn.*` (method multi-turn)", MultiTurnConfig, "multi_turn.")):
        lines += [f"## {title}", "", "| setting | default | meaning |", "|---|---|---|"]
        for f in fields(cls):
            if f.name in SECTIONS or f.metadata.get("internal"):
                continue
            choices = f.metadata.get("choices")
            meaning = f.metadata.get("help", "") + (f" One of: {', '.join(choices)}." if choices else "")
            lines.append(f"| `{prefix}{f.name}` | {_fmt_default(default_of(cls, f.name))} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_markdown(), end="")
