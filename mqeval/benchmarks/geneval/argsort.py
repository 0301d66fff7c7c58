"""The order in which GenEval's official scorer visits one class's detections, ties included.

`evaluation/evaluate_images.py` orders a class's detections by `np.argsort(scores)[::-1]`: numpy's default sort
kind ("quicksort"), reversed. The environment it pins (environment.yml: numpy 1.23.1) implements that kind for
float32 as an introsort over an index array:
- while a range holds more than 16 indices: median-of-three pivot (first, middle, last), Hoare partition with the
  pivot parked next to the last slot, the smaller side processed first and the larger pushed on a stack;
- ranges of at most 16 indices: insertion sort (stable);
- past a depth of 2 * floor(log2(n)) partitions: heapsort of the remaining range.
So with 16 or fewer detections of a class, tied scores come out earliest first and the reversal puts the LATER
detection first; with more, the partitions scramble ties in a deterministic, value-dependent way.

Newer numpy gives other tie orders (numpy >= 1.25 on AVX-512 CPUs and numpy 2.x on AVX2 ones hand argsort to
x86-simd-sort, which is not stable even for 4 elements), so the official order is reproduced here rather than
borrowed from whatever numpy is installed. tests/test_geneval_argsort.py holds orders recorded from numpy 1.23.5.
"""
from __future__ import annotations

from typing import Sequence

SMALL_RANGE = 15  # a range is partitioned while (last - first) > SMALL_RANGE, i.e. while it has > 16 elements


def _heapsort(v: Sequence, idx: list[int], lo: int, n: int) -> None:
    """In-place heapsort of idx[lo:lo+n] by v, as numpy's aheapsort (1-based heap over that range)."""
    def sift(start: int, tmp: int, size: int) -> None:
        i, j = start, start << 1
        while j <= size:
            if j < size and v[idx[lo + j - 1]] < v[idx[lo + j]]:
                j += 1
            if not v[tmp] < v[idx[lo + j - 1]]:
                break
            idx[lo + i - 1] = idx[lo + j - 1]
            i, j = j, j + j
        idx[lo + i - 1] = tmp

    for start in range(n >> 1, 0, -1):
        sift(start, idx[lo + start - 1], n)
    while n > 1:
        tmp = idx[lo + n - 1]
        idx[lo + n - 1] = idx[lo]
        n -= 1
        sift(1, tmp, n)


def legacy_argsort(values: Sequence) -> list[int]:
    """`np.argsort(values)` as numpy 1.23 computes it (default kind) for values without NaN."""
    v = list(values)
    n = len(v)
    idx = list(range(n))
    if n < 2:
        return idx
    lo, hi = 0, n - 1
    depth = 2 * (n.bit_length() - 1)
    stack: list[tuple[int, int, int]] = []
    while True:
        if depth < 0:
            _heapsort(v, idx, lo, hi - lo + 1)
        else:
            while hi - lo > SMALL_RANGE:
                mid = lo + ((hi - lo) >> 1)
                if v[idx[mid]] < v[idx[lo]]:
                    idx[mid], idx[lo] = idx[lo], idx[mid]
                if v[idx[hi]] < v[idx[mid]]:
                    idx[hi], idx[mid] = idx[mid], idx[hi]
                if v[idx[mid]] < v[idx[lo]]:
                    idx[mid], idx[lo] = idx[lo], idx[mid]
                pivot = v[idx[mid]]
                i, j = lo, hi - 1
                idx[mid], idx[j] = idx[j], idx[mid]
                while True:
                    i += 1
                    while v[idx[i]] < pivot:
                        i += 1
                    j -= 1
                    while pivot < v[idx[j]]:
                        j -= 1
                    if i >= j:
                        break
                    idx[i], idx[j] = idx[j], idx[i]
                idx[i], idx[hi - 1] = idx[hi - 1], idx[i]
                depth -= 1
                if i - lo < hi - i:
                    stack.append((i + 1, hi, depth))
                    hi = i - 1
                else:
                    stack.append((lo, i - 1, depth))
                    lo = i + 1
            for k in range(lo + 1, hi + 1):
                item = idx[k]
                key = v[item]
                m = k
                while m > lo and key < v[idx[m - 1]]:
                    idx[m] = idx[m - 1]
                    m -= 1
                idx[m] = item
        if not stack:
            return idx
        lo, hi, depth = stack.pop()


def official_order(scores: Sequence) -> list[int]:
    """Indices best first, exactly as `np.argsort(scores)[::-1]` under GenEval's pinned numpy 1.23."""
    return legacy_argsort(scores)[::-1]
