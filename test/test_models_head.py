"""Specification of anchors, residual box coding, target assignment and post-processing."""

from __future__ import annotations

import math

import pytest
import torch

from monotakd_ros.models.anchors import anchor_grid
from monotakd_ros.models.box_coder import (
    decode_boxes,
    direction_bins,
    encode_boxes,
    yaw_with_direction,
)
from monotakd_ros.models.config import (
    AnchorClassConfig,
    BevGridConfig,
    HeadConfig,
    PostprocessConfig,
)
from monotakd_ros.models.head import AnchorHead
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.models.postprocess import detections_from_head
from monotakd_ros.models.target_assigner import assign_targets

# 8 x 8 cells of 0.8 m: anchor centres x = 0.4, 1.2, ..., 5.6 and y = -2.8, ..., 2.8
GRID = BevGridConfig(x_range_m=(0.0, 6.4), y_range_m=(-3.2, 3.2), z_range_m=(-3.0, 1.0),
                     cell_m=0.8, height_slices=1)
CAR = AnchorClassConfig("Car", (3.9, 1.6, 1.56), -1.78, 0.6, 0.45)
PED = AnchorClassConfig("Pedestrian", (0.8, 0.6, 1.73), -0.6, 0.5, 0.35)
HEAD = HeadConfig(anchors=(CAR, PED))


def anchor_index(row: int, col: int, cls: int, rot: int, head: HeadConfig = HEAD) -> int:
    """Flat index of an anchor in the documented (ny, nx, class, rotation) order."""
    return ((row * GRID.nx + col) * len(head.anchors) + cls) * len(head.rotations_rad) + rot


def test_anchor_grid_layout() -> None:
    anchors, classes = anchor_grid(GRID, HEAD)
    assert anchors.shape == (8 * 8 * 2 * 2, 7)
    a = anchors[anchor_index(row=4, col=2, cls=0, rot=1)]
    # centre of cell (row 4, col 2), car size, centre z = bottom + h / 2, yaw 90 deg
    torch.testing.assert_close(a, torch.tensor([2.0, 0.4, -1.78 + 0.78, 3.9, 1.6, 1.56,
                                                math.pi / 2]))
    assert classes[anchor_index(3, 5, 1, 0)] == 1 and classes[anchor_index(3, 5, 0, 1)] == 0


def test_head_flattens_in_anchor_order() -> None:
    head = AnchorHead(4, GRID, HEAD)
    bev = torch.zeros(1, 4, GRID.ny, GRID.nx)
    bev[0, 0, 4, 2] = 1.0  # only cell (row 4, col 2) differs
    with torch.no_grad():
        out = head(bev)
        base = head(torch.zeros_like(bev))
    changed = (out.cls_logits - base.cls_logits).abs().sum(dim=-1)[0].nonzero().flatten()
    expected = [anchor_index(4, 2, c, r) for c in range(2) for r in range(2)]
    assert changed.tolist() == expected
    # the prior makes every anchor start at p = 0.01
    assert torch.sigmoid(base.cls_logits).mean().item() == pytest.approx(0.01, rel=1e-3)


def test_box_coder_round_trip_and_known_values() -> None:
    torch.manual_seed(0)
    anchors = torch.tensor([[10.0, 2.0, -1.0, 3.9, 1.6, 1.56, 0.0]]).expand(50, 7)
    boxes = anchors + torch.randn(50, 7) * torch.tensor([1.0, 1.0, 0.3, 0.5, 0.2, 0.2, 1.0])
    torch.testing.assert_close(decode_boxes(encode_boxes(boxes, anchors), anchors), boxes)
    one = encode_boxes(torch.tensor([10.0 + 4.2154, 2.0, -1.0 + 0.78, 7.8, 1.6, 0.78, 0.5]),
                       anchors[0])
    diag = math.hypot(3.9, 1.6)
    expected = [4.2154 / diag, 0.0, 0.5, math.log(2.0), 0.0, math.log(0.5), 0.5]
    torch.testing.assert_close(one, torch.tensor(expected))


def test_direction_bins_and_yaw_resolution() -> None:
    yaws = torch.tensor([0.0, math.pi / 2, math.pi, -math.pi / 2])
    # bin 0 holds yaw in [pi/4, 5pi/4), bin 1 the other half-turn
    assert direction_bins(yaws, math.pi / 4).tolist() == [1, 0, 0, 1]
    torch.manual_seed(0)
    yaw = (torch.rand(100) * 2 - 1) * math.pi
    flipped = yaw + math.pi * torch.randint(-2, 3, (100,))  # regression is ambiguous by pi
    resolved = yaw_with_direction(flipped, direction_bins(yaw, math.pi / 4), math.pi / 4)
    torch.testing.assert_close(torch.sin(resolved), torch.sin(yaw), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cos(resolved), torch.cos(yaw), atol=1e-5, rtol=0)


def _labels_of_row(labels: torch.Tensor, row: int, cls: int, rot: int) -> list[int]:
    return [int(labels[anchor_index(row, col, cls, rot)]) for col in range(GRID.nx)]


def test_assignment_hand_example() -> None:
    """Car GT at x = 2.2 on anchor row y = 0.4; IoUs worked out by hand in the comments."""
    anchors, classes = anchor_grid(GRID, HEAD)
    gt = torch.tensor([[2.2, 0.4, -0.9, 3.9, 1.6, 1.56, 0.1]])
    targets = assign_targets(anchors, classes, [gt], [torch.tensor([0])], HEAD)
    labels = targets.labels[0]
    # x offsets 1.8, 1.0, 0.2, 0.6, 1.4, 2.2, ... → IoU 0.37, 0.59, 0.90, 0.73, 0.47, 0.28, ...
    assert _labels_of_row(labels, 4, 0, 0) == [0, -1, 1, 1, -1, 0, 0, 0]
    assert _labels_of_row(labels, 4, 0, 1) == [0] * 8  # 90-degree anchors: IoU 0.26 at most
    assert _labels_of_row(labels, 3, 0, 0) == [0] * 8  # 0.8 m sideways: IoU <= 0.33
    assert int((labels == 1).sum()) == 2 and int((labels == -1).sum()) == 2
    assert (labels[classes == 1] == 0).all()  # no pedestrian GT: all pedestrian anchors negative
    a = anchor_index(4, 2, 0, 0)
    diag = math.hypot(3.9, 1.6)
    expected = torch.tensor([0.2 / diag, 0.0, 0.1 / 1.56, 0.0, 0.0, 0.0, 0.1])
    torch.testing.assert_close(targets.box_residuals[0, a], expected, atol=1e-5, rtol=0)
    assert int(targets.dir_bins[0, a]) == 1  # yaw 0.1 lies in [-3pi/4, pi/4)


def test_forced_match_ignore_boxes_and_unlabelled_frames() -> None:
    anchors, classes = anchor_grid(GRID, HEAD)
    small_car = torch.tensor([[2.2, 0.4, -1.0, 2.0, 1.0, 1.5, 0.0]])  # best IoU 0.32 < 0.45
    van = torch.tensor([[4.4, -2.0, -1.0, 4.4, 1.8, 2.0, 0.0]])
    boxes = torch.cat([small_car, van])
    gt_classes = torch.tensor([0, -1])
    targets = assign_targets(anchors, classes, [boxes, boxes], [gt_classes, gt_classes], HEAD,
                             has_labels=torch.tensor([True, False]))
    labels = targets.labels[0]
    # the two anchors that contain the small car share its best IoU: both are forced positive
    positives = (labels > 0).nonzero().flatten().tolist()
    assert positives == [anchor_index(4, 2, 0, 0), anchor_index(4, 3, 0, 0)]
    # car anchors on the van (IoU >= 0.45) are ignored instead of negative
    assert int(labels[anchor_index(1, 5, 0, 0)]) == -1
    assert int(labels[anchor_index(1, 1, 0, 0)]) == 0  # far from the van: still negative
    assert (targets.labels[1] == -1).all()  # has_labels False: nothing supervised


def _head_output(num_anchors: int, num_classes: int) -> HeadOutput:
    return HeadOutput(cls_logits=torch.full((1, num_anchors, num_classes), -10.0),
                      box_residuals=torch.zeros(1, num_anchors, 7),
                      dir_logits=torch.zeros(1, num_anchors, 2))


def test_postprocess_thresholds_decodes_and_suppresses_per_class() -> None:
    anchors, _ = anchor_grid(GRID, HEAD)
    out = _head_output(anchors.shape[0], 2)
    best, neighbour = anchor_index(4, 2, 0, 0), anchor_index(4, 3, 0, 0)  # IoU 0.66 (0.8 m)
    ped, faint = anchor_index(4, 3, 1, 0), anchor_index(0, 0, 0, 0)
    out.cls_logits[0, best, 0] = 3.0
    out.cls_logits[0, neighbour, 0] = 2.0
    out.cls_logits[0, ped, 1] = 1.0  # same place as the neighbour, other class: not suppressed
    out.cls_logits[0, faint, 0] = -3.0  # score 0.047 < 0.1
    out.dir_logits[0, :, 1] = 5.0  # direction bin 1 ↔ yaw 0 anchors keep yaw 0 (mod 2 pi)
    cfg = PostprocessConfig(score_threshold=0.1, nms_iou_threshold=0.5)
    (dets,) = detections_from_head(out, anchors, HEAD, cfg)
    assert dets.classes.tolist() == [0, 1]
    torch.testing.assert_close(dets.scores, torch.sigmoid(torch.tensor([3.0, 1.0])))
    torch.testing.assert_close(dets.boxes_lidar[0, :6], anchors[best, :6])
    assert math.cos(float(dets.boxes_lidar[0, 6])) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(dets.boxes_lidar[1, :6], anchors[ped, :6])
    loose = PostprocessConfig(score_threshold=0.1, nms_iou_threshold=0.7, max_detections=2)
    (dets,) = detections_from_head(out, anchors, HEAD, loose)
    assert len(dets) == 2 and dets.scores[0] > dets.scores[1]  # NMS keeps both, cap keeps 2


def test_postprocess_of_an_empty_frame() -> None:
    anchors, _ = anchor_grid(GRID, HEAD)
    (dets,) = detections_from_head(_head_output(anchors.shape[0], 2), anchors, HEAD,
                                   PostprocessConfig())
    assert len(dets) == 0 and dets.boxes_lidar.shape == (0, 7)
