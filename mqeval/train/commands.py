"""CLI commands of mqeval.train, attached to the main typer app by `register`. Import-light: no torch here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


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
    ) -> None:
        """Train a MetaQuery model (text-to-image, reconstruction, editing or instruction tuning).

        Single process: `mqeval train CFG`. Several GPUs / nodes: `accelerate launch [--config_file FSDP_OR_DS.yaml]
        -m mqeval.cli train CFG` (see docs/training.md).
        """
        from mqeval.train.config import load_train_config
        from mqeval.train.loop import train

        overrides: dict = {}
        if output_dir is not None:
            overrides["output_dir"] = str(output_dir)
        if max_steps is not None:
            overrides["max_steps"] = max_steps
        cfg = load_train_config(config, overrides)
        result = train(cfg, resume=resume)
        typer.echo(f"trained to step {result.final_step} in {cfg.output_dir}"
                   + (f"; skipped {len(result.skipped_steps)} spike step(s)" if result.skipped_steps else ""))
        if export is not None:
            from mqeval.train.export import export_weights

            path = export_weights(Path(cfg.output_dir), export)
            typer.echo(f"weights: {path}")
