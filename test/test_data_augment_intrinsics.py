"""Intrinsics augmentation: another camera at the same place, P2 updated, 3D targets unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.configuration import dataclass_from_dict
from monotakd_ros.data.augment import AugmentConfig, SensorFrame, augment_frame, resample_frame
from monotakd_ros.data.synth.rig import kitti_camera_calib
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.kitti_camera import KITTI_IMAGE_HW

CALIB = kitti_camera_calib()
POINT_LIDAR = np.array([[16.0, 2.5, -0.6]])  # left of the axis, below the camera


def blob_frame() -> SensorFrame:
    """KITTI-sized frame, black but for a Gaussian spot where POINT_LIDAR projects."""
    uv, _ = CALIB.rect_to_image(CALIB.lidar_to_rect(POINT_LIDAR))
    rows, cols = np.mgrid[0:KITTI_IMAGE_HW[0], 0:KITTI_IMAGE_HW[1]]
    spot = np.exp(-((cols - uv[0, 0]) ** 2 + (rows - uv[0, 1]) ** 2) / (2 * 5.0**2))
    image = np.repeat(np.round(250 * spot).astype(np.uint8)[:, :, None], 3, axis=2)
    boxes = np.array([[16.0, 2.5, -0.9, 3.9, 1.6, 1.56, 0.3]])
    return SensorFrame(image, CALIB, np.array([[16.0, 2.5, -0.6, 0.5]], np.float32), boxes,
                       np.array([0]))


def centroid(image: np.ndarray) -> tuple[float, float]:
    grey = image[:, :, 0].astype(np.float64)
    grey = np.where(grey > 110, grey - 110, 0.0)  # above the mean-colour border (~104-124)
    rows, cols = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    return float((grey * cols).sum() / grey.sum()), float((grey * rows).sum() / grey.sum())


@pytest.mark.parametrize(("sx", "sy", "ox", "oy"), [(1.2, 1.2, -120.0, -35.0),
                                                    (0.8, 0.85, 130.0, 40.0)])
def test_the_point_lands_where_the_new_p2_projects_it(sx: float, sy: float, ox: float,
                                                      oy: float) -> None:
    frame = blob_frame()
    out = resample_frame(frame, sx, sy, ox, oy)
    uv, depth = out.calib.rect_to_image(out.calib.lidar_to_rect(POINT_LIDAR))
    assert tuple(uv[0]) == pytest.approx(centroid(out.image_bgr), abs=0.05)
    # By hand: fx and cx follow the resample; depth, points and boxes are the same scene.
    assert out.calib.P2[0, 0] == pytest.approx(sx * CALIB.P2[0, 0])
    assert out.calib.P2[1, 1] == pytest.approx(sy * CALIB.P2[1, 1])
    assert out.calib.P2[0, 2] == pytest.approx(sx * (CALIB.P2[0, 2] + 0.5) - 0.5 + ox)
    _, depth_before = CALIB.rect_to_image(CALIB.lidar_to_rect(POINT_LIDAR))
    assert depth == pytest.approx(depth_before)
    np.testing.assert_array_equal(out.boxes_lidar, frame.boxes_lidar)
    np.testing.assert_array_equal(out.points_lidar, frame.points_lidar)
    assert out.image_bgr.shape == frame.image_bgr.shape
    if sx < 1.0:  # the top-left corner is uncovered: ImageNet's mean colour, BGR
        assert tuple(out.image_bgr[0, 0]) == (104, 116, 124)


def test_draws_stay_in_their_ranges() -> None:
    config = AugmentConfig(hflip_probability=0.0, intrinsics_probability=1.0,
                           focal_scale_range=(0.8, 1.25), aspect_jitter=0.05,
                           principal_shift=0.1)
    rng = np.random.default_rng(3)
    frame = blob_frame()
    fx, aspect, dcx = [], [], []
    for _ in range(100):
        P2 = augment_frame(frame, config, rng).calib.P2
        fx.append(P2[0, 0] / CALIB.P2[0, 0])
        aspect.append((P2[1, 1] / CALIB.P2[1, 1]) / fx[-1])
        dcx.append(P2[0, 2] - CALIB.P2[0, 2])
    assert 0.8 <= min(fx) < 0.85 and 1.2 < max(fx) <= 1.25
    assert 0.95 <= min(aspect) and max(aspect) <= 1.05
    assert max(np.abs(dcx)) <= 0.1 * KITTI_IMAGE_HW[1] + 1e-9 and np.std(dcx) > 30.0


def test_off_by_default_and_old_random_streams_unchanged() -> None:
    old = AugmentConfig(hflip_probability=0.5, brightness_jitter=0.2, contrast_jitter=0.2)
    rng = np.random.default_rng(7)
    out = augment_frame(blob_frame(), old, rng)
    expected = np.random.default_rng(7)
    expected.random(), expected.uniform(), expected.uniform()  # flip, brightness, contrast
    assert rng.random() == expected.random()
    assert abs(out.calib.P2[0, 0]) == CALIB.P2[0, 0]


def test_bad_ranges_name_the_key() -> None:
    with pytest.raises(ConfigError, match="focal_scale_range.*1.1"):
        AugmentConfig(focal_scale_range=(1.1, 1.3))
    with pytest.raises(ConfigError, match="aspect_jitter"):
        AugmentConfig(aspect_jitter=0.7)
    loaded = dataclass_from_dict(AugmentConfig, {"intrinsics_probability": 0.5,
                                                 "focal_scale_range": [0.7, 1.4]}, where="t")
    assert loaded.focal_scale_range == (0.7, 1.4)


def test_the_prepared_cache_cannot_carry_intrinsics_augmentation(tmp_path) -> None:  # noqa: ANN001
    from monotakd_ros.training.config import load_train_config

    config = tmp_path / "train.yaml"
    config.write_text("train:\n  data_cache: true\n  augment: {intrinsics_probability: 0.5}\n")
    with pytest.raises(ConfigError, match="data_cache.*intrinsics"):
        load_train_config(config)
