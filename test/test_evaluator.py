"""monotakd_evaluator end to end over real DDS, with a ground-truth echo in place of a detector.

The echo answers every ground truth frame with the same boxes (score 1.0) except one, so the
report must show AP 100 on the matched frames and count exactly that one frame as dropped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from helpers_replay_eval import PROCS, start, stop, wait_for_exit, write_eval_bag
from std_msgs.msg import Empty
from vision_msgs.msg import Detection3DArray

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.data.kitti.labels import write_label_file
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.errors import ConfigError
from monotakd_ros.eval.evaluator_config import EvaluatorConfig
from monotakd_ros.geometry.coord_frames import T_body_from_optical

NUM_FRAMES = 8
DROPPED = 2
DETECTIONS = "/monotakd_detector/detections"


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    return write_eval_bag(tmp_path_factory.mktemp("evaluator"), num_frames=NUM_FRAMES)


def evaluator(report_dir: Path, *params: str):
    args = ["-m", "monotakd_ros.nodes.evaluator", "--ros-args",
            "-p", f"report_dir:={report_dir}", "-p", "classes:=[Car]"]
    for param in params:
        args += ["-p", param]
    return start(*args)


def replay(bag: Path, *waits: str):
    return start("-m", "monotakd_ros.nodes.replay", str(bag), "--rate", "2.0", "--linger", "0.5",
                 "--delay", "0.5", "--wait-timeout", "60",
                 "--topics", layout.IMAGE_TOPIC, layout.CAMERA_INFO_TOPIC,
                 layout.GROUND_TRUTH_TOPIC, "--wait-for-subscribers", *waits)


def assert_perfect_on_matched_frames(report: dict) -> None:
    counted = report["ground_truth_counted"]["Car"]
    assert counted[1] >= 41  # the devkit needs >= 40 true positives to reach AP 100
    for metric in ("3d", "bev", "bbox"):
        easy, moderate, hard = report["ap"]["Car"][metric]["R40"]
        assert moderate == pytest.approx(100.0) and hard == pytest.approx(100.0)


def test_report_scores_matched_frames_and_counts_the_dropped_one(bag, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    procs = [evaluator(report_dir, "end_grace_s:=1.0", "overlay_count:=2",
                       f"expected_ground_truth:={NUM_FRAMES}")]
    try:
        procs.append(start(str(PROCS / "echo_ground_truth.py"), "--drop", str(DROPPED)))
        procs.append(replay(bag.bag, f"{layout.GROUND_TRUTH_TOPIC}:2",
                            f"{layout.CAMERA_INFO_TOPIC}:1", f"{layout.IMAGE_TOPIC}:1"))
        code, output = wait_for_exit(procs[0], 60.0)
    finally:
        stop(*reversed(procs))
    assert code == 0, output
    report = json.loads((report_dir / "report.json").read_text())
    counts = report["counts"]
    assert counts["ground_truth_frames"] == NUM_FRAMES
    assert counts["detection_messages"] == NUM_FRAMES - 1
    assert counts["matched_frames"] == NUM_FRAMES - 1
    assert counts["ground_truth_frames_without_detection_message"] == 1
    assert counts["detection_messages_without_ground_truth"] == 0
    assert counts["duplicate_detection_messages"] == 0
    assert counts["matched_frames_without_detections"] == 0
    assert (counts["ground_truth_messages"], counts["ground_truth_messages_expected"],
            counts["ground_truth_messages_lost"]) == (NUM_FRAMES, NUM_FRAMES, 0)
    assert report["dropped_stamps_ns"] == [bag.image_stamps_ns[DROPPED]]
    assert_perfect_on_matched_frames(report)
    assert report["ap_with_dropped_frames_as_empty"]["Car"]["3d"]["R40"][1] < 100.0
    assert "replay finished" in output
    for name in ("report.md", "pr_curves.png", "bev.png", "ap_table.txt"):
        assert (report_dir / name).stat().st_size > 0
    # Overlays come from best-effort images: one may be lost, so only their presence is checked.
    overlays = report["files"]["overlays"]
    assert 1 <= len(overlays) <= 2
    assert all((report_dir / name).stat().st_size > 0 for name in overlays)


def test_label_folder_ground_truth_and_trigger(bag, tmp_path: Path) -> None:
    drive = RawDrive(bag.drive_dir)
    label_dir = tmp_path / "label_2"
    for index in range(NUM_FRAMES):
        write_label_file(label_dir / f"{index:010d}.txt", drive.frame_labels(index))
    report_dir = tmp_path / "report"
    rclpy.init()
    node = rclpy.create_node("test_trigger")
    answers: list[Detection3DArray] = []
    node.create_subscription(Detection3DArray, DETECTIONS, answers.append, 50)
    trigger = node.create_publisher(Empty, "/monotakd_evaluator/trigger", 10)
    procs = [evaluator(report_dir, f"gt_label_dir:={label_dir}", "idle_timeout_s:=0.0",
                       "use_replay_finished:=false",
                       f"gt_timestamps:={bag.drive_dir / 'image_02' / 'timestamps.txt'}")]
    try:
        # Two listeners: the evaluator, and this test's node (matched first, as it already runs).
        procs.append(start(str(PROCS / "echo_ground_truth.py"), "--drop", "0", "--listeners", "2"))
        procs.append(replay(bag.bag, f"{layout.GROUND_TRUTH_TOPIC}:1",
                            f"{layout.CAMERA_INFO_TOPIC}:1"))
        deadline = time.monotonic() + 40.0
        while (len(answers) < NUM_FRAMES - 1 or trigger.get_subscription_count() == 0) and (
                time.monotonic() < deadline):
            rclpy.spin_once(node, timeout_sec=0.1)
        time.sleep(0.5)  # the evaluator's copies of the answers are on their way too
        # Only the trigger ends this run: no end signal is listened to, no idle timeout.
        assert procs[0].poll() is None
        trigger.publish(Empty())
        code, output = wait_for_exit(procs[0], 20.0)
    finally:
        stop(*reversed(procs))
        node.destroy_node()
        rclpy.try_shutdown()
    assert code == 0, output
    assert "evaluating (trigger)" in output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["counts"]["ground_truth_frames"] == NUM_FRAMES
    assert report["counts"]["matched_frames"] == NUM_FRAMES - 1
    assert report["dropped_stamps_ns"] == [bag.image_stamps_ns[0]]
    assert_perfect_on_matched_frames(report)


def test_output_frame_parameters_are_validated() -> None:
    def config(**values: object) -> EvaluatorConfig:
        return EvaluatorConfig(report_dir=Path("r"), **values)  # type: ignore[arg-type]

    np.testing.assert_allclose(config(box_axes="body").output_frame().T_output_from_optical,
                               T_body_from_optical())
    assert config(box_axes="optical").output_frame().T_output_from_optical is None
    shifted = np.eye(4)
    shifted[0, 3] = 1.5
    given = config(T_output_from_optical=tuple(shifted.ravel()))
    np.testing.assert_array_equal(given.output_frame().T_output_from_optical, shifted)
    with pytest.raises(ConfigError, match="needs 16 numbers .* got 3"):
        config(box_axes="body", T_output_from_optical=(1.0, 2.0, 3.0))
    with pytest.raises(ConfigError, match="box_axes / T_output_from_optical"):
        config(T_output_from_optical=tuple((2.0 * np.eye(4)).ravel()))
    with pytest.raises(ConfigError, match="gt_label_dir and gt_timestamps go together"):
        config(gt_label_dir=Path("labels"))
