"""GenEval's folder layout, `<out>/<NNNNN>/metadata.jsonl` + `<out>/<NNNNN>/samples/<NNNN>.png`, read as the official
scorer reads it: each folder's own metadata.jsonl says which prompt its images show.

A folder whose metadata.jsonl matches its global index is used as it is; a folder written in another prompt order
is matched to its prompt by its metadata (and a warning says so); a folder whose metadata names a prompt that is
not in the run, or cannot be read, is reported and its images are not scored for another prompt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.contract.samples import Sample

METADATA_NAME = "metadata.jsonl"


@dataclass
class FolderMatch:
    folders: dict[str, Optional[Path]]  # sample_id -> its folder (None: no folder shows this prompt)
    warnings: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)  # sample_id -> why its index folder was not used


def read_folder_metadata(folder: Path) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """(metadata, None), (None, None) without a metadata.jsonl, or (None, why) when it cannot be read."""
    path = Path(folder) / METADATA_NAME
    if not path.is_file():
        return None, None
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        data = json.loads(lines[0]) if lines else None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return None, f"{path.relative_to(path.parent.parent)} cannot be read ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, f"{path.relative_to(path.parent.parent)} holds no metadata object"
    return data, None


def _prompt_key(metadata: dict[str, Any]) -> str:
    """What identifies a prompt (GenEval's rules read tag, include and exclude; prompt tells rewrites apart)."""
    return json.dumps([metadata.get(k) for k in ("prompt", "tag", "include", "exclude")], sort_keys=True, default=str)


def match_prompt_folders(out_dir: Path, samples: Sequence[Sample]) -> FolderMatch:
    out_dir = Path(out_dir)
    match = FolderMatch({})
    unmatched: list[Sample] = []
    for sample in samples:
        folder = out_dir / f"{sample.index:05d}"
        found, problem = read_folder_metadata(folder)
        if problem:
            match.folders[sample.sample_id] = None
            match.mismatched[sample.sample_id] = problem
        elif found is None or _prompt_key(found) == _prompt_key(sample.metadata):
            match.folders[sample.sample_id] = folder
        else:
            unmatched.append(sample)
    moved: list[str] = []
    if unmatched:
        moved = _match_by_metadata(out_dir, unmatched, match)
    if moved:
        match.warnings.append(f"{len(moved)} prompt folder(s) are in another order than the benchmark's; matched by "
                              f"their {METADATA_NAME} as the official scorer does: {', '.join(moved[:5])}")
    if match.mismatched:
        shown = "; ".join(f"{k}: {v}" for k, v in list(match.mismatched.items())[:5])
        match.warnings.append(f"{len(match.mismatched)} prompt(s) have no folder whose {METADATA_NAME} matches; "
                              f"their images are not scored: {shown}")
    return match


def _match_by_metadata(out_dir: Path, unmatched: list[Sample], match: FolderMatch) -> list[str]:
    by_prompt: dict[str, Path] = {}
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        found, _ = read_folder_metadata(folder)
        if found is not None:
            by_prompt.setdefault(_prompt_key(found), folder)
    moved = []
    for sample in unmatched:
        folder = by_prompt.get(_prompt_key(sample.metadata))
        match.folders[sample.sample_id] = folder
        if folder is None:
            match.mismatched[sample.sample_id] = (f"{sample.index:05d}/{METADATA_NAME} is for another prompt and no "
                                                  "folder holds this one")
        else:
            moved.append(f"{sample.index:05d} -> {folder.name}")
    return moved
