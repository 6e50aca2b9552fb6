"""Rotated NMS against a straightforward greedy reference loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers_geometry import rotated_nms_numpy

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.iou import bev_iou_pairs
from monotakd_ros.geometry.nms import rotated_nms


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float,
                  max_keep: int | None = None) -> list[int]:
    """Textbook greedy NMS: best first, keep a box unless a kept box overlaps it too much."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if max_keep is not None and len(kept) == max_keep:
            break
        overlaps = [float(bev_iou_pairs(boxes[i:i + 1], boxes[k:k + 1])[0]) for k in kept]
        if all(overlap <= threshold for overlap in overlaps):
            kept.append(i)
    return kept


def clustered_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Boxes jittered around a few objects, as a detector's raw output looks."""
    objects = np.column_stack([rng.uniform(0, 30, (6, 2)), rng.uniform(3, 4.5, 6),
                               rng.uniform(1.5, 2, 6), rng.uniform(-math.pi, math.pi, 6)])
    picks = objects[rng.integers(0, 6, count)]
    return picks + np.column_stack([rng.normal(0, 0.6, (count, 2)), rng.normal(0, 0.2, (count, 2)),
                                    rng.normal(0, 0.4, count)])


def test_hand_case() -> None:
    # B overlaps A with IoU 1/3 (unit squares offset by 0.5); C is far away.
    boxes = torch.tensor([[0.5, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0, 0.0],
                          [9.0, 9.0, 1.0, 1.0, 0.0]])
    scores = torch.tensor([0.8, 0.9, 0.7])
    assert rotated_nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert rotated_nms(boxes, scores, 0.5).tolist() == [1, 0, 2]
    assert rotated_nms(boxes, scores, 0.5, max_keep=2).tolist() == [1, 0]


@pytest.mark.parametrize("threshold", [0.01, 0.1, 0.5, 0.7])
def test_matches_reference_on_clustered_boxes(threshold: float) -> None:
    rng = np.random.default_rng(int(threshold * 100))
    boxes = clustered_boxes(rng, 120)
    scores = np.round(rng.uniform(0, 1, 120), 1)  # many ties: lower index wins
    expected = reference_nms(boxes, scores, threshold)
    kept = rotated_nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(),
                       threshold)
    assert kept.dtype == torch.long and kept.device == torch.device("cpu")
    assert kept.tolist() == expected
    assert 6 <= len(expected) < 120  # suppression really happened
    np.testing.assert_array_equal(rotated_nms_numpy(boxes, scores, threshold), expected)
    assert rotated_nms_numpy(boxes, scores, threshold, max_keep=4).tolist() == expected[:4]


def test_empty_and_bad_inputs() -> None:
    assert rotated_nms(torch.zeros(0, 5), torch.zeros(0), 0.5).shape == (0,)
    assert rotated_nms(torch.rand(3, 5), torch.rand(3), 0.5, max_keep=0).shape == (0,)
    with pytest.raises(GeometryError, match=r"boxes_bev must have shape \(N, 5\), got \(3, 7\)"):
        rotated_nms(torch.zeros(3, 7), torch.zeros(3), 0.5)
    with pytest.raises(GeometryError, match=r"scores must have shape \(3,\), got \(4,\)"):
        rotated_nms(torch.zeros(3, 5), torch.zeros(4), 0.5)


@pytest.mark.parametrize("threshold", [0.1, 0.5])
def test_each_pair_decision_equals_the_exact_iou(threshold: float) -> None:
    # Two boxes at a time: the weaker survives iff the exact IoU is <= threshold, whichever
    # shortcut (circle, bounding-rectangle bound, inscribed-disk bound, exact IoU) decides.
    rng = np.random.default_rng(11)
    count = 1500
    first = np.column_stack([rng.uniform(-20, 20, (count, 2)), rng.uniform(0.5, 4.5, count),
                             rng.uniform(0.4, 2.0, count), rng.uniform(-math.pi, math.pi, count)])
    second = first + np.column_stack([rng.normal(0, 0.8, (count, 2)),
                                      rng.normal(0, 0.3, (count, 2)),
                                      rng.choice([0.0, 0.02, math.pi / 2, 1.0], count)])
    second[:, 2:4] = np.abs(second[:, 2:4])
    iou = bev_iou_pairs(first, second)
    assert ((iou > threshold - 0.05) & (iou < threshold + 0.05)).sum() > 50  # close calls
    scores = torch.tensor([0.9, 0.8], dtype=torch.float64)
    for a, b, overlap in zip(first, second, iou, strict=True):
        kept = rotated_nms(torch.from_numpy(np.stack([a, b])), scores, threshold).tolist()
        assert kept == ([0] if overlap > threshold else [0, 1]), (a, b, overlap)


def test_groups_only_suppress_within_a_group() -> None:
    boxes = torch.tensor([[0.0, 0.0, 4.0, 2.0, 0.0], [0.2, 0.0, 4.0, 2.0, 0.0],
                          [0.1, 0.1, 4.0, 2.0, 0.1], [9.0, 0.0, 1.0, 1.0, 0.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert rotated_nms(boxes, scores, 0.3).tolist() == [0, 3]
    groups = torch.tensor([0, 1, 0, 1])
    assert rotated_nms(boxes, scores, 0.3, groups=groups).tolist() == [0, 1, 3]
    assert rotated_nms(boxes, scores, 0.3, max_keep=2, groups=groups).tolist() == [0, 1]
    with pytest.raises(GeometryError, match=r"groups must have shape \(4,\), got \(3,\)"):
        rotated_nms(boxes, scores, 0.3, groups=groups[:3])


def test_many_boxes_row_by_row_match_the_reference() -> None:
    # 400 boxes take the row-by-row path (above the one-call size), with groups and a cap.
    rng = np.random.default_rng(5)
    boxes = clustered_boxes(rng, 400)
    scores = rng.uniform(0, 1, 400)
    groups = rng.integers(0, 2, 400)
    expected = sorted(
        [i for g in (0, 1) for i in np.flatnonzero(groups == g)[
            reference_nms(boxes[groups == g], scores[groups == g], 0.2)]],
        key=lambda i: -scores[i])
    kept = rotated_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.2,
                       groups=torch.from_numpy(groups))
    assert kept.tolist() == expected
    capped = rotated_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.2, max_keep=7,
                         groups=torch.from_numpy(groups))
    assert capped.tolist() == expected[:7]
