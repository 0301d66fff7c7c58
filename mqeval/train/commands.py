"""CLI commands of mqeval.train, attached to the main typer app by `register`. Import-light: no torch here."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app (filled in by the train work)."""
