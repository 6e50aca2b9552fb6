"""evaluate_kitti end to end on hand-made scenes; every expected AP is derived in the test.

Recurring arithmetic (the devkit's threshold sampling, see test_eval_average_precision): with
G counted ground truth boxes and T true positives, the k-th of the 41 sampled recall positions
uses the true positive of rank i_k (0-based, by score). For G = 80 the ranks are 0, 1, 3, 5, ...,
2k - 1, ..., 79, so 80 perfect detections fill all 41 positions with precision 1.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from helpers_eval import CAR_DIMS, PED_DIMS, Obj, empty, frame, one_car_per_frame, shifted

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.kitti_eval import KittiEvalResult, evaluate_kitti

METRICS = ("bbox", "bev", "3d", "aos")
FAR_BOX = (-15.0, 1.6, 40.0, *CAR_DIMS, 0.0)  # no BEV overlap with the default car at z = 20
FAR_BBOX = (100.0, 150.0, 160.0, 200.0)  # no image overlap with the default (500..600) box


def ap(result: KittiEvalResult, metric: str, points: int, cls: str = "Car") -> np.ndarray:
    return result.average_precision(cls, metric, points)


def test_perfect_predictions_give_100_everywhere():
    gt, dt, _ = one_car_per_frame(80)
    result = evaluate_kitti(gt, dt)
    for metric in METRICS:
        for points in (40, 11):
            np.testing.assert_allclose(ap(result, metric, points), [100.0, 100.0, 100.0])
    np.testing.assert_array_equal(result.num_counted_gt["Car"], [80, 80, 80])
    assert result.precision["Car"]["3d"].shape == (3, 41)
    np.testing.assert_array_equal(result.precision["Car"]["3d"], np.ones((3, 41)))
    np.testing.assert_array_equal(result.recall["Car"]["bev"][:, -1], [1.0, 1.0, 1.0])
    # No pedestrian or cyclist ground truth at all: the devkit reports 0 there.
    assert result.to_json_dict()["Pedestrian"]["3d"]["R40"] == [0.0, 0.0, 0.0]


def test_forty_boxes_are_too_few_for_r40_to_reach_100():
    # G = T = 40: position k uses rank k (k = 0..39), so position 40 (recall 1) has no score and
    # keeps precision 0: R40 = 39/40, R11 = 10/11 (positions 0, 4, ..., 36 filled, 40 empty).
    gt, dt, _ = one_car_per_frame(40)
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [97.5] * 3)
    np.testing.assert_allclose(ap(result, "3d", 11), [100.0 * 10 / 11] * 3)


@pytest.mark.parametrize(("shift_m", "expected_3d"), [(0.75, 0.0), (0.65, 100.0)])
def test_shift_along_the_length_crosses_the_iou_threshold(shift_m: float, expected_3d: float):
    # Same size, shifted along its length l = 4: IoU = (4 - d) / (4 + d), above 0.7 iff
    # d < 1.2 / 1.7 = 0.706 m: 0.75 m gives 0.684 (a miss), 0.65 m gives 0.720 (a match).
    gt, _, dets = one_car_per_frame(80)
    moved = [frame([shifted(d, dx_m=shift_m)]) for d in dets]
    result = evaluate_kitti(gt, moved, classes=["Car"])
    for metric in ("bev", "3d"):
        np.testing.assert_allclose(ap(result, metric, 40), [expected_3d] * 3)
        np.testing.assert_allclose(ap(result, metric, 11), [expected_3d] * 3)
    np.testing.assert_allclose(ap(result, "bbox", 40), [100.0] * 3)  # image boxes untouched


def _with_false_positive(score: float) -> list[list[KittiLabels]]:
    gt, dt, dets = one_car_per_frame(80)
    dt[0] = frame([dets[0], Obj(box=FAR_BOX, bbox=FAR_BBOX, score=score)])
    return [gt, dt]


def test_false_positive_scored_above_every_true_positive():
    # The FP is active at every threshold: precision at position k is (i_k + 1) / (i_k + 2),
    # rising with k to 80/81, and interpolation lifts every position to that last value.
    result = evaluate_kitti(*_with_false_positive(1.0), classes=["Car"])
    for metric in ("bbox", "bev", "3d"):
        np.testing.assert_allclose(ap(result, metric, 40), [100.0 * 80 / 81] * 3)
        np.testing.assert_allclose(ap(result, metric, 11), [100.0 * 80 / 81] * 3)


def test_false_positive_scored_below_every_true_positive_costs_nothing():
    result = evaluate_kitti(*_with_false_positive(0.001), classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [100.0] * 3)


def test_false_positive_in_the_middle_of_the_ranking():
    # TP scores are 0.99 - 0.001 i; 0.9505 sits between ranks 39 and 40. Positions k <= 20 use
    # ranks 2k - 1 <= 39 (precision 1); positions 21..40 see the FP and interpolate to 80/81.
    result = evaluate_kitti(*_with_false_positive(0.9505), classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [(20 + 20 * 80 / 81) / 40 * 100] * 3)
    # R11 positions 0, 4, ..., 20 are 1 (six of them), 24, ..., 40 are 80/81 (five).
    np.testing.assert_allclose(ap(result, "3d", 11), [(6 + 5 * 80 / 81) / 11 * 100] * 3)


def test_dontcare_region_frees_a_false_positive_in_the_image_metric_only():
    gt, dt = _with_false_positive(1.0)
    dontcare = Obj(name="DontCare", box=(-1000, -1000, -1000, -1, -1, -1, -10),
                   bbox=(90.0, 140.0, 170.0, 210.0), truncated=-1, occluded=-1, alpha=-10)
    gt[0] = frame([Obj(), dontcare])  # covers the FP's image box entirely (share 1 > 0.7)
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "bbox", 40), [100.0] * 3)
    np.testing.assert_allclose(ap(result, "aos", 40), [100.0] * 3)
    # DontCare rows have no 3D box (location -1000), so as in the devkit the BEV and 3D
    # metrics still count the FP: the 80/81 of the ranking test.
    np.testing.assert_allclose(ap(result, "3d", 40), [100.0 * 80 / 81] * 3)


@pytest.mark.parametrize(("cls", "neighbour", "dims"),
                         [("Car", "Van", CAR_DIMS), ("Pedestrian", "Person_sitting", PED_DIMS)])
def test_neighbour_class_boxes_are_ignored(cls: str, neighbour: str, dims: tuple):
    gt_obj = Obj(name=cls, box=(0.0, 1.6, 20.0, *dims, 0.0))
    gt = [frame([gt_obj]) for _ in range(80)]
    dt = [frame([replace(gt_obj, score=0.99 - 0.001 * i)]) for i in range(80)]
    far = (-15.0, 1.6, 40.0, *dims, 0.0)
    # frame 0: a top-scored detection of the class on neighbour ground truth (no FP, no TP);
    # frame 1: a top-scored detection named as the neighbour (not this class at all);
    # frame 2: neighbour ground truth nobody detected (no FN).
    gt[0] = frame([gt_obj, Obj(name=neighbour, box=far, bbox=FAR_BBOX)])
    dt[0] = frame([replace(gt_obj, score=0.99), Obj(name=cls, box=far, bbox=FAR_BBOX, score=1.0)])
    dt[1] = frame([replace(gt_obj, score=0.989),
                   Obj(name=neighbour, box=far, bbox=FAR_BBOX, score=1.0)])
    gt[2] = frame([gt_obj, Obj(name=neighbour, box=far, bbox=FAR_BBOX)])
    result = evaluate_kitti(gt, dt, classes=[cls])
    for metric in METRICS:
        np.testing.assert_allclose(ap(result, metric, 40, cls), [100.0] * 3)


def test_other_class_ground_truth_does_not_absorb_a_detection():
    # A Truck is no neighbour of Car: a car detection on it is a plain false positive.
    gt, dt = _with_false_positive(1.0)
    gt[0] = frame([Obj(), Obj(name="Truck", box=FAR_BOX, bbox=FAR_BBOX)])
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [100.0 * 80 / 81] * 3)


def test_frames_without_ground_truth_or_predictions():
    # 80 cars, 40 detected (ranks 0..39) and 40 in frames without predictions; 20 empty frames;
    # one frame without ground truth holding a top-scored FP. Positions k <= 20 (ranks 2k - 1)
    # get precision (i_k + 1) / (i_k + 2), interpolated to 40/41; positions 21..40 stay 0.
    gt, dt, _ = one_car_per_frame(80)
    dt[40:] = [empty() for _ in range(40)]
    gt += [empty() for _ in range(21)]
    dt += [empty() for _ in range(20)] + [frame([Obj(box=FAR_BOX, bbox=FAR_BBOX, score=1.0)])]
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [20 * 40 / 41 / 40 * 100] * 3)
    np.testing.assert_allclose(ap(result, "3d", 11), [6 * 40 / 41 / 11 * 100] * 3)


def test_nothing_at_all_evaluates_to_zero():
    for gt, dt in (([], []), ([empty()] * 3, [empty()] * 3)):
        result = evaluate_kitti(gt, dt)
        assert result.to_json_dict()["Car"]["bev"] == {"R40": [0.0] * 3, "R11": [0.0] * 3}
        np.testing.assert_array_equal(result.num_counted_gt["Cyclist"], [0, 0, 0])


def test_yaw_wrap_around_counts_as_one_box():
    # ry = pi - 0.01 and -pi + 0.01 differ by 0.02 rad only; so do the alphas, giving each TP
    # the orientation similarity (1 + cos 0.02) / 2 at every threshold.
    gt, _, dets = one_car_per_frame(80)
    gt = [frame([Obj(box=(0.0, 1.6, 20.0, *CAR_DIMS, math.pi - 0.01), alpha=math.pi - 0.01)])
          for _ in gt]
    dt = [frame([Obj(box=(0.0, 1.6, 20.0, *CAR_DIMS, -math.pi + 0.01), alpha=-math.pi + 0.01,
                     score=d.score)]) for d in dets]
    result = evaluate_kitti(gt, dt, classes=["Car"])
    for metric in ("bbox", "bev", "3d"):
        np.testing.assert_allclose(ap(result, metric, 40), [100.0] * 3)
    np.testing.assert_allclose(ap(result, "aos", 40), [100.0 * (1 + math.cos(0.02)) / 2] * 3)


def test_quarter_turn_is_a_different_box():
    # 4 x 1.6 footprints crossed at 90 degrees: IoU = 2.56 / (6.4 + 6.4 - 2.56) = 0.25 < 0.7.
    gt, _, dets = one_car_per_frame(80)
    dt = [frame([Obj(box=(0.0, 1.6, 20.0, *CAR_DIMS, math.pi / 2), score=d.score)])
          for d in dets]
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "3d", 40), [0.0] * 3)


def test_aos_equals_ap_with_perfect_orientation_and_drops_for_a_flip():
    gt, dt, dets = one_car_per_frame(80)
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(result, "aos", 40), ap(result, "bbox", 40))
    # Flip the top-scored detection by pi: similarity 0 for it. Position k sees 2k TPs
    # (k >= 1) of which one is flipped: (2k - 1) / 2k, rising to 79/80; interpolation
    # gives every position 79/80, so AOS = 98.75 for R40 and R11 alike.
    dt[0] = frame([Obj(alpha=math.pi, score=dets[0].score)])
    flipped = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(ap(flipped, "bbox", 40), [100.0] * 3)
    np.testing.assert_allclose(ap(flipped, "aos", 40), [98.75] * 3)
    np.testing.assert_allclose(ap(flipped, "aos", 11), [98.75] * 3)


def test_truncated_car_counts_only_in_hard():
    # Truncation 0.4 exceeds Easy (0.15) and Moderate (0.30) but not Hard (0.50).
    gt, dt, _ = one_car_per_frame(80)
    truncated_gt, truncated_dt, _ = one_car_per_frame(80, truncated=0.4)
    undetected = evaluate_kitti(gt + truncated_gt, dt + [empty()] * 80, classes=["Car"])
    np.testing.assert_array_equal(undetected.num_counted_gt["Car"], [80, 80, 160])
    # Hard: G = 160, T = 80: position k uses rank 4k - 1 (k >= 1), so positions 0..20 hold
    # precision 1 and the rest 0: R40 = 20/40, R11 = 6/11.
    np.testing.assert_allclose(ap(undetected, "3d", 40), [100.0, 100.0, 50.0])
    np.testing.assert_allclose(ap(undetected, "3d", 11), [100.0, 100.0, 600 / 11])
    # Detected, they are neither FP in Easy/Moderate nor missing in Hard.
    detected = evaluate_kitti(gt + truncated_gt, dt + truncated_dt, classes=["Car"])
    np.testing.assert_allclose(ap(detected, "3d", 40), [100.0] * 3)


@pytest.mark.parametrize(("height_px", "expected_easy", "expected_moderate"),
                         [(20.0, 100.0, 100.0), (30.0, 100.0, 100.0 * 80 / 81)])
def test_small_false_positive_is_ignored_below_the_level_height(
    height_px: float, expected_easy: float, expected_moderate: float
):
    # Detections lower than the level's minimum (40 px Easy, 25 px Moderate/Hard) never count.
    gt, dt, dets = one_car_per_frame(80)
    small_bbox = (100.0, 150.0, 160.0, 150.0 + height_px)
    dt[0] = frame([dets[0], Obj(box=FAR_BOX, bbox=small_bbox, score=1.0)])
    result = evaluate_kitti(gt, dt, classes=["Car"])
    np.testing.assert_allclose(
        ap(result, "3d", 40), [expected_easy, expected_moderate, expected_moderate]
    )


def test_unknown_alpha_disables_aos():
    gt, dt, dets = one_car_per_frame(80)
    dt[3] = frame([Obj(alpha=-10.0, score=dets[3].score)])
    result = evaluate_kitti(gt, dt, classes=["Car"])
    assert set(result.to_json_dict()["Car"]) == {"3d", "bev", "bbox"}
    assert "aos" not in result.format_table()


def test_json_and_table_layout():
    gt, dt, _ = one_car_per_frame(80)
    result = evaluate_kitti(gt, dt, classes=["car", "Cyclist"])
    as_json = result.to_json_dict()
    assert list(as_json) == ["Car", "Cyclist"]
    assert set(as_json["Car"]) == {"3d", "bev", "bbox", "aos"}
    assert as_json["Car"]["3d"] == {"R40": [100.0] * 3, "R11": [100.0] * 3}
    table = result.format_table()
    assert "Car AP_R40@0.70, 0.70, 0.70:" in table
    assert "Cyclist AP_R11@0.50, 0.50, 0.50:" in table
    assert "3d   AP:100.0000, 100.0000, 100.0000" in table


def test_input_errors_name_the_problem():
    gt, dt, _ = one_car_per_frame(3)
    with pytest.raises(EvaluationError, match="ground truth has 3 frames but detections have 2"):
        evaluate_kitti(gt, dt[:2])
    with pytest.raises(EvaluationError, match="cannot evaluate class 'Truck'"):
        evaluate_kitti(gt, dt, classes=["Car", "Truck"])
    with pytest.raises(EvaluationError, match="detections of frame 1 have no score"):
        evaluate_kitti(gt, [dt[0], gt[1], dt[2]])
