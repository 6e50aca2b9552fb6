"""Console commands: ``monotakd-kitti2bag`` (KITTI raw drive -> rosbag2) and ROS 1 conversion."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from monotakd_ros.bags.kitti2bag import STORAGES, convert_drive_to_bag
from monotakd_ros.bags.ros1 import convert_ros1_bag
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.errors import MonotakdError

LOGGER = logging.getLogger("monotakd_ros.bags.cli")


def _kitti2bag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monotakd-kitti2bag",
        description="Convert a synced KITTI raw drive into a ROS 2 bag (kitti2bag layout, "
                    "ground truth from tracklet_labels.xml when present).",
    )
    parser.add_argument("drive_dir", type=Path,
                        help="<root>/<date>/<date>_drive_XXXX_sync (calibration in <date>/)")
    parser.add_argument("--out", type=Path, required=True, help="new rosbag2 folder to create")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="mcap",
                        help="rosbag2 storage plugin (default: mcap)")
    parser.add_argument("--compress", action="store_true",
                        help="zstd: mcap chunks, or each message for sqlite3")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def kitti2bag_main(argv: list[str] | None = None) -> int:
    """Entry point of ``monotakd-kitti2bag``; returns the process exit status."""
    args = _kitti2bag_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        total = RawDrive(args.drive_dir).num_frames
        with tqdm(total=total, unit="frame", disable=args.quiet, desc="kitti2bag") as bar:
            summary = convert_drive_to_bag(args.drive_dir, args.out, storage=args.storage,
                                           compress=args.compress,
                                           on_frame=lambda _index: bar.update(1))
    except MonotakdError as err:
        LOGGER.error("%s", err)
        return 1
    except KeyboardInterrupt:
        LOGGER.error("interrupted; no bag was written to %s", args.out)
        return 130
    truth = "with" if summary.has_ground_truth else "without"
    print(f"{summary.path}: {summary.num_frames} frames, {summary.duration_s:.2f} s, "
          f"{sum(summary.message_counts.values())} messages ({summary.storage}, {truth} "
          "ground truth)")
    return 0


def ros1_to_ros2_main(argv: list[str] | None = None) -> int:
    """Convert a ROS 1 kitti2bag bag into rosbag2 (Kilted types, latched /tf_static)."""
    parser = argparse.ArgumentParser(prog="monotakd-bag-ros1-to-ros2",
                                     description=ros1_to_ros2_main.__doc__)
    parser.add_argument("src", type=Path, help="ROS 1 .bag file")
    parser.add_argument("--out", type=Path, required=True, help="new rosbag2 folder to create")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        convert_ros1_bag(args.src, args.out, storage=args.storage)
    except MonotakdError as err:
        LOGGER.error("%s", err)
        return 1
    print(f"{args.out}: converted from {args.src}")
    return 0


if __name__ == "__main__":
    sys.exit(kitti2bag_main())
