#!/usr/bin/env bash
# The MonoTAKD ablation (teacher, TA, seven students; docs/ablation.md) on one GPU, from nothing.
#
# Needs only Python (3.11+), torch, numpy, opencv, safetensors, PyYAML, tqdm and matplotlib: no
# ROS, no rosbags, no pip, no install (the repository is put on PYTHONPATH). Steps:
#   1. generate the synthetic KITTI object set, then split its val frames in two: val (where
#      checkpoints are chosen) and a labelled held-out test split (where numbers are reported);
#   2. one `monotakd_ros.training.ablation` process per seed, side by side (a small model
#      leaves most of a GPU idle), each measuring its step times and fitting its steps to the
#      time left (--budget-min); the prepared split is built once, the frozen teacher/TA
#      targets once per seed;
#   3. the seeds' rows merged into ablation.md / ablation.json (paired comparisons with 95 %
#      intervals), claim.png and, when VAL_INTERVAL > 0, val_curve_<row>.png.
# Everything lands in OUT: data/, cache/, ablation/ (runs, tables), logs/, machine.txt,
# timing.txt, and copies of the tables and figures.
#
# Usage: scripts/gpu_ablation.sh OUT [--toy]
#   --toy   a few frames and steps on the CPU, to check the pipeline (numbers meaningless)
# Sizes through the environment: FRAMES, SEEDS, ROWS (row keys; default all), BUDGET_MIN
# (whole script, data included), BATCH, MIN_STEPS, MAX_STEPS, VAL_INTERVAL (validate every N
# steps: the curves to choose the budget from; 0 = off), DEVICE, THREADS (per process),
# GEN_WORKERS, MODEL_CONFIG, TRAIN_CONFIG_DIR, PYTHON.
# Default sizing (one H100/H200, the issue's 9 minutes): 1000 frames (600 train, 200 val, 200
# test), seeds 0-4, 9 rows, batch 16, 200-750 steps per stage fitted to the budget (the plan
# prints its choice; below 200 it drops seeds). Check the steps against validation curves
# (a plateau), made first with e.g.:
#   VAL_INTERVAL=100 MIN_STEPS=2000 MAX_STEPS=2000 SEEDS="0 1" BUDGET_MIN=30 \
#     scripts/gpu_ablation.sh runs/curves
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STARTED=$(date +%s)
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 OUT [--toy]" >&2
  exit 2
fi
OUT="$(realpath -m "$1")"
TOY=0
[[ "${2:-}" == "--toy" ]] && TOY=1
if [[ $TOY -eq 1 ]]; then
  : "${FRAMES:=10}" "${SEEDS:=0 1}" "${BUDGET_MIN:=30}" "${BATCH:=2}" "${MIN_STEPS:=1}"
  : "${MAX_STEPS:=2}" "${DEVICE:=cpu}" "${THREADS:=1}" "${GEN_WORKERS:=1}"
else
  : "${FRAMES:=1000}" "${SEEDS:=0 1 2 3 4}" "${BUDGET_MIN:=9}" "${BATCH:=16}"
  : "${MIN_STEPS:=200}" "${MAX_STEPS:=750}" "${DEVICE:=cuda}" "${THREADS:=3}"
  : "${GEN_WORKERS:=14}"
fi
: "${MODEL_CONFIG:=$ROOT/config/models/small.yaml}" "${PYTHON:=python3}" "${VAL_INTERVAL:=0}"
: "${ROWS:=}"
TRAIN_ARGS=()
[[ -n "${TRAIN_CONFIG_DIR:-}" ]] && TRAIN_ARGS=(--train-config-dir "$TRAIN_CONFIG_DIR")
ROW_ARGS=()
[[ -n "$ROWS" ]] && read -r -a ROW_LIST <<< "$ROWS" && ROW_ARGS=(--rows "${ROW_LIST[@]}")
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
mkdir -p "$OUT/logs"

elapsed() { echo $(( $(date +%s) - STARTED )); }
{
  echo "date: $(date -u +%FT%TZ)"
  "$PYTHON" -c 'import os, platform, torch; print(platform.platform(), "python",
platform.python_version(), "torch", torch.__version__, os.cpu_count(), "CPUs");
print("cuda:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader || true
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

# 1. synthetic data: 60 % train, 20 % val (checkpoints chosen), 20 % labelled held-out test
SETS="$OUT/data/ImageSets"
if [[ ! -f "$SETS/test.txt" ]]; then
  "$PYTHON" -m monotakd_ros.data.synth.cli object --out "$OUT/data" --frames "$FRAMES" \
    --seed 0 --val-fraction 0.25 --test-fraction 0.2 --labelled-test --overwrite \
    --workers "$GEN_WORKERS" > "$OUT/logs/synth.log" 2>&1
fi
echo "[gpu_ablation] splits: $(wc -l < "$SETS/train.txt") train, $(wc -l < "$SETS/val.txt") val," \
  "$(wc -l < "$SETS/test.txt") test frames"
DATA_S=$(elapsed)
echo "[gpu_ablation] data: $FRAMES frames in ${DATA_S} s"

# 2. one process per seed, all given the time that is left
LEFT_MIN=$("$PYTHON" -c "print(max(0.5, $BUDGET_MIN - $(elapsed) / 60))")
PIDS=()
for SEED in $SEEDS; do
  "$PYTHON" -m monotakd_ros.training.ablation --data "$OUT/data" --out "$OUT/ablation" \
    --seeds "$SEED" --model-config "$MODEL_CONFIG" "${TRAIN_ARGS[@]}" "${ROW_ARGS[@]}" \
    --device "$DEVICE" --report-split test --val-interval "$VAL_INTERVAL" \
    --budget-min "$LEFT_MIN" --min-steps "$MIN_STEPS" --max-steps "$MAX_STEPS" \
    --batch-size "$BATCH" --threads "$THREADS" --cache-dir "$OUT/cache" --no-report \
    > "$OUT/logs/seed_$SEED.log" 2>&1 &
  PIDS+=($!)
done
FAILED=0
for PID in "${PIDS[@]}"; do
  wait "$PID" || FAILED=1
done
grep -h -A4 "plan:" "$OUT"/logs/seed_*.log | sed 's/^.*INFO [a-z_.]*: //' || true
TRAIN_S=$(( $(elapsed) - DATA_S ))

# 3. one table from every seed's evaluated rows (also after a failure: what finished counts)
"$PYTHON" -m monotakd_ros.training.ablation --data "$OUT/data" --out "$OUT/ablation" \
  --model-config "$MODEL_CONFIG" "${TRAIN_ARGS[@]}" --device "$DEVICE" --merge \
  > "$OUT/logs/merge.log" 2>&1
cp "$OUT/ablation/ablation.md" "$OUT/ablation/ablation.json" "$OUT/ablation/claim.png" "$OUT/"
cp "$OUT"/ablation/val_curve_*.png "$OUT/" 2>/dev/null || true
{
  echo "data generation: ${DATA_S} s"
  echo "training + evaluation (seeds in parallel): ${TRAIN_S} s"
  echo "total: $(elapsed) s of a ${BUDGET_MIN} min budget"
} | tee "$OUT/timing.txt"
cat "$OUT/ablation.md"
if [[ $FAILED -ne 0 ]]; then
  echo "[gpu_ablation] a seed process failed: see $OUT/logs/seed_*.log" >&2
  exit 1
fi
