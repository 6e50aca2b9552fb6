"""Live messages -> ``BagFrame``: image, P, points and the LiDAR -> camera extrinsic.

The extrinsic comes from a configured calibration or from ``/tf_static`` exactly as the bag
reader derives it (kitti2bag's ``camera_color_left`` frame is shifted from the reference camera
that P projects; see ``bags.kitti_layout``). Works on rclpy and rosbags messages alike.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.decoding import (
    GREY_IMAGE,
    TransformTree,
    camera_info_projection,
    grey_image_problem,
    point_cloud_to_array,
)
from monotakd_ros.bags.frame_reader import BagFrame
from monotakd_ros.errors import BagError, MonotakdError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.ros.image_conversion import image_msg_to_bgr8
from monotakd_ros.ros.sensor_sync import SyncedFrame


@dataclass(frozen=True)
class Rejection:
    """Why a synced frame cannot be used: the skip counter to increment and the details."""

    reason: str
    detail: str


def missing_extrinsic_hint(camera_frame: str, lidar_frame: str) -> str:
    """What to provide when no LiDAR -> camera transform is known."""
    return (f"no transform from {lidar_frame!r} to {camera_frame!r} on /tf_static; replay "
            "/tf_static with transient_local durability (ros2 bag play --qos-profile-overrides"
            "-path, or monotakd_replay) or set the calib_file parameter to a KITTI object calib "
            "file or a raw date folder")


class SensorFrameBuilder:
    """Turns a SyncedFrame into a BagFrame; static transforms may arrive on another thread."""

    def __init__(self, calib: CameraCalib | None = None) -> None:
        self.calib = calib
        self._tree = TransformTree()
        self._lock = threading.Lock()
        self.static_transforms = 0

    def add_tf_static(self, message: Any) -> None:
        """Record the transforms of a tf2_msgs/TFMessage from /tf_static."""
        with self._lock:
            self._tree.add_tf_message(message)
            self.static_transforms += len(message.transforms)

    def T_cam_from_lidar(self, P: np.ndarray, camera_frame: str,
                         lidar_frame: str) -> np.ndarray | Rejection:
        """(3, 4) LiDAR -> rectified reference camera (the one P projects), if known."""
        if self.calib is not None:
            return self.calib.T_rect_from_lidar[:3]
        with self._lock:
            try:
                T_camera_tf_from_lidar = self._tree.lookup(camera_frame, lidar_frame)
            except BagError:
                return Rejection("no_extrinsic", missing_extrinsic_hint(camera_frame, lidar_frame))
        return (layout.T_ref_from_camera_tf(P) @ T_camera_tf_from_lidar)[:3]

    def build(self, synced: SyncedFrame) -> BagFrame | Rejection:
        """The frame as numpy arrays, or why it cannot be used."""
        grey = grey_image_problem(synced.image)
        if grey is not None:
            return Rejection(GREY_IMAGE, grey)
        try:
            image_bgr = image_msg_to_bgr8(synced.image)
        except MonotakdError as err:
            return Rejection("bad_image", str(err))
        try:
            P = camera_info_projection(synced.camera_info)
        except MonotakdError as err:
            return Rejection("bad_camera_info", str(err))
        try:
            points = point_cloud_to_array(synced.point_cloud)
        except (MonotakdError, ValueError) as err:
            return Rejection("bad_point_cloud", str(err))
        T = self.T_cam_from_lidar(P, synced.image.header.frame_id,
                                  synced.point_cloud.header.frame_id)
        if isinstance(T, Rejection):
            return T
        return BagFrame(stamp_ns=synced.stamp_ns, image_bgr=image_bgr, P=P, points=points,
                        T_cam_from_lidar=T, gt_labels=None)
