"""Student inference latency, parameters and FLOPs for the model configs (design §5).

Usage:
    .venv/bin/python bench/bench_inference.py                      # both configs, CPU, 2 threads
    .venv/bin/python bench/bench_inference.py --config config/models/small.yaml --repeats 50
    .venv/bin/python bench/bench_inference.py --device cuda --fp16

Targets: small config >= 10 frames/s on a 2-core CPU; GPU full resolution fp16 >= 100 frames/s;
ResNet-50 paper configuration >= 30 frames/s on an H100, about 48 M parameters / 45 GFLOPs.
FLOPs are counted by torch.utils.flop_counter (convolutions and matrix products, 2 per MAC);
grid_sample and element-wise ops are not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from monotakd_ros.models import build_student, load_model_config
from monotakd_ros.models.postprocess import detections_from_head

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [ROOT / "config/models/small.yaml", ROOT / "config/models/kitti_r50.yaml"]
# KITTI object training/calib/000000.txt P2 at 1242 x 375 (design §3)
KITTI_P2 = [[7.215377e02, 0.0, 6.095593e02, 4.485728e01],
            [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
            [0.0, 0.0, 1.0, 2.745884e-03]]


def scaled_p2(width: int) -> torch.Tensor:
    """KITTI P2 for an image resized (aspect kept) to ``width`` columns."""
    s = width / 1242.0
    P2 = torch.tensor(KITTI_P2)
    P2[:2] *= s
    return P2


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_config(path: Path, device: torch.device, fp16: bool, repeats: int,
                 warmup: int) -> None:
    cfg = load_model_config(path)
    model = build_student(cfg).eval().to(device)
    h, w = cfg.image.input_hw
    images = torch.randn(1, 3, h, w, device=device)
    P2 = scaled_p2(w)[None].to(device)
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(images, P2)
    gflops = counter.get_total_flops() / 1e9
    autocast = torch.autocast(device.type, dtype=torch.float16, enabled=fp16)
    network_ms, total_ms = [], []
    with torch.inference_mode(), autocast:
        for i in range(warmup + repeats):
            synchronize(device)
            start = time.perf_counter()
            out = model(images, P2)
            synchronize(device)
            mid = time.perf_counter()
            detections_from_head(out.head, model.head.anchors, cfg.head, cfg.postprocess)
            synchronize(device)
            end = time.perf_counter()
            if i >= warmup:
                network_ms.append((mid - start) * 1e3)
                total_ms.append((end - start) * 1e3)
    print(f"\n== {path.name}: trunk={cfg.trunk.name} input={h}x{w} "
          f"grid={cfg.grid.nx}x{cfg.grid.ny} (nx x ny) bins={cfg.depth.num_bins} "
          f"bev_ch={cfg.bev_channels}")
    print(f"params: {params_m:.2f} M   FLOPs (conv+matmul): {gflops:.1f} GFLOPs "
          f"(= {gflops / 2:.1f} GMACs)")
    for name, values in (("network", network_ms), ("network+postprocess", total_ms)):
        median = statistics.median(values)
        spread = (min(values), max(values))
        stdev = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>20}: median {median:8.1f} ms  min {spread[0]:8.1f}  max {spread[1]:8.1f}"
              f"  stdev {stdev:6.1f}  -> {1000.0 / median:6.1f} frames/s  (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append",
                        help="model YAML (repeatable); default: small and kitti_r50")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--fp16", action="store_true", help="autocast to float16 (GPU)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed runs per config (the R50 config on CPU uses at most 3)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"cpus={os.cpu_count()} | torch {torch.__version__} threads={torch.get_num_threads()}"
          f" | device={device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f" | fp16={args.fp16}")
    print("targets: small >= 10 frames/s (2-core CPU); R50 paper: ~48 M params, 45 GFLOPs; "
          "H100 fp16 full-res >= 100 frames/s, R50 >= 30 frames/s")
    for path in args.config or DEFAULT_CONFIGS:
        slow = device.type == "cpu" and load_model_config(path).trunk.name != "small"
        repeats = min(args.repeats, 3) if slow else args.repeats
        warmup = min(args.warmup, 1) if slow else args.warmup
        bench_config(path, device, args.fp16, repeats, warmup)


if __name__ == "__main__":
    main()
