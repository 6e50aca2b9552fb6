#!/usr/bin/env python3
r"""Share of feature cells whose pooled LiDAR depth lands on the object they show.

The TA lifts each stride-8 feature cell to one depth made from the sparse LiDAR returns of its
8 x 8 pixel block (``depth.lidar_pooling``), and the student learns its depth from the same
value. For every labelled object of a split, this takes the cells whose centre lies inside the
object's projected 2D box and that hold a return, and counts those whose pooled depth lies within
half the box's larger footprint side (+ --tolerance-m) of the box centre's depth. Printed per
class for each pooling ("mean", "nearest"): a thin object in front of a far background keeps
few cells under "mean", whose depth falls between the two.

    python scripts/depth_pooling_check.py --data data/synth_object --split val
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monotakd_ros.errors import MonotakdError
from monotakd_ros.geometry.projection import project_rect_to_image
from monotakd_ros.models.config import load_model_config
from monotakd_ros.models.lifting import pooled_lidar_depth_m
from monotakd_ros.models.object_cells import cells_in_boxes, projected_boxes_px
from monotakd_ros.models.trunks import STRIDE
from monotakd_ros.training.data_loading import build_val_dataset, input_spec_for

POOLINGS = ("mean", "nearest")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="KITTI-format object dataset")
    parser.add_argument("--split", default="val", help="ImageSets name or file (default val)")
    parser.add_argument("--model-config", type=Path,
                        default=Path("config/models/small_realtime.yaml"),
                        help="gives the input size and class names")
    parser.add_argument("--tolerance-m", type=float, default=0.5,
                        help="slack beyond half the footprint (default 0.5 m)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th frame (default 1)")
    return parser


def count_on_object(args: argparse.Namespace) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per pooling, a (classes, 2) array: cells on the object, cells with a return."""
    model_cfg = load_model_config(args.model_config)
    dataset = build_val_dataset(args.data, args.split, input_spec_for(model_cfg))
    names = [anchor.class_name for anchor in model_cfg.head.anchors]
    counts = {pooling: np.zeros((len(names), 2), dtype=np.int64) for pooling in POOLINGS}
    for index in range(0, len(dataset), args.every):
        sample = dataset[index]
        depth_map = torch.as_tensor(sample.depth_map).unsqueeze(0)
        pooled = {p: pooled_lidar_depth_m(depth_map, STRIDE, p) for p in POOLINGS}
        grid_hw = tuple(pooled["mean"][0].shape[-2:])
        T, P2 = sample.T_rect_from_lidar, sample.P2
        boxes = torch.as_tensor(sample.gt_boxes_lidar, dtype=torch.float32)
        boxes_px, in_front = projected_boxes_px(boxes, torch.as_tensor(T), torch.as_tensor(P2),
                                                near_m=1.0)
        cells = cells_in_boxes(boxes_px, grid_hw, STRIDE)
        _, centre_depths = project_rect_to_image(sample.gt_boxes_lidar[:, :3] @ T[:3, :3].T
                                                 + T[:3, 3], P2)
        for i, (box, cls) in enumerate(zip(sample.gt_boxes_lidar, sample.gt_classes,
                                           strict=True)):
            if cls < 0 or not in_front[i]:
                continue
            tolerance = max(box[3], box[4]) / 2.0 + args.tolerance_m
            for pooling, (depth_m, valid) in pooled.items():
                has = valid[0] & cells[i]
                on_object = (depth_m[0] - float(centre_depths[i])).abs() < tolerance
                counts[pooling][cls] += int((on_object & has).sum()), int(has.sum())
    return names, counts


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; returns the exit code (2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        names, counts = count_on_object(args)
    except MonotakdError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(f"cells (stride {STRIDE}) inside each object's 2D box that hold a LiDAR "
                     f"return: share whose pooled depth is on the object\n")
    sys.stdout.write(f"{'class':<11} {'cells':>7} " + " ".join(f"{p:>8}" for p in POOLINGS) + "\n")
    for i, name in enumerate(names):
        total = counts[POOLINGS[0]][i, 1]
        shares = [counts[p][i, 0] / max(total, 1) for p in POOLINGS]
        sys.stdout.write(f"{name:<11} {total:>7} " + " ".join(f"{s:>8.2f}" for s in shares) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
