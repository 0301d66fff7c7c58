"""One prompt of a benchmark, as every part sees it: generation (seeds, layout), scorers and reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Sample:
    sample_id: str  # stable across runs and benchmark versions; seeds derive from it
    index: int  # position in the benchmark's global order
    prompt: str
    num_images: int = 1
    negative_prompt: Optional[str] = None
    input_images: tuple[str, ...] = ()  # paths of conditioning images (editing-style benchmarks)
    metadata: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable; what the scorer needs
