"""The condition once per distinct prompt: backbone rows per run, memo invalidation, images as before."""
from __future__ import annotations

import pytest
import torch

from mqeval.generation.sharded_writer import generate
from mqeval.generation.settings import GenerationSettings
from mqeval.model.loading import load_model
from mqeval.model.metaquery import Condition
from mqeval.model.pipeline import MetaQueryPipeline, pad_and_stack
from mqeval.model.row_memo import RowMemo, dedupe
from mqeval.zoo import load_card

from helpers_runner import FakeBenchmark, FakeGroup, png_bytes


@pytest.fixture(scope="module")
def model():
    return load_model(load_card("metaquery-tiny")).eval()


def count_backbone_rows(model) -> tuple[list[int], object]:
    rows: list[int] = []
    handle = model.backbone.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    return rows, handle


class RepeatedPrompts(FakeBenchmark):
    """Samples whose prompts repeat (two samples share each text), so dedup across samples is exercised too."""

    def samples(self, data_dir=None):
        return [s.__class__(sample_id=s.sample_id, index=s.index, prompt=f"a photo of {s.index // 2} circles")
                for s in super().samples()]


def settings(images_per_prompt: int) -> GenerationSettings:
    return GenerationSettings(seed=3, images_per_prompt=images_per_prompt, guidance_scale=3.0,
                              image_guidance_scale=1.0, num_inference_steps=2, scheduler="default", resolution=32)


@pytest.mark.parametrize("batch_size", [3, 8])
def test_backbone_rows_per_run_equal_distinct_texts(tmp_path, model, batch_size):
    bench = RepeatedPrompts(num_samples=6, images_per_prompt=4)
    samples = bench.samples()
    rows, handle = count_backbone_rows(model)
    try:
        report = generate(bench, samples, model, settings(4), tmp_path, batch_size=batch_size, group=FakeGroup(),
                          progress=False)
    finally:
        handle.remove()
    distinct = len({s.prompt for s in samples}) + 1  # + the empty negative prompt
    assert report.num_written == 24
    assert sum(rows) == distinct == 4 and all(r == 1 for r in rows)


def per_image_reference(model, prompts, generators, **kwargs):
    """What the pipeline computed before the memo: every branch encoded per image, in one backbone call."""
    pipe = MetaQueryPipeline(model)

    class PerImage:
        def states(self, texts, input_images=None):
            tokens = model.query_tokens
            return model.backbone(list(texts), input_images, tokens.queries, tokens.markers)

    pipe.conditions = PerImage()
    return pipe(prompts, generators=generators, **kwargs).images


def test_images_match_per_image_encoding_when_a_batch_holds_one_prompt(model):
    prompts = ["a photo of a red circle"] * 4
    kwargs = dict(guidance_scale=3.0, num_inference_steps=2)
    seeds = [torch.Generator().manual_seed(i) for i in range(4)]
    expected = per_image_reference(model, prompts, seeds, **kwargs)
    pipe = MetaQueryPipeline(model)
    seeds = [torch.Generator().manual_seed(i) for i in range(4)]
    got = pipe(prompts, generators=seeds, **kwargs).images
    assert [im.tobytes() for im in got] == [im.tobytes() for im in expected]


def test_memo_is_cleared_when_weights_change(model):
    pipe = MetaQueryPipeline(model)
    rows, handle = count_backbone_rows(model)
    try:
        pipe(["a blue square"], generators=[torch.Generator().manual_seed(0)], num_inference_steps=1)
        pipe(["a blue square"], generators=[torch.Generator().manual_seed(0)], num_inference_steps=1)
        assert sum(rows) == 2  # prompt + negative, once
        with torch.no_grad():
            model.query_tokens.queries.add_(0.0)  # an in-place update, as an optimizer step makes
        pipe(["a blue square"], generators=[torch.Generator().manual_seed(0)], num_inference_steps=1)
        assert sum(rows) == 4
    finally:
        handle.remove()


def test_image_inputs_are_keyed_by_content(model):
    from PIL import Image

    from mqeval.model.condition_memo import condition_keys

    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    a, b, c, d = condition_keys(["x", "x", "x", "y"], [[red], [red.copy()], [blue], [red]])
    assert a == b and a != c and a != d


def test_row_memo_fill_dedupes_and_counts():
    memo: RowMemo[str, int] = RowMemo(max_entries=2)
    calls = []
    encode = lambda missing: calls.append(list(missing)) or [len(k) for k in missing]  # noqa: E731
    assert memo.fill(["aa", "b", "aa"], encode) == [2, 1, 2] and calls == [["aa", "b"]]
    assert memo.fill(["b", "ccc"], encode) == [1, 3] and calls[-1] == ["ccc"]
    assert len(memo) == 2 and "aa" not in memo  # least recently used went first
    assert (memo.hits, memo.misses) == (2, 3)
    assert dedupe(["x", "y", "x"]) == (["x", "y"], [0, 1, 0])


def test_pad_and_stack_keeps_rows():
    a = Condition(hidden=torch.ones(1, 2, 3), mask=torch.ones(1, 2, dtype=torch.bool))
    b = Condition(hidden=torch.ones(2, 3, 3), mask=torch.ones(2, 3, dtype=torch.bool))
    out = pad_and_stack([a, b])
    assert out.hidden.shape == (3, 3, 3) and out.mask.sum().item() == 2 + 6


def test_run_images_unchanged_by_the_prefetch_and_writer(tmp_path, model):
    bench = FakeBenchmark(num_samples=3, images_per_prompt=2)
    generate(bench, bench.samples(), model, settings(2), tmp_path / "a", batch_size=2, group=FakeGroup(),
             progress=False)
    pipe = MetaQueryPipeline(model)
    from mqeval.generation.jobs import plan_jobs

    jobs = plan_jobs(bench, bench.samples(), settings(2), tmp_path / "b")
    images = pipe([j.sample.prompt for j in jobs], generators=[torch.Generator().manual_seed(j.seed) for j in jobs],
                  guidance_scale=3.0, num_inference_steps=2, resolution=32, batch_size=2).images
    written = png_bytes(tmp_path / "a" / "images")
    for job, image in zip(jobs, images):
        relative = job.path.relative_to(tmp_path / "b").as_posix()
        assert written[relative] == png_of(image)


def png_of(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
