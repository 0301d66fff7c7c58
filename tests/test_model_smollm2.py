"""SmolLM2 GGUF -> safetensors conversion (slow: dequantizing the GGUF takes ~25 s on 2 cores)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mqeval.model import smollm2


def test_gguf_path_found_without_importing_llm():
    path = smollm2.gguf_path()
    assert path.name == smollm2.GGUF_NAME and path.stat().st_size > 50_000_000


@pytest.mark.slow
def test_convert_once_and_load_from_folder(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = smollm2.convert_gguf(smollm2.gguf_path(), tmp_path / "smol")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    mtime = (out / "model.safetensors").stat().st_mtime
    assert smollm2.convert_gguf(smollm2.gguf_path(), out) == out  # second call reuses the folder
    assert (out / "model.safetensors").stat().st_mtime == mtime
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    ids = tokenizer("The colour of the sky is", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    blue, green = (tokenizer(" " + w, add_special_tokens=False).input_ids[0] for w in ("blue", "green"))
    assert logits[blue] > logits[green]  # the dequantized weights are the real model, not noise
