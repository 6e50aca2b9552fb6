"""Configuration of the synthetic KITTI generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.data.synth.lidar import LidarConfig
from monotakd_ros.data.synth.rig import (
    KITTI_IMAGE_HW,
    camera_calib_with_intrinsics,
    kitti_camera_calib,
)
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.calib import CameraCalib


@dataclass(frozen=True)
class SynthConfig:
    """What the generator produces: camera, LiDAR, traffic density and label rules."""

    image_hw: tuple[int, int] = KITTI_IMAGE_HW
    intrinsics: tuple[float, float, float, float] | None = None  # (fx, fy, cx, cy) px; None: KITTI
    lidar: LidarConfig = field(default_factory=LidarConfig)
    max_label_distance_m: float = bounded(60.0, gt=0)  # farther objects become DontCare
    min_box_height_px: float = bounded(18.0, ge=0)  # smaller objects become DontCare
    van_fraction: float = bounded(0.12, ge=0, le=1)
    pedestrians_per_side: float = bounded(2.0, ge=0)  # mean count per sidewalk
    cyclists_mean: float = bounded(1.0, ge=0)
    image_noise: float = bounded(3.0, ge=0)  # std of the sensor noise, grey levels
    # raw drives: "street" places pedestrians and cyclists per world (sparse on a long drive);
    # "object" per metre as in an object frame, so drive frames match the object set's scenes
    drive_scenes: Literal["street", "object"] = "street"

    def __post_init__(self) -> None:
        check_fields(self, "synth")
        if len(self.image_hw) != 2 or min(self.image_hw) < 1:
            raise ConfigError(f"synth image_hw: need two positive sizes, got {self.image_hw!r}")
        if self.intrinsics is not None and (len(self.intrinsics) != 4
                                            or min(self.intrinsics[:2]) <= 0):
            raise ConfigError(f"synth intrinsics: need (fx, fy, cx, cy) with fx, fy > 0, got "
                              f"{self.intrinsics!r}")

    def camera_calib(self) -> CameraCalib:
        """The rig's calibration with this camera (KITTI's own when no intrinsics are given)."""
        if self.intrinsics is None:
            return kitti_camera_calib()
        return camera_calib_with_intrinsics(*self.intrinsics)
