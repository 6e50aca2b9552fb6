"""Box corners and point-in-box tests.

Corner order, shared by camera and LiDAR boxes (local axes: +l = heading, +w = left of the
heading, seen from above):

    0 (+l, +w) bottom    4 (+l, +w) top
    1 (+l, -w) bottom    5 (+l, -w) top
    2 (-l, -w) bottom    6 (-l, -w) top
    3 (-l, +w) bottom    7 (-l, +w) top

Corners 0-3 go round the bottom face, 4-7 round the top face in the same order, and the front
face (the heading side) is 0, 1, 5, 4. ``BOX_EDGES`` lists the 12 edges as index pairs.
"""

from __future__ import annotations

import numpy as np

from monotakd_ros.geometry.coord_frames import box_array

BOX_EDGES: list[tuple[int, int]] = [
    (0, 1), (1, 2), (2, 3), (3, 0),  # bottom face
    (4, 5), (5, 6), (6, 7), (7, 4),  # top face
    (0, 4), (1, 5), (2, 6), (3, 7),  # vertical edges
]

_SIGN_LENGTH = np.array([1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
_SIGN_LEFT = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
_IS_TOP = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])


def corners_cam(boxes_cam: np.ndarray) -> np.ndarray:
    """(N, 7) camera boxes -> (N, 8, 3) corners in the rectified camera frame."""
    boxes_cam = box_array(boxes_cam, "boxes_cam")
    x, y, z, length, height, width, ry = (col[:, None] for col in boxes_cam.T)  # each (N, 1)
    # Local frame: x along the heading, y down, z = x cross y, which is left of the heading.
    local_x = 0.5 * length * _SIGN_LENGTH
    local_y = -height * _IS_TOP  # the label's y is the bottom; y points down
    local_z = 0.5 * width * _SIGN_LEFT
    cos_ry, sin_ry = np.cos(ry), np.sin(ry)
    # Rotation by ry about +y: x' = x cos + z sin, z' = -x sin + z cos.
    cam_x = x + local_x * cos_ry + local_z * sin_ry
    cam_z = z - local_x * sin_ry + local_z * cos_ry
    cam_y = np.broadcast_to(y + local_y, cam_x.shape)
    return np.stack([cam_x, cam_y, cam_z], axis=2)


def corners_lidar(boxes_lidar: np.ndarray) -> np.ndarray:
    """(N, 7) LiDAR boxes -> (N, 8, 3) corners in the LiDAR frame."""
    boxes_lidar = box_array(boxes_lidar, "boxes_lidar")
    x, y, z, length, width, height, yaw = (col[:, None] for col in boxes_lidar.T)  # (N, 1)
    local_x = 0.5 * length * _SIGN_LENGTH
    local_y = 0.5 * width * _SIGN_LEFT
    local_z = height * (_IS_TOP - 0.5)
    cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
    lidar_x = x + local_x * cos_yaw - local_y * sin_yaw
    lidar_y = y + local_x * sin_yaw + local_y * cos_yaw
    lidar_z = np.broadcast_to(z + local_z, lidar_x.shape)
    return np.stack([lidar_x, lidar_y, lidar_z], axis=2)
