"""How much of a model's condition carries the prompt's colour?

For the 18 prompts "a photo of a {colour} {circle|square|triangle}" this prints, at the backbone output, after the
connector's first (projection) layer and at the connector output, the share of the condition's mean square that
varies between prompts, and the share explained by the colour word alone (variance of the per-colour means). A
decoder cannot follow colours that the condition no longer carries.
Usage: PYTHONPATH=. python model_zoo/research/metaquery-smol/smol_condition_colour_share.py [CARD [CHECKPOINT]]
       (CHECKPOINT "init": the seeded initialisation with the standardised connector that the card's stage 1
       training config, model_zoo/<card>.train.yaml, starts from)
"""
from __future__ import annotations

import sys

import torch

from mqeval.benchmarks.shapes.vocab import COLORS

SHAPES = ("circle", "square", "triangle")


def shares(model) -> list[tuple[str, float, float]]:
    prompts = [f"a photo of a {c} {s}" for c in COLORS for s in SHAPES]
    with torch.no_grad():
        out = model.backbone_states(prompts)
        hidden = out.hidden.float()
        stages = {"backbone": hidden}
        if hasattr(model.connector, "projector"):
            stages["projected"] = model.connector.projector(hidden)
        stages["connector"] = model.connector(hidden, out.mask)
    rows = []
    for name, x in stages.items():
        x = x.reshape(len(COLORS), len(SHAPES), *x.shape[1:])
        energy = x.pow(2).mean()
        rows.append((name, float(x.var(dim=(0, 1)).mean() / energy), float(x.mean(1).var(0).mean() / energy)))
    return rows


def main(card_name: str = "metaquery-smol", checkpoint: str | None = None) -> None:
    from mqeval.model.loading import load_model
    from mqeval.zoo import load_card

    card = load_card(card_name)
    if checkpoint == "init":  # what stage 1 (model_zoo/<card>.train.yaml) starts from
        from mqeval.model.metaquery import MetaQuery
        from mqeval.train.train_config import load_train_config
        from mqeval.train.connector_init import standardize_on_training_captions
        from mqeval.train.data import build_dataset
        from mqeval.zoo import MODEL_ZOO_DIR

        config = load_train_config(MODEL_ZOO_DIR / f"{card_name}.train.yaml")
        model = MetaQuery(card.model, seed=config.seed)
        standardize_on_training_captions(model, build_dataset(config.data), config.data.images_per_caption,
                                         config.connector_init_prompts)
    else:
        model = load_model(card, checkpoint=checkpoint)
    model.eval()
    print(f"{card_name} ({checkpoint or 'shipped weights'})")
    print(f"{'stage':10} {'between prompts':>16} {'colour word':>12}")
    for name, between, colour in shares(model):
        print(f"{name:10} {between:16.4f} {colour:12.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
