"""WISE as an mqeval benchmark: 1000 knowledge prompts, one image each, judged by a vision LLM.

Layout (MetaQuery's eval/sample_wise.py): `<file stem>/<prompt_id>.png`, e.g. `natural_science/812.png`.
The scorer also accepts the flat `<prompt_id>.png` layout that WISE's own scripts read.
Data and the judge instructions are downloaded at run time from the pinned WISE commit (the repository states no
licence, so mqeval ships neither) or read from `--data-dir`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.wise import protocol
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.downloads import resolve_data_file
from mqeval.errors import DataIntegrityError
from mqeval.images.check import ImageReader
from mqeval.scorers.judge import JudgeClient, JudgedPreflight, JudgeRequest, JudgeSettings
from mqeval.scorers.judge_instructions import InstructionTemplate, message_texts, source_version


@dataclass(frozen=True)
class WiseOptions:
    protocol: Literal["legacy", "verified"] = "legacy"
    # data keys <stem>, <stem>_rewrite, <stem>_verified
    prompt_set: Literal["original", "rewrite", "verified"] = "original"
    judge_model: str = "gpt-4o-2024-05-13"  # used when --judge-model is not given
    judge_max_tokens: int = 2000
    parse_attempts: int = 3  # the official scripts ask again (up to 3 times) when the answer cannot be parsed
    disable_thinking: bool = False  # send chat_template_kwargs={"enable_thinking": false} (the verified judge)
    judge_workers: int = 8
    instructions_function: str = "build_evaluation_messages"


def data_key(stem: str, prompt_set: str) -> str:
    return stem if prompt_set == "original" else f"{stem}_{prompt_set}"


def load_prompt_file(path: Path) -> list[dict[str, Any]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataIntegrityError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "prompt_id" in i for i in items):
        raise DataIntegrityError(f"{path} is not a WISE prompt file (a JSON list of objects with prompt_id)")
    return items


class WiseBenchmark(JudgedPreflight, Benchmark):
    Options = WiseOptions

    # ---- samples and layout ------------------------------------------------------------------------------
    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        out: list[Sample] = []
        for stem in protocol.FILE_STEMS:
            key = data_key(stem, self.options.prompt_set)
            if key not in self.spec.data:
                raise DataIntegrityError(f"{self.name}: the spec has no data entry '{key}'")
            path = resolve_data_file(self.spec.data[key], key, local_dir=data_dir).path
            for item in load_prompt_file(path):
                pid = int(item["prompt_id"])
                out.append(
                    Sample(
                        sample_id=str(pid),
                        index=len(out),
                        prompt=item["Prompt"],
                        num_images=1,
                        metadata={
                            "prompt_id": pid,
                            "folder": stem,
                            "category": protocol.category_of(pid, self.options.protocol),
                            "subcategory": item.get("Subcategory"),
                            "explanation": item["Explanation"],
                        },
                    )
                )
        return out

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        return Path(out_dir) / sample.metadata["folder"] / f"{sample.metadata['prompt_id']}.png"

    def _find_image(self, out_dir: Path, sample: Sample) -> Optional[Path]:
        for path in (self.image_path(out_dir, sample, 0), Path(out_dir) / f"{sample.metadata['prompt_id']}.png"):
            if path.is_file():
                return path
        return None

    # ---- judge -------------------------------------------------------------------------------------------
    def instructions(self, options: ScoreOptions) -> InstructionTemplate:
        path = resolve_data_file(self.spec.data["judge_instructions"], "judge_instructions",
                                 local_dir=options.data_dir, cache_root=options.cache_dir).path
        texts = message_texts(path.read_text(encoding="utf-8"), self.options.instructions_function, str(path))
        if len(texts) != 2:
            raise DataIntegrityError(f"{path}: expected a system text and a user text, found {len(texts)} texts")
        template = InstructionTemplate(user=texts[1], system=texts[0],
                                       version=source_version(path, f"wise-{self.options.protocol}"))
        if sorted(template.fields) != ["Explanation", "Prompt"]:
            raise DataIntegrityError(f"{path}: instruction fields {template.fields}, expected Prompt and Explanation")
        return template

    def _parse(self, text: str) -> Optional[dict[str, float]]:
        return protocol.parse_legacy(text) if self.options.protocol == "legacy" else protocol.parse_verified(text)

    def _request(self, template: InstructionTemplate, sample: Sample, image: bytes, attempt: int) -> JudgeRequest:
        extra = (("chat_template_kwargs", {"enable_thinking": False}),) if self.options.disable_thinking else ()
        return JudgeRequest(
            text=template.render(Prompt=sample.prompt, Explanation=sample.metadata["explanation"]),
            image=image,
            system=template.system,
            max_tokens=self.options.judge_max_tokens,
            extra_body=extra,
            instruction_version=template.version,
            attempt=attempt,
        )

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        template = self.instructions(options)
        settings = JudgeSettings.from_options(options, default_model=self.options.judge_model,
                                              workers=self.options.judge_workers)
        client = JudgeClient(settings)
        reader = ImageReader(Path(out_dir))
        records: dict[str, dict[str, Any]] = {}
        images: dict[str, bytes] = {}
        for sample in samples:
            base = {"sample_id": sample.sample_id, "prompt_id": sample.metadata["prompt_id"],
                    "category": sample.metadata["category"]}
            path = self._find_image(out_dir, sample) or self.image_path(out_dir, sample, 0)
            image = reader.read_bytes(path)
            if image is None:  # the official script skips a missing image; an undecodable one is skipped too
                records[sample.sample_id] = {**base, "status": "missing_image",
                                             "image_issues": reader.issues_of([path])}
            else:
                images[sample.sample_id] = image
                records[sample.sample_id] = {**base, "status": "pending"}
        # Ask every pending image; re-ask only those whose answer could not be parsed (as the official script does).
        pending = [s for s in samples if records[s.sample_id]["status"] == "pending"]
        for attempt in range(self.options.parse_attempts):
            if not pending:
                break
            replies = client.ask_many([self._request(template, s, images[s.sample_id], attempt) for s in pending])
            still = []
            for sample, reply in zip(pending, replies):
                record = records[sample.sample_id]
                if reply.text is None:
                    record.update(status="judge_failed", error=reply.error)
                    continue
                parsed = self._parse(reply.text)
                if parsed is None:
                    record.update(status="unparseable", answer=reply.text)
                    still.append(sample)
                    continue
                record.pop("error", None)
                record.update(status="ok", answer=reply.text, **parsed,
                              wiscore=protocol.wiscore(self.options.protocol, parsed))
            pending = still
        client.note_unparseable(len(pending))
        per_sample = [records[s.sample_id] for s in samples]
        metrics = self.aggregate(per_sample)
        metrics.update(client.stats.as_metrics())
        return ScoreResult(
            metrics=metrics,
            higher_is_better={k: not (k.startswith("num_") or k.startswith("judge_")) for k in metrics},
            per_sample=per_sample,
            scorer=ScorerInfo(
                name=f"wise-{self.options.protocol}-judge",
                version=template.version,
                weights=settings.model,
                notes=(f"judge endpoint {settings.public_url}",
                       f"category weights {protocol.WEIGHTS[self.options.protocol]}"),
            ),
            warnings=self._warnings(per_sample) + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    def _warnings(self, per_sample: list[dict[str, Any]]) -> list[str]:
        out = []
        for status, what in (("missing_image", "images are missing"),
                             ("unparseable", "judge answers could not be "
                                             f"parsed after {self.options.parse_attempts} attempts"),
                             ("judge_failed", "judge requests failed")):
            ids = [r["prompt_id"] for r in per_sample if r["status"] == status]
            if ids:
                out.append(f"{len(ids)} {what} (prompt_ids {ids[:20]}{' ...' if len(ids) > 20 else ''}); "
                           "they are left out of the category means")
        if any(r["status"] != "ok" for r in per_sample):
            out.append("The official Calculate.py would refuse to give an overall score while any prompt_id lacks a "
                       "score; mqeval reports it over the scored images")
        return out

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        return protocol.aggregate(self.options.protocol, per_sample)
