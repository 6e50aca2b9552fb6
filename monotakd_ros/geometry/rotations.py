"""Angles and quaternions (x, y, z, w order, as in geometry_msgs), vectorised with numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from monotakd_ros.errors import GeometryError


def wrap_angle(angle_rad: Any) -> Any:
    """Angle(s) wrapped to [-pi, pi); works on floats, numpy arrays and torch tensors."""
    wrapped = (angle_rad + math.pi) % (2.0 * math.pi) - math.pi
    # A tiny negative input makes the modulo round up to exactly 2 pi, which lands on +pi.
    return wrapped - 2.0 * math.pi * (wrapped >= math.pi)


def quat_from_yaw_about_axis(angle_rad: np.ndarray | float, axis: np.ndarray) -> np.ndarray:
    """(N,) angles about one fixed (3,) axis -> (N, 4) unit quaternions [x, y, z, w]."""
    axis = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(axis))
    if norm < 1e-12:
        raise GeometryError(f"rotation axis must be non-zero, got {axis.tolist()}")
    half = 0.5 * np.atleast_1d(np.asarray(angle_rad, dtype=np.float64))
    xyz = np.sin(half)[:, None] * (axis / norm)[None, :]  # (N, 3)
    return np.concatenate([xyz, np.cos(half)[:, None]], axis=1)


def normalized_quats(quat_xyzw: np.ndarray, name: str = "quat_xyzw") -> np.ndarray:
    """(N, 4) quaternions scaled to unit norm; zero or non-finite ones raise GeometryError."""
    quat = np.asarray(quat_xyzw, dtype=np.float64)
    if quat.ndim != 2 or quat.shape[1] != 4:
        raise GeometryError(f"{name} must have shape (N, 4), got {quat.shape}")
    norm = np.linalg.norm(quat, axis=1)
    bad = ~np.isfinite(norm) | (norm < 1e-9)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise GeometryError(f"{name}[{index}] is not a usable quaternion: {quat[index].tolist()}")
    return quat / norm[:, None]


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions [x, y, z, w] (any non-zero norm) -> (N, 3, 3) rotation matrices."""
    x, y, z, w = normalized_quats(quat_xyzw).T
    R = np.empty((len(x), 3, 3))
    R[:, 0, 0] = 1.0 - 2.0 * (y * y + z * z)
    R[:, 0, 1] = 2.0 * (x * y - z * w)
    R[:, 0, 2] = 2.0 * (x * z + y * w)
    R[:, 1, 0] = 2.0 * (x * y + z * w)
    R[:, 1, 1] = 1.0 - 2.0 * (x * x + z * z)
    R[:, 1, 2] = 2.0 * (y * z - x * w)
    R[:, 2, 0] = 2.0 * (x * z - y * w)
    R[:, 2, 1] = 2.0 * (y * z + x * w)
    R[:, 2, 2] = 1.0 - 2.0 * (x * x + y * y)
    return R


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices -> (N, 4) unit quaternions [x, y, z, w] with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3):
        raise GeometryError(f"rotation matrices must have shape (N, 3, 3), got {R.shape}")
    r00, r11, r22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    # Shepperd: derive the quaternion from its largest component, so no division is by ~0.
    pivots = np.stack([r00 + r11 + r22, r00, r11, r22], axis=1)  # (N, 4)
    choice = np.argmax(pivots, axis=1)
    four_w = 2.0 * np.sqrt(np.clip(1.0 + r00 + r11 + r22, 1e-12, None))
    four_x = 2.0 * np.sqrt(np.clip(1.0 + r00 - r11 - r22, 1e-12, None))
    four_y = 2.0 * np.sqrt(np.clip(1.0 - r00 + r11 - r22, 1e-12, None))
    four_z = 2.0 * np.sqrt(np.clip(1.0 - r00 - r11 + r22, 1e-12, None))
    sxy, sxz, syz = R[:, 0, 1] + R[:, 1, 0], R[:, 0, 2] + R[:, 2, 0], R[:, 1, 2] + R[:, 2, 1]
    dx, dy, dz = R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]
    candidates = np.stack([
        np.stack([dx / four_w, dy / four_w, dz / four_w, four_w / 4.0], axis=1),
        np.stack([four_x / 4.0, sxy / four_x, sxz / four_x, dx / four_x], axis=1),
        np.stack([sxy / four_y, four_y / 4.0, syz / four_y, dy / four_y], axis=1),
        np.stack([sxz / four_z, syz / four_z, four_z / 4.0, dz / four_z], axis=1),
    ], axis=1)  # (N, 4 candidates, 4)
    quat = candidates[np.arange(len(R)), choice]
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    # q and -q are the same rotation; a fixed sign makes results comparable.
    return np.where(quat[:, 3:4] < 0.0, -quat, quat)
