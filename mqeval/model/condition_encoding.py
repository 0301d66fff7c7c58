"""The condition encoder: one strategy per ConditionEncoding mode for running the backbone over prompt (+ queries).

`full-sequence` (the default, what inference uses): one forward of the backbone over the whole sequence.
`frozen-prefix` (a training speed-up, mqeval.model.frozen_prefix): the prompt runs once without autograd and only the
query positions run with it; same values and gradients up to float rounding. `memo_size` > 0 also memoises per-prompt
work across calls.

MetaQuery holds the strategy as a parameter-free submodule (`MetaQuery.condition_encoder`, chosen at construction or
with `set_condition_encoding`): selecting a mode replaces no module's `forward`, and checkpoints do not change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import nn

from mqeval.model.metaquery_config import ConditionEncoding

if TYPE_CHECKING:
    from mqeval.model.backbones.base import Backbone, BackboneOutput


class ConditionEncoder(nn.Module):
    """Backbone outputs for the connector: states at the query slots (queries given) or the prompt's states.

    No parameters or buffers of its own: the backbone is passed in, so it stays registered once (as
    `MetaQuery.backbone`) and parameter names, state dicts and checkpoints are those of the model without it."""

    encoding: ConditionEncoding

    def forward(self, backbone: "Backbone", prompts: list[str], input_images: Optional[list[list[Any]]] = None,
                queries: Optional[torch.Tensor] = None, markers: Optional[torch.Tensor] = None,
                inputs: Optional[dict[str, Any]] = None) -> "BackboneOutput":
        raise NotImplementedError


class FullSequenceEncoder(ConditionEncoder):
    encoding = ConditionEncoding()

    def forward(self, backbone, prompts, input_images=None, queries=None, markers=None, inputs=None):
        return backbone(prompts, input_images, queries=queries, markers=markers, inputs=inputs)


def build_condition_encoder(encoding: ConditionEncoding) -> ConditionEncoder:
    if encoding.mode == "frozen-prefix":
        from mqeval.model.frozen_prefix import FrozenPrefixEncoder

        return FrozenPrefixEncoder(encoding.memo_size)
    return FullSequenceEncoder()
