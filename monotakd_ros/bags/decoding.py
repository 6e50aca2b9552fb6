"""Deserialized bag messages -> numpy: images, point clouds, projection matrices, transforms.

Works on rosbags message objects from ROS 2 bags and from ROS 1 bags alike (ROS 1 spells the
CameraInfo matrices in upper case).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monotakd_ros.errors import BagError, CameraInfoError, ImageEncodingError
from monotakd_ros.geometry.rotations import quat_to_matrix

# encoding -> (channels, channel order to pick for B, G, R)
_IMAGE_ENCODINGS: dict[str, tuple[int, tuple[int, ...]]] = {
    "bgr8": (3, (0, 1, 2)),
    "rgb8": (3, (2, 1, 0)),
    "bgra8": (4, (0, 1, 2)),
    "rgba8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
# Single-channel encodings: a grey camera on the colour topic (kitti2bag records the grey
# cameras too). The student learns colour images, so distillation skips such frames.
GREY_ENCODINGS = frozenset({"mono8", "mono16", "8uc1", "16uc1"})
GREY_IMAGE = "grey_image"  # skip reason


def grey_image_problem(message: Any) -> str | None:
    """Why an Image cannot train the colour student (its grey encoding), or None."""
    encoding = str(message.encoding).lower()
    if encoding in GREY_ENCODINGS:
        return (f"{message.encoding} (grey) image on the colour image topic; the student is "
                "trained on colour frames only")
    return None


# sensor_msgs/PointField datatype -> numpy type
_FIELD_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
_INTENSITY_NAMES = ("i", "intensity", "reflectance")


def image_to_bgr(message: Any) -> np.ndarray:
    """(H, W, 3) uint8 BGR copy of a sensor_msgs/Image (bgr8, rgb8, bgra8, rgba8 or mono8)."""
    encoding = str(message.encoding).lower()
    if encoding not in _IMAGE_ENCODINGS:
        raise ImageEncodingError(
            f"image encoding {message.encoding!r} unsupported; expected one of "
            f"{sorted(_IMAGE_ENCODINGS)}"
        )
    channels, order = _IMAGE_ENCODINGS[encoding]
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.asarray(message.data, dtype=np.uint8)
    if height <= 0 or width <= 0 or step < width * channels or data.size < step * height:
        raise ImageEncodingError(
            f"{encoding} image of {width}x{height} with step {step} needs {step * height} "
            f"bytes, got {data.size}"
        )
    rows = data[: step * height].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)  # (H, W, C)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def point_cloud_to_array(message: Any) -> np.ndarray:
    """(N, 4) float32 x, y, z, intensity of a PointCloud2 (intensity 0 if absent).

    Points with a non-finite coordinate (organised clouds mark misses with NaN) are dropped.
    """
    fields = {f.name: f for f in message.fields}
    missing = [name for name in ("x", "y", "z") if name not in fields]
    if missing:
        raise BagError(f"PointCloud2 lacks field(s) {missing}; has {sorted(fields)}")
    intensity = next((fields[n] for n in _INTENSITY_NAMES if n in fields), None)
    chosen = [fields["x"], fields["y"], fields["z"]] + ([intensity] if intensity else [])
    order = ">" if message.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for field in chosen:
        if field.datatype not in _FIELD_TYPES:
            raise BagError(f"PointCloud2 field {field.name!r} has datatype {field.datatype}")
        names.append(field.name)
        formats.append(order + _FIELD_TYPES[field.datatype])
        offsets.append(int(field.offset))
    point_step, width, height = int(message.point_step), int(message.width), int(message.height)
    row_step = int(message.row_step)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                      "itemsize": point_step})
    data = np.asarray(message.data, dtype=np.uint8)
    if point_step < dtype.itemsize or row_step < width * point_step or (
            data.size < row_step * height):
        raise BagError(
            f"PointCloud2 of {width}x{height} points, point_step {point_step}, row_step "
            f"{row_step} needs {row_step * height} bytes, got {data.size}"
        )
    rows = data[: row_step * height].reshape(height, row_step)[:, : width * point_step]
    records = np.ascontiguousarray(rows).reshape(-1).view(dtype)  # (H * W,)
    points = np.zeros((len(records), 4), dtype=np.float32)
    for column, name in enumerate(names):
        points[:, column] = records[name]
    return points[np.all(np.isfinite(points[:, :3]), axis=1)]


def camera_info_projection(message: Any) -> np.ndarray:
    """(3, 4) float64 P of a CameraInfo (ROS 2 ``p`` or ROS 1 ``P``)."""
    values = getattr(message, "p", None)
    if values is None:
        values = getattr(message, "P", None)
    P = np.asarray(values, dtype=np.float64)
    if P.size != 12:
        raise CameraInfoError(f"CameraInfo P must hold 12 numbers, got {P.size}")
    P = P.reshape(3, 4)
    if not np.all(np.isfinite(P)) or abs(P[0, 0]) < 1e-9 or abs(P[1, 1]) < 1e-9:
        raise CameraInfoError(f"CameraInfo P is unusable (zero focal length?): {P.tolist()}")
    return P


def transform_to_matrix(transform: Any) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform."""
    t, q = transform.translation, transform.rotation
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(np.array([[q.x, q.y, q.z, q.w]]))[0]
    T[:3, 3] = (t.x, t.y, t.z)
    return T


def normalized_frame(frame_id: str) -> str:
    """Frame id without ROS 1's leading slash."""
    return str(frame_id).lstrip("/")


class TransformTree:
    """Static transforms (parent -> child) composed between any two connected frames."""

    def __init__(self) -> None:
        self._parent: dict[str, tuple[str, np.ndarray]] = {}  # child -> (parent, T_parent_child)

    def add(self, parent: str, child: str, T_parent_from_child: np.ndarray) -> None:
        """Record one edge; a later edge for the same child replaces the earlier one."""
        self._parent[normalized_frame(child)] = (normalized_frame(parent), T_parent_from_child)

    def add_tf_message(self, message: Any) -> None:
        """Record every transform of a tf2_msgs/TFMessage."""
        for stamped in message.transforms:
            self.add(stamped.header.frame_id, stamped.child_frame_id,
                     transform_to_matrix(stamped.transform))

    @property
    def frames(self) -> list[str]:
        """Every frame mentioned, sorted."""
        names = set(self._parent) | {parent for parent, _ in self._parent.values()}
        return sorted(names)

    def _T_root_from(self, frame: str) -> tuple[str, np.ndarray]:
        T = np.eye(4)
        seen = {frame}
        while frame in self._parent:
            parent, T_parent_from_frame = self._parent[frame]
            if parent in seen:
                raise BagError(f"/tf_static has a cycle through frame {parent!r}")
            seen.add(parent)
            T = T_parent_from_frame @ T
            frame = parent
        return frame, T

    def lookup(self, target: str, source: str) -> np.ndarray:
        """4x4 T_target_from_source, or BagError when the frames are not connected."""
        target, source = normalized_frame(target), normalized_frame(source)
        root_target, T_root_from_target = self._T_root_from(target)
        root_source, T_root_from_source = self._T_root_from(source)
        if root_target != root_source:
            raise BagError(
                f"/tf_static does not connect {source!r} to {target!r}; frames found: "
                f"{self.frames}"
            )
        return np.linalg.inv(T_root_from_target) @ T_root_from_source
