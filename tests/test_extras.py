"""A feature whose optional dependency is missing says which extra installs it, in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mqeval.errors import UserError
from mqeval.extras import MissingExtraError, require

REPO = Path(__file__).resolve().parent.parent


def test_a_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingExtraError) as caught:
        require("pandas", "reports", "The paper tables")
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert message.startswith("The paper tables needs `pandas`") and "pip install 'mqeval[reports]'" in message


def test_the_report_command_says_so_without_a_traceback():
    code = ("import sys\nsys.modules['pandas'] = None\nfrom mqeval.cli import app\n"
            "sys.argv = ['mqeval', 'report', 'paper', '--table', '1', '--no-ci', '--no-figures']\napp()\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: The paper tables needs `pandas`, which the `reports` extra installs: pip install 'mqeval[reports]' "
        "(import of pandas halted; None in sys.modules)"]


def test_an_installed_module_is_returned():
    assert require("json", "core", "anything").dumps([1]) == "[1]"
