"""Same-frame pairing and the per-pair 2D, BEV and 3D overlaps of the evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monotakd_ros.eval.overlaps import (
    bev_and_3d_iou_pairs,
    dontcare_overlap_per_detection,
    image_iou_pairs,
    image_overlap_of_first,
    same_frame_pairs,
)


def test_same_frame_pairs_lists_each_frame_cartesian_product():
    # a: frame 0 {0, 1}, frame 2 {2}; b: frame 0 {0}, frame 1 {1}, frame 2 {2, 3}
    frame_a = np.array([0, 0, 2])
    frame_b = np.array([0, 1, 2, 2])
    a, b = same_frame_pairs(frame_a, np.arange(3), frame_b, np.arange(4), num_frames=3)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 0), (1, 0), (2, 2), (2, 3)]


def test_same_frame_pairs_of_subsets_and_of_nothing():
    frame = np.array([0, 0, 1, 1])
    a, b = same_frame_pairs(frame, np.array([1, 3]), frame, np.array([0, 2]), num_frames=2)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(1, 0), (3, 2)]
    a, b = same_frame_pairs(frame, np.array([1]), frame, np.zeros(0, np.int64), num_frames=2)
    assert len(a) == len(b) == 0


def test_image_overlaps():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [5.0, 0.0, 100.0, 100.0], [10.0, 0.0, 20.0, 10.0]])
    # 50 shared of 100 + 100 - 50; of 100 + 9500 - 50; touching edges share nothing
    np.testing.assert_allclose(image_iou_pairs(a, b), [50 / 150, 50 / 9550, 0.0])
    np.testing.assert_allclose(image_overlap_of_first(a, b), [0.5, 0.5, 0.0])


def test_vertical_offset_changes_3d_but_not_bev():
    box = np.array([[1.0, 1.6, 20.0, 4.0, 1.5, 1.6, 0.3]])
    lifted = box.copy()
    lifted[0, 1] -= 0.75  # half the height up (y points down)
    bev, iou_3d = bev_and_3d_iou_pairs(box, lifted)
    assert bev[0] == pytest.approx(1.0)
    # 0.75 m of 1.5 m shared: V/2 / (V + V - V/2) = 1/3
    assert iou_3d[0] == pytest.approx(1.0 / 3.0)


def test_bev_overlap_of_boxes_shifted_along_their_length():
    box = np.array([[0.0, 1.6, 20.0, 4.0, 1.5, 1.6, 0.0]])
    moved = box.copy()
    moved[0, 0] += 1.0  # ry = 0: the length runs along camera x
    bev, iou_3d = bev_and_3d_iou_pairs(box, moved)
    assert bev[0] == pytest.approx(3.0 / 5.0)
    assert iou_3d[0] == pytest.approx(3.0 / 5.0)
    turned = box.copy()
    turned[0, 6] = math.pi / 2  # crossed footprints: 1.6 x 1.6 shared of 6.4 + 6.4 - 2.56
    assert bev_and_3d_iou_pairs(box, turned)[0][0] == pytest.approx(2.56 / 10.24)


def test_rotation_about_y_turns_the_length_towards_minus_z():
    # Rotating by ry about the camera's +y axis maps the box's +x (its length) to
    # (cos ry, 0, -sin ry). A thin 4 m rod at ry = 0.5 must cover a pebble 1.5 m out along
    # (cos 0.5, -sin 0.5) on the (x, z) ground, and miss its mirror image along +sin 0.5.
    rod = np.array([[0.0, 1.6, 20.0, 4.0, 1.5, 0.2, 0.5]])
    along = 1.5 * np.array([math.cos(0.5), -math.sin(0.5)])
    pebble = np.array([[along[0], 1.6, 20.0 + along[1], 0.05, 1.5, 0.05, 0.0]])
    mirrored = np.array([[along[0], 1.6, 20.0 - along[1], 0.05, 1.5, 0.05, 0.0]])
    inside, _ = bev_and_3d_iou_pairs(rod, pebble)
    outside, _ = bev_and_3d_iou_pairs(rod, mirrored)
    assert inside[0] == pytest.approx(0.05**2 / (0.8 + 0.05**2 - 0.05**2))
    assert outside[0] == 0.0


def test_yaw_wrap_around_is_the_same_footprint():
    a = np.array([[0.0, 1.6, 20.0, 4.0, 1.5, 1.6, math.pi - 1e-6]])
    b = np.array([[0.0, 1.6, 20.0, 4.0, 1.5, 1.6, -math.pi + 1e-6]])
    bev, iou_3d = bev_and_3d_iou_pairs(a, b)
    assert bev[0] == pytest.approx(1.0, abs=1e-5)
    assert iou_3d[0] == pytest.approx(1.0, abs=1e-5)


def test_dontcare_share_is_the_best_region_in_the_same_frame():
    det_frame = np.array([0, 1, 1])
    det_bbox = np.array([[0.0, 0.0, 10.0, 10.0]] * 3)
    dc_frame = np.array([1, 1])
    dc_bbox = np.array([[0.0, 0.0, 10.0, 3.0], [0.0, 0.0, 8.0, 10.0]])
    share = dontcare_overlap_per_detection(det_frame, det_bbox, dc_frame, dc_bbox, num_frames=2)
    np.testing.assert_allclose(share, [0.0, 0.8, 0.8])  # frame 0 has no DontCare
