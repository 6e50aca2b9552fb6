"""KITTI velodyne ``*.bin`` scans: little-endian float32 records (x, y, z, reflectance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monotakd_ros.errors import KittiFormatError

_POINT_DTYPE = np.dtype("<f4")
_FIELDS_PER_POINT = 4  # x, y, z in metres (LiDAR frame) and reflectance in [0, 1]
_BYTES_PER_POINT = _FIELDS_PER_POINT * _POINT_DTYPE.itemsize


def read_velodyne_bin(path: Path) -> np.ndarray:
    """(N, 4) float32 points of one scan."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot read velodyne scan ({err})") from err
    if len(raw) % _BYTES_PER_POINT:
        raise KittiFormatError(
            f"{path}: size {len(raw)} bytes is not a multiple of {_BYTES_PER_POINT} "
            "(4 float32 per point)"
        )
    points = np.frombuffer(raw, dtype=_POINT_DTYPE).reshape(-1, _FIELDS_PER_POINT)  # (N, 4)
    return points.astype(np.float32)  # native-order, writable copy


def write_velodyne_bin(path: Path, points: np.ndarray) -> None:
    """Write (N, 4) points (x, y, z, reflectance) as a KITTI scan, creating the folder."""
    path = Path(path)
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != _FIELDS_PER_POINT:
        raise KittiFormatError(f"{path}: points must have shape (N, 4), got {points.shape}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(np.ascontiguousarray(points, dtype=_POINT_DTYPE).tobytes())
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot write velodyne scan ({err})") from err
