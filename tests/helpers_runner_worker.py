"""Worker for the multi-process test: `torchrun ... helpers_runner_worker.py OUT BATCH_SIZE` (fake model)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers_runner import FakeBenchmark, FakePipeline, fake_settings  # noqa: E402

from mqeval.generation.distributed import ProcessGroup  # noqa: E402
from mqeval.generation.sharded_writer import generate  # noqa: E402


def main(out: str, batch_size: int) -> None:
    group = ProcessGroup("cpu")
    bench = FakeBenchmark(num_samples=7)
    report = generate(bench, bench.samples(), FakePipeline(), fake_settings(), Path(out), batch_size=batch_size,
                      group=group, progress=False)
    print(f"rank={report.rank} world={report.world_size} written={report.num_written}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
