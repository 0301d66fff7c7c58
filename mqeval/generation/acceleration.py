"""How a run uses its device: autocast precision and the opt-in torch.compile of the denoiser.

`auto` precision: float32 on CPU (where bfloat16 matmuls are slow and images would change), bfloat16 autocast on a
CUDA device that supports it, float16 on older ones. Weights keep their configured dtype; autocast casts the
matmuls and convolutions of every part (backbone, connector, denoiser, VAE) on the fly.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Optional

from mqeval.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Acceleration:
    precision: str = "auto"
    compile: bool = False  # torch.compile the decoder's denoiser (the loop's hot part); first batch compiles

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def autocast_dtype(self, device_type: str) -> Optional[Any]:
        """The autocast dtype on `device_type` ('cpu' / 'cuda'), or None for plain float32."""
        import torch

        choice = self.precision
        if choice == "auto":
            if device_type != "cuda":
                return None
            choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if choice == "fp32":
            return None
        if choice == "fp16" and device_type == "cpu":
            raise ConfigError("--precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        return torch.bfloat16 if choice == "bf16" else torch.float16

    def resolved(self, device_type: str) -> str:
        """The precision actually used, for the run record."""
        dtype = self.autocast_dtype(device_type)
        return "fp32" if dtype is None else {"torch.bfloat16": "bf16", "torch.float16": "fp16"}[str(dtype)]

    def context(self, device_type: str):
        dtype = self.autocast_dtype(device_type)
        if dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=device_type, dtype=dtype)

    def apply(self, model: Any) -> Any:
        """Compile the denoiser in place (parameter names and saved weights stay as they are). `model` is a MetaQuery
        module or a loaded text-to-image model that wraps one (through `.model`); other kinds have none to compile."""
        if self.compile:
            target = model
            while not hasattr(target, "decoder") and hasattr(target, "model"):
                target = target.model
            if not hasattr(target, "decoder"):
                raise ConfigError("--compile applies to MetaQuery models (it compiles their denoiser)")
            target.decoder.denoiser.compile()
        return model
