"""KITTI raw synced drive -> rosbag2 (mcap or sqlite3) in the kitti2bag layout.

Topics, frames and the ``camera_color_left`` convention are described in ``kitti_layout``.
Every message is logged at its header stamp. The bag is written into a hidden temporary sibling
folder and renamed into place only when complete, so an interrupted conversion never leaves a
bag that looks finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.rosbag2.errors import WriterError

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.frame_messages import (
    camera_info_message,
    image_message,
    imu_message,
    nav_sat_fix_message,
    oxts_pose_in_world,
    point_cloud_message,
    tf_message,
    transform_stamped_message,
)
from monotakd_ros.bags.ground_truth import DETECTIONS_TYPE, detections_message
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.raw_drive import CAMERA_INDEX, RawDrive
from monotakd_ros.errors import BagError

LOGGER = logging.getLogger(__name__)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9

# (topic, message type, offered QoS)
_TOPICS: tuple[tuple[str, str, Any], ...] = (
    (layout.TF_STATIC_TOPIC, "tf2_msgs/msg/TFMessage", layout.TF_STATIC_QOS),
    (layout.IMAGE_TOPIC, "sensor_msgs/msg/Image", layout.SENSOR_QOS),
    (layout.CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", layout.SENSOR_QOS),
    (layout.POINT_CLOUD_TOPIC, "sensor_msgs/msg/PointCloud2", layout.SENSOR_QOS),
    (layout.IMU_TOPIC, "sensor_msgs/msg/Imu", layout.SENSOR_QOS),
    (layout.GPS_FIX_TOPIC, "sensor_msgs/msg/NavSatFix", layout.SENSOR_QOS),
    (layout.TF_TOPIC, "tf2_msgs/msg/TFMessage", layout.SENSOR_QOS),
)


@dataclass(frozen=True)
class BagSummary:
    """What a conversion wrote."""

    path: Path
    storage: str
    num_frames: int
    start_ns: int
    end_ns: int
    has_ground_truth: bool
    message_counts: dict[str, int] = field(default_factory=dict)  # topic -> messages

    @property
    def duration_s(self) -> float:
        """Time between the first and the last message."""
        return (self.end_ns - self.start_ns) / 1e9


def _frame_messages(drive: RawDrive, index: int, store: Any, reference_lat_deg: float,
                    with_ground_truth: bool) -> list[tuple[str, int, Any]]:
    """(topic, stamp_ns, message) of frame ``index``, sorted by stamp."""
    P = drive.calib.camera_calib(cam=CAMERA_INDEX).P2
    image = drive.image(index)
    oxts = drive.oxts(index)
    image_ns = drive.image_stamps_ns[index]
    velo_ns = drive.velodyne_stamps_ns[index]
    oxts_ns = drive.oxts_stamps_ns[index]
    pose = oxts_pose_in_world(oxts, reference_lat_deg)
    world_to_base = transform_stamped_message(store, pose, layout.WORLD_FRAME,
                                              layout.BASE_FRAME, oxts_ns)
    messages = [
        (layout.IMAGE_TOPIC, image_ns,
         image_message(store, image, image_ns, layout.CAMERA_FRAME)),
        (layout.CAMERA_INFO_TOPIC, image_ns,
         camera_info_message(store, P, image.shape[:2], image_ns, layout.CAMERA_FRAME)),
        (layout.POINT_CLOUD_TOPIC, velo_ns,
         point_cloud_message(store, drive.points(index), velo_ns, layout.VELO_FRAME)),
        (layout.IMU_TOPIC, oxts_ns, imu_message(store, oxts, oxts_ns, layout.IMU_FRAME)),
        (layout.GPS_FIX_TOPIC, oxts_ns,
         nav_sat_fix_message(store, oxts, oxts_ns, layout.IMU_FRAME)),
        (layout.TF_TOPIC, oxts_ns, tf_message(store, [world_to_base])),
    ]
    if with_ground_truth:
        labels = drive.frame_labels(index)
        messages.append((layout.GROUND_TRUTH_TOPIC, image_ns,
                         detections_message(store, labels, image_ns, layout.CAMERA_FRAME)))
    return sorted(messages, key=lambda item: item[1])


def _write_bag(drive: RawDrive, bag_dir: Path, storage: str, compress: bool,
               on_frame: Callable[[int], None] | None) -> Counter[str]:
    store = monotakd_typestore()
    writer = Writer(bag_dir, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    if compress:
        # mcap compresses whole chunks; sqlite3 can only compress message by message.
        mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
        writer.set_compression(mode, CompressionFormat.ZSTD)
    topics = list(_TOPICS)
    with_ground_truth = drive.has_tracklets
    if with_ground_truth:
        topics.append((layout.GROUND_TRUTH_TOPIC, DETECTIONS_TYPE, layout.SENSOR_QOS))
    counts: Counter[str] = Counter()
    with writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=store,
                                         offered_qos_profiles=[qos])
            for topic, msgtype, qos in topics
        }

        def write(topic: str, stamp_ns: int, message: Any) -> None:
            data = store.serialize_cdr(message, message.__msgtype__)
            writer.write(connections[topic], stamp_ns, data)
            counts[topic] += 1

        first_ns = min(drive.image_stamps_ns[:1] + drive.velodyne_stamps_ns[:1]
                       + drive.oxts_stamps_ns[:1])
        rig = [transform_stamped_message(store, T, parent, child, first_ns)
               for parent, child, T in layout.static_transforms(drive.calib)]
        write(layout.TF_STATIC_TOPIC, first_ns, tf_message(store, rig))
        reference_lat_deg = drive.oxts(0).lat
        for index in range(drive.num_frames):
            for topic, stamp_ns, message in _frame_messages(
                    drive, index, store, reference_lat_deg, with_ground_truth):
                write(topic, stamp_ns, message)
            if on_frame is not None:
                on_frame(index)
    return counts


def convert_drive_to_bag(
    drive_dir: Path,
    out_path: Path,
    storage: str = "mcap",
    compress: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> BagSummary:
    """Convert one synced KITTI raw drive into a new rosbag2 folder ``out_path``.

    ``on_frame(index)`` is called after each frame (progress bars). Ground truth is written on
    ``/kitti/ground_truth/detections`` when the drive has ``tracklet_labels.xml``.
    """
    if storage not in STORAGES:
        raise BagError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    out_path = Path(out_path)
    if out_path.exists():
        raise BagError(f"{out_path}: exists already, not overwriting")
    drive = RawDrive(Path(drive_dir))
    if drive.num_frames == 0:
        raise BagError(f"{drive.drive_dir}: drive has no frames to convert")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.partial-", dir=out_path.parent))
    try:
        # The bag folder keeps its final name inside the staging folder, so the storage file
        # (named after the folder) needs no renaming.
        staged = staging / out_path.name
        try:
            counts = _write_bag(drive, staged, storage, compress, on_frame)
        except WriterError as err:
            raise BagError(f"{out_path}: rosbags could not write the bag ({err})") from err
        os.rename(staged, out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stamps = drive.image_stamps_ns + drive.velodyne_stamps_ns + drive.oxts_stamps_ns
    summary = BagSummary(
        path=out_path, storage=storage, num_frames=drive.num_frames, start_ns=min(stamps),
        end_ns=max(stamps), has_ground_truth=drive.has_tracklets, message_counts=dict(counts),
    )
    LOGGER.info("wrote %s: %d frames, %d messages", out_path, summary.num_frames,
                sum(counts.values()))
    return summary
