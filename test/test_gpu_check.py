"""scripts/gpu_check.sh at toy size on the CPU, in a bare environment (no ROS, pytest, onnx)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from monotakd_ros.models.build import build_student
from monotakd_ros.models.config import load_model_config

ROOT = Path(__file__).resolve().parents[1]
# What the bare GPU machine lacks: importing any of these there fails, so it must here too.
ABSENT = ("rclpy", "rosbags", "sensor_msgs", "vision_msgs", "std_msgs", "ament_index_python",
          "pytest", "onnx", "onnxruntime", "cv_bridge", "tf2_ros", "message_filters")


def run_gpu_check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bare = tmp_path / "bare"
    bare.mkdir(exist_ok=True)
    (bare / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in ABSENT))
    env = {**os.environ, "PYTHONPATH": str(bare), "PYTHON": sys.executable}
    env.pop("AMENT_PREFIX_PATH", None)
    return subprocess.run([str(ROOT / "scripts/gpu_check.sh"), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=400)


def toy_params() -> int:
    cfg = load_model_config(ROOT / "config/models/small.yaml")
    toy = replace(cfg, image=replace(cfg.image, input_hw=(96, 320)), image_channels=16,
                  bev_channels=16)
    return sum(p.numel() for p in build_student(toy).parameters())


@pytest.mark.slow
def test_toy_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = run_gpu_check(tmp_path, str(out), "--toy", "--device", "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["machine"]["device"] == "cpu" and report["toy"] is True
    assert report["machine"]["torch"] == torch.__version__
    sections = report["sections"]
    assert {name: s["status"] for name, s in sections.items()} == {
        "checks": "ok", "bench.predictor": "ok", "bench.network": "ok",
        "bench.train_step": "ok", "bench.node_overhead": "ok"}
    checks = sections["checks"]["result"]
    same = checks["device_vs_cpu"]  # CPU against CPU: bit-identical boxes
    assert same["compared"] >= 1 and same["unmatched"] == 0 and same["passed"] is True
    assert same["max_box_error_m"] == 0.0 and same["max_score_error"] == 0.0
    graph = checks["fast_paths"]["cuda_graph"]
    assert graph["used"] == "eager" and graph["max_box_error_m"] == 0.0  # fell back, recorded
    assert checks["onnx"] == {"status": "skipped", "reason": "onnxruntime not installed"}
    predict = sections["bench.predictor"]["result"]["toy/cuda_graph"]
    parts = sum(predict[f"{k}_median_ms"] for k in ("prepare", "network", "decode"))
    assert predict["total_median_ms"] >= parts * 0.999 and predict["used"] == "eager"
    network = sections["bench.network"]["result"]
    assert network["toy"]["params_m"] == pytest.approx(toy_params() / 1e6)
    step = sections["bench.train_step"]["result"]
    assert step["mode"] == "takd" and step["student_params"] == toy_params()
    node = sections["bench.node_overhead"]["result"]
    assert node["host_overhead_ms_without_rclpy"] == pytest.approx(
        node["rgb8_to_bgr8"] + node["camera_info_check"] + node["output_frame_20_boxes"])
    assert "checks PASSED" in (out / "gpu_check.log").read_text()
    assert report["total_s"] <= report["budget_s"] + 60


def test_cuda_requested_without_cuda_exits_2(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = run_gpu_check(tmp_path, str(tmp_path / "out"))
    assert done.returncode == 2
    assert "--device cuda but torch.cuda.is_available() is False" in done.stdout + done.stderr
    assert not (tmp_path / "out" / "gpu_check.json").exists()
