"""Run mqeval's adapters around the authors' own code (mqeval/model/official) on tiny random models that the authors'
real classes build from small configs: nothing is downloaded, the released weights are not needed.

    python scripts/check_official_adapters.py janus|janusflow|showo

It needs the authors' code importable, in the environment docs/official-code.md describes (DeepSeek's `janus` with
transformers 4.46.3; Show-o's checkout with its pinned transformers 4.41.1 / diffusers 0.30.1). Each model is saved
with its own save_pretrained, loaded back through the adapter's `build`, and three prompts (two token counts) are
generated as one batch and one by one. It prints the image sizes and whether each batched image equals the image
made alone (byte for byte), and exits non-zero when one does not.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

PROMPTS = ["a red cube", "a big cube", "two dogs"]
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:"


def word_tokenizer(cls, special: str, **tokens):
    """A transformers fast tokenizer over single letters, built in memory (no tokenizer files to download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {special: 0, **{name: i + 1 for i, name in enumerate(tokens.values()) if name != special}}
    vocab.update({letter: len(vocab) + i for i, letter in enumerate(LETTERS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token=special))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return cls(tokenizer_object=backend, unk_token=special, **tokens), len(vocab)


def deepseek_processor(code):
    from transformers import LlamaTokenizerFast

    tokenizer, _ = word_tokenizer(LlamaTokenizerFast, "<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<begin_of_image>", "<end_of_image>", "<｜▁pad▁｜>"]})
    return code.VLChatProcessor(code.VLMImageProcessor(image_size=32), tokenizer)


def janus(folder: Path):
    import janus.models as code
    from janus.models.modeling_vlm import MultiModalityConfig

    from mqeval.model.official.janus import build

    config = MultiModalityConfig(
        vision_config={"cls": "VQ-16", "params": {}},  # the understanding tower (SigLIP-L) is unused: a small stand-in
        aligner_config={"cls": "MlpProjector", "params": {"projector_type": "identity"}},
        gen_vision_config={"cls": "VQ-16", "params": {"image_token_size": 16384, "n_embed": 8}},
        gen_aligner_config={"cls": "MlpProjector",
                            "params": {"depth": 2, "input_dim": 8, "n_embed": 32, "projector_type": "mlp_gelu"}},
        gen_head_config={"cls": "vision_head",
                         "params": {"image_token_embed": 32, "image_token_size": 16384, "n_embed": 32}},
        language_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "num_key_value_heads": 2, "vocab_size": 128},
    )
    code.MultiModalityCausalLM(config).save_pretrained(folder / "model")
    deepseek_processor(code).save_pretrained(folder / "model")
    return build(weights={"model": folder / "model"}, dtype="float32", image_size=32, patch_size=16), 5.0, 1


def janusflow(folder: Path):
    import janus.janusflow.models as code
    from diffusers import AutoencoderKL
    from janus.janusflow.models.modeling_vlm import MultiModalityConfig

    from mqeval.model.official.janusflow import build

    uvit = {"block_out_channels": [768], "layers_in_middle": 1, "hidden_size": 2048}  # 768 / 2048: fixed in its code
    config = MultiModalityConfig(
        vision_und_enc_config={"cls": "ShallowUViTEncoder", "params": {**uvit, "use_mid_block": False}},  # unused
        vision_gen_enc_config={"cls": "ShallowUViTEncoder",
                               "params": {**uvit, "input_channels": 4, "stride": 2, "kernel_size": 2, "padding": 0}},
        vision_gen_dec_config={"cls": "ShallowUViTDecoder",
                               "params": {**uvit, "in_channels": 768, "out_channels": 4, "upsamples": 1}},
        language_config={"hidden_size": 2048, "intermediate_size": 64, "num_hidden_layers": 1,
                         "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 128},
    )
    code.MultiModalityCausalLM(config).save_pretrained(folder / "model")
    deepseek_processor(code).save_pretrained(folder / "model")
    AutoencoderKL(block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                  down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4).save_pretrained(folder / "vae")
    return build(weights={"model": folder / "model", "vae": folder / "vae"}, dtype="float32", image_size=32), 2.0, 3


def showo(folder: Path):
    from models import MAGVITv2, Showo
    from transformers import PhiConfig, PreTrainedTokenizerFast

    from mqeval.model.official.showo import build

    end = "<|endoftext|>"
    tokenizer, llm_vocab = word_tokenizer(PreTrainedTokenizerFast, end, bos_token=end, eos_token=end)
    tokenizer.save_pretrained(folder / "phi")
    PhiConfig(vocab_size=llm_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
              max_position_embeddings=64).save_pretrained(folder / "phi")
    Showo(w_clip_vit=False, vocab_size=llm_vocab + 10 + 8192 + 1, llm_vocab_size=llm_vocab,
          llm_model_path=str(folder / "phi"), codebook_size=8192, num_vq_tokens=4).save_pretrained(folder / "model")
    MAGVITv2().save_pretrained(folder / "vq")  # the real (full-size) MAGVIT-v2, random weights
    weights = {"model": folder / "model", "vq": folder / "vq", "tokenizer": folder / "phi"}
    return build(weights=weights, num_vq_tokens=4, max_seq_length=16, llm_vocab_size=llm_vocab), 5.0, 4


def main(name: str) -> int:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        model, guidance, steps = {"janus": janus, "janusflow": janusflow, "showo": showo}[name](Path(folder))
        args = dict(negative_prompts=None, guidance_scale=guidance, num_inference_steps=steps, resolution=32)
        seeds = range(1, len(PROMPTS) + 1)
        batch = model(PROMPTS, generators=[torch.Generator().manual_seed(s) for s in seeds], **args)
        alone = [model([p], generators=[torch.Generator().manual_seed(s)], **args)[0] for p, s in zip(PROMPTS, seeds)]
    same = [a.tobytes() == b.tobytes() for a, b in zip(batch, alone)]
    print(f"{name}: sizes {[image.size for image in batch]}; batch == alone {same}; "
          f"images differ {batch[0].tobytes() != batch[1].tobytes()}")
    return 0 if all(same) and batch[0].tobytes() != batch[1].tobytes() else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("janus", "janusflow", "showo"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
