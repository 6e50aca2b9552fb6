"""Torch datasets of FrameSample built from KITTI-format directories (object set and raw drives).

Per frame: read image, calibration, LiDAR and labels at the original resolution; convert labels
to LiDAR boxes; augment (training); then ``build_frame_sample`` prepares the network input with
``batch.prepare_image`` and projects the LiDAR depth map directly with the scaled P2 at input
resolution (nearest pixel, nearest return: sparse depth is never interpolated).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from monotakd_ros.data.augment import AugmentConfig, SensorFrame, augment_frame
from monotakd_ros.data.batch import FrameSample, prepare_image, resized_hw
from monotakd_ros.data.kitti.dataset_check import check_object_frames
from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset, read_image_set
from monotakd_ros.data.kitti.raw_drive import CAMERA_INDEX, RawDrive
from monotakd_ros.data.predictions import boxes_inside_range, kitti_labels_to_lidar_targets
from monotakd_ros.errors import DatasetError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.projection import lidar_depth_map, project_rect_to_image
from monotakd_ros.model_io.input_spec import InputSpec

_NO_POINTS = np.zeros((0, 4), dtype=np.float32)
_NO_BOXES = np.zeros((0, 7), dtype=np.float32)
_NO_CLASSES = np.zeros(0, dtype=np.int64)


def points_in_image(points_lidar: np.ndarray, calib: CameraCalib,
                    image_hw: tuple[int, int]) -> np.ndarray:
    """(N,) bool: the point is in front of the camera and projects onto a pixel of the image."""
    uv, depth_m = project_rect_to_image(calib.lidar_to_rect(points_lidar), calib.P2)
    height, width = image_hw
    with np.errstate(invalid="ignore"):
        return ((depth_m > 0.0) & (uv[:, 0] >= -0.5) & (uv[:, 0] < width - 0.5)
                & (uv[:, 1] >= -0.5) & (uv[:, 1] < height - 0.5))


def points_inside_range(points_lidar: np.ndarray, point_range: Sequence[float]) -> np.ndarray:
    """(N,) bool: x, y, z inside [min, max) of ``point_range``."""
    low = np.asarray(point_range[:3], dtype=np.float32)
    high = np.asarray(point_range[3:], dtype=np.float32)
    xyz = points_lidar[:, :3]
    return np.all((xyz >= low) & (xyz < high), axis=1)


def build_frame_sample(frame_id: str, frame: SensorFrame, spec: InputSpec, has_labels: bool,
                       with_lidar: bool, fov_points_only: bool = True) -> FrameSample:
    """Network-ready sample of one (possibly augmented) frame."""
    original_hw = (int(frame.image_bgr.shape[0]), int(frame.image_bgr.shape[1]))
    image, P2_input, scale_xy = prepare_image(frame.image_bgr, frame.calib.P2, spec)
    depth_map = np.zeros(spec.input_hw, dtype=np.float32)
    points = _NO_POINTS
    if with_lidar:
        points = frame.points_lidar
        if fov_points_only:
            points = points[points_in_image(points, frame.calib, original_hw)]
        input_calib = CameraCalib(P2=P2_input, R0_rect=frame.calib.R0_rect,
                                  T_cam_from_lidar=frame.calib.T_cam_from_lidar)
        depth_map = lidar_depth_map(points, input_calib, spec.input_hw)
        # The padded bottom rows show no scene, so they carry no depth either.
        depth_map[resized_hw(original_hw, spec)[0]:] = 0.0
        points = points[points_inside_range(points, spec.point_range)]
    inside = boxes_inside_range(frame.boxes_lidar, spec.point_range)
    return FrameSample(
        frame_id=frame_id,
        image=image,
        P2=P2_input,
        T_rect_from_lidar=frame.calib.T_rect_from_lidar,
        points=np.ascontiguousarray(points, dtype=np.float32),
        depth_map=depth_map,
        gt_boxes_lidar=frame.boxes_lidar[inside].astype(np.float32),
        gt_classes=frame.classes[inside].astype(np.int64),
        has_labels=has_labels,
        original_hw=original_hw,
        scale_xy=scale_xy,
    )


def _augmentation_rng() -> np.random.Generator:
    """Generator seeded from torch's RNG, which DataLoader seeds differently in every worker."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


class KittiFrameDataset(Dataset[FrameSample]):
    """Frames of a KITTI object split as FrameSample (labels optional, LiDAR optional)."""

    def __init__(self, root: Path, split_file_or_name: str | Path | None, spec: InputSpec,
                 split: str = "training", with_lidar: bool = True, with_labels: bool = True,
                 augment: AugmentConfig | None = None, fov_points_only: bool = True) -> None:
        self.kitti = KittiObjectDataset(Path(root), split)
        self.spec = spec
        self.with_lidar = with_lidar
        self.with_labels = with_labels
        self.augment = augment
        self.fov_points_only = fov_points_only
        if with_labels and not self.kitti.has_labels:
            raise DatasetError(f"{self.kitti.split_dir}: split {split!r} has no label_2 folder; "
                               "pass with_labels=False")
        self.frame_ids = split_frame_ids(self.kitti, split_file_or_name)
        check_object_frames(self.kitti, self.frame_ids, with_labels, with_lidar)  # fail now

    def __len__(self) -> int:
        """Number of frames in the split."""
        return len(self.frame_ids)

    def __getitem__(self, index: int) -> FrameSample:
        """The frame at ``index`` of the split, augmented when configured."""
        frame_id = self.frame_ids[index]
        calib = self.kitti.calib(frame_id).camera_calib()
        boxes, classes = _NO_BOXES, _NO_CLASSES
        if self.with_labels:
            # No range filter yet: a flip may move boxes, the range is applied after it.
            boxes, classes = kitti_labels_to_lidar_targets(
                self.kitti.labels(frame_id), calib, self.spec.class_names, None)
        frame = SensorFrame(
            image_bgr=self.kitti.image(frame_id),
            calib=calib,
            points_lidar=self.kitti.points(frame_id) if self.with_lidar else _NO_POINTS,
            boxes_lidar=boxes,
            classes=classes,
        )
        if self.augment is not None:
            frame = augment_frame(frame, self.augment, _augmentation_rng())
        return build_frame_sample(frame_id, frame, self.spec, self.with_labels,
                                  self.with_lidar, self.fov_points_only)


class RawDriveFrameDataset(Dataset[FrameSample]):
    """Unlabelled frames of KITTI raw synced drives (for distillation), has_labels False."""

    def __init__(self, drive_dirs: Sequence[Path], spec: InputSpec, with_lidar: bool = True,
                 augment: AugmentConfig | None = None, fov_points_only: bool = True) -> None:
        if not drive_dirs:
            raise DatasetError("RawDriveFrameDataset: no drive directories given")
        self.drives = [RawDrive(Path(d)) for d in drive_dirs]
        self.spec = spec
        self.with_lidar = with_lidar
        self.augment = augment
        self.fov_points_only = fov_points_only
        # (drive number, frame index) of every dataset item, drives in the given order.
        self.index = [(d, i) for d, drive in enumerate(self.drives)
                      for i in range(drive.num_frames)]

    def __len__(self) -> int:
        """Frames of all drives together."""
        return len(self.index)

    def __getitem__(self, index: int) -> FrameSample:
        """Frame ``index`` counted across the drives; its id is ``<drive dir>/<frame>``."""
        drive_number, frame_index = self.index[index]
        drive = self.drives[drive_number]
        frame = SensorFrame(
            image_bgr=drive.image(frame_index),
            calib=drive.calib.camera_calib(CAMERA_INDEX),
            points_lidar=drive.points(frame_index) if self.with_lidar else _NO_POINTS,
            boxes_lidar=_NO_BOXES,
            classes=_NO_CLASSES,
        )
        if self.augment is not None:
            frame = augment_frame(frame, self.augment, _augmentation_rng())
        frame_id = f"{drive.drive_dir.name}/{frame_index:010d}"
        return build_frame_sample(frame_id, frame, self.spec, False, self.with_lidar,
                                  self.fov_points_only)


def split_frame_ids(kitti: KittiObjectDataset, split_file_or_name: str | Path | None) -> list[str]:
    """Ids from a split file path, an ImageSets name (``train``), or every image when None."""
    if split_file_or_name is None:
        ids = kitti.frame_ids(None)
    elif isinstance(split_file_or_name, Path) or str(split_file_or_name).endswith(".txt"):
        path = Path(split_file_or_name)
        if not path.is_file():
            raise DatasetError(f"{path}: split file does not exist")
        ids = read_image_set(path)
    else:
        ids = kitti.frame_ids(str(split_file_or_name))
    if not ids:
        raise DatasetError(f"{kitti.root}: split {split_file_or_name!r} lists no frames")
    return ids
