"""Student inference: network time per fast path, predict() end to end, parameters and FLOPs.

Usage:
    .venv/bin/python bench/bench_inference.py                      # both configs, CPU, 2 threads
    .venv/bin/python bench/bench_inference.py --config config/models/small.yaml --repeats 50
    .venv/bin/python bench/bench_inference.py --device cuda --paths eager half half+cuda_graph
    .venv/bin/python bench/bench_inference.py --predictor          # + predict() on 1242 x 375
    .venv/bin/python bench/bench_inference.py --ab                 # before/after on this CPU
    .venv/bin/python bench/bench_inference.py --checkpoint models/default_student --ab \
        --paths eager freeze                                       # the shipped student

Targets (docs/benchmarks.md): small >= 10 frames/s on a 2-core CPU; H200/H100 kitti_r50
predict() <= 4 ms, small <= 2 ms, network >= 25 % of the fp16 peak. FLOPs are counted by
torch.utils.flop_counter (convolutions and matrix products, 2 per MAC); grid_sample and
element-wise ops are not counted.
``--ab`` interleaves the network call as it was before issue 19's changes (``model(images, P2)``
under ``inference_mode``, frustum sampling in one ``grid_sample`` call, which runs one thread
per frame) with the runner ``auto`` builds on the device now, and prints their ratio.
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

# As the detector node does (nodes/detector.py); OMP_WAIT_POLICY=ACTIVE on the command line
# measures spinning threads instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from monotakd_ros.inference import StudentPredictor  # noqa: E402
from monotakd_ros.inference.fast_paths import build_network_runner  # noqa: E402
from monotakd_ros.model_io.checkpoint import (  # noqa: E402
    load_checkpoint_meta,
    load_model_weights,
)
from monotakd_ros.models import build_student, lifting, load_model_config  # noqa: E402
from monotakd_ros.models.config import ModelConfig, saved_model_config  # noqa: E402
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [ROOT / "config/models/small.yaml", ROOT / "config/models/kitti_r50.yaml"]
# KITTI object training/calib/000000.txt P2 at 1242 x 375
KITTI_P2 = np.array([[7.215377e02, 0.0, 6.095593e02, 4.485728e01],
                     [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
                     [0.0, 0.0, 1.0, 2.745884e-03]])
# Dense fp16 tensor-core peak in TFLOP/s of the chips the targets name (vendor data sheets).
FP16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}


def machine_line(device: torch.device) -> str:
    """One line naming the machine, torch and the device."""
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return (f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
            f"cpus={os.cpu_count()} | torch {torch.__version__} "
            f"threads={torch.get_num_threads()} | "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} | device={device}{name}")


def fp16_peak_tflops(device: torch.device) -> float | None:
    """The chip's dense fp16 peak when it is one the targets name, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for chip, peak in FP16_PEAK_TFLOPS.items() if chip in name), None)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(function: Callable[[], object], device: torch.device, repeats: int,
             warmup: int) -> list[float]:
    """Milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    times = []
    for i in range(warmup + repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return times


def summary(values: list[float]) -> dict[str, float]:
    """Median, min, max and count of a list of milliseconds."""
    return {"median_ms": statistics.median(values), "min_ms": min(values),
            "max_ms": max(values), "n": len(values)}


def network_gflops(cfg: ModelConfig) -> tuple[float, float]:
    """(parameters in millions, GFLOPs per frame) of a config, counted on the CPU."""
    model = build_student(cfg).eval()
    height, width = cfg.image.input_hw
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, height, width), torch.as_tensor(KITTI_P2 * width / 1242,
                                                                dtype=torch.float32)[None])
    return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 1e9


def network_times(model: torch.nn.Module, cfg: ModelConfig, device: torch.device,
                  path_name: str, fp16_autocast: bool, repeats: int,
                  warmup: int) -> dict[str, object]:
    """Network-only timing of one fast path (``auto`` as the predictor builds it)."""
    runner = build_network_runner(model, device, path_name, fp16_autocast,
                                  tuple(cfg.image.input_hw))
    images, P2 = runner.example_inputs()
    result: dict[str, object] = summary(timed_ms(lambda: runner(images, P2), device, repeats,
                                                 warmup))
    result.update(requested=path_name, used=runner.path.name, autocast=runner.autocast)
    return result


def predictor_times(cfg: ModelConfig, device: torch.device, path_name: str,
                    repeats: int, warmup: int) -> dict[str, object]:
    """``predict()`` on a 1242 x 375 uint8 image: total and its prepare/network/decode parts."""
    image = np.random.default_rng(0).integers(0, 256, (375, 1242, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_random_student_checkpoint(Path(tmp) / "student", cfg, seed=0)
        predictor = StudentPredictor.from_checkpoint(checkpoint, device=str(device),
                                                     network_path=path_name,
                                                     score_threshold=0.3, camera_mode="fit_width")
    parts: dict[str, list[float]] = {"total": [], "prepare": [], "network": [], "decode": []}
    for i in range(warmup + repeats):
        start = time.perf_counter()
        detections = predictor.predict(image, KITTI_P2)
        total = (time.perf_counter() - start) * 1e3
        if i >= warmup:
            parts["total"].append(total)
            parts["prepare"].append(detections.timing.prepare_ms)
            parts["network"].append(detections.timing.network_ms)
            parts["decode"].append(detections.timing.decode_ms)
    result: dict[str, object] = {f"{k}_median_ms": statistics.median(v) for k, v in parts.items()}
    result.update(requested=path_name, used=predictor.network_path, n=repeats)
    return result


def one_call_sampling(frustum: torch.Tensor, sampling: torch.Tensor) -> torch.Tensor:
    """Frustum sampling as before issue 19: one grid_sample call (one CPU thread per frame)."""
    return torch.nn.functional.grid_sample(frustum, sampling, mode="bilinear",
                                           padding_mode="zeros", align_corners=False)


def before_after_ratio(model: torch.nn.Module, cfg: ModelConfig, device: torch.device,
                       rounds: int) -> dict[str, float]:
    """Interleaved medians of the old inline call and today's ``auto`` runner; after/before."""
    runner = build_network_runner(model, device, "auto", False, tuple(cfg.image.input_hw))
    images, P2 = runner.example_inputs()

    def before() -> None:
        sampling, lifting.sample_frustum = lifting.sample_frustum, one_call_sampling
        try:
            with torch.inference_mode(), torch.autocast(device.type, enabled=False):
                model(images, P2)
        finally:
            lifting.sample_frustum = sampling

    old, new = [], []
    for _ in range(rounds):
        old += timed_ms(before, device, 1, 0)
        new += timed_ms(lambda: runner(images, P2), device, 1, 0)
    return {"before_median_ms": statistics.median(old), "after_median_ms": statistics.median(new),
            "after_over_before": statistics.median(new) / statistics.median(old),
            "after_path": runner.path.name}


def models_to_time(configs: list[Path] | None, checkpoints: list[Path] | None,
                   device: torch.device) -> list[tuple[Path, ModelConfig, torch.nn.Module]]:
    """(name, config, eval model on the device) of each checkpoint, else of each YAML config."""
    if checkpoints:
        loaded = []
        for path in checkpoints:
            cfg = saved_model_config(load_checkpoint_meta(path), path)
            model = build_student(cfg)
            load_model_weights(path, model)
            loaded.append((path, cfg, model.eval().to(device)))
        return loaded
    return [(path, cfg, build_student(cfg).eval().to(device))
            for path in configs or DEFAULT_CONFIGS
            for cfg in [load_model_config(path)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append",
                        help="model YAML (repeatable; random weights); default: small and "
                        "kitti_r50")
    parser.add_argument("--checkpoint", type=Path, action="append",
                        help="a student checkpoint folder (repeatable): its architecture and "
                        "weights instead of --config")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--paths", nargs="+", default=["eager"],
                        help="network paths (auto, eager, freeze, half, cuda_graph, compile, "
                        "a+b ...)")
    parser.add_argument("--fp16", action="store_true", help="autocast to float16 (GPU)")
    parser.add_argument("--predictor", action="store_true", help="also time predict()")
    parser.add_argument("--ab", action="store_true", help="before/after ratio, eager network")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed runs per config (the R50 config on CPU uses at most 3)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(machine_line(device) + f" | fp16 autocast={args.fp16}")
    peak = fp16_peak_tflops(device)
    for path, cfg, model in models_to_time(args.config, args.checkpoint, device):
        slow = device.type == "cpu" and cfg.trunk.name != "small"
        repeats = min(args.repeats, 3) if slow else args.repeats
        warmup = min(args.warmup, 1) if slow else args.warmup
        params_m, gflops = network_gflops(cfg)
        h, w = cfg.image.input_hw
        print(f"\n== {path.name}: trunk={cfg.trunk.name} input={h}x{w} "
              f"grid={cfg.grid.nx}x{cfg.grid.ny} bins={cfg.depth.num_bins} | params "
              f"{params_m:.2f} M | {gflops:.1f} GFLOPs (conv+matmul)")
        for name in args.paths:
            r = network_times(model, cfg, device, name, args.fp16, repeats, warmup)
            share = (f"  {gflops / r['median_ms'] / peak * 100:5.1f} % of fp16 peak"
                     if peak else "")
            print(f"network {name:>18} (used {r['used']}): median {r['median_ms']:8.2f} ms  "
                  f"min {r['min_ms']:8.2f}  max {r['max_ms']:8.2f}  -> "
                  f"{1000 / r['median_ms']:7.1f} frames/s{share}")
            if args.predictor:
                p = predictor_times(cfg, device, name, repeats, warmup)
                print(f"predict {name:>18}: total {p['total_median_ms']:8.2f} ms = prepare "
                      f"{p['prepare_median_ms']:.2f} + network {p['network_median_ms']:.2f} + "
                      f"decode {p['decode_median_ms']:.2f}")
        if args.ab:
            ab = before_after_ratio(model, cfg, device, max(repeats, 3))
            print(f"before/after (interleaved): before {ab['before_median_ms']:.2f} ms, after "
                  f"({ab['after_path']}) {ab['after_median_ms']:.2f} ms, after/before "
                  f"{ab['after_over_before']:.3f}")


if __name__ == "__main__":
    main()
