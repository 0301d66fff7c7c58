"""CommonsenseT2I as an mqeval benchmark: 150 adversarial prompt pairs, 4 images per prompt, judged per description.

Samples: two per pair (`0001-p1`, `0001-p2`), in pair order. With `use_negative_prompt`, each prompt gets the other
prompt of its pair as negative prompt (MetaQuery's "w/ negative prompt" rows).
Layout (MetaQuery's eval/sample_commonsenset2i.py, which the official evaluator reads):
`prompt{1,2}_img/original/<NNNN>-<j>.jpg` with NNNN the 1-based pair number and j = 1..4.
The judge instruction is read at run time from the pinned official evaluate.py; data from the pinned Hugging Face
revision (`data.json`) or `--data-dir`.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.commonsense_t2i import protocol
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.downloads import recorded_hashes, resolve_data_file
from mqeval.errors import DataIntegrityError
from mqeval.images.check import ImageReader
from mqeval.scorers.judge import JudgeClient, JudgedPreflight, JudgeRequest, JudgeSettings
from mqeval.scorers.judge_instructions import InstructionTemplate, assigned_template, source_version

FIELDS = ("prompt1", "prompt2", "description1", "description2")
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class CommonsenseOptions:
    use_negative_prompt: bool = False
    judge_model: str = "gpt-4o"  # the official evaluator's default ("GPT4VO"); an alias that moves over time
    judge_max_tokens: int = 10
    judge_detail: str = "low"
    judge_workers: int = 8
    instructions_function: str = "eval_mllm"


def load_pairs(path: Path) -> list[dict[str, Any]]:
    """Rows of data.json: a JSON list, {"train": [...]}, a dict of columns, or JSON lines."""
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise DataIntegrityError(f"{path} is neither JSON nor JSON lines: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("train"), list):
        data = data["train"]
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        columns = list(data)
        data = [dict(zip(columns, values)) for values in zip(*data.values())]
    if not isinstance(data, list) or not all(isinstance(r, dict) and all(f in r for f in FIELDS) for r in data):
        raise DataIntegrityError(f"{path}: expected CommonsenseT2I rows with fields {', '.join(FIELDS)}")
    return data


def official_description(text: str) -> str:
    return text.replace("\n", ", ")  # as the official evaluator does before asking


class CommonsenseT2IBenchmark(JudgedPreflight, Benchmark):
    Options = CommonsenseOptions

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        rows = load_pairs(resolve_data_file(self.spec.data["pairs"], "pairs", local_dir=data_dir).path)
        out: list[Sample] = []
        for number, row in enumerate(rows, start=1):
            meta = {"pair": number, "description1": row["description1"], "description2": row["description2"],
                    "category": row.get("category"), "likelihood": row.get("likelihood")}
            for side, other in ((1, 2), (2, 1)):
                out.append(
                    Sample(
                        sample_id=f"{number:04d}-p{side}",
                        index=len(out),
                        prompt=row[f"prompt{side}"],
                        num_images=4,
                        negative_prompt=row[f"prompt{other}"] if self.options.use_negative_prompt else None,
                        metadata={**meta, "side": side},
                    )
                )
        return out

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        number, side = sample.metadata["pair"], sample.metadata["side"]
        return Path(out_dir) / f"prompt{side}_img" / "original" / f"{number:04d}-{image_index + 1}.jpg"

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        """Make the `.jpg` files real JPEGs (PIL's default quality 75, as MetaQuery's sampler saves them): the
        judge sees JPEG artefacts in the reference runs, and a generator may have written PNG bytes. Idempotent."""
        from PIL import Image

        from mqeval.fileio import atomic_path

        for sample in samples:
            for j in range(sample.num_images):
                path = self.image_path(out_dir, sample, j)
                if not path.is_file():
                    continue
                with open(path, "rb") as handle:
                    if handle.read(3) == JPEG_MAGIC:
                        continue
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
                with atomic_path(path) as tmp:
                    rgb.save(tmp, format="JPEG")

    def instructions(self, options: ScoreOptions) -> tuple[InstructionTemplate, InstructionTemplate]:
        path = resolve_data_file(self.spec.data["judge_instructions"], "judge_instructions",
                                 local_dir=options.data_dir, cache_root=options.cache_dir).path
        source = path.read_text(encoding="utf-8")
        version = source_version(path, "commonsense-t2i")
        templates = []
        for k in (1, 2):
            text = assigned_template(source, self.options.instructions_function, f"prompt_eval{k}", str(path))
            template = InstructionTemplate(user=text, version=version)
            if template.fields != [f"description{k}"]:
                raise DataIntegrityError(f"{path}: prompt_eval{k} has fields {template.fields}")
            templates.append(template)
        return templates[0], templates[1]

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        ask1, ask2 = self.instructions(options)
        settings = JudgeSettings.from_options(options, default_model=self.options.judge_model,
                                              workers=self.options.judge_workers)
        client = JudgeClient(settings)
        requests: list[JudgeRequest] = []
        slots: list[tuple[int, int]] = []  # (sample position, image index) per pair of requests
        missing: list[str] = []
        reader = ImageReader(Path(out_dir))
        not_jpeg = 0
        for position, sample in enumerate(samples):
            d1 = official_description(sample.metadata["description1"])
            d2 = official_description(sample.metadata["description2"])
            for j in range(sample.num_images):
                path = self.image_path(out_dir, sample, j)
                image = reader.read_bytes(path)
                if image is None:  # missing or undecodable: the official script counts its answers as -1
                    missing.append(str(path.relative_to(out_dir)))
                    continue
                not_jpeg += image[:3] != JPEG_MAGIC
                for template, text in ((ask1, ask1.render(description1=d1)), (ask2, ask2.render(description2=d2))):
                    requests.append(JudgeRequest(text=text, image=image, max_tokens=self.options.judge_max_tokens,
                                                 detail=self.options.judge_detail,
                                                 instruction_version=template.version))
                slots.append((position, j))
        replies = client.ask_many(requests)
        per_sample = [
            {"sample_id": s.sample_id, "pair": s.metadata["pair"], "side": s.metadata["side"],
             "answers": [[protocol.UNREADABLE, protocol.UNREADABLE] for _ in range(s.num_images)],
             "raw_answers": [[None, None] for _ in range(s.num_images)]}
            for s in samples
        ]
        for record, sample in zip(per_sample, samples):
            issues = reader.issues_of([self.image_path(out_dir, sample, j) for j in range(sample.num_images)])
            if issues:
                record["image_issues"] = issues
        failed = 0
        for k, (position, j) in enumerate(slots):
            for d in (0, 1):
                reply = replies[2 * k + d]
                failed += reply.text is None
                per_sample[position]["raw_answers"][j][d] = reply.text
                per_sample[position]["answers"][j][d] = protocol.parse_answer(reply.text)
        unreadable = sum(1 for r in replies if r.text is not None and protocol.parse_answer(r.text) not in (0, 1))
        client.note_unparseable(unreadable)
        self._attach_pair_scores(per_sample)
        metrics = self.aggregate(per_sample)
        metrics.update(client.stats.as_metrics())
        metrics["num_missing_images"] = float(len(missing))
        warnings = []
        if missing:
            warnings.append(f"{len(missing)} images are missing or unreadable (e.g. {missing[:5]}); their answers "
                            "count as unreadable (-1, as the official script counts them), so those images support "
                            "no description")
        if not_jpeg:
            warnings.append(f"{not_jpeg} .jpg images are not JPEG files (the reference runs judged JPEGs); "
                            "`finalize` converts them")
        if unreadable:
            warnings.append(f"{unreadable} judge answers were not 0 or 1; the official rule counts them as "
                            "supporting no description")
        if failed:
            warnings.append(f"{failed} judge requests failed after retries; counted as unreadable answers")
        if metrics["num_incomplete_pairs"]:
            warnings.append(f"{int(metrics['num_incomplete_pairs'])} prompts have no partner prompt in this run; "
                            "their pairs are left out")
        return ScoreResult(
            metrics=metrics,
            higher_is_better={k: k == "score" for k in metrics},
            per_sample=per_sample,
            scorer=ScorerInfo(name="commonsense-t2i-judge", version=ask1.version, weights=settings.model,
                              notes=(f"judge endpoint {settings.public_url}", f"tie-break seed {protocol.TIE_SEED}")),
            warnings=warnings + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    @staticmethod
    def _attach_pair_scores(per_sample: list[dict[str, Any]]) -> None:
        """Informative per-record pair score (same random stream as `aggregate` over the full ordered list)."""
        rng = random.Random(protocol.TIE_SEED)
        pairs, _ = protocol.pair_up(per_sample)
        for first, second in pairs:
            first["pair_score"] = second["pair_score"] = protocol.pair_score(first["answers"], second["answers"], rng)

    def data_hashes(self) -> dict[str, str]:
        return recorded_hashes(self.spec.data)

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        return protocol.aggregate(per_sample)
