"""KITTI raw synced drives on disk: timestamps, images, Velodyne scans, OXTS and tracklets.

Layout (as unpacked from the KITTI raw downloads)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <root>/<date>/<date>_drive_XXXX_sync/
        image_02/timestamps.txt, image_02/data/0000000000.png
        velodyne_points/timestamps.txt, velodyne_points/data/0000000000.bin
        oxts/timestamps.txt, oxts/data/0000000000.txt
        tracklet_labels.xml                       (labelled drives only)

Timestamps are integer nanoseconds since the Unix epoch; KITTI writes them as local wall-clock
text without a zone, which is read and written here as UTC so that the text round-trips exactly.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from monotakd_ros.data.kitti.calib import RawCalib, read_raw_calib, write_raw_calib
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.oxts import (
    OXTS_FIELD_NAMES,
    OxtsPacket,
    read_oxts_file,
    write_oxts_file,
)
from monotakd_ros.data.kitti.tracklets import (
    Tracklet,
    read_tracklets,
    tracklets_to_frame_labels,
    write_tracklets,
)
from monotakd_ros.errors import DatasetError, KittiFormatError

IMAGE_DIR = "image_02"
VELODYNE_DIR = "velodyne_points"
OXTS_DIR = "oxts"
TRACKLETS_FILE = "tracklet_labels.xml"
CAMERA_INDEX = 2  # the left colour camera

_STAMP_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?$")
_NS_PER_S = 1_000_000_000


def parse_stamp_ns(text: str, where: str = "<timestamp>") -> int:
    """``2011-09-26 13:02:25.964389445`` -> nanoseconds since the epoch (read as UTC)."""
    match = _STAMP_PATTERN.match(text.strip())
    if match is None:
        raise KittiFormatError(
            f"{where}: timestamp {text.strip()!r} is not 'YYYY-MM-DD HH:MM:SS.fffffffff'"
        )
    try:
        wall = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    except ValueError as err:
        raise KittiFormatError(f"{where}: invalid date/time {match.group(1)!r}") from err
    fraction = (match.group(2) or "").ljust(9, "0")
    return calendar.timegm(wall.timetuple()) * _NS_PER_S + int(fraction or 0)


def format_stamp_ns(stamp_ns: int) -> str:
    """Nanoseconds since the epoch -> KITTI text with all nine fractional digits."""
    seconds, nanoseconds = divmod(int(stamp_ns), _NS_PER_S)
    wall = datetime.fromtimestamp(seconds, UTC)
    return f"{wall:%Y-%m-%d %H:%M:%S}.{nanoseconds:09d}"


def read_timestamps(path: Path) -> list[int]:
    """Read a KITTI ``timestamps.txt`` as integer nanoseconds since the epoch."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read timestamps ({err.strerror})") from err
    return [
        parse_stamp_ns(line, where=f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def write_timestamps(path: Path, stamps_ns: list[int]) -> None:
    """Write a KITTI ``timestamps.txt``, one line per stamp."""
    Path(path).write_text("".join(format_stamp_ns(s) + "\n" for s in stamps_ns))


def drive_dir_name(date: str, drive: int) -> str:
    """``2011_09_26``, 5 -> ``2011_09_26_drive_0005_sync``."""
    return f"{date}_drive_{drive:04d}_sync"


def _frame_name(index: int, suffix: str) -> str:
    return f"{index:010d}{suffix}"


class RawDrive:
    """Read access to one synced KITTI raw drive; every frame has all three sensors."""

    def __init__(self, drive_dir: Path) -> None:
        self.drive_dir = Path(drive_dir)
        self.date_dir = self.drive_dir.parent
        if not self.drive_dir.is_dir():
            raise DatasetError(f"{self.drive_dir}: KITTI raw drive directory does not exist")
        self.image_stamps_ns = read_timestamps(self._required(IMAGE_DIR, "timestamps.txt"))
        self.velodyne_stamps_ns = read_timestamps(
            self._required(VELODYNE_DIR, "timestamps.txt")
        )
        self.oxts_stamps_ns = read_timestamps(self._required(OXTS_DIR, "timestamps.txt"))
        self.num_frames = len(self.image_stamps_ns)
        for name, stamps in (("velodyne", self.velodyne_stamps_ns), ("oxts", self.oxts_stamps_ns)):
            if len(stamps) != self.num_frames:
                raise DatasetError(
                    f"{self.drive_dir}: {name} has {len(stamps)} timestamps but {IMAGE_DIR} "
                    f"has {self.num_frames}; a synced drive needs equal counts"
                )
        for folder, suffix in ((IMAGE_DIR, ".png"), (VELODYNE_DIR, ".bin"), (OXTS_DIR, ".txt")):
            self._check_data_files(folder, suffix)

    def _required(self, *parts: str) -> Path:
        path = self.drive_dir.joinpath(*parts)
        if not path.is_file():
            raise DatasetError(f"{path}: missing file of KITTI raw drive {self.drive_dir.name}")
        return path

    def _check_data_files(self, folder: str, suffix: str) -> None:
        data_dir = self.drive_dir / folder / "data"
        present = {p.name for p in data_dir.glob(f"*{suffix}")} if data_dir.is_dir() else set()
        for index in range(self.num_frames):
            name = _frame_name(index, suffix)
            if name not in present:
                raise DatasetError(
                    f"{data_dir / name}: missing frame {index} of {self.num_frames} "
                    f"in KITTI raw drive {self.drive_dir.name}"
                )

    def _frame_path(self, folder: str, index: int, suffix: str) -> Path:
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range [0, {self.num_frames})")
        return self.drive_dir / folder / "data" / _frame_name(index, suffix)

    def image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR image of the left colour camera."""
        path = self._frame_path(IMAGE_DIR, index, ".png")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{path}: unreadable or missing image")
        return image

    def points(self, index: int) -> np.ndarray:
        """(N, 4) float32 Velodyne points x, y, z, reflectance in the velo_link frame."""
        path = self._frame_path(VELODYNE_DIR, index, ".bin")
        try:
            raw = np.fromfile(path, dtype="<f4")
        except OSError as err:
            raise DatasetError(f"{path}: cannot read Velodyne scan ({err.strerror})") from err
        if raw.size % 4:
            raise KittiFormatError(f"{path}: {raw.size} floats is not a multiple of 4")
        return raw.reshape(-1, 4).astype(np.float32, copy=False)

    def oxts(self, index: int) -> OxtsPacket:
        """OXTS reading of frame ``index``."""
        return read_oxts_file(self._frame_path(OXTS_DIR, index, ".txt"))

    @cached_property
    def calib(self) -> RawCalib:
        """Calibration of the drive's date folder."""
        return read_raw_calib(self.date_dir)

    @cached_property
    def image_hw(self) -> tuple[int, int]:
        """(height, width) of the camera images, taken from the first frame."""
        if self.num_frames == 0:
            raise DatasetError(f"{self.drive_dir}: drive has no frames")
        height, width = self.image(0).shape[:2]
        return int(height), int(width)

    @property
    def has_tracklets(self) -> bool:
        """True when the drive carries ``tracklet_labels.xml``."""
        return (self.drive_dir / TRACKLETS_FILE).is_file()

    def tracklets(self) -> list[Tracklet]:
        """Tracklets of the drive, or an empty list for an unlabelled drive."""
        if not self.has_tracklets:
            return []
        return read_tracklets(self.drive_dir / TRACKLETS_FILE)

    @cached_property
    def _frame_labels(self) -> list[KittiLabels]:
        if not self.has_tracklets:
            raise DatasetError(
                f"{self.drive_dir / TRACKLETS_FILE}: missing; drive {self.drive_dir.name} "
                "has no ground truth"
            )
        calib = self.calib.camera_calib(cam=CAMERA_INDEX)
        return tracklets_to_frame_labels(self.tracklets(), self.num_frames, calib, self.image_hw)

    def frame_labels(self, index: int) -> KittiLabels:
        """Camera-frame KITTI labels of frame ``index`` derived from the tracklets."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range [0, {self.num_frames})")
        return self._frame_labels[index]


class RawDriveWriter:
    """Writes a synced KITTI raw drive frame by frame; ``close`` writes the timestamp files."""

    def __init__(self, root: Path, date: str, drive: int) -> None:
        if not re.fullmatch(r"\d{4}_\d{2}_\d{2}", date):
            raise DatasetError(f"date {date!r} must look like 'YYYY_MM_DD'")
        self.date_dir = Path(root) / date
        self.drive_dir = self.date_dir / drive_dir_name(date, drive)
        if self.drive_dir.exists():
            raise DatasetError(f"{self.drive_dir}: drive exists already, not overwriting")
        for folder in (IMAGE_DIR, VELODYNE_DIR, OXTS_DIR):
            (self.drive_dir / folder / "data").mkdir(parents=True)
        self.image_stamps_ns: list[int] = []
        self.velodyne_stamps_ns: list[int] = []
        self.oxts_stamps_ns: list[int] = []
        self._closed = False

    @property
    def num_frames(self) -> int:
        """Frames added so far."""
        return len(self.image_stamps_ns)

    def write_calib(self, raw_calib: RawCalib) -> None:
        """Write the three calibration files into the date folder."""
        write_raw_calib(self.date_dir, raw_calib)

    def add_frame(
        self,
        image_bgr: np.ndarray,
        points: np.ndarray,
        oxts: OxtsPacket,
        image_stamp_ns: int,
        velodyne_stamp_ns: int,
        oxts_stamp_ns: int | None = None,
    ) -> int:
        """Append one frame and return its index; OXTS defaults to the image stamp."""
        if self._closed:
            raise DatasetError(f"{self.drive_dir}: writer is closed")
        image_bgr = np.asarray(image_bgr)
        if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise DatasetError(
                f"image must be (H, W, 3) uint8 BGR, got {image_bgr.shape} {image_bgr.dtype}"
            )
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 4:
            raise DatasetError(f"points must be (N, 4) x, y, z, reflectance, got {points.shape}")
        index = self.num_frames
        image_path = self.drive_dir / IMAGE_DIR / "data" / _frame_name(index, ".png")
        if not cv2.imwrite(str(image_path), image_bgr):
            raise DatasetError(f"{image_path}: OpenCV could not write the image")
        points_path = self.drive_dir / VELODYNE_DIR / "data" / _frame_name(index, ".bin")
        points.astype("<f4").tofile(points_path)
        write_oxts_file(self.drive_dir / OXTS_DIR / "data" / _frame_name(index, ".txt"), oxts)
        self.image_stamps_ns.append(int(image_stamp_ns))
        self.velodyne_stamps_ns.append(int(velodyne_stamp_ns))
        self.oxts_stamps_ns.append(int(image_stamp_ns if oxts_stamp_ns is None else oxts_stamp_ns))
        return index

    def write_tracklets(self, tracklets: list[Tracklet]) -> None:
        """Write ``tracklet_labels.xml`` for the drive."""
        write_tracklets(self.drive_dir / TRACKLETS_FILE, tracklets)

    def close(self) -> None:
        """Write the timestamp files (and the OXTS field list); safe to call twice."""
        if self._closed:
            return
        write_timestamps(self.drive_dir / IMAGE_DIR / "timestamps.txt", self.image_stamps_ns)
        write_timestamps(
            self.drive_dir / VELODYNE_DIR / "timestamps.txt", self.velodyne_stamps_ns
        )
        write_timestamps(self.drive_dir / OXTS_DIR / "timestamps.txt", self.oxts_stamps_ns)
        (self.drive_dir / OXTS_DIR / "dataformat.txt").write_text(
            "".join(f"{name}\n" for name in OXTS_FIELD_NAMES)
        )
        self._closed = True

    def __enter__(self) -> RawDriveWriter:
        """Use as a context manager; timestamps are written on exit."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Close on success; after an error leave the drive without timestamps (incomplete)."""
        if exc_type is None:
            self.close()
