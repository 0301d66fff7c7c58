"""The files of a run folder (`runs/<benchmark>/<card>/` or `--out DIR`): the one place that names them.

    images/               the generated images, in the benchmark's official layout (generation/sharded_writer.py)
    generation.json       what the images depend on: the run plan's fingerprint (generation/manifest.py)
    images.sha256         the sha256 of every image mqeval wrote (generation/provenance.py)
    .mqeval.lock          who holds the folder while a command runs (generation/lock.py)
    .worker-plan.json     the resolved plan handed to --num-processes workers, deleted after (evaluation/)
    results.json          the scored run (results/schema.py documents every key)
    samples.jsonl         one record per scored sample
    grid.png              some prompts of each task with their images and verdicts
"""
from __future__ import annotations

IMAGES_DIRNAME = "images"
MANIFEST_NAME = "generation.json"
LEDGER_NAME = "images.sha256"
LOCK_NAME = ".mqeval.lock"
PLAN_NAME = ".worker-plan.json"
RESULTS_NAME = "results.json"
SAMPLES_NAME = "samples.jsonl"
GRID_NAME = "grid.png"

