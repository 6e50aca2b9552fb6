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

Intrinsics augmentation (off by default) makes the frame look as if another camera at the same
place took it: the image is resampled by ``(sx, sy)`` (focal length and aspect ratio) and shifted
by ``(ox, oy)`` (principal point), keeping its size, with ``P2' = S P2`` for
``S = [[sx, 0, (sx - 1) / 2 + ox], [0, sy, (sy - 1) / 2 + oy], [0, 0, 1]]`` (pixel centres at
integers). Points, boxes and the extrinsic are unchanged: the 3D scene is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.rotations import wrap_angle

_MIRROR_CAM = np.diag([-1.0, 1.0, 1.0])  # M: camera x -> -x
_MIRROR_LIDAR = np.diag([1.0, -1.0, 1.0, 1.0])  # N (homogeneous): LiDAR y -> -y
_MEAN_BGR = (0.406 * 255, 0.456 * 255, 0.485 * 255)


@dataclass(frozen=True)
class AugmentConfig:
    """Per-frame augmentation; brightness and contrast factors are drawn from 1 ± jitter."""

    hflip_probability: float = bounded(0.5, ge=0, le=1)
    brightness_jitter: float = bounded(0.0, ge=0, lt=1)
    contrast_jitter: float = bounded(0.0, ge=0, lt=1)
    # Intrinsics: with this probability, resample by a focal scale drawn log-uniformly from
    # focal_scale_range, times 1 ± aspect_jitter on y, and move the principal point by up to
    # principal_shift of the image size. Drawn after flip and colour, and only when the
    # probability is > 0, so old configs keep their random streams.
    intrinsics_probability: float = bounded(0.0, ge=0, le=1)
    focal_scale_range: tuple[float, float] = (0.8, 1.25)
    aspect_jitter: float = bounded(0.0, ge=0, lt=0.5)
    principal_shift: float = bounded(0.0, ge=0, lt=0.5)

    def __post_init__(self) -> None:
        check_fields(self, "augment")
        if len(self.focal_scale_range) != 2 or not (
                0.0 < self.focal_scale_range[0] <= 1.0 <= self.focal_scale_range[1]):
            raise ConfigError(f"augment.focal_scale_range: need (low, high) with 0 < low <= 1 "
                              f"<= high, got {self.focal_scale_range!r}")


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
    if config.intrinsics_probability > 0.0 and rng.random() < config.intrinsics_probability:
        h0, w0 = frame.image_bgr.shape[:2]
        log_low, log_high = np.log(config.focal_scale_range)
        sx = float(np.exp(rng.uniform(log_low, log_high)))
        sy = sx * float(rng.uniform(1.0 - config.aspect_jitter, 1.0 + config.aspect_jitter))
        # Shift around the offset that keeps the scaled principal point where it was.
        cx, cy = frame.calib.P2[0, 2], frame.calib.P2[1, 2]
        ox = (cx - (sx * (cx + 0.5) - 0.5)) + rng.uniform(-1, 1) * config.principal_shift * w0
        oy = (cy - (sy * (cy + 0.5) - 0.5)) + rng.uniform(-1, 1) * config.principal_shift * h0
        frame = resample_frame(frame, sx, sy, ox, oy)
    return frame


def resample_frame(frame: SensorFrame, sx: float, sy: float, ox: float,
                   oy: float) -> SensorFrame:
    """The frame as seen by a camera with P2' = S P2 (see module docstring), same image size."""
    S = np.array([[sx, 0.0, 0.5 * (sx - 1.0) + ox], [0.0, sy, 0.5 * (sy - 1.0) + oy],
                  [0.0, 0.0, 1.0]])
    h0, w0 = frame.image_bgr.shape[:2]
    # Uncovered pixels get the ImageNet mean colour (BGR), which normalises to 0 as padding does.
    image = cv2.warpAffine(frame.image_bgr, S[:2], (w0, h0), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=_MEAN_BGR)
    calib = CameraCalib(P2=S @ frame.calib.P2, R0_rect=frame.calib.R0_rect,
                        T_cam_from_lidar=frame.calib.T_cam_from_lidar)
    return SensorFrame(image, calib, frame.points_lidar, frame.boxes_lidar, frame.classes)


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
