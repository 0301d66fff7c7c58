"""How much of a model's condition carries the prompt's colour?

For the 18 prompts "a photo of a {colour} {circle|square|triangle}" this prints, at the backbone output, after the
connector's first (projection) layer and at the connector output, the share of the condition's mean square that
varies between prompts, and the share explained by the colour word alone (variance of the per-colour means). A
decoder cannot follow colours that the condition no longer carries.
Usage: PYTHONPATH=. python scripts/smol_condition_colour_share.py [CARD [CHECKPOINT]]
       (CHECKPOINT "init": the card's seeded initialisation with the standardised connector that training starts from)
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
    if checkpoint == "init":
        from mqeval.model.metaquery import MetaQuery
        from mqeval.train.config import DataConfig
        from mqeval.train.connector_init import standardize_connector_input
        from mqeval.train.shapes_data import ShapesTrainingSet

        model = MetaQuery(card.model, seed=0)
        data = ShapesTrainingSet(DataConfig(kind="shapes", resolution=32, images_per_caption=1, num_examples=256))
        standardize_connector_input(model, [data.caption_and_metadata(i)[0] for i in range(256)])
    else:
        model = load_model(card, checkpoint=checkpoint)
    model.eval()
    print(f"{card_name} ({checkpoint or 'shipped weights'})")
    print(f"{'stage':10} {'between prompts':>16} {'colour word':>12}")
    for name, between, colour in shares(model):
        print(f"{name:10} {between:16.4f} {colour:12.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
