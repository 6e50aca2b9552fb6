"""Data pipeline cost: prepare_image, a full KITTI sample, collation, and prepared batches.

Writes a few synthetic KITTI-format frames at full resolution (375 x 1242, ~120k LiDAR points
like an HDL-64E scan) into a temporary directory and times the pipeline on them.
Run: .venv/bin/python bench/bench_dataloader.py [--frames 8] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.data.batch import collate_frames, prepare_image
from monotakd_ros.data.datasets import KittiFrameDataset
from monotakd_ros.data.kitti.calib import object_calib_from_camera_calib
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter
from monotakd_ros.data.prepared.batches import PreparedFrames, draw_augmentation
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW, kitti_camera_calib
from monotakd_ros.model_io.input_spec import InputSpec


def timed_ms(run: Callable[[], object], repeats: int) -> list[float]:
    run()  # warm-up: caches, lazy imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def report(name: str, times_ms: list[float]) -> None:
    q1, _, q3 = statistics.quantiles(times_ms, n=4)
    print(f"{name:<44s} median {statistics.median(times_ms):7.2f} ms   "
          f"IQR {q1:6.2f}-{q3:6.2f} ms   min {min(times_ms):6.2f} ms   (n={len(times_ms)})")


def write_frames(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    writer = KittiObjectWriter(root)
    calib = object_calib_from_camera_calib(kitti_camera_calib())
    labels = KittiLabels(names=np.array(["Car"]), truncated=np.zeros(1),
                         occluded=np.zeros(1, np.int64), alpha=np.zeros(1),
                         bbox=np.array([[500.0, 170.0, 700.0, 260.0]]),
                         boxes_cam=np.array([[1.0, 1.65, 15.0, 3.9, 1.56, 1.6, 0.2]]))
    for index in range(count):
        image = rng.integers(0, 256, (*KITTI_IMAGE_HW, 3), dtype=np.uint8)
        # ~120k points around the car, like one HDL-64E revolution.
        azimuth = rng.uniform(-np.pi, np.pi, 120_000)
        distance = rng.uniform(3.0, 80.0, 120_000)
        points = np.column_stack([distance * np.cos(azimuth), distance * np.sin(azimuth),
                                  rng.uniform(-1.8, 1.0, 120_000), rng.uniform(0, 1, 120_000)])
        writer.write_frame(f"{index:06d}", image, calib, points.astype(np.float32), labels)
    writer.write_image_sets({"train": [f"{i:06d}" for i in range(count)]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
          "threads, device cpu (the pipeline is CPU-only)")
    calib = kitti_camera_calib()
    image = np.random.default_rng(1).integers(0, 256, (*KITTI_IMAGE_HW, 3), dtype=np.uint8)
    for hw in ((384, 1248), (192, 640)):
        spec = InputSpec(input_hw=hw)
        report(f"prepare_image 375x1242 -> {hw[0]}x{hw[1]}",
               timed_ms(lambda s=spec: prepare_image(image, calib.P2, s), args.repeats))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_frames(root, args.frames)
        spec = InputSpec()
        plain = KittiFrameDataset(root, "train", spec)
        augmented = KittiFrameDataset(root, "train", spec,
                                      augment=AugmentConfig(0.5, 0.2, 0.2))
        camera_only = KittiFrameDataset(root, "train", spec, with_lidar=False)
        counter = iter(range(10**9))
        for name, dataset in (("sample: image + LiDAR + labels", plain),
                              ("sample: same, flip/jitter augmented", augmented),
                              ("sample: camera only", camera_only)):
            report(name, timed_ms(lambda d=dataset: d[next(counter) % args.frames],
                                  args.repeats))
        samples = [plain[i % args.frames] for i in range(4)]
        report("collate_frames, batch of 4", timed_ms(lambda: collate_frames(samples),
                                                      args.repeats))
        report("live: 4 augmented samples + collate", timed_ms(
            lambda: collate_frames([augmented[next(counter) % args.frames] for _ in range(4)]),
            args.repeats))
        store = prepared_split(SplitSource(root, "train", spec), root / "cache")
        config = AugmentConfig(0.5, 0.2, 0.2)
        for resident in (False, True):
            frames = PreparedFrames(store, spec, torch.device("cpu"), resident)
            name = f"prepared batch of 4, {'resident' if resident else 'memory-mapped'}"

            def prepared_batch(frames: PreparedFrames = frames) -> object:
                start = next(counter)
                rows = [(start + k) % args.frames for k in range(4)]
                return frames.batch(rows, draw_augmentation(config, [start + k for k in
                                                                     range(4)]))

            report(name, timed_ms(prepared_batch, args.repeats))
    print("target: no explicit figure in design.md; a worker must keep up with the training "
          "step (several frames/s per worker). Timings on a shared machine are noisy.")


if __name__ == "__main__":
    main()
