"""Speed of the condition encoder's frozen-prefix mode against its full-sequence mode, in one run, at the paper's
lengths.

    python scripts/bench_frozen_prefix.py [--layers 24 --width 256 --prompt-tokens 300 --queries 256 --batch 2]

A random Qwen2-style causal LM with a real layer count and a reduced width (saved to a temporary folder and loaded
through the causal_lm backbone), the SmolLM2 tokenizer when it is cached (else the tiny test tokenizer), prompts of
about --prompt-tokens tokens with the chat template, and --queries learnable queries. Each timed step is forward +
backward to the queries (the backbone frozen); the modes alternate and the median of --repeats is printed. The
third path is the frozen-prefix mode with a memo (prompts seen before), where only the query positions run.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def build_backbone(folder: Path, layers: int, width: int):
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from mqeval.model.backbones.causal_lm import CausalLMBackbone
    from mqeval.model.metaquery_config import BackboneConfig
    from mqeval.model.tiny import tiny_tokenizer
    from mqeval.paths import cache_dir

    smol = cache_dir() / "backbones" / "smollm2-135m-instruct"
    tokenizer = AutoTokenizer.from_pretrained(smol) if (smol / "tokenizer.json").is_file() else tiny_tokenizer(())
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
        num_attention_heads=width // 64, num_key_value_heads=max(1, width // 128), max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return CausalLMBackbone(BackboneConfig(family="causal_lm", model_id=str(folder), dtype="float32"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mqeval.model.condition_encoding import build_condition_encoder
    from mqeval.model.metaquery_config import ConditionEncoding

    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_backbone(Path(tmp), args.layers, args.width)
    backbone.max_prompt_tokens = args.prompt_tokens
    words = "a photo of a red circle next to two blue squares above the green triangle".split()
    prompts = []
    for row in range(args.batch):  # slightly different lengths, as in a real batch
        text, i = [], row
        while len(backbone.tokenizer(" ".join(text)).input_ids) < args.prompt_tokens - 30 - 7 * row:
            text.append(words[i % len(words)])
            i += 1
        prompts.append(" ".join(text))
    lengths = [len(backbone.tokenizer(backbone.render(p, 0)).input_ids) for p in prompts]
    std = float(backbone.input_embeddings.weight.std())
    queries = torch.nn.Parameter(torch.randn(args.queries, backbone.hidden_size) * std)
    markers = torch.nn.Parameter(torch.randn(2, backbone.hidden_size) * std)

    encoders = {
        "naive": build_condition_encoder(ConditionEncoding("full-sequence")),
        "frozen_prefix": build_condition_encoder(ConditionEncoding("frozen-prefix")),
        # prompts seen before (several images or epochs per caption): only the queries run
        "frozen_prefix_memo": build_condition_encoder(ConditionEncoding("frozen-prefix", memo_size=len(prompts))),
    }

    def step(encoder):
        queries.grad = markers.grad = None
        start = time.perf_counter()
        encoder(backbone, prompts, None, queries, markers).hidden.float().square().mean().backward()
        return time.perf_counter() - start

    for encoder in encoders.values():  # warm-up (fills the memo)
        step(encoder)
    times = {name: [] for name in encoders}
    for _ in range(args.repeats):
        for name, encoder in encoders.items():
            times[name].append(step(encoder))
    n_params = sum(p.numel() for p in backbone.model.parameters()) / 1e6
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"model: {args.layers} layers, width {args.width}, {n_params:.1f}M params (frozen), float32, "
          f"{torch.get_num_threads()} threads")
    print(f"batch {args.batch}, prompt tokens with chat template {lengths}, {args.queries} queries")
    for name, values in times.items():
        print(f"{name:>14}: median {med[name]:.3f} s/step  (all: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"speed-up (no-grad prefix): {med['naive'] / med['frozen_prefix']:.2f}x")
    print(f"speed-up (memoised prefix, repeated prompts): {med['naive'] / med['frozen_prefix_memo']:.2f}x")


if __name__ == "__main__":
    main()
