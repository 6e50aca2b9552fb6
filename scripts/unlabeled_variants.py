r"""Helpers of the unlabelled-distillation experiment (scripts/experiment_unlabeled.sh).

``splits``: carve an object set's training frames into the experiment's disjoint ImageSets:
``arm_labelled`` (labels used), ``arm_extra`` (the same scenes' extra frames, whose labels are
hidden in the ``hidden`` arm and visible in the ``visible`` arm), ``arm_labelled_extra`` (both),
``arm_val`` (checkpoint selection, tuning) and ``arm_test`` (reported numbers only).

    python scripts/unlabeled_variants.py splits --data DIR --seed 0 --labelled 200 --extra 200 \
        --val 100 --test 200

``arm-config``: a train YAML from a base one plus ``key=value`` overrides (YAML values), e.g.
``hidden_label_split=arm_extra freeze_bn=true``.

``distill``: short distiller variants on one seed's bags (the diagnosis of the first release):
each distils the seed's labelled student on the first ``--bags`` bags of ``RUN/bags`` and
evaluates it before and after on ``--eval-frames`` frames of the labelled val split. A variant
is ``NAME[,key=value...]``: keys are DistillConfig weights (imd_weight, cmrd_weight,
response_cls_weight, ...), ``lr``, ``schedule`` (constant|cosine), ``warmup_steps``,
``labelled_per_step`` (replay from --labelled-data) and ``freeze_bn`` (1: train.freeze_bn).
``--domain-check`` first compares the two data sources (image intensity by row band; teacher,
TA and student on the val split and on one bag's ground truth).

    python scripts/unlabeled_variants.py distill --run runs/unlabeled/seed_0 \
        --labelled-data data/synth_object --out runs/variants takd lr0,lr=1e-12 \
        replay,labelled_per_step=2 freeze_bn,freeze_bn=1
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml

from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter, read_image_set
from monotakd_ros.distiller.evaluation import evaluate_student
from monotakd_ros.distiller.run_config import distiller_config_from_values
from monotakd_ros.distiller.session import DistillSession
from monotakd_ros.errors import DatasetError
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.stages import load_trained_stage

KEYS = ("car_ap3d_r40_easy", "car_ap3d_r40_moderate", "car_ap3d_r40_hard",
        "car_apbev_r40_moderate")
TRAIN_KEYS = {"lr": float, "schedule": str, "warmup_steps": int}
ARM_SPLITS = ("arm_labelled", "arm_extra", "arm_val", "arm_test")


def arm_splits(frame_ids: list[str], seed: int, sizes: dict[str, int]) -> dict[str, list[str]]:
    """Disjoint splits of ``frame_ids`` of the given sizes, drawn with ``seed``; plus the union."""
    needed = sum(sizes.values())
    if needed > len(frame_ids):
        raise DatasetError(f"the object set has {len(frame_ids)} training frames; the splits "
                           f"{sizes} need {needed}")
    order = np.random.default_rng([seed, 18]).permutation(len(frame_ids))
    splits, start = {}, 0
    for name in ARM_SPLITS:
        splits[name] = sorted(frame_ids[i] for i in order[start:start + sizes[name]])
        start += sizes[name]
    splits["arm_labelled_extra"] = sorted(splits["arm_labelled"] + splits["arm_extra"])
    return splits


def write_splits(args: argparse.Namespace) -> None:
    """``splits`` subcommand: write the experiment's ImageSets into the object set."""
    ids = read_image_set(args.data / "ImageSets" / "trainval.txt")
    sizes = dict(zip(ARM_SPLITS, (args.labelled, args.extra, args.val, args.test), strict=True))
    splits = arm_splits(ids, args.seed, sizes)
    KittiObjectWriter(args.data, "training").write_image_sets(splits)
    print(" ".join(f"{name}={len(ids)}" for name, ids in splits.items()))


def write_arm_config(args: argparse.Namespace) -> None:
    """``arm-config`` subcommand: base train YAML + overrides, validated by the strict loader."""
    data = yaml.safe_load(args.base.read_text())
    train = data["train"] if set(data) == {"train"} else data
    for item in args.overrides:
        key, _, value = item.partition("=")
        train[key] = yaml.safe_load(value)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump({"train": train}, sort_keys=False))
    load_train_config(args.out)  # fails here, naming the key, rather than in the trainer


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``name,key=value,...`` -> (name, settings)."""
    name, *items = text.split(",")
    settings: dict[str, Any] = {}
    for item in items:
        key, value = item.split("=", 1)
        settings[key] = TRAIN_KEYS.get(key, float)(value) if key != "schedule" else value
    return name, settings


def run_variant(name: str, settings: dict[str, Any], args: argparse.Namespace) -> dict:
    """Distil one variant; returns before/after metrics and the mean loss terms."""
    settings = dict(settings)
    freeze_bn = bool(settings.pop("freeze_bn", 0))
    per_step = int(settings.pop("labelled_per_step", 0))
    train = {"device": "cpu", "seed": args.seed, "ckpt_interval": 0, "freeze_bn": freeze_bn,
             **{k: settings.pop(k) for k in list(settings) if k in TRAIN_KEYS},
             "distill_overrides": settings}
    out = args.out / name
    shutil.rmtree(out, ignore_errors=True)
    bags = sorted(p for p in (args.run / "bags").iterdir() if p.is_dir())[: args.bags]
    values = {"bags": [str(b) for b in bags], "out_dir": str(out),
              "teacher": str(args.run / "teacher/checkpoints/last"),
              "assistant": str(args.run / "ta/checkpoints/last"),
              "student_init": str(args.run / "student/checkpoints/last"),
              "eval_data": str(args.labelled_data), "eval_split": "val",
              "eval_max_frames": args.eval_frames, "show_progress_bar": False, "train": train}
    if per_step:
        values.update(labelled_data=str(args.labelled_data), labelled_per_step=per_step)
    session = DistillSession(distiller_config_from_values(values))
    session.run_bags(show_bar=False)
    summary = session.finish()
    return {"before": {k: summary.eval_before["metrics"][k] for k in KEYS},
            "after": {k: summary.eval_after["metrics"][k] for k in KEYS},
            "steps": summary.report["step"], "losses_mean": summary.report["losses_mean"]}


def image_band_means(files: list[Path]) -> list[float]:
    """Mean grey level of the top, middle and bottom thirds over ``files``."""
    grey = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float64) for f in files])
    return [float(band.mean()) for band in np.array_split(grey, 3, axis=1)]


def domain_check(args: argparse.Namespace) -> None:
    """Print how the labelled frames and the unlabelled drives differ, for images and models."""
    labelled = sorted((args.labelled_data / "training" / "image_2").glob("*.png"))[:50]
    raw = sorted((args.run / "raw").glob("*/*_sync/image_02/data/*.png"))[::20][:50]
    for name, files in (("labelled frames", labelled), ("raw drive frames", raw)):
        bands = " / ".join(f"{v:.1f}" for v in image_band_means(files))
        print(f"{name}: mean grey level top / middle / bottom third {bands} ({len(files)} images)")
    bag = sorted(p for p in (args.run / "bags").iterdir() if p.is_dir())[0]
    for stage_name in ("teacher", "ta", "student"):
        checkpoint = args.run / stage_name / "checkpoints" / "last"
        cfg = load_model_config(args.model_config)
        stage = load_trained_stage(stage_name, cfg, input_spec_for(cfg), checkpoint)
        cells = []
        for data, split in ((args.labelled_data, "val"), (bag, "")):
            result = evaluate_student(stage, data, torch.device("cpu"), split=split,
                                      max_frames=args.eval_frames)
            cells.append(" / ".join(f"{v:.2f}" for v in result.ap3d_r40))
        print(f"{stage_name}: Car AP3D R40 E/M/H on val {cells[0]}; on {bag.name} {cells[1]} "
              f"({args.eval_frames or 'all'} frames each)", flush=True)


def distill_variants(args: argparse.Namespace) -> None:
    """``distill`` subcommand: the domain check and the distiller variants."""
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.domain_check:
        domain_check(args)
    for text in args.variants:
        name, settings = parse_variant(text)
        result = run_variant(name, settings, args)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        cells = lambda m: " / ".join(f"{m[k]:.2f}" for k in KEYS)  # noqa: E731
        print(f"{name}: AP3D E/M/H / APBEV M before {cells(result['before'])} -> after "
              f"{cells(result['after'])} ({result['steps']} steps)", flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The three subcommands."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    splits = sub.add_parser("splits", help="write the experiment's ImageSets")
    splits.add_argument("--data", type=Path, required=True, help="synthetic object set")
    splits.add_argument("--seed", type=int, default=0)
    for name in ("labelled", "extra", "val", "test"):
        splits.add_argument(f"--{name}", type=int, required=True, help=f"arm_{name} frames")
    arm = sub.add_parser("arm-config", help="train YAML of one arm")
    arm.add_argument("--base", type=Path, required=True)
    arm.add_argument("--out", type=Path, required=True)
    arm.add_argument("overrides", nargs="*", help="key=value (YAML value)")
    distill = sub.add_parser("distill", help="distiller variants on one seed's bags")
    distill.add_argument("--run", type=Path, required=True, help="experiment seed folder")
    distill.add_argument("--labelled-data", type=Path, required=True)
    distill.add_argument("--out", type=Path, required=True)
    distill.add_argument("--bags", type=int, default=2)
    distill.add_argument("--eval-frames", type=int, default=60)
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--model-config", type=Path,
                         default=Path("config/models/small.yaml"))
    distill.add_argument("--domain-check", action="store_true")
    distill.add_argument("variants", nargs="*")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    {"splits": write_splits, "arm-config": write_arm_config,
     "distill": distill_variants}[args.command](args)


if __name__ == "__main__":
    main()
