#!/usr/bin/env bash
# Does distillation on unlabelled raw drives help a student trained on a small labelled set?
#
# Per seed:
#   1. a small labelled synthetic KITTI object set (train / val) and unlabelled synthetic raw
#      drives, converted to rosbag2 bags in the kitti2bag layout;
#   2. LiDAR teacher, TA and student (distilled, takd) trained on the labelled train split only;
#   3. the student distilled further on the unlabelled bags (frozen teacher + TA, IMD + CMRD +
#      response terms, no labels on the bags), with LABELLED_PER_STEP labelled train frames
#      replayed into every step (0: unlabelled frames only), evaluated on the labelled val split
#      before and after;
#   4. a labelled control: the same student fine-tuned for as many steps on the labelled train
#      split alone, with the distiller's optimiser settings (config/train/student_finetune.yaml:
#      batch 2, i.e. as many labelled frames per step as the default replay).
# Then Car AP3D R40 Easy/Moderate/Hard before / after / control, per seed and as mean +- std, is
# written into docs/unlabeled_distillation.md between its "results" markers
# (scripts/experiment_unlabeled_report.py).
#
# Usage: scripts/experiment_unlabeled.sh [--smoke] [--out DIR] [--seeds "0 1 2"] [--doc FILE]
#                                        [--labelled-data DIR] [--models-from DIR]
#                                        [--budget-min MIN]
#   --smoke          tiny sizes, to check the pipeline end to end (numbers meaningless)
#   --doc            the markdown file to fill (default docs/unlabeled_distillation.md)
#   --labelled-data  an existing labelled KITTI object root (train / val splits) used by every
#                    seed instead of generating one
#   --models-from    a `monotakd-ablation --out` folder: seed_N/{teacher,ta,student_takd} are
#                    used as seed N's teacher, TA and labelled student instead of training them
#                    (a seed the folder lacks is trained here)
#   --budget-min     wall-clock budget of the whole script: the step times are measured on the
#                    first seed's labelled data and TEACHER/TA/STUDENT_STEPS (and the seeds, if
#                    need be) fitted to it, counting the bag distillation and the control; the
#                    plan is printed before training
# The stages train on the prepared split with cached frozen targets (CACHE, default OUT/cache).
# Sizes can be changed through the environment: LABELLED_FRAMES, RAW_DRIVES, RAW_FRAMES,
# TEACHER_STEPS, TA_STEPS, STUDENT_STEPS, DISTILL_PASSES, DISTILL_MAX_STEPS (0: every frame),
# LABELLED_PER_STEP, DEVICE (auto|cpu|cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/scripts/env.sh"
cd "$ROOT"

OUT="$ROOT/runs/experiment_unlabeled"
SEEDS="0 1 2"
SMOKE=0
DOC="$ROOT/docs/unlabeled_distillation.md"
LABELLED_DATA=""
MODELS_FROM=""
BUDGET_MIN=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --doc) DOC="$(realpath -m "$2")"; shift 2 ;;
    --labelled-data) LABELLED_DATA="$(realpath -m "$2")"; shift 2 ;;
    --models-from) MODELS_FROM="$(realpath -m "$2")"; shift 2 ;;
    --budget-min) BUDGET_MIN="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ $SMOKE -eq 1 ]]; then
  : "${LABELLED_FRAMES:=8}" "${RAW_DRIVES:=1}" "${RAW_FRAMES:=6}" "${TEACHER_STEPS:=4}"
  : "${TA_STEPS:=4}" "${STUDENT_STEPS:=4}" "${DISTILL_PASSES:=1}"
else
  : "${LABELLED_FRAMES:=400}" "${RAW_DRIVES:=4}" "${RAW_FRAMES:=200}" "${TEACHER_STEPS:=3000}"
  : "${TA_STEPS:=3000}" "${STUDENT_STEPS:=3000}" "${DISTILL_PASSES:=2}"
fi
: "${DEVICE:=auto}" "${LABELLED_PER_STEP:=2}" "${DISTILL_MAX_STEPS:=0}"
MODEL="$ROOT/config/models/small.yaml"
PY=python
mkdir -p "$OUT"
: "${CACHE:=$OUT/cache}"
STARTED=$(date +%s)
if [[ -n "$BUDGET_MIN" ]]; then
  FIRST_SEED=${SEEDS%% *}
  FIRST_DATA="${LABELLED_DATA:-$OUT/seed_$FIRST_SEED/labelled}"
  [[ -d "$FIRST_DATA/ImageSets" ]] || "$PY" -m monotakd_ros.data.synth.cli object \
    --out "$FIRST_DATA" --frames "$LABELLED_FRAMES" --seed "$FIRST_SEED" --val-fraction 0.5 \
    --test-fraction 0.0
  # Per seed: teacher, TA, distilled student; then the bag distillation and the control, each
  # about passes x drives x frames frames with live teacher/TA targets.
  EXTRA_FRAMES=$(( 2 * DISTILL_PASSES * RAW_DRIVES * RAW_FRAMES ))
  PLAN=$("$PY" -m monotakd_ros.training.budget --data "$FIRST_DATA" --model-config "$MODEL" \
    --train-config "$ROOT/config/train/student.yaml" --cache-dir "$CACHE" \
    --budget-min "$BUDGET_MIN" --seeds $SEEDS --rows 1 1 1 1 --extra-frames "$EXTRA_FRAMES" \
    --spent-s "$(( $(date +%s) - STARTED ))" --min-steps 20 --device "$DEVICE")
  echo "$PLAN"
  LAST_LINE=$(tail -n 1 <<< "$PLAN")  # STEPS=N SEEDS='0 1 2'
  STEPS=$(sed -n 's/^STEPS=\([0-9][0-9]*\) .*/\1/p' <<< "$LAST_LINE")
  SEEDS=$(sed -n "s/.*SEEDS='\([0-9 ]*\)'\$/\1/p" <<< "$LAST_LINE")
  [[ -n "$STEPS" && -n "$SEEDS" ]] || { echo "[experiment] no plan: $LAST_LINE" >&2; exit 2; }
  TEACHER_STEPS=$STEPS TA_STEPS=$STEPS STUDENT_STEPS=$STEPS
fi
echo "[experiment] out=$OUT seeds='$SEEDS' labelled=$LABELLED_FRAMES raw=${RAW_DRIVES}x$RAW_FRAMES" \
  "steps teacher/ta/student=$TEACHER_STEPS/$TA_STEPS/$STUDENT_STEPS passes=$DISTILL_PASSES" \
  "labelled replay/step=$LABELLED_PER_STEP"

train_stage() {  # stage out steps seed [extra args]
  local stage=$1 out=$2 steps=$3 seed=$4
  shift 4
  if [[ -d "$out/checkpoints/last" ]]; then
    echo "[experiment] $stage: $out exists, kept"
    return
  fi
  "$PY" -m monotakd_ros.training.cli "$stage" --model-config "$MODEL" \
    --train-config "$ROOT/config/train/$stage.yaml" --data "$DATA" --out "$out" \
    --max-steps "$steps" --seed "$seed" --device "$DEVICE" --data-cache --frozen-cache fp16 \
    --cache-dir "$CACHE" "$@"
}

for SEED in $SEEDS; do
  RUN="$OUT/seed_$SEED"
  DATA="${LABELLED_DATA:-$RUN/labelled}"
  mkdir -p "$RUN"
  if [[ -n "$MODELS_FROM" ]]; then  # reuse an ablation run's models (linked, never modified)
    for PAIR in teacher:teacher ta:ta student:student_takd; do
      SOURCE="$MODELS_FROM/seed_$SEED/${PAIR#*:}"
      if [[ ! -d "$SOURCE/checkpoints/last" ]]; then
        echo "[experiment] seed $SEED: no $SOURCE/checkpoints/last, ${PAIR%%:*} is trained here"
      elif [[ ! -e "$RUN/${PAIR%%:*}" ]]; then
        ln -s "$SOURCE" "$RUN/${PAIR%%:*}"
      fi
    done
  fi
  echo "[experiment] seed $SEED: data"
  [[ -d "$DATA/ImageSets" ]] || "$PY" -m monotakd_ros.data.synth.cli object --out "$DATA" \
    --frames "$LABELLED_FRAMES" --seed "$SEED" --val-fraction 0.5 --test-fraction 0.0
  [[ -d "$RUN/raw" ]] || "$PY" -m monotakd_ros.data.synth.cli raw --out "$RUN/raw" \
    --frames "$RAW_FRAMES" --drives "$RAW_DRIVES" --seed "$((SEED + 1000))"
  BAGS=()
  for DRIVE in "$RUN"/raw/*/*_sync; do
    BAG="$RUN/bags/$(basename "$DRIVE")"
    [[ -d "$BAG" ]] || "$PY" -m monotakd_ros.bags.cli "$DRIVE" --out "$BAG" --quiet
    BAGS+=("$BAG")
  done

  echo "[experiment] seed $SEED: teacher, TA, student on the labelled train split"
  train_stage teacher "$RUN/teacher" "$TEACHER_STEPS" "$SEED"
  train_stage ta "$RUN/ta" "$TA_STEPS" "$SEED"
  train_stage student "$RUN/student" "$STUDENT_STEPS" "$SEED" --distill takd \
    --teacher "$RUN/teacher/checkpoints/last" --assistant "$RUN/ta/checkpoints/last"

  if [[ -f "$RUN/distill/eval_results.json" ]]; then  # written when a distillation finishes
    echo "[experiment] seed $SEED: distillation finished earlier, kept"
  else
    echo "[experiment] seed $SEED: distillation on ${#BAGS[@]} unlabelled bag(s)"
    RESUME=()
    [[ -d "$RUN/distill/checkpoints" ]] && RESUME=(--resume)
    REPLAY=()
    [[ $LABELLED_PER_STEP -gt 0 ]] && REPLAY=(--labelled-data "$DATA" --labelled-split train \
      --labelled-per-step "$LABELLED_PER_STEP")
    "$PY" -m monotakd_ros.nodes.distiller_cli --params-file "$ROOT/config/distill.yaml" \
      --bags "${BAGS[@]}" --passes "$DISTILL_PASSES" --out "$RUN/distill" \
      --teacher "$RUN/teacher/checkpoints/last" --assistant "$RUN/ta/checkpoints/last" \
      --student-init "$RUN/student/checkpoints/last" --model-config "$MODEL" \
      --eval-data "$DATA" --eval-split val --seed "$SEED" --device "$DEVICE" \
      --schedule cosine --warmup-steps 50 --max-steps "$DISTILL_MAX_STEPS" \
      --no-progress-bar "${REPLAY[@]}" "${RESUME[@]}" | tee "$RUN/distill_tables.txt"
  fi

  # as many optimiser steps on labelled frames as the distillation took
  DISTILL_STEPS=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["report"]["step"])' \
    "$RUN/distill/eval_results.json")
  if [[ -s "$RUN/control/val_log.csv" ]]; then  # validated only at its end: finished earlier
    echo "[experiment] seed $SEED: labelled control finished earlier, kept"
    continue
  fi
  echo "[experiment] seed $SEED: labelled control, $DISTILL_STEPS fine-tuning steps"
  CONTROL_ARGS=(--init-from "$RUN/student/checkpoints/last")
  [[ -d "$RUN/control/checkpoints/last" ]] && CONTROL_ARGS=(--resume)
  "$PY" -m monotakd_ros.training.cli student --model-config "$MODEL" \
    --train-config "$ROOT/config/train/student_finetune.yaml" --data "$DATA" \
    --out "$RUN/control" --max-steps "$DISTILL_STEPS" --seed "$SEED" --device "$DEVICE" \
    --distill takd --teacher "$RUN/teacher/checkpoints/last" \
    --assistant "$RUN/ta/checkpoints/last" "${CONTROL_ARGS[@]}"
done

ELAPSED=$(( $(date +%s) - STARTED ))
"$PY" "$ROOT/scripts/experiment_unlabeled_report.py" --out "$OUT" --doc "$DOC" \
  --seeds $SEEDS $([[ $SMOKE -eq 1 ]] && echo --smoke)
echo "[experiment] done in $ELAPSED s; results in $DOC"
