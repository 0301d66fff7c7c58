"""What the Janus and JanusFlow adapters share: DeepSeek's code (package `janus`), its loading, its prompt format,
and batching by prompt length.

The authors' scripts generate several images of one prompt at a time, as rows of one tensor without padding or
attention mask. The adapters keep that: a batch is split into groups of prompts with the same number of tokens, and
each group runs as the scripts run one prompt (rows of one group differ only by their own randomness).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mqeval.model.official import OfficialCode

DEEPSEEK_CODE = OfficialCode(
    name="Janus / JanusFlow",
    repository="deepseek-ai/Janus",
    commit="1daa72fa409002d40931bd7b36a9280362469ead",
    install='in an environment of its own, pip install "git+{url}@{commit}" "transformers==4.46.3" '
            '"tokenizers==0.20.3" "huggingface-hub==0.26.5" "diffusers==0.31.0"',
    needs="it does not import with transformers 5 (mqeval's lock); mqeval ran it with these versions, on tiny random "
          "weights only (docs/official-code.md)",
)
CLASSES = ("VLChatProcessor", "MultiModalityCausalLM")


def load_deepseek(module: str, folder: Path, dtype: str, device: str) -> tuple[Any, Any]:
    """(VLChatProcessor, MultiModalityCausalLM) of `module` (janus.models or janus.janusflow.models) from a weights
    folder, the model cast to `dtype` on `device` as the authors' examples do."""
    import torch

    code = DEEPSEEK_CODE.load(module, CLASSES)
    processor = code.VLChatProcessor.from_pretrained(str(folder))
    model = code.MultiModalityCausalLM.from_pretrained(str(folder))
    return processor, model.to(getattr(torch, dtype)).to(device).eval()


def prompt_ids(processor: Any, prompt: str, tag: str) -> list[int]:
    """Token ids of one prompt as the authors' generation examples build it: a User / Assistant conversation in the
    processor's SFT template with no system prompt, followed by the image tag that starts generation."""
    conversation = [{"role": "User", "content": prompt}, {"role": "Assistant", "content": ""}]
    text = processor.apply_sft_template_for_multi_turn_prompts(
        conversations=conversation, sft_format=processor.sft_format, system_prompt="")
    return list(processor.tokenizer.encode(text + tag))


def same_length_groups(id_lists: Sequence[Sequence[int]]) -> list[list[int]]:
    """Indices of the prompts, grouped by token count (in order of first appearance)."""
    groups: dict[int, list[int]] = {}
    for index, ids in enumerate(id_lists):
        groups.setdefault(len(ids), []).append(index)
    return list(groups.values())


class DeepSeekTextToImage:
    """The protocol's __call__ for both adapters: prompts -> token ids -> groups of equal length -> images in the
    prompts' order. A subclass sets `tag` and implements `generate_group`."""

    tag: str  # the processor attribute holding the tag that starts image generation

    def __init__(self, model: Any, processor: Any, image_size: int, device: str):
        from mqeval.contract.text_to_image import Capabilities

        self.model, self.processor, self.image_size, self.device = model, processor, image_size, device
        # The unconditional branch is the prompt blanked out with pad tokens: no negative prompt.
        self.capabilities = Capabilities(negative_prompt=False, min_resolution=image_size, max_resolution=image_size)

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Any, generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int) -> list:
        import torch

        tag = getattr(self.processor, self.tag)
        ids = [prompt_ids(self.processor, prompt, tag) for prompt in prompts]
        images: list = [None] * len(prompts)
        with torch.inference_mode():
            for group in same_length_groups(ids):
                made = self.generate_group(torch.tensor([ids[i] for i in group], device=self.device),
                                           [generators[i] for i in group], guidance_scale, num_inference_steps)
                for index, image in zip(group, made):
                    images[index] = image
        return images

    def generate_group(self, prompt_tokens: Any, generators: list, guidance_scale: float, steps: int) -> list:
        raise NotImplementedError
