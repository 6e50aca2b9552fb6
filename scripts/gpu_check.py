"""The GPU check: parity checks and benchmarks on a bare machine, one JSON and a log out.

Runs with torch, numpy, opencv, safetensors, PyYAML, tqdm and matplotlib only (no ROS, no
pytest): ``PYTHONPATH=. python3 scripts/gpu_check.py OUT_DIR`` (or ``scripts/gpu_check.sh``).

Sections, in order of importance, each timed and recorded even when it fails:
1. ``checks``: the trained shipped student, fp32 on the device vs the CPU (boxes within 1e-3 m
   after matching), every fast path vs fp32 eager (fp16 by Car AP within 0.5), ONNX if
   onnxruntime happens to be installed;
2. ``bench.predictor``: ``predict()`` end to end on a 1242 x 375 uint8 image per config and path;
3. ``bench.network``: the network alone per config and path, with % of the fp16 peak;
4. ``bench.train_step``: one distillation step (bench/bench_train_step.py's measure);
5. ``bench.node_overhead``: the node's host-side work that needs no rclpy (Image -> numpy,
   CameraInfo check, output frames) against ``predict()``.
A section that would start after ``--budget-s`` is recorded as skipped. ``--toy --device cpu``
runs everything at toy size in seconds (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import bench_inference  # noqa: E402

from monotakd_ros.inference.parity import (  # noqa: E402
    check_device_matches_cpu,
    check_fast_paths,
    synthetic_val_frames,
)
from monotakd_ros.models import build_student  # noqa: E402
from monotakd_ros.models.config import ModelConfig, load_model_config  # noqa: E402

log = logging.getLogger("gpu_check")
CHECK_PATHS = ("half", "cuda_graph", "half+cuda_graph", "compile")
BENCH_PATHS = ("eager", "half", "cuda_graph", "half+cuda_graph", "half+compile")
COMPILE_RESERVE_S = 120.0  # a compile path starts only with this much budget left
TOY_PATHS = ("cuda_graph",)  # on the CPU: the recorded fall-back to eager


def toy_config() -> ModelConfig:
    """The small config shrunk to a 96 x 320 input and 16 channels: seconds on a CPU."""
    cfg = load_model_config(ROOT / "config/models/small.yaml")
    return replace(cfg, image=replace(cfg.image, input_hw=(96, 320)), image_channels=16,
                   bev_channels=16)


def machine(device: torch.device) -> dict[str, object]:
    """Platform, torch, and the accelerator's name, capability and memory."""
    info: dict[str, object] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "python": platform.python_version(), "torch": torch.__version__,
                               "device": str(device), "line": bench_inference.machine_line(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    fp16_peak_tflops=bench_inference.fp16_peak_tflops(device))
    return info


def run_checks(device: str, frames: int, paths: tuple[str, ...]) -> dict[str, object]:
    """The parity checks on the trained shipped student."""
    checkpoint = ROOT / "models/default_student"  # this tree's, whatever is installed
    val = synthetic_val_frames(frames)
    result: dict[str, object] = {
        "frames": frames,
        "device_vs_cpu": check_device_matches_cpu(checkpoint, device, val),
        "fast_paths": check_fast_paths(checkpoint, device, val, [p for p in paths
                                                                 if p != "eager"]),
    }
    try:
        import onnxruntime  # noqa: F401 - optional on the bare machine
    except ImportError:
        result["onnx"] = {"status": "skipped", "reason": "onnxruntime not installed"}
    else:
        import tempfile

        from monotakd_ros.inference.onnx_export import export_onnx
        from monotakd_ros.inference.parity import check_onnx_matches_torch
        with tempfile.TemporaryDirectory() as tmp:
            exported = export_onnx(checkpoint, Path(tmp) / "student.onnx")
            result["onnx"] = check_onnx_matches_torch(checkpoint, exported, val)
    verdicts = [result["device_vs_cpu"]["passed"]]  # type: ignore[index]
    verdicts += [r["passed"] for r in result["fast_paths"].values()]  # type: ignore[union-attr]
    if "passed" in result["onnx"]:  # type: ignore[operator]
        verdicts.append(result["onnx"]["passed"])  # type: ignore[index]
    result["passed"] = bool(all(verdicts))
    return result


def too_late(path: str, deadline: float) -> bool:
    """Whether ``path`` would likely run past the deadline (compiling takes minutes)."""
    reserve = COMPILE_RESERVE_S if "compile" in path else 0.0
    return time.monotonic() + reserve > deadline


def bench_predictor(configs: dict[str, ModelConfig], device: torch.device,
                    paths: tuple[str, ...], repeats: int, warmup: int,
                    deadline: float) -> dict[str, object]:
    """``predict()`` medians per config and path (stops adding paths at the deadline)."""
    out: dict[str, object] = {}
    for name, cfg in configs.items():
        for path in paths:
            if too_late(path, deadline):
                out[f"{name}/{path}"] = {"status": "skipped", "reason": "time budget"}
                continue
            out[f"{name}/{path}"] = bench_inference.predictor_times(cfg, device, path,
                                                                    repeats, warmup)
            log.info("predict %s/%s: %s", name, path, out[f"{name}/{path}"])
    return out


def bench_network(configs: dict[str, ModelConfig], device: torch.device,
                  paths: tuple[str, ...], repeats: int, warmup: int,
                  deadline: float) -> dict[str, object]:
    """Network medians per config and path, with GFLOPs and % of the fp16 peak."""
    peak = bench_inference.fp16_peak_tflops(device)
    out: dict[str, object] = {}
    for name, cfg in configs.items():
        params_m, gflops = bench_inference.network_gflops(cfg)
        out[name] = {"params_m": params_m, "gflops": gflops}
        for path in paths:
            if too_late(path, deadline):
                out[f"{name}/{path}"] = {"status": "skipped", "reason": "time budget"}
                continue
            model = build_student(cfg).eval().to(device)  # random weights: timing only
            r = bench_inference.network_times(model, cfg, device, path, False, repeats, warmup)
            if peak:
                r["fp16_peak_share"] = gflops / r["median_ms"] / peak  # GFLOP/ms = TFLOP/s
            out[f"{name}/{path}"] = r
            log.info("network %s/%s: %s", name, path, r)
    return out


def bench_train_step(config: Path | ModelConfig, device: str, toy: bool) -> dict[str, object]:
    """One student distillation step (takd) via bench/bench_train_step.py's measure."""
    import tempfile

    import bench_train_step

    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(config, ModelConfig):
            import yaml

            from monotakd_ros.configuration import dataclass_to_dict
            path = Path(tmp) / "model.yaml"
            path.write_text(yaml.safe_dump(dataclass_to_dict(config)))
        else:
            path = config
        args = argparse.Namespace(model_config=path, device=device, mode="takd",
                                  amp="off" if device == "cpu" else "bf16",
                                  batch_size=1 if toy else 4, points=500 if toy else 20000,
                                  warmup=0 if toy else 2, repeats=1 if toy else 5)
        return bench_train_step.measure_mode(args)


def bench_node_overhead(device: torch.device, predict_ms: float | None,
                        repeats: int) -> dict[str, object]:
    """Host-side node work without rclpy: Image -> BGR, CameraInfo P check, output frames."""
    from monotakd_ros.ros.camera_input import projection_from_camera_info
    from monotakd_ros.ros.image_conversion import image_msg_to_bgr8
    from monotakd_ros.ros.output_frames import boxes_in_output_frame

    image = np.random.default_rng(0).integers(0, 256, (375, 1242, 3), dtype=np.uint8)
    P = bench_inference.KITTI_P2

    def message(encoding: str) -> SimpleNamespace:  # the fields rclpy's Image has
        data = image if encoding == "bgr8" else np.ascontiguousarray(image[..., ::-1])
        return SimpleNamespace(height=375, width=1242, encoding=encoding, is_bigendian=0,
                               step=1242 * 3, data=data.tobytes())

    bgr, rgb = message("bgr8"), message("rgb8")
    info = SimpleNamespace(p=P.ravel().tolist(), width=1242, height=375)
    boxes = np.tile([[1.0, 1.6, 15.0, 3.9, 1.56, 1.6, 0.3]], (20, 1))
    steps: dict[str, Callable[[], object]] = {
        "bgr8_to_array": lambda: image_msg_to_bgr8(bgr),
        "rgb8_to_bgr8": lambda: image_msg_to_bgr8(rgb),
        "camera_info_check": lambda: projection_from_camera_info(info, (375, 1242)),
        "output_frame_20_boxes": lambda: boxes_in_output_frame(boxes, None),
    }
    cpu = torch.device("cpu")
    out: dict[str, object] = {name: bench_inference.summary(
        bench_inference.timed_ms(step, cpu, repeats, 1))["median_ms"]
        for name, step in steps.items()}
    worst = sum(out[k] for k in ("rgb8_to_bgr8", "camera_info_check",  # type: ignore[misc]
                                 "output_frame_20_boxes"))
    out["host_overhead_ms_without_rclpy"] = worst
    if predict_ms:
        out["share_of_predict"] = worst / predict_ms
    out["not_measured"] = "pairing, message building and serialisation need rclpy"
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every section within the time budget; 0 when all checks pass, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for gpu_check.json and gpu_check.log")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--toy", action="store_true", help="toy sizes (seconds, CPU test)")
    parser.add_argument("--budget-s", type=float, default=330.0,
                        help="no section starts after this many seconds (total must be <= 6 min)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        handlers=[logging.StreamHandler(sys.stdout),
                                  logging.FileHandler(args.out_dir / "gpu_check.log", mode="w")])
    if args.device == "cuda" and not torch.cuda.is_available():
        log.error("--device cuda but torch.cuda.is_available() is False (torch %s)",
                  torch.__version__)
        return 2
    device = torch.device(args.device)
    start = time.monotonic()
    deadline = start + args.budget_s
    frames, repeats, warmup = (1, 1, 0) if args.toy else (24, 50, 3)
    check_paths = TOY_PATHS if args.toy else CHECK_PATHS
    paths = TOY_PATHS if args.toy else BENCH_PATHS
    configs = ({"toy": toy_config()} if args.toy else
               {name: load_model_config(ROOT / f"config/models/{name}.yaml")
                for name in ("small", "kitti_r50")})
    report: dict[str, object] = {"machine": machine(device), "toy": args.toy,
                                 "budget_s": args.budget_s, "sections": {}}
    sections: dict[str, object] = report["sections"]  # type: ignore[assignment]
    log.info("%s", report["machine"])

    def small_predict_ms() -> float | None:
        timings = sections.get("bench.predictor", {})
        first = next(iter(timings.values()), {}) if isinstance(timings, dict) else {}
        return first.get("total_median_ms") if isinstance(first, dict) else None

    plan: list[tuple[str, Callable[[], object]]] = [
        ("checks", lambda: run_checks(args.device, frames, check_paths)),
        ("bench.predictor", lambda: bench_predictor(configs, device, paths, repeats, warmup,
                                                      deadline)),
        ("bench.network", lambda: bench_network(configs, device, paths, repeats, warmup,
                                                  deadline)),
        ("bench.train_step", lambda: bench_train_step(
            configs["toy"] if args.toy else ROOT / "config/models/kitti_r50.yaml",
            args.device, args.toy)),
        ("bench.node_overhead", lambda: bench_node_overhead(device, small_predict_ms(),
                                                            max(repeats, 5))),
    ]
    for name, run in plan:
        if time.monotonic() > deadline:
            sections[name] = {"status": "skipped", "reason": "time budget"}
            continue
        began = time.monotonic()
        try:
            result = run()
            sections[name] = {"status": "ok", "result": result}
        except Exception as err:  # noqa: BLE001 - record it and go on to the next section
            log.error("%s failed: %s", name, err)
            sections[name] = {"status": "error", "error": f"{type(err).__name__}: {err}",
                              "traceback": traceback.format_exc()}
        sections[name]["seconds"] = round(time.monotonic() - began, 2)  # type: ignore[index]
        log.info("%s: %s in %.1f s", name, sections[name]["status"],  # type: ignore[index]
                 sections[name]["seconds"])  # type: ignore[index]
        report["total_s"] = round(time.monotonic() - start, 2)
        (args.out_dir / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    checks = sections.get("checks", {})
    passed = (isinstance(checks, dict) and checks.get("status") == "ok"
              and checks["result"]["passed"])
    log.info("checks %s; total %.1f s; wrote %s", "PASSED" if passed else "FAILED",
             report["total_s"], args.out_dir / "gpu_check.json")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
