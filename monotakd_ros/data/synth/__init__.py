"""Procedural KITTI-format world: street scenes, a 64-beam LiDAR, labels, object/raw writers."""

from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.drive import SynthDrive, generate_drive
from monotakd_ros.data.synth.generator import SynthFrame, generate_object_frame
from monotakd_ros.data.synth.lidar import LidarConfig
from monotakd_ros.data.synth.writer import write_object_dataset, write_raw_drives

__all__ = [
    "LidarConfig", "SynthConfig", "SynthDrive", "SynthFrame", "generate_drive",
    "generate_object_frame", "write_object_dataset", "write_raw_drives",
]
