"""The bag type store: vision_msgs registered from the repository's .msg files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from monotakd_ros.bags.typestore import (
    find_vision_msgs_dir,
    monotakd_typestore,
    vision_msgs_search_dirs,
    vision_msgs_types,
)
from monotakd_ros.errors import BagError

REPO = Path(__file__).resolve().parents[1]
# Hash of vision_msgs 4.x Detection3DArray as real ROS 2 installs report it.
UPSTREAM_DETECTION3DARRAY_HASH = (
    "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"
)


def _rosidl_hashes(package: str) -> dict[str, str]:
    """Hashes rosidl wrote into ``share/<package>/msg/*.json`` at build time (an independent
    implementation of RIHS01)."""
    hashes = {}
    for path in (Path(sys.prefix) / "share" / package / "msg").glob("*.json"):
        description = json.loads(path.read_text())
        name = description["type_description_msg"]["type_description"]["type_name"]
        hashes[name] = next(h["hash_string"] for h in description["type_hashes"]
                            if h["type_name"] == name)
    return hashes


def test_repository_msg_folder_is_found_first() -> None:
    assert vision_msgs_search_dirs()[0] == REPO / "interfaces" / "vision_msgs" / "msg"
    assert find_vision_msgs_dir() == REPO / "interfaces" / "vision_msgs" / "msg"


def test_store_has_kilted_and_vision_types() -> None:
    store = monotakd_typestore()
    for name in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "tf2_msgs/msg/TFMessage",
                 "vision_msgs/msg/Detection3DArray", "vision_msgs/msg/LabelInfo"):
        assert name in store.types, name
    fields = [name for name, _ in store.fielddefs["vision_msgs/msg/Detection3D"][1]]
    assert fields == ["header", "results", "bbox", "id"]
    assert monotakd_typestore() is store  # built once


def test_hashes_are_stable_across_fresh_stores() -> None:
    first = get_typestore(Stores.ROS2_KILTED)
    first.register(vision_msgs_types(find_vision_msgs_dir()))
    second = monotakd_typestore()
    names = [n for n in second.fielddefs if n.startswith("vision_msgs/")]
    assert len(names) == 16
    assert all(first.hash_rihs01(n) == second.hash_rihs01(n) for n in names)


def test_repository_tf_message_hash_equals_rosbags_builtin() -> None:
    builtin = get_typestore(Stores.ROS2_KILTED)
    store = get_typestore(Stores.EMPTY)
    store.register({k: v for k, v in builtin.fielddefs.items() if k != "tf2_msgs/msg/TFMessage"})
    text = (REPO / "interfaces" / "tf2_msgs" / "msg" / "TFMessage.msg").read_text()
    store.register(get_types_from_msg(text, "tf2_msgs/msg/TFMessage"))
    expected = builtin.hash_rihs01("tf2_msgs/msg/TFMessage")
    assert store.hash_rihs01("tf2_msgs/msg/TFMessage") == expected
    assert monotakd_typestore().hash_rihs01("tf2_msgs/msg/TFMessage") == expected


def test_unparsable_msg_file_is_named(tmp_path) -> None:
    (tmp_path / "Broken.msg").write_text("float64[ x\n")
    with pytest.raises(BagError, match=r"Broken\.msg: cannot parse message definition"):
        vision_msgs_types(tmp_path)


def test_vision_hashes_equal_rosidl_build_and_upstream() -> None:
    generated = _rosidl_hashes("vision_msgs")
    store = monotakd_typestore()
    assert len(generated) == 16
    for name, digest in generated.items():
        assert store.hash_rihs01(name) == digest, name
    assert store.hash_rihs01("vision_msgs/msg/Detection3DArray") == UPSTREAM_DETECTION3DARRAY_HASH
