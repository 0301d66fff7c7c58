"""The backbone states of each distinct (prompt, input images) pair, computed once while the weights stay put.

A benchmark asks for several images per prompt and the same negative prompt for all of them; encoding the condition
per image repeats the backbone's work (7x for GenEval-style runs at batch size 4). Here every distinct pair runs
through the backbone alone, as a one-row call without padding, and its states are memoised: the backbone sees each
distinct text once per run (tokenised ahead, on another thread, when `prepare` is called for the next batch).

Why the backbone and not the connector output: the backbone's rows do not change with the number of rows in a call
(checked bit for bit for the `shapes` prompts on SmolLM2-135M, CPU, one thread), but small matrix products in the
connector do (a 1-row call rounds differently from a 4-row one), and so does the memory layout of its input (see
`query_states_as_sliced`). Running the cheap connector per call over the batch's rows, on states laid out as the
full-sequence call lays them out, keeps the images byte-identical to per-image encoding wherever a batch held no
prompts of different token lengths. Where one did, the old path left-padded the shorter prompts inside the backbone
call, which changes their states by float rounding; now no prompt is ever padded inside the backbone, so its states
no longer depend on its batch neighbours.

The memo is cleared when a parameter of the condition path (backbone, queries, connector) changes in place (an
optimizer step or a weight load bumps the tensor's version counter), so a memo never serves stale conditions.
"""
from __future__ import annotations

import threading
from typing import Any, Hashable, Optional, Sequence

import torch

from mqeval.fileio import image_sha256
from mqeval.model.backbones.base import BackboneOutput, stack_rows, unpad_rows
from mqeval.model.row_memo import RowMemo

ConditionKey = tuple[str, tuple[str, ...]]


def condition_keys(prompts: Sequence[str], input_images: Optional[list[list[Any]]]) -> list[ConditionKey]:
    images = input_images if input_images is not None else [[] for _ in prompts]
    return [(prompt, tuple(image_sha256(im) for im in imgs)) for prompt, imgs in zip(prompts, images)]


class ConditionMemo:
    def __init__(self, model: Any, max_entries: int = 1024):
        self.model = model
        self.rows: RowMemo[Hashable, Any] = RowMemo(max_entries)
        self._prepared: dict[ConditionKey, dict[str, Any]] = {}
        self._lock = threading.Lock()
        # A fast tokenizer must not be used by two threads at once ("Already borrowed"): the prefetch thread and
        # this one take turns.
        self._tokenizer_lock = threading.Lock()
        self._stamp: Optional[int] = None

    def _weights_stamp(self) -> int:
        parts = [self.model.backbone, self.model.connector]
        if self.model.query_tokens is not None:
            parts.append(self.model.query_tokens)
        # Inference tensors (weights loaded under torch.inference_mode) keep no version counter; nothing trains them.
        return sum(p._version for part in parts for p in part.parameters() if not p.is_inference())

    def _check_weights(self) -> None:
        stamp = self._weights_stamp()
        if stamp != self._stamp:
            with self._lock:
                self.rows.clear()
                self._prepared.clear()
            self._stamp = stamp

    def prepare(self, prompts: Sequence[str], input_images: Optional[list[list[Any]]] = None) -> None:
        """Tokenise the pairs not memoised yet (CPU work; safe to call from another thread while `encode` runs)."""
        backbone = self.model.backbone
        with_queries = self.model.query_tokens is not None
        images = input_images if input_images is not None else [[] for _ in prompts]
        for key, prompt, imgs in zip(condition_keys(prompts, input_images), prompts, images):
            with self._lock:
                if key in self.rows or key in self._prepared:
                    continue
            with self._tokenizer_lock:
                inputs = backbone.tokenize([prompt], [list(imgs)], with_queries=with_queries)
            with self._lock:
                self._prepared[key] = inputs

    def states(self, prompts: Sequence[str], input_images: Optional[list[list[Any]]] = None) -> BackboneOutput:
        """The backbone outputs of `prompts` as one left-padded batch, as `model.backbone_states` would give."""
        self._check_weights()
        keys = condition_keys(prompts, input_images)
        images = input_images if input_images is not None else [[] for _ in prompts]
        source = {key: (prompt, list(imgs)) for key, prompt, imgs in zip(keys, prompts, images)}
        with_queries = self.model.query_tokens is not None

        def encode_missing(missing: list[ConditionKey]) -> list[tuple[torch.Tensor, int]]:
            rows = []
            for key in missing:
                prompt, imgs = source[key]
                with self._lock:
                    inputs = self._prepared.pop(key, None)
                if inputs is None:
                    with self._tokenizer_lock:
                        inputs = self.model.backbone.tokenize([prompt], [imgs], with_queries=with_queries)
                length = int(inputs["input_ids"].shape[1])
                (row,) = unpad_rows(self.model.backbone_states([prompt], [imgs] if imgs else None, inputs=inputs))
                rows.append((row, length))
            return rows

        with torch.no_grad():
            rows = self.rows.fill(keys, encode_missing)
        with self._lock:
            for key in keys:  # tokenised ahead but memoised meanwhile
                self._prepared.pop(key, None)
        if not with_queries:
            return stack_rows([row for row, _ in rows])
        return query_states_as_sliced([row for row, _ in rows], max(length for _, length in rows))


def query_states_as_sliced(rows: list[torch.Tensor], prompt_length: int) -> BackboneOutput:
    """The query states of a batch laid out in memory as `Backbone.forward` leaves them: a slice of the whole
    sequence's states [B, prompt + 1 + N + 1, D]. Same values either way, but the connector's first matrix product
    takes another kernel on the strided slice than on a compact tensor (a batched product instead of one folded
    product), which rounds differently; this layout keeps the images byte-identical to per-image encoding."""
    stacked = torch.stack(rows)
    b, n, d = stacked.shape
    whole = stacked.new_zeros(b, prompt_length + n + 2, d)
    view = whole[:, -n - 1:-1]
    view.copy_(stacked)
    return BackboneOutput(hidden=view, mask=torch.ones(b, n, dtype=torch.bool, device=stacked.device))
