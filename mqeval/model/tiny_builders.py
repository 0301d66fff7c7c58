"""Builders of the tiny VLM and decoder test models (see mqeval.model.tiny)."""
from __future__ import annotations

BUILDERS: dict = {}
