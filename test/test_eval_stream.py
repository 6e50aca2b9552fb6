"""Stream evaluation core: stamp matching, Detection3DArray -> KITTI boxes, counts and report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from monotakd_ros.bags.ground_truth import detections_message
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.raw_drive import write_timestamps
from monotakd_ros.errors import DatasetError, EvaluationError
from monotakd_ros.eval.detection_frames import (
    DetectionFrame,
    OutputFrame,
    detection_frame_of,
    detections_to_labels,
)
from monotakd_ros.eval.label_stamps import stamped_label_files
from monotakd_ros.eval.plots import draw_overlay
from monotakd_ros.eval.stream import (
    EXIT_GROUND_TRUTH_LOST,
    StreamEvaluator,
    exit_status,
    match_frames,
)
from monotakd_ros.eval.stream_report import write_stream_report
from monotakd_ros.geometry.coord_frames import (
    OrientedBoxes,
    T_body_from_optical,
    boxes_cam_to_body,
    boxes_cam_to_optical,
)

P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
               [0.0, 0.0, 1.0, 0.002745884]])
IMAGE_HW = (375, 1242)
STORE = monotakd_typestore()
# [x, y, z, l, h, w, ry]: two cars and a pedestrian in front of the camera.
BOXES_CAM = np.array([[1.0, 1.65, 10.0, 3.9, 1.5, 1.6, 0.0],
                      [-4.0, 1.70, 18.0, 4.2, 1.6, 1.7, 0.7],
                      [3.0, 1.60, 8.0, 0.8, 1.75, 0.6, -2.5]])


def projected_bbox_of_unrotated(box: np.ndarray) -> np.ndarray:
    """2D box of an ry = 0 camera box, from its 8 corners projected by hand."""
    x, y, z, length, height, width, _ = box
    corners = np.array([[x + sx * length / 2, y - top * height, z + sz * width / 2, 1.0]
                        for sx in (-1, 1) for top in (0, 1) for sz in (-1, 1)])
    uvw = corners @ P2.T
    uv = uvw[:, :2] / uvw[:, 2:]
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def labels(boxes_cam: np.ndarray, names: list[str]) -> KittiLabels:
    n = len(boxes_cam)
    return KittiLabels(names=np.array(names), truncated=np.zeros(n),
                       occluded=np.zeros(n, dtype=np.int64), alpha=np.zeros(n),
                       bbox=np.tile([500.0, 150.0, 700.0, 250.0], (n, 1)), boxes_cam=boxes_cam)


def frame_of_boxes(stamp_ns: int, boxes_cam: np.ndarray, class_ids: list[str],
                   scores: list[float] | None = None) -> DetectionFrame:
    return DetectionFrame(stamp_ns, "camera", tuple(class_ids),
                          np.asarray(scores or [1.0] * len(class_ids)),
                          boxes_cam_to_optical(boxes_cam))


def test_match_frames_pairs_nearest_stamps_and_counts_leftovers() -> None:
    gt = {100: KittiLabels(), 200: KittiLabels(), 300: KittiLabels()}
    dets = [frame_of_boxes(s, np.zeros((0, 7)), []) for s in (450, 200, 103, 201)]
    match = match_frames(gt, dets, tolerance_ns=5)
    assert [(m.stamp_ns, m.detections.stamp_ns) for m in match.matched] == [(100, 103),
                                                                           (200, 200)]
    assert match.ground_truth_only == [300]
    assert match.detections_only == [450]
    assert match.duplicates == [201]
    assert match_frames(gt, dets, tolerance_ns=0).detections_only == [103, 201, 450]
    with pytest.raises(EvaluationError, match="stamp tolerance must be >= 0 ns, got -1"):
        match_frames(gt, dets, tolerance_ns=-1)


def test_ground_truth_message_round_trips_to_the_same_camera_boxes() -> None:
    gt = labels(BOXES_CAM, ["Car", "Car", "Pedestrian"])
    message = detections_message(STORE, gt, 123_000_000_456, "camera_color_left")
    frame = detection_frame_of(message)
    assert frame.stamp_ns == 123_000_000_456 and frame.frame_id == "camera_color_left"
    assert frame.class_ids == ("car", "car", "pedestrian")
    back = detections_to_labels(frame, P2, IMAGE_HW)
    np.testing.assert_allclose(back.boxes_cam[:, :6], BOXES_CAM[:, :6], atol=1e-9)
    ry_error = np.angle(np.exp(1j * (back.boxes_cam[:, 6] - BOXES_CAM[:, 6])))
    np.testing.assert_allclose(ry_error, 0.0, atol=1e-9)
    assert list(back.names) == ["Car", "Car", "Pedestrian"]
    np.testing.assert_allclose(back.score, 1.0)
    np.testing.assert_allclose(back.bbox[0], projected_bbox_of_unrotated(BOXES_CAM[0]),
                               atol=1e-6)
    # alpha: the heading seen from the camera ray through the box.
    np.testing.assert_allclose(back.alpha[0], 0.0 - math.atan2(1.0, 10.0), atol=1e-9)


def test_body_frame_output_is_read_back_through_the_extrinsic() -> None:
    body = boxes_cam_to_body(BOXES_CAM)
    frame = DetectionFrame(5, "base_link", ("car",) * 3, np.array([0.9, 0.8, 0.7]), body)
    output = OutputFrame(box_axes="body", T_output_from_optical=T_body_from_optical())
    back = detections_to_labels(frame, P2, IMAGE_HW, output)
    np.testing.assert_allclose(back.boxes_cam[:, :6], BOXES_CAM[:, :6], atol=1e-9)
    np.testing.assert_allclose(np.cos(back.boxes_cam[:, 6] - BOXES_CAM[:, 6]), 1.0, atol=1e-12)
    np.testing.assert_allclose(back.score, [0.9, 0.8, 0.7])


def test_unusable_detections_are_errors_naming_the_problem() -> None:
    tilted = OrientedBoxes(center=[[0.0, 0.0, 10.0]],
                           quat_xyzw=[[math.sin(0.25), 0.0, 0.0, math.cos(0.25)]],
                           size=[[4.0, 1.5, 1.6]])
    frame = DetectionFrame(7, "camera", ("car",), np.array([0.5]), tilted)
    with pytest.raises(EvaluationError, match="stamped 7 ns: box 0: .* not a rotation about"):
        detections_to_labels(frame, P2, IMAGE_HW)
    message = detections_message(STORE, labels(BOXES_CAM[:1], ["Car"]), 1, "camera")
    message.detections[0].results = []
    with pytest.raises(EvaluationError, match="Detection3D 0 has an empty results list"):
        detection_frame_of(message)
    with pytest.raises(EvaluationError, match="box_axes must be one of"):
        OutputFrame(box_axes="lidar")
    with pytest.raises(EvaluationError, match="T_output_from_optical must be a finite 4x4"):
        OutputFrame(T_output_from_optical=np.eye(3))


def car_frames(count: int) -> dict[int, KittiLabels]:
    """One clearly visible car per frame, moving away; stamps 100 ms apart."""
    frames = {}
    for k in range(count):
        box = np.array([[0.5, 1.65, 8.0 + 0.2 * k, 3.9, 1.5, 1.6, 0.0]])
        gt = labels(box, ["Car"])
        gt.bbox = projected_bbox_of_unrotated(box[0])[None]
        frames[1_000_000_000 + k * 100_000_000] = gt
    return frames


def test_stream_evaluator_scores_matched_frames_and_counts_every_leftover(tmp_path) -> None:
    gt = car_frames(45)
    stamps = sorted(gt)
    evaluator = StreamEvaluator(tolerance_s=0.001, classes=["Car"])
    evaluator.cameras.add(stamps[0], P2, IMAGE_HW)
    for stamp, truth in gt.items():
        evaluator.add_ground_truth(stamp, truth)
        if stamp != stamps[5]:  # the detector skipped frame 5
            evaluator.add_detections(frame_of_boxes(stamp + 1000, truth.boxes_cam, ["car"]))
    evaluator.add_detections(frame_of_boxes(stamps[9], gt[stamps[9]].boxes_cam, ["car"]))
    evaluator.add_detections(frame_of_boxes(99 * 10**9, gt[stamps[0]].boxes_cam, ["car"]))
    assert not evaluator.all_ground_truth_answered()
    evaluation = evaluator.evaluate()
    counts = evaluation.counts
    assert counts.ground_truth_frames == 45 and counts.detection_messages == 46
    assert counts.matched_frames == 44
    assert counts.ground_truth_frames_without_detection_message == 1
    assert counts.detection_messages_without_ground_truth == 1
    assert counts.duplicate_detection_messages == 1
    assert evaluation.dropped_stamps_ns == [stamps[5]]
    for metric in ("3d", "bev", "bbox"):
        np.testing.assert_allclose(evaluation.result.average_precision("Car", metric), 100.0)
    # Scoring the dropped frame as "no detections" costs recall: 44 of 45 cars found, every
    # one at precision 1 and all of them Easy (2D height >= 64 px, no occlusion or truncation).
    # R40 samples recall at 1/40 ... 40/40: all but 40/40 lie below 44/45 = 0.978, so AP =
    # 39/40 = 97.5 %; R11 samples 0, 0.1 ... 1.0: 10 of 11 reachable, AP = 10/11.
    for metric in ("3d", "bev", "bbox"):
        np.testing.assert_allclose(
            evaluation.result_with_dropped.average_precision("Car", metric, 40), 97.5)
        np.testing.assert_allclose(
            evaluation.result_with_dropped.average_precision("Car", metric, 11), 1000.0 / 11)

    files = write_stream_report(tmp_path / "report", evaluation, {"bag": "x"})
    report = json.loads(files.json.read_text())
    assert report["evaluated_frames"] == 44
    assert report["counts"]["ground_truth_frames_without_detection_message"] == 1
    assert report["ap"]["Car"]["3d"]["R40"] == pytest.approx([100.0] * 3)
    assert report["dropped_stamps_ns"] == [stamps[5]]
    assert report["files"]["pr_curves"] == "pr_curves.png"
    markdown = files.markdown.read_text()
    assert "| Car | 3D | 0.70 | 100.00 | 100.00 | 100.00 | 44/44/44 |" in markdown
    assert "dropped by the detector) | 1 |" in markdown
    for path in (files.pr_curves, files.bev, files.table):
        assert path.stat().st_size > 0


def test_empty_answers_and_missing_camera_info_are_counted_not_hidden(tmp_path) -> None:
    gt = car_frames(2)
    stamps = sorted(gt)
    evaluator = StreamEvaluator(classes=["Car"])
    for stamp in stamps:
        evaluator.add_ground_truth(stamp, gt[stamp])
    evaluator.add_detections(frame_of_boxes(stamps[0], np.zeros((0, 7)), []))
    evaluator.add_detections(frame_of_boxes(stamps[1], gt[stamps[1]].boxes_cam, ["car"]))
    assert evaluator.all_ground_truth_answered()
    # Without CameraInfo the non-empty frame cannot get 2D boxes; the empty one needs none.
    evaluation = evaluator.evaluate()
    assert evaluation.counts.matched_frames == 1
    assert evaluation.counts.matched_frames_without_detections == 1
    assert evaluation.counts.unreadable_messages == {"detections_not_convertible": 1}
    assert evaluator.evaluate().counts.unreadable_messages == {"detections_not_convertible": 1}

    nothing = StreamEvaluator().evaluate()
    assert nothing.result is None
    files = write_stream_report(tmp_path, nothing, {})
    assert "No frame was evaluated" in files.markdown.read_text()
    assert files.pr_curves is None and not (tmp_path / "pr_curves.png").exists()
    assert json.loads(files.json.read_text())["ap"] is None


def test_label_files_are_stamped_by_frame_index(tmp_path: Path) -> None:
    write_timestamps(tmp_path / "timestamps.txt", [10**18, 10**18 + 10**8, 10**18 + 2 * 10**8])
    label_dir = tmp_path / "label_2"
    label_dir.mkdir()
    line = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
    (label_dir / "0000000002.txt").write_text(line)
    (label_dir / "0000000000.txt").write_text("")
    frames = stamped_label_files(label_dir, tmp_path / "timestamps.txt")
    assert sorted(frames) == [10**18, 10**18 + 2 * 10**8]
    assert len(frames[10**18]) == 0 and list(frames[10**18 + 2 * 10**8].names) == ["Car"]
    (label_dir / "0000000003.txt").write_text(line)
    with pytest.raises(DatasetError, match=r"0000000003.txt: frame 3 is beyond the 3 stamps"):
        stamped_label_files(label_dir, tmp_path / "timestamps.txt")
    (label_dir / "0000000003.txt").unlink()
    (label_dir / "notes.txt").write_text("")
    with pytest.raises(DatasetError, match="notes.txt: label file names must be frame indices"):
        stamped_label_files(label_dir, tmp_path / "timestamps.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        stamped_label_files(tmp_path / "missing", tmp_path / "timestamps.txt")


def test_overlay_draws_ground_truth_and_detections_on_a_copy() -> None:
    image = np.zeros((*IMAGE_HW, 3), dtype=np.uint8)
    gt = labels(BOXES_CAM[:1], ["Car"])
    det = detections_to_labels(frame_of_boxes(0, BOXES_CAM[:1] + [2.0, 0, 0, 0, 0, 0, 0],
                                              ["car"], [0.75]), P2, IMAGE_HW)
    drawn = draw_overlay(image, gt, det, P2)
    assert not image.any()
    x1, y1, x2, y2 = projected_bbox_of_unrotated(BOXES_CAM[0])
    # Both vertical edges of the ground truth box's outline are painted green.
    assert drawn[int((y1 + y2) / 2), int(round(x1)) - 1:int(round(x1)) + 2, 1].max() > 150
    assert drawn[int((y1 + y2) / 2), int(round(x2)) - 1:int(round(x2)) + 2, 1].max() > 150
    assert drawn[..., 2].max() > 150  # the detection in red


def test_ground_truth_lost_on_the_way_is_counted_and_fails_the_run(tmp_path) -> None:
    """The replay sent 5 ground truth messages; 3 arrived (one unreadable): 2 lost, status 4."""
    gt = car_frames(2)
    evaluator = StreamEvaluator(classes=["Car"], expected_ground_truth=5)
    for stamp, truth in gt.items():
        evaluator.add_ground_truth(stamp, truth)
        evaluator.add_detections(frame_of_boxes(stamp, np.zeros((0, 7)), []))
    evaluator.count_unreadable("ground_truth")
    evaluator.count_unreadable("detections")
    assert evaluator.all_ground_truth_answered() and not evaluator.ground_truth_complete
    evaluation = evaluator.evaluate()
    counts = evaluation.counts
    assert (counts.ground_truth_messages, counts.ground_truth_messages_expected,
            counts.ground_truth_messages_lost) == (3, 5, 2)
    assert evaluation.result is not None  # the frames that came are still scored ...
    assert exit_status(evaluation) == EXIT_GROUND_TRUTH_LOST  # ... but the run fails
    markdown = write_stream_report(tmp_path, evaluation, {}).markdown.read_text()
    assert "**Ground truth lost**: 2 of 5 ground truth messages" in markdown
    complete = StreamEvaluator(classes=["Car"], expected_ground_truth=2)
    for stamp, truth in gt.items():
        complete.add_ground_truth(stamp, truth)
        complete.add_detections(frame_of_boxes(stamp, np.zeros((0, 7)), []))
    assert complete.ground_truth_complete
    assert exit_status(complete.evaluate()) == 0
    with pytest.raises(EvaluationError, match="expected ground truth messages must be >= 0"):
        StreamEvaluator(expected_ground_truth=-1)
