"""Tiny KITTI-format data sets and tiny model/train configs for the training tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from monotakd_ros.data.kitti.calib import (
    object_calib_from_camera_calib,
    raw_calib_from_camera_calib,
)
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter
from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import boxes_lidar_to_cam
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d

IMAGE_HW = (375, 1242)  # KITTI's size, so that 2D boxes pass the difficulty heights
_KITTI_P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728],
                      [0.0, 721.5377, 172.854, 0.2163791],
                      [0.0, 0.0, 1.0, 0.002745884]])
_R0_RECT = np.array([[9.999239e-01, 9.837760e-03, -7.445048e-03],
                     [-9.869795e-03, 9.999421e-01, -4.278459e-03],
                     [7.402527e-03, 4.351614e-03, 9.999631e-01]])
_TR_VELO_TO_CAM = np.array([
    [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
    [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
    [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]])


def kitti_calib() -> CameraCalib:
    """The real KITTI calibration (object training/calib/000000.txt)."""
    return CameraCalib(P2=_KITTI_P2, R0_rect=_R0_RECT, T_cam_from_lidar=_TR_VELO_TO_CAM)


LANES_Y_M = (-7.5, -2.5, 2.5, 7.5)  # one car per lane at most: boxes never overlap


def _frame(rng: np.random.Generator, calib: CameraCalib, cars: int | None = None
           ) -> tuple[np.ndarray, np.ndarray, KittiLabels]:
    """Image, LiDAR points and labels of one frame with ``cars`` (default 1-2) cars ahead."""
    cars = int(rng.integers(1, 3)) if cars is None else cars
    lanes = rng.choice(LANES_Y_M, size=cars, replace=False)
    boxes_lidar = np.stack([
        np.array([rng.uniform(10, 30), y + rng.uniform(-0.5, 0.5), -0.95, 3.9, 1.6, 1.56,
                  rng.uniform(-np.pi, np.pi)]) for y in lanes])
    ground = np.column_stack([rng.uniform(3, 45, 600), rng.uniform(-20, 20, 600),
                              np.full(600, -1.73), rng.uniform(0, 1, 600)])
    car_points = [np.column_stack([box[0] + rng.uniform(-1.9, 1.9, 150),
                                   box[1] + rng.uniform(-0.8, 0.8, 150),
                                   box[2] + rng.uniform(-0.78, 0.78, 150),
                                   rng.uniform(0, 1, 150)]) for box in boxes_lidar]
    points = np.concatenate([ground, *car_points]).astype(np.float32)
    boxes_cam = boxes_lidar_to_cam(boxes_lidar, calib)
    bbox = boxes3d_to_boxes2d(boxes_cam, calib.P2, IMAGE_HW, clip=True)
    # A smooth background compresses fast; the cars are painted where they project.
    image = np.zeros((*IMAGE_HW, 3), dtype=np.uint8)
    image[:] = rng.integers(60, 200, 3, dtype=np.uint8)
    for x0, y0, x1, y1 in bbox.astype(int):
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 255), -1)
    labels = KittiLabels(
        names=np.array(["Car"] * cars, dtype="<U16"),
        truncated=np.zeros(cars), occluded=np.zeros(cars, dtype=np.int64),
        alpha=np.zeros(cars), bbox=bbox, boxes_cam=boxes_cam)
    return image, points, labels


def write_tiny_kitti(root: Path, num_train: int = 8, num_val: int = 2, seed: int = 0,
                     cars_per_frame: int | None = None) -> Path:
    """KITTI object layout under ``root`` with ImageSets train/val; returns ``root``."""
    rng = np.random.default_rng(seed)
    calib = kitti_calib()
    writer = KittiObjectWriter(root, "training")
    ids = [f"{i:06d}" for i in range(num_train + num_val)]
    for frame_id in ids:
        image, points, labels = _frame(rng, calib, cars_per_frame)
        writer.write_frame(frame_id, image, object_calib_from_camera_calib(calib), points,
                           labels)
    writer.write_image_sets({"train": ids[:num_train], "val": ids[num_train:]})
    return root


def write_tiny_raw_drive(root: Path, num_frames: int = 4, seed: int = 1) -> Path:
    """One synced KITTI raw drive (no tracklets) under ``root``; returns the drive folder."""
    rng = np.random.default_rng(seed)
    calib = kitti_calib()
    oxts = OxtsPacket(*([0.0] * 25), *([0] * 5))
    with RawDriveWriter(root, "2011_09_26", 1) as writer:
        writer.write_calib(raw_calib_from_camera_calib(calib, IMAGE_HW))
        for index in range(num_frames):
            image, points, _ = _frame(rng, calib)
            stamp_ns = 1_317_000_000_000_000_000 + index * 100_000_000
            writer.add_frame(image, points, oxts, stamp_ns, stamp_ns)
    return writer.drive_dir


TINY_MODEL = {
    "grid": {"x_range_m": [2.0, 46.8], "y_range_m": [-28.8, 28.8], "z_range_m": [-3.0, 1.0],
             "cell_m": 3.2, "height_slices": 2},
    "image": {"input_hw": [64, 192]},
    "trunk": {"name": "small", "small_channels": [4, 8, 8]},
    "depth": {"num_bins": 6, "min_m": 2.0, "max_m": 46.8},
    "depth_head": {"aspp_channels": 8, "aspp_rates": [1]},
    "image_channels": 4,
    "bev_channels": 8,
    "spatial_cue": {"aspp_rates": [1], "se_reduction": 2},
    "fusion_convs": 1,
    "bev_backbone": {"layer_nums": [1], "layer_strides": [1], "num_filters": [8],
                     "upsample_strides": [1], "upsample_filters": [8]},
    "teacher": {"pfn_channels": 8, "stem_convs": 1},
}

TINY_TRAIN = {
    "lr": 1e-3, "schedule": "onecycle", "epochs": 1, "max_steps": 6, "batch_size": 2,
    "grad_accum": 1, "grad_clip": 10.0, "device": "cpu", "workers": 0, "seed": 0,
    "log_interval": 1, "val_interval": 0, "ckpt_interval": 0,
    "augment": {"hflip_probability": 0.5, "brightness_jitter": 0.1},
}


def write_yaml(path: Path, data: dict) -> Path:
    """Dump ``data`` to ``path`` and return the path."""
    path.write_text(yaml.safe_dump(data))
    return path
