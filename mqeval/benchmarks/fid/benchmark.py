"""MJHQ-30K and COCO-30K FID plug-ins.

Layout: `<out>/<NNNNN>.png`, NNNNN = the prompt's global index (MetaQuery's samplers use the same names; its MJHQ
scorer then globs `*.jpg` and finds nothing: that quirk is not copied). One image per prompt, guidance 3.0, 30 steps.
Reference statistics are computed over the whole reference set (30,000 images) and cached under
`<cache>/fid/<digest>.npz`, the digest covering the reference content hash, the preprocessing, the feature layer and
the Inception weights. FID needs every feature vector, so it cannot be recomputed from per-sample records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.errors import DataIntegrityError
from mqeval.images.check import ImageReader
from mqeval.paths import cache_dir

SCORER_VERSION = "1"


@dataclass(frozen=True)
class MJHQOptions:
    num_prompts: int = 30000
    per_category: bool = True


@dataclass(frozen=True)
class CocoOptions:
    num_prompts: int = 30000
    revision: str = "main"  # of the Hugging Face dataset sayakpaul/coco-30-val-2014


class FidBenchmark(Benchmark):
    aggregatable: ClassVar[bool] = False

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        if image_index != 0:
            raise ValueError(f"{self.name} takes one image per prompt")
        return Path(out_dir) / f"{sample.index:05d}.png"

    def _check_count(self, n: int) -> None:
        if n != self.options.num_prompts:
            raise DataIntegrityError(f"{self.name}: {n} prompts, expected {self.options.num_prompts}")

    # subclasses: what the reference set is, and which group (category) a sample belongs to
    def reference(self, options: ScoreOptions) -> tuple[str, list[tuple[str, Callable[[], Any]]]]:
        raise NotImplementedError

    def group(self, sample: Sample) -> str:
        return ""

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        from mqeval.scorers.content_cache import stage_cache
        from mqeval.scorers.fid import (
            FEATURE_ID,
            PREPROCESS_ID,
            InceptionFeatures,
            ReferenceKey,
            cached_reference_stats,
            frechet_distance,
        )

        out_dir = Path(out_dir)
        warnings: list[str] = []
        reader = ImageReader(out_dir)
        per_sample, generated = [], []
        for sample in samples:
            path = self.image_path(out_dir, sample, 0)
            found = reader.usable(path, pixels=False)  # missing or damaged files are counted and left out
            record = {"sample_id": sample.sample_id, "category": self.group(sample) or None,
                      "image": str(path.relative_to(out_dir)) if found else None}
            issues = reader.issues_of([path])
            if issues:
                record["image_issues"] = issues
            per_sample.append(record)
            if found:
                generated.append((self.group(sample), path))
        missing = len(samples) - len(generated)
        if missing:
            warnings.append(f"{missing} of {len(samples)} generated images are missing or unreadable; FID uses "
                            "the rest, as a folder-based FID script would")

        features = InceptionFeatures(options.weights_path, options.device, options.batch_size)
        content, items = self.reference(options)
        key = ReferenceKey(dataset=self.name, content_sha256=content, weights=features.weights)
        reference, hit = cached_reference_stats(key, Path(options.cache_dir or cache_dir()),
                                                lambda: features.stats_by_group(items))
        feature_cache = stage_cache(options, "fid-inception-features",
                                    {"features": FEATURE_ID, "preprocess": PREPROCESS_ID, "weights": features.weights,
                                     "device": options.device})
        gen = features.cached_stats_by_group(generated, feature_cache)
        if gen[""].n != reference[""].n:
            warnings.append(f"{gen[''].n} generated vs {reference[''].n} reference images: FID is biased upward "
                            "for small sets; published numbers use 30,000")
        metrics = {"fid": frechet_distance(*reference[""].mean_cov(), *gen[""].mean_cov())}
        for group in sorted(set(reference) - {""}):
            have = gen[group].n if group in gen else 0
            if have >= 2:
                metrics[f"fid_{group}"] = frechet_distance(*reference[group].mean_cov(), *gen[group].mean_cov())
            else:
                warnings.append(f"fid_{group} not computed: {have} generated image(s) in that category")
        notes = (
            f"preprocessing {PREPROCESS_ID} (real and generated)",
            "torch-fidelity InceptionV3 2048-d features; float64 statistics; torchmetrics-equivalent FID",
            f"reference: {reference[''].n} images, statistics {'from cache' if hit else 'computed'} "
            f"({key.digest()[:16]})",
        )
        return ScoreResult(
            metrics=metrics,
            higher_is_better={k: False for k in metrics},
            per_sample=per_sample,
            scorer=ScorerInfo(name="fid-inception-v3", version=SCORER_VERSION, weights=features.weights,
                              notes=notes),
            warnings=warnings + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    def preflight(self, options: ScoreOptions) -> None:
        """Data files, then the Inception weights."""
        from mqeval.scorers.fid import InceptionFeatures

        super().preflight(options)
        InceptionFeatures(options.weights_path, options.device, options.batch_size)


class MJHQFidBenchmark(FidBenchmark):
    Options = MJHQOptions

    def _meta(self, data_dir: Optional[Path], cache_root: Optional[Path] = None):
        from mqeval.benchmarks.fid import mjhq

        return mjhq.read_meta(mjhq.resolve("metadata", self.spec.data["meta"], data_dir, cache_root))

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        items = self._meta(data_dir)
        self._check_count(len(items))
        return [Sample(sample_id=str(key), index=i, prompt=str(v["prompt"]), num_images=1,
                       metadata={"category": str(v["category"])}) for i, (key, v) in enumerate(items)]

    def group(self, sample: Sample) -> str:
        return sample.metadata["category"] if self.options.per_category else ""

    def reference(self, options: ScoreOptions):
        from mqeval.benchmarks.fid import mjhq

        data_dir = Path(options.data_dir) if options.data_dir else None
        categories = {str(v["category"]) for _, v in self._meta(data_dir, options.cache_dir)}
        images = mjhq.reference_images(self.spec.data, categories, data_dir, options.cache_dir)
        if not self.options.per_category:
            return images.content_sha256, [("", load) for _, load in images.items]
        return f"{images.content_sha256}|per-category", images.items


class CocoFidBenchmark(FidBenchmark):
    Options = CocoOptions

    def _data(self, data_dir: Optional[Path], cache_root: Optional[Path] = None):
        from mqeval.benchmarks.fid.coco import load_coco

        return load_coco(self.options.revision, Path(data_dir) if data_dir else None, cache_root)

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        data = self._data(data_dir)
        self._check_count(len(data.captions))
        return [Sample(sample_id=f"{i:05d}", index=i, prompt=c, num_images=1) for i, c in enumerate(data.captions)]

    def reference(self, options: ScoreOptions):
        data = self._data(options.data_dir, options.cache_dir)
        return data.content_sha256(), [("", load) for load in data.images]
