"""Sensor frames from bags or topics -> network samples, through the datasets' own code path."""

from __future__ import annotations

import numpy as np

from monotakd_ros.bags.frame_reader import BagFrame
from monotakd_ros.data.augment import SensorFrame
from monotakd_ros.data.batch import FrameSample
from monotakd_ros.data.datasets import build_frame_sample
from monotakd_ros.data.predictions import kitti_labels_to_lidar_targets
from monotakd_ros.model_io.input_spec import InputSpec

_NO_BOXES = np.zeros((0, 7), dtype=np.float32)
_NO_CLASSES = np.zeros(0, dtype=np.int64)


def frame_id_of(source: str, stamp_ns: int) -> str:
    """Stable id of a frame: its source (bag path or topic) and image stamp."""
    return f"{source}@{stamp_ns}"


def sample_from_bag_frame(frame: BagFrame, spec: InputSpec, frame_id: str,
                          with_labels: bool = False) -> FrameSample:
    """FrameSample of a camera + LiDAR frame, prepared exactly as the datasets prepare raw drives.

    With ``with_labels`` the frame's ground truth (when it has any) becomes the LiDAR targets;
    otherwise the sample is unlabelled and only the distillation terms apply.
    """
    calib = frame.calib
    boxes, classes = _NO_BOXES, _NO_CLASSES
    has_labels = with_labels and frame.gt_labels is not None
    if has_labels:
        boxes, classes = kitti_labels_to_lidar_targets(frame.gt_labels, calib, spec.class_names,
                                                       None)
    sensor = SensorFrame(image_bgr=frame.image_bgr, calib=calib, points_lidar=frame.points,
                         boxes_lidar=boxes, classes=classes)
    return build_frame_sample(frame_id, sensor, spec, has_labels, with_lidar=True)
