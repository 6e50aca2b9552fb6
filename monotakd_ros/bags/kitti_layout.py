"""The kitti2bag layout: topic names, frame names and the rig's static transforms.

``camera_color_left`` in ``/tf_static`` is the rectified colour camera as kitti2bag (through
pykitti) publishes it: LiDAR points map into it with ``R_rect_00 @ Tr_velo_to_cam`` followed by a
shift of ``P_rect_02[0, 3] / fx`` metres along x. ``P_rect_02`` itself projects points of the
rectified *reference* camera (camera 00), the frame KITTI labels live in. Readers therefore undo
that shift (``T_ref_from_camera_tf``) to get the ``T_cam_from_lidar`` that goes with P, and
ground-truth boxes carry KITTI label coordinates, as the detector publishes them.
"""

from __future__ import annotations

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from monotakd_ros.bags.kitti_topics import (  # noqa: F401 (the layout's names, re-exported)
    BASE_FRAME,
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    GPS_FIX_TOPIC,
    GROUND_TRUTH_TOPIC,
    IMAGE_TOPIC,
    IMU_FRAME,
    IMU_TOPIC,
    POINT_CLOUD_TOPIC,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    VELO_FRAME,
    WORLD_FRAME,
)
from monotakd_ros.data.kitti.calib import RawCalib
from monotakd_ros.data.kitti.raw_drive import CAMERA_INDEX
from monotakd_ros.errors import CalibrationError

_DEFAULT_DURATION = QosTime(sec=0, nsec=0)  # 0 = the RMW default (infinite)


def _qos(durability: QosDurability, depth: int) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST, depth=depth, reliability=QosReliability.RELIABLE,
        durability=durability, deadline=_DEFAULT_DURATION, lifespan=_DEFAULT_DURATION,
        liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_DEFAULT_DURATION,
        avoid_ros_namespace_conventions=False,
    )


# ros2 bag play re-offers what the metadata says: /tf_static must be transient_local so that
# late subscribers (tf2 listeners) still receive the rig.
SENSOR_QOS = _qos(QosDurability.VOLATILE, depth=10)
TF_STATIC_QOS = _qos(QosDurability.TRANSIENT_LOCAL, depth=1)


def _homogeneous(T_3x4: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :4] = T_3x4
    return T


def camera_shift_m(P: np.ndarray) -> float:
    """The x offset (metres) of the published camera frame from the reference camera: P[0,3]/fx."""
    P = np.asarray(P, dtype=np.float64).reshape(3, 4)
    if abs(P[0, 0]) < 1e-9:
        raise CalibrationError(f"P has a zero focal length: {P.tolist()}")
    return float(P[0, 3] / P[0, 0])


def T_ref_from_camera_tf(P: np.ndarray) -> np.ndarray:
    """4x4 from the published camera frame to the rectified reference camera that P projects."""
    T = np.eye(4)
    T[0, 3] = -camera_shift_m(P)
    return T


def static_transforms(calib: RawCalib) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, 4x4 T_parent_from_child) of base_link -> imu -> velo -> camera."""
    T_velo_from_imu = _homogeneous(calib.imu_to_velo.matrix)
    camera = calib.camera_calib(cam=CAMERA_INDEX)
    T_ref_from_velo = camera.T_rect_from_lidar
    T_camera_from_velo = np.linalg.inv(T_ref_from_camera_tf(camera.P2)) @ T_ref_from_velo
    return [
        # The OXTS unit reports its own pose, so base_link is placed at the IMU.
        (BASE_FRAME, IMU_FRAME, np.eye(4)),
        (IMU_FRAME, VELO_FRAME, np.linalg.inv(T_velo_from_imu)),
        (VELO_FRAME, CAMERA_FRAME, np.linalg.inv(T_camera_from_velo)),
    ]
