"""The synthetic sensor rig: KITTI's real calibration and the rig's pose in the world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.kitti_camera import (  # noqa: F401 -- re-exported
    KITTI_IMAGE_HW,
    KITTI_P2,
    KITTI_R0_RECT,
    KITTI_TR_VELO_TO_CAM,
)

LIDAR_HEIGHT_M = 1.73


def kitti_camera_calib() -> CameraCalib:
    """The real KITTI calibration the synthetic camera and LiDAR share."""
    return CameraCalib(P2=KITTI_P2.copy(), R0_rect=KITTI_R0_RECT.copy(),
                       T_cam_from_lidar=KITTI_TR_VELO_TO_CAM.copy())


def camera_calib_with_intrinsics(fx_px: float, fy_px: float, cx_px: float,
                                 cy_px: float) -> CameraCalib:
    """KITTI's rig with another camera in place of camera 2: same optical centre and axes.

    ``P2 = K [I | t]`` with ``t`` KITTI camera 2's offset from the rectified frame, so labels
    (in the rectified frame) of one scene are the same boxes whichever camera renders it.
    """
    K_kitti = KITTI_P2[:, :3]
    t_cam2 = np.linalg.solve(K_kitti, KITTI_P2[:, 3])  # (3,) camera 2 offset, metres
    K = np.array([[fx_px, 0.0, cx_px], [0.0, fy_px, cy_px], [0.0, 0.0, 1.0]])
    P2 = np.concatenate([K, (K @ t_cam2)[:, None]], axis=1)
    return CameraCalib(P2=P2, R0_rect=KITTI_R0_RECT.copy(),
                       T_cam_from_lidar=KITTI_TR_VELO_TO_CAM.copy())


def rotation_zyx(yaw_rad: float, pitch_rad: float, roll_rad: float) -> np.ndarray:
    """(3, 3) rotation Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cy, sy = np.cos(yaw_rad), np.sin(yaw_rad)
    cp, sp = np.cos(pitch_rad), np.sin(pitch_rad)
    cr, sr = np.cos(roll_rad), np.sin(roll_rad)
    Rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    Ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return Rz @ Ry @ Rx


@dataclass(frozen=True)
class RigPose:
    """Pose of the LiDAR in the world: position (m) and yaw/pitch/roll (rad).

    Positive pitch tilts the rig's nose down, as braking or a rear-heavy load does.
    """

    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float
    pitch_rad: float
    roll_rad: float

    @property
    def position(self) -> np.ndarray:
        """(3,) LiDAR origin in the world frame."""
        return np.array([self.x_m, self.y_m, self.z_m])

    @property
    def R_world_from_lidar(self) -> np.ndarray:
        """(3, 3) rotation taking LiDAR directions into the world frame."""
        return rotation_zyx(self.yaw_rad, self.pitch_rad, self.roll_rad)

    @property
    def T_world_from_lidar(self) -> np.ndarray:
        """(4, 4) pose of the LiDAR in the world."""
        T = np.eye(4)
        T[:3, :3] = self.R_world_from_lidar
        T[:3, 3] = self.position
        return T


def T_rect_from_world(calib: CameraCalib, pose: RigPose) -> np.ndarray:
    """(4, 4) transform of world points into the rectified camera frame."""
    return calib.T_rect_from_lidar @ np.linalg.inv(pose.T_world_from_lidar)


def camera_center_rect(calib: CameraCalib) -> np.ndarray:
    """(3,) optical centre of the P2 camera in the rectified frame (P2 carries a baseline)."""
    return -np.linalg.solve(calib.P2[:, :3], calib.P2[:, 3])


def ground_plane_rect(T_rect_from_W: np.ndarray) -> np.ndarray:
    """(4,) KITTI ``planes/`` entry: a x + b y + c z + d = 0 in rect, normal pointing up (-y)."""
    normal = T_rect_from_W[:3, :3] @ np.array([0.0, 0.0, 1.0])
    point = T_rect_from_W[:3, 3]  # the world origin lies on the ground
    return np.concatenate([normal, [-float(normal @ point)]])
