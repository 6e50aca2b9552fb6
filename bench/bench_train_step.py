"""Student training step with its data: today's live pipeline against the prepared one.

Default (issue 13 target: >= 3x training samples/s including loading, loading <= 10 % of the
step): full TAKD student of the small config, batch 4, on synthetic full-size KITTI frames.

- ``live``: KittiFrameDataset + DataLoader workers (decode, resize, depth projection per step) and
  the frozen teacher and TA run every step;
- ``prepared``: the prepared split (data/prepared) gathered by index, augmented on the device,
  with the frozen targets read from their fp16 cache; no workers.

Both run in the same process, alternating in rounds, so that a loaded machine slows both alike;
the ratio of the medians is the figure to read. ``--model-only`` keeps the older measurement:
step time and peak memory per distillation mode on a synthetic batch (one process per mode).
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
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from bench_dataloader import write_frames

from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split
from monotakd_ros.data.prepared.store import format_bytes
from monotakd_ros.distill.config import DetectionLossWeights, distill_preset
from monotakd_ros.model_io.checkpoint import save_checkpoint
from monotakd_ros.models.build import build_assistant, build_student, build_teacher
from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import build_stage_data, choose_threads, input_spec_for
from monotakd_ros.training.distributed import DistContext, resolve_device
from monotakd_ros.training.stages import FrozenModels, Stage, StudentLoss, build_stage
from monotakd_ros.training.step import autocast_context, build_optimizer

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


def _student_stage(cfg: ModelConfig, root: Path) -> Stage:
    """Full-TAKD student with randomly initialised teacher and TA checkpoints."""
    torch.manual_seed(0)
    spec = input_spec_for(cfg)
    paths = {}
    for name, model in (("teacher", build_teacher(cfg)), ("ta", build_assistant(cfg))):
        meta = Stage(name, cfg, spec, model, torch.nn.Identity()).checkpoint_meta(0, 0)
        paths[name] = save_checkpoint(root / name, model, meta)
    return build_stage("student", cfg, spec, DetectionLossWeights(), distill_preset("takd"),
                       paths["teacher"], paths["ta"])


def _timed_steps(stage: Stage, batches: Iterator, optimizer: torch.optim.Optimizer,
                 steps: int) -> tuple[list[float], list[float]]:
    """Seconds per whole step and per wait for the batch, over ``steps`` steps."""
    totals, waits = [], []
    for _ in range(steps):
        start = time.perf_counter()
        batch = next(batches)
        loaded = time.perf_counter()
        terms = stage.loss_module(batch, stage.frozen_outputs(batch))
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(stage.model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        totals.append(time.perf_counter() - start)
        waits.append(loaded - start)
    return totals, waits


def compare_pipelines(args: argparse.Namespace) -> None:
    """Live vs prepared pipeline of the full-TAKD student, alternating rounds in one process."""
    cfg = load_model_config(args.model_config)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_frames(root / "kitti", args.frames)
        train = TrainConfig(batch_size=args.batch_size, workers=args.workers, seed=0,
                            augment=AugmentConfig(0.5, 0.2, 0.2), data_cache=True,
                            frozen_cache="fp16")
        ctx = DistContext(rank=0, world_size=1, local_rank=0, device=device)
        live_stage, cached_stage = _student_stage(cfg, root), _student_stage(cfg, root)
        live_data = build_stage_data(live_stage, root / "kitti", (), replace(
            train, data_cache=False), ctx, None)
        started = time.perf_counter()
        store = prepared_split(SplitSource(root / "kitti", "train", live_stage.spec),
                               root / "cache", workers=args.workers)
        prepare_s = time.perf_counter() - started
        started = time.perf_counter()
        prepared = build_stage_data(cached_stage, root / "kitti", (), train, ctx, root / "cache")
        frozen_s = time.perf_counter() - started
        frozen_bytes = cached_stage.frozen.nbytes  # type: ignore[union-attr]
        print(f"prepared split: {args.frames} frames in {prepare_s:.1f} s, "
              f"{format_bytes(store.nbytes / args.frames)} per frame; frozen targets (fp16, 2 "
              f"flip states): {frozen_s:.1f} s, {format_bytes(frozen_bytes / args.frames)} "
              f"per frame; resident: {prepared.frames.resident}")
        pipelines = {
            f"live, {args.workers} workers, {args.live_threads} threads (today)":
                (live_stage, live_data, args.live_threads),
            f"prepared + cached targets, {args.live_threads} threads":
                (cached_stage, prepared, args.live_threads),
            f"prepared + cached targets, {choose_threads(0, device)} thread(s) (chosen)":
                (cached_stage, prepared, choose_threads(0, device)),
        }
        results = {name: ([], []) for name in pipelines}
        streams = {name: data.batches(0, 0, data.batches_per_epoch)
                   for name, (_, data, _) in pipelines.items()}
        optimizers = {id(stage): build_optimizer(stage.model, train)
                      for stage, _, _ in pipelines.values()}
        for round_index in range(args.warmup_rounds + args.rounds):
            for name, (stage, _, threads) in pipelines.items():
                torch.set_num_threads(threads)
                totals, waits = _timed_steps(stage, streams[name], optimizers[id(stage)],
                                             args.steps_per_round)
                if round_index >= args.warmup_rounds:
                    results[name][0].extend(totals)
                    results[name][1].extend(waits)
        print(f"{'pipeline':<52} | {'s/step':>7} | {'IQR':>13} | {'samples/s':>9} | "
              f"{'loading':>7}")
        baseline = None
        for name, (totals, waits) in results.items():
            median = statistics.median(totals)
            q1, _, q3 = statistics.quantiles(totals, n=4)
            share = sum(waits) / sum(totals)
            baseline = baseline or args.batch_size / median
            print(f"{name:<52} | {median:>7.3f} | {q1:>6.3f}-{q3:<6.3f} | "
                  f"{args.batch_size / median:>9.2f} | {100 * share:>6.1f}%   "
                  f"x{args.batch_size / median / baseline:.2f}")
        print(f"{len(totals)} timed steps per pipeline ({args.rounds} rounds of "
              f"{args.steps_per_round}, after {args.warmup_rounds} warm-up round(s)); "
              f"loading = time waiting for the next batch / step time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-config", type=Path,
                        default=REPO / "config" / "models" / "small.yaml")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--amp", default="off", choices=("off", "fp16", "bf16"))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--points", type=int, default=20000, help="LiDAR points per frame")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--model-only", action="store_true",
                        help="per-mode step on a synthetic batch (no loading), one process each")
    parser.add_argument("--frames", type=int, default=24, help="pipeline comparison: frames")
    parser.add_argument("--workers", type=int, default=2, help="live pipeline's loader workers")
    parser.add_argument("--live-threads", type=int, default=2,
                        help="torch threads of today's pipeline (torch's default here)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps-per-round", type=int, default=4)
    parser.add_argument("--warmup-rounds", type=int, default=1)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.mode is not None:
        print(json.dumps(measure_mode(args)))
        return
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {resolve_device(args.device)}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
          + f", load average {os.getloadavg()[0]:.1f}")
    if not args.model_only:
        print(f"model: {args.model_config}, student full TAKD, batch {args.batch_size}, "
              f"{args.frames} synthetic 375x1242 frames with 120k points")
        compare_pipelines(args)
        return
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
