"""The understanding-suite evaluator: lmms-eval asks the card's MLLM the suite's questions
(mqeval.benchmarks.understanding.evaluate chooses the adapter); the result is recorded like any run."""
from __future__ import annotations

from pathlib import Path

from mqeval.benchmarks.catalog import load_plugin
from mqeval.errors import UserError
from mqeval.evaluation.kinds import Evaluator
from mqeval.evaluation.plan import check_limit, protocol_warnings, warn
from mqeval.evaluation.request import EvaluationRequest
from mqeval.generation.acceleration import Acceleration
from mqeval.generation.lock import run_lock
from mqeval.model.kinds import kind_of
from mqeval.paths import default_run_dir
from mqeval.results.record import RunOrigin, SampleSelection, build_run, model_record
from mqeval.results.store import write_run
from mqeval.results.schema import RunRecord
from mqeval.run_folder import IMAGES_DIRNAME
from mqeval.zoo import resolve_card

DEFAULT_BATCH_SIZE = 4


class UnderstandingEvaluator(Evaluator):
    def run(self, request: EvaluationRequest) -> tuple[RunRecord, Path]:
        from mqeval.benchmarks.understanding.evaluate import evaluate_understanding

        suite = load_plugin(request.benchmark)
        _refuse_image_options(request, suite.name)
        check_limit(request.limit)
        if request.model is None:
            raise UserError("--model is required")
        card = resolve_card(request.model)
        kind_of(card).check_understanding(card, suite.name)
        checkpoint, sha = None, None
        if card.metaquery.backbone.tuning != "frozen" or request.adapter == "mqeval":
            weights = kind_of(card).resolve_weights(card, request.checkpoint)
            checkpoint, sha = weights.path, weights.sha256
        warnings = protocol_warnings(card, suite, (), None, request.limit)
        for message in warnings:
            warn(message)
        batch_size = request.batch_size or DEFAULT_BATCH_SIZE
        result = evaluate_understanding(suite, card, checkpoint, limit=request.limit, device=request.device,
                                        batch_size=batch_size, adapter=request.adapter)
        run_dir = Path(request.out or default_run_dir(suite.name, card.name))
        with run_lock(run_dir):
            origin = RunOrigin(model=model_record(card, checkpoint, sha), batch_size=batch_size,
                               warnings=tuple(warnings))
            record, rows = build_run(run_dir, suite, SampleSelection(), result, run_dir / IMAGES_DIRNAME, origin,
                                     request.device)
            return record, write_run(run_dir, record, rows)


def _refuse_image_options(request: EvaluationRequest, name: str) -> None:
    """Options of image generation have no meaning here; refusing them beats recording a run that ignored them."""
    given = [flag for flag, used in (
        ("--num-processes", request.num_processes != 1),
        ("--seed / --num-inference-steps / --guidance-scale", bool(request.overrides.describe())),
        ("--data-dir", request.data_dir is not None),
        ("--overwrite", request.overwrite),
        ("--precision / --compile", request.acceleration != Acceleration()),
    ) if used]
    if given:
        raise UserError(f"{', '.join(given)} do(es) not apply to {name}: lmms-eval asks the model its questions, "
                        "no images are generated")
