"""Which boxes count, which are ignored and which are unrelated, per class and difficulty."""

from __future__ import annotations

import numpy as np

from monotakd_ros.eval.difficulty import (
    COUNTED,
    DIFFICULTIES,
    IGNORED,
    UNRELATED,
    detection_flags,
    gt_flags,
    may_take_part,
)

EASY, MODERATE, HARD = DIFFICULTIES


def boxes_of_height(heights: list[float]) -> np.ndarray:
    return np.array([[0.0, 100.0, 50.0, 100.0 + h] for h in heights])


def flags_for(names: list[str], truncated: list[float], occluded: list[int],
              heights: list[float], cls: str = "Car") -> list[list[int]]:
    names = np.char.lower(np.array(names))
    bbox = boxes_of_height(heights)
    return [gt_flags(names, np.array(truncated, float), np.array(occluded), bbox, cls,
                     level).tolist() for level in DIFFICULTIES]


def test_truncation_limits_are_inclusive():
    # max truncation 0.15 / 0.30 / 0.50, compared with ">" as in the devkit
    easy, moderate, hard = flags_for(["Car"] * 4, [0.15, 0.16, 0.4, 0.51], [0] * 4, [60] * 4)
    assert easy == [COUNTED, IGNORED, IGNORED, IGNORED]
    assert moderate == [COUNTED, COUNTED, IGNORED, IGNORED]
    assert hard == [COUNTED, COUNTED, COUNTED, IGNORED]


def test_occlusion_levels():
    easy, moderate, hard = flags_for(["Car"] * 4, [0.0] * 4, [0, 1, 2, 3], [60] * 4)
    assert easy == [COUNTED, IGNORED, IGNORED, IGNORED]
    assert moderate == [COUNTED, COUNTED, IGNORED, IGNORED]
    assert hard == [COUNTED, COUNTED, COUNTED, IGNORED]


def test_ground_truth_exactly_at_the_minimum_height_is_ignored():
    easy, moderate, _ = flags_for(["Car"] * 3, [0.0] * 3, [0] * 3, [25.0, 40.0, 40.5])
    assert easy == [IGNORED, IGNORED, COUNTED]  # height <= 40 fails Easy
    assert moderate == [IGNORED, COUNTED, COUNTED]  # height <= 25 fails Moderate


def test_neighbour_classes_are_ignored_and_others_unrelated():
    names = ["car", "Van", "Truck", "DontCare", "Pedestrian", "Person_sitting", "Cyclist"]
    car = flags_for(names, [0.0] * 7, [0] * 7, [60] * 7, cls="Car")[1]
    assert car == [COUNTED, IGNORED, UNRELATED, UNRELATED, UNRELATED, UNRELATED, UNRELATED]
    ped = flags_for(names, [0.0] * 7, [0] * 7, [60] * 7, cls="Pedestrian")[1]
    assert ped == [UNRELATED, UNRELATED, UNRELATED, UNRELATED, COUNTED, IGNORED, UNRELATED]
    cyc = flags_for(names, [0.0] * 7, [0] * 7, [60] * 7, cls="Cyclist")[1]
    assert cyc == [UNRELATED] * 6 + [COUNTED]


def test_hard_to_see_neighbour_stays_ignored():
    assert flags_for(["Van"], [0.9], [3], [10.0])[2] == [IGNORED]


def test_detections_below_the_level_height_are_ignored_whatever_their_class():
    names = np.array(["car", "car", "pedestrian", "van", "car"])
    bbox = boxes_of_height([24.9, 25.0, 20.0, 60.0, 39.9])
    assert detection_flags(names, bbox, "Car", MODERATE).tolist() == [
        IGNORED, COUNTED, IGNORED, UNRELATED, COUNTED]
    assert detection_flags(names, bbox, "Car", EASY).tolist() == [
        IGNORED, IGNORED, IGNORED, UNRELATED, IGNORED]
    assert may_take_part(names, bbox, "Car").tolist() == [True, True, True, False, True]


def test_flipped_detection_box_uses_its_absolute_height():
    bbox = np.array([[0.0, 200.0, 50.0, 150.0]])  # y2 < y1: 50 px high all the same
    assert detection_flags(np.array(["car"]), bbox, "Car", EASY).tolist() == [COUNTED]
