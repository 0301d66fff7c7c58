"""Rescoring cost: score a folder of images twice with an empty scorer cache, print both times and their ratio.

    python scripts/bench_rescoring.py shapes runs/shapes/metaquery-smol/images
    python scripts/bench_rescoring.py shapes --oracle 116     # draw the first 116 prompts' images first

The first scoring runs the scorer's models and fills the content-keyed caches (mqeval.scorers.content_cache); the
second finds every result there. "computed" counts results the scorer had to compute (model / API work), per pass.
Judge-scored benchmarks keep their answers in the judge cache, which this script also points at the empty folder.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark")
    parser.add_argument("images", nargs="?", type=Path, help="images folder in the benchmark's layout")
    parser.add_argument("--oracle", type=int, default=None, help="shapes: draw N prompts' images instead")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from mqeval.benchmarks.catalog import load_benchmark
    from mqeval.contract.scoring import ScoreOptions
    from mqeval.scorers.content_cache import ContentCache

    computed = [0]
    put_many = ContentCache.put_many

    def counting_put_many(self, items):
        computed[0] += len(items)
        return put_many(self, items)

    ContentCache.put_many = counting_put_many
    benchmark = load_benchmark(args.benchmark)
    with tempfile.TemporaryDirectory(prefix="mqeval-rescore-") as tmp:
        images = args.images
        limit = args.limit
        if args.oracle:
            from mqeval.benchmarks.shapes.oracle import write_oracle

            images, limit = Path(tmp) / "images", args.oracle
            write_oracle(benchmark, images, size=64, limit=limit)
        if images is None:
            parser.error("give an images folder or --oracle N")
        samples = benchmark.samples()[:limit]
        options = ScoreOptions(cache_dir=Path(tmp) / "cache", device=args.device)
        times, counts, results = [], [], []
        for _ in range(2):
            computed[0] = 0
            start = time.perf_counter()
            results.append(benchmark.score(images, samples, options))
            times.append(time.perf_counter() - start)
            counts.append(computed[0])
    same = results[0].metrics == results[1].metrics and results[0].per_sample == results[1].per_sample
    print(f"{args.benchmark}: {len(samples)} samples")
    print(f"first scoring : {times[0]:8.2f} s, {counts[0]} results computed")
    print(f"rescoring     : {times[1]:8.2f} s, {counts[1]} results computed")
    print(f"rescoring / first: {times[1] / times[0]:.3f}; scores identical: {same}")


if __name__ == "__main__":
    main()
