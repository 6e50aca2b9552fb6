"""Projection of points, 2D boxes of 3D boxes (near-plane clipping) and LiDAR depth maps."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.boxes import BOX_EDGES, corners_cam
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.projection import (
    boxes3d_to_boxes2d,
    lidar_depth_map,
    project_rect_to_image,
)

P2_SIMPLE = np.array([[100.0, 0.0, 50.0, 6.0], [0.0, 100.0, 40.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
P2_KITTI = np.array([[7.215377e02, 0, 6.095593e02, 4.485728e01],
                     [0, 7.215377e02, 1.728540e02, 2.163791e-01],
                     [0, 0, 1, 2.745884e-03]])


def test_project_by_hand() -> None:
    # (1, 2, 10): u = (100 * 1 + 50 * 10 + 6) / 10 = 60.6, v = (100 * 2 + 40 * 10) / 10 = 60.
    uv, depth_m = project_rect_to_image(np.array([[1.0, 2.0, 10.0], [0.0, 0.0, 4.0]]), P2_SIMPLE)
    np.testing.assert_allclose(uv, [[60.6, 60.0], [51.5, 40.0]])
    np.testing.assert_allclose(depth_m, [10.0, 4.0])
    with pytest.raises(GeometryError, match=r"P2 must have shape \(3, 4\), got \(3, 3\)"):
        project_rect_to_image(np.zeros((1, 3)), np.eye(3))


def test_box_in_front_spans_its_projected_corners() -> None:
    boxes = np.array([[1.0, 1.6, 15.0, 4.0, 1.5, 1.6, 0.4], [-3.0, 1.7, 30.0, 0.8, 1.8, 0.6, -1]])
    uv, _ = project_rect_to_image(corners_cam(boxes).reshape(-1, 3), P2_KITTI)
    uv = uv.reshape(2, 8, 2)
    expected = np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)
    np.testing.assert_allclose(boxes3d_to_boxes2d(boxes, P2_KITTI, (375, 1242)), expected)


def dense_visible_edge_points(box: np.ndarray, near_z_m: float) -> np.ndarray:
    """Points along the 12 edges with z >= near_z_m; the clipped box's vertices lie on them."""
    corners = corners_cam(box[None])[0]
    t = np.linspace(0.0, 1.0, 200_001)[:, None]
    points = np.concatenate([corners[i] + t * (corners[j] - corners[i]) for i, j in BOX_EDGES])
    return points[points[:, 2] >= near_z_m]


def test_box_partly_behind_camera_is_clipped_at_the_near_plane() -> None:
    # A car beside the camera, from 2 m behind to 2 m ahead of it.
    box = np.array([3.0, 1.6, 0.0, 4.0, 1.5, 1.6, np.pi / 2])
    result = boxes3d_to_boxes2d(box[None], P2_SIMPLE, (80, 100), clip=False)[0]
    uv, _ = project_rect_to_image(dense_visible_edge_points(box, 0.1), P2_SIMPLE)
    sampled = np.concatenate([uv.min(axis=0), uv.max(axis=0)])
    # Dense samples approach the exact extent from inside; near z = 0.1 one sample step moves
    # the projection by up to ~1 %.
    np.testing.assert_allclose(result, sampled, rtol=0.01)
    assert result[0] <= sampled[0] and result[2] >= sampled[2]
    clipped = boxes3d_to_boxes2d(box[None], P2_SIMPLE, (80, 100))[0]
    np.testing.assert_allclose(clipped, np.clip(result, 0, [99, 79, 99, 79]))


def test_box_fully_behind_camera_gives_zeros() -> None:
    boxes = np.array([[0.0, 1.6, -10.0, 4.0, 1.5, 1.6, 0.0], [0.0, 1.6, 10.0, 4.0, 1.5, 1.6, 0]])
    result = boxes3d_to_boxes2d(boxes, P2_KITTI, (375, 1242))
    np.testing.assert_array_equal(result[0], [0.0, 0.0, 0.0, 0.0])
    assert result[1, 2] > result[1, 0] > 0


def small_calib() -> CameraCalib:
    """A 40 x 30 pixel camera; LiDAR x = camera z, y = -camera x, z = -camera y."""
    return CameraCalib(P2=np.array([[20.0, 0, 20, 0.5], [0, 20, 15, 0], [0, 0, 1, 0.01]]),
                       R0_rect=np.eye(3),
                       T_cam_from_lidar=np.array([[0.0, -1, 0, 0], [0, 0, -1, -0.1],
                                                  [1, 0, 0, -0.3]]))


def test_depth_map_keeps_the_nearest_point_per_pixel() -> None:
    calib = small_calib()
    rng = np.random.default_rng(0)
    points_rect = np.column_stack([rng.uniform(-3, 3, 6000), rng.uniform(-2, 2, 6000),
                                   rng.uniform(-1, 20, 6000)])
    points_lidar = np.column_stack([calib.rect_to_lidar(points_rect), rng.uniform(0, 1, 6000)])
    depth = lidar_depth_map(points_lidar, calib, (30, 40))
    assert depth.shape == (30, 40) and depth.dtype == np.float32
    # Reference: a plain loop over the points, projected one at a time.
    expected = np.zeros((30, 40))
    for point in points_rect:
        uvw = calib.P2 @ np.append(point, 1.0)
        if uvw[2] < 0.1:
            continue
        col, row = int(np.floor(uvw[0] / uvw[2] + 0.5)), int(np.floor(uvw[1] / uvw[2] + 0.5))
        if 0 <= row < 30 and 0 <= col < 40 and (expected[row, col] == 0
                                                 or uvw[2] < expected[row, col]):
            expected[row, col] = uvw[2]
    np.testing.assert_allclose(depth, expected, rtol=1e-6)
    assert np.count_nonzero(depth) > 300


def test_depth_map_ray_occlusion_and_empty_input() -> None:
    calib = small_calib()
    # Two points on one ray through the principal point, 5 and 10 m deep, and one behind.
    points_rect = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 10.0], [0.0, 0.0, -5.0]])
    depth = lidar_depth_map(calib.rect_to_lidar(points_rect), calib, (30, 40))
    uv, depth_m = project_rect_to_image(points_rect[:1], calib.P2)
    row, col = int(np.floor(uv[0, 1] + 0.5)), int(np.floor(uv[0, 0] + 0.5))
    assert depth[row, col] == pytest.approx(depth_m[0])
    assert np.count_nonzero(depth) == 1
    assert not lidar_depth_map(np.zeros((0, 4)), calib, (30, 40)).any()
    with pytest.raises(GeometryError, match=r"image_hw must be positive .* got \(0, 40\)"):
        lidar_depth_map(points_rect, calib, (0, 40))
