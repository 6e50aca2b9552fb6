"""scripts/gpu_ablation.sh at toy size on the CPU, with every non-listed package blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_yaml

REPO = Path(__file__).resolve().parents[1]
# The bare GPU machine: these packages (and what they need) and nothing else of this venv.
ALLOWED = ("torch", "torchgen", "functorch", "numpy", "numpy.libs", "cv2",
           "opencv_python_headless.libs", "safetensors", "yaml", "_yaml", "tqdm", "matplotlib",
           "mpl_toolkits", "PIL", "pillow.libs", "contourpy", "cycler", "dateutil", "fontTools",
           "kiwisolver", "packaging", "pyparsing", "filelock", "fsspec", "jinja2", "markupsafe",
           "networkx", "sympy", "mpmath", "typing_extensions.py")


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """PYTHON runs without site-packages (-S); PYTHONPATH holds links to the allowed ones."""
    site_packages = Path(torch_file()).parents[1]
    bare = tmp_path / "bare_site"
    bare.mkdir()
    for name in ALLOWED:
        if (site_packages / name).exists():
            (bare / name).symlink_to(site_packages / name)
    python = tmp_path / "python-bare"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    python.chmod(0o755)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ROS_", "AMENT_", "RMW_", "PYTHON"))}
    env.update(PYTHONPATH=str(bare), PYTHON=str(python))
    return env


def torch_file() -> str:
    import torch
    return str(torch.__file__)


def test_the_bare_python_lacks_ros_and_rosbags(bare_env: dict[str, str]) -> None:
    for module, expected_rc in (("rclpy", 1), ("rosbags", 1), ("vision_msgs", 1),
                                ("torch, cv2, matplotlib.pyplot, safetensors.torch", 0)):
        result = subprocess.run([bare_env["PYTHON"], "-c", f"import {module}"], env=bare_env,
                                capture_output=True, text=True, check=False)
        assert result.returncode == expected_rc, (module, result.stderr[-2000:])


@pytest.mark.slow  # four Python processes (data, two seeds, merge); 117 s under load 20
def test_toy_run_writes_the_table_timing_and_plan(bare_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    configs = tmp_path / "train"
    configs.mkdir()
    for stage in ("teacher", "ta", "student"):
        write_yaml(configs / f"{stage}.yaml", {**TINY_TRAIN, "val_interval": 0})
    # Three students (and the teacher and TA they need) keep the toy run short.
    env = {**bare_env, "MODEL_CONFIG": str(write_yaml(tmp_path / "model.yaml", TINY_MODEL)),
           "TRAIN_CONFIG_DIR": str(configs), "FRAMES": "6", "SEEDS": "0 1",
           "ROWS": "student_none student_cmkd student_takd"}
    out = tmp_path / "out"
    result = subprocess.run([str(REPO / "scripts" / "gpu_ablation.sh"), str(out), "--toy"],
                            env=env, capture_output=True, text=True, check=False, timeout=600)
    logs = "".join(p.read_text() for p in sorted((out / "logs").glob("*.log")))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs[-3000:]
    # 6 labelled frames: 40 % held out, split into val and test; no frame in two splits.
    assert "[gpu_ablation] splits: 4 train, 1 val, 1 test frames" in result.stdout
    sets = {name: (out / "data" / "ImageSets" / f"{name}.txt").read_text().split()
            for name in ("train", "val", "test", "trainval")}
    assert len(set(sets["train"] + sets["val"] + sets["test"])) == 6
    assert sorted(sets["trainval"]) == sorted(sets["train"] + sets["val"])
    report = json.loads((out / "ablation.json").read_text())
    assert (report["report_split"], report["selection_split"]) == ("test", "val")
    assert [row["key"] for row in report["rows"]] == [
        "teacher", "ta", "student_none", "student_takd", "student_cmkd"]
    for row in report["rows"]:
        assert row["seeds"] == [0, 1] and sorted(row["per_seed"]) == ["0", "1"]
        for record in row["per_seed"].values():
            assert (record["checkpoint"], record["step"]) == ("last", 2)
            assert record["report"]["num_frames"] == 1 and "device cpu" in record["machine"]
    takd_cmkd = next(c for c in report["comparisons"]["ap3d_r40"]
                     if c["key"] == "student_takd-student_cmkd")
    assert takd_cmkd["seeds"] == [0, 1] and takd_cmkd["n"] == 2
    assert "| TAKD − CMKD |" in (out / "ablation.md").read_text()
    claim = cv2.imread(str(out / "claim.png"))
    assert claim is not None and claim.shape == (500, 1300, 3)
    timing = (out / "timing.txt").read_text()
    assert "data generation:" in timing and "of a 30 min budget" in timing
    assert "plan: 2 steps per stage (batch 2: 4 samples" in result.stdout
    assert "1 torch thread(s)" in logs
    # One prepared split for both seed processes; per seed one teacher and one TA target cache,
    # shared by the CMKD and TAKD students.
    assert len(list((out / "cache").glob("split_train_*x192/manifest.json"))) == 1
    for kind in ("teacher", "assistant"):
        assert len(list((out / "cache").glob(f"split_*_{kind}_*/manifest.json"))) == 2
