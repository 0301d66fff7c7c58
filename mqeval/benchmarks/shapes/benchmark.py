"""The `shapes` benchmark: GenEval's six tasks over coloured shapes, judged offline by an analytic detector.

Same metadata format, folder layout (`<out>/<NNNNN>/metadata.jsonl`, `<out>/<NNNNN>/samples/<NNNN>.png`) and
rules as GenEval, so a model's scores on it read like GenEval scores and the code path is the real one.
The prompt list is generated (prompts.PROMPT_SETS, chosen by `options.prompt_set`); its sha256 is pinned in the
spec's `data.prompts` and checked whenever the samples are built, so a changed generator cannot go unnoticed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from mqeval.benchmarks.base import Benchmark, BenchmarkSpec
from mqeval.benchmarks.geneval.rules import GenEvalThresholds, aggregate_geneval, evaluate_image
from mqeval.benchmarks.shapes.prompts import PROMPT_SETS, Metadata, prompt_set_sha256
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.errors import ConfigError, DataIntegrityError
from mqeval.fileio import atomic_open
from mqeval.scorers.detection_cache import cached_detections

# the analytic detector's float64 scores are kept as they are (GenEval's float32 / numpy-1.23 order is mmdet's)
SHAPES_RULES = GenEvalThresholds(float32_scores=False)

SCORER = ScorerInfo(
    name="shapes-analytic-detector",
    version="1",
    weights=None,
    notes=(
        "GenEval rules of djghosh13/geneval @ af4902f (thresholds 0.3 / 0.9 counting, <= 16 per class, no NMS, "
        "position margin 0.1) over an analytic detector; colours measured by the detector, not CLIP.",
    ),
)


def detection_cache(options: ScoreOptions, size: Any):
    """The analytic detector's outputs, cached by image content and the side the image is judged at."""
    from mqeval.benchmarks.shapes.detector import DetectorConfig
    from mqeval.dataclass_io import to_dict
    from mqeval.scorers.content_cache import stage_cache

    return stage_cache(options, "shapes-detections", {"scorer": SCORER.name, "version": SCORER.version,
                                                      "config": to_dict(DetectorConfig()), "size": size})


@dataclass(frozen=True)
class ShapesOptions:
    prompt_set: str = "standard"  # a name in mqeval.benchmarks.shapes.prompts.PROMPT_SETS


def sample_id(metadata: Metadata) -> str:
    """Stable id from the prompt: 'position-a-circle-left-of-a-square'."""
    body = metadata["prompt"].removeprefix("a photo of ")
    return f"{metadata['tag']}-{re.sub(r'[^a-z0-9]+', '-', body.lower()).strip('-')}"


class ShapesBenchmark(Benchmark):
    Options = ShapesOptions

    def __init__(self, spec: BenchmarkSpec):
        super().__init__(spec)
        self._build_prompts = PROMPT_SETS.get(self.options.prompt_set)  # unknown names fail here, with hints

    def prompts(self) -> list[Metadata]:
        """The prompt set's metadata lines, checked against the sha256 pinned in the spec."""
        lines = self._build_prompts()
        pinned = self.spec.data.get("prompts")
        if pinned is None:
            raise ConfigError(f"benchmarks/{self.name}.yaml: data.prompts.sha256 must pin the prompt list")
        actual = prompt_set_sha256(lines)
        if not actual.startswith(pinned.sha256.lower()):
            raise DataIntegrityError(
                f"The '{self.options.prompt_set}' prompt set of benchmark '{self.name}' has sha256 {actual}, but "
                f"benchmarks/{self.name}.yaml pins {pinned.sha256}. The prompt generator changed: bump the "
                "benchmark version and pin the new hash, or restore the generator."
            )
        return lines

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        lines = self.prompts()
        ids = [sample_id(m) for m in lines]
        if len(set(ids)) != len(ids):
            raise DataIntegrityError(f"benchmark '{self.name}' has duplicate prompts")
        per_prompt = self.generation.images_per_prompt
        return [
            Sample(sample_id=i, index=k, prompt=m["prompt"], num_images=per_prompt, metadata=m)
            for k, (i, m) in enumerate(zip(ids, lines))
        ]

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        # Folders are named by the global prompt index, never a shard-local one.
        return Path(out_dir) / f"{sample.index:05d}" / "samples" / f"{image_index:04d}.png"

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        for sample in samples:
            path = Path(out_dir) / f"{sample.index:05d}" / "metadata.jsonl"
            text = json.dumps(sample.metadata) + "\n"
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            with atomic_open(path, "w", encoding="utf-8") as handle:
                handle.write(text)

    def prescorer(self, options: ScoreOptions) -> Optional[Callable[[Path], None]]:
        """The analytic detector on each finished image, into the cache `score` reads (same size, same reading)."""
        if options.resolution is None:
            return None
        from mqeval.benchmarks.shapes.detector import detect
        from mqeval.images.check import ImageRules, ImageReader

        rules = ImageRules(size=options.resolution, resize=True)
        cache = detection_cache(options, options.resolution)

        def prescore(image: Path) -> None:
            opened = ImageReader(Path(image).parent, rules).open_rgb(Path(image))
            if opened is not None:
                cached_detections([Path(image)], cache, lambda _: [detect(opened)])

        return prescore

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        """GenEval's reading of the layout (each folder's metadata.jsonl names its prompt); images are converted to
        RGB and resized (area average) to the run's resolution, or in a folder of unknown origin to the size most of
        its images have, before detection. Missing or
        unreadable images are left out of the means, as GenEval's scorer only reads the images that exist."""
        from tqdm.auto import tqdm

        from mqeval.benchmarks.geneval.layout import match_prompt_folders
        from mqeval.benchmarks.shapes.detector import detect
        from mqeval.images.check import ImageReader, ImageRules, common_side

        out_dir = Path(out_dir)
        layout = match_prompt_folders(out_dir, samples)
        size = options.resolution or common_side(
            folder / "samples" / f"{j:04d}.png" for folder in layout.folders.values() if folder is not None
            for j in range(self.generation.images_per_prompt))
        reader = ImageReader(out_dir, ImageRules(size=size, resize=True))
        cache = detection_cache(options, size)
        per_sample: list[dict[str, Any]] = []
        for sample in tqdm(samples, desc="scoring", unit="prompt", disable=None):
            folder = layout.folders[sample.sample_id]
            paths = [self.image_path(out_dir, sample, j) for j in range(sample.num_images)]
            if folder is not None:
                paths = [folder / "samples" / p.name for p in paths]
            correct, reasons = [], []
            for path in paths:
                if folder is None:
                    reader.note(path, "wrong_prompt", layout.mismatched[sample.sample_id])
                    continue
                image = reader.open_rgb(path)
                if image is None:
                    continue
                # Cached by file content and the size it is judged at: rescoring an unchanged run detects nothing.
                [detections] = cached_detections([path], cache, lambda _, image=image: [detect(image)])
                judgement = evaluate_image(sample.metadata, detections, image=image, thresholds=SHAPES_RULES)
                correct.append(judgement.correct)
                reasons.append(judgement.reason)
            record = {
                "sample_id": sample.sample_id,
                "tag": sample.metadata["tag"],
                "correct": correct,
                "accuracy": sum(correct) / len(correct) if correct else None,
                "reasons": reasons,
            }
            issues = reader.issues_of(paths)
            if issues:
                record["image_issues"] = issues
            if folder is not None and folder.name != f"{sample.index:05d}":
                record["folder"] = folder.name
            per_sample.append(record)
        metrics = self.aggregate(per_sample)
        return ScoreResult(
            metrics=metrics,
            higher_is_better={key: True for key in metrics},
            per_sample=per_sample,
            scorer=SCORER,
            warnings=layout.warnings + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        """GenEval's summary: per task, mean correctness over images; overall, the mean of the task means."""
        return aggregate_geneval(
            {"tag": record["tag"], "correct": flag} for record in per_sample for flag in record["correct"]
        )
