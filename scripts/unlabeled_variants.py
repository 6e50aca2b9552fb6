r"""Short distillation variants on one seed of the unlabelled experiment, to find what hurts.

Each variant distils the seed's labelled student on the first ``--bags`` unlabelled bags of
``RUN/bags`` and evaluates it before and after on ``--eval-frames`` frames of the labelled val
split. A variant is ``NAME[,key=value...]``: keys are DistillConfig weights (imd_weight,
cmrd_weight, response_cls_weight, ...), ``lr``, ``schedule`` (constant|cosine),
``warmup_steps``, ``labelled_per_step`` (replay from --labelled-data) and ``freeze_bn`` (1: keep
BatchNorm statistics fixed).

``--domain-check`` first compares the two data sources: mean image intensity by row band of the
labelled frames and of the raw drives, and the teacher, TA and student evaluated on the val split
and on the ground truth of one unlabelled bag.

    scripts/env.sh python scripts/unlabeled_variants.py --run runs/unlabeled/seed_0 \
        --labelled-data data/synth_object --out runs/variants \
        takd resp,imd_weight=0,cmrd_weight=0 lr0,lr=1e-12 replay,labelled_per_step=2
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
import torch.nn as nn

from monotakd_ros.distiller.evaluation import evaluate_student
from monotakd_ros.distiller.run_config import distiller_config_from_values
from monotakd_ros.distiller.session import DistillSession
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.stages import load_trained_stage

KEYS = ("car_ap3d_r40_easy", "car_ap3d_r40_moderate", "car_ap3d_r40_hard",
        "car_apbev_r40_moderate")
TRAIN_KEYS = {"lr": float, "schedule": str, "warmup_steps": int}


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
    train = {"device": "cpu", "seed": args.seed, "ckpt_interval": 0,
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
    if freeze_bn:  # eval() on BatchNorm only: statistics stay those of the labelled training
        session.stage.model.apply(
            lambda m: m.eval() if isinstance(m, nn.modules.batchnorm._BatchNorm) else None)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="experiment seed folder")
    parser.add_argument("--labelled-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bags", type=int, default=2)
    parser.add_argument("--eval-frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-config", type=Path, default=Path("config/models/small.yaml"))
    parser.add_argument("--domain-check", action="store_true")
    parser.add_argument("variants", nargs="*")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
