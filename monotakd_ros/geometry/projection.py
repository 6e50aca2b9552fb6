"""Projection into the image: points, 2D boxes of 3D boxes, and the LiDAR depth map."""

from __future__ import annotations

import numpy as np

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.boxes import BOX_EDGES, corners_cam
from monotakd_ros.geometry.calib import CameraCalib

_EDGE_START = np.array([start for start, _ in BOX_EDGES])
_EDGE_END = np.array([end for _, end in BOX_EDGES])


def _projection_matrix(P2: np.ndarray) -> np.ndarray:
    """P2 as a validated (3, 4) float64 array."""
    P2 = np.asarray(P2, dtype=np.float64)
    if P2.shape != (3, 4):
        raise GeometryError(f"P2 must have shape (3, 4), got {P2.shape}")
    return P2


def _image_size(image_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) as positive ints."""
    height, width = (int(v) for v in image_hw)
    if height <= 0 or width <= 0:
        raise GeometryError(f"image_hw must be positive (height, width), got {image_hw}")
    return height, width


def project_rect_to_image(points_rect: np.ndarray,
                          P2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) rectified points -> ((N, 2) pixels, (N,) depth_m).

    depth_m is the third homogeneous coordinate, the distance along the optical axis of the
    camera that P2 describes (z_rect + P2[2, 3]; KITTI's P2[2, 3] is about 3 mm).
    """
    P2 = _projection_matrix(P2)
    points_rect = np.asarray(points_rect, dtype=np.float64)
    if points_rect.ndim != 2 or points_rect.shape[1] < 3:
        raise GeometryError(f"points_rect must have shape (N, 3), got {points_rect.shape}")
    uvw = points_rect[:, :3] @ P2[:, :3].T + P2[:, 3]
    depth_m = uvw[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / depth_m[:, None]
    return uv, depth_m


def boxes3d_to_boxes2d(boxes_cam: np.ndarray, P2: np.ndarray, image_hw: tuple[int, int],
                       clip: bool = True, near_z_m: float = 0.1) -> np.ndarray:
    """(N, 7) camera boxes -> (N, 4) [x1, y1, x2, y2] pixel boxes around the projected corners.

    The box is first cut by the plane z = near_z_m: corners in front of it are kept and the
    edges crossing it contribute their intersection point, so a box partly behind the camera
    gets the extent of its visible part. ``clip`` then clamps to [0, W-1] x [0, H-1]. A box
    entirely behind the plane gives [0, 0, 0, 0].
    """
    P2 = _projection_matrix(P2)
    height, width = _image_size(image_hw)
    corners = corners_cam(boxes_cam)  # (N, 8, 3)
    start, end = corners[:, _EDGE_START], corners[:, _EDGE_END]  # (N, 12, 3) each
    start_z, end_z = start[..., 2], end[..., 2]
    crosses = (start_z - near_z_m) * (end_z - near_z_m) < 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crosses, (near_z_m - start_z) / (end_z - start_z), 0.0)
    cut_points = start + t[..., None] * (end - start)
    cut_points[..., 2] = near_z_m  # exact, so rounding cannot put them behind the plane
    candidates = np.concatenate([corners, cut_points], axis=1)  # (N, 20, 3)
    valid = np.concatenate([corners[..., 2] >= near_z_m, crosses], axis=1)  # (N, 20)
    uv, _ = project_rect_to_image(candidates.reshape(-1, 3), P2)
    uv = uv.reshape(len(corners), -1, 2)  # (N, 20, 2)
    low = np.where(valid[..., None], uv, np.inf).min(axis=1)  # (N, 2)
    high = np.where(valid[..., None], uv, -np.inf).max(axis=1)
    boxes2d = np.concatenate([low, high], axis=1)
    if clip:
        boxes2d[:, [0, 2]] = np.clip(boxes2d[:, [0, 2]], 0.0, width - 1.0)
        boxes2d[:, [1, 3]] = np.clip(boxes2d[:, [1, 3]], 0.0, height - 1.0)
    boxes2d[~valid.any(axis=1)] = 0.0
    return boxes2d


def lidar_depth_map(points_lidar: np.ndarray, calib: CameraCalib, image_hw: tuple[int, int],
                    min_depth_m: float = 0.1) -> np.ndarray:
    """(N, 3+) LiDAR points -> (H, W) float32 depth in metres (0 = no return).

    Each point lands on the pixel nearest to its projection (pixel centres at integer
    coordinates); where several land on one pixel the nearest point wins.
    """
    height, width = _image_size(image_hw)
    points_lidar = np.asarray(points_lidar)
    if points_lidar.ndim != 2 or points_lidar.shape[1] < 3:
        raise GeometryError(f"points_lidar must have shape (N, 3+), got {points_lidar.shape}")
    uv, depth_m = project_rect_to_image(calib.lidar_to_rect(points_lidar), calib.P2)
    in_front = depth_m >= min_depth_m
    column = np.floor(uv[in_front, 0] + 0.5)
    row = np.floor(uv[in_front, 1] + 0.5)
    depth_m = depth_m[in_front]
    on_image = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    pixel = row[on_image].astype(np.int64) * width + column[on_image].astype(np.int64)
    nearest = np.full(height * width, np.inf)
    np.minimum.at(nearest, pixel, depth_m[on_image])
    nearest[np.isinf(nearest)] = 0.0
    return nearest.reshape(height, width).astype(np.float32)
