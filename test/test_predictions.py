"""KITTI labels <-> LiDAR boxes: class mapping, range filter, alpha, 2D boxes and truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.predictions import (
    class_indices,
    detections_to_kitti_labels,
    kitti_labels_to_lidar_targets,
    observation_angle,
)
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW, kitti_camera_calib
from monotakd_ros.errors import ConfigError

CALIB = kitti_camera_calib()
CLASSES = ("Car", "Pedestrian", "Cyclist")
POINT_RANGE = (2.0, -30.08, -3.0, 46.8, 30.08, 1.0)


def labels_of(rows: list[tuple[str, list[float]]]) -> KittiLabels:
    n = len(rows)
    return KittiLabels(names=np.array([name for name, _ in rows]), truncated=np.zeros(n),
                       occluded=np.zeros(n, np.int64), alpha=np.zeros(n),
                       bbox=np.zeros((n, 4)), boxes_cam=np.array([box for _, box in rows]))


def corners_lidar(box: np.ndarray) -> np.ndarray:
    x, y, z, length, width, height, yaw = box
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    local = signs * np.array([length, width, height]) / 2
    rotation = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                         [0, 0, 1]])
    return local @ rotation.T + np.array([x, y, z])


def projected_extent(box_lidar: np.ndarray) -> np.ndarray:
    corners = corners_lidar(box_lidar)
    uvw = (CALIB.P2 @ CALIB.T_rect_from_lidar @ np.column_stack([corners, np.ones(8)]).T).T
    uv = uvw[:, :2] / uvw[:, 2:]
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def projected_extent_cam(box_cam: np.ndarray) -> np.ndarray:
    """2D extent of a KITTI camera box's corners (bottom centre, rotation ry about +y)."""
    x, y, z, length, height, width, ry = box_cam
    signs = np.array([[a, b] for a in (-1, 1) for b in (-1, 1)])
    local_xz = signs * np.array([length, width]) / 2
    cos_ry, sin_ry = math.cos(ry), math.sin(ry)
    corner_x = x + local_xz[:, 0] * cos_ry + local_xz[:, 1] * sin_ry
    corner_z = z - local_xz[:, 0] * sin_ry + local_xz[:, 1] * cos_ry
    corners = np.array([[cx, cy, cz] for cx, cz in zip(corner_x, corner_z, strict=True)
                        for cy in (y, y - height)])
    uvw = corners @ CALIB.P2[:, :3].T + CALIB.P2[:, 3]
    uv = uvw[:, :2] / uvw[:, 2:]
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def test_alpha_matches_kitti_label_rows() -> None:
    # (x, z, rotation_y, alpha) of label_2 rows quoted in KITTI's object devkit readme.
    rows = [(0.28, 17.74, -1.58, -1.59), (-11.46, 18.60, 1.58, 2.13), (3.34, 17.73, -1.54, -1.72),
            (-3.21, 11.22, -0.13, 0.15), (-4.95, 19.92, -2.41, -2.17)]
    boxes = np.array([[x, 1.7, z, 4.0, 1.5, 1.6, ry] for x, z, ry, _ in rows])
    assert np.allclose(observation_angle(boxes), [a for *_, a in rows], atol=0.011)


def test_alpha_is_wrapped() -> None:
    # ry = 3.0 seen 45 degrees to the left: 3.0 + pi/4 exceeds pi and wraps round.
    alpha = observation_angle(np.array([[-5.0, 1.0, 5.0, 4.0, 1.5, 1.6, 3.0]]))
    assert alpha[0] == pytest.approx(3.0 + math.pi / 4 - 2 * math.pi)
    assert observation_angle(np.array([[0.0, 1.0, 9.0, 4.0, 1.5, 1.6, 0.7]]))[0] == pytest.approx(
        0.7, abs=1e-12)


def test_class_mapping() -> None:
    names = ["Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "DontCare",
             "Misc", "Tram"]
    assert class_indices(names, CLASSES).tolist() == [0, -1, -2, 1, -1, 2, -1, -2, -2]
    # A car-only detector treats pedestrians as background, not as ignore regions.
    assert class_indices(names, ("Car",)).tolist() == [0, -1, -2, -2, -2, -2, -1, -2, -2]


def test_targets_keep_trained_and_ignored_classes_inside_the_range() -> None:
    labels = labels_of([
        ("Car", [2.0, 1.65, 15.0, 3.9, 1.56, 1.6, 0.3]),
        ("Tram", [-4.0, 1.7, 20.0, 12.0, 3.5, 2.6, 1.5]),
        ("Van", [-2.0, 1.7, 22.0, 4.5, 2.0, 1.9, -1.5]),
        ("DontCare", [-1000.0, -1000.0, -1000.0, -1.0, -1.0, -1.0, -10.0]),
        ("Cyclist", [0.0, 1.7, 50.0, 1.8, 1.7, 0.6, 0.0]),  # x_lidar ~ 50 m > 46.8 m
    ])
    boxes, classes = kitti_labels_to_lidar_targets(labels, CALIB, CLASSES, POINT_RANGE)
    assert classes.tolist() == [0, -1] and classes.dtype == np.int64
    assert boxes.dtype == np.float32 and boxes.shape == (2, 7)
    centre_rect = np.array([2.0, 1.65 - 1.56 / 2, 15.0, 1.0])
    expected_centre = (np.linalg.inv(CALIB.T_rect_from_lidar) @ centre_rect)[:3]
    assert np.allclose(boxes[0, :3], expected_centre, atol=1e-5)
    assert np.allclose(boxes[0, 3:6], [3.9, 1.6, 1.56])  # (l, w, h)
    _, unfiltered = kitti_labels_to_lidar_targets(labels, CALIB, CLASSES, None)
    assert unfiltered.tolist() == [0, -1, 2]  # DontCare has no 3D extent in any case


def test_detections_become_kitti_labels() -> None:
    boxes_lidar = np.array([[15.0, -2.0, -0.9, 3.9, 1.6, 1.5, 0.4],  # fully in view
                            [8.0, 6.0, -0.8, 4.0, 1.7, 1.5, -1.2]])  # cut by the left edge
    labels = detections_to_kitti_labels(torch.from_numpy(boxes_lidar), torch.tensor([0.9, 0.3]),
                                        torch.tensor([0, 2]), CALIB, KITTI_IMAGE_HW, CLASSES)
    assert labels.names.tolist() == ["Car", "Cyclist"]
    assert np.allclose(labels.score, [0.9, 0.3])  # float32 scores from the model
    assert labels.occluded.tolist() == [-1, -1]
    # Camera boxes: bottom centre half a height below the LiDAR centre, ry = -yaw - pi/2.
    centre_rect = (CALIB.T_rect_from_lidar @ np.append(boxes_lidar[0, :3], 1.0))[:3]
    assert np.allclose(labels.boxes_cam[0, :3], centre_rect + [0, 0.75, 0], atol=0.02)
    assert np.allclose(labels.boxes_cam[0, 3:6], [3.9, 1.5, 1.6])
    assert math.cos(labels.boxes_cam[0, 6] - (-0.4 - math.pi / 2)) > 0.9998
    # 2D boxes: the camera box corners' extent, clipped to the image. The camera box is
    # upright in the camera, the LiDAR box in the LiDAR: KITTI's 0.85 deg tilt moves ~1 px.
    inside = projected_extent_cam(labels.boxes_cam[0])
    assert np.allclose(labels.bbox[0], inside, atol=1e-6)
    assert np.allclose(labels.bbox[0], projected_extent(boxes_lidar[0]), atol=1.5)
    assert labels.truncated[0] == 0.0
    cut = projected_extent_cam(labels.boxes_cam[1])
    assert cut[0] < 0 < cut[2]
    assert labels.bbox[1, 0] == 0.0
    visible = (cut[2] - 0) * (cut[3] - cut[1])
    full = (cut[2] - cut[0]) * (cut[3] - cut[1])
    assert labels.truncated[1] == pytest.approx(1 - visible / full, abs=0.01)
    expected_alpha = labels.boxes_cam[:, 6] - np.arctan2(labels.boxes_cam[:, 0],
                                                         labels.boxes_cam[:, 2])
    assert np.allclose(np.cos(labels.alpha - expected_alpha), 1.0)


def test_detections_round_trip_to_targets() -> None:
    boxes_lidar = np.array([[20.0, 3.0, -1.0, 3.9, 1.6, 1.5, 2.5],
                            [12.0, -1.0, -0.8, 0.8, 0.6, 1.7, -0.3]])
    labels = detections_to_kitti_labels(boxes_lidar, [0.5, 0.6], [0, 1], CALIB,
                                        KITTI_IMAGE_HW, CLASSES)
    boxes, classes = kitti_labels_to_lidar_targets(labels, CALIB, CLASSES, POINT_RANGE)
    assert classes.tolist() == [0, 1]
    assert np.allclose(boxes[:, :6], boxes_lidar[:, :6], atol=1e-5)
    assert np.allclose(np.cos(boxes[:, 6] - boxes_lidar[:, 6]), 1.0, atol=1e-9)


def test_empty_and_bad_detections() -> None:
    empty = detections_to_kitti_labels(np.zeros((0, 7)), [], [], CALIB, KITTI_IMAGE_HW,
                                       CLASSES)
    assert len(empty) == 0 and empty.bbox.shape == (0, 4)
    box = np.array([[15.0, 0.0, -1.0, 3.9, 1.6, 1.5, 0.0]])
    with pytest.raises(ConfigError, match=r"class index 3 is outside class_names"):
        detections_to_kitti_labels(box, [0.5], [3], CALIB, KITTI_IMAGE_HW, CLASSES)
    with pytest.raises(ConfigError, match="1 boxes, 2 scores, 1 classes"):
        detections_to_kitti_labels(box, [0.5, 0.4], [0], CALIB, KITTI_IMAGE_HW, CLASSES)
