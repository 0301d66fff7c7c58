#!/usr/bin/env bash
# Re-resolve requirements/lock.txt from pyproject.toml's ranges (newest releases that fit), in a fresh virtualenv,
# then run the test suite against it. Commit the new lock only if the suite passes.
# Run from the repository root: bash scripts/refresh_lock.sh
set -euo pipefail
venv=$(mktemp -d /tmp/mqeval-lock.XXXXXX)
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip install --no-deps -r requirements/no-deps.txt
pip install -e '.[dev]'
{
  sed -n '1,3p' requirements/lock.txt
  pip freeze --exclude-editable | grep -v '^mqeval'
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
ruff check && python -m pytest -q
git diff --stat requirements/lock.txt
