"""What must be equal for two recorded runs' numbers to be compared (share a report column, be paired)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompatKey:
    """What must be equal for two runs' numbers to share a column."""

    benchmark: str
    version: str
    prompt_set: str
    data_sha256: str
    scorer: str
    scorer_version: str
    scorer_weights: str
    limit: str = "all"  # `--limit N` scores a prefix of the prompts: another prompt set in effect

    def describe_difference(self, other: "CompatKey") -> str:
        parts = []
        for field, label in [
            ("benchmark", "benchmark"),
            ("version", "benchmark version"),
            ("prompt_set", "prompt set"),
            ("data_sha256", "benchmark data (sha256)"),
            ("scorer", "scorer"),
            ("scorer_version", "scorer version"),
            ("scorer_weights", "scorer weights"),
            ("limit", "--limit"),
        ]:
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                parts.append(f"{label} {mine or '?'} vs {theirs or '?'}")
        return "; ".join(parts)

    def short(self) -> str:
        scorer = f"{self.scorer} {self.scorer_version}".strip()
        limit = "" if self.limit == "all" else f", first {self.limit} samples"
        return f"{self.benchmark} v{self.version}, {self.prompt_set} prompts{limit}, {scorer}"
