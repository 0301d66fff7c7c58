#!/usr/bin/env bash
# Reproduce metaquery-smol and its last-layer twin on CPU, then score both on shapes and shapes-knowledge.
# Usage: bash model_zoo/research/metaquery-smol/train_smol.sh [THREADS_PER_RUN]   (the two trainings run side by side)
set -euo pipefail
research="$(cd "$(dirname "$0")" && pwd)"
cd "$research/../../.."  # the repository root: runs/ and model_zoo/weights/ are relative to it
threads="${1:-1}"
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
python -c "from mqeval.model.smollm2 import materialize_smollm2; print(materialize_smollm2())"
mkdir -p runs/train
pids=()
stages=("" .stage2 .stage3 .stage4 .stage5 .stage6 .stage7)
for name in metaquery-smol metaquery-smol-last-layer; do
  # stage 1 (queries frozen and memoised), stage 2 from its last checkpoint (queries trained), stage 3 from
  # stage 2's (queries frozen again, more steps), stages 4 to 7 (queries trained again, in 6 and 7 at 10x the lr);
  # each stage starts from the last checkpoint of the one before, and the export after the last one replaces the
  # shipped weights
  ( for stage in "${stages[@]}"; do
      export_args=()
      [[ "$stage" == "${stages[-1]}" ]] && export_args=(--export "model_zoo/weights/$name")
      config="$research/$name$stage.train.yaml"  # stage 1 is the card's own config in model_zoo/
      [[ -z "$stage" ]] && config="model_zoo/$name.train.yaml"
      nice -n 5 python -m mqeval.cli train "$config" "${export_args[@]}" \
        > "runs/train/$name${stage/./-}.log" 2>&1 || exit 1
    done ) &
  pids+=("$!")
done
for pid in "${pids[@]}"; do
  wait "$pid" || { echo "a training failed: see runs/train/*.log" >&2; exit 1; }
done
for name in metaquery-smol metaquery-smol-last-layer; do
  for bench in shapes shapes-knowledge; do
    python -m mqeval.cli run "$bench" --model "$name" --out "runs/$bench/$name" --no-progress
  done
done
