"""Benchmark of monotakd_ros.eval.evaluate_kitti on a KITTI-val-sized synthetic set (3769 frames).

Ground truth looks like KITTI's: 5-10 cars, a few pedestrians, cyclists and vans, DontCare
regions, occlusion and truncation levels, 2D boxes projected through the real P2. Predictions
are noisy copies (depth error growing with range, yaw noise and occasional flips, missed and
duplicated objects, class confusions, false positives). Target: <= 10 s for all three classes
and all four metrics (design.md section 5).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d

P2 = np.array([[7.215377e02, 0.0, 6.095593e02, 4.485728e01],
               [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
               [0.0, 0.0, 1.0, 2.745884e-03]])
IMAGE_HW = (375, 1242)
CAMERA_HEIGHT_M = 1.65
# name -> (mean l, h, w in metres, how many per frame: low, high inclusive)
OBJECT_KINDS = {
    "Car": ((3.9, 1.56, 1.6), (5, 10)),
    "Van": ((5.0, 2.1, 1.9), (0, 1)),
    "Pedestrian": ((0.8, 1.73, 0.6), (0, 3)),
    "Person_sitting": ((0.8, 1.25, 0.6), (0, 0)),
    "Cyclist": ((1.76, 1.73, 0.6), (0, 2)),
}


def _labels(names: list[str], boxes_cam: np.ndarray, occluded: np.ndarray,
            score: np.ndarray | None) -> KittiLabels:
    """Labels whose 2D boxes, truncation and alpha follow from the 3D boxes."""
    raw = boxes3d_to_boxes2d(boxes_cam, P2, IMAGE_HW, clip=False)
    bbox = boxes3d_to_boxes2d(boxes_cam, P2, IMAGE_HW, clip=True)
    raw_area = np.maximum((raw[:, 2] - raw[:, 0]) * (raw[:, 3] - raw[:, 1]), 1e-6)
    kept_area = (bbox[:, 2] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 1])
    truncated = np.clip(1.0 - kept_area / raw_area, 0.0, 1.0)
    alpha = boxes_cam[:, 6] - np.arctan2(boxes_cam[:, 0], boxes_cam[:, 2])
    alpha = (alpha + np.pi) % (2 * np.pi) - np.pi
    return KittiLabels(np.array(names, dtype="<U16"), np.round(truncated, 2), occluded, alpha,
                       bbox, boxes_cam, score)


def _scene_boxes(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Class names and (N, 7) camera boxes of one scene, kept apart on the ground."""
    names, boxes = [], []
    for name, ((length, height, width), (low, high)) in OBJECT_KINDS.items():
        for _ in range(rng.integers(low, high + 1)):
            for _attempt in range(20):
                z = rng.uniform(4.0, 60.0)
                x = rng.uniform(-0.7, 0.7) * z + rng.normal(0.0, 1.0)
                if all((x - b[0]) ** 2 + (z - b[2]) ** 2 > 4.5**2 for b in boxes):
                    break
            dims = np.array([length, height, width]) * rng.normal(1.0, 0.06, 3)
            ry = rng.uniform(-np.pi, np.pi)
            boxes.append([x, CAMERA_HEIGHT_M + rng.normal(0.0, 0.05), z, *dims, ry])
            names.append(name)
    return names, np.array(boxes, dtype=np.float64).reshape(-1, 7)


def _dontcare(rng: np.random.Generator) -> KittiLabels:
    """0-3 DontCare rows: image regions only, 3D fields at KITTI's -1000 / -1 / -10 markers."""
    count = int(rng.integers(0, 4))
    x1 = rng.uniform(0, 1100, count)
    y1 = rng.uniform(120, 200, count)
    bbox = np.stack([x1, y1, x1 + rng.uniform(15, 120, count), y1 + rng.uniform(10, 40, count)], 1)
    boxes = np.tile([-1000.0, -1000.0, -1000.0, -1.0, -1.0, -1.0, -10.0], (count, 1))
    return KittiLabels(np.array(["DontCare"] * count, dtype="<U16"), np.full(count, -1.0),
                       np.full(count, -1, np.int64), np.full(count, -10.0), bbox, boxes)


def _noisy_predictions(rng: np.random.Generator, names: list[str],
                       boxes: np.ndarray) -> KittiLabels:
    """Detections of one frame: noisy, partly missed, some duplicated, plus false positives."""
    depth = boxes[:, 2]
    found = rng.random(len(boxes)) < np.clip(1.05 - depth / 70.0, 0.3, 0.97)
    pred = boxes[found].copy()
    pred_names = [n if rng.random() > 0.05 else "Van"
                  for n, f in zip(names, found, strict=True) if f]
    noise_m = 0.015 * pred[:, 2:3] * rng.normal(size=(len(pred), 3))
    pred[:, :3] += noise_m * np.array([0.3, 0.2, 1.0])
    pred[:, 3:6] *= rng.normal(1.0, 0.05, (len(pred), 3))
    pred[:, 6] += rng.normal(0.0, 0.1, len(pred)) + np.pi * (rng.random(len(pred)) < 0.1)
    error = np.linalg.norm(noise_m, axis=1)
    score = np.clip(np.exp(-error) * rng.uniform(0.6, 1.0, len(pred)), 0.01, 1.0)
    duplicate = rng.random(len(pred)) < 0.08  # unsuppressed twins slightly shifted
    jitter_m = rng.normal(size=(int(duplicate.sum()), 7)) * np.array([0.1, 0, 0.2, 0, 0, 0, 0])
    pred = np.concatenate([pred, pred[duplicate] + jitter_m])
    pred_names += [n for n, d in zip(pred_names, duplicate, strict=True) if d]
    score = np.concatenate([score, score[duplicate] * 0.8])
    ghost_names, ghost_boxes = _scene_boxes(rng)  # false positives where nothing is
    num_ghosts = int(rng.integers(1, 4))
    ghost_boxes = ghost_boxes[:num_ghosts]
    pred = np.concatenate([pred, ghost_boxes])
    pred_names += ghost_names[:num_ghosts]
    score = np.concatenate([score, rng.uniform(0.05, 0.7, len(ghost_boxes))])
    pred[:, 6] = (pred[:, 6] + np.pi) % (2 * np.pi) - np.pi
    return _labels(pred_names, pred, np.zeros(len(pred), np.int64), score)


def synthetic_kitti_frames(num_frames: int,
                           seed: int = 0) -> tuple[list[KittiLabels], list[KittiLabels]]:
    """(ground truth, predictions) of ``num_frames`` KITTI-like frames."""
    rng = np.random.default_rng(seed)
    gt_frames, dt_frames = [], []
    for _ in range(num_frames):
        names, boxes = _scene_boxes(rng)
        occluded = rng.choice(3, size=len(names), p=[0.55, 0.3, 0.15])
        objects = _labels(names, boxes, occluded.astype(np.int64), None)
        dontcare = _dontcare(rng)
        gt_frames.append(KittiLabels(
            *(np.concatenate([getattr(objects, f), getattr(dontcare, f)])
              for f in ("names", "truncated", "occluded", "alpha", "bbox", "boxes_cam"))
        ))
        dt_frames.append(_noisy_predictions(rng, names, boxes))
    return gt_frames, dt_frames


def main() -> None:
    """Time evaluate_kitti over repeated runs and print the figures to compare with the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3769)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpus={os.cpu_count()}, torch threads={torch.get_num_threads()}, device=cpu")
    start = time.perf_counter()
    gt, dt = synthetic_kitti_frames(args.frames)
    print(f"generated {args.frames} frames in {time.perf_counter() - start:.1f} s: "
          f"{sum(len(g) for g in gt)} gt rows, {sum(len(d) for d in dt)} detections")
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = evaluate_kitti(gt, dt)
        seconds.append(time.perf_counter() - start)
    print(result.format_table(), end="")
    print(f"evaluate_kitti, {args.frames} frames, 3 classes x (bbox, bev, 3d, aos): "
          f"median {statistics.median(seconds):.2f} s, min {min(seconds):.2f} s, "
          f"max {max(seconds):.2f} s over {args.repeats} runs (target <= 10 s)")


if __name__ == "__main__":
    main()
