"""The training loop (accelerate): stages, CFG dropout, accumulation, clipping, spike guard, exact resume.

One model, however many processes: the trainer calls the prepared (DDP / FSDP / DeepSpeed) model, so gradients
are reduced across processes; accelerate's `accumulate` skips the reduction on all but the last micro-batch and
scales the loss once; clipping goes through the accelerator.

Determinism: the examples of step s come from StepSampler (a function of seed and s, for the global batch), and
every random draw of an example (CFG dropout, timestep, noise, crop) comes from a generator seeded by (seed, s, the
example's place in the global batch). Resuming from step s replays what an uninterrupted run does from s, and K
processes x batch b, or accumulation A x batch b, train the same model as one process with batch K*b or A*b.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.dataclass_io import to_dict
from mqeval.fileio import write_json
from mqeval.train.train_config import TrainConfig

TAGS = {"no": None, "bf16": "bf16", "fp16": "fp16"}
LOG_NAME = "train_log.jsonl"  # one JSON line per logged step: loss, grad norm, lr, throughput, time split


def example_seed(seed: int, step: int, position: int) -> int:
    """Seed of the example at `position` of step `step`'s global batch (independent of how it is split)."""
    return ((seed * 1_000_003 + step) * 1_000_033 + position) % (2**63 - 1)


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
        self.card = card
        # Built before the process group exists: transformers' save_pretrained writes weights only on rank 0 of
        # an initialised group, which would leave a half-built tiny test model in the other processes' cache.
        self.model = model if model is not None else self._load_model()
        trackers = [t for t in config.trackers if t != "wandb" or _has("wandb")]
        if "tensorboard" in trackers and not _has("tensorboard"):
            trackers.remove("tensorboard")
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum,
            log_with=trackers or None, project_dir=str(self.output_dir),
            cpu=not torch.cuda.is_available(),  # under torchrun on CPU: join a gloo group (else each runs alone)
        )
        from mqeval.train import parallel

        parallel.configure(self.accelerator, config)
        for name, param in self.model.named_parameters():
            if any(name.startswith(prefix) for prefix in config.freeze):
                param.requires_grad_(False)
        if config.gradient_checkpointing:
            for module in self.model.modules():
                if hasattr(module, "gradient_checkpointing_enable") and any(
                        p.requires_grad for p in module.parameters()):
                    # non-reentrant: the reentrant form breaks DDP's once-per-parameter gradient hooks
                    module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model.set_condition_encoding(config.condition_encoding())
        self.dataset = build_dataset(config.data)
        from mqeval.train.checkpoint import latest_checkpoint

        if config.connector_init == "standardize" and not (resuming and latest_checkpoint(self.output_dir)):
            from mqeval.train.connector_init import standardize_on_training_captions

            self.connector_init_stats = standardize_on_training_captions(
                self.model, self.dataset, config.data.images_per_caption, config.connector_init_prompts)
        world = self.accelerator.num_processes
        self.micro_batch = config.micro_batch_size(world)
        self.per_process = self.micro_batch * config.grad_accum
        self.sampler = StepSampler(len(self.dataset), self.per_process * world, config.seed,
                                   group_size=max(1, config.data.images_per_caption))
        self.optimizer = build_optimizer(self.model, config.optim)
        # Stepped by hand once per optimizer step (accelerate's scheduler wrapper would step it once per process).
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.max_steps)
        from mqeval.train.throughput import Clock, ForwardTimer

        self.clock = Clock(self.accelerator.device)
        self.backbone_timer = ForwardTimer(self.model.condition_encoder, self.clock)
        self.tokenizer = getattr(self.model.backbone, "tokenizer", None)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.can_skip_steps = parallel.can_skip_steps(self.accelerator)
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
        state = load_checkpoint(self.accelerator, path, self.model, self.optimizer, self.scheduler)
        self.step = int(state["step"])
        self.data_offset = int(state.get("data_offset", 0))
        guard = state.get("spike_guard", {})
        self.guard.loss_ema, self.guard.gnorm_ema = guard.get("loss_ema"), guard.get("gnorm_ema")
        self.guard.good_steps = int(guard.get("good_steps", 0))
        return True

    def save(self) -> Path:
        from mqeval.train.checkpoint import save_checkpoint

        return save_checkpoint(self.accelerator, self.output_dir, self.step, self.model, self.optimizer,
                               self.scheduler, {"data_offset": self.data_offset, "spike_guard": self.guard.state()},
                               self.config.keep_checkpoints)

    # --- one step ---------------------------------------------------------------------------------------------
    def _micro_batches(self, step: int):
        """This process's micro-batches of step `step`: (prompts, images, input images, one generator each)."""
        from mqeval.train.data import load_examples, to_tensor

        torch = self._torch
        indices = self.sampler.indices(step + self.data_offset)
        first = self.accelerator.process_index * self.per_process
        bs = self.micro_batch
        for micro in range(self.config.grad_accum):
            positions = range(first + micro * bs, first + (micro + 1) * bs)
            seeds = [example_seed(self.config.seed, step, position) for position in positions]
            examples = load_examples(self.dataset, [indices[p] for p in positions], self.config.data, seeds)
            prompts, inputs = stage_inputs(self.config.stage, examples)
            generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
            yield prompts, to_tensor([ex.image for ex in examples]), inputs, generators

    def _count_tokens(self, prompts: list[str]) -> int:
        if self.tokenizer is None:
            return 0
        return sum(len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"])

    def train_step(self):
        """One optimizer step; returns (loss, grad norm, skipped as a spike, Throughput), all over all processes."""
        from mqeval.train.throughput import StepTimes, Throughput

        torch = self._torch
        model, acc, clock = self.model, self.accelerator, self.clock
        model.train()
        times, loss_sum, tokens = StepTimes(), 0.0, 0
        self.backbone_timer.take()
        mark = clock.now()
        for prompts, images, inputs, generators in self._micro_batches(self.step):
            tokens += self._count_tokens(prompts)
            images = images.to(acc.device)
            now = clock.now()
            times.data += now - mark
            with acc.accumulate(model), acc.autocast():  # reduces gradients only on the last micro-batch
                out = model(prompts, images, inputs, generator=generators)
                acc.backward(out.loss)  # divided by grad_accum here, once
            loss_sum += float(out.loss.detach())
            mark, backbone = clock.now(), self.backbone_timer.take()
            times.backbone += backbone
            times.decoder += mark - now - backbone
        grad_norm = acc.clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)
        gnorm = float(grad_norm) if grad_norm is not None else float("nan")  # DeepSpeed: None before a step
        totals = acc.reduce(torch.tensor([loss_sum / self.config.grad_accum, tokens], dtype=torch.float64,
                                         device=acc.device), reduction="sum")
        loss_value = float(totals[0]) / acc.num_processes
        spike = self.config.spike_guard.enabled and self.can_skip_steps and self.guard.is_spike(loss_value, gnorm)
        if not spike:
            self.optimizer.step()
            self.guard.update(loss_value, gnorm)
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        times.optimizer = clock.now() - mark
        images_per_step = self.per_process * acc.num_processes
        return loss_value, gnorm, spike, Throughput(images_per_step, int(totals[1]), times)

    # --- evaluation: does the caption matter? ------------------------------------------------------------------
    def caption_sensitivity(self) -> dict[str, float]:
        """Loss on fixed held-out examples (end of the index space) with true vs shuffled captions."""
        from mqeval.train.data import load_examples, to_tensor

        torch = self._torch
        n = len(self.dataset)
        count = self.micro_batch * self.config.eval_batches
        indices = list(range(n - count, n))
        examples = load_examples(self.dataset, indices, self.config.data, seeds=indices)
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
                for start in range(0, count, self.micro_batch):
                    gen = torch.Generator().manual_seed(start)
                    sl = slice(start, start + self.micro_batch)
                    out = self.model(captions[sl], images[sl].to(self.accelerator.device), None, generator=gen,
                                     cfg_dropout=False)
                    losses.append(float(out.loss))
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
        log_path = self.output_dir / LOG_NAME
        while self.step < stop:
            loss, gnorm, spike, speed = self.train_step()
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
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{speed.images_per_s:.1f}")
            if self.step % cfg.log_every == 0 or self.step == stop:
                record = {"loss": loss, "grad_norm": gnorm, "lr": self.scheduler.get_last_lr()[0],
                          "skipped": float(spike), **speed.as_log()}
                acc.log(record, step=self.step)
                if acc.is_main_process:
                    append_jsonl(log_path, {"step": self.step, "num_processes": acc.num_processes, **record})
                if plain:
                    print(f"train step {self.step}/{stop}: loss {loss:.4f}, grad norm {gnorm:.3f}, {speed.line()}",
                          file=sys.stderr, flush=True)
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == stop):
                metrics = self.caption_sensitivity()
                result.eval[self.step] = metrics
                acc.log(metrics, step=self.step)
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if self.step % cfg.save_every == 0 or self.step == stop:
                self.save()
                last_good = self.step
        bar.close()
        for tracker in acc.trackers:  # not acc.end_training(): that also ends the process group (end_processes)
            tracker.finish()
        result.final_step = self.step
        return result


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def end_processes() -> None:
    """Leave the process group (if any) once a command has finished all its training in this process."""
    from accelerate import PartialState

    PartialState().destroy_process_group()


def train(config: TrainConfig, resume: bool = True, max_steps: Optional[int] = None, progress: bool = True,
          model=None) -> TrainResult:
    trainer = Trainer(config, model=model, resuming=resume)
    if resume:
        trainer.resume()
    return trainer.fit(max_steps, progress)
