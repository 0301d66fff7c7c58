"""Training throughput of 1 vs 2 CPU processes on the tiny model, at the same global batch; prints the ratio.

    python scripts/bench_train_processes.py [--steps 12] [--global-batch 32] [--threads 1]

Runs `mqeval train model_zoo/metaquery-tiny.train.yaml` twice (`--num-processes 1`, then 2; each process gets
--threads CPU threads, so the 2-process run uses twice the cores) and reads the median of each run's logged steps
(train_log.jsonl), leaving out the first two (start-up). Numbers depend on the machine and its load: the ratio of
the two runs in one invocation is the measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "model_zoo" / "metaquery-tiny.train.yaml"
COLUMNS = ("images_per_s", "tokens_per_s", "step_time_s", "time_data_s", "time_backbone_s", "time_decoder_s",
           "time_optimizer_s")


def run(processes: int, steps: int, global_batch: int, threads: int, work: Path) -> dict[str, float]:
    config = work / f"bench-{processes}.train.yaml"
    config.write_text(json.dumps({"base": str(CONFIG), "global_batch_size": global_batch, "save_every": 10_000,
                                  "output_dir": str(work / f"run-{processes}")}))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mqeval.cli", "train", str(config), "--max-steps", str(steps), "--no-resume",
           "--num-processes", str(processes)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"Error: the {processes}-process run failed:\n{result.stderr[-3000:]}")
    records = [json.loads(line) for line in (work / f"run-{processes}" / "train_log.jsonl").read_text().splitlines()]
    kept = [r for r in records if r["step"] > 2] or records
    return {key: statistics.median(r[key] for r in kept) for key in COLUMNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mqeval-bench-train-") as tmp:
        results = {k: run(k, args.steps, args.global_batch, args.threads, Path(tmp)) for k in (1, 2)}
    print(f"tiny model, global batch {args.global_batch}, {args.steps} steps (median of steps 3..), "
          f"{args.threads} thread(s) per process")
    print(f"{'processes':>9} {'img/s':>8} {'tok/s':>8} {'step s':>8} {'data':>7} {'backbone':>8} {'decoder':>8} "
          f"{'optim':>7}")
    for k, r in results.items():
        print(f"{k:>9} {r['images_per_s']:>8.1f} {r['tokens_per_s']:>8.0f} {r['step_time_s']:>8.3f} "
              f"{r['time_data_s']:>7.3f} {r['time_backbone_s']:>8.3f} {r['time_decoder_s']:>8.3f} "
              f"{r['time_optimizer_s']:>7.3f}")
    ratio = results[2]["images_per_s"] / results[1]["images_per_s"]
    print(f"throughput ratio, 2 vs 1 processes: {ratio:.2f}x (2.00x would be perfect scaling)")


if __name__ == "__main__":
    main()
