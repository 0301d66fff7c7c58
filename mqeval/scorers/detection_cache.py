"""Detector outputs and colour verdicts through the content cache (mqeval.scorers.content_cache).

Detections are stored as arrays (labels, scores, boxes, colours, instance masks packed to bits) and come back equal
to what the detector returned, so the rule engine's verdicts do not change between first scoring and rescoring.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mqeval.contract.detection import Detection
from mqeval.fileio import image_sha256, sha256_file
from mqeval.scorers.content_cache import Arrays, ContentCache, digest


def detections_to_arrays(detections: Sequence[Detection]) -> Arrays:
    masks = [d.mask for d in detections]
    with_masks = bool(detections) and all(m is not None for m in masks)
    arrays: Arrays = {
        "labels": np.array([d.label for d in detections], dtype=str),
        "scores": np.array([d.score for d in detections], dtype=np.float64),
        "boxes": np.array([tuple(d.box) for d in detections], dtype=np.float64).reshape(-1, 4),
        "colors": np.array([d.color or "" for d in detections], dtype=str),
        "has_color": np.array([d.color is not None for d in detections], dtype=bool),
    }
    if with_masks:
        stacked = np.stack([np.asarray(m, dtype=bool) for m in masks])
        arrays["mask_shape"] = np.array(stacked.shape, dtype=np.int64)
        arrays["masks"] = np.packbits(stacked.reshape(-1))
    return arrays


def arrays_to_detections(arrays: Arrays) -> list[Detection]:
    count = len(arrays["labels"])
    masks: list[Any] = [None] * count
    if "masks" in arrays:
        shape = tuple(int(v) for v in arrays["mask_shape"])
        bits = np.unpackbits(arrays["masks"], count=int(np.prod(shape))).astype(bool)
        masks = list(bits.reshape(shape))
    return [
        Detection(
            label=str(arrays["labels"][i]), score=float(arrays["scores"][i]),
            box=tuple(float(v) for v in arrays["boxes"][i]), mask=masks[i],
            color=str(arrays["colors"][i]) if bool(arrays["has_color"][i]) else None,
        )
        for i in range(count)
    ]


def cached_detections(
    paths: Sequence[Path], cache: ContentCache, detect: Callable[[list[Path]], Sequence[Sequence[Detection]]]
) -> list[list[Detection]]:
    """Detections of image files; `detect` runs only on the files whose content the cache has not seen."""
    keys = [cache.key(sha256_file(p)) for p in paths]
    values = cache.map(keys, lambda missing: [detections_to_arrays(d) for d in detect([paths[i] for i in missing])])
    return [arrays_to_detections(v) for v in values]


class CachedDetector:
    """A GenEval InstanceDetector (name, weights, notes, detect(paths)) whose outputs are cached by file content."""

    def __init__(self, detector: Any, cache_for: Callable[[dict[str, Any]], ContentCache], classnames: Sequence[str]):
        self.detector = detector
        self.name, self.weights, self.notes = detector.name, detector.weights, detector.notes
        self.cache = cache_for({"detector": detector.name, "weights": detector.weights,
                                "notes": list(detector.notes), "classnames": digest(list(classnames))})

    def detect(self, paths: Sequence[Path]) -> list[list[Detection]]:
        return cached_detections(paths, self.cache, self.detector.detect)


class CachedColorClassifier:
    """A ColorClassifier (image, detections, classname) -> colours, cached by image pixels, boxes, masks, class."""

    def __init__(self, classify: Callable[[Any, Sequence[Detection], str], list[str]], cache: ContentCache):
        self.classify = classify
        self.cache = cache

    def __call__(self, image: Any, detections: Sequence[Detection], classname: str) -> list[str]:
        if not detections:
            return []
        masks = [None if d.mask is None else digest(np.packbits(np.asarray(d.mask, dtype=bool)).tobytes())
                 for d in detections]
        key = self.cache.key(image_sha256(image), classname, [list(map(float, d.box)) for d in detections], masks)
        value = self.cache.map([key], lambda _: [{"colors": np.array(self.classify(image, detections, classname),
                                                                      dtype=str)}])[0]
        return [str(c) for c in value["colors"]]
