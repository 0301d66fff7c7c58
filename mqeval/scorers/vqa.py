"""Visual question answering backends (DPG-Bench asks each tile yes/no questions).

- `mplug` (default; the official DPG-Bench scorer): ModelScope's mPLUG-large VQA pipeline
  `damo/mplug_visual-question-answering_coco_large_en`. Needs `pip install modelscope` and its extra dependencies
  (see docs/benchmarks-judged.md) and downloads the weights on first use; `--weights-path` may point at a local copy.
- `openai`: any OpenAI-compatible vision endpoint through mqeval's judge client (cached, retried). Not the official
  scorer: its numbers are not comparable with published DPG-Bench scores.
Both return the raw answer text; the benchmark decides what counts as "yes".
"""
from __future__ import annotations

import io
from typing import Any, Optional, Protocol, Sequence

from mqeval.contract.scoring import ScoreOptions, ScorerInfo
from mqeval.errors import UserError
from mqeval.registry import Registry

MPLUG_MODEL_ID = "damo/mplug_visual-question-answering_coco_large_en"
VQA_INSTRUCTION_VERSION = "mqeval-vqa-yes-no-1"


class VQABackend(Protocol):
    info: ScorerInfo

    def answer_many(self, pairs: Sequence[tuple[Any, str]]) -> list[Optional[str]]:
        """Answers for (PIL image, question) pairs, in order; None where the backend could not answer."""


class MPlugVQA:
    """The official DPG-Bench VQA model, through ModelScope (not runnable here: no modelscope, no weights)."""

    def __init__(self, options: ScoreOptions):
        try:
            import modelscope
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks
        except ImportError:
            raise UserError(
                "The mPLUG VQA backend needs ModelScope: `pip install modelscope` plus the packages listed in "
                "docs/benchmarks-judged.md (or use --backend openai with an OpenAI-compatible vision endpoint, "
                "whose numbers are not comparable with published DPG-Bench scores)."
            ) from None
        model = options.weights_path or MPLUG_MODEL_ID
        self._pipeline = pipeline(Tasks.visual_question_answering, model=model, device=options.device)
        self.info = ScorerInfo(name="mplug-large-vqa", version=f"modelscope-{modelscope.__version__}", weights=model)

    def answer_many(self, pairs: Sequence[tuple[Any, str]]) -> list[Optional[str]]:
        return [self._pipeline({"image": image, "question": question})["text"] for image, question in pairs]


def png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def normalize_yes_no(text: str) -> str:
    """'Yes.' -> 'yes'; anything else keeps its lower-cased words (so it does not count as 'yes')."""
    return text.strip().strip(".!\"' ").lower()


class JudgeVQA:
    """Yes/no questions to an OpenAI-compatible vision endpoint."""

    INSTRUCTION = "{question}\nAnswer with one word: yes or no."
    caches_answers = True  # the judge client's response cache

    def __init__(self, options: ScoreOptions, workers: int = 8):
        from mqeval.scorers.judge import JudgeClient, JudgeSettings

        self.client = JudgeClient(JudgeSettings.from_options(options, workers=workers))
        settings = self.client.settings
        self.info = ScorerInfo(name="openai-compatible-vqa", version=VQA_INSTRUCTION_VERSION, weights=settings.model,
                               notes=(f"endpoint {settings.public_url}", "not the official DPG-Bench scorer (mPLUG)"))

    def answer_many(self, pairs: Sequence[tuple[Any, str]]) -> list[Optional[str]]:
        from mqeval.scorers.judge import JudgeRequest

        requests = [
            JudgeRequest(text=self.INSTRUCTION.format(question=question), image=png_bytes(image), max_tokens=5,
                         instruction_version=VQA_INSTRUCTION_VERSION)
            for image, question in pairs
        ]
        answers = []
        for reply in self.client.ask_many(requests):
            if reply.text is None:
                answers.append(None)
                continue
            answer = normalize_yes_no(reply.text)
            if answer not in ("yes", "no"):
                self.client.note_unparseable()
            answers.append(answer)
        return answers


VQA_BACKENDS: Registry[type] = Registry("VQA backend")
VQA_BACKENDS.register("mplug", MPlugVQA)
VQA_BACKENDS.register("openai", JudgeVQA)


class CachedVQA:
    """Any VQA backend, its answers cached by (image pixels, question) in the content cache; failures are not."""

    def __init__(self, backend: VQABackend, cache: Any):
        self.backend = backend
        self.info = backend.info
        self.cache = cache

    def answer_many(self, pairs: Sequence[tuple[Any, str]]) -> list[Optional[str]]:
        import numpy as np

        from mqeval.fileio import image_sha256

        keys = [self.cache.key(image_sha256(image), question) for image, question in pairs]

        def compute(missing: list[int]):
            answers = self.backend.answer_many([pairs[i] for i in missing])
            return [None if a is None else {"answer": np.array(a, dtype=str)} for a in answers]

        return [None if v is None else str(v["answer"]) for v in self.cache.map(keys, compute)]


def make_vqa_backend(options: ScoreOptions, default: str = "mplug") -> VQABackend:
    """The backend, behind the content cache unless it caches its own answers (the judge client does)."""
    from mqeval.scorers.content_cache import stage_cache

    backend = VQA_BACKENDS.get(options.backend or default)(options)
    if getattr(backend, "caches_answers", False):
        return backend
    info = backend.info
    return CachedVQA(backend, stage_cache(options, "vqa-answers",
                                          {"name": info.name, "version": info.version, "weights": info.weights,
                                           "notes": list(info.notes), "device": options.device}))
