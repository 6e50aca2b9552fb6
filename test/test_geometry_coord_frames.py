"""Box conversions: camera <-> LiDAR, camera -> BEV, camera <-> ROS optical and body frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.boxes import corners_cam, corners_lidar
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import (
    OrientedBoxes,
    T_body_from_optical,
    boxes_cam_to_bev,
    boxes_cam_to_body,
    boxes_cam_to_lidar,
    boxes_cam_to_optical,
    boxes_lidar_to_cam,
    boxes_optical_to_cam,
    matrix_to_quat,
    optical_box_axes_to_body,
    quat_from_yaw_about_axis,
    quat_to_matrix,
    transform_oriented_boxes,
    wrap_angle,
)


def kitti_calib() -> CameraCalib:
    """The real calibration of KITTI object training/calib/000000.txt (design.md section 3)."""
    P2 = [7.215377e02, 0, 6.095593e02, 4.485728e01, 0, 7.215377e02, 1.728540e02, 2.163791e-01,
          0, 0, 1, 2.745884e-03]
    R0 = [9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01, -4.278459e-03,
          7.402527e-03, 4.351614e-03, 9.999631e-01]
    Tr = [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03, 1.480249e-02, 7.280733e-04,
          -9.998902e-01, -7.631618e-02, 9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]
    return CameraCalib(P2=np.reshape(P2, (3, 4)), R0_rect=np.reshape(R0, (3, 3)),
                       T_cam_from_lidar=np.reshape(Tr, (3, 4)))


def axis_aligned_calib() -> CameraCalib:
    """LiDAR x = camera z, LiDAR y = -camera x, LiDAR z = -camera y, offset by t."""
    T = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
    return CameraCalib(P2=np.array([[700.0, 0, 600, 0], [0, 700, 170, 0], [0, 0, 1, 0]]),
                       R0_rect=np.eye(3), T_cam_from_lidar=T)


def random_cam_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.column_stack([rng.uniform(-10, 10, count), rng.uniform(1, 2.5, count),
                            rng.uniform(3, 60, count), rng.uniform(0.5, 5, count),
                            rng.uniform(1, 2, count), rng.uniform(0.5, 2, count),
                            rng.uniform(-math.pi, math.pi, count)])


CAR = np.array([[2.0, 1.5, 20.0, 4.0, 1.5, 1.6, 0.0]])  # x, y, z, l, h, w, ry


def test_wrap_angle_range_and_values() -> None:
    values = np.array([math.pi, -math.pi, 3 * math.pi, 0.5, -0.5 - 4 * math.pi, -1e-20])
    np.testing.assert_allclose(wrap_angle(values), [-math.pi, -math.pi, -math.pi, 0.5, -0.5,
                                                    -1e-20], atol=1e-12)
    wrapped = wrap_angle(np.random.default_rng(0).uniform(-50, 50, 1000))
    assert np.all(wrapped >= -math.pi) and np.all(wrapped < math.pi)
    assert wrap_angle(2 * math.pi + 0.25) == pytest.approx(0.25)
    turned = wrap_angle(torch.tensor([3 * math.pi / 2]))
    assert torch.allclose(turned, torch.tensor([-math.pi / 2]))


def test_cam_to_lidar_axis_aligned_by_hand() -> None:
    # Geometric centre in the camera: (2, 1.5 - 0.75, 20) = (2, 0.75, 20). LiDAR = A^T (p - t)
    # with t = (0, -0.08, -0.27): p - t = (2, 0.83, 20.27) -> (20.27, -2, -0.83).
    # Heading (cos 0, 0, -sin 0) = camera +x = LiDAR -y: yaw = -pi/2 = -ry - pi/2.
    lidar = boxes_cam_to_lidar(CAR, axis_aligned_calib())
    np.testing.assert_allclose(lidar, [[20.27, -2.0, -0.83, 4.0, 1.6, 1.5, -math.pi / 2]],
                               atol=1e-12)
    boxes = random_cam_boxes(np.random.default_rng(1), 50)
    yaw = boxes_cam_to_lidar(boxes, axis_aligned_calib())[:, 6]
    np.testing.assert_allclose(np.cos(yaw - wrap_angle(-boxes[:, 6] - math.pi / 2)), 1.0)


def test_cam_lidar_round_trips_with_real_kitti_calibration() -> None:
    calib = kitti_calib()
    boxes_cam = random_cam_boxes(np.random.default_rng(2), 200)
    boxes_lidar = boxes_cam_to_lidar(boxes_cam, calib)
    np.testing.assert_allclose(boxes_lidar_to_cam(boxes_lidar, calib), boxes_cam, atol=1e-9)
    np.testing.assert_allclose(boxes_cam_to_lidar(boxes_lidar_to_cam(boxes_lidar, calib), calib),
                               boxes_lidar, atol=1e-9)
    # The tilted extrinsic only lets the LiDAR box approximate the camera box: corners agree
    # to within the ~0.015 rad tilt times the box size.
    corners_from_cam = calib.rect_to_lidar(corners_cam(boxes_cam).reshape(-1, 3))
    np.testing.assert_allclose(corners_lidar(boxes_lidar).reshape(-1, 3), corners_from_cam,
                               atol=0.05)


def test_cam_lidar_round_trip_with_an_upside_down_camera() -> None:
    # Camera rolled by pi about its optical axis: camera x = LiDAR y, camera y = LiDAR z (up).
    # Camera boxes still rotate about camera y, which is vertical here, so the round trip is
    # exact, and the recovered heading must not flip by pi.
    T = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    calib = CameraCalib(P2=axis_aligned_calib().P2, R0_rect=np.eye(3), T_cam_from_lidar=T)
    boxes_cam = random_cam_boxes(np.random.default_rng(8), 50)
    boxes_lidar = boxes_cam_to_lidar(boxes_cam, calib)
    np.testing.assert_allclose(boxes_lidar_to_cam(boxes_lidar, calib), boxes_cam, atol=1e-9)
    # Heading (cos ry, 0, -sin ry) in the camera is (-sin ry, cos ry) in the LiDAR x-y plane.
    np.testing.assert_allclose(np.cos(boxes_lidar[:, 6] - boxes_cam[:, 6] - math.pi / 2), 1.0)


def test_cam_to_bev_corners_are_the_xz_of_the_3d_corners() -> None:
    boxes = random_cam_boxes(np.random.default_rng(3), 40)
    bev = boxes_cam_to_bev(boxes)
    np.testing.assert_array_equal(bev[:, [0, 1, 2, 3]], boxes[:, [0, 2, 3, 5]])
    # Corners of [cx, cy, l, w, yaw] in the same local order as corners_cam: (+l, +w), ...
    sign_l = np.array([1, 1, -1, -1])
    sign_w = np.array([1, -1, -1, 1])
    u = sign_l * bev[:, 2:3] / 2
    v = sign_w * bev[:, 3:4] / 2
    c, s = np.cos(bev[:, 4:5]), np.sin(bev[:, 4:5])
    bev_corners = np.stack([bev[:, 0:1] + u * c - v * s, bev[:, 1:2] + u * s + v * c], axis=2)
    np.testing.assert_allclose(bev_corners, corners_cam(boxes)[:, :4][..., [0, 2]], atol=1e-9)
    as_tensor = boxes_cam_to_bev(torch.from_numpy(boxes))
    np.testing.assert_array_equal(as_tensor.numpy(), bev)


def test_cam_to_optical_by_hand() -> None:
    # Centre (x, y - h/2, z) = (2, 0.75, 20); ry = 0 -> identity; size (l, h, w) = (4, 1.5, 1.6).
    optical = boxes_cam_to_optical(CAR)
    np.testing.assert_allclose(optical.center, [[2.0, 0.75, 20.0]])
    np.testing.assert_allclose(optical.quat_xyzw, [[0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(optical.size, [[4.0, 1.5, 1.6]])
    # ry = pi/2: the car faces the camera, heading (cos, 0, -sin) = (0, 0, -1);
    # q = (0, sin(pi/4), 0, cos(pi/4)).
    facing = boxes_cam_to_optical(np.array([[2.0, 1.5, 20.0, 4.0, 1.5, 1.6, math.pi / 2]]))
    half = math.sqrt(0.5)
    np.testing.assert_allclose(facing.quat_xyzw, [[0.0, half, 0.0, half]], atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(facing.quat_xyzw)[0, :, 0], [0, 0, -1], atol=1e-12)


def test_optical_to_cam_accepts_any_rotation_about_y() -> None:
    boxes = random_cam_boxes(np.random.default_rng(4), 30)
    optical = boxes_cam_to_optical(boxes)
    np.testing.assert_allclose(boxes_optical_to_cam(optical), boxes, atol=1e-9)
    # -q, a non-unit norm and an angle beyond pi all describe the same boxes.
    flipped = OrientedBoxes(optical.center, -3.0 * optical.quat_xyzw, optical.size)
    np.testing.assert_allclose(boxes_optical_to_cam(flipped), boxes, atol=1e-9)
    turned = boxes_cam_to_optical(np.array([[0.0, 1.0, 10.0, 4.0, 1.5, 1.6, 3.5]]))
    assert boxes_optical_to_cam(turned)[0, 6] == pytest.approx(3.5 - 2 * math.pi)


def test_optical_to_cam_rejects_tilted_orientations() -> None:
    optical = boxes_cam_to_optical(CAR)
    slightly = quat_from_yaw_about_axis(0.01, np.array([1.0, 0.0, 0.0]))
    nearly = boxes_optical_to_cam(OrientedBoxes(optical.center, slightly, optical.size))
    np.testing.assert_allclose(nearly, CAR, atol=1e-9)
    tilted = quat_from_yaw_about_axis(0.3, np.array([0.0, 0.0, 1.0]))
    with pytest.raises(GeometryError, match=r"box 0: .* not a rotation about the optical y axis "
                                            r"\(tilt 17\.19 deg > 2\.86 deg\)"):
        boxes_optical_to_cam(OrientedBoxes(optical.center, tilted, optical.size))
    with pytest.raises(GeometryError, match=r"quat_xyzw\[0\] is not a usable quaternion"):
        boxes_optical_to_cam(OrientedBoxes(optical.center, np.zeros((1, 4)), optical.size))


def test_cam_to_body_by_hand() -> None:
    # Centre (z, -x, h/2 - y) = (20, -2, 0.75 - 1.5) = (20, -2, -0.75): the box centre is 0.75 m
    # below the camera (its bottom 1.5 m below). yaw = -0 - pi/2: the car points along camera +x,
    # i.e. to the right = body -y. q about z by -pi/2 = (0, 0, -sin(pi/4), cos(pi/4)).
    body = boxes_cam_to_body(CAR)
    half = math.sqrt(0.5)
    np.testing.assert_allclose(body.center, [[20.0, -2.0, -0.75]])
    np.testing.assert_allclose(body.quat_xyzw, [[0.0, 0.0, -half, half]], atol=1e-12)
    np.testing.assert_allclose(body.size, [[4.0, 1.6, 1.5]])
    np.testing.assert_allclose(quat_to_matrix(body.quat_xyzw)[0, :, 0], [0, -1, 0], atol=1e-12)


def test_optical_boxes_transformed_by_rep103_equal_body_boxes() -> None:
    boxes = random_cam_boxes(np.random.default_rng(5), 25)
    via_tf = transform_oriented_boxes(optical_box_axes_to_body(boxes_cam_to_optical(boxes)),
                                      T_body_from_optical())
    direct = boxes_cam_to_body(boxes)
    np.testing.assert_allclose(via_tf.center, direct.center, atol=1e-12)
    np.testing.assert_allclose(via_tf.size, direct.size)
    np.testing.assert_allclose(quat_to_matrix(via_tf.quat_xyzw), quat_to_matrix(direct.quat_xyzw),
                               atol=1e-12)


def oriented_corners(boxes: OrientedBoxes) -> np.ndarray:
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    local = signs[None] * boxes.size[:, None, :] / 2  # (N, 8, 3)
    return boxes.center[:, None] + np.einsum("nij,nkj->nki", quat_to_matrix(boxes.quat_xyzw),
                                             local)


def test_transform_moves_the_physical_box() -> None:
    boxes = boxes_cam_to_optical(random_cam_boxes(np.random.default_rng(6), 10))
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quat_from_yaw_about_axis(0.4, np.array([1.0, 2.0, 2.0])))[0]
    T[:3, 3] = [1.0, -2.0, 0.5]
    moved = transform_oriented_boxes(boxes, T)
    expected = oriented_corners(boxes) @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(oriented_corners(moved), expected, atol=1e-9)
    with pytest.raises(GeometryError, match="T_target_from_source rotation is not a proper"):
        transform_oriented_boxes(boxes, np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(GeometryError, match=r"must be a finite 4x4 matrix, got shape \(3, 4\)"):
        transform_oriented_boxes(boxes, np.eye(4)[:3])


def test_quaternion_helpers() -> None:
    rng = np.random.default_rng(7)
    quats = rng.normal(size=(500, 4))
    # Include rotations by ~pi about each axis, where the trace is near -1.
    quats[:3] = [[1, 0, 0, 1e-9], [0, 1, 0, 0], [0, 0, 1, -1e-7]]
    R = quat_to_matrix(quats)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(R)), R, atol=1e-12)
    unit = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    back = matrix_to_quat(R)
    np.testing.assert_allclose(np.abs(np.sum(back * unit, axis=1)), 1.0, atol=1e-12)
    assert np.all(back[:, 3] >= 0)
    # Rodrigues: R = I + sin(a) K + (1 - cos(a)) K^2 for a unit axis k.
    axis, angle = np.array([0.0, 3.0, 4.0]) / 5.0, 1.1
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rodrigues = np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K
    np.testing.assert_allclose(quat_to_matrix(quat_from_yaw_about_axis(angle, axis * 5))[0],
                               rodrigues, atol=1e-12)
    with pytest.raises(GeometryError, match="rotation axis must be non-zero"):
        quat_from_yaw_about_axis(1.0, np.zeros(3))


def test_bad_shapes_raise() -> None:
    with pytest.raises(GeometryError, match=r"boxes_cam must have shape \(N, 7\), got \(2, 6\)"):
        boxes_cam_to_lidar(np.zeros((2, 6)), kitti_calib())
    with pytest.raises(GeometryError, match="fields disagree in length: center 2, quat_xyzw 1"):
        OrientedBoxes(np.zeros((2, 3)), np.zeros((1, 4)), np.zeros((2, 3)))
