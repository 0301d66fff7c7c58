"""Run an understanding suite on a model card with lmms-eval (`mqeval run <suite> --model <card>` records it).

Adapter choice (`choose_adapter`):
- frozen backbone: the base MLLM's scores are the model's scores by construction, so lmms-eval runs its own
  adapter on the base model (qwen2_5_vl for Qwen2.5-VL; llava_hf for LLaVA-OneVision in transformers format,
  e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf). Numbers are then exactly what lmms-eval reports for that model.
- LoRA / fully tuned backbone: lmms-eval cannot load those weights, so mqeval's registered adapter ("mqeval",
  adapter.py) answers with the loaded MetaQuery backbone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mqeval.contract.scoring import ScoreResult, ScorerInfo
from mqeval.errors import UserError

LMMS_EVAL_VERSION = "0.7.3"
BASE_ADAPTERS = {"qwen2_5_vl": "qwen2_5_vl", "llava_onevision": "llava_hf"}


@dataclass(frozen=True)
class AdapterChoice:
    name: str  # lmms-eval model name ("mqeval" for ours)
    model_args: str  # lmms-eval's "key=value,..." string (empty for ours: the instance is passed directly)
    reason: str


def choose_adapter(backbone: Any, override: Optional[str] = None) -> AdapterChoice:
    """`backbone`: a BackboneConfig. `override`: force "mqeval" or an lmms-eval model name."""
    if backbone.family not in BASE_ADAPTERS:
        raise UserError(f"backbone family '{backbone.family}' takes no images: understanding suites do not apply")
    if override == "mqeval" or (override is None and backbone.tuning != "frozen"):
        return AdapterChoice("mqeval", "", f"{backbone.tuning} backbone: mqeval's adapter on the tuned weights")
    if backbone.model_id.startswith("tiny://"):
        raise UserError("tiny:// backbones exist only inside mqeval: use --adapter mqeval")
    name = override or BASE_ADAPTERS[backbone.family]
    args = f"pretrained={backbone.model_id}" + (f",revision={backbone.revision}" if backbone.revision else "")
    return AdapterChoice(name, args, "frozen backbone: lmms-eval's own adapter on the base model "
                                     "(the scores are the base MLLM's by construction)")


def require_lmms_eval():
    try:
        import lmms_eval  # noqa: F401
        from lmms_eval import evaluator
    except ImportError:
        raise UserError(
            "Understanding benchmarks need lmms-eval: pip install 'mqeval[understanding]' "
            f"(lmms-eval=={LMMS_EVAL_VERSION})"
        ) from None
    return evaluator


def per_sample_records(results: dict[str, Any], task: str) -> list[dict[str, Any]]:
    out = []
    for row in results.get("samples", {}).get(task, []) or []:
        response = row.get("filtered_resps") or row.get("resps")
        out.append({"sample_id": str(row.get("doc_id")), "target": str(row.get("target")),
                    "response": str(response[0] if isinstance(response, list) and response else response)})
    return out


def evaluate_understanding(benchmark: Any, card: Any, checkpoint: Optional[Path] = None, *, limit: Optional[int] = None,
                           device: str = "cuda", batch_size: int = 1, adapter: Optional[str] = None,
                           task_manager: Any = None, responder: Any = None) -> ScoreResult:
    """Run `benchmark` (an LmmsEvalSuite) on `card` and return its ScoreResult.

    `responder` (a BackboneResponder) and `task_manager` (an lmms-eval TaskManager with extra task folders) let
    callers reuse a loaded model or add local tasks.
    """
    evaluator = require_lmms_eval()
    import lmms_eval

    choice = choose_adapter(card.model.backbone, adapter)
    options = benchmark.options
    common = dict(tasks=[options.task], limit=limit, batch_size=batch_size, device=device, log_samples=True,
                  task_manager=task_manager)
    if choice.name == "mqeval":
        from mqeval.benchmarks.understanding.adapter import lmms_class

        lm = lmms_class()(card=card.name, checkpoint=str(checkpoint) if checkpoint else None, device=device,
                          batch_size=batch_size, responder=responder)
        results = evaluator.simple_evaluate(model=lm, **common)
    else:
        results = evaluator.simple_evaluate(model=choice.name, model_args=choice.model_args, **common)
    if results is None:  # non-zero ranks under a distributed launcher
        raise UserError("lmms-eval returned no results on this process")
    metrics = benchmark.metrics(results)
    notes = [f"lmms-eval {getattr(lmms_eval, '__version__', '?')} task {options.task}",
             f"adapter {choice.name} ({choice.reason})"]
    if options.needs_judge:
        notes.append("GPT-judged: the judge model (lmms-eval env MODEL_VERSION) changes scores")
    return ScoreResult(
        metrics=metrics,
        higher_is_better={k: True for k in metrics},
        per_sample=per_sample_records(results, options.task),
        scorer=ScorerInfo(name=f"lmms-eval:{options.task}", version=str(getattr(lmms_eval, "__version__", "?")),
                          weights=choice.model_args or card.name, notes=tuple(notes)),
    )
