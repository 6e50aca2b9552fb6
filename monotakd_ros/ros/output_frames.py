"""Camera boxes as vision_msgs poses: in the optical frame, or moved into a body frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from monotakd_ros.geometry.coord_frames import (
    OrientedBoxes,
    boxes_cam_to_optical,
    optical_box_axes_to_body,
    quat_to_matrix,
    transform_oriented_boxes,
)

try:  # TF exists only in a real ROS install; without it the static extrinsic is used
    import tf2_ros
except ImportError:
    tf2_ros = None


def boxes_in_output_frame(boxes_cam: np.ndarray,
                          T_output_from_optical: np.ndarray | None) -> OrientedBoxes:
    """(N, 7) camera boxes -> poses in the optical frame (None) or in a body-style frame.

    Optical: centre (x, y - h/2, z), rotation of ry about +y, size (l, h, w). Body: the local
    axes become (heading, left, up) with size (l, w, h) before the transform, so with the
    REP-103 rotation this is centre (z, -x, h/2 - y), yaw -ry - pi/2, size (l, w, h).
    """
    optical = boxes_cam_to_optical(boxes_cam)
    if T_output_from_optical is None:
        return optical
    return transform_oriented_boxes(optical_box_axes_to_body(optical), T_output_from_optical)


def transform_to_matrix(transform: Any) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4 matrix."""
    q = transform.rotation
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(np.array([[q.x, q.y, q.z, q.w]]))[0]
    T[:3, 3] = [transform.translation.x, transform.translation.y, transform.translation.z]
    return T


class TfLookup:
    """TF lookups of ``target <- source`` at a stamp, when tf2_ros is importable."""

    def __init__(self, node: Any) -> None:
        if tf2_ros is None:
            raise ImportError("tf2_ros is not importable")
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    def matrix(self, target: str, source: str, stamp: Any) -> np.ndarray | None:
        """T_target_from_source at ``stamp``, or None when TF cannot give it yet."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            stamped = self._buffer.lookup_transform(target, source, Time.from_msg(stamp),
                                                    timeout=Duration(seconds=0.05))
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException,
                tf2_ros.ExtrapolationException):
            return None
        return transform_to_matrix(stamped.transform)

    def close(self) -> None:
        """Stop listening to /tf and /tf_static."""
        self._listener.unregister()
