"""One detected object, as detectors return it and GenEval's rules read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    mask: Optional[np.ndarray] = None  # HxW bool instance mask, if the detector gives one
    color: Optional[str] = None  # colour name, if the detector already knows it
