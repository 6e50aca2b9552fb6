"""KITTI raw calibration: the three files of a date folder such as ``2011_09_26/``.

``calib_cam_to_cam.txt`` holds ``calib_time``, ``corner_dist`` and, for each camera xx in 00..03,
``S_xx`` (2), ``K_xx`` (9), ``D_xx`` (5), ``R_xx`` (9), ``T_xx`` (3), ``S_rect_xx`` (2),
``R_rect_xx`` (9) and ``P_rect_xx`` (12). ``calib_velo_to_cam.txt`` holds ``calib_time``, ``R``,
``T``, ``delta_f`` and ``delta_c``; ``calib_imu_to_velo.txt`` holds ``calib_time``, ``R`` and
``T``. Numbers are written with ``%e``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.calib_text import (
    CalibFile,
    checked_array,
    checked_time,
    format_floats,
    write_lines,
)
from monotakd_ros.errors import CalibrationError
from monotakd_ros.geometry.calib import CameraCalib

CAM_TO_CAM_FILE = "calib_cam_to_cam.txt"
VELO_TO_CAM_FILE = "calib_velo_to_cam.txt"
IMU_TO_VELO_FILE = "calib_imu_to_velo.txt"
NUM_CAMERAS = 4
KITTI_STEREO_BASELINE_M = 0.54  # distance between the left and right camera of each pair
# Real 2011_09_26 IMU -> LiDAR transform (3, 4), used where a synthetic rig needs one.
KITTI_T_VELO_FROM_IMU = np.array(
    [
        [9.999976e-01, 7.553071e-04, -2.035826e-03, -8.086759e-01],
        [-7.854027e-04, 9.998898e-01, -1.482298e-02, 3.195559e-01],
        [2.024406e-03, 1.482454e-02, 9.998881e-01, -7.997231e-01],
    ]
)
KITTI_T_VELO_FROM_IMU.flags.writeable = False
_RAW_DIGITS = 6  # the raw set writes %e
_SYNTHETIC_CALIB_TIME = "01-Jan-2000 00:00:00"
_KITTI_CORNER_DIST_M = 9.95e-02  # checkerboard corner spacing reported by KITTI

# (field, shape) of one camera in calib_cam_to_cam.txt, in file order.
_CAMERA_KEYS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("S", (2,)),
    ("K", (3, 3)),
    ("D", (5,)),
    ("R", (3, 3)),
    ("T", (3,)),
    ("S_rect", (2,)),
    ("R_rect", (3, 3)),
    ("P_rect", (3, 4)),
)


def _arrays_equal(a: object, b: object, names: tuple[str, ...]) -> bool:
    """Exact equality of the named array (or None) attributes of two objects."""
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


@dataclass(frozen=True, eq=False)
class RawCameraCalib:
    """One camera of ``calib_cam_to_cam.txt`` (sizes are (width, height) in pixels)."""

    S: np.ndarray  # (2,) image size before rectification
    K: np.ndarray  # (3, 3) intrinsics before rectification
    D: np.ndarray  # (5,) distortion k1 k2 p1 p2 k3
    R: np.ndarray  # (3, 3) rotation camera 00 -> this camera
    T: np.ndarray  # (3,) translation camera 00 -> this camera, metres
    S_rect: np.ndarray  # (2,) image size after rectification
    R_rect: np.ndarray  # (3, 3) rectifying rotation
    P_rect: np.ndarray  # (3, 4) projection of rectified camera-00 points into this image

    def __post_init__(self) -> None:
        for name, shape in _CAMERA_KEYS:
            value = checked_array("RawCameraCalib", name, getattr(self, name), shape)
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        """Exact equality of every array."""
        if not isinstance(other, RawCameraCalib):
            return NotImplemented
        return _arrays_equal(self, other, tuple(name for name, _ in _CAMERA_KEYS))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class RawRigidCalib:
    """A rigid transform file (velo_to_cam or imu_to_velo): x_to = R @ x_from + T."""

    R: np.ndarray  # (3, 3)
    T: np.ndarray  # (3,) metres
    calib_time: str | None = None
    delta_f: np.ndarray | None = None  # (2,) velo_to_cam only
    delta_c: np.ndarray | None = None  # (2,) velo_to_cam only

    def __post_init__(self) -> None:
        object.__setattr__(self, "R", checked_array("RawRigidCalib", "R", self.R, (3, 3)))
        object.__setattr__(self, "T", checked_array("RawRigidCalib", "T", self.T, (3,)))
        object.__setattr__(self, "calib_time", checked_time("RawRigidCalib", self.calib_time))
        for name in ("delta_f", "delta_c"):
            if getattr(self, name) is not None:
                value = checked_array("RawRigidCalib", name, getattr(self, name), (2,))
                object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        """Exact equality of the arrays and the timestamp."""
        if not isinstance(other, RawRigidCalib):
            return NotImplemented
        return self.calib_time == other.calib_time and _arrays_equal(
            self, other, ("R", "T", "delta_f", "delta_c")
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def matrix(self) -> np.ndarray:
        """(3, 4) ``[R | T]``."""
        return np.hstack([self.R, self.T[:, None]])


@dataclass(frozen=True, eq=False)
class RawCalib:
    """The calibration of one KITTI raw date folder."""

    cameras: tuple[RawCameraCalib, ...]  # cameras 00..03 of calib_cam_to_cam.txt
    velo_to_cam: RawRigidCalib  # LiDAR -> camera 00 (unrectified)
    imu_to_velo: RawRigidCalib  # IMU -> LiDAR
    calib_time: str | None = None  # of calib_cam_to_cam.txt, e.g. "09-Jan-2012 13:57:47"
    corner_dist: float | None = None  # of calib_cam_to_cam.txt, metres

    def __post_init__(self) -> None:
        cameras = tuple(self.cameras)
        if len(cameras) != NUM_CAMERAS:
            raise CalibrationError(f"RawCalib needs {NUM_CAMERAS} cameras, got {len(cameras)}")
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "calib_time", checked_time("RawCalib", self.calib_time))
        if self.corner_dist is not None:
            if not np.isfinite(self.corner_dist):
                raise CalibrationError(f"RawCalib.corner_dist is not finite: {self.corner_dist}")
            object.__setattr__(self, "corner_dist", float(self.corner_dist))

    def __eq__(self, other: object) -> bool:
        """Exact equality of every camera, transform and timestamp."""
        if not isinstance(other, RawCalib):
            return NotImplemented
        return (
            self.cameras == other.cameras
            and self.velo_to_cam == other.velo_to_cam
            and self.imu_to_velo == other.imu_to_velo
            and self.calib_time == other.calib_time
            and self.corner_dist == other.corner_dist
        )

    __hash__ = None  # type: ignore[assignment]

    def _camera(self, cam: int) -> RawCameraCalib:
        if not 0 <= cam < NUM_CAMERAS:
            raise CalibrationError(f"camera index must be 0..{NUM_CAMERAS - 1}, got {cam}")
        return self.cameras[cam]

    def camera_calib(self, cam: int = 2) -> CameraCalib:
        """Calibration of camera ``cam``: P_rect_0{cam}, R_rect_00 and [R|T] of velo_to_cam."""
        return CameraCalib(
            P2=self._camera(cam).P_rect.copy(),
            R0_rect=self.cameras[0].R_rect.copy(),
            T_cam_from_lidar=self.velo_to_cam.matrix,
        )

    def image_hw(self, cam: int = 2) -> tuple[int, int]:
        """Rectified image size (height, width) of camera ``cam`` in pixels."""
        width, height = self._camera(cam).S_rect
        return int(round(height)), int(round(width))


def _read_camera(calib_file: CalibFile, cam: int) -> RawCameraCalib:
    values = {}
    for name, shape in _CAMERA_KEYS:
        values[name] = calib_file.floats(f"{name}_0{cam}", int(np.prod(shape))).reshape(shape)
    return RawCameraCalib(**values)


def _read_rigid(path: Path, with_deltas: bool) -> RawRigidCalib:
    calib_file = CalibFile.read(path)
    return RawRigidCalib(
        R=calib_file.floats("R", 9).reshape(3, 3),
        T=calib_file.floats("T", 3),
        calib_time=calib_file.text("calib_time"),
        delta_f=calib_file.optional_floats("delta_f", 2) if with_deltas else None,
        delta_c=calib_file.optional_floats("delta_c", 2) if with_deltas else None,
    )


def read_raw_calib(date_dir: Path) -> RawCalib:
    """Parse the three calibration files of a KITTI raw date folder."""
    date_dir = Path(date_dir)
    cam_file = CalibFile.read(date_dir / CAM_TO_CAM_FILE)
    corner = cam_file.optional_floats("corner_dist", 1)
    return RawCalib(
        cameras=tuple(_read_camera(cam_file, cam) for cam in range(NUM_CAMERAS)),
        velo_to_cam=_read_rigid(date_dir / VELO_TO_CAM_FILE, with_deltas=True),
        imu_to_velo=_read_rigid(date_dir / IMU_TO_VELO_FILE, with_deltas=False),
        calib_time=cam_file.text("calib_time"),
        corner_dist=None if corner is None else float(corner[0]),
    )


def _rigid_lines(rigid: RawRigidCalib) -> list[str]:
    lines = [] if rigid.calib_time is None else [f"calib_time: {rigid.calib_time}"]
    for name in ("R", "T", "delta_f", "delta_c"):
        value = getattr(rigid, name)
        if value is not None:
            lines.append(f"{name}: {format_floats(value, _RAW_DIGITS)}")
    return lines


def write_raw_calib(date_dir: Path, calib: RawCalib) -> None:
    """Write the three files of a date folder; reading them back gives an equal ``RawCalib``."""
    date_dir = Path(date_dir)
    lines = [] if calib.calib_time is None else [f"calib_time: {calib.calib_time}"]
    if calib.corner_dist is not None:
        lines.append(f"corner_dist: {format_floats(np.array([calib.corner_dist]), _RAW_DIGITS)}")
    for cam, camera in enumerate(calib.cameras):
        for name, _ in _CAMERA_KEYS:
            lines.append(f"{name}_0{cam}: {format_floats(getattr(camera, name), _RAW_DIGITS)}")
    write_lines(date_dir / CAM_TO_CAM_FILE, lines)
    write_lines(date_dir / VELO_TO_CAM_FILE, _rigid_lines(calib.velo_to_cam))
    write_lines(date_dir / IMU_TO_VELO_FILE, _rigid_lines(calib.imu_to_velo))


def _offset_m(P_rect: np.ndarray) -> np.ndarray:
    """Camera offset t (metres) with P_rect[:, 3] = K @ t, K = P_rect[:, :3]."""
    return np.linalg.lstsq(P_rect[:, :3], P_rect[:, 3], rcond=None)[0]


def raw_calib_from_camera_calib(
    calib: CameraCalib, image_hw: tuple[int, int] = (375, 1242)
) -> RawCalib:
    """A plausible full raw calibration whose ``camera_calib(2)`` equals ``calib`` exactly.

    The rig is an already rectified KITTI-like one: no distortion, image sizes equal before and
    after rectification, every camera rectified by ``R0_rect``, the right cameras one stereo
    baseline (0.54 m) from the left ones, and KITTI's real IMU -> LiDAR transform.
    """
    height, width = image_hw
    if height <= 0 or width <= 0:
        raise CalibrationError(f"image_hw must be positive (height, width), got {image_hw}")
    size = np.array([width, height], dtype=np.float64)
    P_left_grey = np.hstack([calib.P2[:, :3], np.zeros((3, 1))])
    baseline_px = calib.P2[0, 0] * KITTI_STEREO_BASELINE_M
    P_right_grey, P_right_colour = P_left_grey.copy(), calib.P2.copy()
    P_right_grey[0, 3] -= baseline_px
    P_right_colour[0, 3] -= baseline_px
    cameras = tuple(
        RawCameraCalib(
            S=size,
            K=P[:, :3],
            D=np.zeros(5),
            R=np.eye(3),
            T=_offset_m(P),
            S_rect=size,
            R_rect=calib.R0_rect,
            P_rect=P,
        )
        for P in (P_left_grey, P_right_grey, calib.P2, P_right_colour)
    )
    velo_to_cam = RawRigidCalib(
        R=calib.T_cam_from_lidar[:, :3],
        T=calib.T_cam_from_lidar[:, 3],
        calib_time=_SYNTHETIC_CALIB_TIME,
        delta_f=np.zeros(2),
        delta_c=np.zeros(2),
    )
    imu_to_velo = RawRigidCalib(
        R=KITTI_T_VELO_FROM_IMU[:, :3],
        T=KITTI_T_VELO_FROM_IMU[:, 3],
        calib_time=_SYNTHETIC_CALIB_TIME,
    )
    return RawCalib(
        cameras=cameras,
        velo_to_cam=velo_to_cam,
        imu_to_velo=imu_to_velo,
        calib_time=_SYNTHETIC_CALIB_TIME,
        corner_dist=_KITTI_CORNER_DIST_M,
    )
