"""The distiller node over real DDS: topic mode from a replay, kill-and-resume, bad bags, CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import rclpy
from helpers_distill import (
    CLOUD,
    IMAGE,
    INFO,
    bag_frames,
    write_bag,
    write_labelled_drive,
    write_models,
)
from helpers_kitti_raw import write_synthetic_drive
from rclpy.qos import QoSProfile
from rosbags.highlevel import AnyReader
from std_msgs.msg import String

from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta, load_model_weights
from monotakd_ros.models.build import build_student
from monotakd_ros.models.config import load_model_config
from monotakd_ros.nodes.distiller import DistillerNode
from monotakd_ros.nodes.distiller_cli import build_parser, ros_arguments
from monotakd_ros.training.run_state import RunDir, resume_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_models(tmp_path_factory.mktemp("models"))


def node_command(models: dict[str, Path], out_dir: Path, **params: object) -> list[str]:
    values = {"out_dir": str(out_dir), "teacher": str(models["teacher"]),
              "assistant": str(models["ta"]), "train.device": "cpu", "train.batch_size": 1,
              "train.log_interval": 0, "show_progress_bar": False, **params}
    command = [sys.executable, "-m", "monotakd_ros.nodes.distiller", "--ros-args"]
    for name, value in values.items():
        command += ["-p", f"{name}:={json.dumps(value)}"]
    return command


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def stop(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_topic_mode_learns_every_replayed_frame_and_reports_progress(
        models: dict[str, Path], tmp_path: Path) -> None:
    drive = write_synthetic_drive(tmp_path / "raw", num_frames=6, with_tracklets=False)
    bag = convert_drive_to_bag(drive.drive_dir, tmp_path / "bag").path
    out = tmp_path / "run"
    rclpy.init()
    listener = rclpy.create_node("test_distiller_listener")
    reports: list[dict] = []
    listener.create_subscription(String, "/monotakd_distiller/progress",
                                 lambda m: reports.append(json.loads(m.data)),
                                 QoSProfile(depth=100))
    distiller = replay = None
    try:
        distiller = subprocess.Popen(node_command(
            models, out, mode="topic", idle_timeout_s=2.0, progress_period_s=0.3), env=ENV)
        deadline = time.monotonic() + 60.0
        while listener.count_publishers("/monotakd_distiller/progress") == 0:
            rclpy.spin_once(listener, timeout_sec=0.1)
            assert time.monotonic() < deadline and distiller.poll() is None, "node never came up"
        replay = subprocess.Popen([sys.executable, "-m", "monotakd_ros.nodes.replay", str(bag),
                                   "--rate", "2", "--topics", "/tf_static", IMAGE, INFO, CLOUD,
                                   "--wait-for-subscribers", f"{IMAGE}:1", f"{INFO}:1",
                                   f"{CLOUD}:1", "/tf_static:1"], env=ENV)
        deadline = time.monotonic() + 90.0
        while distiller.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(listener, timeout_sec=0.1)
        for _ in range(10):  # the last report may still be in flight
            rclpy.spin_once(listener, timeout_sec=0.05)
        assert distiller.wait(timeout=5) == 0
        # Only the distiller's exit status is under test: what it learnt is checked below.
        replay.wait(timeout=30)
    finally:
        stop(distiller, replay)
        listener.destroy_node()
        rclpy.try_shutdown()
    used = [int(row["stamp_ns"]) for row in csv_rows(out / "frames_log.csv")]
    assert used == drive.image_stamps_ns
    final = reports[-1]
    assert final["frames_used"] == 6 and final["step"] == 6 and final["skipped"] == {}
    assert {"imd", "cmrd", "resp_cls"} <= set(final["losses"])
    # Throughput is frames over the time since the first frame, which includes the 2 s idle
    # timeout that ended the run: at most 6 / 2 = 3 frames/s whatever the machine.
    assert final["elapsed_s"] >= 2.0
    assert final["frames_per_s"] == pytest.approx(6 / final["elapsed_s"], rel=1e-9)
    assert final["frames_per_s"] <= 3.0
    # Learning alone (no waiting for frames) is faster than the whole run.
    assert final["learn_frames_per_s"] == pytest.approx(1.0 / final["step_time_s"], rel=1e-9)
    assert final["learn_frames_per_s"] > final["frames_per_s"]
    assert load_checkpoint_meta(out / "checkpoints" / "last").step == 6


def test_killed_run_resumes_without_counting_a_frame_twice(models: dict[str, Path],
                                                           tmp_path: Path) -> None:
    drive = write_synthetic_drive(tmp_path / "drive", num_frames=12, with_tracklets=False)
    bag = convert_drive_to_bag(drive.drive_dir, tmp_path / "bag").path
    labelled = convert_drive_to_bag(write_labelled_drive(tmp_path / "raw"), tmp_path / "gt").path
    out = tmp_path / "run"
    state_file = out / "checkpoints" / "last" / "trainer_state.json"
    first = subprocess.Popen(node_command(models, out, bags=[str(bag)], passes=6,
                                          eval_data=str(labelled), **{"train.ckpt_interval": 3}),
                             env=ENV)
    try:
        deadline = time.monotonic() + 90.0
        while not state_file.is_file() and first.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL, "the run ended before the kill"
    finally:
        stop(first)
    # The kill may land between the two renames of a checkpoint swap; resume handles that too.
    saved = json.loads((resume_checkpoint(RunDir(out)) / state_file.name).read_text())
    saved_step = saved["step"]
    ledger = saved["extra"]["ledger"]
    assert 0 < saved_step < 72 and ledger["frames_used_total"] == saved_step

    console = [sys.executable, "-m", "monotakd_ros.nodes.distiller_cli", "--params-file",
               str(ROOT / "config" / "distill.yaml"), "--bags", str(bag), "--out", str(out),
               "--teacher", str(models["teacher"]), "--assistant", str(models["ta"]),
               "--passes", "6", "--batch-size", "1", "--ckpt-interval", "3", "--device", "cpu",
               "--eval-data", str(labelled), "--resume", "--no-progress-bar"]
    second = subprocess.run(console, env=ENV, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "=== BEFORE distillation ===" in second.stdout  # evaluated by the killed run
    assert "=== AFTER distillation ===" in second.stdout and "Car AP_R40" in second.stdout

    log = csv_rows(out / "frames_log.csv")
    assert [int(row["step"]) for row in log] == list(range(1, 73))
    assert Counter(int(row["stamp_ns"]) for row in log) == dict.fromkeys(drive.image_stamps_ns, 6)
    results = json.loads((out / "eval_results.json").read_text())
    report = results["report"]
    assert report["frames_used"] == 72 and report["step"] == 72
    # The resumed pass re-read the bag: exactly the frames already in the ledger were passed.
    assert report["already_used"] == sum(len(s) for s in ledger["consumed"].values())
    final = out / "checkpoints" / "last"
    assert load_checkpoint_meta(final).step == 72
    load_model_weights(final, build_student(load_model_config(models["model_config"])))


def test_sigterm_in_bag_mode_saves_every_learnt_step_and_exits(models: dict[str, Path],
                                                               tmp_path: Path) -> None:
    drive = write_synthetic_drive(tmp_path / "drive", num_frames=12, with_tracklets=False)
    bag = convert_drive_to_bag(drive.drive_dir, tmp_path / "bag").path
    out = tmp_path / "run"
    process = subprocess.Popen(node_command(models, out, bags=[str(bag)], passes=200,
                                            **{"train.ckpt_interval": 0}),
                               env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90.0
        frames_log = out / "frames_log.csv"
        while not (frames_log.is_file() and len(csv_rows(frames_log)) >= 3):
            assert process.poll() is None and time.monotonic() < deadline, "no steps were taken"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130  # 2400 frames would take minutes
        stderr = process.stderr.read() if process.stderr else ""
    finally:
        stop(process)
    assert "resume:=true continues" in stderr
    saved = load_checkpoint_meta(out / "checkpoints" / "last").step
    # ckpt_interval 0 saves only at the end: this checkpoint is the one the stop wrote.
    assert saved == len(csv_rows(out / "frames_log.csv")) >= 3


def test_distillation_weights_from_a_parameter_file_reach_the_loss(models: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", bag_frames(2))
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"monotakd_distiller": {"ros__parameters": {
        "train": {"distill_overrides": {"imd_weight": 0.0, "cmrd_weight": 0.5}}}}}))
    command = node_command(models, tmp_path / "run", bags=[str(bag)])
    rclpy.init(args=["test", "--ros-args", "--params-file", str(params), *command[4:]])
    try:
        node = DistillerNode()
        weights = node.config.train.distill_config()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert weights.imd_weight == 0.0 and weights.cmrd_weight == 0.5
    assert weights.response_cls_weight == 1.0  # not given: the takd preset's value


def test_bag_without_point_cloud_stops_the_node_naming_the_topics_found(
        models: dict[str, Path], tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", bag_frames(2), topics=(IMAGE, INFO))
    result = subprocess.run(node_command(models, tmp_path / "run", bags=[str(bag)]), env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "PointCloud2 topic" in result.stderr and f"{INFO} [" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_console_flags_become_node_parameters(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["--params-file", "p.yaml", "--bags", "a", "/b", "--out",
                                      "run", "--max-steps", "5", "--lr", "1", "--resume",
                                      "--eval-data", "gt"])
    ros_args = ros_arguments(args)
    assert ros_args[:3] == ["--ros-args", "--params-file", str(tmp_path / "p.yaml")]
    overrides = dict(ros_args[i + 1].split(":=", 1) for i in range(3, len(ros_args), 2))
    assert json.loads(overrides["bags"]) == [str(tmp_path / "a"), "/b"]
    assert json.loads(overrides["out_dir"]) == str(tmp_path / "run")
    assert json.loads(overrides["eval_data"]) == str(tmp_path / "gt")
    assert overrides["train.max_steps"] == "5" and overrides["train.lr"] == "1.0"
    assert overrides["resume"] == "true" and "teacher" not in overrides


def test_frames_that_come_before_tf_static_wait_for_it(models: dict[str, Path],
                                                       tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", bag_frames(4))
    with AnyReader([bag], default_typestore=monotakd_typestore()) as reader:
        messages = [(c.topic, reader.deserialize(raw, c.msgtype))
                    for c, _, raw in reader.messages()]
    command = node_command(models, tmp_path / "run", mode="topic", idle_timeout_s=0.3)
    rclpy.init(args=["test", *command[3:]])
    node = DistillerNode()
    try:
        worker = node.start_topics()
        callbacks = {IMAGE: node.on_image, INFO: node.on_camera_info, CLOUD: node.on_point_cloud}
        for topic, message in messages:  # the sensors first, as a late latched rig would
            if topic in callbacks:
                callbacks[topic](message)
        time.sleep(0.8)  # longer than the idle timeout: held frames do not end the run
        assert worker.is_alive() and node.session.engine.ledger.frames_used_total == 0
        node.on_tf_static(next(m for t, m in messages if t == "/tf_static"))
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    assert node.summary is not None
    assert node.summary.report["frames_used"] == 4 and node.summary.report["skipped"] == {}
