"""Distillation step time and peak memory of the student stage, per distillation mode.

Target (design.md section 5): "distillation step time and peak memory are reported". One step =
frozen teacher + TA forward (no grad), student forward, losses, backward, clip, AdamW step, on a
synthetic batch at the model's input size. Each mode runs in its own process so that the peak
RSS (CPU, ``ru_maxrss``) or ``torch.cuda.max_memory_allocated`` (CUDA) belongs to it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.distill.config import distill_preset
from monotakd_ros.models.build import build_assistant, build_student, build_teacher
from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.distributed import resolve_device
from monotakd_ros.training.stages import FrozenModels, Stage, StudentLoss
from monotakd_ros.training.trainer import autocast_context, build_optimizer

REPO = Path(__file__).resolve().parents[1]
MODES = ("none", "cmkd", "imd", "takd")


def synthetic_batch(cfg: ModelConfig, batch_size: int, points_per_frame: int) -> FrameBatch:
    """Random images, a KITTI-like P2, LiDAR points in the grid and two cars per frame."""
    height, width = cfg.image.input_hw
    generator = torch.Generator().manual_seed(0)
    scale = width / 1242.0
    P2 = torch.tensor([[721.5 * scale, 0, 609.6 * scale, 44.9 * scale],
                       [0, 721.5 * scale, 172.9 * scale, 0.2], [0, 0, 1, 0.0027]])
    low = torch.tensor([cfg.grid.x_range_m[0], cfg.grid.y_range_m[0], cfg.grid.z_range_m[0], 0])
    high = torch.tensor([cfg.grid.x_range_m[1], cfg.grid.y_range_m[1], cfg.grid.z_range_m[1], 1])
    points = [low + (high - low) * torch.rand(points_per_frame, 4, generator=generator)
              for _ in range(batch_size)]
    depth = torch.rand(batch_size, height, width, generator=generator) * 40 + 2
    depth[torch.rand(batch_size, height, width, generator=generator) > 0.05] = 0  # sparse
    cars = torch.tensor([[15.0, 2.0, -0.95, 3.9, 1.6, 1.56, 0.3],
                         [25.0, -4.0, -0.95, 3.9, 1.6, 1.56, 1.8]])
    return FrameBatch(
        images=torch.randn(batch_size, 3, height, width, generator=generator),
        P2=P2.expand(batch_size, 3, 4).clone(),
        T_rect_from_lidar=torch.tensor(cfg.nominal_T_rect_from_lidar).expand(
            batch_size, 4, 4).clone(),
        points=points, depth_maps=depth, gt_boxes_lidar=[cars.clone()] * batch_size,
        gt_classes=[torch.zeros(2, dtype=torch.long)] * batch_size,
        has_labels=torch.ones(batch_size, dtype=torch.bool),
        frame_ids=[str(i) for i in range(batch_size)],
        original_hw=torch.tensor([[375, 1242]] * batch_size),
        scale_xy=torch.full((batch_size, 2), scale))


def measure_mode(args: argparse.Namespace) -> dict:
    """Median/min/max step seconds and peak memory of one mode (run in a child process)."""
    torch.manual_seed(0)
    device = resolve_device(args.device)
    cfg = load_model_config(args.model_config)
    distill = distill_preset(args.mode)
    student = build_student(cfg)
    frozen = FrozenModels(build_teacher(cfg) if distill.needs_teacher else None,
                          build_assistant(cfg) if distill.needs_assistant else None)
    stage = Stage("student", cfg, input_spec_for(cfg), student,
                  StudentLoss(student, cfg, distill), frozen).to(device)
    train_cfg = TrainConfig(amp=args.amp)
    optimizer = build_optimizer(student, train_cfg)
    batch = synthetic_batch(cfg, args.batch_size, args.points).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with autocast_context(device, args.amp):
            terms = stage.loss_module(batch, stage.frozen_outputs(batch))
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak_mib = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"mode": args.mode, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "peak_mib": peak_mib, "device": str(device),
            "student_params": sum(p.numel() for p in student.parameters()),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-config", type=Path,
                        default=REPO / "config" / "models" / "small.yaml")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--amp", default="off", choices=("off", "fp16", "bf16"))
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--points", type=int, default=20000, help="LiDAR points per frame")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.mode is not None:
        print(json.dumps(measure_mode(args)))
        return
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {resolve_device(args.device)}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
    print(f"model: {args.model_config}, batch {args.batch_size}, {args.points} points/frame, "
          f"amp {args.amp}, {args.warmup} warm-up + {args.repeats} timed steps per mode")
    memory = "peak CUDA alloc" if resolve_device(args.device).type == "cuda" else "peak RSS"
    print(f"{'mode':>6} | {'median s/step':>13} | {'min':>7} | {'max':>7} | {memory + ' MiB':>18}")
    for mode in args.modes:
        child = [sys.executable, __file__, "--mode", mode, *sys.argv[1:]]
        output = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        print(f"{mode:>6} | {r['median_s']:>13.3f} | {r['min_s']:>7.3f} | {r['max_s']:>7.3f} | "
              f"{r['peak_mib']:>18.0f}")
    print(f"student parameters: {r['student_params']:,}")


if __name__ == "__main__":
    main()
