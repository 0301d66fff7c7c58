"""What colour facts a causal LM holds: greedy answers and forced choice over colour words.

Used to build the `shapes-knowledge` split only from facts the frozen backbone knows (otherwise the split measures
only its ignorance). The probe runs on any from_pretrained folder; by default SmolLM2-135M-Instruct.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

COLOUR_WORDS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")

# Everyday objects with an unambiguous typical colour (the phrase used in prompts, the colour).
OBJECT_COLOURS: dict[str, str] = {
    "the sky": "blue", "grass": "green", "a fire truck": "red", "a strawberry": "red", "an orange": "orange",
    "a banana": "yellow", "a lemon": "yellow", "a tomato": "red", "snow": "white", "coal": "black",
    "milk": "white", "blood": "red", "a leaf": "green", "the ocean": "blue", "a cherry": "red",
    "a carrot": "orange", "chocolate": "brown", "a crow": "black", "an eggplant": "purple", "a lime": "green",
    "a pumpkin": "orange", "a flamingo": "pink", "a cloud": "white", "a frog": "green", "a stop sign": "red",
    "a school bus": "yellow", "a pig": "pink", "broccoli": "green", "lavender": "purple", "coffee": "brown",
    "a polar bear": "white", "the sun": "yellow", "a ladybug": "red", "a grape": "purple", "tar": "black",
}


def _colour_in(text: str) -> Optional[str]:
    words = [w.strip(".,!?:;\"'").lower() for w in text.split()]
    return next((w for w in words if w in COLOUR_WORDS), None)


def probe(objects: dict[str, str], model_dir: Optional[Path] = None) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_dir is None:
        from mqeval.model.smollm2 import materialize_smollm2

        model_dir = materialize_smollm2()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def choice_scores(prefix: str) -> dict[str, float]:
        scores = {}
        prefix_ids = tokenizer(prefix, add_special_tokens=False).input_ids
        for colour in COLOUR_WORDS:
            ids = tokenizer(prefix + " " + colour, add_special_tokens=False).input_ids
            cont = ids[len(prefix_ids):]
            with torch.no_grad():
                logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            scores[colour] = float(sum(logp[len(prefix_ids) + i - 1, t] for i, t in enumerate(cont)))
        return scores

    rows = []
    for obj, truth in objects.items():
        question = f"What colour is {obj}? Answer with one word."
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(chat, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=12, do_sample=False)
        raw = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        chat_scores = choice_scores(chat + "The colour is")
        text_scores = choice_scores(f"The colour of {obj} is")
        rows.append({
            "object": obj, "truth": truth, "raw": raw.strip(), "greedy": _colour_in(raw),
            "chat_choice": max(chat_scores, key=chat_scores.get),
            "text_choice": max(text_scores, key=text_scores.get),
        })
    return rows
