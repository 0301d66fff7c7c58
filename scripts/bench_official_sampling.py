"""Images per second: the authors' GenEval sampling loop against `mqeval generate geneval`, same model and settings.

    python scripts/bench_official_sampling.py [--prompts N] [--variant qwen-sana|llava-sd15]

One run measures both, one after the other, on the committed tiny official checkpoint
(tests/fixtures/official_metaquery/<variant>): first the loop of the official eval/sample_geneval.py (one prompt a
call, 4 images per prompt, seed_everything(42), 30 steps, guidance 7.5, each image saved as PNG) in the side
environment of docs/official-code.md (a subprocess with its PYTHONPATH), then `mqeval generate geneval --limit N`
on the same checkpoint in this environment (its own batching: 16 images a forward pass). Both exclude model loading.
It prints images/s of each, their ratio, and where the time went (condition encoding, denoiser calls, VAE
decoding, the rest: PNG writing and bookkeeping). A measurement, not a test: CPU timings are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDE_PATH = [ROOT / ".official" / "metaquery", ROOT / ".official" / "metaquery-code"]
CARDS = {"qwen-sana": "metaquery-tiny-official", "llava-sd15": "metaquery-tiny-official-llava-sd15"}


def official_loop(run: Path, prompts: list[str], tmp: Path) -> dict:
    missing = [str(p) for p in SIDE_PATH if not p.is_dir()]
    if missing:
        sys.exit(f"Error: the side environment is missing ({', '.join(missing)}); see docs/official-code.md")
    (tmp / "prompts.json").write_text(json.dumps(prompts))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(map(str, SIDE_PATH))}
    subprocess.run([sys.executable, str(ROOT / "scripts" / "official_metaquery_reference.py"), "--time-geneval",
                    str(run), str(tmp / "prompts.json"), str(tmp / "official.json")], cwd=ROOT, env=env, check=True,
                   stderr=subprocess.DEVNULL)
    return json.loads((tmp / "official.json").read_text())


def mqeval_generate(card: str, run: Path, limit: int, tmp: Path) -> dict:
    """`mqeval generate` in this process, its components timed by wrapping their classes' methods."""
    import typer

    from mqeval.cli import app
    from mqeval.model.backbones.base import Backbone
    from mqeval.model.decoders import DECODERS
    from mqeval.model.metaquery import MetaQuery
    from mqeval.model.pipeline import MetaQueryPipeline

    from mqeval.zoo import load_card

    sys.path.insert(0, str(ROOT / "scripts"))
    from official_metaquery_reference import add_timer  # the same timer as the official side's

    spent = {"condition": 0.0, "denoiser": 0.0, "vae_decode": 0.0}
    calls = {"generate": 0.0}
    decoder = DECODERS.get(load_card(card).metaquery.decoder.family)
    add_timer(Backbone, "forward", "condition", spent)
    add_timer(MetaQuery, "condition_from_states", "condition", spent)
    add_timer(decoder, "denoise", "denoiser", spent)
    add_timer(decoder, "decode", "vae_decode", spent)
    add_timer(MetaQueryPipeline, "__call__", "generate", calls)
    start = time.perf_counter()
    command = typer.main.get_command(app)
    command.main(["generate", "geneval", "--model", card, "--checkpoint", str(run), "--limit", str(limit), "--out",
                  str(tmp / "mqeval"), "--no-progress"], standalone_mode=False)
    total = time.perf_counter() - start
    images = len(list((tmp / "mqeval").rglob("*.png")))
    return {"images": images, "seconds": calls["generate"], "with_loading_and_writing": total, "spent": spent}


def breakdown(sampling: float, spent: dict) -> str:
    parts = {k: spent[k] for k in ("condition", "denoiser", "vae_decode")}
    parts["rest"] = sampling - sum(parts.values())
    return ", ".join(f"{k} {v / sampling:.0%}" for k, v in parts.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--variant", choices=sorted(CARDS), default="qwen-sana")
    args = parser.parse_args()
    os.chdir(ROOT)  # the fixture's config names its base models relative to the checkout
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mqeval.benchmarks.catalog import load_benchmark

    run = Path("tests/fixtures/official_metaquery") / args.variant / "run"
    prompts = [s.prompt for s in load_benchmark("geneval").samples()[:args.prompts]]
    with tempfile.TemporaryDirectory() as tmp:
        official = official_loop(run, prompts, Path(tmp))
        ours = mqeval_generate(CARDS[args.variant], run, args.prompts, Path(tmp))
    official_sampling = official["seconds"] - official["spent"]["png"]  # PNG writing apart, as mqeval's writer is
    official_rate, ours_rate = official["images"] / official_sampling, ours["images"] / ours["seconds"]
    print(f"official sample_geneval.py loop: {official['images']} images, {official_sampling:.2f} s sampling = "
          f"{official_rate:.2f} images/s ({breakdown(official_sampling, official['spent'])}); "
          f"{official['seconds']:.2f} s with its PNG writing")
    print(f"mqeval generate geneval:         {ours['images']} images, {ours['seconds']:.2f} s sampling = "
          f"{ours_rate:.2f} images/s ({breakdown(ours['seconds'], ours['spent'])}); "
          f"{ours['with_loading_and_writing']:.2f} s for the whole command with loading and writing")
    print(f"ratio mqeval / official: {ours_rate / official_rate:.2f}x images/s (sampling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
