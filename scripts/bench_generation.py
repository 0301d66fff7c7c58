"""Generation speed: `mqeval run`'s loop against a bare loop over the model's own pipeline, where the time goes,
and the FLOPs per image against the device's floor.

    # a model card on a benchmark (the card's weights, its sampling settings)
    python scripts/bench_generation.py --card metaquery-smol --benchmark shapes --limit 8 --batch-size 16
    # full-size MetaQuery-B architecture with random weights (LLaVA-OneVision-0.5B-sized backbone, 256 queries,
    # 24-layer Enc-Proj, Sana-1.6B-sized transformer + DC-AE, 512 px), built from configs: nothing is downloaded
    python scripts/bench_generation.py --arch metaquery-b --device cuda --precision bf16 --limit 8 --steps 30
    # the same family at test size, for a CPU smoke run
    python scripts/bench_generation.py --arch metaquery-b --tiny --limit 2 --steps 2

What it prints (one run, the two loops alternated `--repeats` times, best of each):
- images/s of the bare loop (MetaQueryPipeline called batch after batch, images kept in memory) and of
  `mqeval.generation.sharded_writer.generate` (the loop `mqeval run` uses: prefetch, background saver, validity
  checks),
  and their ratio;
- the share of the run's wall time spent in each stage (backbone, connector, denoiser, VAE decode, to-PIL) and the
  writer thread's busy time (it overlaps the next batch);
- FLOPs per image, counted by torch.utils.flop_counter over one single-image pipeline call, per part; the floor
  2 x denoiser parameters x latent tokens x steps x CFG branches; and, given the device's peak (--peak-tflops or
  a known GPU), images/s as a fraction of what the peak allows for the counted FLOPs.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Dense peak TFLOP/s of common GPUs (vendor datasheets, no sparsity): bf16/fp16 tensor cores, and fp32.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6},
}

# Sizes of the paper's MetaQuery-B parts (the published configs of llava-onevision-qwen2-0.5b-ov and
# Sana_1600M_512px); --tiny swaps in the test-size folders (tiny://).
QWEN2_05B_TEXT = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                      num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0)
SIGLIP_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                     image_size=384, patch_size=14)
SANA_1600M_512 = dict(in_channels=32, out_channels=32, num_attention_heads=70, attention_head_dim=32, num_layers=20,
                      num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240,
                      caption_channels=2304, mlp_ratio=2.5, sample_size=16, patch_size=1)


def build_full_size(root: Path) -> tuple[Path, Path]:
    """Random-weight folders of the full-size backbone and decoder (built once under `root`)."""
    import torch

    backbone, decoder = root / "llava-onevision-0.5b-random", root / "sana-1600m-512px-random"
    if not (backbone / ".complete").is_file():
        from transformers import (
            LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionImageProcessor,
            LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor,
        )

        from mqeval.model.tiny import tiny_tokenizer

        # The tiny byte-level tokenizer: prompts come out somewhat longer than with Qwen's 151k vocabulary.
        tokenizer = tiny_tokenizer(("<image>", "<video>"), image_slot="<image>\n")
        config = LlavaOnevisionConfig(
            text_config={"model_type": "qwen2", "vocab_size": 151936, "pad_token_id": tokenizer.pad_token_id,
                         "eos_token_id": tokenizer.pad_token_id, "tie_word_embeddings": True, **QWEN2_05B_TEXT},
            vision_config={"model_type": "siglip_vision_model", **SIGLIP_SO400M},
            image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
            video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
            vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=True,
        )
        torch.manual_seed(0)
        LlavaOnevisionForConditionalGeneration(config).to(torch.bfloat16).save_pretrained(backbone)
        processor = LlavaOnevisionProcessor(
            image_processor=LlavaOnevisionImageProcessor(), tokenizer=tokenizer,
            video_processor=LlavaOnevisionVideoProcessor(), chat_template=tokenizer.chat_template,
            num_image_tokens=729, vision_feature_select_strategy="full",
        )
        processor.save_pretrained(backbone)
        (backbone / ".complete").write_text("ok\n")
    if not (decoder / ".complete").is_file():
        from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaTransformer2DModel

        torch.manual_seed(0)
        SanaTransformer2DModel(**SANA_1600M_512).to(torch.bfloat16).save_pretrained(decoder / "transformer")
        AutoencoderDC().to(torch.bfloat16).save_pretrained(decoder / "vae")  # the defaults are DC-AE f32c32
        DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    flow_shift=3.0).save_pretrained(decoder / "scheduler")
        (decoder / ".complete").write_text("ok\n")
    return backbone, decoder


def arch_card(tiny: bool, cache: Path, out: Path) -> Path:
    """A random-init card of the MetaQuery-B architecture, written to `out`."""
    import yaml

    if tiny:
        backbone, decoder, queries, layers, resolution, dtype = "tiny://llava_onevision", "tiny://sana", 8, 1, 64, \
            "float32"
    else:
        b, d = build_full_size(cache)
        backbone, decoder, queries, layers, resolution, dtype = str(b), str(d), 256, 24, 512, "bfloat16"
    card = {
        "description": "MetaQuery-B architecture, random weights (bench_generation.py)",
        "tags": ["bench", "random-init"],
        "model": {
            "backbone": {"family": "llava_onevision", "model_id": backbone, "tuning": "frozen", "dtype": dtype},
            "condition": {"mode": "metaquery", "num_queries": queries},
            "connector": {"architecture": "enc-proj", "num_layers": layers},
            "decoder": {"family": "sana", "model_id": decoder, "train": False, "prediction_type": "flow",
                        "resolution": resolution, "dtype": dtype},
        },
        "checkpoint": {"random_init": True, "source": "random weights"},
        "generation": {"guidance_scale": 7.5, "num_inference_steps": 30, "scheduler": "dpm-solver"},
    }
    path = out / ("metaquery-b-tiny-bench.yaml" if tiny else "metaquery-b-bench.yaml")
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return path


class StageTimer:
    """Wall time inside wrapped callables, synchronising CUDA around each so the time lands where it is spent."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.seconds: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attribute: str, stage: str) -> None:
        import torch

        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.cuda:
                    torch.cuda.synchronize()
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

        setattr(owner, attribute, timed)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def bare_loop(model: Any, batches: list, settings: Any, acceleration: Any, device_type: str) -> float:
    """Seconds for the model's own pipeline over the batches, nothing written."""
    import torch

    from mqeval.generation.sharded_writer import prepare_call
    from mqeval.model.pipeline import MetaQueryPipeline

    pipeline = MetaQueryPipeline(model)
    sync(device_type)
    start = time.perf_counter()
    for batch in batches:
        call = prepare_call(pipeline, batch, settings)
        with torch.inference_mode(), acceleration.context(device_type):
            pipeline(call.pop("prompts"), **call)
    sync(device_type)
    return time.perf_counter() - start


def run_loop(model: Any, plan: Any, batch_size: int, acceleration: Any, group: Any, out: Path) -> float:
    """Seconds for `mqeval run`'s generation (`generate`, as the CLI calls it) into an empty folder."""
    import shutil

    from mqeval.generation.sharded_writer import generate

    shutil.rmtree(out, ignore_errors=True)
    sync(group.device)
    start = time.perf_counter()
    generate(plan.benchmark, plan.samples, model, plan.settings, out, batch_size=batch_size, group=group,
             progress=False, fingerprint=plan.fingerprint(), acceleration=acceleration)
    sync(group.device)
    return time.perf_counter() - start


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def stage_shares(model: Any, plan: Any, batch_size: int, acceleration: Any, group: Any, out: Path) -> dict:
    import mqeval.generation.sharded_writer as runner_module
    import mqeval.model.pipeline as pipeline_module

    timer = StageTimer(group.device.startswith("cuda"))
    timer.wrap(model.backbone, "forward", "backbone")
    timer.wrap(model.connector, "forward", "connector")
    timer.wrap(model.decoder, "denoise", "denoiser")
    timer.wrap(model.decoder, "decode", "vae decode")
    timer.wrap(pipeline_module, "to_pil", "to PIL")
    timer.wrap(runner_module, "save_image", "writer thread (overlaps)")
    try:
        total = run_loop(model, plan, batch_size, acceleration, group, out)
    finally:
        timer.restore()
    return {"total": total, **timer.seconds}


def flops_per_image(model: Any, plan: Any, acceleration: Any, device_type: str) -> dict[str, float]:
    """FLOPs of one single-image pipeline call, per part (a fresh pipeline: the condition is computed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mqeval.generation.jobs import plan_jobs
    from mqeval.generation.sharded_writer import prepare_call
    from mqeval.model.pipeline import MetaQueryPipeline

    job = plan_jobs(plan.benchmark, plan.samples[:1], plan.settings, Path(tempfile.gettempdir()))[:1]
    call = prepare_call(MetaQueryPipeline(model), job, plan.settings)
    counter = FlopCounterMode(display=False, depth=1)
    with counter, torch.inference_mode(), acceleration.context(device_type):
        MetaQueryPipeline(model)(call.pop("prompts"), **call)
    # Keys are the class names of the outermost modules called (the pipeline calls the parts, not MetaQuery).
    parts = {"total": float(counter.get_total_flops())}
    for name, counts in counter.get_flop_counts().items():
        if name != "Global" and "." not in name:
            parts[name] = float(sum(counts.values()))
    return parts


def flop_floor(model: Any, settings: Any) -> float:
    """2 x denoiser parameters x latent tokens x steps x CFG branches, per image."""
    decoder = model.decoder
    params = sum(p.numel() for p in decoder.denoiser.parameters())
    shape = decoder.latent_shape(settings.resolution)
    patch = getattr(getattr(decoder.denoiser, "config", None), "patch_size", None) or 1
    tokens = shape[1] * shape[2] / patch**2
    branches = 2 if settings.guidance_scale > 1.0 else 1
    return 2.0 * params * tokens * settings.num_inference_steps * branches


def peak_flops(device: str, precision: str, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if not device.startswith("cuda"):
        return None
    import torch

    name = torch.cuda.get_device_name()
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks[precision] * 1e12
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--card", default=None, help="model card name or .yaml (default metaquery-smol)")
    source.add_argument("--arch", choices=["metaquery-b"], help="full-size architecture with random weights")
    parser.add_argument("--tiny", action="store_true", help="with --arch: the test-size parts (CPU smoke run)")
    parser.add_argument("--benchmark", default="shapes")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=None, help="default: mqeval's default for the device")
    parser.add_argument("--steps", type=int, default=None, help="override the sampling steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the two loops (best of each)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the precision used")
    parser.add_argument("--cache", type=Path, default=None, help="where --arch builds its random folders")
    args = parser.parse_args()

    from mqeval.generation.acceleration import Acceleration
    from mqeval.generation.batch_size import default_batch_size
    from mqeval.generation.distributed import ProcessGroup
    from mqeval.generation.jobs import make_batches, plan_jobs
    from mqeval.generation.settings import SettingOverrides
    from mqeval.model.loading import load_model
    from mqeval.paths import cache_dir
    from mqeval.evaluation.plan import plan_run

    with tempfile.TemporaryDirectory(prefix="mqeval-bench-") as tmp:
        tmp_path = Path(tmp)
        card = args.card or "metaquery-smol"
        if args.arch:
            card = str(arch_card(args.tiny, args.cache or cache_dir() / "bench", tmp_path))
        plan = plan_run(args.benchmark, card, limit=args.limit,
                        overrides=SettingOverrides(num_inference_steps=args.steps))
        acceleration = Acceleration(precision=args.precision, compile=args.compile)
        device_type = args.device.split(":")[0]
        batch_size = args.batch_size or default_batch_size(args.device, plan.settings.resolution)
        start = time.perf_counter()
        model = acceleration.apply(load_model(plan.card, checkpoint=plan.checkpoint, device=args.device).eval())
        load_s = time.perf_counter() - start
        group = ProcessGroup(args.device)  # set up once, as the CLI does before generating
        jobs = plan_jobs(plan.benchmark, plan.samples, plan.settings, tmp_path / "plan")
        batches = make_batches(jobs, batch_size)
        n = len(jobs)
        print(f"model {plan.card.name}: loaded in {load_s:.1f} s on {args.device}; {n} images "
              f"({len(plan.samples)} prompts x {plan.settings.images_per_prompt}), batch size {batch_size}, "
              f"{plan.settings.num_inference_steps} steps, {plan.settings.resolution} px, "
              f"precision {acceleration.resolved(device_type)}{', compiled' if args.compile else ''}")
        if args.compile:  # compile outside the timed loops
            bare_loop(model, batches[:1], plan.settings, acceleration, device_type)
        bare, run = [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(model, batches, plan.settings, acceleration, device_type))
            run.append(run_loop(model, plan, batch_size, acceleration, group, tmp_path / "run"))
        bare_ips, run_ips = n / min(bare), n / min(run)
        print(f"bare pipeline loop : {bare_ips:8.3f} images/s  (runs: {', '.join(f'{t:.2f}' for t in bare)} s)")
        print(f"mqeval run loop    : {run_ips:8.3f} images/s  (runs: {', '.join(f'{t:.2f}' for t in run)} s)")
        print(f"run / bare         : {run_ips / bare_ips:8.3f}")

        shares = stage_shares(model, plan, batch_size, acceleration, group, tmp_path / "stages")
        total = shares.pop("total")
        print(f"stages of one instrumented run ({total:.2f} s wall, CUDA synchronised around each stage):")
        for stage, seconds in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<26} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")

        flops = flops_per_image(model, plan, acceleration, device_type)
        floor = flop_floor(model, plan.settings)
        print("FLOPs per image (counted, one single-image call): " + ", ".join(
            f"{k} {v / 1e9:.3g} GFLOP" for k, v in flops.items()))
        print(f"floor 2 x denoiser params x tokens x steps x CFG: {floor / 1e9:.3g} GFLOP per image")
        peak = peak_flops(args.device, acceleration.resolved(device_type), args.peak_tflops)
        if peak:
            for label, per_image in (("counted", flops["total"]), ("floor", floor)):
                bound = peak / per_image
                print(f"peak-bound images/s ({label} FLOPs): {bound:.3f}; mqeval run reaches "
                      f"{run_ips / bound:.3f} of it")
        else:
            print("peak FLOP/s unknown for this device: pass --peak-tflops to get the ratio")
        with contextlib.suppress(Exception):
            import torch

            if device_type == "cuda":
                print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
