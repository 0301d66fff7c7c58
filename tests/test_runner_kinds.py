"""The tiny cards of the other kinds through the real CLI: a scored run whose record names the kind and its weights,
byte-identical images from 1 and 2 processes, and a resume that generates nothing twice."""
from __future__ import annotations

import pytest

from helpers_cli import mqeval
from helpers_runner import png_bytes

from mqeval.results.run import read_run

LIMIT = ("--limit", "2", "--batch-size", "2", "--no-progress")  # 8 images


def test_tiny_python_run_is_scored_and_recorded(tmp_path):
    result = mqeval("run", "shapes", "--model", "tiny-python", *LIMIT, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "random weights" in result.stderr and "shapes | tiny-python | 2 samples" in result.stdout
    record = read_run(tmp_path).record
    assert record.model.card == "tiny-python" and record.model.random_init
    assert record.model.config["kind"] == "python"
    assert record.model.config["python"]["factory"] == "mqeval_examples.tiny_python_model:build"
    assert record.generation["resolution"] == 32 and record.generation["num_inference_steps"] == 4


@pytest.mark.slow
def test_tiny_diffusers_run_records_the_pipeline_it_loaded(tmp_path):
    result = mqeval("run", "shapes", "--model", "tiny-diffusers", *LIMIT, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    record = read_run(tmp_path).record
    assert record.model.config["kind"] == "diffusers"
    assert record.model.config["diffusers"]["model_id"] == "tiny://sd15_pipeline"
    assert record.model.checkpoint and record.model.checkpoint.endswith("sd15_pipeline")  # the folder it loaded


@pytest.mark.slow
@pytest.mark.parametrize("card", ["tiny-diffusers", "tiny-python"])
def test_two_processes_write_the_images_of_one_and_a_rerun_generates_none(tmp_path, card):
    one = mqeval("generate", "shapes", "--model", card, *LIMIT, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = mqeval("generate", "shapes", "--model", card, *LIMIT, "--num-processes", "2", "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    images = png_bytes(tmp_path / "one" / "images")
    assert len(images) == 8 and images == png_bytes(tmp_path / "two" / "images")
    again = mqeval("generate", "shapes", "--model", card, *LIMIT, "--out", tmp_path / "two")
    assert again.returncode == 0 and "(0 generated, 8 already there)" in again.stderr


@pytest.mark.slow
def test_two_processes_at_the_default_thread_count_write_the_images_of_one(tmp_path):
    """Without OMP_NUM_THREADS one process computes on every core; each of K workers gets that same count, because
    CPU convolutions may round differently with another thread count (diffusers' UNet does)."""
    def generate(*extra: str, out):
        return mqeval("generate", "shapes", "--model", "tiny-diffusers", *LIMIT, *extra, "--out", out,
                      unset=("OMP_NUM_THREADS", "MKL_NUM_THREADS"))

    assert generate(out=tmp_path / "one").returncode == 0
    two = generate("--num-processes", "2", out=tmp_path / "two")
    assert two.returncode == 0, two.stderr
    images = png_bytes(tmp_path / "one" / "images")
    assert len(images) == 8 and images == png_bytes(tmp_path / "two" / "images")


@pytest.mark.slow
def test_a_resume_with_another_card_is_refused(tmp_path):
    first = mqeval("generate", "shapes", "--model", "tiny-python", "--limit", "1", "--out", tmp_path)
    assert first.returncode == 0, first.stderr
    other = mqeval("generate", "shapes", "--model", "tiny-diffusers", "--limit", "1", "--out", tmp_path)
    assert other.returncode == 2 and "different model" in other.stderr


@pytest.mark.slow
@pytest.mark.parametrize("card", ["tiny-janus", "tiny-emu3"])
def test_tiny_transformers_card_generates_a_benchmark_sample(tmp_path, card):
    result = mqeval("generate", "shapes", "--model", card, "--limit", "1", "--no-progress", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    images = png_bytes(tmp_path / "images")
    assert len(images) == 4 and len(set(images.values())) == 4
