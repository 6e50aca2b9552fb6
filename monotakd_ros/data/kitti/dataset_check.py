"""Up-front check of a KITTI object split: every frame's files exist and parse before training.

Without it, one calibration file lacking ``P2`` or one malformed label line is found by a
loader worker, possibly hours into a run. The check reads every calibration and label file
(a few milliseconds per frame) and only stats images and scans; it reports every bad frame at
once. A progress bar is shown when the split is large.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tqdm import tqdm

from monotakd_ros.data.kitti.calib import read_object_calib
from monotakd_ros.data.kitti.labels import read_label_file
from monotakd_ros.data.kitti.object_dataset import (
    CALIB_DIR,
    LABEL_DIR,
    VELODYNE_DIR,
    KittiObjectDataset,
)
from monotakd_ros.errors import DatasetError, MonotakdError

LOG = logging.getLogger(__name__)

PROGRESS_MIN_FRAMES = 500  # smaller splits are checked without a progress bar
_BYTES_PER_POINT = 16  # velodyne scans: 4 float32 per point
_REPORTED_PROBLEMS = 10  # problems spelled out in the error; the rest are counted


def frame_problems(kitti: KittiObjectDataset, frame_id: str, with_labels: bool,
                   with_lidar: bool) -> list[str]:
    """What is wrong with one frame's files (empty when the frame is usable)."""
    try:
        image = kitti.image_path(frame_id)  # also refuses ids that are not plain file names
    except MonotakdError as err:
        return [str(err)]
    problems = [] if image.is_file() else [f"{image}: image of frame {frame_id!r} does not exist"]
    try:
        read_object_calib(kitti.split_dir / CALIB_DIR / f"{frame_id}.txt")
    except MonotakdError as err:
        problems.append(str(err))
    if with_lidar:
        scan = kitti.split_dir / VELODYNE_DIR / f"{frame_id}.bin"
        if not scan.is_file():
            problems.append(f"{scan}: LiDAR scan of frame {frame_id!r} does not exist")
        elif scan.stat().st_size % _BYTES_PER_POINT:
            problems.append(f"{scan}: size {scan.stat().st_size} bytes is not a multiple of "
                            f"{_BYTES_PER_POINT} (4 float32 per point)")
    if with_labels:
        try:
            read_label_file(kitti.split_dir / LABEL_DIR / f"{frame_id}.txt")
        except MonotakdError as err:
            problems.append(str(err))
    return problems


def check_object_frames(kitti: KittiObjectDataset, frame_ids: Sequence[str],
                        with_labels: bool = True, with_lidar: bool = True) -> None:
    """Raise DatasetError listing the bad frames when any frame's files are missing or invalid.

    Calibrations (every matrix, P2 included) and labels are parsed; images and scans are
    checked for existence (and scans for a whole number of points) without being decoded.
    """
    problems: list[str] = []
    bad_frames = 0
    frames = tqdm(frame_ids, desc=f"checking {kitti.split_dir}", unit="frame", leave=False,
                  disable=len(frame_ids) < PROGRESS_MIN_FRAMES)
    for frame_id in frames:
        found = frame_problems(kitti, frame_id, with_labels, with_lidar)
        bad_frames += bool(found)
        problems.extend(found)
    if problems:
        shown = "\n  ".join(problems[:_REPORTED_PROBLEMS])
        more = len(problems) - _REPORTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise DatasetError(f"{kitti.split_dir}: {bad_frames} of {len(frame_ids)} frames are "
                           f"unusable (found before training):\n  {shown}{tail}")
    LOG.debug("checked %d frames of %s", len(frame_ids), kitti.split_dir)
