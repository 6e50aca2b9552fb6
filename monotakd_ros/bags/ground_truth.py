"""Ground-truth KITTI labels as vision_msgs/Detection3DArray, and back.

Boxes are written in the image's optical frame with ``boxes_cam_to_optical`` (the same
convention the detector publishes with), one ``ObjectHypothesisWithPose`` per detection: the
lower-case KITTI class (``car``, ``pedestrian``, ``cyclist``, ``van``, ``person_sitting``, ...)
with score 1.0 and the box pose.

Detection3D has no place for KITTI's truncation, occlusion, alpha and 2D box, which the
evaluation needs for its difficulty levels, so they travel in ``Detection3D.id`` as
``trunc=<float>;occ=<int>;alpha=<rad>;bbox=<x1>,<y1>,<x2>,<y2>`` with two decimals, exactly
what a KITTI label_2 file holds. Keys may come in any order; unknown keys are ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rosbags.typesys.store import Typestore

from monotakd_ros.bags.frame_messages import header_message
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import BagError
from monotakd_ros.geometry.coord_frames import (
    OrientedBoxes,
    boxes_cam_to_optical,
    boxes_optical_to_cam,
)

DETECTIONS_TYPE = "vision_msgs/msg/Detection3DArray"
_KITTI_NAMES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc",
                "DontCare")
_NAME_OF_CLASS_ID = {name.lower(): name for name in _KITTI_NAMES}
_DECIMALS = 2


def class_id_of(kitti_name: str) -> str:
    """KITTI class name -> vision_msgs class id (lower case)."""
    return str(kitti_name).lower()


def kitti_name_of(class_id: str) -> str:
    """vision_msgs class id -> KITTI class name (``car`` -> ``Car``); unknown ids kept."""
    return _NAME_OF_CLASS_ID.get(class_id.lower(), class_id)


def format_label_metadata(truncated: float, occluded: int, alpha: float, bbox: Any) -> str:
    """The ``Detection3D.id`` string carrying what Detection3D cannot hold."""
    x1, y1, x2, y2 = (f"{float(v):.{_DECIMALS}f}" for v in bbox)
    return (f"trunc={float(truncated):.{_DECIMALS}f};occ={int(occluded)};"
            f"alpha={float(alpha):.{_DECIMALS}f};bbox={x1},{y1},{x2},{y2}")


def parse_label_metadata(text: str) -> tuple[float, int, float, np.ndarray]:
    """(truncated, occluded, alpha, (4,) bbox) from a ``Detection3D.id`` string."""
    entries: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            entries[key.strip()] = value.strip()
    missing = [key for key in ("trunc", "occ", "alpha", "bbox") if key not in entries]
    if missing:
        raise BagError(f"Detection3D.id {text!r} lacks KITTI metadata key(s) {missing}")
    try:
        bbox = np.array([float(v) for v in entries["bbox"].split(",")])
        values = float(entries["trunc"]), int(entries["occ"]), float(entries["alpha"])
    except ValueError as err:
        raise BagError(f"Detection3D.id {text!r}: {err}") from err
    if bbox.shape != (4,):
        raise BagError(f"Detection3D.id {text!r}: bbox needs 4 numbers, got {bbox.size}")
    return (*values, bbox)


def _pose(store: Typestore, center: np.ndarray, quat_xyzw: np.ndarray) -> Any:
    position = store.types["geometry_msgs/msg/Point"](*(float(v) for v in center))
    orientation = store.types["geometry_msgs/msg/Quaternion"](*(float(v) for v in quat_xyzw))
    return store.types["geometry_msgs/msg/Pose"](position=position, orientation=orientation)


def detections_message(
    store: Typestore, labels: KittiLabels, stamp_ns: int, frame_id: str
) -> Any:
    """vision_msgs/Detection3DArray of ground-truth ``labels`` (score 1.0 each)."""
    header = header_message(store, stamp_ns, frame_id)
    boxes = boxes_cam_to_optical(labels.boxes_cam)
    detections = []
    for i in range(len(labels)):
        pose = _pose(store, boxes.center[i], boxes.quat_xyzw[i])
        hypothesis = store.types["vision_msgs/msg/ObjectHypothesis"](
            class_id=class_id_of(labels.names[i]), score=1.0)
        result = store.types["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=hypothesis,
            pose=store.types["geometry_msgs/msg/PoseWithCovariance"](
                pose=pose, covariance=np.zeros(36)),
        )
        size = store.types["geometry_msgs/msg/Vector3"](*(float(v) for v in boxes.size[i]))
        detections.append(store.types["vision_msgs/msg/Detection3D"](
            header=header,
            results=[result],
            bbox=store.types["vision_msgs/msg/BoundingBox3D"](center=pose, size=size),
            id=format_label_metadata(labels.truncated[i], labels.occluded[i], labels.alpha[i],
                                     labels.bbox[i]),
        ))
    return store.types[DETECTIONS_TYPE](header=header, detections=detections)


def labels_from_detections(message: Any) -> KittiLabels:
    """KittiLabels of a deserialized ground-truth Detection3DArray (best hypothesis per box)."""
    detections = list(message.detections)
    if not detections:
        return KittiLabels()
    names, metadata, centers, quats, sizes = [], [], [], [], []
    for index, detection in enumerate(detections):
        if not len(detection.results):
            raise BagError(f"Detection3D {index} has no results (class unknown)")
        best = max(detection.results, key=lambda r: r.hypothesis.score)
        names.append(kitti_name_of(best.hypothesis.class_id))
        metadata.append(parse_label_metadata(detection.id))
        pose = detection.bbox.center
        centers.append((pose.position.x, pose.position.y, pose.position.z))
        quats.append((pose.orientation.x, pose.orientation.y, pose.orientation.z,
                      pose.orientation.w))
        sizes.append((detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z))
    boxes = OrientedBoxes(center=np.array(centers), quat_xyzw=np.array(quats),
                          size=np.array(sizes))
    truncated, occluded, alpha, bbox = zip(*metadata, strict=True)
    return KittiLabels(
        names=np.array(names, dtype=np.str_),
        truncated=np.array(truncated, dtype=np.float64),
        occluded=np.array(occluded, dtype=np.int64),
        alpha=np.array(alpha, dtype=np.float64),
        bbox=np.stack(bbox),
        boxes_cam=boxes_optical_to_cam(boxes),
    )
