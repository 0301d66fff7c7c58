"""The results schema (schema_version 1): one run = one folder.

    <run>/results.json    the record below
    <run>/samples.jsonl   one JSON object per sample
    <run>/generation.json what produced the images (written by the generation runner; used for resume)
    <run>/images/...      the images, in the benchmark's official layout

results.json
| key                           | type             | meaning                                                     |
|-------------------------------|------------------|-------------------------------------------------------------|
| schema_version                | int              | 1; loading any other version is an error                    |
| run_id                        | str              | unique id (UTC time + random suffix)                        |
| created                       | str              | ISO-8601 UTC time the record was written                    |
| benchmark.name                | str              | spec name (kebab-case), e.g. `shapes`, `geneval-long`       |
| benchmark.version             | str              | spec version; bump when prompts or scoring change           |
| benchmark.variant_of          | str or null      | the base benchmark of a variant                             |
| benchmark.prompt_set          | str or null      | prompt set used, when the benchmark has several             |
| benchmark.data_sha256         | {file: sha256}   | every data file that determines the samples                 |
| benchmark.num_samples         | int              | samples scored                                              |
| benchmark.limit               | int or null      | `--limit` (a prefix of the global order); null = all        |
| model.card                    | str or null      | model card name; null when scoring images of unknown origin |
| model.config                  | mapping or null  | the resolved card (after `base:` inheritance)               |
| model.checkpoint              | str or null      | checkpoint folder used                                      |
| model.checkpoint_sha256       | str or null      | sha256 of its model.safetensors                             |
| model.random_init             | bool             | seeded random trainable parts: scores are meaningless       |
| generation                    | mapping or null  | resolved sampling settings (seed, images_per_prompt,        |
|                               |                  | guidance_scale, image_guidance_scale, num_inference_steps,  |
|                               |                  | scheduler, resolution, negative_prompt), batch_size and     |
|                               |                  | precision (fp32 / bf16 / fp16 autocast; absent before 2026) |
| scorer.name                   | str              | scorer identity, e.g. `geneval-mask2former`                 |
| scorer.version                | str              | bumped whenever its numbers can change                      |
| scorer.weights                | str or null      | weights id or sha256 of the scorer model                    |
| scorer.notes                  | [str]            | e.g. backend, judge model and endpoint                      |
| metrics                       | {key: float}     | flat snake_case keys                                        |
| higher_is_better              | {key: bool}      | one entry per metric                                        |
| warnings                      | [str]            | everything that makes the number not the protocol's        |
| incomplete                    | [str]            | why the metrics cover less than the protocol asks (missing  |
|                               |                  | or unreadable images, unanswered judge requests); empty =   |
|                               |                  | complete. Printed tables mark such values with `*`          |
| image_issues                  | {kind: int}      | images missing / unreadable / too_small / wrong_prompt      |
|                               |                  | (left out) and converted / resized / other_format (scored   |
|                               |                  | after adjustment); see mqeval.images.check                  |
| environment.packages          | {dist: version}  | torch, transformers, diffusers, accelerate, open-clip-torch,|
|                               |                  | torch-fidelity, mqeval, ... (null = not installed)          |
| environment.git_hash          | str or null      | commit of the mqeval checkout                               |
| environment.git_dirty         | bool or null     | tracked files had uncommitted changes                       |
| environment.python            | str              | Python version                                              |
| environment.platform          | str              | OS and machine                                              |
| environment.device            | str              | cpu, cuda, ...                                              |
| environment.num_processes     | int              | processes that generated the images                         |

samples.jsonl (one line per sample, in the benchmark's global order)
| key        | type        | meaning                                                                          |
|------------|-------------|----------------------------------------------------------------------------------|
| sample_id  | str         | stable id; seeds derive from it                                                  |
| index      | int         | position in the benchmark's global order                                         |
| prompt     | str         |                                                                                  |
| seeds      | [int]       | derive_seed(generation.seed, sample_id, j) for each image j ([] if unknown)      |
| images     | [str]       | paths (relative to the run folder) of the files the scorer read for this sample  |
| image_issues | [obj]     | only where an image had an issue: {image, issue, detail}                         |
| ...        | any         | the scorer's per-sample fields; one whose name clashes with a key above is      |
|            |             | stored as `score_<name>`                                                         |
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from mqeval.errors import ConfigError

SCHEMA_VERSION = 1
SAMPLE_KEYS = ("sample_id", "index", "prompt", "seeds", "images")


class SchemaVersionError(ConfigError):
    """A results file written by another schema version."""


@dataclass(frozen=True)
class BenchmarkRecord:
    name: str
    version: str
    data_sha256: dict[str, str]
    num_samples: int
    variant_of: Optional[str] = None
    prompt_set: Optional[str] = None
    limit: Optional[int] = None


@dataclass(frozen=True)
class ModelRecord:
    card: Optional[str]
    config: Optional[dict[str, Any]]
    random_init: bool
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None


@dataclass(frozen=True)
class ScorerRecord:
    name: str
    version: str
    weights: Optional[str] = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvironmentRecord:
    packages: dict[str, Optional[str]]
    python: str
    platform: str
    device: str
    num_processes: int
    git_hash: Optional[str] = None
    git_dirty: Optional[bool] = None


@dataclass(frozen=True)
class RunRecord:
    """results.json, typed."""

    schema_version: int
    run_id: str
    created: str
    benchmark: BenchmarkRecord
    model: ModelRecord
    generation: Optional[dict[str, Any]]
    scorer: ScorerRecord
    metrics: dict[str, float]
    higher_is_better: dict[str, bool]
    environment: EnvironmentRecord
    warnings: tuple[str, ...] = field(default_factory=tuple)
    incomplete: tuple[str, ...] = field(default_factory=tuple)
    image_issues: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise SchemaVersionError(f"schema_version {self.schema_version} (this mqeval writes {SCHEMA_VERSION})")
        if set(self.metrics) != set(self.higher_is_better):
            raise ConfigError(
                "metrics and higher_is_better name different keys: "
                f"{sorted(set(self.metrics) ^ set(self.higher_is_better))}"
            )
