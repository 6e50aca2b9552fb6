"""The KITTI 3D object dataset on disk: reading frames by id, and writing datasets in its layout.

Layout::

    root/ImageSets/{train,val,trainval,test}.txt       one frame id per line
    root/{training,testing}/image_2/000000.png          left colour image
    root/{training,testing}/velodyne/000000.bin         LiDAR scan
    root/{training,testing}/calib/000000.txt            object-set calibration
    root/training/label_2/000000.txt                    labels (training split only)
    root/{training,testing}/planes/000000.txt           ground plane (optional)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.calib import KittiObjectCalib, read_object_calib, write_object_calib
from monotakd_ros.data.kitti.calib_text import format_floats
from monotakd_ros.data.kitti.images import (
    DEFAULT_PNG_COMPRESSION,
    read_image_bgr,
    write_image_png,
)
from monotakd_ros.data.kitti.labels import KittiLabels, read_label_file, write_label_file
from monotakd_ros.data.kitti.velodyne import read_velodyne_bin, write_velodyne_bin
from monotakd_ros.errors import DatasetError, KittiFormatError

IMAGE_SETS_DIR = "ImageSets"
IMAGE_DIR = "image_2"
VELODYNE_DIR = "velodyne"
CALIB_DIR = "calib"
LABEL_DIR = "label_2"
PLANE_DIR = "planes"
_IMAGE_SUFFIXES = (".png", ".jpg")  # KITTI ships PNG; custom sets in this layout often use JPEG
_PLANE_HEADER = ("# Plane", "Width 4", "Height 1")
_PLANE_DIGITS = 6  # planes are written with %e


def _checked_frame_id(frame_id: str) -> str:
    """``frame_id`` if it names a file inside a folder (no separators, not '.' or '..')."""
    if not frame_id or frame_id in (".", "..") or any(c in frame_id for c in "/\\\n\r"):
        raise DatasetError(f"invalid frame id {frame_id!r}")
    return frame_id


def read_image_set(path: Path) -> list[str]:
    """Frame ids of an ImageSets file, one per line, blank lines skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read image set ({err})") from err
    ids = []
    for line_no, line in enumerate(lines, start=1):
        frame_id = line.strip()
        if not frame_id:
            continue
        if len(frame_id.split()) != 1:
            raise DatasetError(f"{path}:{line_no}: expected one frame id, got {frame_id!r}")
        ids.append(_checked_frame_id(frame_id))
    return ids


def write_image_set(path: Path, ids: Sequence[str]) -> None:
    """Write frame ids one per line, creating the folder."""
    path = Path(path)
    text = "".join(_checked_frame_id(frame_id) + "\n" for frame_id in ids)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as err:
        raise DatasetError(f"{path}: cannot write image set ({err})") from err


def read_plane(path: Path) -> np.ndarray:
    """(4,) float64 ground plane (a, b, c, d) with a·x + b·y + c·z + d = 0 in the camera frame."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise KittiFormatError(f"{path}: cannot read plane file ({err})") from err
    # Header lines ("# Plane", "Width 4", "Height 1") carry no information beyond the layout.
    data = [
        (line_no, line.split())
        for line_no, line in enumerate(lines, start=1)
        if line.strip()
        and not line.lstrip().startswith("#")
        and line.split()[0].lower() not in ("width", "height")
    ]
    if len(data) != 1:
        raise KittiFormatError(f"{path}: expected one line of 4 numbers, found {len(data)} lines")
    line_no, tokens = data[0]
    if len(tokens) != 4:
        raise KittiFormatError(f"{path}:{line_no}: expected 4 numbers, got {len(tokens)}")
    try:
        plane = np.array([float(token) for token in tokens], dtype=np.float64)
    except ValueError as err:
        raise KittiFormatError(f"{path}:{line_no}: non-numeric plane value in {tokens}") from err
    if not np.all(np.isfinite(plane)):
        raise KittiFormatError(f"{path}:{line_no}: non-finite plane value in {tokens}")
    return plane


def write_plane(path: Path, plane: np.ndarray) -> None:
    """Write a (4,) ground plane in the planes/*.txt layout; reading it back is exact."""
    path = Path(path)
    plane = np.asarray(plane, dtype=np.float64)
    if plane.shape != (4,) or not np.all(np.isfinite(plane)):
        raise KittiFormatError(f"{path}: plane must be 4 finite numbers, got {plane.tolist()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*_PLANE_HEADER, format_floats(plane, _PLANE_DIGITS)]) + "\n")
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot write plane file ({err})") from err


class KittiObjectDataset:
    """Read access to one split (``training`` or ``testing``) of a KITTI object dataset."""

    def __init__(self, root: Path, split: str = "training") -> None:
        self.root = Path(root)
        self.split = split
        self.split_dir = self.root / split
        if not self.split_dir.is_dir():
            raise DatasetError(f"{self.split_dir}: split folder does not exist")

    def frame_ids(self, image_set: str | None = None) -> list[str]:
        """Ids of ``ImageSets/<image_set>.txt``, or of every image present when None."""
        if image_set is not None:
            path = self.root / IMAGE_SETS_DIR / f"{image_set}.txt"
            if not path.is_file():
                raise DatasetError(f"{path}: image set {image_set!r} does not exist")
            return read_image_set(path)
        image_dir = self.split_dir / IMAGE_DIR
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: image folder does not exist")
        return sorted(p.stem for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)

    def _file(self, folder: str, frame_id: str, suffix: str) -> Path:
        return self.split_dir / folder / f"{_checked_frame_id(frame_id)}{suffix}"

    def _existing(self, folder: str, frame_id: str, suffix: str, what: str) -> Path:
        path = self._file(folder, frame_id, suffix)
        if not path.is_file():
            raise DatasetError(f"{path}: {what} of frame {frame_id!r} does not exist")
        return path

    @property
    def has_labels(self) -> bool:
        """Whether this split has a label_2 folder (the testing split has none)."""
        return (self.split_dir / LABEL_DIR).is_dir()

    def image_path(self, frame_id: str) -> Path:
        """Path of the frame's image (PNG, or JPEG where only that exists)."""
        for suffix in _IMAGE_SUFFIXES:
            path = self._file(IMAGE_DIR, frame_id, suffix)
            if path.is_file():
                return path
        return self._file(IMAGE_DIR, frame_id, _IMAGE_SUFFIXES[0])

    def image(self, frame_id: str) -> np.ndarray:
        """(H, W, 3) uint8 BGR image."""
        path = self.image_path(frame_id)
        if not path.is_file():
            raise DatasetError(f"{path}: image of frame {frame_id!r} does not exist")
        return read_image_bgr(path)

    def calib(self, frame_id: str) -> KittiObjectCalib:
        """The frame's object-set calibration."""
        return read_object_calib(self._existing(CALIB_DIR, frame_id, ".txt", "calibration"))

    def points(self, frame_id: str) -> np.ndarray:
        """(N, 4) float32 LiDAR points (x, y, z, reflectance)."""
        return read_velodyne_bin(self._existing(VELODYNE_DIR, frame_id, ".bin", "LiDAR scan"))

    def labels(self, frame_id: str) -> KittiLabels:
        """Ground-truth labels; a split without label_2 (testing) raises DatasetError."""
        if not self.has_labels:
            raise DatasetError(f"{self.split_dir / LABEL_DIR}: split {self.split!r} has no labels")
        return read_label_file(self._existing(LABEL_DIR, frame_id, ".txt", "label file"))

    def plane(self, frame_id: str) -> np.ndarray | None:
        """(4,) ground plane, or None when the frame has no planes file."""
        path = self._file(PLANE_DIR, frame_id, ".txt")
        return read_plane(path) if path.is_file() else None


class KittiObjectWriter:
    """Writes frames into one split of a KITTI object dataset (used by the synthetic world)."""

    def __init__(
        self,
        root: Path,
        split: str = "training",
        label_precision: int | None = 2,
        png_compression: int = DEFAULT_PNG_COMPRESSION,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.split_dir = self.root / split
        self.label_precision = label_precision
        self.png_compression = png_compression

    def write_frame(
        self,
        frame_id: str,
        image_bgr: np.ndarray,
        calib: KittiObjectCalib,
        points: np.ndarray | None,
        labels: KittiLabels | None = None,
        plane: np.ndarray | None = None,
    ) -> None:
        """Write every file of one frame; None skips the scan, the labels or the plane."""
        name = _checked_frame_id(frame_id)
        write_image_png(
            self.split_dir / IMAGE_DIR / f"{name}.png", image_bgr, self.png_compression
        )
        write_object_calib(self.split_dir / CALIB_DIR / f"{name}.txt", calib)
        if points is not None:
            write_velodyne_bin(self.split_dir / VELODYNE_DIR / f"{name}.bin", points)
        if labels is not None:
            write_label_file(
                self.split_dir / LABEL_DIR / f"{name}.txt", labels, self.label_precision
            )
        if plane is not None:
            write_plane(self.split_dir / PLANE_DIR / f"{name}.txt", plane)

    def write_image_sets(self, image_sets: Mapping[str, Sequence[str]]) -> None:
        """Write ``ImageSets/<name>.txt`` for each name -> frame ids."""
        for name, ids in image_sets.items():
            write_image_set(self.root / IMAGE_SETS_DIR / f"{_checked_frame_id(name)}.txt", ids)
