"""CLI commands of mqeval.train, attached to the main typer app by `register`. Import-light: no torch here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _worker_args(config: Path, output_dir: Optional[Path], max_steps: Optional[int], resume: bool,
                 num_processes: int) -> list[str]:
    """The `mqeval train ...` arguments each re-launched process runs (export is done once, by the launcher)."""
    args = ["train", str(config), "--num-processes", str(num_processes), "--resume" if resume else "--no-resume"]
    if output_dir is not None:
        args += ["--output-dir", str(output_dir)]
    if max_steps is not None:
        args += ["--max-steps", str(max_steps)]
    return args


def register(app: typer.Typer) -> None:
    """Add `mqeval train CONFIG`."""

    @app.command("train")
    def train_command(
        config: Path = typer.Argument(..., help="Training config, e.g. model_zoo/metaquery-smol.train.yaml"),
        output_dir: Optional[Path] = typer.Option(None, help="Override the config's output_dir."),
        max_steps: Optional[int] = typer.Option(None, help="Override the config's max_steps."),
        resume: bool = typer.Option(True, help="Continue from the latest checkpoint in output_dir, if any."),
        export: Optional[Path] = typer.Option(
            None, help="After training, copy the final weights (model.safetensors + config.json) to this folder."),
        num_processes: int = typer.Option(
            1, "--num-processes", help="Train one model in K local processes (re-launches through torchrun: gloo "
                                       "on CPU, NCCL on GPUs); batch_size is per process."),
    ) -> None:
        """Train a MetaQuery model (text-to-image, reconstruction, editing or instruction tuning).

        One machine: `mqeval train CFG [--num-processes K]`. FSDP / DeepSpeed / several nodes: `accelerate launch
        --config_file mqeval/train/accelerate_configs/<fsdp|deepspeed_zero2|...>.yaml -m mqeval.cli train CFG`
        (see docs/training-distributed.md).
        """
        from mqeval.errors import UserError
        from mqeval.generation.distributed import in_distributed_launch, is_main_process, relaunch
        from mqeval.train.train_config import load_train_config

        if num_processes < 1:
            raise UserError(f"--num-processes must be at least 1, got {num_processes}")
        overrides: dict = {}
        if output_dir is not None:
            overrides["output_dir"] = str(output_dir)
        if max_steps is not None:
            overrides["max_steps"] = max_steps
        cfg = load_train_config(config, overrides)  # a bad config fails here, once, before any process starts
        if resume:  # so does a checkpoint that cannot be resumed (old format, pickles), before anything is read
            from mqeval.train.checkpoint import check_checkpoint, latest_checkpoint

            latest = latest_checkpoint(Path(cfg.output_dir))
            if latest is not None:
                check_checkpoint(latest)
        main = is_main_process()
        if num_processes > 1 and not in_distributed_launch():
            relaunch(["-m", "mqeval.cli", *_worker_args(config, output_dir, max_steps, resume, num_processes)],
                     num_processes, "training")
        else:
            from mqeval.train.loop import end_processes, train

            result = train(cfg, resume=resume)
            end_processes()
            if main:
                typer.echo(f"trained to step {result.final_step} in {cfg.output_dir}"
                           + (f"; skipped {len(result.skipped_steps)} spike step(s)" if result.skipped_steps else ""))
        if export is not None and main:
            from mqeval.train.export import export_weights

            path = export_weights(Path(cfg.output_dir), export)
            typer.echo(f"weights: {path}")
