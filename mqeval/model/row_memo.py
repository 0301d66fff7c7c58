"""Encode each distinct item once: deduplication plus an LRU memo of per-item results.

One piece of code for both places that need it: the condition encoder's frozen-prefix mode (prompt key/values and
backbone states, mqeval.model.frozen_prefix) and the pipeline's per-run condition memo (mqeval.model.condition_memo).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, Optional, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def dedupe(items: Sequence[K]) -> tuple[list[K], list[int]]:
    """The distinct items in first-seen order, and for every item the index of its distinct copy."""
    unique = list(dict.fromkeys(items))
    where = {item: i for i, item in enumerate(unique)}
    return unique, [where[item] for item in items]


class RowMemo(Generic[K, V]):
    """LRU memo key -> value, with hit/miss counters (a hit is a requested item that was already there)."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._store: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> Optional[V]:
        value = self._store.get(key)
        if value is not None:
            self._store.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._store[key] = value
        self._store.move_to_end(key)
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def fill(self, keys: Sequence[K], encode_missing: Callable[[list[K]], Sequence[V]]) -> list[V]:
        """Values for `keys`, in order; the distinct keys not memoised yet go to one `encode_missing` call."""
        unique, _ = dedupe(keys)
        found = {key: self.get(key) for key in unique}
        missing = [key for key, value in found.items() if value is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            values = list(encode_missing(missing))
            if len(values) != len(missing):
                raise RuntimeError(f"encoded {len(values)} values for {len(missing)} keys")
            for key, value in zip(missing, values):
                found[key] = value
                self.put(key, value)
        return [found[key] for key in keys]  # type: ignore[misc]
