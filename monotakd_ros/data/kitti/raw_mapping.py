"""Leak guard: raw drives that hold held-out (val/test) object frames are not trained on.

KITTI's object frames were cut from the raw drives, so an unlabelled raw drive can contain the
very frames a model is evaluated on. The object devkit says where each training frame came
from, in two files:

- ``train_mapping.txt``: one line per raw source frame, ``<date> <drive folder> <frame>``, e.g.
  ``2011_09_26 2011_09_26_drive_0005_sync 0000000109``;
- ``train_rand.txt``: one line of comma-separated 1-based line numbers of that file; object
  training frame ``i`` (``training/image_2/00000i.png``) is line ``rand[i]``.

Without an order file, line ``i + 1`` of the mapping file is object frame ``i``. The held-out
frames are those of the given ImageSets splits (names or ``.txt`` split files). A drive is named
by the ``YYYY_MM_DD_drive_NNNN`` part of its folder or bag name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monotakd_ros.configuration import check_fields, described
from monotakd_ros.data.kitti.object_dataset import read_image_set
from monotakd_ros.errors import ConfigError, DatasetError

LOG = logging.getLogger(__name__)
_DRIVE_NAME = re.compile(r"(\d{4}_\d{2}_\d{2}_drive_\d{4})")
LeakAction = Literal["refuse", "skip"]


@dataclass(frozen=True)
class LeakGuardConfig:
    """Which raw drives to keep out of training because they hold held-out object frames."""

    # Paths as strings, "" = not set: ROS parameters cannot be null, even nested ones.
    mapping_file: str = described(
        "", help="KITTI devkit train_mapping.txt (object frame -> raw drive); empty: off")
    order_file: str = described(
        "", help="KITTI devkit train_rand.txt; empty: mapping line i + 1 is object frame i")
    held_out_splits: tuple[str, ...] = described(
        ("val",), help="ImageSets names or split files of held-out object training frames")
    splits_root: str = described(
        "", help="object set root whose ImageSets hold the split names; empty: the training "
        "data root")
    on_leak: LeakAction = described("refuse", help="refuse: stop with an error; skip: leave "
                                    "such drives out and log how many")

    def __post_init__(self) -> None:
        check_fields(self, "leak_guard")
        if self.order_file and not self.mapping_file:
            raise ConfigError("leak_guard.order_file needs leak_guard.mapping_file")


def drive_name_of(path: Path | str) -> str | None:
    """``YYYY_MM_DD_drive_NNNN`` found in a drive folder or bag name (last match), or None."""
    matches = _DRIVE_NAME.findall(Path(path).name) or _DRIVE_NAME.findall(str(path))
    return matches[-1] if matches else None


def _mapping_lines(path: Path) -> list[str]:
    """Drive names of the mapping file's lines, in order."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read the raw mapping file ({err})") from err
    drives = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        name = drive_name_of(fields[1]) if len(fields) == 3 else None
        if name is None or not fields[2].isdigit():
            raise DatasetError(f"{path}:{number}: expected '<date> <date>_drive_NNNN_sync "
                               f"<frame>', got {line.strip()!r}")
        drives.append(name)
    return drives


def _order(path: Path, num_lines: int) -> list[int]:
    """0-based mapping line of each object frame, from a devkit ``train_rand.txt``."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read the order file ({err})") from err
    order = []
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        if not item.strip().isdigit() or not 1 <= int(item) <= num_lines:
            raise DatasetError(f"{path}: entry {item.strip()!r} is not a line number of the "
                               f"mapping file (1..{num_lines})")
        order.append(int(item) - 1)
    return order


def object_frame_drives(mapping_file: Path, order_file: Path | None = None) -> dict[str, str]:
    """Object training frame id (``000123``) -> raw drive name (``2011_09_26_drive_0005``)."""
    drives = _mapping_lines(mapping_file)
    order = _order(order_file, len(drives)) if order_file is not None else range(len(drives))
    return {f"{frame:06d}": drives[line] for frame, line in enumerate(order)}


def held_out_frame_ids(guard: LeakGuardConfig, data_root: Path | None) -> set[str]:
    """Frame ids of every held-out split (ImageSets names under the splits root, or files)."""
    root = Path(guard.splits_root) if guard.splits_root else data_root
    ids: set[str] = set()
    for split in guard.held_out_splits:
        if split.endswith(".txt"):
            path = Path(split)
        elif root is None:
            raise ConfigError(f"leak_guard.held_out_splits: {split!r} is a split name but no "
                              "object set root is known; set leak_guard.splits_root")
        else:
            path = Path(root) / "ImageSets" / f"{split}.txt"
        if not path.is_file():
            raise DatasetError(f"leak_guard.held_out_splits: {path} does not exist")
        ids.update(read_image_set(path))
    return ids


def guarded_drives(drives: Sequence[Path], guard: LeakGuardConfig,
                   data_root: Path | None) -> list[Path]:
    """``drives`` without those that hold a held-out frame; refused (DatasetError) by default."""
    if not guard.mapping_file or not drives:
        return list(drives)
    frame_drives = object_frame_drives(Path(guard.mapping_file),
                                       Path(guard.order_file) if guard.order_file else None)
    first_frame: dict[str, str] = {}
    for frame_id in sorted(held_out_frame_ids(guard, data_root)):
        if frame_id in frame_drives:
            first_frame.setdefault(frame_drives[frame_id], frame_id)
    kept, leaking = [], []
    for drive in drives:
        name = drive_name_of(drive)
        if name is None:
            raise DatasetError(f"{drive}: the leak guard cannot tell which KITTI raw drive this "
                               "is (no YYYY_MM_DD_drive_NNNN in its name)")
        if name in first_frame:
            leaking.append((drive, name, first_frame[name]))
        else:
            kept.append(drive)
    if leaking and guard.on_leak == "refuse":
        drive, name, frame_id = leaking[0]
        raise DatasetError(
            f"{drive}: raw drive {name} holds held-out object frame {frame_id} (splits "
            f"{', '.join(guard.held_out_splits)}; {len(leaking)} of {len(drives)} drives leak); "
            "remove it, or set leak_guard.on_leak: skip")
    if leaking:
        LOG.warning("leak guard: skipped %d of %d raw drives holding held-out frames (%s)",
                    len(leaking), len(drives),
                    ", ".join(f"{name}: {frame}" for _, name, frame in leaking[:5]))
    return kept
