from __future__ import annotations

import math

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from monotakd_ros.ros.messages import box_corners, detection_array_msg, marker_array_msg

HEADER = Header(frame_id="camera_optical")
HEADER.stamp.sec, HEADER.stamp.nanosec = 42, 7
# Rotation of 90 degrees about +y: local +x (length) maps to -z.
Q_Y90 = np.array([0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)])


def test_detection_array_fields_survive_serialisation() -> None:
    centres = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    quats = np.array([Q_Y90, [0.0, 0.0, 0.0, 1.0]])
    sizes = np.array([[4.0, 1.5, 1.6], [0.8, 1.7, 0.6]])
    msg = detection_array_msg(HEADER, centres, quats, sizes, np.array([0.9, 0.4]),
                              ["car", "pedestrian"], ids=["a", "b"])
    back = deserialize_message(serialize_message(msg), Detection3DArray)
    assert back.header == HEADER
    assert [d.results[0].hypothesis.class_id for d in back.detections] == ["car", "pedestrian"]
    assert [d.results[0].hypothesis.score for d in back.detections] == [0.9, 0.4]
    first = back.detections[0]
    assert first.header == HEADER and first.id == "a"
    assert (first.bbox.center.position.x, first.bbox.center.position.z) == (1.0, 3.0)
    assert first.bbox.center.orientation.y == Q_Y90[1]
    assert first.results[0].pose.pose == first.bbox.center
    assert (first.bbox.size.x, first.bbox.size.y, first.bbox.size.z) == (4.0, 1.5, 1.6)


def test_every_detection_has_a_result() -> None:
    msg = detection_array_msg(HEADER, np.zeros((3, 3)), np.tile([0, 0, 0, 1.0], (3, 1)),
                              np.ones((3, 3)), np.ones(3), ["car"] * 3)
    assert all(len(d.results) == 1 for d in msg.detections)


def test_box_corners_follow_the_rotation() -> None:
    corners = box_corners(np.zeros(3), Q_Y90, np.array([4.0, 2.0, 1.0]))
    # The 4 m length now runs along z, the 1 m depth along x.
    np.testing.assert_allclose(np.ptp(corners, axis=0), [1.0, 2.0, 4.0], atol=1e-12)


def test_markers_start_with_deleteall_and_are_empty_otherwise() -> None:
    empty = marker_array_msg(HEADER, np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 3)),
                             np.zeros(0), [])
    assert [m.action for m in empty.markers] == [Marker.DELETEALL]
    full = marker_array_msg(HEADER, np.array([[0.0, 0.0, 10.0]]), np.array([Q_Y90]),
                            np.array([[4.0, 1.5, 1.6]]), np.array([0.75]), ["car"],
                            lifetime_s=0.25)
    back = deserialize_message(serialize_message(full), MarkerArray)
    box, text = back.markers[1], back.markers[2]
    assert box.type == Marker.LINE_LIST and len(box.points) == 26  # 12 edges + heading
    assert len(box.colors) == 26 and box.colors[0].g > box.colors[0].r  # car green
    assert box.lifetime.nanosec == 250_000_000 and box.header == HEADER
    assert text.text == "car 0.75"
    heading_tip = box.points[-1]
    assert math.isclose(heading_tip.z, 10.0 - 2.0, abs_tol=1e-9)  # front face is at -z


def test_all_boxes_share_one_line_list_with_a_label_each() -> None:
    centres = np.array([[0.0, 0.0, 10.0], [3.0, 0.0, 20.0], [-3.0, 0.0, 15.0]])
    msg = marker_array_msg(HEADER, centres, np.tile([0, 0, 0, 1.0], (3, 1)), np.ones((3, 3)),
                           np.array([0.9, 0.8, 0.7]), ["car", "cyclist", "pedestrian"])
    assert [m.type for m in msg.markers[1:]] == [Marker.LINE_LIST] + [Marker.TEXT_VIEW_FACING] * 3
    assert len(msg.markers[1].points) == 3 * 26
    assert len({m.id for m in msg.markers[1:]}) == 4
    # The second box's vertices sit around its own centre and carry the cyclist colour.
    second = msg.markers[1].points[26:52]
    assert max(abs(p.z - 20.0) for p in second[:24]) == 0.5
    assert msg.markers[1].colors[26].b == 1.0
