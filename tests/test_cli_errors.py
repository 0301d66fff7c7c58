"""CLI: user mistakes give one clear line on stderr and exit code 2, never a traceback; help and ls stay light."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers_cli import REPO, mqeval


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_unknown_benchmark_suggests_close_names():
    assert_user_error(mqeval("run", "genevla", "--model", "metaquery-tiny"), "Unknown benchmark 'genevla'",
                      "Did you mean: geneval")


def test_unknown_model_suggests_close_names():
    assert_user_error(mqeval("generate", "shapes", "--model", "metaquery-tny"), "Unknown model 'metaquery-tny'",
                      "metaquery-tiny")


def test_unknown_listing():
    assert_user_error(mqeval("ls", "modles"), "Did you mean: models")


def test_bad_key_in_a_card_file_names_the_key(tmp_path):
    card = tmp_path / "my-card.yaml"
    card.write_text((REPO / "model_zoo" / "metaquery-tiny.yaml").read_text().replace("generation:", "generaton:"))
    assert_user_error(mqeval("run", "shapes", "--model", card), "unknown key(s) 'generaton'",
                      "did you mean 'generation'")


def test_card_without_a_checkpoint_says_how_to_get_one():
    assert_user_error(mqeval("run", "shapes", "--model", "metaquery-b"), "Model 'metaquery-b' has no checkpoint",
                      "mqeval train")


def test_checkpoint_option_must_be_a_checkpoint_folder(tmp_path):
    assert_user_error(mqeval("generate", "shapes", "--model", "metaquery-tiny", "--checkpoint", tmp_path / "nope"),
                      "is not a checkpoint folder")


def test_bad_option_values_are_user_errors(tmp_path):
    assert_user_error(mqeval("generate", "shapes", "--model", "metaquery-tiny", "--limit", "0"), "--limit")


def test_score_needs_the_images(tmp_path):
    assert_user_error(mqeval("score", "shapes", "--images", tmp_path, "--limit", "2"), "missing")


HEAVY = ("torch", "transformers", "diffusers", "accelerate", "pandas", "numpy", "open_clip", "PIL")


@pytest.mark.parametrize("argv", [["--help"], ["ls", "models"], ["ls", "benchmarks"], ["run", "--help"]])
def test_help_and_ls_do_not_import_heavy_packages(argv):
    code = (
        "import sys, json\n"
        "from mqeval.cli import app\n"
        f"sys.argv = ['mqeval', *{argv!r}]\n"
        "try:\n    app()\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        f"print(json.dumps({{'code': code, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, result.stderr


def test_ls_lists_names_with_descriptions_and_variants():
    models = mqeval("ls", "models").stdout.splitlines()
    tiny = next(line for line in models if line.startswith("metaquery-tiny "))
    assert "[random weights]" in tiny
    benchmarks = mqeval("ls", "benchmarks").stdout.splitlines()
    assert any(line.startswith("shapes ") for line in benchmarks)
    assert any(line.startswith("  geneval-rewritten ") and "(variant of geneval)" in line for line in benchmarks)


def test_a_folder_with_images_of_other_settings_is_refused_before_launching(tmp_path):
    (tmp_path / "generation.json").write_text('{"settings": {"seed": 1}}')
    assert_user_error(mqeval("generate", "shapes", "--model", "metaquery-tiny", "--limit", "1", "--num-processes", "2",
                             "--out", tmp_path), "holds images generated with different", "--overwrite")


def test_unknown_device_is_a_user_error(tmp_path):
    assert_user_error(mqeval("generate", "shapes", "--model", "metaquery-tiny", "--limit", "1", "--device", "tpu",
                             "--out", tmp_path), "--device must be cpu or cuda")


def test_python_dash_m_mqeval_is_the_cli():
    result = subprocess.run([sys.executable, "-m", "mqeval", "ls", "models"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "metaquery-tiny " in result.stdout


def test_understanding_suite_runs_through_mqeval_run_and_says_what_it_needs():
    """`mqeval run mme` goes to lmms-eval; without it installed the user is told how to add it."""
    pytest.importorskip("torch")
    try:
        import lmms_eval  # noqa: F401
    except ImportError:
        assert_user_error(mqeval("run", "mme", "--model", "metaquery-tiny-qwen2-5-vl-sana"), "lmms-eval",
                          "mqeval[understanding]")
    else:
        assert_user_error(mqeval("run", "mme", "--model", "metaquery-tiny-qwen2-5-vl-sana"), "tiny://")
