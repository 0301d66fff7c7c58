"""Typed training configuration (model_zoo/<name>.train.yaml), loaded strictly with mqeval.dataclass_io.from_dict."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from mqeval.dataclass_io import from_dict, load_yaml
from mqeval.model.metaquery_config import ConditionEncoding
from mqeval.paths import locate

Stage = Literal["text-to-image", "reconstruction", "editing", "instruction-tuning"]
DataKind = Literal["jsonl", "image-folder", "webdataset", "hf", "shapes"]


@dataclass(frozen=True)
class DataConfig:
    """Where (image, caption[, input images]) examples come from.

    jsonl: lines {"image": path, "caption": str, ["input_images": [paths]]}, paths relative to the file.
    image-folder: images with a same-named .txt caption beside each. webdataset: tar shards (glob or list) whose
    samples hold <key>.jpg/png/webp + <key>.txt (or .json with a caption field). hf: a datasets name (+ split),
    `image_key`/`caption_key` columns. shapes: procedurally drawn scenes of the shapes world (training seed range).
    """

    kind: DataKind
    path: Optional[str] = None  # file, folder, shard glob, or datasets name
    split: str = "train"
    image_key: str = "image"
    caption_key: str = "caption"
    input_images_key: str = "input_images"
    resolution: int = 512
    crop: Literal["center", "random"] = "center"
    random_flip: bool = False
    # shapes only: training seeds start at the world's TRAIN_SEED_START + seed_offset; never the benchmark's.
    seed_offset: int = 0
    num_examples: int = 1_000_000  # size of the shapes / sampled index space
    images_per_caption: int = 1  # shapes: draw this many scenes for each sampled caption (cheap conditions)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + cosine schedule with linear warmup, as in the official configs (lr 1e-4 -> 1e-5, warmup 5000)."""

    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_steps: int = 5000
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 0.5
    # Learning-rate multipliers by parameter-name prefix (e.g. {"decoder.": 3.0}); first match wins.
    lr_multipliers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SpikeGuardConfig:
    """Skip a step whose loss or grad norm is non-finite or > factor x its running mean; after `max_skips`
    consecutive skips, reload the last good checkpoint and move the data stream past the bad batches."""

    enabled: bool = True
    factor: float = 5.0
    ema_decay: float = 0.98
    warmup_steps: int = 50  # no ratio test before this many good steps
    max_skips: int = 3


@dataclass(frozen=True)
class TrainConfig:
    model: str  # model card name (model_zoo/<model>.yaml) or a card file
    data: DataConfig
    output_dir: str
    stage: Stage = "text-to-image"
    init_checkpoint: Optional[str] = None  # start trainable parts from this save_pretrained folder
    # Parameter-name prefixes that init_checkpoint lacks and that keep their seeded initialisation: a layer added
    # to a trained model (zero-initialised, so the model starts where the checkpoint left it).
    init_new_parameters: tuple[str, ...] = ()
    max_steps: int = 1000
    batch_size: int = 32  # per process, per micro-batch (unused when global_batch_size is set)
    # Images per optimizer step over all processes and micro-batches: the micro-batch becomes
    # global_batch_size / (processes x grad_accum), so the run trains the same model whatever --num-processes.
    global_batch_size: Optional[int] = None
    grad_accum: int = 1
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    # "standardize": fold the per-channel mean/std of the backbone outputs on `connector_init_prompts` training
    # prompts into the connector's first linear layer before step 0 (mqeval.train.connector_init).
    connector_init: Literal["default", "standardize"] = "default"
    connector_init_prompts: int = 256
    # Parameter-name prefixes kept frozen in this run (e.g. ["query_tokens."]: with frozen queries the query
    # states are a fixed function of the prompt and are memoised, so a step costs only connector + decoder).
    freeze: tuple[str, ...] = ()
    # The condition encoder's mode in training (mqeval.model.condition_encoding): true -> frozen-prefix (frozen
    # prompts run without autograd), false -> full-sequence.
    frozen_prefix: bool = True
    condition_cache_size: int = 0  # >0 (frozen_prefix only): memoise per-prompt key/values or states across steps
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    spike_guard: SpikeGuardConfig = field(default_factory=SpikeGuardConfig)
    log_every: int = 10
    save_every: int = 500
    keep_checkpoints: int = 2
    trackers: tuple[Literal["tensorboard", "wandb"], ...] = ("tensorboard",)
    wandb_project: str = "mqeval"
    num_workers: int = 0
    # Every `eval_every` steps: loss on a fixed held-out batch with true and with shuffled captions
    # (does the caption matter yet?). 0 disables.
    eval_every: int = 0
    eval_batches: int = 2

    def __post_init__(self) -> None:
        self.condition_encoding()  # a bad frozen_prefix / condition_cache_size pair fails when the config loads

    def condition_encoding(self) -> ConditionEncoding:
        """The mode of the model's condition encoder in this run."""
        mode = "frozen-prefix" if self.frozen_prefix else "full-sequence"
        try:
            return ConditionEncoding(mode, self.condition_cache_size)
        except ValueError as exc:
            raise ValueError(f"frozen_prefix: {str(self.frozen_prefix).lower()}, condition_cache_size: "
                             f"{self.condition_cache_size}: {exc}") from None

    def micro_batch_size(self, num_processes: int) -> int:
        """Examples per process per micro-batch in a run of `num_processes` processes."""
        if self.global_batch_size is None:
            return self.batch_size
        per_process = self.global_batch_size // (num_processes * self.grad_accum)
        if per_process < 1 or per_process * num_processes * self.grad_accum != self.global_batch_size:
            from mqeval.errors import ConfigError

            raise ConfigError(f"global_batch_size {self.global_batch_size} does not split into {num_processes} "
                              f"process(es) x grad_accum {self.grad_accum} equal micro-batches")
        return per_process


def _base_path(path: Path, base: str) -> Path:
    """A train config's `base` is a path relative to the config that names it."""
    from mqeval.errors import ConfigError

    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise ConfigError(f"{path}: base config {base!r} not found (looked for {base_path})")
    return base_path


def load_train_config(path: str | Path, overrides: Optional[dict] = None) -> TrainConfig:
    from mqeval.dataclass_io import deep_merge, merge_over_base

    raw = merge_over_base(locate(path).resolve(), load_yaml, _base_path, "train config")
    if overrides:
        raw = deep_merge(raw, overrides)
    return from_dict(TrainConfig, raw, str(path))
