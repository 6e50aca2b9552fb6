"""The generated vision_msgs/tf2_msgs must be field-for-field upstream, so hashes match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.msg import get_types_from_msg

from monotakd_ros.ros.type_hashes import type_hashes

MSG_DIR = Path(__file__).parents[1] / "interfaces" / "vision_msgs" / "msg"

# Field lists of vision_msgs 4.1.x (ros-perception/vision_msgs, Humble..Kilted).
UPSTREAM_FIELDS = {
    "Point2D": ["float64 x", "float64 y"],
    "Pose2D": ["vision_msgs/Point2D position", "float64 theta"],
    "BoundingBox2D": ["vision_msgs/Pose2D center", "float64 size_x", "float64 size_y"],
    "BoundingBox2DArray": ["std_msgs/Header header", "BoundingBox2D[] boxes"],
    "BoundingBox3D": ["geometry_msgs/Pose center", "geometry_msgs/Vector3 size"],
    "BoundingBox3DArray": ["std_msgs/Header header", "BoundingBox3D[] boxes"],
    "ObjectHypothesis": ["string class_id", "float64 score"],
    "ObjectHypothesisWithPose": ["ObjectHypothesis hypothesis",
                                 "geometry_msgs/PoseWithCovariance pose"],
    "Classification": ["std_msgs/Header header", "ObjectHypothesis[] results"],
    "Detection2D": ["std_msgs/Header header", "ObjectHypothesisWithPose[] results",
                    "BoundingBox2D bbox", "string id"],
    "Detection2DArray": ["std_msgs/Header header", "Detection2D[] detections"],
    "Detection3D": ["std_msgs/Header header", "ObjectHypothesisWithPose[] results",
                    "BoundingBox3D bbox", "string id"],
    "Detection3DArray": ["std_msgs/Header header", "Detection3D[] detections"],
    "VisionClass": ["uint16 class_id", "string class_name"],
    "LabelInfo": ["std_msgs/Header header", "VisionClass[] class_map", "float32 threshold"],
    "VisionInfo": ["std_msgs/Header header", "string method", "int32 database_version",
                   "string database_location"],
}
# Published by a third-party ROS 2 client generated from upstream vision_msgs 4.x.
UPSTREAM_DETECTION3DARRAY_HASH = (
    "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"
)


def msg_fields(name: str) -> list[str]:
    lines = (MSG_DIR / f"{name}.msg").read_text().splitlines()
    return [re.sub(r"\s+", " ", ln.strip()) for ln in lines if ln.strip() and ln[0] != "#"]


@pytest.mark.parametrize("name", sorted(UPSTREAM_FIELDS))
def test_msg_field_lists_equal_upstream(name: str) -> None:
    assert msg_fields(name) == UPSTREAM_FIELDS[name]


def test_no_extra_msg_files() -> None:
    assert {p.stem for p in MSG_DIR.glob("*.msg")} == set(UPSTREAM_FIELDS)


def test_generated_hashes_equal_an_independent_implementation() -> None:
    """rosidl's hashes (from the build) must equal those rosbags computes from the .msg text."""
    store = get_typestore(Stores.ROS2_KILTED)
    for path in MSG_DIR.glob("*.msg"):
        store.register(get_types_from_msg(path.read_text(), f"vision_msgs/msg/{path.stem}"))
    generated = type_hashes("vision_msgs")
    assert len(generated) == len(UPSTREAM_FIELDS)
    for name, digest in generated.items():
        assert store.hash_rihs01(name) == digest, name
    assert generated["vision_msgs/msg/Detection3DArray"] == UPSTREAM_DETECTION3DARRAY_HASH


def test_tf2_msgs_hash_equals_the_real_one() -> None:
    expected = get_typestore(Stores.ROS2_KILTED).hash_rihs01("tf2_msgs/msg/TFMessage")
    assert type_hashes("tf2_msgs") == {"tf2_msgs/msg/TFMessage": expected}
