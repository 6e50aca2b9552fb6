"""Specification of scripts/teacher_error_breakdown.py: GT z / h substitution into matches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from helpers_kitti_raw import kitti_camera_calib

from monotakd_ros.data.kitti.calib import object_calib_from_camera_calib
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "teacher_error_breakdown.py"
_spec = importlib.util.spec_from_file_location("teacher_error_breakdown", _SCRIPT)
breakdown = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(breakdown)  # type: ignore[union-attr]


def _labels(boxes: list[list[float]], names: list[str], score: bool) -> KittiLabels:
    n = len(boxes)
    return KittiLabels(names=np.array(names), truncated=np.zeros(n), occluded=np.zeros(n, int),
                       alpha=np.zeros(n), bbox=np.tile([100.0, 100.0, 300.0, 250.0], (n, 1)),
                       boxes_cam=np.array(boxes, dtype=np.float64),
                       score=np.linspace(0.9, 0.5, n) if score else None)


def _scene() -> tuple[KittiLabels, KittiLabels]:
    # Two cars; the detections are right in BEV but 0.5 m too high and 0.3 m too tall,
    # and a pedestrian detection on top of car 0 must not take the car's values.
    gt = _labels([[1.0, 1.6, 10.0, 3.9, 1.5, 1.6, 0.0], [-4.0, 1.7, 20.0, 4.0, 1.6, 1.7, 0.3]],
                 ["Car", "Car"], score=False)
    pred = _labels([[1.0, 1.25, 10.0, 3.9, 1.8, 1.6, 0.0], [-4.0, 1.35, 20.0, 4.0, 1.9, 1.7, 0.3],
                    [1.0, 1.0, 10.0, 0.8, 1.7, 0.6, 0.0], [30.0, 1.6, 40.0, 3.9, 1.5, 1.6, 0.0]],
                   ["Car", "Car", "Pedestrian", "Car"], score=True)
    return pred, gt


def test_matches_are_same_class_best_bev_overlap() -> None:
    pred, gt = _scene()
    assert breakdown.matched_ground_truth(pred, gt, 0.3).tolist() == [0, 1, -1, -1]


def test_substitutions_replace_only_the_vertical_values() -> None:
    pred, gt = _scene()
    match = breakdown.matched_ground_truth(pred, gt, 0.3)
    # Detection 0: centre y = 1.25 - 0.9 = 0.35; GT centre y = 1.6 - 0.75 = 0.85.
    z_only = breakdown.substituted(pred, gt, match, "GT z").boxes_cam[0]
    assert z_only[[1, 4]] == pytest.approx([0.85 + 0.9, 1.8])
    h_only = breakdown.substituted(pred, gt, match, "GT h").boxes_cam[0]
    assert h_only[[1, 4]] == pytest.approx([0.35 + 0.75, 1.5])
    both = breakdown.substituted(pred, gt, match, "GT z + h")
    np.testing.assert_allclose(both.boxes_cam[:2], gt.boxes_cam)
    np.testing.assert_allclose(both.boxes_cam[2:], pred.boxes_cam[2:])  # unmatched: untouched
    dz, dh, count = breakdown.vertical_errors_m([pred], [gt], [match])
    assert (dz, dh, count) == (pytest.approx(0.5), pytest.approx(0.3), 2)


def test_table_shows_the_vertical_gap_closing() -> None:
    pred, gt = _scene()
    # 40 frames: KITTI's R40 sampling needs enough true positives to reach every recall point.
    preds, gts = [pred] * 40, [gt] * 40
    table = breakdown.breakdown_table(preds, gts, breakdown.all_matches(preds, gts, 0.3),
                                      ("Car",), 0.3)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in
            table.splitlines() if line.startswith("| ") and "Variant" not in line}
    assert rows["as predicted"].startswith("0.00")  # 3D IoU of a box 0.5 m off is < 0.7
    assert rows["GT z + h"] == "100.00 / 100.00 / 100.00"
    assert rows["GT z"] == rows["GT z + h"]  # h 1.8 vs 1.5 alone keeps 3D IoU 0.83 > 0.7
    assert rows["GT h"].startswith("0.00")  # centres 0.5 m apart: vertical IoU 0.5
    assert "mean |dz| 0.500 m" in table


def test_model_vertical_errors_per_matched_car_with_its_range() -> None:
    pred, gt = _scene()
    matches = breakdown.all_matches([pred], [gt], 0.3)
    rows = breakdown.matched_vertical_errors([pred], [gt], matches, "Car")
    # Both cars: top 0.65 m too high (−0.55 vs 0.10), bottom 0.35 m, height 0.3 m; the
    # pedestrian and the unmatched car are left out.
    np.testing.assert_allclose(rows, [[np.hypot(1.0, 10.0), 0.65, 0.35, 0.3],
                                      [np.hypot(4.0, 20.0), 0.65, 0.35, 0.3]], atol=1e-9)


def test_point_errors_read_the_highest_return_and_the_ground_ring(tmp_path: Path) -> None:
    calib = kitti_camera_calib()
    seen = [1.0, 1.6, 10.0, 3.9, 1.5, 1.6, 0.0]  # x −0.95..2.95, z 9.2..10.8; top y 0.1
    sparse = [-6.0, 1.6, 30.0, 3.9, 1.5, 1.6, 0.0]  # two returns only: not judged
    roof = [[x, 0.14, z] for x in (0.5, 1.0, 1.5) for z in (9.5, 10.5)]  # 4 cm under the top
    side = [[1.0, 1.0, 9.3], [1.2, 1.3, 9.3]]  # lower returns on the body
    ground = [[x, 1.63, z] for x, z in ((-1.4, 10.0), (3.4, 10.0), (1.0, 8.6), (1.0, 11.4))]
    far = [[-6.0, 0.5, 30.0], [-5.5, 0.6, 30.0]]
    points_rect = np.array(roof + side + ground + far)
    points = np.hstack([calib.rect_to_lidar(points_rect), np.zeros((len(points_rect), 1))])
    labels = _labels([seen, sparse], ["Car", "Car"], score=False)
    writer = KittiObjectWriter(tmp_path)
    writer.write_frame("000000", np.zeros((8, 8, 3), np.uint8),
                       object_calib_from_camera_calib(calib), points.astype(np.float32), labels)
    rows = breakdown.point_vertical_errors(tmp_path, ["000000"], "Car")
    np.testing.assert_allclose(rows, [[np.hypot(1.0, 10.0), 0.04, 0.03]], atol=1e-4)


def test_centre_table_gives_each_object_its_nearest_same_class_detection() -> None:
    pred, gt = _scene()
    gt = _labels([*gt.boxes_cam.tolist(), [1.2, 1.7, 10.0, 0.8, 1.7, 0.6, 0.0],
                  [5.0, 1.7, 40.0, 0.8, 1.7, 0.6, 0.0]],
                 ["Car", "Car", "Pedestrian", "Pedestrian"], score=False)
    # Cars: detections on both centres. Pedestrians: the one detection (x 1.0, z 10.0) is
    # 0.2 m from the first and far from the second.
    rows = breakdown.nearest_detection_m([pred], [gt], "Pedestrian")
    np.testing.assert_allclose(rows, [[np.hypot(1.2, 10.0), 0.2],
                                      [np.hypot(5.0, 40.0), np.hypot(4.0, 30.0)]], atol=1e-9)
    table = breakdown.centre_table([pred], [gt], ("Car", "Pedestrian", "Cyclist"))
    assert "| Car | 0–20 m | 1 | 1.00 | 1.00 | 0.00 m |" in table
    assert "| Pedestrian | 0–20 m | 1 | 1.00 | 1.00 | 0.20 m |" in table
    assert "| Pedestrian | 35–80 m | 1 | 0.00 | 0.00 | 30.27 m |" in table
    assert "Cyclist" not in table  # no labelled cyclist: no row


def test_range_limited_substitution_touches_only_matches_in_the_band() -> None:
    pred, gt = _scene()  # matched cars at 10.0 m and 20.4 m
    match = breakdown.matched_ground_truth(pred, gt, 0.3)
    near = breakdown.substituted(pred, gt, match, "GT z + h", (0.0, 20.0))
    np.testing.assert_allclose(near.boxes_cam[0], gt.boxes_cam[0])
    np.testing.assert_allclose(near.boxes_cam[1:], pred.boxes_cam[1:])
    preds, gts = [pred] * 40, [gt] * 40
    table = breakdown.breakdown_table(preds, gts, breakdown.all_matches(preds, gts, 0.3),
                                      ("Car",), 0.3, by_range=True)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in
            table.splitlines() if line.startswith("| ") and "Variant" not in line}
    # One car right in 3D: recall stops at 0.5 (20 of 40 recall points). The near car's box
    # scores highest, so its points have precision 1 (AP 50); the far car's box comes after
    # the near car's false positives, precision 0.5 (AP 25).
    assert rows["GT z + h, 0–20 m only"] == "50.00 / 50.00 / 50.00"
    assert rows["GT z + h, 20–35 m only"] == "25.00 / 25.00 / 25.00"
    assert rows["GT z + h, 35–80 m only"] == rows["as predicted"]
