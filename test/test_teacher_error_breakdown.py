"""Specification of scripts/teacher_error_breakdown.py: GT z / h substitution into matches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from monotakd_ros.data.kitti.labels import KittiLabels

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
    table = breakdown.breakdown_table([pred] * 40, [gt] * 40, ("Car",), 0.3)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in
            table.splitlines() if line.startswith("| ") and "Variant" not in line}
    assert rows["as predicted"].startswith("0.00")  # 3D IoU of a box 0.5 m off is < 0.7
    assert rows["GT z + h"] == "100.00 / 100.00 / 100.00"
    assert rows["GT z"] == rows["GT z + h"]  # h 1.8 vs 1.5 alone keeps 3D IoU 0.83 > 0.7
    assert rows["GT h"].startswith("0.00")  # centres 0.5 m apart: vertical IoU 0.5
    assert "mean |dz| 0.500 m" in table
