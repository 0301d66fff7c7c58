"""CLI commands of mqeval.scorers, attached to the main typer app by `register`. Import-light: no torch here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add `mqeval convert-geneval-detector PATH`."""

    @app.command("convert-geneval-detector")
    def convert_geneval_detector(
        checkpoint: Path = typer.Argument(..., help="mmdet 2.x Mask2Former Swin-S .pth (GenEval's official one: "
                                                    "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_*-743b7d99.pth)"),
        out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: the cache folder that "
                                                               "`--detector-weights official` reads)."),
    ) -> None:
        """Convert GenEval's mmdetection Mask2Former checkpoint to transformers (config.json, model.safetensors,
        conversion.json with both sha256), for `--backend hf-mask2former --detector-weights official`."""
        from mqeval.errors import ConfigError
        from mqeval.fileio import sha256_file
        from mqeval.paths import cache_dir
        from mqeval.scorers.detectors import MMDET_CHECKPOINT_SHA256
        from mqeval.scorers.mask2former_convert import convert_checkpoint, converted_dir

        if not checkpoint.is_file():
            raise ConfigError(f"{checkpoint} is not a file")
        sha = sha256_file(checkpoint)
        target = out or converted_dir(cache_dir(), sha)
        manifest = convert_checkpoint(checkpoint, target, trusted_sha256=MMDET_CHECKPOINT_SHA256)
        official = sha.startswith(MMDET_CHECKPOINT_SHA256)
        typer.echo(f"converted {checkpoint.name} (sha256 {sha}) -> {target}")
        typer.echo(f"model.safetensors sha256 {manifest['safetensors_sha256']}")
        typer.echo("this is GenEval's official checkpoint" if official else
                   f"NOTE: not GenEval's official checkpoint (its sha256 starts with {MMDET_CHECKPOINT_SHA256})")
        if official and out is not None:
            typer.echo(f"use it with: --backend hf-mask2former --detector-weights official --weights-path {target}")
