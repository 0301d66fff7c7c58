"""The training loop (accelerate): stages, CFG dropout, accumulation, clipping, spike guard, exact resume.

Determinism: the examples of step s come from StepSampler (a function of seed and s), and every random draw of a
micro-batch (CFG dropout, timesteps, noise, crops) comes from a generator seeded by (seed, s, rank, micro-batch).
Resuming from step s therefore replays exactly what an uninterrupted run does from s.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.config import to_dict
from mqeval.fileio import write_json
from mqeval.train.config import TrainConfig

TAGS = {"no": None, "bf16": "bf16", "fp16": "fp16"}


def step_seed(seed: int, step: int, rank: int, micro: int) -> int:
    return (((seed * 1_000_003 + step) * 1_009 + rank) * 101 + micro) % (2**63 - 1)


@dataclass
class SpikeGuard:
    factor: float
    decay: float
    warmup: int
    loss_ema: Optional[float] = None
    gnorm_ema: Optional[float] = None
    good_steps: int = 0
    consecutive: int = 0

    def is_spike(self, loss: float, gnorm: float) -> bool:
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            return True
        if self.good_steps < self.warmup or self.loss_ema is None:
            return False
        return loss > self.factor * self.loss_ema or gnorm > self.factor * self.gnorm_ema

    def update(self, loss: float, gnorm: float) -> None:
        if self.loss_ema is None:
            self.loss_ema, self.gnorm_ema = loss, gnorm
        else:
            self.loss_ema = self.decay * self.loss_ema + (1 - self.decay) * loss
            self.gnorm_ema = self.decay * self.gnorm_ema + (1 - self.decay) * gnorm
        self.good_steps += 1
        self.consecutive = 0

    def state(self) -> dict:
        return {"loss_ema": self.loss_ema, "gnorm_ema": self.gnorm_ema, "good_steps": self.good_steps}


@dataclass
class TrainResult:
    output_dir: Path
    final_step: int
    losses: dict[int, float] = field(default_factory=dict)  # step -> mean loss of that step (this process)
    skipped_steps: list[int] = field(default_factory=list)
    rollbacks: int = 0
    eval: dict[int, dict[str, float]] = field(default_factory=dict)


def stage_inputs(stage: str, examples) -> tuple[list[str], Optional[list[list]]]:
    """Prompts and input images of a micro-batch for each training stage."""
    if stage == "text-to-image":
        return [ex.caption for ex in examples], None
    if stage == "reconstruction":  # the MLLM sees the target image and must reproduce it
        return [ex.caption if ex.caption else "" for ex in examples], [[ex.image] for ex in examples]
    # editing / instruction tuning: source image(s) + instruction -> target image
    missing = [i for i, ex in enumerate(examples) if not ex.input_images]
    if missing:
        from mqeval.errors import DataIntegrityError

        raise DataIntegrityError(f"stage '{stage}' needs input images; example(s) {missing[:5]} have none")
    return [ex.caption for ex in examples], [list(ex.input_images) for ex in examples]


class Trainer:
    def __init__(self, config: TrainConfig, model=None, card=None, resuming: bool = False):
        import torch
        from accelerate import Accelerator

        from mqeval.train.data import StepSampler, build_dataset
        from mqeval.train.optim import build_optimizer, build_scheduler

        self.config = config
        self.output_dir = Path(config.output_dir)
        trackers = [t for t in config.trackers if t != "wandb" or _has("wandb")]
        if "tensorboard" in trackers and not _has("tensorboard"):
            trackers.remove("tensorboard")
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum,
            log_with=trackers or None, project_dir=str(self.output_dir),
        )
        self.card = card
        self.model = model if model is not None else self._load_model()
        for name, param in self.model.named_parameters():
            if any(name.startswith(prefix) for prefix in config.freeze):
                param.requires_grad_(False)
        if config.gradient_checkpointing:
            for module in self.model.modules():
                if hasattr(module, "gradient_checkpointing_enable") and any(
                        p.requires_grad for p in module.parameters()):
                    module.gradient_checkpointing_enable()
        if config.frozen_prefix:
            from mqeval.model.frozen_prefix import use_frozen_prefix

            use_frozen_prefix(self.model.backbone, config.condition_cache_size)
        self.dataset = build_dataset(config.data)
        from mqeval.train.checkpoint import latest_checkpoint

        if config.connector_init == "standardize" and not (resuming and latest_checkpoint(self.output_dir)):
            from mqeval.train.connector_init import standardize_on_training_captions

            self.connector_init_stats = standardize_on_training_captions(
                self.model, self.dataset, config.data.images_per_caption, config.connector_init_prompts)
        world = self.accelerator.num_processes
        self.per_process = config.batch_size * config.grad_accum
        self.sampler = StepSampler(len(self.dataset), self.per_process * world, config.seed,
                                   group_size=max(1, config.data.images_per_caption))
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.max_steps)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.guard = SpikeGuard(config.spike_guard.factor, config.spike_guard.ema_decay,
                                config.spike_guard.warmup_steps)
        self.step = 0
        self.data_offset = 0  # moved on after a spike rollback, so the bad batches are not replayed
        self._torch = torch

    # --- setup ------------------------------------------------------------------------------------------------
    def _load_model(self):
        from mqeval.model.loading import load_model
        from mqeval.zoo import resolve_card

        card = self.card or resolve_card(self.config.model)
        self.card = card
        # Training starts from seeded random trainable parts unless init_checkpoint names a folder (never silently
        # from the card's shipped weights, so `mqeval train` reproduces them from scratch).
        init = Path(self.config.init_checkpoint) if self.config.init_checkpoint else None
        if init is None or self.config.init_new_parameters:
            from mqeval.model.metaquery import WEIGHTS_NAME, MetaQuery

            model = MetaQuery(card.metaquery, seed=self.config.seed)
            if init is not None:
                # The card differs from the checkpoint's config by the new layers, so the weights decide the fit.
                model.load_saved_parameters(init / WEIGHTS_NAME, self.config.init_new_parameters)
            return model
        return load_model(card, checkpoint=init)

    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    def resume(self) -> bool:
        from mqeval.train.checkpoint import latest_checkpoint, load_checkpoint

        path = latest_checkpoint(self.output_dir)
        if path is None:
            return False
        state = load_checkpoint(path, self.unwrapped, self.optimizer, self.scheduler)
        self.step = int(state["step"])
        self.data_offset = int(state.get("data_offset", 0))
        guard = state.get("spike_guard", {})
        self.guard.loss_ema, self.guard.gnorm_ema = guard.get("loss_ema"), guard.get("gnorm_ema")
        self.guard.good_steps = int(guard.get("good_steps", 0))
        return True

    def save(self) -> Path:
        from mqeval.train.checkpoint import save_checkpoint

        self.accelerator.wait_for_everyone()
        path = None
        if self.accelerator.is_main_process:
            path = save_checkpoint(self.output_dir, self.step, self.unwrapped, self.optimizer, self.scheduler,
                                   {"data_offset": self.data_offset, "spike_guard": self.guard.state()},
                                   self.config.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path

    # --- one step ---------------------------------------------------------------------------------------------
    def _micro_batches(self, step: int):
        from mqeval.train.data import load_examples, to_tensor

        indices = self.sampler.indices(step + self.data_offset)
        rank = self.accelerator.process_index
        mine = indices[rank * self.per_process:(rank + 1) * self.per_process]
        bs = self.config.batch_size
        for micro in range(self.config.grad_accum):
            seed = step_seed(self.config.seed, step, rank, micro)
            examples = load_examples(self.dataset, mine[micro * bs:(micro + 1) * bs], self.config.data, seed)
            prompts, inputs = stage_inputs(self.config.stage, examples)
            yield prompts, to_tensor([ex.image for ex in examples]), inputs, seed

    def train_step(self) -> tuple[float, float, bool]:
        torch = self._torch
        model, acc = self.model, self.accelerator
        model.train()
        total = 0.0
        micro_batches = list(self._micro_batches(self.step))
        for micro, (prompts, images, inputs, seed) in enumerate(micro_batches):
            generator = torch.Generator(device="cpu").manual_seed(seed)
            sync = micro == len(micro_batches) - 1
            with (acc.no_sync(model) if not sync and acc.num_processes > 1 else _null()), acc.autocast():
                out = self.unwrapped.loss(prompts, images.to(acc.device), inputs, generator=generator)
                loss = out.loss / len(micro_batches)
                acc.backward(loss)
            total += float(loss.detach())
        gnorm = float(acc.clip_grad_norm_(self.unwrapped.trainable_parameters(), self.config.optim.grad_clip))
        loss_value = float(acc.reduce(torch.tensor(total, device=acc.device), reduction="mean"))
        spike = self.config.spike_guard.enabled and self.guard.is_spike(loss_value, gnorm)
        if not spike:
            self.optimizer.step()
            self.guard.update(loss_value, gnorm)
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss_value, gnorm, spike

    # --- evaluation: does the caption matter? ------------------------------------------------------------------
    def caption_sensitivity(self) -> dict[str, float]:
        """Loss on fixed held-out examples (end of the index space) with true vs shuffled captions."""
        from mqeval.train.data import load_examples, to_tensor

        torch = self._torch
        n = len(self.dataset)
        count = self.config.batch_size * self.config.eval_batches
        indices = list(range(n - count, n))
        examples = load_examples(self.dataset, indices, self.config.data, 12345)
        prompts = [ex.caption for ex in examples]
        shuffled = prompts[-1:] + prompts[:-1]
        if len(set(prompts)) > 1:
            while any(a == b for a, b in zip(prompts, shuffled)):
                shuffled = shuffled[-1:] + shuffled[:-1]
        images = to_tensor([ex.image for ex in examples])
        result = {}
        self.model.eval()
        with torch.no_grad():
            for name, captions in (("eval_loss_true", prompts), ("eval_loss_shuffled", shuffled)):
                losses = []
                for start in range(0, count, self.config.batch_size):
                    gen = torch.Generator().manual_seed(start)
                    sl = slice(start, start + self.config.batch_size)
                    losses.append(float(self.unwrapped.loss(captions[sl], images[sl], None, generator=gen,
                                                            cfg_dropout=False).loss))
                result[name] = sum(losses) / len(losses)
        self.model.train()
        return result

    # --- the loop ---------------------------------------------------------------------------------------------
    def fit(self, max_steps: Optional[int] = None, progress: bool = True) -> TrainResult:
        """Train up to `max_steps` (default config.max_steps; a smaller value simulates an interruption)."""
        from tqdm.auto import tqdm

        cfg, acc = self.config, self.accelerator
        stop = min(max_steps or cfg.max_steps, cfg.max_steps)
        result = TrainResult(self.output_dir, self.step)
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.output_dir / "train_config.json", to_dict(cfg))
        acc.init_trackers("train", config={"model": cfg.model, "stage": cfg.stage, "lr": cfg.optim.lr})
        report = progress and acc.is_main_process
        # A bar on a terminal; in a log file (stderr not a terminal) one plain line every log_every steps instead
        # of thousands of carriage-return updates.
        plain = report and not sys.stderr.isatty()
        bar = tqdm(total=stop, initial=self.step, disable=not report or plain, desc="train")
        last_good = self.step
        images_per_step = cfg.batch_size * cfg.grad_accum * acc.num_processes
        while self.step < stop:
            start = time.perf_counter()
            loss, gnorm, spike = self.train_step()
            elapsed = time.perf_counter() - start
            if spike:
                result.skipped_steps.append(self.step)
                self.guard.consecutive += 1
                if self.guard.consecutive > cfg.spike_guard.max_skips and self.resume():
                    # back to the last good checkpoint; look at other data from here on
                    self.data_offset += max(1, last_good - self.step + self.guard.consecutive)
                    self.guard.consecutive = 0
                    result.rollbacks += 1
                    continue
            else:
                result.losses[self.step] = loss
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_step / elapsed:.1f}")
            if self.step % cfg.log_every == 0 or self.step == stop:
                acc.log({"loss": loss, "grad_norm": gnorm, "lr": self.scheduler.get_last_lr()[0],
                         "images_per_s": images_per_step / elapsed, "skipped": float(spike)}, step=self.step)
                if plain:
                    print(f"train step {self.step}/{stop}: loss {loss:.4f}, grad norm {gnorm:.3f}, "
                          f"{images_per_step / elapsed:.1f} img/s", file=sys.stderr, flush=True)
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == stop):
                metrics = self.caption_sensitivity()
                result.eval[self.step] = metrics
                acc.log(metrics, step=self.step)
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if self.step % cfg.save_every == 0 or self.step == stop:
                self.save()
                last_good = self.step
        bar.close()
        acc.end_training()
        result.final_step = self.step
        return result


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def train(config: TrainConfig, resume: bool = True, max_steps: Optional[int] = None, progress: bool = True,
          model=None) -> TrainResult:
    trainer = Trainer(config, model=model, resuming=resume)
    if resume:
        trainer.resume()
    return trainer.fit(max_steps, progress)
