"""Threshold sampling, interpolated curves and R40/R11 averaging of the KITTI devkit."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.average_precision import (
    average_precision_percent,
    pr_curve,
    score_thresholds,
)
from monotakd_ros.eval.matching import PrCounts


def test_eighty_true_positives_of_eighty_fill_all_41_positions():
    # Target recall k/40 keeps rank i (recall (i+1)/80) unless rank i+1 is strictly closer:
    # (i+2)/80 - k/40 < k/40 - (i+1)/80  <=>  2i + 3 < 4k. So rank 0 for k = 0, then
    # rank 2k - 1 for k = 1..40 (ranks 1, 3, ..., 79).
    scores = np.linspace(0.9, 0.1, 80)
    shuffled = np.random.default_rng(0).permutation(scores)
    thresholds = score_thresholds(shuffled, num_counted_gt=80)
    expected_ranks = [0] + [2 * k - 1 for k in range(1, 41)]
    np.testing.assert_array_equal(thresholds, scores[expected_ranks])


def test_forty_true_positives_of_eighty_reach_position_20():
    thresholds = score_thresholds(np.linspace(0.9, 0.5, 40), num_counted_gt=80)
    assert len(thresholds) == 21  # ranks 0, 1, 3, ..., 39 (k = 20)
    assert thresholds[-1] == 0.5


def test_forty_of_forty_keep_every_rank():
    # G = 40: skip rank i for target k/40 iff (i+2)/40 - k/40 < k/40 - (i+1)/40, i.e.
    # 2i + 3 < 2k; target k is first tried at rank i = k, where that never holds.
    scores = np.linspace(1.0, 0.61, 40)
    np.testing.assert_array_equal(score_thresholds(scores, num_counted_gt=40), scores)


def test_no_true_positive_or_no_ground_truth_gives_no_threshold():
    assert len(score_thresholds(np.zeros(0), num_counted_gt=5)) == 0
    assert len(score_thresholds(np.array([0.4]), num_counted_gt=0)) == 0
    np.testing.assert_array_equal(score_thresholds(np.array([0.4]), num_counted_gt=1), [0.4])


def test_curve_interpolates_to_the_best_precision_at_higher_recall():
    counts = PrCounts(
        tp=np.array([1, 2, 2, 3]),
        fp=np.array([0, 0, 2, 1]),
        fn=np.array([2, 1, 1, 0]),
        similarity=np.array([1.0, 1.5, 2.0, 2.5]),
    )
    curve = pr_curve(counts)
    # raw precision 1, 1, 0.5, 0.75 -> interpolated 1, 1, 0.75, 0.75, then zeros
    np.testing.assert_allclose(curve.precision[:5], [1.0, 1.0, 0.75, 0.75, 0.0])
    assert not curve.precision[4:].any()
    np.testing.assert_allclose(curve.recall[:5], [1.0, 1.0, 1.0, 1.0, 0.0])
    # similarity / (tp + fp) = 1, 0.75, 0.5, 0.625 -> 1, 0.75, 0.625, 0.625
    np.testing.assert_allclose(curve.orientation_similarity[:4], [1.0, 0.75, 0.625, 0.625])
    # R40 averages positions 1..40: (1 + 0.75 + 0.75) / 40; R11 positions 0, 4, ...: 1 / 11.
    assert average_precision_percent(curve.precision, 40) == pytest.approx(2.5 / 40 * 100)
    assert average_precision_percent(curve.precision, 11) == pytest.approx(100 / 11)


def test_r11_and_r40_read_their_own_positions():
    curve = np.zeros(41)
    curve[0] = 1.0  # only R11 sees recall 0
    assert average_precision_percent(curve, 40) == 0.0
    assert average_precision_percent(curve, 11) == pytest.approx(100 / 11)
    curve[:] = 0.0
    curve[1:4] = 1.0  # recall 1/40..3/40: only R40 sees them
    assert average_precision_percent(curve, 40) == pytest.approx(7.5)
    assert average_precision_percent(curve, 11) == 0.0


def test_other_recall_point_counts_are_refused():
    with pytest.raises(EvaluationError, match="recall_points must be 40 or 11, got 12"):
        average_precision_percent(np.zeros(41), 12)
