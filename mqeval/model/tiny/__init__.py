"""Tiny deterministic random models, for tests and smoke runs only (their weights are random, their scores
meaningless): `tiny://<name>` -> a folder that from_pretrained opens. `tokenizer.py` is their tokenizer,
`components.py` builds the MetaQuery backbones and decoders, `pipelines.py` the complete models of the other kinds.

Each model is built from a config with a fixed seed, saved with save_pretrained into a temporary folder beside
cache_dir()/tiny/<name>/ and renamed into place, so a half-written folder is never used. The tokenizer is a small
byte-level BPE trained on a fixed word list (any text tokenizes), with the chat-template special tokens.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from mqeval.errors import UnknownNameError
from mqeval.model.tiny.tokenizer import tiny_tokenizer
from mqeval.paths import cache_dir

# Bump when a builder changes, so stale folders are rebuilt.
TINY_VERSION = "v1"

def _build_causal_lm(out: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tiny_tokenizer(())
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _builders() -> dict[str, Callable[[Path], None]]:
    from mqeval.model.tiny import components, pipelines

    return {"causal_lm": _build_causal_lm, **components.BUILDERS, **pipelines.BUILDERS}


def tiny_names() -> list[str]:
    return sorted(_builders())


def materialize(model_id: str) -> Path:
    """Build (once) and return the folder of the tiny model `tiny://<name>`."""
    import torch

    name = model_id.removeprefix("tiny://")
    builders = _builders()
    if name not in builders:
        raise UnknownNameError("tiny model", name, builders)
    target = cache_dir() / "tiny" / TINY_VERSION / name
    if (target / ".complete").is_file():
        return target
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Inside a started process group transformers' save_pretrained writes weights on rank 0 only, so another
        # rank would cache a folder without them: build in a fresh interpreter, which has no process group.
        subprocess.run([sys.executable, "-m", "mqeval.model.tiny", model_id], check=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            builders[name](tmp)
        (tmp / ".complete").write_text(model_id + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
