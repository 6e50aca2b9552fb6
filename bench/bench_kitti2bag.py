"""Throughput of KITTI raw -> rosbag2 conversion and of reading frames back (full-size frames)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
from helpers_kitti_raw import DATE, kitti_raw_calib, oxts_packet  # noqa: E402

from monotakd_ros.bags.frame_reader import iter_bag_frames  # noqa: E402
from monotakd_ros.bags.kitti2bag import convert_drive_to_bag  # noqa: E402
from monotakd_ros.data.kitti.calib import raw_calib_from_camera_calib  # noqa: E402
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter  # noqa: E402
from monotakd_ros.geometry.calib import CameraCalib  # noqa: E402

IMAGE_HW = (375, 1242)
NUM_POINTS = 120_000  # a typical HDL-64E scan


def write_drive(root: Path, num_frames: int) -> Path:
    """A full-size drive: noisy smooth images (PNG-compressible like real ones), random scans."""
    rng = np.random.default_rng(0)
    small = kitti_raw_calib().camera_calib(2)
    full = CameraCalib(P2=small.P2 * [[6], [6], [1]], R0_rect=small.R0_rect,
                       T_cam_from_lidar=small.T_cam_from_lidar)
    base = np.linspace(0, 255, IMAGE_HW[1], dtype=np.float64)[None, :, None]
    with RawDriveWriter(root, DATE, 1) as writer:
        writer.write_calib(raw_calib_from_camera_calib(full, IMAGE_HW))
        for index in range(num_frames):
            noise = rng.normal(0, 8, size=(*IMAGE_HW, 3))
            image = np.clip(base + noise, 0, 255).astype(np.uint8)
            points = rng.normal(0, 10, size=(NUM_POINTS, 4)).astype(np.float32)
            stamp_ns = 1_317_042_145_964_389_445 + index * 100_000_000
            writer.add_frame(image, points, oxts_packet(index), stamp_ns, stamp_ns - 10**7)
    return writer.drive_dir


def main() -> None:
    """Print machine, then median and spread of conversion and reading rates."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, device cpu")
    print(f"frames: {args.frames} x ({IMAGE_HW[0]}x{IMAGE_HW[1]} bgr8 + {NUM_POINTS} points)")
    with tempfile.TemporaryDirectory() as tmp:
        drive_dir = write_drive(Path(tmp), args.frames)
        for storage in ("mcap", "sqlite3"):
            write_fps, read_fps = [], []
            for repeat in range(args.repeats):
                bag = Path(tmp) / f"{storage}_{repeat}"
                start = time.perf_counter()
                convert_drive_to_bag(drive_dir, bag, storage=storage)
                write_fps.append(args.frames / (time.perf_counter() - start))
                start = time.perf_counter()
                count = sum(1 for _ in iter_bag_frames(bag))
                read_fps.append(count / (time.perf_counter() - start))
            for name, values in (("convert", write_fps), ("read", read_fps)):
                print(f"{storage:8s} {name:8s} median {statistics.median(values):7.1f} frames/s, "
                      f"min {min(values):7.1f}, max {max(values):7.1f} "
                      f"(KITTI records at 10 frames/s)")


if __name__ == "__main__":
    main()
