"""FID as MetaQuery computes it (eval/eval_mjhq.py, eval/eval_coco.py @ 206f6de, torchmetrics' FID).

- Preprocessing, for real and generated images alike: RGB -> torchvision v2 Resize(256, bicubic, antialias) on the
  PIL image (shorter side to 256) -> CenterCrop(256) -> uint8 tensor.
- Features: torch-fidelity's `FeatureExtractorInceptionV3` ("inception-v3-compat", the TF-FID Inception ported to
  PyTorch), 2048-d pool features; it resizes uint8 input to 299 with TF1-exact bilinear internally.
  `weights_path` is passed on as torch-fidelity's `feature_extractor_weights_path` (offline use).
- Statistics in float64 (sum and sum of outer products, as torchmetrics accumulates them); distance
  |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 sum sqrt(eig(S1 S2)), as torch-fidelity and torchmetrics compute it.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

PREPROCESS_ID = "rgb|resize256-bicubic-antialias(torchvision-v2,PIL)|centercrop256|uint8"
FEATURE_ID = "torch-fidelity/inception-v3-compat/2048"
DEFAULT_WEIGHTS_ID = "torch-fidelity weights-inception-2015-12-05-6726825d.pth"
FID_RESOLUTION = 256


def preprocess_transform():
    from torchvision.transforms import v2

    return v2.Compose([
        v2.Resize(FID_RESOLUTION, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.CenterCrop(FID_RESOLUTION),
        v2.PILToTensor(),
    ])


def preprocess(image: Any, transform: Any = None):
    """One PIL image -> uint8 tensor [3, 256, 256], exactly MetaQuery's FID preprocessing."""
    return (transform or preprocess_transform())(image.convert("RGB"))


class FeatureStats:
    """Running float64 sums of features and their outer products."""

    def __init__(self, dim: int = 2048):
        self.n = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        f = np.asarray(features, dtype=np.float64)
        self.n += f.shape[0]
        self.sum += f.sum(axis=0)
        self.outer += f.T @ f

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"FID needs at least 2 images per set, got {self.n}")
        mu = self.sum / self.n
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, cov


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def weights_id(weights_path: Optional[str]) -> str:
    if weights_path is None:
        return DEFAULT_WEIGHTS_ID
    from mqeval.fileio import sha256_file

    return f"sha256:{sha256_file(weights_path)}"


class InceptionFeatures:
    """torch-fidelity's Inception, fed uint8 batches; returns float32 [N, 2048] numpy features."""

    def __init__(self, weights_path: Optional[str] = None, device: str = "cpu", batch_size: int = 50,
                 workers: Optional[int] = None):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        kwargs = {"feature_extractor_weights_path": str(weights_path)} if weights_path else {}
        self.model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], **kwargs).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.weights = weights_id(weights_path)
        # JPEG decoding and the bicubic resize dominate on large images; PIL releases the GIL for both
        self.workers = workers or min(8, os.cpu_count() or 1)

    def __call__(self, batch) -> np.ndarray:
        import torch

        with torch.no_grad():
            feats = self.model(batch.to(self.device))
        feats = feats[0] if isinstance(feats, (tuple, list)) else feats["2048"] if isinstance(feats, dict) else feats
        return feats.float().cpu().numpy()

    def features_of(self, images: list[Any], pool: Any = None) -> np.ndarray:
        """Features [N, 2048] of PIL images or zero-argument loaders of them (one batch)."""
        import torch

        transform = preprocess_transform()

        def load(image: Any):
            return preprocess(image() if callable(image) else image, transform)

        tensors = list(pool.map(load, images)) if pool is not None else [load(image) for image in images]
        return self(torch.stack(tensors))

    def stats_by_group(self, items: Iterable[tuple[str, Any]]) -> dict[str, FeatureStats]:
        """items: (group, PIL image or loader) pairs; statistics per group and under "" for all of them."""
        from concurrent.futures import ThreadPoolExecutor

        groups: dict[str, FeatureStats] = {}
        with ThreadPoolExecutor(self.workers) as pool:
            for chunk in _chunks(items, self.batch_size):
                feats = self.features_of([image for _, image in chunk], pool)  # map keeps the order
                add_to_groups(groups, [group for group, _ in chunk], feats)
        return groups if groups else {"": FeatureStats()}

    def cached_stats_by_group(self, items: list[tuple[str, Path]], cache: Any) -> dict[str, FeatureStats]:
        """`stats_by_group` of image files, each file's features cached by its content (`cache`: a ContentCache
        whose identity names these weights); the statistics are accumulated in the same chunks either way."""
        from concurrent.futures import ThreadPoolExecutor

        from mqeval.fileio import sha256_file

        from tqdm.auto import tqdm

        keys = [cache.key(sha256_file(path)) for _, path in items]
        with ThreadPoolExecutor(self.workers) as pool:
            def compute(missing: list[int]) -> list[dict[str, np.ndarray]]:
                out = []
                with tqdm(total=len(missing), desc="inception features", unit="img", disable=None) as bar:
                    for chunk in _chunks(missing, self.batch_size):
                        loaders = [(lambda p=items[i][1]: _open(p)) for i in chunk]
                        out += [{"features": row} for row in self.features_of(loaders, pool)]
                        bar.update(len(chunk))
                return out

            features = np.stack([value["features"] for value in cache.map(keys, compute)]) if items else None
        groups: dict[str, FeatureStats] = {}
        for start in range(0, len(items), self.batch_size):
            add_to_groups(groups, [group for group, _ in items[start:start + self.batch_size]],
                          features[start:start + self.batch_size])
        return groups if groups else {"": FeatureStats()}


def _open(path: Path):
    from PIL import Image

    return Image.open(path)


def add_to_groups(groups: dict[str, FeatureStats], labels: list[str], feats: np.ndarray) -> None:
    """Add a batch's features to "" (all) and to each non-empty group label."""
    groups.setdefault("", FeatureStats()).update(feats)
    array = np.array(labels)
    for group in sorted(set(labels) - {""}):
        groups.setdefault(group, FeatureStats()).update(feats[array == group])


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class ReferenceKey:
    """What reference statistics depend on; its digest names the cache file."""

    dataset: str
    content_sha256: str  # hash of the reference images' bytes (and ids)
    preprocess: str = PREPROCESS_ID
    features: str = FEATURE_ID
    weights: str = DEFAULT_WEIGHTS_ID

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()


def save_stats(path: Path, groups: dict[str, FeatureStats], key: ReferenceKey) -> None:
    from mqeval.fileio import atomic_path

    arrays: dict[str, np.ndarray] = {}
    for name, st in groups.items():
        arrays[f"n/{name}"] = np.array(st.n)
        arrays[f"sum/{name}"] = st.sum
        arrays[f"outer/{name}"] = st.outer
    arrays["key"] = np.array(json.dumps(key.__dict__, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_stats(path: Path, key: ReferenceKey) -> Optional[dict[str, FeatureStats]]:
    if not path.is_file():
        return None
    data = np.load(path)
    if str(data["key"]) != json.dumps(key.__dict__, sort_keys=True):
        return None
    groups = {}
    for name in (k[2:] for k in data.files if k.startswith("n/")):
        st = FeatureStats(data[f"sum/{name}"].shape[0])
        st.n, st.sum, st.outer = int(data[f"n/{name}"]), data[f"sum/{name}"], data[f"outer/{name}"]
        groups[name] = st
    return groups


def cached_reference_stats(key: ReferenceKey, cache_root: Path, compute) -> tuple[dict[str, FeatureStats], bool]:
    """Reference statistics from `<cache_root>/fid/<digest>.npz`, computed by `compute()` on a miss."""
    path = Path(cache_root) / "fid" / f"{key.digest()}.npz"
    groups = load_stats(path, key)
    if groups is not None:
        return groups, True
    groups = compute()
    save_stats(path, groups, key)
    return groups, False
