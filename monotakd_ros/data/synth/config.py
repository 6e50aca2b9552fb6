"""Configuration of the synthetic KITTI generator."""

from __future__ import annotations

from dataclasses import dataclass, field

from monotakd_ros.data.synth.lidar import LidarConfig
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW


@dataclass(frozen=True)
class SynthConfig:
    """What the generator produces: image size, LiDAR, traffic density and label rules."""

    image_hw: tuple[int, int] = KITTI_IMAGE_HW
    lidar: LidarConfig = field(default_factory=LidarConfig)
    max_label_distance_m: float = 60.0  # farther objects become DontCare
    min_box_height_px: float = 18.0  # smaller objects become DontCare
    van_fraction: float = 0.12
    pedestrians_per_side: float = 2.0  # mean count per sidewalk
    cyclists_mean: float = 1.0
    image_noise: float = 3.0  # std of the sensor noise, grey levels
