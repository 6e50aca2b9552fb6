"""Detection3DArray and MarkerArray builders from arrays of oriented boxes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
from visualization_msgs.msg import Marker, MarkerArray

CLASS_COLORS: dict[str, tuple[float, float, float]] = {
    "car": (0.1, 0.8, 0.2),
    "pedestrian": (0.95, 0.3, 0.2),
    "cyclist": (0.2, 0.5, 1.0),
}
# Corner signs of a unit box (x, y, z); 4 at -z then 4 at +z, and the 12 edges between them.
_UNIT_CORNERS = np.array(
    [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
     [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]], dtype=np.float64
) / 2.0
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7)]
_EDGE_INDEX = np.array(_EDGES).reshape(-1)  # (24,) corner index per line-list vertex
_VERTICES_PER_BOX = len(_EDGE_INDEX) + 2  # 12 edges + the heading segment


def detection_array_msg(
    header: Header,
    centers: np.ndarray,
    quats_xyzw: np.ndarray,
    sizes: np.ndarray,
    scores: np.ndarray,
    class_ids: Sequence[str],
    ids: Sequence[str] | None = None,
) -> Detection3DArray:
    """Build a Detection3DArray: one hypothesis (class id + score) per box, header copied."""
    out = Detection3DArray(header=header)
    for i in range(len(centers)):
        det = Detection3D(header=header)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = str(class_ids[i])
        hypothesis.hypothesis.score = float(scores[i])
        _fill_pose(hypothesis.pose.pose, centers[i], quats_xyzw[i])
        det.results.append(hypothesis)
        _fill_pose(det.bbox.center, centers[i], quats_xyzw[i])
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (float(v) for v in sizes[i])
        if ids is not None:
            det.id = str(ids[i])
        out.detections.append(det)
    return out


def marker_array_msg(
    header: Header,
    centers: np.ndarray,
    quats_xyzw: np.ndarray,
    sizes: np.ndarray,
    scores: np.ndarray,
    class_ids: Sequence[str],
    lifetime_s: float = 0.5,
    namespace: str = "monotakd",
) -> MarkerArray:
    """DELETEALL, then one LINE_LIST of every box (edges + heading), then a label per box.

    One line list for all boxes keeps message building well under a millisecond for tens of
    boxes; per-vertex colours carry the class colour.
    """
    markers = MarkerArray()
    markers.markers.append(Marker(header=header, ns=namespace, action=Marker.DELETEALL))
    if len(centers) == 0:
        return markers
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    colors = [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in
              (CLASS_COLORS.get(str(c), (0.9, 0.9, 0.9)) for c in class_ids)]
    boxes = Marker(header=header, ns=namespace, id=0, type=Marker.LINE_LIST,
                   action=Marker.ADD, lifetime=lifetime)
    boxes.pose.orientation.w = 1.0
    boxes.scale.x = 0.05
    segments = []
    for i in range(len(centers)):
        corners = box_corners(centers[i], quats_xyzw[i], sizes[i])
        # Heading: from the centre to the middle of the front (+x local) face.
        front = centers[i] + quat_to_matrix(quats_xyzw[i]) @ np.array([sizes[i][0] / 2, 0, 0])
        segments.append(np.vstack([corners[_EDGE_INDEX], centers[i], front]))
    vertices = np.concatenate(segments).tolist()  # (26 N, 3)
    boxes.points = [Point(x=x, y=y, z=z) for x, y, z in vertices]
    boxes.colors = [colors[i] for i in range(len(centers)) for _ in range(_VERTICES_PER_BOX)]
    markers.markers.append(boxes)
    for i in range(len(centers)):
        text = Marker(header=header, ns=namespace, id=i + 1, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, lifetime=lifetime, color=colors[i],
                      text=f"{class_ids[i]} {float(scores[i]):.2f}")
        _fill_pose(text.pose, centers[i], np.array([0.0, 0.0, 0.0, 1.0]))
        text.scale.z = 0.5
        markers.markers.append(text)
    return markers


def quat_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> 3x3 rotation matrix."""
    x, y, z, w = (float(v) for v in q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def box_corners(center: np.ndarray, q_xyzw: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(8, 3) corners of an oriented box whose size is along its local x, y, z axes."""
    local = _UNIT_CORNERS * np.asarray(size, dtype=np.float64)
    return local @ quat_to_matrix(q_xyzw).T + np.asarray(center, dtype=np.float64)


def _fill_pose(pose: Any, center: np.ndarray, q_xyzw: np.ndarray) -> None:
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in center)
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q_xyzw)
