"""A table of bad inputs a realistic user can give the command line: cards, option values, folders, damaged images,
checkpoints and run records, dead or refusing judge endpoints.

Every row ends either in one `Error:` line naming the problem and a non-zero exit code (`error=`), or in exit 0 with
a result that counts and names what was wrong (`counted=`). No row may print a traceback or exit 0 with a result
that hides the problem. Rows run in this process (mqeval.cli's own error handling, tests/helpers_cli_inprocess.py);
one tiny run, one tiny checkpoint and one folder of correct shapes images are built once and copied per row.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import yaml
from PIL import Image

import mqeval.benchmarks.catalog as registry
from fake_openai_server import FakeOpenAIServer, Reply
from helpers_cli_inprocess import closed_port, run_cli
from mqeval.paths import MODEL_ZOO_DIR
from test_wise import use_standins, write_standins

TINY = "metaquery-tiny"


@dataclass
class World:
    root: Path
    run: Path  # a real metaquery-tiny shapes run of 1 prompt (4 images)
    checkpoint: Path  # a saved metaquery-tiny checkpoint
    shapes: Path  # a plain folder of correct images of shapes prompts 0 and 1, GenEval layout with metadata.jsonl
    standins: Path  # WISE data stand-ins
    server: FakeOpenAIServer  # answers every WISE request


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from mqeval.benchmarks.shapes.world import draw_scene, scene_for_metadata
    from mqeval.model.loading import load_model
    from mqeval.zoo import load_card

    root = tmp_path_factory.mktemp("bad-inputs")
    patch = pytest.MonkeyPatch()
    patch.setenv("MQEVAL_CACHE", str(root / "cache"))
    standins = write_standins(root / "wise-data")
    use_standins(patch, standins)
    result = run_cli("run", "shapes", "--model", TINY, "--limit", 1, "--out", root / "run", "--no-progress")
    assert result.code == 0, result.stderr
    load_model(load_card(TINY)).save_pretrained(root / "checkpoint")

    shapes = root / "shapes"
    bench = registry.load_benchmark("shapes")
    for sample in bench.samples()[:2]:
        bench.finalize(shapes, [sample])
        for j in range(4):
            path = bench.image_path(shapes, sample, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_scene(scene_for_metadata(sample.metadata, np.random.default_rng(10 * sample.index + j), 64)).save(path)
    with FakeOpenAIServer(answer=lambda r: "Consistency: 2\nRealism: 1\nAesthetic Quality: 0") as server:
        yield World(root, root / "run", root / "checkpoint", shapes, standins, server)
    patch.undo()


# ---------------------------------------------------------------- building blocks of the rows
def card(tmp: Path, change: Callable[[dict], None] | str) -> Path:
    path = tmp / "my-card.yaml"
    if isinstance(change, str):
        path.write_text(change)
        return path
    data = yaml.safe_load((MODEL_ZOO_DIR / f"{TINY}.yaml").read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


def base() -> list:
    return ["generate", "shapes", "--model", TINY]


def gen(tmp: Path, *extra) -> list:
    return [*base(), "--limit", 1, "--out", tmp / "out", "--no-progress", *extra]


def with_card(change) -> Callable:
    return lambda w, tmp: ["generate", "shapes", "--model", card(tmp, change), "--limit", 1, "--out", tmp / "o"]


def setting(key: str, value) -> Callable:
    return with_card(lambda d: d.setdefault("generation", {}).__setitem__(key, value))


def run_copy(w: World, tmp: Path, change: Callable[[Path], None] = lambda run: None) -> Path:
    run = tmp / "run"
    shutil.copytree(w.run, run)
    change(run)
    return run


def score_run(change: Callable[[Path], None], *extra) -> Callable:
    return lambda w, tmp: ["score", "shapes", "--images", run_copy(w, tmp, change), "--limit", 1, *extra]


def report_run(change: Callable[[Path], None]) -> Callable:
    return lambda w, tmp: ["report", "runs", run_copy(w, tmp, change), "--no-ci"]


def edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        data = json.loads((run / name).read_text())
        out = change(data)
        (run / name).write_text(json.dumps(data if out is None else out))
    return apply


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (run / name).write_bytes(data)
    return apply


def edit_lines(name: str, change: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        lines = (run / name).read_text().splitlines()
        (run / name).write_text("\n".join(change(lines)) + "\n")
    return apply


def checkpoint(change: Callable[[Path], None]) -> Callable:
    def build(w: World, tmp: Path) -> list:
        folder = tmp / "ckpt"
        shutil.copytree(w.checkpoint, folder)
        change(folder)
        return gen(tmp, "--checkpoint", folder)
    return build


FIRST_IMAGE = "00000/samples/0000.png"


def png_bytes(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **{"format": "PNG", **save})
    return buffer.getvalue()


def shapes_image(change: Callable[[Image.Image, bytes], bytes], *extra, limit: int = 1) -> Callable:
    """score shapes on a copy of the correct folder whose first image is replaced by change(image, its bytes)."""
    def build(w: World, tmp: Path) -> list:
        folder = tmp / "shapes"
        shutil.copytree(w.shapes, folder)
        path = folder / FIRST_IMAGE
        with Image.open(path) as image:
            data = change(image.convert("RGB"), path.read_bytes())
        path.write_bytes(data)
        return ["score", "shapes", "--images", folder, "--limit", limit, "--out", tmp / "results", *extra]
    return build


def corrupt_idat(image: Image.Image, data: bytes) -> bytes:
    start = data.index(b"IDAT") + 8
    return data[:start] + bytes(b ^ 0x5A for b in data[start:start + 16]) + data[start + 16:]


def wise(w: World, tmp: Path, url: str, *extra, images: int = 2) -> list:
    """score wise on `images` images (prompts 1..images) against the judge at `url`."""
    out = tmp / "wise"
    (out / "cultural_common_sense").mkdir(parents=True)
    for pid in range(1, images + 1):
        Image.new("RGB", (32, 32), (pid, 90, 0)).save(out / "cultural_common_sense" / f"{pid}.png")
    return ["score", "wise", "--images", out, "--judge-base-url", url, "--judge-model", "X", "--data-dir", w.standins,
            "--limit", images, "--out", tmp / "results", *extra]


def refusing_server(*replies: Reply, images: int = 2) -> Callable:
    def build(w: World, tmp: Path) -> list:
        w.server.script[:] = list(replies)
        return wise(w, tmp, w.server.base_url, images=images)
    return build


def lock_held(w: World, tmp: Path) -> list:
    """A run folder whose lock is held by another live process (this test's own, through a second descriptor)."""
    import fcntl

    out = tmp / "out"
    out.mkdir()
    fd = os.open(out / ".mqeval.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": 4242, "host": "elsewhere", "token": "t"}).encode())
    HELD.append(fd)  # the lock is per open file: a second open in this process cannot take it
    return gen(tmp)


HELD: list[int] = []


def replace_first_image(size: int) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        path = run / "images" / FIRST_IMAGE
        with Image.open(path) as image:
            image.resize((size, size), Image.NEAREST).save(path)
    return apply


# ---------------------------------------------------------------- checks of counted (exit 0) rows
def issue(kind: str, count: int = 1, incomplete: bool = True) -> Callable[[dict, list, str], None]:
    def check(results: dict, samples: list, stderr: str) -> None:
        assert results["image_issues"].get(kind) == count, results["image_issues"]
        assert bool(results["incomplete"]) == incomplete, results["incomplete"]
        assert any(i["issue"] == kind for i in samples[0].get("image_issues", [])), samples[0]
        assert f"image(s) {kind.replace('_', ' ')}" in stderr or kind.replace("_", " ") in stderr
    return check


def relabelled(results: dict, samples: list, stderr: str) -> None:
    assert results["model"]["card"] is None and results["generation"] is None
    assert "not the ones generated" in stderr


def reordered(results: dict, samples: list, stderr: str) -> None:
    assert results["metrics"]["overall"] == 1.0 and not results["incomplete"]
    assert "another order" in stderr


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[World, Path], list]
    error: Optional[str] = None  # expected in the Error line
    counted: Optional[Callable[[dict, list, str], None]] = None  # checks results.json, samples.jsonl, stderr

    def __post_init__(self):
        assert (self.error is None) != (self.counted is None), self.name


def _swap_prompt_folders(w: World, tmp: Path) -> list:
    folder = tmp / "shapes"
    shutil.copytree(w.shapes, folder)
    (folder / "00000").rename(folder / "tmp")
    (folder / "00001").rename(folder / "00000")
    (folder / "tmp").rename(folder / "00001")
    return ["score", "shapes", "--images", folder, "--limit", 2, "--out", tmp / "results"]


CASES = [
    # ---- names and option values
    Case("unknown benchmark", lambda w, t: ["run", "genevla", "--model", TINY], error="Did you mean: geneval"),
    Case("unknown model", lambda w, t: ["generate", "shapes", "--model", "metaquery-tny"], error="metaquery-tiny"),
    Case("unknown listing", lambda w, t: ["ls", "modles"], error="Did you mean: models"),
    Case("empty model name", lambda w, t: ["generate", "shapes", "--model", ""], error="Unknown model ''"),
    Case("card file that does not exist", lambda w, t: ["generate", "shapes", "--model", t / "nope.yaml"],
         error="Unknown model"),
    Case("limit 0", lambda w, t: base() + ["--limit", 0], error="--limit must be at least 1"),
    Case("limit negative", lambda w, t: base() + ["--limit", -3], error="--limit must be at least 1"),
    Case("limit not a number", lambda w, t: base() + ["--limit", "abc"], error="Invalid value for '--limit'"),
    Case("batch size 0", lambda w, t: gen(t, "--batch-size", 0), error="--batch-size must be at least 1"),
    Case("batch size negative", lambda w, t: gen(t, "--batch-size", -2), error="--batch-size must be at least 1"),
    Case("batch size not a number", lambda w, t: gen(t, "--batch-size", "x"), error="Invalid value for '--batch-size'"),
    Case("processes 0", lambda w, t: gen(t, "--num-processes", 0), error="--num-processes must be at least 1"),
    Case("unknown device", lambda w, t: gen(t, "--device", "tpu"), error="--device must be cpu or cuda"),
    Case("guidance nan", lambda w, t: gen(t, "--guidance-scale", "nan"), error="guidance_scale must be a finite"),
    Case("guidance inf", lambda w, t: gen(t, "--guidance-scale", "inf"), error="guidance_scale must be a finite"),
    Case("guidance -inf", lambda w, t: gen(t, "--guidance-scale", "-inf"), error="guidance_scale must be a finite"),
    Case("guidance negative", lambda w, t: gen(t, "--guidance-scale", -1), error="guidance_scale must be between"),
    Case("guidance huge", lambda w, t: gen(t, "--guidance-scale", 1e9), error="guidance_scale must be between"),
    Case("guidance text", lambda w, t: gen(t, "--guidance-scale", "high"),
         error="Invalid value for '--guidance-scale'"),
    Case("steps 0", lambda w, t: gen(t, "--num-inference-steps", 0), error="num_inference_steps must be between"),
    Case("steps negative", lambda w, t: gen(t, "--num-inference-steps", -5), error="num_inference_steps must be"),
    Case("steps huge", lambda w, t: gen(t, "--num-inference-steps", 10 ** 6), error="num_inference_steps must be"),
    Case("seed negative", lambda w, t: gen(t, "--seed", -1), error="seed must be between"),
    Case("seed over 63 bits", lambda w, t: gen(t, "--seed", 2 ** 64), error="seed must be between"),
    Case("misspelled option", lambda w, t: gen(t, "--limt", 3), error="No such option"),
    Case("missing --model", lambda w, t: ["generate", "shapes"], error="Missing option '--model'"),
    Case("extra argument", lambda w, t: gen(t, "extra"), error="unexpected extra argument"),
    Case("checkpoint folder missing", lambda w, t: gen(t, "--checkpoint", t / "nope"),
         error="is not a checkpoint folder"),
    Case("card without checkpoint", lambda w, t: ["run", "shapes", "--model", "metaquery-b"],
         error="Model 'metaquery-b' has no checkpoint"),
    # ---- folders
    Case("--out is a file", lambda w, t: (t / "f").write_text("x") and base() + ["--out", t / "f"],
         error="is a file"),
    Case("--out under a file", lambda w, t: (t / "f").write_text("x") and base() + ["--out", t / "f" / "run"],
         error="cannot create the run folder"),
    Case("--out in /proc", lambda w, t: base() + ["--out", "/proc/mqeval-test/run"],
         error="cannot create the run folder"),
    Case("score: --images missing", lambda w, t: ["score", "shapes", "--images", t / "nope"], error="is not a folder"),
    Case("score: --images is a file", lambda w, t: (t / "f").write_text("x") and
         ["score", "shapes", "--images", t / "f"], error="is not a folder"),
    Case("score: empty folder", lambda w, t: ["score", "shapes", "--images", t, "--limit", 2],
         error="images of shapes are missing"),
    Case("score: limit 0", lambda w, t: ["score", "shapes", "--images", w.shapes, "--limit", 0], error="--limit"),
    Case("score: --out is a file", lambda w, t: (t / "f").write_text("x") and
         ["score", "shapes", "--images", w.shapes, "--limit", 1, "--out", t / "f"], error="is a file"),
    Case("score: unknown benchmark", lambda w, t: ["score", "shape", "--images", w.shapes], error="Did you mean"),
    Case("report: no such folder", lambda w, t: ["report", "runs", t / "nope"], error="No such runs folder"),
    Case("report: --out in /proc", lambda w, t: ["report", "runs", w.run, "--no-ci", "--out", "/proc/x/t.md"],
         error="No such file or directory"),
    Case("run folder locked by another writer", lock_held, error="is being written by process 4242 on elsewhere"),
    # ---- model cards
    Case("card: invalid YAML", lambda w, t: ["generate", "shapes", "--model", card(t, "model: [")],
         error="is not valid YAML"),
    Case("card: a list", lambda w, t: ["generate", "shapes", "--model", card(t, "- a\n- b\n")],
         error="must hold a mapping"),
    Case("card: empty file", lambda w, t: ["generate", "shapes", "--model", card(t, "")],
         error="needs a `model:` block"),
    Case("card: unknown key", with_card(lambda d: d.__setitem__("generaton", {})), error="unknown key(s) 'generaton'"),
    Case("card: model is text", with_card(lambda d: d.__setitem__("model", "big")), error="expected a mapping"),
    Case("card: guidance text", setting("guidance_scale", "high"), error="expected float"),
    Case("card: guidance nan", setting("guidance_scale", float("nan")), error="guidance_scale must be a finite"),
    Case("card: guidance inf", setting("guidance_scale", float("inf")), error="guidance_scale must be a finite"),
    Case("card: guidance negative", setting("guidance_scale", -1.0), error="guidance_scale must be between"),
    Case("card: image guidance nan", setting("image_guidance_scale", float("nan")),
         error="image_guidance_scale must be a finite"),
    Case("card: steps 0", setting("num_inference_steps", 0), error="num_inference_steps must be between"),
    Case("card: steps fractional", setting("num_inference_steps", 2.5), error="expected int"),
    Case("card: resolution 7", setting("resolution", 7), error="resolution must be between"),
    Case("card: resolution huge", setting("resolution", 100000), error="resolution must be between"),
    Case("card: resolution text", setting("resolution", "big"), error="expected int, got str 'big'"),
    Case("card: unknown scheduler", setting("scheduler", "magic"), error="'magic' is not one of"),
    Case("card: decoder resolution 4", with_card(lambda d: d["model"]["decoder"].__setitem__("resolution", 4)),
         error="resolution must be between"),
    Case("card: base loops", lambda w, t: (t / "loop-b.yaml").write_text("base: my-card\n") and
         ["generate", "shapes", "--model", card(t, "base: loop-b\n")], error="inheritance loops"),
    Case("card: unknown base", lambda w, t: ["generate", "shapes", "--model", card(t, "base: nowhere\n")],
         error="Unknown model 'nowhere'"),
    Case("card: base not a name", lambda w, t: ["generate", "shapes", "--model", card(t, "base: 3\n")],
         error="must name another"),
    Case("card: checkpoint folder missing",
         with_card(lambda d: d.__setitem__("checkpoint", {"path": "/nonexistent/ckpt"})), error="has no checkpoint"),
    Case("card: checkpoint sha256 wrong", lambda w, t: ["generate", "shapes", "--model", card(
        t, lambda d: d.__setitem__("checkpoint", {"path": str(w.checkpoint), "sha256": "0" * 64})), "--limit", 1,
        "--out", t / "o"], error="pins"),
    # ---- damaged checkpoints
    Case("checkpoint: config.json not JSON", checkpoint(write("config.json", "{nope")), error="cannot be loaded from"),
    Case("checkpoint: config.json a list", checkpoint(write("config.json", "[]")), error="cannot be loaded from"),
    Case("checkpoint: weights random bytes", checkpoint(write("model.safetensors", os.urandom(4096))),
         error="cannot be loaded from"),
    Case("checkpoint: weights empty", checkpoint(write("model.safetensors", b"")), error="cannot be loaded from"),
    Case("checkpoint: weights truncated", checkpoint(lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[:300])), error="cannot be loaded from"),
    Case("checkpoint: pickle only", checkpoint(lambda f: (f / "model.safetensors").rename(f / "model.bin")),
         error="never unpickles"),
    Case("checkpoint: other architecture", checkpoint(edit_json(
        "config.json", lambda d: d["config"]["condition"].__setitem__("num_queries", 4))),
        error="another architecture"),
    # ---- run records
    Case("generation.json not JSON", score_run(write("generation.json", "{")), error="generation.json is damaged"),
    Case("generation.json a list", score_run(write("generation.json", "[]")), error="is not a generation record"),
    Case("generation.json guidance nan", score_run(edit_json(
        "generation.json", lambda d: d["settings"].__setitem__("guidance_scale", float("nan")))),
        error="guidance_scale must be a finite"),
    Case("generation.json steps 0", score_run(edit_json(
        "generation.json", lambda d: d["settings"].__setitem__("num_inference_steps", 0))),
        error="num_inference_steps must be between"),
    Case("generation.json unknown setting", score_run(edit_json(
        "generation.json", lambda d: d["settings"].__setitem__("cfg", 3))), error="unknown key(s) 'cfg'"),
    Case("generation.json of another benchmark", score_run(edit_json(
        "generation.json", lambda d: d["benchmark"].__setitem__("name", "geneval"))),
        error="holds images of benchmark 'geneval'"),
    Case("score --model relabels another card's run", score_run(lambda r: None, "--model", "metaquery-smol"),
         error="would label them as another model's"),
    Case("generation.json deleted, run again", lambda w, t: base() + ["--out", run_copy(
        w, t, lambda r: (r / "generation.json").unlink())], error="holds images but no generation.json"),
    Case("run again with another batch size", lambda w, t: base() + ["--out", run_copy(w, t), "--batch-size", 1],
         error="different batch_size"),
    Case("run again with another seed", lambda w, t: base() + ["--out", run_copy(w, t), "--seed", 5],
         error="different settings"),
    Case("results.json not JSON", report_run(write("results.json", "{")), error="is not valid JSON"),
    Case("results.json other schema", report_run(edit_json("results.json",
                                                           lambda d: d.__setitem__("schema_version", 99))),
         error="schema_version 99"),
    Case("results.json unknown key", report_run(edit_json("results.json", lambda d: d.__setitem__("extra", 1))),
         error="unknown key(s) 'extra'"),
    Case("samples.jsonl line deleted", report_run(edit_lines("samples.jsonl", lambda lines: lines[1:])),
         error="has 0 samples but results.json records 1"),
    Case("samples.jsonl line duplicated", report_run(edit_lines("samples.jsonl", lambda lines: lines + lines)),
         error="more than once"),
    Case("samples.jsonl not JSON", report_run(edit_lines("samples.jsonl", lambda lines: ["{"])),
         error="is not valid JSON"),
    Case("images.sha256 garbage", score_run(write("images.sha256", "garbage\n")), counted=relabelled),
    Case("image replaced by hand", score_run(replace_first_image(32 * 2)), counted=relabelled),
    Case("image replaced, --strict", score_run(lambda r: (r / "images" / FIRST_IMAGE).unlink(), "--strict"),
         error="--strict: 1 image(s)"),
    # ---- images that cannot be used, or are not what the protocol expects (scored as counted failures)
    Case("truncated PNG", shapes_image(lambda im, data: data[: len(data) // 2]), counted=issue("unreadable")),
    Case("text file named .png", shapes_image(lambda im, data: b"not an image"), counted=issue("unreadable")),
    Case("0-byte file", shapes_image(lambda im, data: b""), counted=issue("unreadable")),
    Case("CRC-corrupted PNG", shapes_image(corrupt_idat), counted=issue("unreadable")),
    Case("random bytes", shapes_image(lambda im, data: os.urandom(2048)), counted=issue("unreadable")),
    Case("PNG signature, then junk", shapes_image(lambda im, data: data[:8] + os.urandom(200)),
         counted=issue("unreadable")),
    Case("8 px image", shapes_image(lambda im, data: png_bytes(im.resize((8, 8)))), counted=issue("too_small")),
    Case("JPEG bytes in a .png", shapes_image(lambda im, data: png_bytes(im, format="JPEG")),
         counted=issue("other_format", incomplete=False)),
    Case("CMYK JPEG in a .png", shapes_image(lambda im, data: png_bytes(im.convert("CMYK"), format="JPEG")),
         counted=issue("converted", incomplete=False)),
    Case("mode L", shapes_image(lambda im, data: png_bytes(im.convert("L"))), counted=issue("converted", 1, False)),
    Case("mode P", shapes_image(lambda im, data: png_bytes(im.convert("P"))), counted=issue("converted", 1, False)),
    Case("mode I;16", shapes_image(lambda im, data: png_bytes(im.convert("L").convert("I;16"))),
         counted=issue("converted", 1, False)),
    Case("mode 1", shapes_image(lambda im, data: png_bytes(im.convert("1"))), counted=issue("converted", 1, False)),
    Case("mode RGBA", shapes_image(lambda im, data: png_bytes(im.convert("RGBA"))),
         counted=issue("converted", 1, False)),
    Case("256 px among 64 px images", shapes_image(lambda im, data: png_bytes(im.resize((256, 256), Image.NEAREST))),
         counted=issue("resized", 1, False)),
    Case("image missing", lambda w, t: _without_first(w, t), counted=issue("missing")),
    Case("every image unreadable", lambda w, t: _all_broken(w, t), error="nothing could be scored"),
    Case("missing image with --strict", lambda w, t: _without_first(w, t) + ["--strict"],
         error="--strict: 1 image(s) of shapes are missing"),
    Case("prompt folders in another order", _swap_prompt_folders, counted=reordered),
    Case("metadata.jsonl unreadable", lambda w, t: _metadata(w, t, "{not json"), counted=issue("wrong_prompt", 4)),
    Case("metadata.jsonl of a prompt not in the run", lambda w, t: _metadata(
        w, t, json.dumps({"prompt": "a photo of a cat", "tag": "single_object", "include": []})),
        counted=issue("wrong_prompt", 4)),
    # ---- judge endpoints
    Case("judge: closed port", lambda w, t: wise(w, t, f"http://127.0.0.1:{closed_port()}/v1"),
         error="cannot be reached"),
    Case("judge: credentials never printed", lambda w, t: wise(w, t, f"http://user:s3cret@127.0.0.1:{closed_port()}/v1"),
         error="http://127.0.0.1:"),
    Case("judge: unknown host", lambda w, t: wise(w, t, "http://no-such-host.invalid/v1"), error="cannot be reached"),
    Case("judge: not http", lambda w, t: wise(w, t, "ftp://127.0.0.1/v1"), error="must be an http(s) URL"),
    Case("judge: not a URL", lambda w, t: wise(w, t, "judge-server"), error="must be an http(s) URL"),
    Case("judge: bad port", lambda w, t: wise(w, t, "http://127.0.0.1:99999999/v1"), error="invalid port"),
    Case("judge: 401", refusing_server(Reply(status=401)), error="refused the request (HTTP 401)"),
    Case("judge: 403", refusing_server(Reply(status=403)), error="refused the request (HTTP 403)"),
    Case("judge: 404", refusing_server(Reply(status=404)), error="HTTP 404"),
    Case("judge: 500 every time", refusing_server(*[Reply(status=500, headers={"retry-after-ms": "1"})] * 20, images=5),
         error="failed 4 requests in a row"),
    Case("judge: not chat-completions JSON", refusing_server(*[Reply(body=b"<html>")] * 5, images=5),
         error="failed 4 requests in a row"),
    Case("run: judge down before generation", lambda w, t: [
        "run", "wise", "--model", TINY, "--limit", 1, "--out", t / "o", "--data-dir", w.standins,
        "--judge-base-url", f"http://127.0.0.1:{closed_port()}/v1", "--judge-model", "X"],
        error="so nothing was generated"),
    Case("run: judge refuses before generation", lambda w, t: (w.server.script.__setitem__(
        slice(None), [Reply(status=401)]) or True) and [
        "run", "wise", "--model", TINY, "--limit", 1, "--out", t / "o", "--data-dir", w.standins,
        "--judge-base-url", w.server.base_url, "--judge-model", "X"], error="so nothing was generated"),
    Case("run: scorer weights missing", lambda w, t: [
        "run", "geneval", "--model", TINY, "--limit", 1, "--out", t / "o", "--weights-path", t / "no-weights"],
        error="so nothing was generated"),
]


def _without_first(w: World, tmp: Path) -> list:
    argv = shapes_image(lambda im, data: data)(w, tmp)
    (tmp / "shapes" / FIRST_IMAGE).unlink()
    return argv


def _all_broken(w: World, tmp: Path) -> list:
    argv = shapes_image(lambda im, data: b"")(w, tmp)
    for path in (tmp / "shapes" / "00000" / "samples").glob("*.png"):
        path.write_bytes(b"")
    return argv


def _metadata(w: World, tmp: Path, text: str) -> list:
    argv = shapes_image(lambda im, data: data, limit=2)(w, tmp)
    (tmp / "shapes" / "00000" / "metadata.jsonl").write_text(text)
    return argv


def test_the_table_is_large():
    assert len(CASES) >= 100 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path):
    argv = case.build(world, tmp_path)
    try:
        result = run_cli(*argv)
    finally:
        while HELD:
            os.close(HELD.pop())
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    if case.error is not None:
        assert result.code != 0, f"exit 0 for a bad input; stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
        assert result.last_line.startswith("Error: "), result.stderr
        assert case.error in result.last_line, result.stderr
        return
    assert result.code == 0, result.stderr
    results_dir = next(d for d in (tmp_path / "results", tmp_path / "run") if (d / "results.json").is_file())
    results = json.loads((results_dir / "results.json").read_text())
    samples = [json.loads(line) for line in (results_dir / "samples.jsonl").read_text().splitlines()]
    case.counted(results, samples, result.stderr)
