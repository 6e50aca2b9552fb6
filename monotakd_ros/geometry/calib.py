"""Camera/LiDAR calibration of one frame, with the KITTI point transforms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.errors import CalibrationError


@dataclass(frozen=True)
class CameraCalib:
    """KITTI-style calibration: P2 (3, 4), R0_rect (3, 3) and T_cam_from_lidar (3, 4)."""

    P2: np.ndarray
    R0_rect: np.ndarray
    T_cam_from_lidar: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (("P2", (3, 4)), ("R0_rect", (3, 3)), ("T_cam_from_lidar", (3, 4))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise CalibrationError(f"{name} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise CalibrationError(f"{name} holds non-finite values")
            object.__setattr__(self, name, value)
        if abs(self.P2[0, 0]) < 1e-9 or abs(self.P2[1, 1]) < 1e-9:
            raise CalibrationError(f"P2 has a zero focal length: {self.P2.tolist()}")

    @classmethod
    def from_projection(cls, P2: np.ndarray) -> CameraCalib:
        """Calibration known only through P2 (inference: no LiDAR, rectified camera)."""
        return cls(P2=np.asarray(P2, dtype=np.float64), R0_rect=np.eye(3),
                   T_cam_from_lidar=np.hstack([np.eye(3), np.zeros((3, 1))]))

    @property
    def T_rect_from_lidar(self) -> np.ndarray:
        """4x4 transform taking homogeneous LiDAR points into the rectified camera frame."""
        T = np.eye(4)
        T[:3, :4] = self.R0_rect @ self.T_cam_from_lidar
        return T

    def lidar_to_rect(self, points_lidar: np.ndarray) -> np.ndarray:
        """(N, 3) LiDAR points -> (N, 3) rectified camera points."""
        T = self.T_rect_from_lidar
        return points_lidar[:, :3] @ T[:3, :3].T + T[:3, 3]

    def rect_to_lidar(self, points_rect: np.ndarray) -> np.ndarray:
        """(N, 3) rectified camera points -> (N, 3) LiDAR points."""
        T = np.linalg.inv(self.T_rect_from_lidar)
        return points_rect[:, :3] @ T[:3, :3].T + T[:3, 3]

    def rect_to_image(self, points_rect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) rectified points -> ((N, 2) pixel coordinates, (N,) depth in metres)."""
        uvw = points_rect[:, :3] @ self.P2[:, :3].T + self.P2[:, 3]
        depth_m = uvw[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / depth_m[:, None]
        return uv, depth_m

    def scaled(self, sx: float, sy: float) -> CameraCalib:
        """Calibration for an image resized by (sx, sy): P2 rows 0 and 1 scale."""
        P2 = self.P2.copy()
        P2[0] *= sx
        P2[1] *= sy
        return CameraCalib(P2=P2, R0_rect=self.R0_rect, T_cam_from_lidar=self.T_cam_from_lidar)
