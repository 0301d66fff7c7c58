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
        return str(self.results.get("run_id") or self.path.name)

    @property
    def created(self) -> str:
        return str(self.results.get("created") or "")

    @property
    def benchmark(self) -> dict[str, Any]:
        return self.results.get("benchmark") or {}

    @property
    def benchmark_name(self) -> str:
        return str(self.benchmark.get("name", "?"))

    @property
    def checkpoint(self) -> str:
        """The weights the run used (folder, and sha256 of model.safetensors when recorded)."""
        model = self.results.get("model") or {}
        if model.get("random_init") and not model.get("checkpoint"):
            return "random init"
        sha = model.get("checkpoint_sha256")
        return f"{model.get('checkpoint') or '?'}" + (f" ({sha[:12]})" if sha else "")

    @property
    def variant_of(self) -> Optional[str]:
        return self.benchmark.get("variant_of")

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
        return str((self.results.get("model") or {}).get("card") or "?")

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.results.get("metrics") or {})

    @property
    def warnings(self) -> list[str]:
        """What makes this run's numbers not the protocol's: random weights, --limit, changed sampling settings, and
        an incomplete result (missing or unusable images, unanswered judge requests)."""
        return ([str(w) for w in self.results.get("warnings") or []]
                + [f"incomplete: {reason}" for reason in self.results.get("incomplete") or []])

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return dict(self.results.get("higher_is_better") or {})

    @property
    def prompt_set(self) -> str:
        return str(self.benchmark.get("prompt_set") or "original")

    @property
    def kind(self) -> str:
        """The card's model kind (runs recorded before kinds existed are MetaQuery runs)."""
        config = (self.results.get("model") or {}).get("config") or {}
        return str(config.get("kind") or "metaquery")

    @property
    def decoder_family(self) -> Optional[str]:
        """A MetaQuery run's decoder family: only MetaQuery cards have a `model:` block (None for other kinds)."""
        config = (self.results.get("model") or {}).get("config") or {}
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
        scorer = self.results.get("scorer") or {}
        data = self.benchmark.get("data_sha256")
        data_text = json.dumps(data, sort_keys=True) if isinstance(data, dict) else str(data or "")
        return CompatKey(
            self.benchmark_name,
            str(self.benchmark.get("version", "")),
            self.prompt_set,
            data_text,
            str(scorer.get("name", "")),
            str(scorer.get("version", "")),
            str(scorer.get("weights") or ""),
            "all" if self.benchmark.get("limit") is None else str(self.benchmark["limit"]),
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
