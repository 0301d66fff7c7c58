"""Write the GenEval detector fixtures from mmdetection 2.x itself (run in the venv of build_mmdet2_env.sh).

    ../mqeval-mmdet2-venv/bin/python scripts/make_geneval_mmdet_fixture.py tests/data/geneval

1. `mmdet_mask2former_swin-s_params.json`: every state-dict entry (name, shape) of the official GenEval detector
   config `mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco` as mmdet builds it (mmcv's Config + build_detector,
   no weights loaded), i.e. the key list of the released checkpoint.
2. A reduced-width twin of that config (same modules and layouts, narrower and shallower) with mmdet's own init,
   then every tensor perturbed so that no layer is at an initial value, and the classifier and mask head scaled
   so that scores reach GenEval's thresholds: `mmdet_mask2former_tiny.safetensors` (mmdet key names).
3. Images of a few sizes (`mmdet_fixture_images/*.png`) and mmdet's `inference_detector` output on each: per
   detection its class, float32 box and score, and mask (bit-packed), in mmdet's per-class order, plus the sha256 of
   the input tensor mmdet's test pipeline built (`mmdet_mask2former_tiny_outputs.npz`).
4. GenEval metadata lines built around those detections and the verdicts of the official evaluate_images.py
   logic (thresholds, numpy's argsort order, position rule; restated here, run under this venv's numpy 1.23)
   applied to mmdet's outputs (`mmdet_mask2former_tiny_verdicts.json`). Colour clauses are left out: they need CLIP.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import mmcv
import mmdet
import numpy as np
import torch
from mmcv import Config
from PIL import Image, ImageDraw

OBJECT_NAMES = Path(__file__).resolve().parents[1] / "benchmarks" / "geneval" / "object_names.txt"
CONFIG = "mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.py"
TINY = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], feat=32, queries=20, enc_layers=2,
            enc_ffn=64, dec_layers=3, dec_ffn=64)
IMAGE_SIZES = [(64, 64), (96, 64), (72, 120), (50, 70), (128, 96), (40, 40)]  # (width, height)
CLASS_SCALE, MASK_SCALE = 20.0, 30.0  # tuned so that scores spread over GenEval's 0.3 and 0.9 thresholds


def config_path() -> Path:
    root = Path(mmdet.__file__).parent
    for base in (root / ".mim" / "configs", root.parent / "configs"):
        if (base / CONFIG).is_file():
            return base / CONFIG
    raise SystemExit(f"{CONFIG} not found beside mmdet {mmdet.__version__}")


def load_config(tiny: bool) -> Config:
    cfg = Config.fromfile(str(config_path()))
    cfg.model.backbone.init_cfg = None  # no download of the ImageNet Swin weights
    if tiny:
        t, head = TINY, cfg.model.panoptic_head
        cfg.model.backbone.update(embed_dims=t["embed_dims"], depths=t["depths"], num_heads=t["num_heads"])
        head.update(in_channels=[t["embed_dims"] * 2 ** i for i in range(4)], feat_channels=t["feat"],
                    out_channels=t["feat"], num_queries=t["queries"])
        encoder = head.pixel_decoder.encoder
        encoder.num_layers = t["enc_layers"]
        encoder.transformerlayers.attn_cfgs.embed_dims = t["feat"]
        encoder.transformerlayers.ffn_cfgs.update(embed_dims=t["feat"], feedforward_channels=t["enc_ffn"])
        head.pixel_decoder.positional_encoding.num_feats = t["feat"] // 2
        head.positional_encoding.num_feats = t["feat"] // 2
        decoder = head.transformer_decoder
        decoder.num_layers = t["dec_layers"]
        decoder.transformerlayers.attn_cfgs.embed_dims = t["feat"]
        decoder.transformerlayers.ffn_cfgs.update(embed_dims=t["feat"], feedforward_channels=t["dec_ffn"])
        decoder.transformerlayers.feedforward_channels = t["dec_ffn"]
    return cfg


def build(cfg: Config):
    from mmdet.models import build_detector

    model = build_detector(cfg.model)
    model.cfg = cfg
    return model.eval()


def perturb(model, seed: int = 0) -> None:
    """Move every tensor away from its init (norms and biases too), then make classes and masks confident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() == 1:
                p.add_(0.1 * noise)
            else:
                std = float(p.std()) if p.numel() > 1 else 0.0
                p.add_(noise * (0.5 * std if std > 0 else 0.05))
        head = model.panoptic_head
        head.cls_embed.weight.mul_(CLASS_SCALE)
        head.mask_embed[4].weight.mul_(MASK_SCALE)


def pipeline_input_sha(model, path: str) -> tuple[str, tuple[int, ...]]:
    """sha256 of the float32 input tensor mmdet's test pipeline makes from one file (what the network sees)."""
    from mmdet.datasets import replace_ImageToTensor
    from mmdet.datasets.pipelines import Compose

    cfg = model.cfg.copy()
    cfg.data.test.pipeline = replace_ImageToTensor(cfg.data.test.pipeline)
    data = Compose(cfg.data.test.pipeline)(dict(img_info=dict(filename=path), img_prefix=None))
    tensor = data["img"][0].data.contiguous().numpy().astype(np.float32)
    return hashlib.sha256(tensor.tobytes()).hexdigest(), tuple(tensor.shape)


def draw_image(index: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(100 + index)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
        x1, y1 = x0 + rng.integers(6, size[0] // 2 + 8), y0 + rng.integers(6, size[1] // 2 + 8)
        shape = (int(x0), int(y0), int(x1), int(y1))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(shape, fill=colour)
    return image


# ---------------------------------------------------------------- the official rules, restated (numpy 1.23 here)

def official_select(bbox, segm, threshold):
    kept = {}
    for index in range(len(bbox)):
        order = np.argsort(bbox[index][:, 4])[::-1]
        order = order[bbox[index][order, 4] > threshold][:16].tolist()
        if order:
            kept[index] = [(bbox[index][i], segm[index][i]) for i in order]
    return kept


def official_relation(box_a, box_b, margin=0.1):
    boxes = np.array([box_a, box_b])[:, :4].reshape(2, 2, 2)
    centre_a, centre_b = boxes.mean(axis=-2)
    size_a, size_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = centre_a - centre_b
    shrunk = np.maximum(np.abs(offset) - margin * (size_a + size_b), 0) * np.sign(offset)
    if np.all(np.abs(shrunk) < 1e-3):
        return set()
    dx, dy = shrunk / np.linalg.norm(offset)
    found = set()
    for name, hit in (("left of", dx < -0.5), ("right of", dx > 0.5), ("above", dy < -0.5), ("below", dy > 0.5)):
        if hit:
            found.add(name)
    return found


def official_verdict(kept_by_name, metadata):
    groups, correct = [], True
    for clause in metadata.get("include", []):
        found = kept_by_name.get(clause["class"], [])[: clause["count"]]
        ok = len(found) >= clause["count"]
        if ok and "position" in clause:
            relation, target = clause["position"]
            if groups[target] is None:
                ok = False
            else:
                ok = all(relation in official_relation(obj[0], t[0]) for obj in found for t in groups[target])
        correct = correct and ok
        groups.append(found if ok else None)
    for clause in metadata.get("exclude", []):
        if len(kept_by_name.get(clause["class"], [])) >= clause["count"]:
            correct = False
    return correct


def metadata_for(kept, names, rng):
    """Prompts that probe the detections: presence, counts around the found ones, positions both ways, absence."""
    lines = []
    present = sorted(kept, key=lambda c: -float(kept[c][0][0][4]))
    absent = [c for c in range(len(names)) if c not in kept]
    for cls in present[:3]:
        lines.append({"tag": "single_object", "include": [{"class": names[cls], "count": 1}]})
    for cls in present[:2]:
        n = len(kept[cls])
        for count in (max(n - 1, 1), n, n + 1):
            lines.append({"tag": "counting", "include": [{"class": names[cls], "count": count}],
                          "exclude": [{"class": names[cls], "count": count + 1}]})
    if len(present) >= 2:
        a, b = names[present[0]], names[present[1]]
        lines.append({"tag": "two_object", "include": [{"class": a, "count": 1}, {"class": b, "count": 1}]})
        for relation in ("left of", "right of", "above", "below"):
            lines.append({"tag": "position", "include": [{"class": b, "count": 1},
                                                         {"class": a, "count": 1, "position": [relation, 0]}]})
    for cls in rng.choice(absent, size=min(2, len(absent)), replace=False).tolist():
        lines.append({"tag": "single_object", "include": [{"class": names[cls], "count": 1}]})
    return lines


def main(out: str) -> None:
    from mmdet.apis import inference_detector
    from safetensors.torch import save_file

    start = time.time()
    out_dir = Path(out)
    (out_dir / "mmdet_fixture_images").mkdir(parents=True, exist_ok=True)
    official = build(load_config(tiny=False))
    params = [[k, list(v.shape)] for k, v in official.state_dict().items()]
    (out_dir / "mmdet_mask2former_swin-s_params.json").write_text(json.dumps(
        {"config": CONFIG, "mmdet": mmdet.__version__, "mmcv": mmcv.__version__, "torch": torch.__version__,
         "state_dict": params}, indent=0) + "\n")
    del official
    print(f"[fixture] {len(params)} official state-dict entries ({time.time() - start:.0f}s)")

    torch.manual_seed(0)
    model = build(load_config(tiny=True))
    model.init_weights()
    perturb(model)
    model.eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "mmdet_mask2former_tiny.safetensors"), metadata={"tiny": json.dumps(TINY)})
    # class names as the official scorer reads them (object_names.txt, mmdet's class order)
    names = [line.strip() for line in OBJECT_NAMES.read_text().splitlines() if line.strip()]
    assert len(names) == len(mmdet.datasets.CocoDataset.CLASSES) == 80

    arrays, verdicts = {}, []
    rng = np.random.default_rng(0)
    for i, size in enumerate(IMAGE_SIZES):
        path = out_dir / "mmdet_fixture_images" / f"{i:02d}.png"
        draw_image(i, size).save(path)
        bbox, segm = inference_detector(model, str(path))
        sha, shape = pipeline_input_sha(model, str(path))
        labels = np.concatenate([np.full(len(b), c) for c, b in enumerate(bbox)]).astype(np.int64)
        rows = np.concatenate(bbox).astype(np.float32)
        masks = np.stack([m for per_class in segm for m in per_class]).astype(bool)
        arrays[f"{i:02d}_labels"], arrays[f"{i:02d}_boxes"], arrays[f"{i:02d}_scores"] = labels, rows[:, :4], rows[:, 4]
        arrays[f"{i:02d}_masks"] = np.packbits(masks, axis=-1)
        arrays[f"{i:02d}_mask_shape"] = np.array(masks.shape)
        for tag_threshold, tag in ((0.3, None), (0.9, "counting")):
            kept = official_select(bbox, segm, tag_threshold)
            kept_by_name = {names[c]: v for c, v in kept.items()}
            for line in metadata_for(kept, names, rng):
                if (line["tag"] == "counting") != (tag == "counting"):
                    continue
                line["prompt"] = f"fixture image {i}"
                verdicts.append({"image": i, "metadata": line, "correct": official_verdict(kept_by_name, line)})
        arrays[f"{i:02d}_input_sha256"] = np.frombuffer(bytes.fromhex(sha), dtype=np.uint8)
        arrays[f"{i:02d}_input_shape"] = np.array(shape)
        top = sorted(rows[:, 4].tolist(), reverse=True)[:5]
        print(f"[fixture] image {i} {size}: input {shape}, top scores {[round(s, 3) for s in top]}, "
              f">0.3: {(rows[:, 4] > 0.3).sum()}, >0.9: {(rows[:, 4] > 0.9).sum()}")
    np.savez_compressed(out_dir / "mmdet_mask2former_tiny_outputs.npz", **arrays)
    (out_dir / "mmdet_mask2former_tiny_verdicts.json").write_text(json.dumps(
        {"numpy": np.__version__, "classes": names, "verdicts": verdicts}) + "\n")
    print(f"[fixture] {len(verdicts)} verdicts ({sum(v['correct'] for v in verdicts)} correct); "
          f"mmdet {mmdet.__version__}, mmcv-full {mmcv.__version__}, torch {torch.__version__}, "
          f"numpy {np.__version__}; {time.time() - start:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1])
