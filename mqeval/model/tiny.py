"""Tiny deterministic random models for offline tests: `tiny://<name>` -> a folder that from_pretrained opens.

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
from mqeval.paths import cache_dir

# Bump when a builder changes, so stale folders are rebuilt.
TINY_VERSION = "v1"

_WORDS = (
    "a an the of and with on in under above below left right next to behind front photo image picture of "
    "red orange yellow green blue purple pink brown black white gray circle square triangle star cross ring "
    "one two three four five six seven eight nine ten cat dog car bird tree house person apple cup table "
    "small large big tiny bright dark make it change color turn into remove add background scene edit draw"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}IMAGE_SLOT{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(extra_special: tuple[str, ...], image_slot: str = "", named: dict[str, str] | None = None):
    """A byte-level BPE tokenizer with Qwen-style chat tokens; `image_slot` is what an image part renders to;
    `named` special tokens (name -> token, e.g. image_token) become attributes of the tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *extra_special, *(named or {}).values()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=480, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(_WORDS[i:] + _WORDS[:i]) for i in range(len(_WORDS))]
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", padding_side="left",
        extra_special_tokens=dict(named) if named else list(extra_special) if extra_special else None,
    )
    fast.chat_template = CHAT_TEMPLATE.replace("IMAGE_SLOT", image_slot)
    return fast


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
    from mqeval.model import tiny_builders, tiny_pipelines

    return {"causal_lm": _build_causal_lm, **tiny_builders.BUILDERS, **tiny_pipelines.BUILDERS}


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


if __name__ == "__main__":  # python -m mqeval.model.tiny tiny://<name>: build one tiny model into the cache
    materialize(sys.argv[1])
