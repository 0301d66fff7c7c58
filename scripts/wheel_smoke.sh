#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it (with the `reports` extra, from the lock) into a clean
# virtualenv, then, from an empty folder outside the checkout, list the models and benchmarks, run `shapes` on
# metaquery-tiny and print the paper's Tables 1-7; last, check that nothing was written inside site-packages.
# Run from the repository root: bash scripts/wheel_smoke.sh
set -euo pipefail
root=$(pwd)
work=$(mktemp -d /tmp/mqeval-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT

pip wheel --no-deps --quiet --wheel-dir "$work/dist" "$root"
wheel=$(ls "$work"/dist/mqeval-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet -c "$root/requirements/lock.txt" "${wheel}[reports]"
site=$("$work/venv/bin/python" -c 'import mqeval, pathlib; print(pathlib.Path(mqeval.__file__).parent)')
case "$site" in "$root"*) echo "wheel smoke: mqeval was imported from the checkout ($site)" >&2; exit 1;; esac
touch "$work/before"

mkdir "$work/user" && cd "$work/user"
export HF_HUB_OFFLINE=1 MQEVAL_CACHE="$work/cache"
mq="$work/venv/bin/mqeval"
"$mq" ls models | tee "$work/models.txt"
grep -q '^metaquery-smol ' "$work/models.txt"
"$mq" ls benchmarks | grep -q '^shapes '
"$mq" run shapes --model metaquery-tiny --limit 4 --no-progress
test -f runs/shapes/metaquery-tiny/results.json
"$mq" report paper --no-ci --no-figures | tee "$work/tables.txt"
for n in 1 2 3 4 5 6 7; do grep -q "^Table $n" "$work/tables.txt" || { echo "wheel smoke: Table $n missing" >&2; exit 1; }; done

written=$(find "$site" -newer "$work/before" -type f -not -name '*.pyc' | head -5)
if [ -n "$written" ]; then echo "wheel smoke: files written inside site-packages: $written" >&2; exit 1; fi
echo "wheel smoke: passed ($(basename "$wheel"))"
