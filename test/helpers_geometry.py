"""Geometry used only by tests: points inside LiDAR boxes, LiDAR-box 3D IoU, numpy NMS."""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.coord_frames import box_array, boxes_lidar_to_bev
from monotakd_ros.geometry.iou import bev_iou_matrix
from monotakd_ros.geometry.nms import rotated_nms


def points_in_boxes_lidar(points: np.ndarray, boxes_lidar: np.ndarray) -> np.ndarray:
    """(P, 3+) LiDAR points and (N, 7) LiDAR boxes -> (N, P) bool, True where inside (or on)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 3:
        raise GeometryError(f"points must have shape (P, 3+), got {points.shape}")
    boxes_lidar = box_array(boxes_lidar, "boxes_lidar")
    offset = points[None, :, :3] - boxes_lidar[:, None, :3]  # (N, P, 3)
    cos_yaw, sin_yaw = np.cos(boxes_lidar[:, 6:7]), np.sin(boxes_lidar[:, 6:7])  # (N, 1)
    along = offset[..., 0] * cos_yaw + offset[..., 1] * sin_yaw
    across = -offset[..., 0] * sin_yaw + offset[..., 1] * cos_yaw
    return ((np.abs(along) <= boxes_lidar[:, 3:4] / 2.0)
            & (np.abs(across) <= boxes_lidar[:, 4:5] / 2.0)
            & (np.abs(offset[..., 2]) <= boxes_lidar[:, 5:6] / 2.0))


def iou3d_matrix_lidar(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 7) and (M, 7) LiDAR boxes [x, y, z, l, w, h, yaw] -> (N, M) 3D IoU.

    The footprint intersection comes back from the BEV IoU: I = IoU (A + B) / (1 + IoU).
    """
    a, b = box_array(a, "a"), box_array(b, "b")
    iou_bev = bev_iou_matrix(boxes_lidar_to_bev(a), boxes_lidar_to_bev(b))
    area_a, area_b = a[:, 3] * a[:, 4], b[:, 3] * b[:, 4]
    footprint = iou_bev * (area_a[:, None] + area_b[None, :]) / (1.0 + iou_bev)
    overlap = (np.minimum(a[:, None, 2] + a[:, None, 5] / 2, b[None, :, 2] + b[None, :, 5] / 2)
               - np.maximum(a[:, None, 2] - a[:, None, 5] / 2,
                            b[None, :, 2] - b[None, :, 5] / 2)).clip(0.0, None)
    shared = footprint * overlap
    volume_a, volume_b = area_a * a[:, 5], area_b * b[:, 5]
    return shared / (volume_a[:, None] + volume_b[None, :] - shared)


def rotated_nms_numpy(boxes_bev: np.ndarray, scores: np.ndarray, iou_threshold: float,
                      max_keep: int | None = None) -> np.ndarray:
    """``rotated_nms`` on numpy arrays: (K,) int64 indices of the kept boxes."""
    kept = rotated_nms(torch.from_numpy(np.asarray(boxes_bev, dtype=np.float64)),
                       torch.from_numpy(np.asarray(scores, dtype=np.float64)),
                       iou_threshold, max_keep)
    return kept.numpy()
