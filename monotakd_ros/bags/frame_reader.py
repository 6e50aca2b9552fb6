"""Frames of a KITTI-style bag: image, P, LiDAR points and extrinsic paired by stamp.

Reads rosbag2 (mcap, sqlite3) and ROS 1 bags through rosbags' ``AnyReader``. Each image is
paired with the CameraInfo and the point cloud nearest to its stamp within ``slop_s`` (and with
the ground truth, when the bag has it). The reader streams: an image is settled once the bag's
clock has passed its stamp by ``slop_s + latency_s``. Frames that cannot be completed are
skipped and counted in ``skipped`` by reason (``no_camera_info``, ``no_point_cloud``,
``bad_image``, ``grey_image`` for mono8/mono16 frames on the colour topic, ``bad_camera_info``,
``bad_point_cloud``, and ``corrupt_<kind>`` for messages that do not deserialize). Frames
yielded without their ground truth are counted in ``no_labels``.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.serde import SerdeError

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.decoding import (
    GREY_IMAGE,
    TransformTree,
    camera_info_projection,
    grey_image_problem,
    image_to_bgr,
    point_cloud_to_array,
)
from monotakd_ros.bags.failures import bag_failures
from monotakd_ros.bags.frame_messages import stamp_ns_of
from monotakd_ros.bags.ground_truth import labels_from_detections
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import BagError, MonotakdError
from monotakd_ros.geometry.calib import CameraCalib

LOGGER = logging.getLogger(__name__)
_NS_PER_S = 1_000_000_000
# Exceptions rosbags and the decoders raise on damaged message bytes.
_DECODE_ERRORS = (AnyReaderError, SerdeError, MonotakdError, ValueError, IndexError,
                  struct.error, UnicodeDecodeError)


@dataclass
class BagFrame:
    """One synchronised camera + LiDAR frame of a bag.

    ``T_cam_from_lidar`` maps LiDAR points into the rectified reference camera that ``P``
    projects (``P @ [T_cam_from_lidar; 0 0 0 1]``), i.e. KITTI's ``R0_rect @ Tr_velo_to_cam``.
    """

    stamp_ns: int
    image_bgr: np.ndarray  # (H, W, 3) uint8
    P: np.ndarray  # (3, 4)
    points: np.ndarray  # (N, 4) float32 x, y, z, intensity in the LiDAR frame
    T_cam_from_lidar: np.ndarray  # (3, 4)
    gt_labels: KittiLabels | None

    @property
    def calib(self) -> CameraCalib:
        """The frame's calibration (R0_rect already folded into T_cam_from_lidar)."""
        return CameraCalib(P2=self.P, R0_rect=np.eye(3), T_cam_from_lidar=self.T_cam_from_lidar)


@dataclass
class _Pending:
    stamp_ns: int
    message: Any


def _nearest(items: deque[_Pending], stamp_ns: int, slop_ns: int) -> _Pending | None:
    best = min(items, key=lambda item: abs(item.stamp_ns - stamp_ns), default=None)
    if best is None or abs(best.stamp_ns - stamp_ns) > slop_ns:
        return None
    return best


def _topics_found(topics: dict[str, Any]) -> str:
    return ", ".join(f"{name} [{info.msgtype}]" for name, info in sorted(topics.items())) or "none"


def _topic_by_type(topics: dict[str, Any], wanted: str | None, default: str, msgtype: str,
                   path: Path) -> str:
    """The topic to read: ``wanted``, else the kitti2bag one, else the only one of its type."""
    found = _topics_found(topics)
    if wanted is not None:
        if wanted not in topics:
            raise BagError(f"{path}: no topic {wanted!r}; topics found: {found}")
        return wanted
    if default in topics:
        return default
    candidates = [name for name, info in topics.items() if info.msgtype == msgtype]
    if len(candidates) == 1:
        return candidates[0]
    reason = "several" if candidates else "no"
    raise BagError(f"{path}: {reason} {msgtype} topic(s) (expected {default}); "
                   f"topics found: {found}")


class BagFrameReader:
    """Iterator over the ``BagFrame``s of one bag; ``skipped`` counts what was left out."""

    def __init__(self, bag_path: Path, slop_s: float = 0.05, calib: CameraCalib | None = None,
                 image_topic: str | None = None, camera_info_topic: str | None = None,
                 point_cloud_topic: str | None = None, ground_truth_topic: str | None = None,
                 latency_s: float = 0.5) -> None:
        self.bag_path = Path(bag_path)
        if slop_s < 0 or latency_s < 0:
            raise BagError(f"slop_s and latency_s must be >= 0, got {slop_s}, {latency_s}")
        self.slop_ns = int(slop_s * _NS_PER_S)
        self.horizon_ns = int((slop_s + latency_s) * _NS_PER_S)
        self.calib = calib
        self.skipped: Counter[str] = Counter()
        self.no_labels: Counter[str] = Counter()  # "missing" or "bad" ground truth
        self.num_frames = 0
        with bag_failures(self.bag_path, "open bag"):
            self._reader = AnyReader([self.bag_path], default_typestore=monotakd_typestore())
            self._reader.open()
        try:
            with bag_failures(self.bag_path, "read the topics of the bag"):
                self._choose_topics(image_topic, camera_info_topic, point_cloud_topic,
                                    ground_truth_topic)
            with bag_failures(self.bag_path, f"read {layout.TF_STATIC_TOPIC}"):
                self._tree = self._read_static_transforms()
        except BaseException:
            self._reader.close()
            raise
        self._frames = self._generate()

    def _choose_topics(self, image: str | None, info: str | None, cloud: str | None,
                       truth: str | None) -> None:
        topics = self._reader.topics
        path = self.bag_path
        self.image_topic = _topic_by_type(topics, image, layout.IMAGE_TOPIC,
                                          "sensor_msgs/msg/Image", path)
        self.camera_info_topic = _topic_by_type(topics, info, layout.CAMERA_INFO_TOPIC,
                                                "sensor_msgs/msg/CameraInfo", path)
        self.point_cloud_topic = _topic_by_type(topics, cloud, layout.POINT_CLOUD_TOPIC,
                                                "sensor_msgs/msg/PointCloud2", path)
        # No fallback by type here: a recorded detector output is not ground truth.
        if truth is None and layout.GROUND_TRUTH_TOPIC in topics:
            truth = layout.GROUND_TRUTH_TOPIC
        elif truth is not None and truth not in topics:
            raise BagError(f"{path}: no topic {truth!r}; topics found: {_topics_found(topics)}")
        self.ground_truth_topic = truth
        self._has_tf_static = layout.TF_STATIC_TOPIC in topics
        if self.calib is None and not self._has_tf_static:
            found = ", ".join(sorted(topics))
            raise BagError(
                f"{path}: no {layout.TF_STATIC_TOPIC} topic to take the LiDAR -> camera "
                "extrinsic from; pass calib=CameraCalib(...) (e.g. read_raw_calib(date_dir)"
                f".camera_calib(2)) or record /tf_static; topics found: {found}"
            )

    def _connections(self, *topics: str | None) -> list[Any]:
        return [c for c in self._reader.connections if c.topic in topics]

    def _read_static_transforms(self) -> TransformTree:
        tree = TransformTree()
        if self.calib is not None or not self._has_tf_static:
            return tree
        for connection, _, raw in self._reader.messages(
                self._connections(layout.TF_STATIC_TOPIC)):
            try:
                tree.add_tf_message(self._reader.deserialize(raw, connection.msgtype))
            except _DECODE_ERRORS as err:
                self.skipped["corrupt_tf_static"] += 1
                LOGGER.warning("%s: skipping corrupt /tf_static message (%s)", self.bag_path, err)
        return tree

    def _T_cam_from_lidar(self, P: np.ndarray, camera_frame: str, lidar_frame: str) -> np.ndarray:
        if self.calib is not None:
            return self.calib.T_rect_from_lidar[:3]
        T_camera_tf_from_lidar = self._tree.lookup(camera_frame, lidar_frame)
        return (layout.T_ref_from_camera_tf(P) @ T_camera_tf_from_lidar)[:3]

    def __iter__(self) -> BagFrameReader:
        """The reader is its own iterator."""
        return self

    def __next__(self) -> BagFrame:
        """The next complete frame."""
        return next(self._frames)

    def close(self) -> None:
        """Release the bag (also done when iteration ends)."""
        if self._reader.stack is not None:
            with bag_failures(self.bag_path, "close"):
                self._reader.close()

    def __enter__(self) -> BagFrameReader:
        """Use as a context manager that closes the bag."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the bag."""
        self.close()

    def _generate(self) -> Iterator[BagFrame]:
        kinds = {self.image_topic: "image", self.camera_info_topic: "camera_info",
                 self.point_cloud_topic: "point_cloud", self.ground_truth_topic: "ground_truth"}
        buffers: dict[str, deque[_Pending]] = {kind: deque() for kind in kinds.values()}
        connections = self._connections(*kinds)
        try:
            with bag_failures(self.bag_path, "read messages"):
                messages = self._reader.messages(connections)
            while True:
                with bag_failures(self.bag_path, "read messages"):
                    item = next(messages, None)
                if item is None:
                    break
                connection, log_ns, raw = item
                kind = kinds[connection.topic]
                try:
                    message = self._reader.deserialize(raw, connection.msgtype)
                    stamp_ns = stamp_ns_of(message.header)
                except _DECODE_ERRORS as err:
                    self.skipped[f"corrupt_{kind}"] += 1
                    LOGGER.warning("%s: corrupt %s message at %d ns skipped (%s)",
                                   self.bag_path, connection.topic, log_ns, err)
                    continue
                buffers[kind].append(_Pending(stamp_ns, message))
                yield from self._settle(buffers, log_ns - self.horizon_ns)
            yield from self._settle(buffers, None)
        finally:
            self.close()

    def _settle(self, buffers: dict[str, deque[_Pending]], before_ns: int | None
                ) -> Iterator[BagFrame]:
        """Pair and yield the images older than ``before_ns`` (all of them when None)."""
        images = buffers["image"]
        while images and (before_ns is None or images[0].stamp_ns < before_ns):
            frame = self._pair(images.popleft(), buffers)
            if frame is not None:
                self.num_frames += 1
                yield frame
        # Older partners can no longer match any image still to come.
        oldest_ns = images[0].stamp_ns if images else before_ns
        if oldest_ns is None:
            return
        for kind in ("camera_info", "point_cloud", "ground_truth"):
            buffer = buffers[kind]
            while buffer and buffer[0].stamp_ns < oldest_ns - self.slop_ns:
                buffer.popleft()

    def _pair(self, image: _Pending, buffers: dict[str, deque[_Pending]]) -> BagFrame | None:
        info = _nearest(buffers["camera_info"], image.stamp_ns, self.slop_ns)
        cloud = _nearest(buffers["point_cloud"], image.stamp_ns, self.slop_ns)
        if info is None or cloud is None:
            self.skipped["no_camera_info" if info is None else "no_point_cloud"] += 1
            return None
        grey = grey_image_problem(image.message)
        if grey is not None:
            return self._skip(GREY_IMAGE, image.stamp_ns, BagError(grey))
        try:
            image_bgr = image_to_bgr(image.message)
        except MonotakdError as err:
            return self._skip("bad_image", image.stamp_ns, err)
        try:
            P = camera_info_projection(info.message)
        except MonotakdError as err:
            return self._skip("bad_camera_info", image.stamp_ns, err)
        try:
            points = point_cloud_to_array(cloud.message)
        except (MonotakdError, ValueError) as err:
            return self._skip("bad_point_cloud", image.stamp_ns, err)
        T_cam_from_lidar = self._T_cam_from_lidar(
            P, image.message.header.frame_id, cloud.message.header.frame_id)
        return BagFrame(stamp_ns=image.stamp_ns, image_bgr=image_bgr, P=P, points=points,
                        T_cam_from_lidar=T_cam_from_lidar,
                        gt_labels=self._ground_truth(buffers["ground_truth"], image.stamp_ns))

    def _ground_truth(self, buffer: deque[_Pending], stamp_ns: int) -> KittiLabels | None:
        if self.ground_truth_topic is None:
            return None
        truth = _nearest(buffer, stamp_ns, self.slop_ns)
        if truth is None:
            self.no_labels["missing"] += 1
            return None
        try:
            return labels_from_detections(truth.message)
        except MonotakdError as err:
            self.no_labels["bad"] += 1
            LOGGER.warning("%s: ground truth at %d ns unusable (%s)", self.bag_path, stamp_ns,
                           err)
            return None

    def _skip(self, reason: str, stamp_ns: int, err: Exception) -> None:
        self.skipped[reason] += 1
        LOGGER.warning("%s: frame at %d ns skipped, %s (%s)", self.bag_path, stamp_ns, reason, err)
        return None


def iter_bag_frames(bag_path: Path, slop_s: float = 0.05, calib: CameraCalib | None = None,
                    **topics: str | None) -> BagFrameReader:
    """Frames of a KITTI-style bag (see ``BagFrameReader``; its ``skipped`` counts the rest)."""
    return BagFrameReader(Path(bag_path), slop_s=slop_s, calib=calib, **topics)
