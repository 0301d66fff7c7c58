"""GenEval (djghosh13/geneval @ af4902f): 553 object-composition prompts, 4 images each, detector-scored.

Layout (what the official `evaluation/evaluate_images.py` reads): `<out>/<NNNNN>/metadata.jsonl` holding that
prompt's metadata line and `<out>/<NNNNN>/samples/<NNNN>.png`, NNNNN = the prompt's global index in the metadata
file (never a shard-local index). Scoring: detector backend -> GenEval rule engine (with CLIP colour) -> per-task
mean over images, overall = unweighted mean of the task means.

Prompt sets: `original` (the paper's prompts) and `rewritten` (the same 553 metadata lines with GPT-4o rewritten
`prompt` fields, as shipped by ByteDance-Seed/Bagel; MetaQuery's own rewrites were never published). The scoring
rules only read `tag`, `include` and `exclude`, which are identical in both files.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.geneval.layout import match_prompt_folders
from mqeval.benchmarks.geneval.rules import GenEvalThresholds, aggregate_geneval, evaluate_image
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.errors import DataIntegrityError
from mqeval.fileio import atomic_open, verify_sha256
from mqeval.images.check import ImageReader
from mqeval.paths import BENCHMARK_SPECS_DIR

SCORER_VERSION = "2"  # 2: float32 thresholds and positions, official tie order, mmdet-exact input
SAMPLE_NAME = re.compile(r"^\d+\.png$")  # the official scorer's filter


@dataclass(frozen=True)
class GenEvalOptions:
    prompt_set: Literal["original", "rewritten"] = "original"
    num_prompts: int = 553  # checked at load
    detector: Optional[str] = None  # None: the official mmdet detector when mmdet is installed, else hf-mask2former
    detector_weights: Literal["official", "hf"] = "official"  # hf-mask2former's weights (scorers.detectors)
    clip_model: str = "ViT-L-14-quickgelu"
    clip_pretrained: str = "openai"


def read_metadata(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def metadata_text(metadata: dict[str, Any]) -> str:
    """The per-prompt metadata.jsonl content, serialised as the official generator does (json.dump, no newline)."""
    return json.dumps(metadata)


def official_image_path(out_dir: Path, sample: Sample, image_index: int) -> Path:
    """Where the official layout keeps a prompt's image: <out>/<NNNNN>/samples/<NNNN>.png."""
    return Path(out_dir) / f"{sample.index:05d}" / "samples" / f"{image_index:04d}.png"


def sample_images(folder: Path) -> list[Path]:
    """Images the official scorer would read from one prompt folder, in index order."""
    samples = folder / "samples"
    if not samples.is_dir():
        return []
    return sorted((p for p in samples.iterdir() if p.is_file() and SAMPLE_NAME.match(p.name)),
                  key=lambda p: int(p.stem))


class LazyColorClassifier:
    """Loads the CLIP colour model on the first colour clause (single-object runs never need it)."""

    def __init__(self, factory):
        self._factory = factory
        self._loaded = None

    def load(self):
        if self._loaded is None:
            self._loaded = self._factory()
        return self._loaded

    def __call__(self, image, detections, classname):
        return self.load()(image, detections, classname)


def judge_samples(
    out_dir: Path,
    samples: Sequence[Sample],
    detector: Any,
    color_classifier: Any,
    thresholds: GenEvalThresholds = GenEvalThresholds(),
    batch_size: int = 16,
    reader: Optional[ImageReader] = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-sample records ({sample_id, tag, correct, correct_images, reasons, images}) and warnings.

    Prompt folders are found by their own metadata.jsonl (mqeval.benchmarks.geneval.layout); files that cannot be
    decoded are left out and counted by `reader` (the official scorer would stop at the first one)."""
    from PIL import Image, ImageOps
    from tqdm.auto import tqdm

    reader = reader or ImageReader(Path(out_dir))
    layout = match_prompt_folders(Path(out_dir), samples)
    jobs: list[tuple[int, Path]] = []
    warnings: list[str] = list(layout.warnings)
    records = []
    for k, sample in enumerate(samples):
        folder = layout.folders[sample.sample_id]
        paths = sample_images(folder) if folder is not None else []
        if len(paths) != sample.num_images:
            warnings.append(f"prompt {sample.index:05d}: {len(paths)} images found, {sample.num_images} expected")
        for j in range(len(paths), sample.num_images):
            reader.note(official_image_path(out_dir, sample, j), "missing" if folder is not None else "wrong_prompt",
                        "no such file" if folder is not None else layout.mismatched[sample.sample_id])
        paths = [p for p in paths if reader.usable(p)]
        records.append({"sample_id": sample.sample_id, "tag": sample.metadata["tag"], "correct": None,
                        "correct_images": [], "reasons": [],
                        "images": [str(p.relative_to(out_dir)) for p in paths]})
        jobs.extend((k, p) for p in paths)
    bar = tqdm(total=len(jobs), desc="scoring", unit="img", disable=None)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        detections = detector.detect([p for _, p in chunk])
        bar.update(len(chunk))
        for (k, path), dets in zip(chunk, detections):
            image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            verdict = evaluate_image(samples[k].metadata, dets, color_classifier=color_classifier,
                                     thresholds=thresholds, image=image)
            records[k]["correct_images"].append(bool(verdict.correct))
            records[k]["reasons"].append(verdict.reason)
    bar.close()
    for rec, sample in zip(records, samples):
        imgs = rec["correct_images"]
        rec["correct"] = sum(imgs) / len(imgs) if imgs else None
        issues = reader.issues_of([official_image_path(out_dir, sample, j) for j in range(sample.num_images)]
                                  + [Path(out_dir) / p for p in rec["images"]])
        if issues:
            rec["image_issues"] = issues
    return records, warnings


class GenEvalBenchmark(Benchmark):
    Options = GenEvalOptions

    @property
    def prompt_set(self) -> str:
        return self.options.prompt_set

    def _data_path(self, key: str) -> Path:
        if key not in self.spec.data:
            raise DataIntegrityError(f"benchmarks/{self.name}.yaml lists no data file '{key}'")
        entry = self.spec.data[key]
        path = BENCHMARK_SPECS_DIR / str(entry.path)
        verify_sha256(path, entry.sha256)
        return path

    def classnames(self) -> list[str]:
        return [line.strip() for line in self._data_path("object_names").read_text().splitlines() if line.strip()]

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        lines = read_metadata(self._data_path("prompts"))
        if len(lines) != self.options.num_prompts:
            raise DataIntegrityError(f"{self.name}: {len(lines)} prompts, expected {self.options.num_prompts}")
        n = self.generation.images_per_prompt
        return [Sample(sample_id=f"{i:05d}", index=i, prompt=line["prompt"], num_images=n, metadata=line)
                for i, line in enumerate(lines)]

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        return official_image_path(out_dir, sample, image_index)

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        for sample in samples:
            path = Path(out_dir) / f"{sample.index:05d}" / "metadata.jsonl"
            text = metadata_text(sample.metadata)
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            with atomic_open(path, "w", encoding="utf-8") as handle:
                handle.write(text)

    def backend(self, options: ScoreOptions) -> str:
        from mqeval.scorers.detectors import default_backend

        return options.backend or self.options.detector or default_backend()

    def build_scorers(self, options: ScoreOptions):
        """The detector and the CLIP colour classifier, both behind content caches (rescoring runs neither), and the
        CLIP (model name, pretrained) they were built with."""
        from functools import partial

        from mqeval.scorers.clip_color import ClipColorClassifier, ClipColorConfig, resolve_clip_source
        from mqeval.scorers.content_cache import stage_cache
        from mqeval.scorers.detection_cache import CachedColorClassifier, CachedDetector
        from mqeval.scorers.detectors import DetectorOptions, load_detector

        weights_dir = Path(options.weights_path) if options.weights_path else None
        classnames = self.classnames()
        detector = load_detector(
            self.backend(options), classnames,
            DetectorOptions(weights_dir=weights_dir, device=options.device, batch_size=options.batch_size,
                            cache_root=options.cache_dir,
                            weights=options.detector.weights or self.options.detector_weights),
        )
        clip_config = ClipColorConfig(model=self.options.clip_model, pretrained=self.options.clip_pretrained)
        colour = LazyColorClassifier(lambda: ClipColorClassifier.load(clip_config, options.device, weights_dir))
        clip_source = resolve_clip_source(clip_config, weights_dir)
        colour_cache = stage_cache(options, "geneval-clip-colors",
                                   {"clip": [clip_config, str(clip_source)], "device": options.device})
        return (CachedDetector(detector, partial(stage_cache, options, "geneval-detections"), classnames),
                CachedColorClassifier(colour, colour_cache), clip_source)

    def preflight(self, options: ScoreOptions) -> None:
        """Data files, then the detector and CLIP weights: missing weights stop a run before generation."""
        super().preflight(options)
        _, colour, _ = self.build_scorers(options)
        colour.load()

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        detector, colour, (clip_name, clip_weights) = self.build_scorers(options)
        reader = ImageReader(Path(out_dir))  # the official scorer takes any size and converts to RGB
        records, warnings = judge_samples(Path(out_dir), samples, detector, colour, batch_size=options.batch_size,
                                          reader=reader)
        notes = (f"prompt_set={self.prompt_set}", f"detector={detector.name}", *detector.notes,
                 f"colour=open_clip {clip_name} ({clip_weights or 'weights in that folder'})")
        metrics = self.aggregate(records)
        return ScoreResult(
            metrics=metrics,
            higher_is_better={k: True for k in metrics},
            per_sample=records,
            scorer=ScorerInfo(name=f"geneval-{detector.name}", version=SCORER_VERSION, weights=detector.weights,
                              notes=notes),
            warnings=warnings + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        images = [{"tag": rec["tag"], "correct": c} for rec in per_sample for c in rec["correct_images"]]
        return aggregate_geneval(images)
