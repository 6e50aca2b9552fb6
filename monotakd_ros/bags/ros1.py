"""ROS 1 (kitti2bag) bags -> rosbag2, as ``rosbags-convert --dst-typestore ros2_kilted`` does.

Messages are migrated to the ROS 2 Kilted definitions (CameraInfo's ``D K R P`` become
``d k r p``, headers lose ``seq``). One difference: kitti2bag does not latch ``/tf_static``, and
rosbags-convert only offers latched topics as transient_local, so ``/tf_static`` is marked
latched here; ``ros2 bag play`` then re-offers it with transient_local durability.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rosbags.convert.converter import create_connections_converters
from rosbags.highlevel import AnyReader
from rosbags.interfaces import ConnectionExtRosbag1
from rosbags.rosbag2 import Writer

from monotakd_ros.bags.failures import bag_failures
from monotakd_ros.bags.kitti2bag import BAG_VERSION, STORAGES
from monotakd_ros.bags.kitti_layout import TF_STATIC_TOPIC
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.errors import BagError


def _write_converted(src: Path, bag_dir: Path, storage: str) -> None:
    with AnyReader([src]) as reader:
        if reader.is2:
            raise BagError(f"{src}: is a ROS 2 bag already; expected a ROS 1 .bag file")
        latched = [
            connection._replace(ext=ConnectionExtRosbag1(connection.ext.callerid, 1))
            if connection.topic == TF_STATIC_TOPIC else connection
            for connection in reader.connections
        ]
        with Writer(bag_dir, version=BAG_VERSION, storage_plugin=STORAGES[storage]) as writer:
            connmap, convmap = create_connections_converters(
                latched, monotakd_typestore(), reader, writer)
            for connection, timestamp, data in reader.messages(reader.connections):
                writer.write(connmap[(connection.id, connection.owner)], timestamp,
                             convmap[connection.msgtype](data))


def convert_ros1_bag(src: Path, dst: Path, storage: str = "mcap") -> Path:
    """Convert ROS 1 bag ``src`` into the new rosbag2 folder ``dst`` and return ``dst``."""
    src, dst = Path(src), Path(dst)
    if storage not in STORAGES:
        raise BagError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    if not src.is_file():
        raise BagError(f"{src}: ROS 1 bag file not found")
    if dst.exists():
        raise BagError(f"{dst}: exists already, not overwriting")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        staged = staging / dst.name
        # Any reader failure (a gzipped file, truncated records) names the source bag.
        with bag_failures(f"{src} -> {dst}", "convert the ROS 1 bag"):
            _write_converted(src, staged, storage)
        os.rename(staged, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst
