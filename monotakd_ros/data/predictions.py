"""Conversions between KITTI labels (camera frame) and the detector's LiDAR-frame boxes.

Ground truth -> training targets: ``kitti_labels_to_lidar_targets``. Detections -> KITTI
result labels (for the evaluator and for writing ``label_2``-style files):
``detections_to_kitti_labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar, boxes_lidar_to_cam
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d
from monotakd_ros.geometry.rotations import wrap_angle

IGNORE_CLASS = -1  # anchors matched to these boxes are neither positive nor negative
# Neighbouring classes look like a trained class; they are ignored rather than background.
NEIGHBOUR_CLASSES = {"Van": "Car", "Person_sitting": "Pedestrian"}
DONT_CARE = "DontCare"
_DROPPED = -2  # internal: classes that are plain background (Truck, Tram, Misc, ...)
UNKNOWN_OCCLUSION = -1  # what KITTI result files conventionally carry for detections


class LidarTargets(NamedTuple):
    """Training targets of one frame in the LiDAR frame."""

    boxes_lidar: np.ndarray  # (M, 7) float32 [x, y, z, l, w, h, yaw], geometric centre
    classes: np.ndarray  # (M,) int64 index into class_names, IGNORE_CLASS = ignore


def class_indices(names: Sequence[str] | np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """(N,) int64: index in ``class_names``, -1 for DontCare/neighbours, -2 for background."""
    lookup = {name: index for index, name in enumerate(class_names)}
    for neighbour, trained in NEIGHBOUR_CLASSES.items():
        if trained in lookup and neighbour not in lookup:
            lookup[neighbour] = IGNORE_CLASS
    lookup.setdefault(DONT_CARE, IGNORE_CLASS)
    return np.array([lookup.get(str(name), _DROPPED) for name in names], dtype=np.int64)


def boxes_inside_range(boxes_lidar: np.ndarray, point_range: Sequence[float]) -> np.ndarray:
    """(M,) bool: box centre inside the BEV extent (x, y) of ``point_range``.

    Height is not checked: a box centred in the grid is a target even if it pokes above z_max.
    """
    x_min, y_min, _, x_max, y_max, _ = point_range
    x, y = boxes_lidar[:, 0], boxes_lidar[:, 1]
    return (x >= x_min) & (x < x_max) & (y >= y_min) & (y < y_max)


def kitti_labels_to_lidar_targets(labels: KittiLabels, calib: CameraCalib,
                                  class_names: Sequence[str],
                                  point_range: Sequence[float] | None) -> LidarTargets:
    """LiDAR boxes and class indices of the objects a detector of ``class_names`` learns from.

    Car/Pedestrian/Cyclist (as listed) keep their index, Van/Person_sitting/DontCare become -1,
    other classes are dropped. Boxes without a valid 3D extent (KITTI's DontCare regions sit at
    -1000 m with size -1) and, when ``point_range`` is given, centres outside it are dropped.
    """
    classes = class_indices(labels.names, class_names)
    has_extent = np.all(labels.boxes_cam[:, 3:6] > 0.0, axis=1)
    keep = (classes != _DROPPED) & has_extent
    boxes_lidar = boxes_cam_to_lidar(labels.boxes_cam[keep], calib)
    classes = classes[keep]
    if point_range is not None:
        inside = boxes_inside_range(boxes_lidar, point_range)
        boxes_lidar, classes = boxes_lidar[inside], classes[inside]
    return LidarTargets(boxes_lidar.astype(np.float32), classes)


def observation_angle(boxes_cam: np.ndarray) -> np.ndarray:
    """(N,) KITTI alpha: ry minus the azimuth of the ray to the box, wrapped to [-pi, pi).

    alpha = ry - atan2(x, z) with (x, z) the box location in the rectified camera frame, so a
    car straight ahead (x = 0) has alpha = ry; matches the alpha column of KITTI's label_2 files.
    """
    return wrap_angle(boxes_cam[:, 6] - np.arctan2(boxes_cam[:, 0], boxes_cam[:, 2]))


def detections_to_kitti_labels(boxes_lidar: Any, scores: Any, classes: Any, calib: CameraCalib,
                               image_hw: tuple[int, int],
                               class_names: Sequence[str]) -> KittiLabels:
    """(K, 7) LiDAR boxes, (K,) scores and class indices -> KITTI result labels (K objects).

    2D boxes are the projected 3D boxes clipped to the image; ``truncated`` is the fraction of
    the unclipped 2D box outside the image and ``occluded`` is -1 (unknown).
    """
    boxes_lidar = _as_numpy(boxes_lidar, np.float64).reshape(-1, 7)
    scores = _as_numpy(scores, np.float64).reshape(-1)
    classes = _as_numpy(classes, np.int64).reshape(-1)
    if not len(boxes_lidar) == len(scores) == len(classes):
        raise ConfigError(f"detections disagree in length: {len(boxes_lidar)} boxes, "
                          f"{len(scores)} scores, {len(classes)} classes")
    outside = (classes < 0) | (classes >= len(class_names))
    if np.any(outside):
        raise ConfigError(f"class index {int(classes[outside][0])} is outside class_names "
                          f"{list(class_names)}")
    boxes_cam = boxes_lidar_to_cam(boxes_lidar, calib)
    if len(boxes_cam) == 0:
        return KittiLabels(score=np.zeros(0))
    bbox = boxes3d_to_boxes2d(boxes_cam, calib.P2, image_hw, clip=True)
    bbox_unclipped = boxes3d_to_boxes2d(boxes_cam, calib.P2, image_hw, clip=False)
    return KittiLabels(
        names=np.array([class_names[c] for c in classes], dtype="<U16"),
        truncated=_fraction_outside(bbox, bbox_unclipped),
        occluded=np.full(len(classes), UNKNOWN_OCCLUSION, dtype=np.int64),
        alpha=observation_angle(boxes_cam),
        bbox=bbox,
        boxes_cam=boxes_cam,
        score=scores,
    )


def _fraction_outside(bbox: np.ndarray, bbox_unclipped: np.ndarray) -> np.ndarray:
    """(N,) 1 - area(clipped) / area(unclipped); 1 where the box has no visible area."""
    def area(boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(
            boxes[:, 3] - boxes[:, 1], 0.0, None)

    full = area(bbox_unclipped)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.where(full > 0.0, area(bbox) / full, 0.0)
    return np.clip(1.0 - inside, 0.0, 1.0)


def _as_numpy(values: Any, dtype: type) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)
