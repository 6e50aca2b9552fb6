"""Box conversions between the KITTI camera, the LiDAR, the BEV plane and ROS frames.

Camera boxes are ``(N, 7) [x, y, z, l, h, w, ry]`` in the rectified camera (x right, y down,
z forward) with (x, y, z) the bottom centre. LiDAR boxes are ``(N, 7) [x, y, z, l, w, h, yaw]``
(x forward, y left, z up) with (x, y, z) the geometric centre. A box's heading (its length
axis) is ``(cos ry, 0, -sin ry)`` in the camera and ``(cos yaw, sin yaw, 0)`` in the LiDAR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.rotations import (
    matrix_to_quat,
    quat_from_yaw_about_axis,
    quat_to_matrix,
    wrap_angle,
)

__all__ = [
    "OrientedBoxes", "T_body_from_optical", "boxes_cam_to_bev", "boxes_cam_to_body",
    "boxes_cam_to_lidar", "boxes_cam_to_optical", "boxes_lidar_to_bev", "boxes_lidar_to_cam",
    "boxes_optical_to_cam", "matrix_to_quat", "optical_box_axes_to_body",
    "quat_from_yaw_about_axis", "quat_to_matrix", "transform_oriented_boxes", "wrap_angle",
]

_AXIS_Y = np.array([0.0, 1.0, 0.0])
_AXIS_Z = np.array([0.0, 0.0, 1.0])


def box_array(boxes: Any, name: str, columns: int = 7) -> np.ndarray:
    """Boxes as a float64 (N, columns) array, or GeometryError naming the argument."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise GeometryError(f"{name} must have shape (N, {columns}), got {array.shape}")
    return array


@dataclass
class OrientedBoxes:
    """Boxes as poses: centre (N, 3), orientation (N, 4) [x, y, z, w], size (N, 3) along local xyz.

    This is what a vision_msgs ``BoundingBox3D`` holds: ``size`` is measured along the box's own
    axes, so the same physical box can be described with different local axes.
    """

    center: np.ndarray
    quat_xyzw: np.ndarray
    size: np.ndarray

    def __post_init__(self) -> None:
        self.center = box_array(self.center, "OrientedBoxes.center", 3)
        self.quat_xyzw = box_array(self.quat_xyzw, "OrientedBoxes.quat_xyzw", 4)
        self.size = box_array(self.size, "OrientedBoxes.size", 3)
        if not len(self.center) == len(self.quat_xyzw) == len(self.size):
            raise GeometryError(
                "OrientedBoxes fields disagree in length: center "
                f"{len(self.center)}, quat_xyzw {len(self.quat_xyzw)}, size {len(self.size)}")

    def __len__(self) -> int:
        return len(self.center)


def _heading_cam(ry: np.ndarray) -> np.ndarray:
    """(N,) rotation_y -> (N, 3) unit heading vectors in the camera frame."""
    return np.stack([np.cos(ry), np.zeros_like(ry), -np.sin(ry)], axis=1)


def boxes_cam_to_lidar(boxes_cam: np.ndarray, calib: CameraCalib) -> np.ndarray:
    """(N, 7) camera boxes -> (N, 7) LiDAR boxes, the heading carried through the extrinsic.

    yaw is the direction of the transformed heading projected onto the LiDAR x-y plane. For an
    axis-aligned extrinsic this is exactly ``-ry - pi/2``; for KITTI's slightly tilted one it is
    the best a box that rotates about LiDAR z alone can do.
    """
    boxes_cam = box_array(boxes_cam, "boxes_cam")
    x, y, z, length, height, width, ry = boxes_cam.T
    center_rect = np.stack([x, y - height / 2.0, z], axis=1)  # y points down
    center_lidar = calib.rect_to_lidar(center_rect)
    A_lidar_from_rect = np.linalg.inv(calib.T_rect_from_lidar[:3, :3])
    heading_lidar = _heading_cam(ry) @ A_lidar_from_rect.T  # (N, 3)
    yaw = np.arctan2(heading_lidar[:, 1], heading_lidar[:, 0])
    return np.column_stack([center_lidar, length, width, height, wrap_angle(yaw)])


def boxes_lidar_to_cam(boxes_lidar: np.ndarray, calib: CameraCalib) -> np.ndarray:
    """(N, 7) LiDAR boxes -> (N, 7) camera boxes; the exact inverse of ``boxes_cam_to_lidar``."""
    boxes_lidar = box_array(boxes_lidar, "boxes_lidar")
    x, y, z, length, width, height, yaw = boxes_lidar.T
    center_rect = calib.lidar_to_rect(np.stack([x, y, z], axis=1))
    A_rect_from_lidar = calib.T_rect_from_lidar[:3, :3]
    direction_lidar = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], axis=1)
    # The camera heading lies in the x-z plane and, seen from the LiDAR, in the vertical plane
    # spanned by the yaw direction and LiDAR z: the intersection line of those two planes.
    normal_rect = np.cross(direction_lidar @ A_rect_from_lidar.T, A_rect_from_lidar @ _AXIS_Z)
    heading_rect = np.cross(normal_rect, _AXIS_Y)  # (N, 3), zero y component
    heading_back = heading_rect @ np.linalg.inv(A_rect_from_lidar).T
    forward = np.sum(heading_back[:, :2] * direction_lidar[:, :2], axis=1) >= 0.0
    heading_rect = np.where(forward[:, None], heading_rect, -heading_rect)
    ry = np.arctan2(-heading_rect[:, 2], heading_rect[:, 0])
    bottom_y = center_rect[:, 1] + height / 2.0
    return np.column_stack([center_rect[:, 0], bottom_y, center_rect[:, 2],
                            length, height, width, wrap_angle(ry)])


def boxes_cam_to_bev(boxes_cam: Any) -> Any:
    """(N, 7) camera boxes -> (N, 5) BEV boxes ``[x, z, l, w, -ry]`` (numpy or torch).

    The plane's axes are camera x and camera z. x cross z = -y points up, so seen from above this
    is a right-handed plane whose positive angles turn about "up", i.e. about -y: a rotation by
    ry about +y is a rotation by -ry here. With this mapping the BEV corners are exactly the
    (x, z) of the 3D corners, so any rotated IoU on it is the true ground-plane overlap.
    """
    bev = boxes_cam[:, [0, 2, 3, 5, 6]]  # fancy indexing copies, for numpy and torch alike
    bev[:, 4] = -bev[:, 4]
    return bev


def boxes_lidar_to_bev(boxes_lidar: Any) -> Any:
    """(N, 7) LiDAR boxes -> (N, 5) BEV boxes ``[x, y, l, w, yaw]`` (numpy or torch)."""
    return boxes_lidar[:, [0, 1, 3, 4, 6]]


def boxes_cam_to_optical(boxes_cam: np.ndarray) -> OrientedBoxes:
    """(N, 7) camera boxes -> poses in the REP-103 optical frame (the same axes as the camera).

    centre = (x, y - h/2, z), orientation = rotation of ry about +y, size = (l, h, w).
    """
    boxes_cam = box_array(boxes_cam, "boxes_cam")
    x, y, z, length, height, width, ry = boxes_cam.T
    return OrientedBoxes(center=np.stack([x, y - height / 2.0, z], axis=1),
                         quat_xyzw=quat_from_yaw_about_axis(ry, _AXIS_Y),
                         size=np.stack([length, height, width], axis=1))


def boxes_optical_to_cam(boxes: OrientedBoxes, max_tilt_rad: float = 0.05) -> np.ndarray:
    """Optical-frame poses (local axes as in ``boxes_cam_to_optical``) -> (N, 7) camera boxes.

    The orientation must be a rotation about y: q and -q, any angle and non-unit norms are
    accepted, and a tilt up to ``max_tilt_rad`` (float noise, a slightly tilted estimator) is
    dropped by projecting the heading onto the x-z plane. A larger tilt raises GeometryError.
    """
    R = quat_to_matrix(boxes.quat_xyzw)  # (N, 3, 3); column 1 is the box's "down" axis
    tilt_rad = np.arccos(np.clip(R[:, 1, 1], -1.0, 1.0))
    if np.any(tilt_rad > max_tilt_rad):
        index = int(np.argmax(tilt_rad))
        raise GeometryError(
            f"box {index}: orientation {boxes.quat_xyzw[index].tolist()} is not a rotation about "
            f"the optical y axis (tilt {math.degrees(tilt_rad[index]):.2f} deg > "
            f"{math.degrees(max_tilt_rad):.2f} deg)")
    ry = np.arctan2(-R[:, 2, 0], R[:, 0, 0])
    length, height, width = boxes.size.T
    x, y, z = boxes.center.T
    return np.column_stack([x, y + height / 2.0, z, length, height, width, wrap_angle(ry)])


def T_body_from_optical() -> np.ndarray:
    """4x4 REP-103 rotation from an optical frame (x right, y down, z fwd) to its body frame."""
    T = np.eye(4)
    T[:3, :3] = [[0.0, 0.0, 1.0],   # body x (forward) = optical z
                 [-1.0, 0.0, 0.0],  # body y (left) = -optical x
                 [0.0, -1.0, 0.0]]  # body z (up) = -optical y
    return T


def boxes_cam_to_body(boxes_cam: np.ndarray) -> OrientedBoxes:
    """(N, 7) camera boxes -> poses in the body frame of a level camera (x fwd, y left, z up).

    centre = (z, -x, h/2 - y), yaw = -ry - pi/2 about +z, size = (l, w, h).
    """
    boxes_cam = box_array(boxes_cam, "boxes_cam")
    x, y, z, length, height, width, ry = boxes_cam.T
    yaw = wrap_angle(-ry - math.pi / 2.0)
    return OrientedBoxes(center=np.stack([z, -x, height / 2.0 - y], axis=1),
                         quat_xyzw=quat_from_yaw_about_axis(yaw, _AXIS_Z),
                         size=np.stack([length, width, height], axis=1))


def optical_box_axes_to_body(boxes: OrientedBoxes) -> OrientedBoxes:
    """The same physical boxes, re-described with body-style local axes (x fwd, y left, z up).

    Optical-style boxes have local axes (heading, down, heading x down) and size (l, h, w);
    body-style ones have (heading, left, up) and size (l, w, h). Applying this before
    ``transform_oriented_boxes(..., T_body_from_optical())`` gives ``boxes_cam_to_body``.
    """
    # Columns: the body-style local axes written in the optical-style local axes.
    M_optical_local_from_body_local = np.array([[1.0, 0.0, 0.0],
                                                [0.0, 0.0, -1.0],
                                                [0.0, 1.0, 0.0]])
    R = quat_to_matrix(boxes.quat_xyzw) @ M_optical_local_from_body_local
    return OrientedBoxes(center=boxes.center.copy(), quat_xyzw=matrix_to_quat(R),
                         size=boxes.size[:, [0, 2, 1]])


def rigid_transform(T: np.ndarray, name: str) -> np.ndarray:
    """A validated 4x4 rigid transform (rotation within 1e-3 of orthonormal, det +1)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise GeometryError(f"{name} must be a finite 4x4 matrix, got shape {T.shape}")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
        raise GeometryError(f"{name} last row must be [0, 0, 0, 1], got {T[3].tolist()}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0.0:
        raise GeometryError(f"{name} rotation is not a proper rotation: {R.tolist()}")
    return T


def transform_oriented_boxes(boxes: OrientedBoxes,
                             T_target_from_source: np.ndarray) -> OrientedBoxes:
    """Poses re-expressed in a target frame; local axes and sizes travel with the boxes."""
    T = rigid_transform(T_target_from_source, "T_target_from_source")
    center = boxes.center @ T[:3, :3].T + T[:3, 3]
    R = T[:3, :3][None] @ quat_to_matrix(boxes.quat_xyzw)  # (N, 3, 3)
    return OrientedBoxes(center=center, quat_xyzw=matrix_to_quat(R), size=boxes.size.copy())
