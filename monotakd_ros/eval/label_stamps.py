"""Ground truth from a folder of label_2 files, stamped with a drive's ``timestamps.txt``.

File ``<index>.txt`` (any zero padding, e.g. ``0000000042.txt`` or ``000042.txt``) holds the
labels of image ``index``, whose stamp is line ``index`` of the timestamps file. Frames without
a label file have no ground truth and are not evaluated.
"""

from __future__ import annotations

from pathlib import Path

from monotakd_ros.data.kitti.labels import KittiLabels, read_label_file
from monotakd_ros.data.kitti.raw_drive import read_timestamps
from monotakd_ros.errors import DatasetError


def stamped_label_files(label_dir: Path, timestamps_path: Path) -> dict[int, KittiLabels]:
    """``{stamp_ns: labels}`` of every ``<index>.txt`` in ``label_dir``."""
    label_dir, timestamps_path = Path(label_dir), Path(timestamps_path)
    if not label_dir.is_dir():
        raise DatasetError(f"ground truth label folder {label_dir} does not exist")
    stamps_ns = read_timestamps(timestamps_path)
    frames: dict[int, KittiLabels] = {}
    for path in sorted(label_dir.glob("*.txt")):
        if not path.stem.isdigit():
            raise DatasetError(f"{path}: label file names must be frame indices like 0000000042")
        index = int(path.stem)
        if index >= len(stamps_ns):
            raise DatasetError(f"{path}: frame {index} is beyond the {len(stamps_ns)} stamps of "
                               f"{timestamps_path}")
        frames[stamps_ns[index]] = read_label_file(path)
    if not frames:
        raise DatasetError(f"ground truth label folder {label_dir} holds no *.txt files")
    return frames
