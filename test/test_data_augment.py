"""Mirror flip and colour jitter: projections, boxes and images stay mutually consistent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monotakd_ros.data.augment import (
    AugmentConfig,
    SensorFrame,
    augment_frame,
    flip_boxes_lidar,
    flip_calib_horizontally,
    flip_frame_horizontally,
    flip_points_lidar,
    jitter_brightness_contrast,
)
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW, kitti_camera_calib
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar

CALIB = kitti_camera_calib()
WIDTH = KITTI_IMAGE_HW[1]


def pixels_and_depth(points_lidar: np.ndarray, calib: object) -> tuple[np.ndarray, np.ndarray]:
    """Projection through P2 @ R0_rect @ Tr_velo_to_cam written out from the matrices."""
    P2, R0, Tr = calib.P2, calib.R0_rect, calib.T_cam_from_lidar  # type: ignore[attr-defined]
    homogeneous = np.column_stack([points_lidar[:, :3], np.ones(len(points_lidar))])
    uvw = (P2 @ np.vstack([R0 @ Tr, [0, 0, 0, 1]]) @ homogeneous.T).T
    return uvw[:, :2] / uvw[:, 2:], uvw[:, 2]


def test_flipped_points_land_on_mirrored_pixels_at_the_same_depth() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform([3, -20, -2, 0], [60, 20, 2, 1], size=(500, 4))
    uv, depth = pixels_and_depth(points, CALIB)
    flipped_calib = flip_calib_horizontally(CALIB, WIDTH)
    uv_flipped, depth_flipped = pixels_and_depth(flip_points_lidar(points), flipped_calib)
    assert np.allclose(uv_flipped[:, 0], WIDTH - 1 - uv[:, 0], atol=1e-9)
    assert np.allclose(uv_flipped[:, 1], uv[:, 1], atol=1e-9)
    assert np.allclose(depth_flipped, depth)


def test_flipped_calibration_by_hand() -> None:
    flipped = flip_calib_horizontally(CALIB, WIDTH)
    P2, P2_flipped = CALIB.P2, flipped.P2
    assert P2_flipped[0, 0] == P2[0, 0] and P2_flipped[1, 1] == P2[1, 1]
    assert P2_flipped[0, 2] == pytest.approx(WIDTH - 1 - P2[0, 2])  # cx' = W - 1 - cx
    assert P2_flipped[0, 3] == pytest.approx((WIDTH - 1) * P2[2, 3] - P2[0, 3])  # Tx'
    assert np.allclose(P2_flipped[1:], P2[1:])
    # Still a proper rigid transform, and KITTI's extrinsic is nearly mirror-symmetric.
    T = flipped.T_rect_from_lidar
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-5)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(T - CALIB.T_rect_from_lidar).max() < 0.03


def test_flipping_twice_is_the_identity() -> None:
    twice = flip_calib_horizontally(flip_calib_horizontally(CALIB, WIDTH), WIDTH)
    assert np.allclose(twice.P2, CALIB.P2) and np.allclose(twice.R0_rect, CALIB.R0_rect)
    assert np.allclose(twice.T_cam_from_lidar, CALIB.T_cam_from_lidar)
    boxes = np.array([[10.0, 3.0, -1.0, 3.9, 1.6, 1.5, 2.9], [20.0, -4.0, -0.8, 0.8, 0.6, 1.7,
                                                               -0.4]])
    assert np.allclose(flip_boxes_lidar(flip_boxes_lidar(boxes)), boxes)


def test_flipped_lidar_boxes_match_mirrored_camera_labels() -> None:
    # Mirroring the camera label (x -> -x, ry -> pi - ry) and converting with the flipped
    # calibration must give the flipped LiDAR box: labels and targets agree after a flip.
    boxes_cam = np.array([[2.0, 1.65, 15.0, 3.9, 1.56, 1.6, 0.3],
                          [-6.5, 1.7, 32.0, 0.8, 1.73, 0.6, -2.8]])
    mirrored_cam = boxes_cam.copy()
    mirrored_cam[:, 0] *= -1
    mirrored_cam[:, 6] = math.pi - mirrored_cam[:, 6]
    via_labels = boxes_cam_to_lidar(mirrored_cam, flip_calib_horizontally(CALIB, WIDTH))
    via_boxes = flip_boxes_lidar(boxes_cam_to_lidar(boxes_cam, CALIB))
    assert np.allclose(via_labels[:, :6], via_boxes[:, :6], atol=1e-9)
    assert np.allclose(np.cos(via_labels[:, 6] - via_boxes[:, 6]), 1.0)


def test_flipped_frame_image_matches_projection() -> None:
    image = np.zeros((*KITTI_IMAGE_HW, 3), np.uint8)
    point = np.array([[12.0, 4.0, -0.5, 0.3]], dtype=np.float32)
    (u, v), = np.round(pixels_and_depth(point, CALIB)[0]).astype(int)
    image[v, u] = (255, 255, 255)
    frame = SensorFrame(image, CALIB, point, np.zeros((0, 7)), np.zeros(0, np.int64))
    flipped = flip_frame_horizontally(frame)
    (u_f, v_f), = np.round(pixels_and_depth(flipped.points_lidar, flipped.calib)[0]).astype(int)
    assert (u_f, v_f) == (WIDTH - 1 - u, v)
    assert np.argwhere(flipped.image_bgr[:, :, 0] == 255).tolist() == [[v_f, u_f]]
    assert frame.points_lidar[0, 1] == 4.0  # the input frame is not modified


def test_brightness_contrast_by_hand() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2] = (100, 100, 100)
    image[2:] = (200, 200, 200)  # mean grey 150
    out = jitter_brightness_contrast(image, brightness=1.1, contrast=0.5)
    # 1.1 * (0.5 * 100 + 0.5 * 150) = 137.5 and 1.1 * (0.5 * 200 + 0.5 * 150) = 192.5
    assert set(np.unique(out[:2])) <= {137, 138} and set(np.unique(out[2:])) <= {192, 193}
    saturated = jitter_brightness_contrast(image, brightness=1.5, contrast=1.0)
    assert saturated[3, 3, 0] == 255 and saturated[0, 0, 0] == 150


def test_augment_frame_respects_probability_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    frame = SensorFrame(image, CALIB, np.zeros((0, 4), np.float32),
                        np.array([[10.0, 2.0, -1.0, 4.0, 1.6, 1.5, 0.5]]), np.array([0]))
    kept = augment_frame(frame, AugmentConfig(hflip_probability=0.0), rng)
    assert np.array_equal(kept.image_bgr, image) and kept.calib is CALIB
    flipped = augment_frame(frame, AugmentConfig(hflip_probability=1.0), rng)
    assert np.array_equal(flipped.image_bgr, image[:, ::-1])
    assert flipped.boxes_lidar[0, 1] == -2.0 and flipped.boxes_lidar[0, 6] == -0.5
    config = AugmentConfig(0.5, 0.3, 0.3)
    first = augment_frame(frame, config, np.random.default_rng(7)).image_bgr
    again = augment_frame(frame, config, np.random.default_rng(7)).image_bgr
    assert np.array_equal(first, again) and not np.array_equal(first, image)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"hflip_probability: must lie in \[0, 1\], got 1\.5"):
        AugmentConfig(hflip_probability=1.5)
    with pytest.raises(ConfigError, match="brightness_jitter"):
        AugmentConfig(brightness_jitter=-0.1)
    with pytest.raises(ConfigError, match="contrast_jitter"):
        AugmentConfig(contrast_jitter=1.0)
