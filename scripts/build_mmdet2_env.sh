#!/usr/bin/env bash
# Build an isolated virtualenv that can run GenEval's official detector stack (mmdetection 2.x + mmcv-full 1.7 with
# its compiled ops) on CPU, for scripts/make_geneval_mmdet_fixture.py. It is never part of mqeval's install or CI:
# mqeval itself runs on torch 2.x and only reads the fixture this environment writes.
#
# Usage: bash scripts/build_mmdet2_env.sh [VENV_DIR]     (default: ../mqeval-mmdet2-venv next to the checkout)
# Needs: a CPython 3.10 (torch 1.13.1 has no wheels for 3.11+; set PYTHON310=...), a C++ compiler, PyPI.
# mmcv-full has no CPU wheels on PyPI, only an sdist: its ops are compiled here (MMCV_WITH_OPS=1, CPU only since no
# GPU is visible), one job at a time and at the lowest priority, so the machine stays usable; expect tens of minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$here/../mqeval-mmdet2-venv}"
python310="${PYTHON310:-python3.10}"
"$python310" --version >/dev/null 2>&1 || python310="$HOME/.pyenv/versions/3.10.13/bin/python3.10"  # a pyenv shim may not run

TORCH_VERSION=1.13.1
TORCHVISION_VERSION=0.14.1  # mmcv.runner imports it
NUMPY_VERSION=1.23.5
MMCV_VERSION=1.7.2
MMDET_VERSION=2.28.2

start=$(date +%s)
echo "[build] $(date -u +%FT%TZ) python=$("$python310" --version 2>&1) venv=$venv"
"$python310" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q "pip<24.1" "setuptools<70" wheel ninja pytest-runner
"${pip[@]}" install -q "numpy==$NUMPY_VERSION" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
  "opencv-python-headless<4.9" \
  addict packaging pyyaml yapf==0.40.1 Pillow
echo "[build] torch installed after $(( $(date +%s) - start ))s"
export MMCV_WITH_OPS=1 MAX_JOBS=1 FORCE_CUDA=0
nice -n 19 "${pip[@]}" install -v --no-build-isolation --no-binary mmcv-full "mmcv-full==$MMCV_VERSION"
echo "[build] mmcv-full built after $(( $(date +%s) - start ))s"
"${pip[@]}" install -q "mmdet==$MMDET_VERSION" pycocotools terminaltables scipy matplotlib six safetensors
"$venv/bin/python" - <<'PY'
import mmcv, mmdet, torch, numpy
from mmcv.ops import MultiScaleDeformableAttention, point_sample  # the compiled ops load
print(f"[build] ok: torch {torch.__version__} numpy {numpy.__version__} mmcv-full {mmcv.__version__} "
      f"mmdet {mmdet.__version__}")
PY
echo "[build] done after $(( $(date +%s) - start ))s"
