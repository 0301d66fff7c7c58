"""Worker for the multi-process training tests: `torchrun --nproc_per_node=K helpers_train_worker.py OUT`.

In one launch: an uninterrupted run of STEPS steps (OUT/full), then a run cut after CUT steps and resumed to STEPS
(OUT/cut). Each process writes its own trainable weights (rank-<r>.safetensors) and losses (rank-<r>.json).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers_train import STEPS, tiny_train_config  # noqa: E402

from mqeval.train.loop import Trainer, train  # noqa: E402

CUT = 2


def dump(trainer_or_model, out: Path, rank: int, losses: dict) -> None:
    from safetensors.torch import save_file

    params = {n: p.detach().cpu().contiguous() for n, p in trainer_or_model.named_trainable_parameters()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(params, str(out / f"rank-{rank}.safetensors"))
    (out / f"rank-{rank}.json").write_text(json.dumps({str(k): v for k, v in losses.items()}))


def main(out: Path) -> None:
    trainer = Trainer(tiny_train_config(out / "full", global_batch_size=8))
    full = trainer.fit(progress=False)
    rank = trainer.accelerator.process_index
    dump(trainer.unwrapped, out / "full", rank, full.losses)
    first = train(tiny_train_config(out / "cut", global_batch_size=8), max_steps=CUT, progress=False)
    resumed = Trainer(tiny_train_config(out / "cut", global_batch_size=8), resuming=True)
    assert resumed.resume()
    second = resumed.fit(progress=False)
    dump(resumed.unwrapped, out / "cut", rank, {**first.losses, **second.losses})
    print(f"rank={rank} world={trainer.accelerator.num_processes} steps={second.final_step}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
