"""Where a training step's time goes (data / backbone / decoder / optimizer) and its throughput.

backbone: wall time inside the backbone's forward (condition encoding, measured with forward hooks);
decoder: the rest of the forward and backward passes (connector + denoiser forward, all backward);
optimizer: gradient clipping, the cross-process loss reduction and the optimizer step. On CUDA the clocks
synchronise the device at each boundary, so the split is true at a small cost.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass
class StepTimes:
    data: float = 0.0
    backbone: float = 0.0
    decoder: float = 0.0
    optimizer: float = 0.0

    @property
    def total(self) -> float:
        return self.data + self.backbone + self.decoder + self.optimizer

    def as_log(self) -> dict[str, float]:
        return {f"time_{k}_s": v for k, v in asdict(self).items()}


@dataclass
class Throughput:
    images: int  # over all processes
    tokens: int  # prompt tokens over all processes
    times: StepTimes

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.times.total, 1e-9)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.times.total, 1e-9)

    def as_log(self) -> dict[str, float]:
        return {"images_per_s": self.images_per_s, "tokens_per_s": self.tokens_per_s,
                "step_time_s": self.times.total, **self.times.as_log()}

    def line(self) -> str:
        t = self.times
        return (f"{self.images_per_s:.1f} img/s, {self.tokens_per_s:.0f} tok/s, step {t.total:.3f} s (data "
                f"{t.data:.3f}, backbone {t.backbone:.3f}, decoder {t.decoder:.3f}, optimizer {t.optimizer:.3f})")


class Clock:
    """perf_counter that first waits for queued CUDA work, so a split point means what it says."""

    def __init__(self, device):
        import torch

        self._sync = torch.cuda.synchronize if getattr(device, "type", str(device)) == "cuda" else None

    def now(self) -> float:
        if self._sync is not None:
            self._sync()
        return time.perf_counter()


class ForwardTimer:
    """Accumulated wall time inside one module's forward (pre/post forward hooks)."""

    def __init__(self, module, clock: Clock):
        self.clock, self.seconds, self._start = clock, 0.0, 0.0
        module.register_forward_pre_hook(self._enter)
        module.register_forward_hook(self._exit)

    def _enter(self, module, args) -> None:
        self._start = self.clock.now()

    def _exit(self, module, args, output) -> None:
        self.seconds += self.clock.now() - self._start

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds
