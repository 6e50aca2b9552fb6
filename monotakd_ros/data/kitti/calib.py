"""KITTI calibration files: object-set ``calib/*.txt`` here, raw date folders re-exported.

An object-set file holds seven lines ``P0: ..`` .. ``P3: ..`` (12 numbers each), ``R0_rect: ..``
(9) and ``Tr_velo_to_cam`` / ``Tr_imu_to_velo`` (12 each), written with ``%.12e``. The tracking
set names the last three ``R_rect``, ``Tr_velo_cam`` and ``Tr_imu_velo``; those names are read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.calib_text import (
    CalibFile,
    checked_array,
    format_floats,
    write_lines,
)
from monotakd_ros.data.kitti.raw_calib import (
    KITTI_STEREO_BASELINE_M,
    KITTI_T_VELO_FROM_IMU,
    RawCalib,
    RawCameraCalib,
    RawRigidCalib,
    raw_calib_from_camera_calib,
    read_raw_calib,
    write_raw_calib,
)
from monotakd_ros.errors import CalibrationError
from monotakd_ros.geometry.calib import CameraCalib

__all__ = [
    "KittiObjectCalib",
    "RawCalib",
    "RawCameraCalib",
    "RawRigidCalib",
    "object_calib_from_camera_calib",
    "raw_calib_from_camera_calib",
    "read_object_calib",
    "read_raw_calib",
    "write_object_calib",
    "write_raw_calib",
]

# (field, shape, names other KITTI files use for it), in the order the real files list them.
_OBJECT_KEYS: tuple[tuple[str, tuple[int, int], tuple[str, ...]], ...] = (
    ("P0", (3, 4), ()),
    ("P1", (3, 4), ()),
    ("P2", (3, 4), ()),
    ("P3", (3, 4), ()),
    ("R0_rect", (3, 3), ("R_rect",)),
    ("Tr_velo_to_cam", (3, 4), ("Tr_velo_cam",)),
    ("Tr_imu_to_velo", (3, 4), ("Tr_imu_velo",)),
)
_OBJECT_DIGITS = 12  # the object set writes %.12e


@dataclass(frozen=True, eq=False)
class KittiObjectCalib:
    """All matrices of one object-set calibration file (arrays are read-only float64)."""

    P0: np.ndarray  # (3, 4) left grey camera
    P1: np.ndarray  # (3, 4) right grey camera
    P2: np.ndarray  # (3, 4) left colour camera (the one the detector uses)
    P3: np.ndarray  # (3, 4) right colour camera
    R0_rect: np.ndarray  # (3, 3) rectifying rotation of the reference camera
    Tr_velo_to_cam: np.ndarray  # (3, 4) LiDAR -> reference camera (unrectified)
    Tr_imu_to_velo: np.ndarray  # (3, 4) IMU -> LiDAR

    def __post_init__(self) -> None:
        for name, shape, _ in _OBJECT_KEYS:
            value = checked_array("KittiObjectCalib", name, getattr(self, name), shape)
            object.__setattr__(self, name, value)
        for name in ("P0", "P1", "P2", "P3"):
            fx, fy = getattr(self, name)[0, 0], getattr(self, name)[1, 1]
            if not (fx > 0 and fy > 0):  # an all-zero P projects every point to infinity
                raise CalibrationError(f"KittiObjectCalib.{name}: focal lengths fx, fy must be "
                                       f"> 0, got {fx} and {fy}")

    def __eq__(self, other: object) -> bool:
        """Exact equality of every matrix."""
        if not isinstance(other, KittiObjectCalib):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name, _, _ in _OBJECT_KEYS
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are not hashable

    def camera_calib(self) -> CameraCalib:
        """The detector's view of this calibration: P2, R0_rect and Tr_velo_to_cam."""
        return CameraCalib(
            P2=self.P2.copy(),
            R0_rect=self.R0_rect.copy(),
            T_cam_from_lidar=self.Tr_velo_to_cam.copy(),
        )


def read_object_calib(path: Path) -> KittiObjectCalib:
    """Parse an object-set (or tracking-set) calibration file."""
    calib_file = CalibFile.read(Path(path))
    matrices = {
        name: calib_file.floats(name, shape[0] * shape[1], aliases).reshape(shape)
        for name, shape, aliases in _OBJECT_KEYS
    }
    try:
        return KittiObjectCalib(**matrices)
    except CalibrationError as err:
        raise CalibrationError(f"{calib_file.path}: {err}") from err


def write_object_calib(path: Path, calib: KittiObjectCalib) -> None:
    """Write ``calib`` in the object-set layout; reading it back gives identical matrices."""
    write_lines(
        Path(path),
        [
            f"{name}: {format_floats(getattr(calib, name), _OBJECT_DIGITS)}"
            for name, _, _ in _OBJECT_KEYS
        ],
    )


def object_calib_from_camera_calib(calib: CameraCalib) -> KittiObjectCalib:
    """A full object-set calibration around ``calib`` (P2, R0_rect, Tr_velo_to_cam kept exactly).

    P0 is P2's intrinsics with no offset; P1 and P3 sit one KITTI stereo baseline to the right of
    P0 and P2, so their ``Tx`` is ``-fx * 0.54 m`` further than their left partner's.
    """
    intrinsics = calib.P2[:, :3]
    P0 = np.hstack([intrinsics, np.zeros((3, 1))])
    baseline_px = calib.P2[0, 0] * KITTI_STEREO_BASELINE_M
    P1 = P0.copy()
    P1[0, 3] -= baseline_px
    P3 = calib.P2.copy()
    P3[0, 3] -= baseline_px
    return KittiObjectCalib(
        P0=P0,
        P1=P1,
        P2=calib.P2,
        P3=P3,
        R0_rect=calib.R0_rect,
        Tr_velo_to_cam=calib.T_cam_from_lidar,
        Tr_imu_to_velo=KITTI_T_VELO_FROM_IMU,
    )
