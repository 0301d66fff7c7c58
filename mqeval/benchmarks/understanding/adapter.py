"""mqeval's lmms-eval model: answers lmms-eval requests with a MetaQuery model's MLLM backbone.

Used for tuned backbones (LoRA or full), whose weights only mqeval can load. The request handling lives in
`BackboneResponder` (plain Python, testable without lmms-eval); `lmms_class()` wraps it in a subclass of
`lmms_eval.api.model.lmms` registered as "mqeval". Prompts go through the backbone processor's own chat template
with the images first, without MetaQuery's generation system prompt; decoding is greedy unless a task asks for
sampling. Requests are answered one at a time (batch_size is accepted for lmms-eval's interface only).
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

DEFAULT_MAX_NEW_TOKENS = 128


def cut_at_stops(text: str, until: Sequence[str]) -> str:
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text


class BackboneResponder:
    def __init__(self, backbone: Any, system_prompt: Optional[str] = None):
        self.backbone = backbone
        self.model = backbone.model
        self.processor = backbone.processor
        self.tokenizer = backbone.tokenizer
        self.system_prompt = system_prompt

    @classmethod
    def from_card(cls, card: str, checkpoint: Optional[str] = None, device: str = "cuda") -> "BackboneResponder":
        from pathlib import Path

        from mqeval.model.loading import load_model
        from mqeval.zoo import load_card

        model = load_model(load_card(card), Path(checkpoint) if checkpoint else None, device=device)
        return cls(model.backbone)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def render(self, context: str, num_images: int) -> str:
        text = context.replace("<image>", "").strip()
        content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": text}]
        messages = [{"role": "user", "content": content}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": self.system_prompt}]})
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str, images: Sequence[Any]):
        images = [im.convert("RGB") for im in images]
        batch = self.processor(text=[text], images=images or None, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def generate(self, context: str, images: Sequence[Any], gen_kwargs: dict[str, Any]) -> str:
        import torch

        inputs = self.encode(self.render(context, len(images)), images)
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        kwargs: dict[str, Any] = {"max_new_tokens": int(gen_kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
                                  "do_sample": temperature > 0, "pad_token_id": self.tokenizer.pad_token_id}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(gen_kwargs.get("top_p", 1.0)))
        with torch.no_grad():
            out = self.model.generate(**inputs, **kwargs)
        answer = self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        until = gen_kwargs.get("until") or []
        return cut_at_stops(answer, [until] if isinstance(until, str) else until)

    def loglikelihood(self, context: str, continuation: str, images: Sequence[Any]) -> tuple[float, bool]:
        """log P(continuation | prompt) and whether greedy decoding would produce exactly it."""
        import torch

        prompt = self.render(context, len(images))
        prefix_len = self.encode(prompt, images)["input_ids"].shape[1]
        inputs = self.encode(prompt + continuation, images)
        with torch.no_grad():
            logits = self.model(**inputs).logits[0].float()
        target = inputs["input_ids"][0, prefix_len:]
        logprobs = torch.log_softmax(logits[prefix_len - 1:-1], dim=-1)
        total = logprobs.gather(1, target[:, None]).sum().item()
        greedy = bool((logprobs.argmax(dim=-1) == target).all().item())
        return total, greedy

    @staticmethod
    def visuals(args: tuple, task_dict: dict) -> list[Any]:
        doc_to_visual, doc_id, task, split = args[-4:]
        found = doc_to_visual(task_dict[task][split][doc_id]) if doc_to_visual is not None else None
        return [v for v in (found or []) if hasattr(v, "convert")]  # images only (no video here)

    def answer(self, request: Any, task_dict: dict) -> Any:
        """One lmms-eval Instance: generate_until -> str, loglikelihood -> (logprob, is_greedy)."""
        images = self.visuals(request.args, task_dict)
        if request.request_type == "generate_until":
            return self.generate(request.args[0], images, dict(request.args[1] or {}))
        if request.request_type == "loglikelihood":
            return self.loglikelihood(request.args[0], request.args[1], images)
        raise NotImplementedError(f"mqeval's lmms-eval adapter does not handle {request.request_type} requests")


@functools.lru_cache(maxsize=None)
def lmms_class():
    """The lmms-eval model class (built on first use: lmms-eval is an optional extra)."""
    from lmms_eval.api.model import lmms
    from lmms_eval.api.registry import register_model

    class MQEvalLMM(lmms):
        def __init__(self, card: Optional[str] = None, checkpoint: Optional[str] = None, device: str = "cuda",
                     batch_size: int = 1, responder: Optional[BackboneResponder] = None, **_: Any):
            super().__init__()
            if responder is None and card is None:
                raise ValueError("MQEvalLMM needs card=<model card name> (and optionally checkpoint=<path>)")
            self.responder = responder or BackboneResponder.from_card(card, checkpoint, device)
            self.batch_size_per_gpu = int(batch_size)

        def generate_until(self, requests) -> list[str]:
            return [self.responder.answer(r, self.task_dict) for r in requests]

        def loglikelihood(self, requests) -> list[tuple[float, bool]]:
            return [self.responder.answer(r, self.task_dict) for r in requests]

        def generate_until_multi_round(self, requests) -> list[str]:
            raise NotImplementedError("multi-round tasks are not part of the paper's understanding suites")

    register_model("mqeval")(MQEvalLMM)
    return MQEvalLMM
