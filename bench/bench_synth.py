"""Synthetic KITTI generation speed: frames/s at 375 x 1242 with a 64-beam sweep.

Measures generate_object_frame (scene sampling, rendering, id buffer, labels, LiDAR ray casting)
alone, then with PNG encoding of the image as the KITTI writer does it, then drive frames.
Reports the median and the 10-90 % spread of wall-clock and CPU time per frame; CPU time is
the fairer figure on a shared machine, wall time what a user waits. Target: >= 20 frames/s.

    .venv/bin/python bench/bench_synth.py [--frames 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from monotakd_ros.data.kitti.images import DEFAULT_PNG_COMPRESSION
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.drive import generate_drive
from monotakd_ros.data.synth.generator import generate_object_frame, lidar_model
from monotakd_ros.data.synth.writer import write_object_dataset

TARGET_FPS = 20.0


def machine() -> str:
    try:
        import torch

        threads = str(torch.get_num_threads())
    except ImportError:
        threads = "n/a (torch not importable)"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"machine: {platform.platform()} | python {platform.python_version()} | "
            f"cpus {os.cpu_count()} | torch threads {threads} | cv2 threads "
            f"{cv2.getNumThreads()} | device cpu | load average {load}")


def timed(step: Callable[[int], object], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU seconds of ``step(i)`` for i in range(count)."""
    wall, cpu = np.zeros(count), np.zeros(count)
    for i in range(count):
        w0, c0 = time.perf_counter(), time.process_time()
        step(i)
        wall[i], cpu[i] = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu


def report(name: str, wall: np.ndarray, cpu: np.ndarray) -> None:
    for clock, values in (("wall", wall), ("cpu", cpu)):
        ms = values * 1e3
        median = float(np.median(ms))
        p10, p90 = np.percentile(ms, [10, 90])
        verdict = "meets" if 1e3 / median >= TARGET_FPS else "misses"
        print(f"{name:<34} {clock:>4}: median {median:6.1f} ms/frame (p10 {p10:5.1f}, p90 "
              f"{p90:5.1f})  ->  {1e3 / median:5.1f} frames/s  [{verdict} {TARGET_FPS:.0f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SynthConfig()
    model = lidar_model(config.lidar)
    print(machine())
    print(f"image {config.image_hw[1]} x {config.image_hw[0]}, LiDAR {config.lidar.num_beams} "
          f"beams x {model.num_columns} columns ({config.lidar.azimuth_step_deg} deg) = "
          f"{model.num_rays} rays, range {config.lidar.max_range_m} m")
    for i in range(2):  # warm caches (noise tiles, ray layout)
        generate_object_frame(args.seed, 10_000 + i, config)

    frames = {}

    def generate(i: int) -> None:
        frames[i] = generate_object_frame(args.seed, i, config)

    wall, cpu = timed(generate, args.frames)
    report("object frame, generation only", wall, cpu)
    points = np.mean([len(f.points) for f in frames.values()])
    objects = np.mean([np.count_nonzero(f.labels.names != "DontCare") for f in frames.values()])
    print(f"{'':<34} mean {points:.0f} LiDAR points, {objects:.1f} labelled objects per frame")

    png = [cv2.IMWRITE_PNG_COMPRESSION, DEFAULT_PNG_COMPRESSION]

    def encode(i: int) -> None:
        ok, _ = cv2.imencode(".png", frames[i].image_bgr, png)
        if not ok:
            raise RuntimeError("PNG encoding failed")

    enc_wall, enc_cpu = timed(encode, args.frames)
    report("object frame + PNG encoding", wall + enc_wall, cpu + enc_cpu)

    drive = generate_drive(args.seed, args.frames, config)
    wall, cpu = timed(lambda i: next(drive), args.frames)
    report("raw drive frame (+ OXTS, tracklets)", wall, cpu)

    # End to end: files on disk, as monotakd-synth writes them, with one and two processes.
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            write_object_dataset(Path(out), args.frames, args.seed, workers=workers)
            seconds = time.perf_counter() - start
        print(f"{'write_object_dataset, ' + str(workers) + ' worker(s)':<34} wall: "
              f"{args.frames / seconds:5.1f} frames/s over {args.frames} frames (PNG, bin, "
              "labels, calib, planes; spawn start-up included)")


if __name__ == "__main__":
    main()
