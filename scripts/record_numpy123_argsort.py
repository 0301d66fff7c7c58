"""Record `np.argsort` orders from numpy 1.23 (GenEval's pinned numpy) for tests/test_geneval_argsort.py.

Run with a Python whose numpy is 1.23.x, e.g. the venv scripts/build_mmdet2_env.sh makes:
    ../mqeval-mmdet2-venv/bin/python scripts/record_numpy123_argsort.py tests/data/geneval/numpy123_argsort.json
The cases are float32 score arrays full of ties (the only place the order is not fixed by the values), of sizes
around the insertion-sort cut-off (16), plus a V-shaped one that drives numpy into its heapsort fallback.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(path: str) -> None:
    if not np.__version__.startswith("1.23."):
        raise SystemExit(f"needs numpy 1.23.x (GenEval pins 1.23.1), found {np.__version__}")
    rng = np.random.default_rng(18)
    cases = [[0.5, 0.5], [0.7, 0.5, 0.7, 0.5, 0.7]]
    for n in (16, 17, 24, 40, 100):
        cases.append((rng.integers(0, 4, n) / 8 + 0.25).tolist())
    # a V shape (95, 94, ..., 1, 0, 1, ..., 94) exhausts the partition depth budget of 2 * floor(log2(190))
    cases.append([v / 128 for v in list(range(95, 0, -1)) + list(range(95))])
    records = []
    for values in cases:
        scores = np.asarray(values, dtype=np.float32)
        records.append({"scores": scores.tolist(), "argsort": np.argsort(scores).tolist()})
    with open(path, "w") as fh:
        json.dump({"numpy": np.__version__, "cases": records}, fh)
        fh.write("\n")
    print(f"wrote {len(records)} cases from numpy {np.__version__} to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
