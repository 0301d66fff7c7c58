"""Compare mqeval's MetaQuery with the authors' own, on a checkpoint the authors' code wrote.

    python scripts/check_official_metaquery.py [FOLDER ...]
        (default: tests/fixtures/official_metaquery/qwen-sana and .../llava-sd15)

A FOLDER is one variant of what scripts/official_metaquery_reference.py wrote in the side environment (the
official classes, transformers 4.49, diffusers 0.33.1): the checkpoint run folder and the conditions, images and
loss the official code computed from its newest checkpoint. Here, in the lock's environment, the folder is loaded
through `--checkpoint`'s path (converted once), and the same computations are repeated with the same prompts, seeds
and noise. Prints one line per comparison and exits non-zero when one is outside its tolerance.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path("tests/fixtures/official_metaquery")
CARDS = {"qwen-sana": "metaquery-tiny-official", "llava-sd15": "metaquery-tiny-official-llava-sd15"}
CONDITION_ATOL = 1e-5  # float32, the same operations in another order (different transformers versions)
LOSS_RTOL = 1e-5


@dataclass
class Comparison:
    name: str
    difference: float  # max |a - b| (grey levels for images)
    tolerance: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.difference <= self.tolerance

    def line(self) -> str:
        return (f"{'ok  ' if self.ok else 'FAIL'} {self.name:<34} max diff {self.difference:.3g} "
                f"(tolerance {self.tolerance:g}){'  ' + self.detail if self.detail else ''}")


def load(folder: Path, variant: str):
    from mqeval.model.kinds import kind_of
    from mqeval.model.loading import load_model
    from mqeval.zoo import load_card

    card = load_card(CARDS[variant])
    weights = kind_of(card).resolve_weights(card, folder / "run")
    return load_model(card, checkpoint=weights.path).eval()


def compare_conditions(model, reference, meta) -> list[Comparison]:
    out = []
    with torch.no_grad():
        for i, prompt in enumerate(meta["prompts"]):
            cond = model.encode_condition([prompt])
            want, want_mask = reference[f"condition.{i}"], reference[f"condition_mask.{i}"]
            diff = float((cond.hidden.float() - want).abs().max())
            same_mask = bool(torch.equal(cond.mask.cpu(), want_mask.bool()))
            out.append(Comparison(f"condition {prompt!r:.26}", diff if same_mask else float("inf"), CONDITION_ATOL,
                                  "" if same_mask else "attention masks differ"))
    return out


def grey_difference(name: str, image, want: torch.Tensor) -> Comparison:
    got = np.asarray(image).astype(np.int16)
    want = want.numpy().astype(np.int16)
    diff = np.abs(got - want)
    return Comparison(name, float(diff.max()), 1.0, f"{int((diff > 0).sum())} of {diff.size} values differ")


def compare_images(model, reference, meta) -> list[Comparison]:
    from PIL import Image

    from mqeval.model.pipeline import MetaQueryPipeline

    pipeline, out = MetaQueryPipeline(model), []
    sana_shift = getattr(model.decoder, "flow_shift", None)
    side = meta["resolution"]
    for scheduler in ("dpm-solver", "flow-euler") if meta["loss_type"] == "flow" else ("dpm-solver",):
        # sample_images' FlowMatchEuler branch builds its scheduler from the same config, whose `flow_shift` key
        # FlowMatchEuler does not read: it samples with shift 1, where mqeval's flow-euler uses the repository's
        # flow_shift (docs/models.md). The loop itself is compared at the official branch's shift.
        if sana_shift is not None:
            model.decoder.flow_shift = 1.0 if scheduler == "flow-euler" else sana_shift
        for guidance in (7.5, 3.0):
            for i, prompt in enumerate(meta["prompts"][1:3]):
                image = pipeline([prompt], generators=[torch.Generator().manual_seed(meta["image_seeds"]["text"][i])],
                                 guidance_scale=guidance, num_inference_steps=meta["steps"], scheduler=scheduler,
                                 resolution=side).images[0]
                out.append(grey_difference(f"image {scheduler} cfg {guidance} #{i}", image,
                                           reference[f"image.{scheduler}.{guidance}.{i}"]))
    if sana_shift is not None:
        model.decoder.flow_shift = sana_shift
    for i, prompt in enumerate(meta["image_prompts"]):
        source = Image.fromarray(reference[f"input_image.{i}"].numpy())
        image = pipeline([prompt], input_images=[[source]], guidance_scale=3.0, image_guidance_scale=1.5,
                         generators=[torch.Generator().manual_seed(meta["image_seeds"]["edit"][i])],
                         num_inference_steps=meta["steps"], scheduler="dpm-solver", resolution=side).images[0]
        out.append(grey_difference(f"image-conditioned #{i}", image, reference[f"edit_image.{i}"]))
    return out


def compare_loss(model, reference, meta) -> list[Comparison]:
    """The official forward's draws (VAE posterior, noise, sigmas or timesteps) replayed through mqeval's loss."""
    with torch.no_grad():
        cond = model.encode_condition(meta["prompts"][1:3])
        value = model.decoder.loss_at(reference["loss.latents"], reference["loss.noise"], reference["loss.time"],
                                      cond.hidden, cond.mask)
    want = float(reference["loss.value"])
    return [Comparison(f"training loss ({meta['loss_type']})", abs(float(value) - want) / abs(want), LOSS_RTOL,
                       f"mqeval {float(value):.7f}, official {want:.7f} (relative)")]


def run(folder: Path) -> list[Comparison]:
    from safetensors.torch import load_file

    reference = load_file(str(folder / "reference.safetensors"))
    meta = json.loads((folder / "reference.json").read_text())
    model = load(folder, meta["variant"])
    return compare_conditions(model, reference, meta) + compare_images(model, reference, meta) + compare_loss(
        model, reference, meta)


def main() -> int:
    folders = [Path(a) for a in sys.argv[1:]] or [FIXTURE / variant for variant in CARDS]
    failed = total = 0
    for folder in folders:
        print(f"== {folder}")
        results = run(folder)
        for result in results:
            print(result.line())
        total += len(results)
        failed += sum(not r.ok for r in results)
    print(f"{total - failed} of {total} comparisons within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
