"""KITTI camera boxes -> optical-frame and REP-103 body-frame poses, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monotakd_ros.geometry.coord_frames import T_body_from_optical, quat_to_matrix
from monotakd_ros.ros.output_frames import boxes_in_output_frame, transform_to_matrix

# x = 1 m right, bottom 2 m below the camera, 10 m ahead; l, h, w = 4, 1.5, 2; ry = 0.3 rad
BOX = np.array([[1.0, 2.0, 10.0, 4.0, 1.5, 2.0, 0.3]])


def same_rotation(q_a: np.ndarray, q_b: np.ndarray) -> bool:
    return bool(abs(abs(float(np.dot(q_a, q_b))) - 1.0) < 1e-9)


def test_optical_pose_is_the_label_centre_lifted_by_half_the_height() -> None:
    poses = boxes_in_output_frame(BOX, None)
    np.testing.assert_allclose(poses.center, [[1.0, 1.25, 10.0]])  # y - h/2 (y points down)
    np.testing.assert_allclose(poses.size, [[4.0, 1.5, 2.0]])  # (l, h, w)
    assert same_rotation(poses.quat_xyzw[0], np.array([0.0, math.sin(0.15), 0.0, math.cos(0.15)]))
    # The local x axis is the heading (cos ry, 0, -sin ry) of KITTI's convention.
    heading = quat_to_matrix(poses.quat_xyzw)[0][:, 0]
    np.testing.assert_allclose(heading, [math.cos(0.3), 0.0, -math.sin(0.3)], atol=1e-12)


def test_body_pose_follows_rep103() -> None:
    poses = boxes_in_output_frame(BOX, T_body_from_optical())
    np.testing.assert_allclose(poses.center, [[10.0, -1.0, -1.25]], atol=1e-12)  # (z, -x, h/2-y)
    np.testing.assert_allclose(poses.size, [[4.0, 2.0, 1.5]], atol=1e-12)  # (l, w, h)
    yaw = -0.3 - math.pi / 2
    assert same_rotation(poses.quat_xyzw[0],
                         np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


def test_configured_extrinsic_moves_the_boxes() -> None:
    T = T_body_from_optical()
    T[:3, 3] = [0.3, 0.0, 1.2]  # camera 0.3 m ahead of and 1.2 m above the body origin
    poses = boxes_in_output_frame(BOX, T)
    np.testing.assert_allclose(poses.center, [[10.3, -1.0, -0.05]], atol=1e-12)
    np.testing.assert_allclose(poses.size, [[4.0, 2.0, 1.5]], atol=1e-12)


def test_no_boxes_give_empty_poses() -> None:
    for T in (None, T_body_from_optical()):
        poses = boxes_in_output_frame(np.zeros((0, 7)), T)
        assert len(poses) == 0 and poses.quat_xyzw.shape == (0, 4)


def test_transform_message_to_matrix() -> None:
    from geometry_msgs.msg import Transform

    transform = Transform()
    transform.translation.x, transform.translation.y, transform.translation.z = 1.0, 2.0, 3.0
    half = math.pi / 4  # 90 deg about z
    transform.rotation.z, transform.rotation.w = math.sin(half), math.cos(half)
    T = transform_to_matrix(transform)
    np.testing.assert_allclose(T @ [1.0, 0.0, 0.0, 1.0], [1.0, 3.0, 3.0, 1.0], atol=1e-12)


def test_bad_shapes_are_named() -> None:
    from monotakd_ros.errors import GeometryError

    with pytest.raises(GeometryError, match=r"boxes_cam must have shape \(N, 7\)"):
        boxes_in_output_frame(np.zeros((2, 6)), None)
