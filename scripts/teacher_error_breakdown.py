#!/usr/bin/env python3
r"""Where does a detector's AP3D go? Swap ground-truth height values into its matched boxes.

Runs a trained checkpoint (teacher, TA or student) over a labelled split, matches every
detection to the same-class ground-truth box of highest BEV IoU (>= --match-iou), and scores
four variants with the KITTI R40 evaluator:

- ``as predicted``;
- ``GT z``: the matched box's vertical centre replaced by the ground truth's (its h kept);
- ``GT h``: its height replaced (vertical centre kept);
- ``GT z + h``: both, i.e. only x, y, l, w and yaw are the model's own.

If AP3D climbs to APBEV with GT z + h, the 3D gap is vertical. Also prints the mean |dz| and
|dh| of the matched boxes (camera y is down: centre y = bottom y - h / 2).

``--by-range`` adds a "GT z + h" row per distance band (GT values for that band's matches
only: which ranges hold the 3D gap) and, per band, the matched cars' mean |Δtop|, |Δbottom|, |Δh|
beside what the raw LiDAR points tell without learning: the highest return inside each labelled
car's footprint against its top, and the median height of the ground returns in a 1 m ring
around it against its bottom. Where the points are far off, the sensor, not the model, limits
the height.

``--centres`` adds, per class and range band, how far each labelled object's nearest
same-class detection lies in BEV (any score): the share within 1 m and within 0.3 m, and the
median distance. IoU 0.5 on a 0.6 m x 0.8 m pedestrian needs its centre within about 0.2 m.

    python scripts/teacher_error_breakdown.py runs/teacher/checkpoints/last \
        --data data/synth_object --stage teacher
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from monotakd_ros.data.batch import collate_frames
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset
from monotakd_ros.errors import MonotakdError
from monotakd_ros.geometry.iou import bev_iou_matrix_cam
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import load_model_config, saved_model_config
from monotakd_ros.training.data_loading import build_val_dataset, input_spec_for
from monotakd_ros.training.stages import STAGE_NAMES, load_trained_stage
from monotakd_ros.training.validation import predictions_as_kitti_labels, validation_result

LOG = logging.getLogger("teacher_error_breakdown")
VARIANTS = ("as predicted", "GT z", "GT h", "GT z + h")
_Y, _H = 1, 4  # columns of boxes_cam [x, y, z, l, h, w, ry]
RANGE_BANDS_M = ((0.0, 20.0), (20.0, 35.0), (35.0, 80.0))
MIN_RETURNS = 5  # LiDAR returns inside a footprint before its top is judged
RING_M = 1.0  # width of the ground ring around a footprint


def matched_ground_truth(pred: KittiLabels, gt: KittiLabels, min_iou: float) -> np.ndarray:
    """(N_pred,) index of each detection's same-class GT box of highest BEV IoU, or -1."""
    match = np.full(len(pred), -1, dtype=np.int64)
    if len(pred) == 0 or len(gt) == 0:
        return match
    iou = np.asarray(bev_iou_matrix_cam(pred.boxes_cam, gt.boxes_cam))  # (N_pred, N_gt)
    iou = np.where(pred.names[:, None] == gt.names[None, :], iou, 0.0)
    best = iou.argmax(axis=1)
    found = iou[np.arange(len(pred)), best] >= min_iou
    match[found] = best[found]
    return match


def all_matches(preds: Sequence[KittiLabels], gts: Sequence[KittiLabels],
                min_iou: float) -> list[np.ndarray]:
    """``matched_ground_truth`` of every frame."""
    return [matched_ground_truth(p, g, min_iou) for p, g in zip(preds, gts, strict=True)]


def ground_range_m(boxes_cam: np.ndarray) -> np.ndarray:
    """(N,) horizontal distance of each box centre from the camera."""
    return np.hypot(boxes_cam[:, 0], boxes_cam[:, 2])


def in_band(rows: np.ndarray, low: float, high: float) -> np.ndarray:
    """The rows whose first column (a range in metres) lies in [low, high)."""
    return rows[(rows[:, 0] >= low) & (rows[:, 0] < high)]


def substituted(pred: KittiLabels, gt: KittiLabels, match: np.ndarray, variant: str,
                range_m: tuple[float, float] | None = None) -> KittiLabels:
    """``pred`` with GT vertical centre and/or height swapped into its matched boxes.

    ``range_m`` (low, high): only matches whose ground truth lies in that range take GT values.
    """
    boxes = pred.boxes_cam.copy()
    hit = match >= 0
    if range_m is not None:
        distance = ground_range_m(gt.boxes_cam[np.maximum(match, 0)])
        hit &= (distance >= range_m[0]) & (distance < range_m[1])
    if variant == "as predicted" or not hit.any():
        return pred
    mine, theirs = boxes[hit], gt.boxes_cam[match[hit]]
    centre_y = mine[:, _Y] - mine[:, _H] / 2
    height = mine[:, _H]
    if variant in ("GT z", "GT z + h"):
        centre_y = theirs[:, _Y] - theirs[:, _H] / 2
    if variant in ("GT h", "GT z + h"):
        height = theirs[:, _H]
    mine[:, _Y], mine[:, _H] = centre_y + height / 2, height
    boxes[hit] = mine
    return replace(pred, boxes_cam=boxes)


def vertical_errors_m(preds: Sequence[KittiLabels], gts: Sequence[KittiLabels],
                      matches: Sequence[np.ndarray]) -> tuple[float, float, int]:
    """Mean |Δ centre height|, mean |Δh| over matched detections, and their count."""
    dz, dh = [], []
    for pred, gt, match in zip(preds, gts, matches, strict=True):
        hit = match >= 0
        mine, theirs = pred.boxes_cam[hit], gt.boxes_cam[match[hit]]
        dz.append(np.abs((mine[:, _Y] - mine[:, _H] / 2) - (theirs[:, _Y] - theirs[:, _H] / 2)))
        dh.append(np.abs(mine[:, _H] - theirs[:, _H]))
    dz_all, dh_all = np.concatenate(dz or [np.zeros(0)]), np.concatenate(dh or [np.zeros(0)])
    count = len(dz_all)
    return (float(dz_all.mean()) if count else float("nan"),
            float(dh_all.mean()) if count else float("nan"), count)


def matched_vertical_errors(preds: Sequence[KittiLabels], gts: Sequence[KittiLabels],
                            matches: Sequence[np.ndarray], class_name: str) -> np.ndarray:
    """(N, 4) per matched detection: range, |Δtop|, |Δbottom|, |Δh| in metres."""
    rows = []
    for pred, gt, match in zip(preds, gts, matches, strict=True):
        hit = (match >= 0) & (pred.names == class_name)
        mine, theirs = pred.boxes_cam[hit], gt.boxes_cam[match[hit]]
        bottom = np.abs(mine[:, _Y] - theirs[:, _Y])
        top = np.abs((mine[:, _Y] - mine[:, _H]) - (theirs[:, _Y] - theirs[:, _H]))
        height = np.abs(mine[:, _H] - theirs[:, _H])
        rows.append(np.stack([ground_range_m(theirs), top, bottom, height], 1))
    return np.concatenate(rows or [np.zeros((0, 4))])


def point_vertical_errors(data: Path, frame_ids: Sequence[str], class_name: str) -> np.ndarray:
    """(N, 3) per labelled object: range, |highest return − top|, |ground ring − bottom|."""
    kitti = KittiObjectDataset(data)
    rows = []
    for frame_id in frame_ids:
        points = kitti.calib(frame_id).camera_calib().lidar_to_rect(kitti.points(frame_id))
        labels = kitti.labels(frame_id)
        for box in labels.boxes_cam[labels.names == class_name]:
            x, y, z, length, height, width, ry = box
            offset = points - np.array([x, y, z])  # rect camera: y down
            along = offset[:, 0] * np.cos(ry) - offset[:, 2] * np.sin(ry)
            across = offset[:, 0] * np.sin(ry) + offset[:, 2] * np.cos(ry)
            inside = (np.abs(along) < length / 2) & (np.abs(across) < width / 2)
            on_object = inside & (offset[:, 1] < 0) & (offset[:, 1] > -height - 0.5)
            near = (np.abs(along) < length / 2 + RING_M) & (np.abs(across) < width / 2 + RING_M)
            ground = near & ~inside & (np.abs(offset[:, 1]) < 0.5)
            if on_object.sum() < MIN_RETURNS or ground.sum() < 3:
                continue
            top_gap = abs(points[on_object, 1].min() - (y - height))
            bottom_gap = abs(float(np.median(points[ground, 1])) - y)
            rows.append((np.hypot(x, z), top_gap, bottom_gap))
    return np.array(rows).reshape(-1, 3)


def nearest_detection_m(preds: Sequence[KittiLabels], gts: Sequence[KittiLabels],
                        class_name: str) -> np.ndarray:
    """(N, 2) per labelled object: range, BEV distance to the nearest same-class detection."""
    rows = []
    for pred, gt in zip(preds, gts, strict=True):
        mine = pred.boxes_cam[pred.names == class_name][:, [0, 2]]
        for x, z in gt.boxes_cam[gt.names == class_name][:, [0, 2]]:
            gap = np.hypot(mine[:, 0] - x, mine[:, 1] - z).min() if len(mine) else np.inf
            rows.append((np.hypot(x, z), gap))
    return np.array(rows).reshape(-1, 2)


def centre_table(preds: Sequence[KittiLabels], gts: Sequence[KittiLabels],
                 class_names: Sequence[str]) -> str:
    """Markdown table: per class and range band, how close the nearest detection comes."""
    lines = ["| Class | Range | objects | nearest within 1 m | within 0.3 m | median distance |",
             "|---|---|---|---|---|---|"]
    for class_name in class_names:
        rows = nearest_detection_m(preds, gts, class_name)
        for low, high in RANGE_BANDS_M:
            gap = in_band(rows, low, high)[:, 1]
            if len(gap):
                lines.append(f"| {class_name} | {low:.0f}–{high:.0f} m | {len(gap)} | "
                             f"{np.mean(gap < 1.0):.2f} | {np.mean(gap < 0.3):.2f} | "
                             f"{np.median(gap):.2f} m |")
    return "\n".join(lines)


def range_table(model: np.ndarray, points: np.ndarray) -> str:
    """Markdown table of the model's and the points' mean vertical errors per range band."""
    lines = ["| Range | matched | model abs(Δtop) / abs(Δbottom) / abs(Δh) | objects with "
             "returns | points abs(Δtop) / abs(Δbottom) |", "|---|---|---|---|---|"]
    for low, high in RANGE_BANDS_M:
        m, q = in_band(model, low, high), in_band(points, low, high)
        model_cells = " / ".join(f"{v:.3f}" for v in m[:, 1:].mean(0)) if len(m) else "-"
        point_cells = " / ".join(f"{v:.3f}" for v in q[:, 1:].mean(0)) if len(q) else "-"
        lines.append(f"| {low:.0f}–{high:.0f} m | {len(m)} | {model_cells} | {len(q)} | "
                     f"{point_cells} |")
    return "\n".join(lines)


def predict_split(args: argparse.Namespace) -> tuple[list[KittiLabels], list[KittiLabels],
                                                       tuple[str, ...], list[str]]:
    """(predictions, ground truth, class names, frame ids) of the checkpoint on the split."""
    if args.model_config is not None:
        model_cfg = load_model_config(args.model_config)
    else:  # the architecture the checkpoint was trained with
        model_cfg = saved_model_config(load_checkpoint_meta(args.checkpoint), args.checkpoint)
    spec = input_spec_for(model_cfg)
    device = torch.device(args.device)
    stage = load_trained_stage(args.stage, model_cfg, spec, args.checkpoint).to(device)
    dataset = build_val_dataset(args.data, args.split, spec)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        collate_fn=collate_frames)
    preds: list[KittiLabels] = []
    gts: list[KittiLabels] = []
    frame_ids: list[str] = []
    with torch.no_grad():
        for batch in loader:
            detections = stage.predict(batch.to(device))
            preds.extend(predictions_as_kitti_labels(detections, batch, dataset))
            gts.extend(dataset.kitti.labels(frame_id) for frame_id in batch.frame_ids)
            frame_ids.extend(batch.frame_ids)
            if 0 < args.max_frames <= len(gts):
                break
    if args.max_frames > 0:
        preds, gts = preds[:args.max_frames], gts[:args.max_frames]
        frame_ids = frame_ids[:args.max_frames]
    return preds, gts, tuple(dataset.spec.class_names), frame_ids


def breakdown_table(preds: list[KittiLabels], gts: list[KittiLabels],
                    matches: Sequence[np.ndarray], class_names: Sequence[str], min_iou: float,
                    by_range: bool = False) -> str:
    """Markdown table: Car AP3D / APBEV R40 (E/M/H) per variant, then vertical errors.

    ``by_range`` adds one "GT z + h" row per range band: how much of the 3D gap each band holds.
    """
    rows: list[tuple[str, str, tuple[float, float] | None]] = [(v, v, None) for v in VARIANTS]
    if by_range:
        rows += [(f"GT z + h, {low:.0f}–{high:.0f} m only", "GT z + h", (low, high))
                 for low, high in RANGE_BANDS_M]
    lines = ["| Variant | AP3D E / M / H | APBEV E / M / H |", "|---|---|---|"]
    for label, variant, range_m in rows:
        swapped = [substituted(p, g, m, variant, range_m)
                   for p, g, m in zip(preds, gts, matches, strict=True)]
        result = validation_result(gts, swapped, class_names)
        ap3d = " / ".join(f"{v:.2f}" for v in result.ap3d_r40)
        apbev = " / ".join(f"{v:.2f}" for v in result.apbev_r40)
        lines.append(f"| {label} | {ap3d} | {apbev} |")
    dz, dh, count = vertical_errors_m(preds, gts, matches)
    lines.append("")
    lines.append(f"Matched detections (BEV IoU >= {min_iou}): {count}; mean |dz| {dz:.3f} m, "
                 f"mean |dh| {dh:.3f} m")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--model-config", type=Path, default=None,
                        help="model YAML (default: the config stored in the checkpoint)")
    parser.add_argument("--data", type=Path, required=True, help="KITTI object root")
    parser.add_argument("--stage", choices=STAGE_NAMES, default="teacher")
    parser.add_argument("--split", default="val")
    parser.add_argument("--match-iou", type=float, default=0.3,
                        help="minimum BEV IoU for a detection to take GT values")
    parser.add_argument("--max-frames", type=int, default=0, help="0 = the whole split")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--by-range", action="store_true",
                        help="also tabulate Car vertical errors per range band, model vs points")
    parser.add_argument("--centres", action="store_true",
                        help="also tabulate, per class and range band, how far the nearest "
                             "detection lies from each labelled object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the markdown table."""
    logging.basicConfig(level=logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        preds, gts, class_names, frame_ids = predict_split(args)
        point_errors = (point_vertical_errors(args.data, frame_ids, "Car") if args.by_range
                        else None)
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    print(f"{args.stage} {args.checkpoint} on {args.data} split {args.split} "
          f"({len(gts)} frames)")
    matches = all_matches(preds, gts, args.match_iou)
    print(breakdown_table(preds, gts, matches, class_names, args.match_iou, args.by_range))
    if point_errors is not None:
        print()
        print(range_table(matched_vertical_errors(preds, gts, matches, "Car"), point_errors))
    if args.centres:
        print()
        print(centre_table(preds, gts, class_names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
