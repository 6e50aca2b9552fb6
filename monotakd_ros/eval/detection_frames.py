"""Detection3DArray-like messages -> arrays -> KITTI result labels, without ROS.

Works on any object with the vision_msgs field names (rclpy messages and rosbags messages
alike). Boxes in the camera optical frame (the detector's default) map straight to KITTI camera
boxes with ``boxes_optical_to_cam``. A detector publishing in a body frame (x forward, y left,
z up, body-style local axes with size (l, w, h)) is read back through ``T_output_from_optical``.
2D boxes, which Detection3D cannot carry, are the projections of the 3D boxes clipped to the
image, as KITTI result files hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monotakd_ros.bags.ground_truth import kitti_name_of
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import EvaluationError, GeometryError
from monotakd_ros.geometry.coord_frames import (
    OrientedBoxes,
    boxes_optical_to_cam,
    matrix_to_quat,
    quat_to_matrix,
    rigid_transform,
    transform_oriented_boxes,
    wrap_angle,
)
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d

_NS_PER_S = 1_000_000_000
UNKNOWN_OCCLUSION = -1  # what KITTI result files carry for detections
BOX_AXES = ("optical", "body")
# Columns: the optical-style local axes (heading, down, heading x down) in body-style local axes
# (heading, left, up): down = -up and heading x down = left.
_M_BODY_LOCAL_FROM_OPTICAL_LOCAL = np.array([[1.0, 0.0, 0.0],
                                             [0.0, 0.0, 1.0],
                                             [0.0, -1.0, 0.0]])


def stamp_ns_of(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


@dataclass(frozen=True)
class DetectionFrame:
    """One detection message as arrays: stamp, (N,) class ids and scores, N oriented boxes."""

    stamp_ns: int
    frame_id: str
    class_ids: tuple[str, ...]
    scores: np.ndarray  # (N,) float64
    boxes: OrientedBoxes  # in the message's frame

    def __len__(self) -> int:
        return len(self.class_ids)


def detection_frame_of(message: Any) -> DetectionFrame:
    """Arrays of a Detection3DArray: the best-scored hypothesis of each detection."""
    class_ids, scores, centers, quats, sizes = [], [], [], [], []
    for index, detection in enumerate(message.detections):
        if not len(detection.results):
            raise EvaluationError(f"Detection3D {index} has an empty results list (no class)")
        best = max(detection.results, key=lambda result: result.hypothesis.score)
        class_ids.append(str(best.hypothesis.class_id))
        scores.append(float(best.hypothesis.score))
        pose, size = detection.bbox.center, detection.bbox.size
        centers.append((pose.position.x, pose.position.y, pose.position.z))
        quats.append((pose.orientation.x, pose.orientation.y, pose.orientation.z,
                      pose.orientation.w))
        sizes.append((size.x, size.y, size.z))
    boxes = OrientedBoxes(center=np.reshape(centers, (-1, 3)),
                          quat_xyzw=np.reshape(quats, (-1, 4)), size=np.reshape(sizes, (-1, 3)))
    return DetectionFrame(stamp_ns=stamp_ns_of(message.header.stamp),
                          frame_id=str(message.header.frame_id), class_ids=tuple(class_ids),
                          scores=np.asarray(scores, dtype=np.float64), boxes=boxes)


def body_box_axes_to_optical(boxes: OrientedBoxes) -> OrientedBoxes:
    """The same physical boxes re-described with optical-style local axes and size (l, h, w).

    The inverse of ``geometry.coord_frames.optical_box_axes_to_body``.
    """
    R = quat_to_matrix(boxes.quat_xyzw) @ _M_BODY_LOCAL_FROM_OPTICAL_LOCAL
    return OrientedBoxes(center=boxes.center.copy(), quat_xyzw=matrix_to_quat(R),
                         size=boxes.size[:, [0, 2, 1]])


@dataclass(frozen=True)
class OutputFrame:
    """How the detector's boxes are expressed: ``box_axes`` and the frame's pose.

    ``T_output_from_optical`` maps optical-frame points into the output frame; identity for the
    default optical output, ``geometry.coord_frames.T_body_from_optical()`` for a level camera's
    body.
    """

    box_axes: str = "optical"
    T_output_from_optical: np.ndarray | None = None  # (4, 4)

    def __post_init__(self) -> None:
        if self.box_axes not in BOX_AXES:
            raise EvaluationError(f"box_axes must be one of {BOX_AXES}, got {self.box_axes!r}")
        if self.T_output_from_optical is not None:
            try:
                rigid_transform(self.T_output_from_optical, "T_output_from_optical")
            except GeometryError as err:
                raise EvaluationError(str(err)) from err

    def boxes_in_optical(self, boxes: OrientedBoxes) -> OrientedBoxes:
        """Boxes of the output frame as optical-frame poses with optical-style local axes."""
        if self.T_output_from_optical is not None:
            boxes = transform_oriented_boxes(boxes, np.linalg.inv(self.T_output_from_optical))
        return body_box_axes_to_optical(boxes) if self.box_axes == "body" else boxes


def detections_to_labels(frame: DetectionFrame, P: np.ndarray, image_hw: tuple[int, int],
                         output: OutputFrame | None = None,
                         max_tilt_rad: float = 0.05) -> KittiLabels:
    """KITTI result labels (with scores) of one detection frame, 2D boxes projected with P."""
    if len(frame) == 0:
        return KittiLabels(score=np.zeros(0))
    output = output or OutputFrame()
    try:
        boxes_cam = boxes_optical_to_cam(output.boxes_in_optical(frame.boxes), max_tilt_rad)
    except GeometryError as err:
        raise EvaluationError(f"detections stamped {frame.stamp_ns} ns: {err}") from err
    bbox = boxes3d_to_boxes2d(boxes_cam, P, image_hw, clip=True)
    alpha = wrap_angle(boxes_cam[:, 6] - np.arctan2(boxes_cam[:, 0], boxes_cam[:, 2]))
    return KittiLabels(
        names=np.array([kitti_name_of(c) for c in frame.class_ids], dtype=np.str_),
        truncated=np.zeros(len(frame)),
        occluded=np.full(len(frame), UNKNOWN_OCCLUSION, dtype=np.int64),
        alpha=alpha,
        bbox=bbox,
        boxes_cam=boxes_cam,
        score=frame.scores.copy(),
    )
