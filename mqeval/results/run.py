"""Recorded runs: `read_run` is the one reader of a run folder (results.json through the store's validating reader,
samples.jsonl as plain records); `find_runs` collects the runs under folders. Reports and the CLI read runs here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from mqeval.errors import DataIntegrityError, UserError
from mqeval.extras import require
from mqeval.results.compat import CompatKey
from mqeval.results.schema import SAMPLE_KEYS, RunRecord
from mqeval.results.store import check_sample_rows, read_record
from mqeval.run_folder import RESULTS_NAME, SAMPLES_NAME

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Run:
    """One recorded run folder: results.json as written and typed, and samples.jsonl as plain records (a pandas
    form would fill absent fields with NaN, which a benchmark's `aggregate` must not see; `samples_frame` gives
    one for analysis)."""

    path: Path
    results: dict[str, Any]  # results.json as written
    record: RunRecord  # the same, typed and validated (schema_version checked)
    samples: list[dict[str, Any]]  # per-sample records (samples.jsonl), in file order

    def samples_frame(self) -> "pd.DataFrame":
        pd = require("pandas", "reports", "Loading runs into pandas")
        return pd.DataFrame.from_records(self.samples) if self.samples else pd.DataFrame(columns=list(SAMPLE_KEYS))

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def created(self) -> str:
        return self.record.created

    @property
    def benchmark_name(self) -> str:
        return self.record.benchmark.name

    @property
    def checkpoint(self) -> str:
        """The weights the run used (folder, and sha256 of model.safetensors when recorded)."""
        model = self.record.model
        if model.random_init and not model.checkpoint:
            return "random init"
        sha = model.checkpoint_sha256
        return f"{model.checkpoint or '?'}" + (f" ({sha[:12]})" if sha else "")

    @property
    def variant_of(self) -> Optional[str]:
        return self.record.benchmark.variant_of

    def per_sample(self) -> list[dict[str, Any]]:
        """The scorer's per-sample records as `aggregate` expects them: the store renames a scorer field that clashes
        with a fixed samples.jsonl key to `score_<name>`; give it its name back."""
        out = []
        for row in self.samples:
            record = dict(row)
            for key in SAMPLE_KEYS:
                if f"score_{key}" in row:
                    record[key] = row[f"score_{key}"]
            out.append(record)
        return out

    @property
    def card(self) -> str:
        return self.record.model.card or "?"

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.record.metrics)

    @property
    def warnings(self) -> list[str]:
        """What makes this run's numbers not the protocol's: random weights, --limit, changed sampling settings, and
        an incomplete result (missing or unusable images, unanswered judge requests)."""
        return list(self.record.warnings) + [f"incomplete: {reason}" for reason in self.record.incomplete]

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return dict(self.record.higher_is_better)

    @property
    def prompt_set(self) -> str:
        return self.record.benchmark.prompt_set or "original"

    @property
    def _card_config(self) -> dict[str, Any]:
        return self.record.model.config or {}

    @property
    def kind(self) -> str:
        """The card's model kind (runs recorded before kinds existed are MetaQuery runs)."""
        return str(self._card_config.get("kind") or "metaquery")

    @property
    def decoder_family(self) -> Optional[str]:
        """A MetaQuery run's decoder family: only MetaQuery cards have a `model:` block (None for other kinds)."""
        config = self._card_config
        block = config.get("model") or ({} if config.get("kind") else config)  # no `kind`: from before kinds existed
        family = (block.get("decoder") or {}).get("family")
        if family or config.get("kind"):
            return family
        try:  # older results without the resolved card: ask the zoo
            from mqeval.zoo import load_card

            return load_card(self.card).metaquery.decoder.family
        except UserError:
            return None

    @property
    def compat_key(self) -> CompatKey:
        benchmark, scorer = self.record.benchmark, self.record.scorer
        return CompatKey(
            benchmark.name,
            benchmark.version,
            self.prompt_set,
            json.dumps(benchmark.data_sha256, sort_keys=True),
            scorer.name,
            scorer.version,
            scorer.weights or "",
            "all" if benchmark.limit is None else str(benchmark.limit),
        )


def read_run(path: str | Path) -> Run:
    """The one reader of a run folder (or of its results.json)."""
    path = Path(path)
    if path.is_file() and path.name == RESULTS_NAME:
        path = path.parent
    if not (path / RESULTS_NAME).is_file():
        raise UserError(f"{path} is not a run folder (no {RESULTS_NAME})")
    results, record = read_record(path)
    samples = []
    samples_path = path / SAMPLES_NAME
    if samples_path.is_file():
        for number, line in enumerate(samples_path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    samples.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataIntegrityError(f"{samples_path}:{number} is not valid JSON: {exc}") from None
        check_sample_rows(samples_path, samples, record.benchmark.num_samples)
    return Run(path, results, record, samples)


def find_runs(roots: Iterable[str | Path], problems: Optional[list[str]] = None) -> list[Run]:
    """Every run folder at or under the given paths (a folder holding results.json is one run), sorted by path.

    With a `problems` list, a run folder that cannot be read (other schema version, broken JSON) is skipped and
    described there; without one, it is an error."""
    found: dict[Path, Run] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise UserError(f"No such runs folder: {root}")
        folders = [root] if (root / RESULTS_NAME).is_file() else sorted(p.parent for p in root.rglob(RESULTS_NAME))
        for folder in folders:
            if folder.resolve() in found:
                continue
            try:
                found[folder.resolve()] = read_run(folder)
            except UserError as exc:
                if problems is None:
                    raise
                problems.append(f"skipped {folder}: {exc}")
    return [found[k] for k in sorted(found)]
