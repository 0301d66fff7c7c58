"""A `python` card's factory is found in the working directory (then mqeval's checkout) whatever the entry point,
even when an installed package has the same top-level name (tqdm-multiprocess, pulled in by lmms-eval, installs one
called `examples`). Runs the installed `mqeval` console script, which, unlike `python -m`, puts no working directory
on sys.path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONSOLE = Path(sys.executable).parent / "mqeval"

USER_MODULE = '''
import torch
from PIL import Image


class FlatColours:
    def __call__(self, prompts, *, generators, resolution, **_):
        return [Image.new("RGB", (resolution, resolution), tuple(torch.randint(0, 256, (3,), generator=g).tolist()))
                for g in generators]


def build(device="cpu"):
    return FlatColours()
'''

USER_CARD = """kind: python
description: a user's own factory in a package named like an installed one
python: {factory: "examples.my_model:build"}
checkpoint: {random_init: true}
generation: {resolution: 32, num_inference_steps: 1, guidance_scale: 1.0}
"""


def console(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(CONSOLE), *args], cwd=cwd, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=300)


pytestmark = pytest.mark.skipif(not CONSOLE.is_file(), reason="the mqeval console script is not installed")


def test_user_factory_in_working_directory_wins_over_an_installed_package(tmp_path):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "__init__.py").write_text("")
    (tmp_path / "examples" / "my_model.py").write_text(USER_MODULE)
    (tmp_path / "my-card.yaml").write_text(USER_CARD)
    out = console("run", "shapes", "--model", "my-card.yaml", "--limit", "8", "--out", "run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["benchmark"]["num_samples"] == 8
    assert len(list((tmp_path / "run" / "images").rglob("*.png"))) == 8 * results["generation"]["images_per_prompt"]


def test_worked_example_runs_with_the_console_script_from_the_checkout_root(tmp_path):
    out = console("run", "shapes", "--model", "tiny-python", "--limit", "8", "--out", str(tmp_path / "run"),
                  cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "results.json").is_file()


def test_a_missing_factory_module_is_one_error_line(tmp_path):
    (tmp_path / "card.yaml").write_text(USER_CARD.replace("examples.my_model", "not_here_at_all.mod"))
    out = console("run", "shapes", "--model", "card.yaml", "--limit", "1", "--out", "run", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("Error: model 'card': cannot import 'not_here_at_all.mod'")
    assert "Traceback" not in out.stderr
