"""monotakd-replay-eval: the three processes, the printed AP table and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_kitti_raw import write_synthetic_drive
from helpers_replay_eval import PROCS, write_eval_bag

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.nodes.replay_eval import (
    EXIT_GROUND_TRUTH_LOST,
    EXIT_NOTHING_EVALUATED,
    _print_report,
    main,
)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    return write_eval_bag(tmp_path_factory.mktemp("replay_eval"), num_frames=8)


def replay_eval(bag: Path, report_dir: Path, detector: str, *extra: str):
    return subprocess.run(
        [sys.executable, "-m", "monotakd_ros.nodes.replay_eval", str(bag),
         "--report-dir", str(report_dir), "--detector-command", detector, "--rate", "2",
         "--end-grace", "1", "--start-delay", "0.5", "--classes", "Car", "--overlays", "0",
         *extra],
        capture_output=True, text=True, timeout=90)


def test_runs_replay_detector_and_evaluator_and_prints_the_table(bag, tmp_path: Path) -> None:
    echo = f"{sys.executable} {PROCS / 'echo_ground_truth.py'} --drop 1"
    # The echo listens to the ground truth only, so the start condition is set explicitly.
    done = replay_eval(bag.bag, tmp_path, echo, "--wait-for-subscribers",
                       f"{layout.GROUND_TRUTH_TOPIC}:2", f"{layout.CAMERA_INFO_TOPIC}:1")
    assert done.returncode == 0, done.stderr
    assert "Car AP_R40@0.70, 0.70, 0.70:" in done.stdout
    assert "3d   AP:" in done.stdout
    assert "evaluated frames: 7 of 8 ground truth frames; dropped by the detector: 1" in (
        done.stdout)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ap"]["Car"]["3d"]["R40"][1] == pytest.approx(100.0)
    assert report["settings"]["stamp_tolerance_s"] == pytest.approx(0.005)
    for name in ("evaluator", "detector", "replay"):
        assert (tmp_path / "logs" / f"{name}.log").is_file()


def test_a_failing_detector_stops_the_run_with_its_log(bag, tmp_path: Path) -> None:
    broken = f"{sys.executable} -c \"import sys; print('model file missing'); sys.exit(4)\""
    done = replay_eval(bag.bag, tmp_path, broken)
    assert done.returncode == 1
    assert "detector exited with status 4" in done.stderr
    assert "model file missing" in done.stderr


def test_bags_without_the_needed_topics_are_refused(tmp_path: Path, bag, caplog) -> None:
    drive = write_synthetic_drive(tmp_path / "raw", num_frames=1, with_tracklets=False)
    unlabelled = convert_drive_to_bag(drive.drive_dir, tmp_path / "unlabelled").path
    assert main([str(unlabelled), "--report-dir", str(tmp_path / "r1")]) == 1
    assert f"lacks topic(s) ['{layout.GROUND_TRUTH_TOPIC}']" in caplog.text
    assert main([str(bag.bag), "--report-dir", str(tmp_path / "r2"), "--gt-label-dir",
                 str(tmp_path)]) == 1
    assert "--gt-label-dir needs --gt-timestamps" in caplog.text
    assert main([str(tmp_path / "missing"), "--report-dir", str(tmp_path / "r3")]) == 1
    assert "cannot open rosbag2" in caplog.text


def test_no_evaluated_frame_gives_a_nonzero_status(tmp_path: Path, capsys) -> None:
    counts = {"ground_truth_frames": 3, "ground_truth_frames_without_detection_message": 3,
              "detection_messages_without_ground_truth": 0,
              "matched_frames_without_detections": 0}
    (tmp_path / "report.json").write_text(json.dumps({"evaluated_frames": 0, "counts": counts}))
    assert _print_report(tmp_path, 3, tmp_path) == EXIT_NOTHING_EVALUATED
    assert "dropped by the detector: 3" in capsys.readouterr().out
    (tmp_path / "report.json").unlink()
    assert _print_report(tmp_path, 1, tmp_path) == 1


def test_lost_ground_truth_fails_the_run(tmp_path: Path, caplog) -> None:
    counts = {"ground_truth_frames": 54, "ground_truth_frames_without_detection_message": 0,
              "detection_messages_without_ground_truth": 0,
              "matched_frames_without_detections": 0, "ground_truth_messages": 54,
              "ground_truth_messages_expected": 60, "ground_truth_messages_lost": 6}
    (tmp_path / "report.json").write_text(json.dumps({"evaluated_frames": 54, "counts": counts}))
    assert _print_report(tmp_path, 4, tmp_path) == EXIT_GROUND_TRUTH_LOST
    assert "6 of 60 ground truth messages in the bag never reached the evaluator" in caplog.text
