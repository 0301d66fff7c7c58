"""Seeds derive from (global seed, sample id, image index) only: never from rank or batch position."""
from __future__ import annotations

import hashlib


def derive_seed(global_seed: int, sample_id: str | int, image_index: int) -> int:
    key = f"{global_seed}/{sample_id}/{image_index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)
