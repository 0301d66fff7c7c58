"""The tiny test models' tokenizer: a small byte-level BPE trained on a fixed word list (any text tokenizes), with
Qwen-style chat-template special tokens."""
from __future__ import annotations

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
