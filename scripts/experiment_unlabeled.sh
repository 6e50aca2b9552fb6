#!/usr/bin/env bash
# Do frames without labels help a student through distillation, beyond what the same batches of
# labelled frames give? An equal-batch design on one scene distribution
# (docs/unlabeled_distillation.md, "The comparison").
#
# Per seed:
#   1. data: one synthetic object set (seed SEED) whose training frames are carved into disjoint
#      ImageSets arm_labelled / arm_extra / arm_val / arm_test (scripts/unlabeled_variants.py
#      splits); with RAW_DRIVES > 0 also synthetic raw drives from the same scene distribution
#      (monotakd-synth raw --scenes object, seed SEED + 1000; raw-drive random streams never
#      meet an object frame's);
#   2. LiDAR teacher and TA trained on arm_labelled (validated on arm_val);
#   3. the arms, each the student stage with the same optimiser, batch size and step count:
#        control  arm_labelled only
#        hidden   arm_labelled + arm_extra, the extra frames' labels hidden (train.hidden_label_split):
#                 on them only the distillation terms act
#        visible  arm_labelled + arm_extra with their labels (the upper bound)
#        raw      arm_labelled + the raw drives (--unlabeled-drives; only with RAW_DRIVES > 0)
#      The GT loss is averaged over the labelled frames of a batch, so unlabelled frames do not
#      dilute it. --protocol joint: every arm trains its student from the start (STUDENT_STEPS,
#      config/train/student.yaml), the paper's protocol. --protocol finetune: a base student is
#      trained on arm_labelled (STUDENT_STEPS), then every arm fine-tunes it for FINETUNE_STEPS
#      (config/train/student_finetune.yaml); FREEZE_BN=1 keeps its BatchNorm statistics there.
#   4. every arm is evaluated once, at its end, on arm_test; nothing is selected on arm_test.
# Then scripts/experiment_unlabeled_report.py writes the per-seed table and the paired
# differences (mean, sample std, 95 % t interval) into docs/unlabeled_distillation.md.
#
# Usage: scripts/experiment_unlabeled.sh [--smoke] [--out DIR] [--seeds "0 1 2 3 4"]
#                                        [--protocol joint|finetune|both] [--doc FILE]
#   --smoke     tiny sizes, to check the pipeline end to end (numbers meaningless)
# Sizes through the environment: LABELLED, EXTRA, VAL, TEST (frames per split), RAW_DRIVES,
# RAW_FRAMES, TEACHER_STEPS, TA_STEPS, STUDENT_STEPS, FINETUNE_STEPS, BATCH, FREEZE_BN (0|1),
# DEVICE (auto|cpu|cuda), MODEL (model YAML).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/scripts/env.sh"
cd "$ROOT"

OUT="$ROOT/runs/experiment_unlabeled"
SEEDS="0 1 2 3 4"
SMOKE=0
PROTOCOL=joint
DOC="$ROOT/docs/unlabeled_distillation.md"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --protocol) PROTOCOL="$2"; shift 2 ;;
    --doc) DOC="$(realpath -m "$2")"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$PROTOCOL" in
  joint) PROTOCOLS="joint" ;; finetune) PROTOCOLS="finetune" ;; both) PROTOCOLS="joint finetune" ;;
  *) echo "--protocol: joint, finetune or both, got $PROTOCOL" >&2; exit 2 ;;
esac

if [[ $SMOKE -eq 1 ]]; then
  : "${LABELLED:=4}" "${EXTRA:=4}" "${VAL:=2}" "${TEST:=2}" "${RAW_DRIVES:=1}" "${RAW_FRAMES:=4}"
  : "${TEACHER_STEPS:=2}" "${TA_STEPS:=2}" "${STUDENT_STEPS:=2}" "${FINETUNE_STEPS:=2}"
else
  : "${LABELLED:=200}" "${EXTRA:=200}" "${VAL:=100}" "${TEST:=200}" "${RAW_DRIVES:=2}"
  : "${RAW_FRAMES:=100}" "${TEACHER_STEPS:=3000}" "${TA_STEPS:=3000}" "${STUDENT_STEPS:=2000}"
  : "${FINETUNE_STEPS:=600}"
fi
: "${BATCH:=4}" "${FREEZE_BN:=0}" "${DEVICE:=auto}" "${MODEL:=$ROOT/config/models/small.yaml}"
if [[ $FREEZE_BN -eq 1 && "$PROTOCOLS" == *joint* ]]; then
  echo "FREEZE_BN=1 applies to fine-tuning (a student trained from the start needs its" \
       "BatchNorm statistics): use --protocol finetune" >&2
  exit 2
fi
PY=python
TOOLS="$ROOT/scripts/unlabeled_variants.py"
mkdir -p "$OUT"
: "${CACHE:=$OUT/cache}"
STARTED=$(date +%s)
echo "[experiment] out=$OUT seeds='$SEEDS' protocols='$PROTOCOLS' splits labelled/extra/val/test" \
  "=$LABELLED/$EXTRA/$VAL/$TEST raw=${RAW_DRIVES}x$RAW_FRAMES steps teacher/ta/student/finetune" \
  "=$TEACHER_STEPS/$TA_STEPS/$STUDENT_STEPS/$FINETUNE_STEPS batch=$BATCH freeze_bn=$FREEZE_BN"

arm_config() {  # base out key=value...
  local base=$1 out=$2
  shift 2
  "$PY" "$TOOLS" arm-config --base "$ROOT/config/train/$base.yaml" --out "$out" "$@"
}

train_stage() {  # stage out config steps [extra args]; kept when it finished before
  local stage=$1 out=$2 config=$3 steps=$4
  shift 4
  if [[ -d "$out/checkpoints/last" && -s "$out/val_log.csv" ]]; then
    echo "[experiment] $out exists, kept"
    return
  fi
  local resume=()
  [[ -d "$out/checkpoints/last" ]] && resume=(--resume)
  "$PY" -m monotakd_ros.training.cli "$stage" --model-config "$MODEL" --train-config "$config" \
    --data "$DATA" --out "$out" --max-steps "$steps" --seed "$SEED" --device "$DEVICE" \
    "${resume[@]}" "$@"
}

for SEED in $SEEDS; do
  RUN="$OUT/seed_$SEED"
  DATA="$RUN/labelled"
  mkdir -p "$RUN/configs"
  echo "[experiment] seed $SEED: data"
  if [[ ! -f "$DATA/ImageSets/arm_test.txt" ]]; then
    "$PY" -m monotakd_ros.data.synth.cli object --out "$DATA" --overwrite \
      --frames $((LABELLED + EXTRA + VAL + TEST)) --seed "$SEED" --val-fraction 0.0 \
      --test-fraction 0.0
    "$PY" "$TOOLS" splits --data "$DATA" --seed "$SEED" --labelled "$LABELLED" \
      --extra "$EXTRA" --val "$VAL" --test "$TEST"
  fi
  DRIVES=()
  if [[ $RAW_DRIVES -gt 0 ]]; then
    [[ -d "$RUN/raw" ]] || "$PY" -m monotakd_ros.data.synth.cli raw --out "$RUN/raw" \
      --frames "$RAW_FRAMES" --drives "$RAW_DRIVES" --seed "$((SEED + 1000))" --scenes object
    DRIVES=("$RUN"/raw/*/*_sync)
  fi

  echo "[experiment] seed $SEED: teacher and TA on arm_labelled"
  for STAGE in teacher ta; do
    arm_config "$STAGE" "$RUN/configs/$STAGE.yaml" train_split=arm_labelled val_split=arm_val
  done
  train_stage teacher "$RUN/teacher" "$RUN/configs/teacher.yaml" "$TEACHER_STEPS" \
    --data-cache --cache-dir "$CACHE"
  train_stage ta "$RUN/ta" "$RUN/configs/ta.yaml" "$TA_STEPS" --data-cache --cache-dir "$CACHE"
  FROZEN=(--distill takd --teacher "$RUN/teacher/checkpoints/last"
          --assistant "$RUN/ta/checkpoints/last")

  for PROT in $PROTOCOLS; do
    if [[ $PROT == joint ]]; then
      BASE=student STEPS=$STUDENT_STEPS INIT=() COMMON=(batch_size=$BATCH)
    else
      echo "[experiment] seed $SEED: base student on arm_labelled for fine-tuning"
      arm_config student "$RUN/configs/base_student.yaml" train_split=arm_labelled \
        val_split=arm_val batch_size="$BATCH"
      train_stage student "$RUN/base_student" "$RUN/configs/base_student.yaml" \
        "$STUDENT_STEPS" "${FROZEN[@]}"
      BASE=student_finetune STEPS=$FINETUNE_STEPS
      INIT=(--init-from "$RUN/base_student/checkpoints/last")
      COMMON=(batch_size=$BATCH freeze_bn=$([[ $FREEZE_BN -eq 1 ]] && echo true || echo false))
    fi
    # one validation, at the end, on arm_test; checkpoints only at the end
    COMMON+=(val_split=arm_test val_interval="$STEPS" ckpt_interval="$STEPS")
    ARMS="control:train_split=arm_labelled hidden:hidden_label_split=arm_extra"
    ARMS+=" visible:train_split=arm_labelled_extra"
    [[ $RAW_DRIVES -gt 0 ]] && ARMS+=" raw:train_split=arm_labelled"
    for ARM_SPEC in $ARMS; do
      ARM=${ARM_SPEC%%:*}
      SETTING=${ARM_SPEC#*:}
      EXTRA_ARGS=()
      [[ $ARM == hidden ]] && SETTING="train_split=arm_labelled $SETTING"
      [[ $ARM == raw ]] && EXTRA_ARGS=(--unlabeled-drives "${DRIVES[@]}")
      CONFIG="$RUN/configs/${PROT}_$ARM.yaml"
      # shellcheck disable=SC2086
      arm_config "$BASE" "$CONFIG" "${COMMON[@]}" $SETTING
      echo "[experiment] seed $SEED: $PROT / $ARM ($STEPS steps)"
      RESUMED=()
      [[ -d "$RUN/$PROT/$ARM/checkpoints/last" ]] || RESUMED=("${INIT[@]}")
      train_stage student "$RUN/$PROT/$ARM" "$CONFIG" "$STEPS" "${FROZEN[@]}" \
        "${RESUMED[@]}" "${EXTRA_ARGS[@]}"
    done
  done
done

ELAPSED=$(( $(date +%s) - STARTED ))
"$PY" "$ROOT/scripts/experiment_unlabeled_report.py" --out "$OUT" --doc "$DOC" \
  --seeds $SEEDS --protocols $PROTOCOLS --elapsed-s "$ELAPSED" \
  $([[ $SMOKE -eq 1 ]] && echo --smoke)
echo "[experiment] done in $ELAPSED s; results in $DOC"
