"""Box corners, edges and point-in-box tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_geometry import points_in_boxes_lidar

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.boxes import (
    BOX_EDGES,
    corners_cam,
    corners_lidar,
)
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar


def test_corners_cam_by_hand() -> None:
    # l = 4, h = 2, w = 2 at the origin, ry = 0: heading +x, left of the heading +z, y down.
    corners = corners_cam(np.array([[0.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.0]]))[0]
    expected_bottom = [[2, 0, 1], [2, 0, -1], [-2, 0, -1], [-2, 0, 1]]
    expected_top = [[2, -2, 1], [2, -2, -1], [-2, -2, -1], [-2, -2, 1]]
    np.testing.assert_allclose(corners, expected_bottom + expected_top, atol=1e-12)
    # ry = pi/2 at (1, 1.5, 10): heading (cos, 0, -sin) = (0, 0, -1); left = R_y (0, 0, 1)
    # = (1, 0, 0). Corner 0 = centre + 2 * heading + 1 * left = (2, 1.5, 8).
    turned = corners_cam(np.array([[1.0, 1.5, 10.0, 4.0, 2.0, 2.0, math.pi / 2]]))[0]
    np.testing.assert_allclose(turned[0], [2.0, 1.5, 8.0], atol=1e-12)
    np.testing.assert_allclose(turned[6], [0.0, -0.5, 12.0], atol=1e-12)


def test_corners_lidar_by_hand() -> None:
    # yaw = pi/2 at (10, 0, 0): heading (0, 1, 0), left (-1, 0, 0); bottom at z = -h/2 = -1.
    corners = corners_lidar(np.array([[10.0, 0.0, 0.0, 4.0, 2.0, 2.0, math.pi / 2]]))[0]
    np.testing.assert_allclose(corners[0], [9.0, 2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(corners[2], [11.0, -2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(corners[5], [11.0, 2.0, 1.0], atol=1e-12)


def test_edges_have_the_box_dimensions() -> None:
    assert len(set(BOX_EDGES)) == 12
    assert all(sum(i in edge for edge in BOX_EDGES) == 3 for i in range(8))
    box = np.array([[0.5, 1.0, 7.0, 4.0, 1.5, 1.7, 0.6]])
    corners = corners_cam(box)[0]
    lengths = sorted(np.linalg.norm(corners[i] - corners[j]) for i, j in BOX_EDGES)
    np.testing.assert_allclose(lengths, [1.5] * 4 + [1.7] * 4 + [4.0] * 4)


def test_camera_and_lidar_corners_match_index_by_index() -> None:
    calib = CameraCalib(P2=np.array([[700.0, 0, 600, 0], [0, 700, 170, 0], [0, 0, 1, 0]]),
                        R0_rect=np.eye(3),
                        T_cam_from_lidar=np.array([[0.0, -1, 0, 0.1], [0, 0, -1, -0.08],
                                                   [1, 0, 0, -0.27]]))
    rng = np.random.default_rng(0)
    boxes = np.column_stack([rng.uniform(-5, 5, (20, 3)), rng.uniform(0.5, 4, (20, 3)),
                             rng.uniform(-4, 4, 20)])
    from_cam = calib.rect_to_lidar(corners_cam(boxes).reshape(-1, 3)).reshape(-1, 8, 3)
    np.testing.assert_allclose(corners_lidar(boxes_cam_to_lidar(boxes, calib)), from_cam,
                               atol=1e-9)


def test_points_in_boxes_against_corner_half_spaces() -> None:
    rng = np.random.default_rng(1)
    boxes = np.column_stack([rng.uniform(-3, 3, (12, 3)), rng.uniform(1, 4, (12, 3)),
                             rng.uniform(-4, 4, 12)])
    points = rng.uniform(-6, 6, (4000, 3))
    inside = points_in_boxes_lidar(points, boxes)
    assert inside.shape == (12, 4000) and inside.dtype == bool
    corners = corners_lidar(boxes)
    for n in range(12):
        # Box axes read off the corners: length 3 -> 0, width 1 -> 0, height 0 -> 4.
        c = corners[n]
        centre = c.mean(axis=0)
        expected = np.ones(4000, dtype=bool)
        for axis in (c[0] - c[3], c[0] - c[1], c[4] - c[0]):
            expected &= np.abs((points - centre) @ axis) <= axis @ axis / 2 + 1e-9
        np.testing.assert_array_equal(inside[n], expected)
    assert inside.any(axis=1).all()  # every box really holds some points


def test_points_in_boxes_edges_and_errors() -> None:
    box = np.array([[0.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.0]])
    points = np.array([[1.99, 0.0, 0.0, 7.0], [2.01, 0.0, 0.0, 7.0], [0.0, 0.0, 1.01, 7.0]])
    np.testing.assert_array_equal(points_in_boxes_lidar(points, box), [[True, False, False]])
    assert points_in_boxes_lidar(np.zeros((0, 3)), box).shape == (1, 0)
    with pytest.raises(GeometryError, match=r"points must have shape \(P, 3\+\), got \(5, 2\)"):
        points_in_boxes_lidar(np.zeros((5, 2)), box)
