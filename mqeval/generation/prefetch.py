"""Prepare item k+1 on a worker thread while the caller works on item k (one item ahead, so memory stays bounded)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
U = TypeVar("U")


def prefetched(items: Sequence[T], prepare: Callable[[T], U]) -> Iterator[tuple[T, U]]:
    """(item, prepare(item)) in order; prepare's errors surface when their item is reached."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqeval-prefetch") as pool:
        future = pool.submit(prepare, items[0])
        for index, item in enumerate(items):
            result = future.result()
            if index + 1 < len(items):
                future = pool.submit(prepare, items[index + 1])
            yield item, result
