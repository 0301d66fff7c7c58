"""Errors that describe a user mistake. The CLI prints them without a traceback."""
from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """A mistake the user can fix: bad name, bad config, missing file, missing checkpoint."""


class UnknownNameError(UserError, KeyError):
    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = ", ".join(known) if len(known) <= 40 else f"{len(known)} names; see `mqeval ls`"
        super().__init__(f"Unknown {kind} '{name}'.{hint} Known: {listing}.")
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ConfigError(UserError):
    """A config file or value that does not fit its schema."""


class MissingCheckpointError(UserError):
    """A model card's checkpoint is not on disk."""


class DataIntegrityError(UserError):
    """A data or weights file is missing, truncated, or has the wrong sha256."""
