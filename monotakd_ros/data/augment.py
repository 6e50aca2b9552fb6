"""Training augmentation of one frame at its original resolution: mirror flip and colour jitter.

A horizontal image flip is a mirror of the whole scene. With the image column ``u -> W-1-u``
(pixel centres at integers), the camera sees the world mirrored in its own x axis,
``M = diag(-1, 1, 1)``; the LiDAR cloud is mirrored in its y axis, ``N = diag(1, -1, 1)``,
so the mirrored scene still drives on the right-handed LiDAR frame the BEV grid expects.
Every quantity is then changed so that projections stay exact for any extrinsic:

- points ``p' = N p`` and LiDAR boxes ``[x, -y, z, l, w, h, -yaw]``;
- ``T_rect_from_lidar' = M T N`` (kept as ``R0_rect' = M R0 M``, ``T_cam_from_lidar' = M T N``);
- ``P2' = F P2 M`` with the image flip ``F = [[-1, 0, W-1], [0, 1, 0], [0, 0, 1]]``, that is
  ``fx, fy, cy, Ty, Tz`` unchanged, ``cx' = W-1-cx`` and ``Tx' = (W-1) Tz - Tx``.

Then ``P2' T' (N p) = F P2 M M T N N p = F (P2 T p)``: each point lands on the mirrored pixel at
the same depth. Nothing assumes the extrinsic is symmetric; for KITTI ``M T N`` is close to ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.rotations import wrap_angle

_MIRROR_CAM = np.diag([-1.0, 1.0, 1.0])  # M: camera x -> -x
_MIRROR_LIDAR = np.diag([1.0, -1.0, 1.0, 1.0])  # N (homogeneous): LiDAR y -> -y


@dataclass(frozen=True)
class AugmentConfig:
    """Per-frame augmentation; brightness and contrast factors are drawn from 1 ± jitter."""

    hflip_probability: float = bounded(0.5, ge=0, le=1)
    brightness_jitter: float = bounded(0.0, ge=0, lt=1)
    contrast_jitter: float = bounded(0.0, ge=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self, "augment")


@dataclass
class SensorFrame:
    """One frame as read from disk: original-resolution image, calibration, points and boxes."""

    image_bgr: np.ndarray  # (h0, w0, 3) uint8
    calib: CameraCalib
    points_lidar: np.ndarray  # (N, 4) float32 x, y, z, intensity
    boxes_lidar: np.ndarray  # (M, 7) [x, y, z, l, w, h, yaw], geometric centre
    classes: np.ndarray  # (M,) int64, -1 = ignore


def augment_frame(frame: SensorFrame, config: AugmentConfig,
                  rng: np.random.Generator) -> SensorFrame:
    """Randomly mirrored and colour-jittered copy of ``frame``."""
    if rng.random() < config.hflip_probability:
        frame = flip_frame_horizontally(frame)
    brightness = rng.uniform(1.0 - config.brightness_jitter, 1.0 + config.brightness_jitter)
    contrast = rng.uniform(1.0 - config.contrast_jitter, 1.0 + config.contrast_jitter)
    if brightness != 1.0 or contrast != 1.0:
        image = jitter_brightness_contrast(frame.image_bgr, brightness, contrast)
        frame = SensorFrame(image, frame.calib, frame.points_lidar, frame.boxes_lidar,
                            frame.classes)
    return frame


def flip_frame_horizontally(frame: SensorFrame) -> SensorFrame:
    """The mirrored scene: image, calibration, points and boxes flipped consistently."""
    width = frame.image_bgr.shape[1]
    return SensorFrame(
        image_bgr=cv2.flip(frame.image_bgr, 1),
        calib=flip_calib_horizontally(frame.calib, width),
        points_lidar=flip_points_lidar(frame.points_lidar),
        boxes_lidar=flip_boxes_lidar(frame.boxes_lidar),
        classes=frame.classes.copy(),
    )


def flip_calib_horizontally(calib: CameraCalib, image_width: int) -> CameraCalib:
    """Calibration of the mirrored scene seen in the flipped image (see module docstring)."""
    F = np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    P2 = F @ calib.P2 @ np.diag([-1.0, 1.0, 1.0, 1.0])
    R0_rect = _MIRROR_CAM @ calib.R0_rect @ _MIRROR_CAM
    T_cam_from_lidar = _MIRROR_CAM @ calib.T_cam_from_lidar @ _MIRROR_LIDAR
    return CameraCalib(P2=P2, R0_rect=R0_rect, T_cam_from_lidar=T_cam_from_lidar)


def flip_points_lidar(points_lidar: np.ndarray) -> np.ndarray:
    """(N, 3+) LiDAR points mirrored in the LiDAR x-z plane (y -> -y)."""
    flipped = points_lidar.copy()
    flipped[:, 1] = -flipped[:, 1]
    return flipped


def flip_boxes_lidar(boxes_lidar: np.ndarray) -> np.ndarray:
    """(M, 7) LiDAR boxes mirrored in the LiDAR x-z plane: y -> -y, yaw -> -yaw."""
    flipped = boxes_lidar.copy()
    flipped[:, 1] = -flipped[:, 1]
    flipped[:, 6] = wrap_angle(-flipped[:, 6])
    return flipped


def jitter_brightness_contrast(image_bgr: np.ndarray, brightness: float,
                               contrast: float) -> np.ndarray:
    """Blend towards the mean grey by ``contrast``, then scale by ``brightness`` (uint8, one pass).

    out = brightness * (contrast * image + (1 - contrast) * mean_grey), saturated to [0, 255].
    """
    mean_grey = float(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).mean())
    gain = brightness * contrast
    offset = brightness * (1.0 - contrast) * mean_grey
    return cv2.convertScaleAbs(image_bgr, alpha=gain, beta=offset)
