#!/usr/bin/env python3
r"""KITTI R40 AP of a trained checkpoint on a labelled split, every class, as a table and JSON.

The model config is the one stored in the checkpoint; the stage too. Use it to score a student
on the held-out test split (``monotakd-synth object --labelled-test``):

    python scripts/evaluate_checkpoint.py models/default_student --data data/synth_object \
        --split test --json runs/default_student_test.json

``--score-threshold`` / ``--nms-iou`` score it at other post-processing settings than the ones
it was saved with (post-processing is not architecture; the JSON records what was used).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import MonotakdError
from monotakd_ros.inference.predictor import postprocess_settings
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import saved_model_config
from monotakd_ros.training.validation import evaluate_checkpoint


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder (teacher, TA, student)")
    parser.add_argument("--data", type=Path, required=True, help="KITTI-format object dataset")
    parser.add_argument("--split", default="test", help="ImageSets name or file (default test)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    parser.add_argument("--json", type=Path, default=None, help="also write the APs here")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="override the checkpoint's score threshold, in [0, 1)")
    parser.add_argument("--nms-iou", type=float, default=None,
                        help="override the checkpoint's NMS IoU threshold, in (0, 1]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and print; returns the exit code (2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        meta = load_checkpoint_meta(args.checkpoint)
        saved_cfg = saved_model_config(meta, args.checkpoint)
        model_cfg = dataclasses.replace(saved_cfg, postprocess=postprocess_settings(
            saved_cfg.postprocess, args.score_threshold, args.nms_iou, None))
        result = evaluate_checkpoint(args.checkpoint, meta.stage, model_cfg, args.data,
                                     args.split, torch.device(args.device))
    except MonotakdError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(result.table + "\n")
    summary = {"checkpoint": str(args.checkpoint), "stage": meta.stage, "step": meta.step,
               "data": str(args.data), "split": args.split, "frames": result.num_frames,
               "postprocess": dataclass_to_dict(model_cfg.postprocess),
               "ap_r40": {name: {metric: list(values) for metric, values in metrics.items()}
                          for name, metrics in result.per_class.items()}}
    for name, metrics in result.per_class.items():
        sys.stdout.write(f"{name:<11} AP3D R40 {_row(metrics['3d'])}   "
                         f"APBEV R40 {_row(metrics['bev'])}\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def _row(values: Sequence[float]) -> str:
    return " / ".join(f"{v:6.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
