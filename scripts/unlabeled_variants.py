r"""Short distillation variants on one seed of the unlabelled experiment, to find what hurts.

Each variant distils the seed's labelled student on the first ``--bags`` unlabelled bags of
``RUN/bags`` and evaluates it before and after on ``--eval-frames`` frames of the labelled val
split. A variant is ``NAME[,key=value...]``: keys are DistillConfig weights (imd_weight,
cmrd_weight, response_cls_weight, ...), ``lr``, ``schedule`` (constant|cosine),
``warmup_steps``, ``labelled_per_step`` (replay from --labelled-data) and ``freeze_bn`` (1: keep
BatchNorm statistics fixed).

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

import torch.nn as nn

from monotakd_ros.distill.run_config import distiller_config_from_values
from monotakd_ros.distill.session import DistillSession

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="experiment seed folder")
    parser.add_argument("--labelled-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bags", type=int, default=2)
    parser.add_argument("--eval-frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    for text in args.variants:
        name, settings = parse_variant(text)
        result = run_variant(name, settings, args)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        cells = lambda m: " / ".join(f"{m[k]:.2f}" for k in KEYS)  # noqa: E731
        print(f"{name}: AP3D E/M/H / APBEV M before {cells(result['before'])} -> after "
              f"{cells(result['after'])} ({result['steps']} steps)", flush=True)


if __name__ == "__main__":
    main()
