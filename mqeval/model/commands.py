"""CLI command of mqeval.model, attached to the main typer app by `register`. Import-light: no torch here."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class Direction(str, Enum):
    official = "official"
    to_official = "to-official"


def register(app: typer.Typer) -> None:
    """Add `mqeval convert-checkpoint official|to-official SRC DST`."""

    @app.command("convert-checkpoint")
    def convert_checkpoint(
        direction: Direction = typer.Argument(..., help="official: from the authors' trainer to mqeval; "
                                                        "to-official: an mqeval checkpoint into the official layout"),
        source: Path = typer.Argument(..., help="official: a checkpoint-N folder or the run folder holding them "
                                                "(the newest is taken); to-official: an mqeval checkpoint folder"),
        target: Path = typer.Argument(..., help="Folder to write (created)."),
    ) -> None:
        """Convert a MetaQuery checkpoint between facebookresearch/metaquery @ 206f6de's format and mqeval's.

        The base models its config names are loaded once, to check every weight's name and shape."""
        import json

        from mqeval.model import official_conversion

        if target.exists() and any(target.iterdir()):
            raise typer.BadParameter(f"{target} exists and is not empty; choose a new folder", param_hint="TARGET")
        convert = (official_conversion.from_official if direction is Direction.official
                   else official_conversion.to_official)
        written = convert(source, target)
        record = json.loads((written / official_conversion.CONVERSION_NAME).read_text())
        typer.echo(f"wrote {written} from {record['source']}")
        typer.echo(f"sha256 source {record['source_sha256']}")
        typer.echo(f"sha256 target {record['sha256']}")
