"""Rotated IoU throughput (numpy, torch CPU, CUDA when present) against the evaluator budget.

Target (design.md section 5): KITTI evaluation of 3769 frames in <= 10 s on the CPU; the
evaluator needs BEV and 3D IoU of about 10 ground truths x 20 detections per frame.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from monotakd_ros.geometry.iou import bev_iou_matrix_cam, bev_iou_pairs, iou3d_matrix_cam


def timed(function: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(median, min, max) wall seconds of repeated calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def overlapping_pairs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Worst case: every pair overlaps (car-sized boxes a few dm apart)."""
    a = np.column_stack([rng.uniform(0, 40, (count, 2)), rng.uniform(3.5, 4.5, count),
                         rng.uniform(1.5, 1.8, count), rng.uniform(-np.pi, np.pi, count)])
    b = a + np.column_stack([rng.normal(0, 0.5, (count, 2)), rng.normal(0, 0.2, (count, 2)),
                             rng.normal(0, 0.3, count)])
    return a, b


def camera_scene(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 7) camera boxes spread like KITTI objects in front of the car."""
    return np.column_stack([rng.uniform(-15, 15, count), rng.uniform(1.4, 1.9, count),
                            rng.uniform(5, 60, count), rng.uniform(3.5, 4.5, count),
                            rng.uniform(1.4, 1.7, count), rng.uniform(1.5, 1.8, count),
                            rng.uniform(-np.pi, np.pi, count)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--frames", type=int, default=3769)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}")
    rng = np.random.default_rng(0)

    a, b = overlapping_pairs(rng, args.pairs)
    kinds: list[tuple[str, object, object]] = [
        ("numpy float64", a, b),
        ("torch CPU float32", torch.from_numpy(a).float(), torch.from_numpy(b).float()),
        ("torch CPU float64", torch.from_numpy(a), torch.from_numpy(b)),
    ]
    if torch.cuda.is_available():
        kinds.append(("torch CUDA float32", torch.from_numpy(a).float().cuda(),
                      torch.from_numpy(b).float().cuda()))
    print(f"\nbev_iou_pairs, {args.pairs} pairs that all overlap (worst case):")
    for name, first, second in kinds:
        def run(first: object = first, second: object = second) -> None:
            bev_iou_pairs(first, second)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        median, low, high = timed(run, args.repeats)
        print(f"  {name:20s} median {median * 1e3:8.1f} ms  (min {low * 1e3:.1f}, "
              f"max {high * 1e3:.1f})  {args.pairs / median / 1e6:6.2f} M pairs/s")

    ground_truth = [camera_scene(rng, 10) for _ in range(args.frames)]
    detections = [camera_scene(rng, 20) for _ in range(args.frames)]

    def per_frame() -> None:
        for gt, det in zip(ground_truth, detections, strict=True):
            bev_iou_matrix_cam(det, gt)
            iou3d_matrix_cam(det, gt)

    median, low, high = timed(per_frame, max(1, args.repeats // 2))
    print(f"\nevaluator-shaped: {args.frames} frames x 20 det x 10 GT, one BEV + one 3D matrix "
          f"call per frame (numpy):\n  median {median:.2f} s  (min {low:.2f}, max {high:.2f})"
          "  target <= 10 s for the whole evaluation")


if __name__ == "__main__":
    main()
