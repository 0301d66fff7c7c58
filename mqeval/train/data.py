"""Training data: (image, caption[, input images]) examples by index, transforms, and a resumable batch order.

Every dataset is indexable, so the batch at optimizer step s is a pure function of (seed, s): resuming at step s
needs no iterator state, and the order does not depend on how many times the run was interrupted.
"""
from __future__ import annotations

import glob
import io
import json
import random
import tarfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.errors import ConfigError, DataIntegrityError
from mqeval.extras import require
from mqeval.registry import Registry
from mqeval.train.train_config import DataConfig

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class Example:
    image: Any  # PIL.Image
    caption: str
    input_images: list = field(default_factory=list)


# --- transforms -------------------------------------------------------------------------------------------------------
def resize_crop(image, resolution: int, crop: str = "center", rng: Optional[random.Random] = None):
    """Resize the shorter side to `resolution` (bicubic, antialiased), then crop a square (center or random)."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = image.size
    scale = resolution / min(w, h)
    if scale != 1:
        image = image.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))),
                             Image.Resampling.BICUBIC)
    w, h = image.size
    if crop == "random" and rng is not None:
        left, top = rng.randint(0, w - resolution), rng.randint(0, h - resolution)
    else:
        left, top = (w - resolution) // 2, (h - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def to_tensor(images: Sequence[Any]):
    """PIL images -> FloatTensor [B, 3, H, W] in [-1, 1]."""
    import numpy as np
    import torch

    arrays = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).div(127.5).sub(1.0)


# --- datasets ---------------------------------------------------------------------------------------------------------
class JsonlDataset:
    def __init__(self, config: DataConfig):
        path = Path(config.path or "")
        if not path.is_file():
            raise ConfigError(f"data.path: no JSON-lines file at {path}")
        self.root = path.parent
        self.rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        self.config = config

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Example:
        from PIL import Image

        row, c = self.rows[index], self.config
        inputs = [Image.open(self.root / p) for p in row.get(c.input_images_key, [])]
        return Example(Image.open(self.root / row[c.image_key]), str(row[c.caption_key]), inputs)


class ImageFolderDataset:
    def __init__(self, config: DataConfig):
        root = Path(config.path or "")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise ConfigError(f"data.path: no images under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Example:
        from PIL import Image

        path = self.files[index]
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text().strip() if caption_file.is_file() else ""
        return Example(Image.open(path), caption)


class WebDatasetShards:
    """Tar shards in the webdataset layout, grouped by webdataset's own key.extension rule and indexed once (member
    offsets) so that examples are addressable by index. webdataset's readers stream a shard from its start; the step
    order here needs random access, so shards stay open (up to MAX_OPEN_SHARDS) and a sample is read by seeking."""

    MAX_OPEN_SHARDS = 64
    IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")

    def __init__(self, config: DataConfig):
        self._open: OrderedDict[str, tarfile.TarFile] = OrderedDict()  # least recently read first
        base_plus_ext = require("webdataset.tariterators", "train", "Training on webdataset shards").base_plus_ext
        pattern = config.path or ""
        shards = sorted(glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else pattern.split(",")
        shards = [s for s in shards if s]
        if not shards:
            raise ConfigError(f"data.path: no tar shards match {pattern!r}")
        self.config = config
        self.index: list[tuple[str, dict[str, tarfile.TarInfo]]] = []
        for shard in shards:
            groups: dict[str, dict[str, tarfile.TarInfo]] = {}
            tar = self._tar(shard)
            for member in tar.getmembers():
                key, ext = base_plus_ext(member.name) if member.isfile() else (None, None)
                if key is not None:
                    groups.setdefault(key, {})[ext.lower()] = member
            self.index += [(shard, g) for _, g in sorted(groups.items()) if any(e in g for e in self.IMAGE_EXTS)]

    def _tar(self, shard: str) -> tarfile.TarFile:
        if shard in self._open:
            self._open.move_to_end(shard)
        else:
            if len(self._open) >= self.MAX_OPEN_SHARDS:
                self._open.popitem(last=False)[1].close()
            try:
                self._open[shard] = tarfile.open(shard)
            except (OSError, tarfile.TarError) as exc:
                raise DataIntegrityError(f"data.path: cannot read the tar shard {shard}: {exc}") from None
        return self._open[shard]

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def __del__(self) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> Example:
        from PIL import Image

        shard, members = self.index[index]
        tar = self._tar(shard)
        ext = next(e for e in self.IMAGE_EXTS if e in members)
        image = Image.open(io.BytesIO(tar.extractfile(members[ext]).read()))
        image.load()
        if "txt" in members:
            caption = tar.extractfile(members["txt"]).read().decode("utf-8").strip()
        elif "json" in members:
            caption = str(json.loads(tar.extractfile(members["json"]).read())[self.config.caption_key])
        else:
            raise DataIntegrityError(f"{shard}: sample {members[ext].name} has no .txt or .json caption")
        return Example(image, caption)


class HFDataset:
    """A Hugging Face `datasets` dataset by name (downloaded by `datasets` itself on first use)."""

    def __init__(self, config: DataConfig):
        datasets = require("datasets", "train", "A Hugging Face `datasets` training source")

        self.data = datasets.load_dataset(config.path, split=config.split)
        self.config = config

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Example:
        row, c = self.data[int(index)], self.config
        inputs = row.get(c.input_images_key) or []
        return Example(row[c.image_key], str(row[c.caption_key]), list(inputs))


TRAINING_SETS: Registry = Registry("training data kind")
TRAINING_SETS.register("jsonl", "mqeval.train.data:JsonlDataset")
TRAINING_SETS.register("image-folder", "mqeval.train.data:ImageFolderDataset")
TRAINING_SETS.register("webdataset", "mqeval.train.data:WebDatasetShards")
TRAINING_SETS.register("hf", "mqeval.train.data:HFDataset")
TRAINING_SETS.register("shapes", "mqeval.train.shapes_data:ShapesTrainingSet")  # imports the shapes world


def build_dataset(config: DataConfig):
    return TRAINING_SETS.get(config.kind)(config)


# --- order ------------------------------------------------------------------------------------------------------------
class StepSampler:
    """Indices of the examples of optimizer step `step`: epochs are seeded permutations of groups of
    `group_size` consecutive indices (the shapes set puts images of one caption next to each other)."""

    def __init__(self, num_examples: int, per_step: int, seed: int, group_size: int = 1):
        if per_step % group_size:
            raise ConfigError(f"batch size x grad_accum ({per_step}) must be a multiple of images_per_caption "
                              f"({group_size})")
        self.num_groups = num_examples // group_size
        if self.num_groups * group_size < per_step:
            raise ConfigError(f"the dataset has {num_examples} examples, fewer than one step needs ({per_step})")
        self.per_step, self.seed, self.group_size = per_step, seed, group_size
        self._epoch_cache: tuple[int, list[int]] | None = None

    def _permutation(self, epoch: int) -> list[int]:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            import numpy as np

            perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_groups).tolist()
            self._epoch_cache = (epoch, perm)
        return self._epoch_cache[1]

    def indices(self, step: int) -> list[int]:
        groups_per_step = self.per_step // self.group_size
        steps_per_epoch = self.num_groups // groups_per_step
        epoch, within = divmod(step, steps_per_epoch)
        perm = self._permutation(epoch)[within * groups_per_step:(within + 1) * groups_per_step]
        return [g * self.group_size + j for g in perm for j in range(self.group_size)]


def load_examples(dataset, indices: Sequence[int], config: DataConfig, seeds: Sequence[int]) -> list[Example]:
    """Fetch and transform examples; example i's crop/flip randomness comes from seeds[i] (a function of the run's
    seed, the step and the example's place in the step's global batch), so neither resuming nor the number of
    processes or micro-batches changes it."""
    out = []
    for index, seed in zip(indices, seeds, strict=True):
        rng = random.Random(seed)
        ex = dataset[index]
        image = resize_crop(ex.image, config.resolution, config.crop, rng)
        if config.random_flip and rng.random() < 0.5:
            from PIL import ImageOps

            image = ImageOps.mirror(image)
        inputs = [resize_crop(im, config.resolution, "center") for im in ex.input_images]
        out.append(Example(image, ex.caption, inputs))
    return out
