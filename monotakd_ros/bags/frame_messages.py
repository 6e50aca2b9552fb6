"""rosbags message objects for one KITTI raw frame (ROS 2 types; no rclpy involved)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rosbags.typesys.store import Typestore

from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.errors import BagError
from monotakd_ros.geometry.rotations import matrix_to_quat

_NS_PER_S = 1_000_000_000
_POINT_FIELDS = ("x", "y", "z", "i")  # kitti2bag's names; all float32
_FLOAT32 = 7  # sensor_msgs/PointField FLOAT32
_EARTH_RADIUS_M = 6378137.0  # WGS84 equatorial radius, as in the KITTI devkit's OXTS poses


def _new(store: Typestore, msgtype: str, **fields: Any) -> Any:
    return store.types[msgtype](**fields)


def time_message(store: Typestore, stamp_ns: int) -> Any:
    """builtin_interfaces/Time of a nanosecond stamp."""
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    return _new(store, "builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def header_message(store: Typestore, stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header with the given stamp and frame."""
    return _new(store, "std_msgs/msg/Header", stamp=time_message(store, stamp_ns),
                frame_id=frame_id)


def stamp_ns_of(header: Any) -> int:
    """Nanoseconds of a deserialized header's stamp."""
    return int(header.stamp.sec) * _NS_PER_S + int(header.stamp.nanosec)


def image_message(store: Typestore, image_bgr: np.ndarray, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image, bgr8, of an (H, W, 3) uint8 image."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise BagError(f"image must be (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
    height, width = image_bgr.shape[:2]
    return _new(
        store, "sensor_msgs/msg/Image", header=header_message(store, stamp_ns, frame_id),
        height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3,
        data=np.ascontiguousarray(image_bgr).reshape(-1),
    )


def camera_info_message(
    store: Typestore, P: np.ndarray, image_hw: tuple[int, int], stamp_ns: int, frame_id: str
) -> Any:
    """sensor_msgs/CameraInfo of an already rectified image.

    The image needs no further rectification, so K = P[:, :3], R = I and D = 0: image_proc would
    leave it unchanged, and P keeps KITTI's Tx (P_rect_02[0, 3]).
    """
    P = np.asarray(P, dtype=np.float64).reshape(3, 4)
    height, width = image_hw
    roi = _new(store, "sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0,
               width=0, do_rectify=False)
    return _new(
        store, "sensor_msgs/msg/CameraInfo", header=header_message(store, stamp_ns, frame_id),
        height=int(height), width=int(width), distortion_model="plumb_bob", d=np.zeros(5),
        k=P[:, :3].reshape(-1).copy(), r=np.eye(3).reshape(-1), p=P.reshape(-1).copy(),
        binning_x=0, binning_y=0, roi=roi,
    )


def point_cloud_message(store: Typestore, points: np.ndarray, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/PointCloud2 with float32 fields x, y, z, i of (N, 4) points."""
    points = np.ascontiguousarray(points, dtype="<f4")
    if points.ndim != 2 or points.shape[1] != 4:
        raise BagError(f"points must be (N, 4) x, y, z, i, got {points.shape}")
    fields = [
        _new(store, "sensor_msgs/msg/PointField", name=name, offset=4 * k, datatype=_FLOAT32,
             count=1)
        for k, name in enumerate(_POINT_FIELDS)
    ]
    return _new(
        store, "sensor_msgs/msg/PointCloud2", header=header_message(store, stamp_ns, frame_id),
        height=1, width=len(points), fields=fields, is_bigendian=False, point_step=16,
        row_step=16 * len(points), data=points.reshape(-1).view(np.uint8),
        is_dense=bool(np.all(np.isfinite(points))),
    )


def _vector3(store: Typestore, xyz: Any) -> Any:
    x, y, z = (float(v) for v in xyz)
    return _new(store, "geometry_msgs/msg/Vector3", x=x, y=y, z=z)


def _quaternion(store: Typestore, quat_xyzw: Any) -> Any:
    x, y, z, w = (float(v) for v in quat_xyzw)
    return _new(store, "geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w)


def _rotation_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll), the OXTS attitude convention."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    Ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    Rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return Rz @ Ry @ Rx


def imu_message(store: Typestore, oxts: OxtsPacket, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Imu: OXTS attitude, vehicle-axis (f, l, u) rates and accelerations."""
    quat = matrix_to_quat(_rotation_zyx(oxts.roll, oxts.pitch, oxts.yaw)[None])[0]
    unknown = np.zeros(9)  # all-zero covariance means "unknown" in sensor_msgs/Imu
    return _new(
        store, "sensor_msgs/msg/Imu", header=header_message(store, stamp_ns, frame_id),
        orientation=_quaternion(store, quat), orientation_covariance=unknown,
        angular_velocity=_vector3(store, (oxts.wf, oxts.wl, oxts.wu)),
        angular_velocity_covariance=unknown.copy(),
        linear_acceleration=_vector3(store, (oxts.af, oxts.al, oxts.au)),
        linear_acceleration_covariance=unknown.copy(),
    )


def nav_sat_fix_message(store: Typestore, oxts: OxtsPacket, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/NavSatFix with OXTS's position accuracy as a diagonal covariance."""
    status_type = store.types["sensor_msgs/msg/NavSatStatus"]
    fix_type = store.types["sensor_msgs/msg/NavSatFix"]
    status = status_type(status=status_type.STATUS_FIX, service=status_type.SERVICE_GPS)
    variance_m2 = float(oxts.pos_accuracy) ** 2
    return fix_type(
        header=header_message(store, stamp_ns, frame_id), status=status,
        latitude=float(oxts.lat), longitude=float(oxts.lon), altitude=float(oxts.alt),
        position_covariance=np.diag([variance_m2] * 3).reshape(-1),
        position_covariance_type=fix_type.COVARIANCE_TYPE_DIAGONAL_KNOWN,
    )


def oxts_pose_in_world(oxts: OxtsPacket, reference_lat_deg: float) -> np.ndarray:
    """4x4 pose of the IMU in a Mercator east-north-up world (the KITTI devkit's convention).

    The Mercator scale is fixed by ``reference_lat_deg`` (the first frame's latitude) so that
    all poses of a drive share one map.
    """
    scale = math.cos(math.radians(reference_lat_deg))
    T = np.eye(4)
    T[0, 3] = scale * math.radians(oxts.lon) * _EARTH_RADIUS_M
    T[1, 3] = scale * _EARTH_RADIUS_M * math.log(math.tan(math.radians(90.0 + oxts.lat) / 2.0))
    T[2, 3] = oxts.alt
    T[:3, :3] = _rotation_zyx(oxts.roll, oxts.pitch, oxts.yaw)
    return T


def transform_stamped_message(
    store: Typestore, T_parent_from_child: np.ndarray, parent: str, child: str, stamp_ns: int
) -> Any:
    """geometry_msgs/TransformStamped: the pose of ``child`` in ``parent``."""
    T = np.asarray(T_parent_from_child, dtype=np.float64)
    transform = _new(
        store, "geometry_msgs/msg/Transform", translation=_vector3(store, T[:3, 3]),
        rotation=_quaternion(store, matrix_to_quat(T[None, :3, :3])[0]),
    )
    return _new(store, "geometry_msgs/msg/TransformStamped",
                header=header_message(store, stamp_ns, parent), child_frame_id=child,
                transform=transform)


def tf_message(store: Typestore, transforms: list[Any]) -> Any:
    """tf2_msgs/TFMessage holding ``transforms``."""
    return _new(store, "tf2_msgs/msg/TFMessage", transforms=transforms)
