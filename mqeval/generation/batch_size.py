"""The default `--batch-size`: chosen from the device and the model's output size (override with --batch-size).

- CPU: 16. On 2 cores `mqeval run shapes --model metaquery-smol` ran 16-19% slower at 4 than at 16 or 32
  (per-call overheads amortise; larger batches gain nothing more and delay the first finished images).
- CUDA: 32 images at 512 px on a device with at least 40 GiB, scaled by the pixel count ((512 / resolution)^2)
  and by the device memory below 40 GiB, between 1 and 64. Inference keeps no activations for backward, so the
  weights dominate memory; 32 x 512 px keeps a Sana-1.6B-sized denoiser's GPU busy without running out at 1024 px
  (8 images) on 40 GiB.
Images can move by one grey level between batch sizes (batched products round differently), never between process
counts: the batch size is recorded with every run.
"""
from __future__ import annotations

CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE_512PX = 32
CUDA_REFERENCE_GIB = 40.0
MAX_BATCH_SIZE = 64


def default_batch_size(device: str, resolution: int) -> int:
    if not device.startswith("cuda"):
        return CPU_BATCH_SIZE
    import torch

    memory_gib = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**30
    scale = (512 / resolution) ** 2 * min(1.0, memory_gib / CUDA_REFERENCE_GIB)
    return max(1, min(MAX_BATCH_SIZE, int(CUDA_BATCH_SIZE_512PX * scale)))
