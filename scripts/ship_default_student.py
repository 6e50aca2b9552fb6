"""Copy a trained student into models/default_student with its provenance and model card.

    scripts/env.sh python scripts/ship_default_student.py RUN/checkpoints/best \
        --test-json runs/student_test.json [--baseline-json runs/previous_test.json]

``--test-json`` is ``scripts/evaluate_checkpoint.py``'s output for this checkpoint on the
held-out test split; ``--baseline-json`` the same for the student it replaces, on the same split.
Shipped: the weights and metadata (no optimiser state), ``test_metrics.json``, and under
``provenance/`` each stage's resolved model and train YAML (teacher, TA, student), read from the
run folders the student's command names, so the card's commands rebuild the chain exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import textwrap
from pathlib import Path

import yaml
from safetensors import safe_open

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import saved_model_config
from monotakd_ros.training.logging_utils import read_csv_rows

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("Car", "Pedestrian", "Cyclist")
CHAIN_FLAGS = {"--teacher": "teacher", "--assistant": "ta", "--init-from": "init"}

CARD = """# Default student: MonoTAKD, small configuration, synthetic data

{summary}

| | |
|---|---|
| parameters | {params:,} |
| weights | `model.safetensors`, {size_mib:.1f} MiB, sha256 `{sha}` |
| classes | {classes} |
| training steps | teacher {teacher_steps}, TA {ta_steps}, student {step} (batch {batch}) |
| checkpoint | `{checkpoint_name}` (chosen on val Car AP3D R40 Moderate) |
| code version | {code_version} |

## Metrics

KITTI protocol, R40, on the **held-out synthetic test split** ({frames} frames never used for
training or checkpoint choice; IoU 0.7 Car, 0.5 Pedestrian/Cyclist), not on KITTI:

| class | AP3D Easy | AP3D Moderate | AP3D Hard | APBEV Easy | APBEV Moderate | APBEV Hard |
|---|---|---|---|---|---|---|
{rows}
{baseline}
Validation curve of the student run (val split, Car AP3D R40 Moderate, the selection metric):
{curve}.

These are the numbers of a {params_m:.1f} M-parameter model trained on a 2-core CPU on synthetic
scenes; they say how the pipeline does on this data, not how MonoTAKD does on KITTI (the paper
reports Car AP3D R40 Moderate 22.61 on KITTI val with a ResNet-50 student).

## How to reproduce it

The resolved configs of all three stages are in `provenance/`:

```bash
source scripts/env.sh
{data_command}
{commands}
python scripts/evaluate_checkpoint.py runs/student/checkpoints/{checkpoint_name} \\
    --data data/synth_object --split test --json runs/student_test.json
```

Shipped from a run on {machine}.
{notes}"""


def run_folder(checkpoint: Path) -> Path:
    """The run folder of ``RUN/checkpoints/NAME`` (it holds run_config.json)."""
    folder = checkpoint.resolve().parent.parent
    if not (folder / "run_config.json").is_file():
        raise SystemExit(f"{checkpoint}: no run_config.json in {folder}; ship a checkpoint of a "
                         "monotakd-train run folder")
    return folder


def chain(student_checkpoint: Path) -> dict[str, tuple[Path, dict]]:
    """``{stage: (checkpoint, run_config)}`` for the student and what its command names."""
    record = json.loads((run_folder(student_checkpoint) / "run_config.json").read_text())
    found = {"student": (student_checkpoint, record)}
    command = record["command"]
    for flag, name in CHAIN_FLAGS.items():
        if flag in command:
            path = Path(command[command.index(flag) + 1])
            found[name] = (path, json.loads((run_folder(path) / "run_config.json").read_text()))
    return found


def write_provenance(stages: dict[str, tuple[Path, dict]], out: Path) -> None:
    """Each stage's model and train config as YAML that monotakd-train reads back."""
    folder = out / "provenance"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, (_, record) in stages.items():
        if name == "init":
            continue
        (folder / f"{name}_model.yaml").write_text(
            yaml.safe_dump({"model": record["model_config"]}, sort_keys=False))
        (folder / f"{name}_train.yaml").write_text(
            yaml.safe_dump({"train": record["train_config"]}, sort_keys=False))


def train_command(name: str, stages: dict[str, tuple[Path, dict]]) -> str:
    """The monotakd-train line of one stage, with the shipped configs and runs/ folders."""
    record = stages[name][1]
    parts = [f"monotakd-train {record['stage']}",
             f"--model-config models/default_student/provenance/{name}_model.yaml",
             f"--train-config models/default_student/provenance/{name}_train.yaml",
             "--data data/synth_object", f"--out runs/{name}"]
    for flag, source in CHAIN_FLAGS.items():
        if name == "student" and source in stages:
            run = "ta" if source == "init" else source
            parts.append(f"{flag} runs/{run}/checkpoints/{stages[source][0].name}")
    return " \\\n    ".join(parts)


def describe(model: dict) -> str:
    """The architecture in words, from the model config."""
    image, cue, blocks = model["image"], model["spatial_cue"], model["scnet"]["blocks"]
    alignment = (f"SAM with {cue['deformable_convs']} deformable convs"
                 if cue["alignment"] == "sam" else "ASPP + SE spatial cue")
    return (f"`{model['trunk']['name']}` trunk, input {image['input_hw'][0]}×"
            f"{image['input_hw'][1]}, {model['depth']['num_bins']} LID depth bins, "
            f"{model['grid']['cell_m']} m BEV cells, {model['bev_channels']} BEV channels, "
            f"{f'SCNet {blocks} blocks' if blocks else 'no SCNet'}, {alignment}, "
            f"`{model['fusion_style']}` fusion")


def val_curve(checkpoint: Path) -> str:
    """``step: AP`` pairs of the run's val_log.csv, or a note that it has none."""
    rows = read_csv_rows(run_folder(checkpoint) / "val_log.csv")
    if not rows:
        return "none recorded"
    return ", ".join(f"step {r['step']}: {float(r['car_ap3d_r40_moderate']):.2f}" for r in rows)


def metric_rows(scores: dict) -> str:
    """Markdown rows: AP3D and APBEV, Easy/Moderate/Hard, per class."""
    rows = []
    for name in CLASSES:
        if name in scores["ap_r40"]:
            ap = scores["ap_r40"][name]
            rows.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in ap["3d"] + ap["bev"])
                        + " |")
    return "\n".join(rows)


def baseline_line(test: dict, baseline: dict | None) -> str:
    """Car AP3D Moderate against the student this one replaces, on the same split."""
    if baseline is None:
        return ""
    if baseline["split"] != test["split"] or baseline["frames"] != test["frames"]:
        raise SystemExit("--baseline-json was scored on another split; score both on one")
    new, old = test["ap_r40"]["Car"]["3d"][1], baseline["ap_r40"]["Car"]["3d"][1]
    ratio = f"{new / old:.2f}×" if old > 0 else "n/a"
    return (f"\nOn the same frames the student it replaces (step {baseline['step']}) scores "
            f"Car AP3D R40 Moderate {old:.2f}: this one is {ratio} that.\n")


def main(argv: list[str] | None = None) -> int:
    """Copy the checkpoint, its provenance and test metrics; write MODEL_CARD.md."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a student checkpoint folder")
    parser.add_argument("--test-json", type=Path, required=True)
    parser.add_argument("--baseline-json", type=Path, default=None)
    parser.add_argument("--data-command", default="monotakd-synth object --out "
                        "data/synth_object --frames 800 --seed 0 --val-fraction 0.25 \\\n"
                        "    --test-fraction 0.25 --labelled-test")
    parser.add_argument("--notes", type=Path, default=None,
                        help="markdown appended to the card under '## Notes'")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "default_student")
    args = parser.parse_args(argv)
    meta = json.loads((args.checkpoint / "meta.json").read_text())
    if meta.get("stage") != "student":
        sys.stderr.write(f"{args.checkpoint}: stage is {meta.get('stage')!r}, not 'student'\n")
        return 2
    test = json.loads(args.test_json.read_text())
    if test["checkpoint"] and Path(test["checkpoint"]).resolve() != args.checkpoint.resolve():
        sys.stderr.write(f"{args.test_json} scores {test['checkpoint']}, not {args.checkpoint}\n")
        return 2
    baseline = json.loads(args.baseline_json.read_text()) if args.baseline_json else None
    comparison = baseline_line(test, baseline)  # checked before anything is written
    stages = chain(args.checkpoint)
    weights = args.checkpoint / "model.safetensors"
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, args.out / "model.safetensors")
    shutil.copyfile(args.checkpoint / "meta.json", args.out / "meta.json")
    (args.out / "test_metrics.json").write_text(json.dumps(test, indent=2) + "\n")
    write_provenance(stages, args.out)
    with safe_open(str(weights), framework="pt") as tensors:
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        params = sum(_numel(tensors.get_slice(k).get_shape())
                     for k in tensors.keys() if not k.endswith(buffers))
    student_train = stages["student"][1]["train_config"]
    # Filled with today's defaults for keys the checkpoint predates.
    model = dataclass_to_dict(saved_model_config(load_checkpoint_meta(args.checkpoint),
                                                 args.checkpoint))
    order = [name for name in ("teacher", "ta", "student") if name in stages]
    summary = (f"The detector node loads this checkpoint when `model_path` is not set. It is a "
               f"camera-only MonoTAKD student ({describe(model)}), distilled with the "
               f"`{student_train['distill']}` preset from a LiDAR teacher "
               f"(`{model['teacher']['encoder']}` encoder) and a LiDAR-depth teaching assistant"
               f"{', and initialised from the TA weights' if 'init' in stages else ''}.")
    notes = f"\n## Notes\n\n{args.notes.read_text().strip()}\n" if args.notes else ""
    (args.out / "MODEL_CARD.md").write_text(CARD.format(
        summary=textwrap.fill(summary, width=96), curve=val_curve(args.checkpoint), notes=notes,
        params=params, params_m=params / 1e6, size_mib=weights.stat().st_size / 2**20,
        sha=hashlib.sha256(weights.read_bytes()).hexdigest(),
        classes=", ".join(meta["input_spec"]["class_names"]),
        teacher_steps=_steps(stages, "teacher"), ta_steps=_steps(stages, "ta"),
        step=meta["step"], batch=student_train["batch_size"],
        checkpoint_name=args.checkpoint.name, code_version=meta["code_version"],
        frames=test["frames"], rows=metric_rows(test),
        baseline=comparison, data_command=args.data_command,
        commands="\n".join(train_command(name, stages) for name in order),
        machine=f"{platform.machine()} {platform.processor() or 'CPU'}, torch CPU"))
    sys.stdout.write(f"shipped {args.checkpoint} -> {args.out}\n")
    return 0


def _steps(stages: dict[str, tuple[Path, dict]], name: str) -> str:
    if name not in stages:
        return "-"
    return str(json.loads((stages[name][0] / "meta.json").read_text())["step"])


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


if __name__ == "__main__":
    raise SystemExit(main())
