"""The `frozen-prefix` mode of the condition encoder: the prompt runs once without autograd, only the query positions
carry gradients (selected with ConditionEncoding(mode="frozen-prefix"), mqeval.model.condition_encoding).

With a frozen backbone nothing before the queries depends on a trainable parameter (attention is causal), so the
prompt tokens' keys/values can be computed under `torch.no_grad()` and handed to a second forward over
[<begin>, q_1 .. q_N] as a key/value cache. The hidden states at the query positions, and the gradients reaching the
queries and markers, are those of the full-sequence forward (`Backbone.forward`) up to float rounding; the prompt's
activations are neither stored nor back-propagated. The trailing <end> marker is skipped: causal attention means no
query sees it.

`PrefixCache` additionally memoises each prompt's key/values across steps (useful when prompts repeat, e.g. the
finite caption space of the shapes world): then only the query positions run at all.

Scope: text-only backbones whose `run` is a plain causal LM forward (the `causal_lm` family). Prompts with input
images, M-RoPE backbones (Qwen2.5-VL) and tuned backbones take the full-sequence path (`supported`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from mqeval.model.backbones.base import Backbone, BackboneOutput, stack_rows, text_position_ids, unpad_rows
from mqeval.model.condition_encoding import ConditionEncoder, ConditionEncoding
from mqeval.model.row_memo import RowMemo, dedupe


def supported(backbone: Backbone, input_images: Optional[list[list[Any]]] = None) -> bool:
    return (
        backbone.family == "causal_lm"
        and backbone.config.tuning == "frozen"
        and not (input_images and any(input_images))
    )


# LRU memo of prompt key/values: rendered text -> per-layer (key, value) of shape [kv_heads, len, head_dim].
PrefixCache = RowMemo


def _cache_layers(past) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(past, "layers"):
        return [(layer.keys, layer.values) for layer in past.layers]
    return [(k, v) for k, v in past]  # legacy tuple format


def _prefix_kv(backbone: Backbone, texts: list[str]) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Left-padded prompt key/values [B, kv_heads, L, head_dim] per layer and the prompt mask [B, L], no autograd."""
    inputs = backbone.encode_inputs(texts, [[] for _ in texts])
    ids = inputs["input_ids"].to(backbone.device)
    mask = inputs["attention_mask"].to(backbone.device).bool()
    with torch.no_grad():
        out = backbone.model.base_model(
            input_ids=ids, attention_mask=mask.long(), position_ids=text_position_ids(mask), use_cache=True
        )
    return [(k.detach(), v.detach()) for k, v in _cache_layers(out.cache)], mask


def _prefix_kv_memoised(backbone: Backbone, texts: list[str], cache: PrefixCache):
    def encode(missing: list[str]):
        layers, mask = _prefix_kv(backbone, missing)
        return [[(k[row][:, mask[row]].clone(), v[row][:, mask[row]].clone()) for k, v in layers]
                for row in range(len(missing))]

    entries = cache.fill(texts, encode)
    length = max(e[0][0].shape[1] for e in entries)
    mask = torch.zeros(len(texts), length, dtype=torch.bool, device=backbone.device)
    layers = []
    for layer in range(len(entries[0])):
        ks, vs = [], []
        for row, entry in enumerate(entries):
            k, v = entry[layer]
            pad = length - k.shape[1]
            ks.append(torch.nn.functional.pad(k, (0, 0, pad, 0)))
            vs.append(torch.nn.functional.pad(v, (0, 0, pad, 0)))
            mask[row, pad:] = True
        layers.append((torch.stack(ks), torch.stack(vs)))
    return layers, mask


def _dynamic_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], model_config):
    from transformers import DynamicCache

    cache = DynamicCache(config=model_config)
    for index, (k, v) in enumerate(layers):
        cache.update(k, v, index)
    return cache


def query_hidden_states(
    backbone: Backbone,
    prompts: Sequence[str],
    queries: torch.Tensor,
    markers: Optional[torch.Tensor] = None,
    cache: Optional[PrefixCache] = None,
) -> BackboneOutput:
    """Same contract as `backbone(prompts, None, queries, markers)`: hidden states at the N query slots."""
    if not supported(backbone):
        raise ValueError(f"frozen-prefix encoding needs a frozen text-only causal LM, got family {backbone.family!r} "
                         f"with tuning {backbone.config.tuning!r}")
    texts = [backbone.render_prompt(p, 0, with_queries=True) for p in prompts]
    if cache is None:
        layers, mask = _prefix_kv(backbone, texts)
    else:
        layers, mask = _prefix_kv_memoised(backbone, texts, cache)
    b, n = len(texts), queries.shape[0]
    embeds = backbone.input_embeddings
    marker_pair = backbone.marker_ids()
    if marker_pair is not None:
        begin = embeds(torch.tensor([marker_pair[0]], device=backbone.device)).expand(b, 1, -1)
    else:
        if markers is None:
            raise ValueError("this tokenizer has no begin/end-of-image tokens: learned markers are required")
        begin = markers[:1].to(embeds.weight.dtype).expand(b, 1, -1)
    suffix = torch.cat([begin, queries.to(embeds.weight.dtype).expand(b, -1, -1)], dim=1)
    full_mask = torch.cat([mask, torch.ones(b, n + 1, dtype=torch.bool, device=mask.device)], dim=1)
    positions = text_position_ids(full_mask)[:, -(n + 1):]
    out = backbone.model.base_model(
        inputs_embeds=suffix, attention_mask=full_mask.long(), position_ids=positions,
        cache=_dynamic_cache(layers, backbone.model.config), use_cache=True,
    )
    hidden = out.last_hidden_state[:, 1:]
    return BackboneOutput(hidden=hidden, mask=torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device))


class FrozenPrefixEncoder(ConditionEncoder):
    """The `frozen-prefix` mode of the condition encoder (see the module docstring).

    Repeated prompts in a call are encoded once. With memo_size > 0 the prompts' key/values (metaquery) or last
    hidden states (last-layer) are memoised across calls, and when nothing upstream trains (frozen queries and
    markers) so are the query states themselves. Calls with input images, and backbones that are not frozen
    text-only causal LMs, take the full-sequence forward."""

    def __init__(self, memo_size: int = 0):
        super().__init__()
        self.encoding = ConditionEncoding("frozen-prefix", memo_size)
        self.prefix_memo: Optional[PrefixCache] = PrefixCache(memo_size) if memo_size > 0 else None  # key/values
        self.state_memo: Optional[RowMemo] = RowMemo(memo_size) if memo_size > 0 else None  # outputs

    def forward(self, backbone, prompts, input_images=None, queries=None, markers=None, inputs=None):
        if not supported(backbone, input_images):
            return backbone(prompts, input_images, queries=queries, markers=markers, inputs=inputs)
        unique, where = dedupe(prompts)
        fixed_queries = queries is not None and not queries.requires_grad and (
            markers is None or not markers.requires_grad)
        if fixed_queries and self.state_memo is not None:  # nothing upstream trains: memoise the query states
            out = _memoised_states(lambda ps: query_hidden_states(backbone, ps, queries, markers), unique,
                                   self.state_memo)
        elif queries is not None:
            out = query_hidden_states(backbone, unique, queries, markers, self.prefix_memo)
        elif self.state_memo is None:
            with torch.no_grad():
                out = backbone(unique)
        else:
            out = _memoised_states(backbone, unique, self.state_memo)
        rows = torch.tensor(where, device=out.hidden.device)
        return BackboneOutput(hidden=out.hidden[rows], mask=out.mask[rows])


def _memoised_states(encode, prompts: list[str], states: RowMemo) -> BackboneOutput:
    """Backbone outputs memoised per prompt (only valid when nothing upstream of them trains)."""
    def encode_missing(missing: list[str]) -> list[torch.Tensor]:
        with torch.no_grad():
            return unpad_rows(encode(missing))

    return stack_rows(states.fill(prompts, encode_missing))
