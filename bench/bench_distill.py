"""Offline distillation throughput (frames/s): engine alone and bag mode end to end.

Usage:
    .venv/bin/python bench/bench_distill.py                        # small config, CPU
    .venv/bin/python bench/bench_distill.py --device cuda \
        --model-config config/models/kitti_r50.yaml

Two figures, each the median (and spread) of ``--repeats`` runs over ``--frames`` full-size
frames (375 x 1242 bgr8 + a 100k-point scan, real KITTI calibration):

- *engine*: frames already in memory -> sample preparation, frozen teacher + TA targets, student
  loss, backward and optimiser step (what the distiller costs per frame);
- *bag mode*: the same plus reading and decoding a rosbag2 (mcap) with ``iter_bag_frames``.

The teacher and TA are freshly initialised (weights do not change the cost). Also printed: the
student's parameter count, the mean step time and the peak memory (CUDA: allocator peak; CPU:
process max RSS).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
from training_fixtures import kitti_calib  # noqa: E402

from monotakd_ros.bags.frame_reader import BagFrame, iter_bag_frames  # noqa: E402
from monotakd_ros.bags.kitti2bag import convert_drive_to_bag  # noqa: E402
from monotakd_ros.data.kitti.calib import raw_calib_from_camera_calib  # noqa: E402
from monotakd_ros.data.kitti.oxts import OxtsPacket  # noqa: E402
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter  # noqa: E402
from monotakd_ros.distiller.run_config import distiller_config_from_values  # noqa: E402
from monotakd_ros.distiller.session import DistillSession  # noqa: E402
from monotakd_ros.model_io.checkpoint import save_checkpoint  # noqa: E402
from monotakd_ros.models.config import load_model_config  # noqa: E402
from monotakd_ros.training.config import TrainConfig  # noqa: E402
from monotakd_ros.training.data_loading import input_spec_for  # noqa: E402
from monotakd_ros.training.stages import build_stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGE_HW = (375, 1242)
NUM_POINTS = 100_000


def write_models(root: Path, model_config: Path) -> dict[str, Path]:
    """Fresh teacher and TA checkpoints of ``model_config``."""
    model_cfg = load_model_config(model_config)
    spec = input_spec_for(model_cfg)
    paths = {}
    for name in ("teacher", "ta"):
        stage = build_stage(name, model_cfg, spec, TrainConfig().detection)
        paths[name] = save_checkpoint(root / name, stage.model, stage.checkpoint_meta(0, 0))
    return paths


def random_scan(rng: np.random.Generator) -> np.ndarray:
    """(N, 4) points: a ground plane plus returns spread over the scene, 360 degrees."""
    azimuth = rng.uniform(-np.pi, np.pi, NUM_POINTS)
    range_m = rng.uniform(3.0, 70.0, NUM_POINTS)
    z = np.where(rng.random(NUM_POINTS) < 0.6, -1.73, rng.uniform(-1.7, 1.5, NUM_POINTS))
    return np.column_stack([range_m * np.cos(azimuth), range_m * np.sin(azimuth), z,
                            rng.random(NUM_POINTS)]).astype(np.float32)


def write_bag(root: Path, num_frames: int) -> Path:
    """A full-size raw drive converted to an mcap bag (kitti2bag layout)."""
    rng = np.random.default_rng(0)
    calib = kitti_calib()
    with RawDriveWriter(root / "raw", "2011_09_26", 1) as writer:
        writer.write_calib(raw_calib_from_camera_calib(calib, IMAGE_HW))
        for index in range(num_frames):
            image = rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
            stamp_ns = 1_317_042_145_964_389_445 + index * 100_000_000
            writer.add_frame(image, random_scan(rng), OxtsPacket(*([0.0] * 25), *([0] * 5)),
                             stamp_ns, stamp_ns - 10**7)
    return convert_drive_to_bag(writer.drive_dir, root / "bag").path


def session(models: dict[str, Path], model_config: Path, out: Path, bag: Path, device: str,
            batch_size: int) -> DistillSession:
    """A bag-mode session without checkpoints or logs in the timed part."""
    return DistillSession(distiller_config_from_values({
        "out_dir": str(out), "teacher": str(models["teacher"]), "assistant": str(models["ta"]),
        "model_config": str(model_config), "bags": [str(bag)], "show_progress_bar": False,
        "train": {"device": device, "batch_size": batch_size, "ckpt_interval": 0,
                  "log_interval": 0}}))


def peak_memory_mb(device: torch.device) -> float:
    """CUDA allocator peak, or this process's max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Print the machine, then median and spread of engine and bag-mode throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-config", type=Path, default=ROOT / "config/models/small.yaml")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {os.cpu_count()} "
          f"CPUs, torch threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = write_models(root, args.model_config)
        bag = write_bag(root, args.frames)
        frames: list[BagFrame] = list(iter_bag_frames(bag))
        print(f"model {args.model_config.name}; {len(frames)} frames of {IMAGE_HW[0]}x"
              f"{IMAGE_HW[1]} + {NUM_POINTS} points; batch {args.batch_size}")
        engine_fps, bag_fps, step_s = [], [], []
        for repeat in range(args.repeats + 1):  # the first run warms up and is not counted
            run = session(models, args.model_config, root / f"engine{repeat}", bag,
                          args.device, args.batch_size)
            if repeat == 0:
                params = sum(p.numel() for p in run.stage.model.parameters())
            started = time.perf_counter()
            for frame in frames:
                run.engine.offer("bench", frame)
            run.engine.flush()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - started
            report = run.engine.report()
            run = session(models, args.model_config, root / f"bag{repeat}", bag, args.device,
                          args.batch_size)
            started = time.perf_counter()
            run.run_bags(show_bar=False)
            run.engine.flush()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            bag_seconds = time.perf_counter() - started
            if repeat > 0:
                engine_fps.append(len(frames) / seconds)
                bag_fps.append(len(frames) / bag_seconds)
                step_s.append(report["step_time_s"])
        print(f"student parameters: {params / 1e6:.2f} M")
        for name, values in (("engine", engine_fps), ("bag mode", bag_fps)):
            spread = f"{min(values):.2f}-{max(values):.2f}"
            print(f"{name:9s} throughput: median {statistics.median(values):.2f} frames/s "
                  f"(range {spread}, {len(values)} runs)")
        print(f"step time (batch {args.batch_size}): median {statistics.median(step_s):.3f} s")
        print(f"peak memory: {peak_memory_mb(device):.0f} MB")


if __name__ == "__main__":
    main()
