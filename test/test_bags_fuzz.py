"""Fuzz: damaged bag metadata, storage files and type strings give the project's errors only.

Every mutated input goes to each bag reader (the replay's ``BagSource``, the distiller's
``recorded_topics`` and ``BagFrameReader``, ``convert_ros1_bag``) and to the message-type
allow-list. A reader may succeed or raise a ``MonotakdError``; anything else (a raw traceback
from rosbags, YAML, sqlite or our own code) fails the test with the input that caused it.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers_replay_eval import write_eval_bag
from rosbags.rosbag2 import Reader, Writer

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.frame_reader import iter_bag_frames
from monotakd_ros.bags.kitti2bag import STORAGES
from monotakd_ros.bags.recorded_stream import BagSource
from monotakd_ros.bags.ros1 import convert_ros1_bag
from monotakd_ros.distiller.bag_mode import recorded_topics
from monotakd_ros.errors import MonotakdError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.ros.type_hashes import installed_type_hash, message_class

SEED = 17
# 500 + 20 + 500 + 40 = 1060 inputs; readers take ~10 ms per damaged bag, 0.2 s per whole one.
METADATA_MUTATIONS = 500
STORAGE_MUTATIONS = 20
TYPE_STRINGS = 500
ROS1_MUTATIONS = 40
CALIB = CameraCalib.from_projection(np.eye(3, 4))  # the frame reader then needs no /tf_static
TOKENS = ["-1", "0", ".nan", ".inf", "''", "[]", "{}", "null", "true", "1e400", "~",
          "9999999999999999999999999", "!!binary aGVsbG8=", "&anchor x", "*anchor", "'\\x00'",
          "[1, [2, [3]]]", "{a: {b: c}}", "'2011-09-26'", "- x", "'../../etc/passwd'", "mcap",
          "sqlite3", "zstd", "file", "message", "cdr", "ros1", "reliable", "best_effort"]
TYPE_TOKENS = ["", "Thing", "TFMessage", "tf2_msgs/TFMessage", "tf2_msgs/msg/TFMessage",
               "evilpkg/msg/TFMessage", "this/msg/Thing", "os/msg/System", "../x/msg/Y",
               "sensor_msgs/msg/Imagee", "sensor_msgs/msg/Image", "std_msgs/msg/String",
               "sensor_msgs/srv/SetCameraInfo", "a/msg/B/c", "ｓｅｎｓｏｒ/msg/Image",
               "sensor_msgs/msg/Image\n", "builtins/msg/Exec", "__import__/msg/X",
               "vision_msgs/msg/Detection3DArray", "tf2_msgs/msg/TFMessage; rm -rf /"]


def mutate_text(text: str, rng: random.Random) -> str:
    """One to three random edits of a YAML document: lines, values, indentation, bytes."""
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        key, sep, _ = lines[index].partition(":")
        operation = rng.randrange(8)
        if operation == 0:
            del lines[index]
        elif operation == 1:
            lines.insert(index, lines[index])
        elif operation == 2 and sep:
            lines[index] = f"{key}: {rng.choice(TOKENS)}"
        elif operation == 3 and sep:
            lines[index] = f"{key}: {rng.choice(TYPE_TOKENS)!r}"
        elif operation == 4:
            lines[index] = " " * rng.randint(0, 6) + lines[index].lstrip()
        elif operation == 5:
            lines = lines[:index] or lines[:1]
        elif operation == 6:
            lines[index] = lines[index][::-1]
        else:
            lines[index] = rng.choice(TOKENS)
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


def read_everything(bag: Path) -> None:
    """Open the bag with every reader and read every message it offers."""
    with BagSource(bag) as source:
        for topic in source.topics:
            try:
                message_class(topic.msgtype)
                installed_type_hash(topic.msgtype)
            except MonotakdError:
                pass
        for _ in source.messages():
            pass
        _ = source.start_ns, source.end_ns
    recorded_topics(bag)
    with iter_bag_frames(bag, calib=CALIB) as reader:
        for _ in reader:
            pass


def outcome(read: Callable[[], object]) -> str:
    """'ok' or the project error's class name; any other exception propagates."""
    try:
        read()
    except MonotakdError as err:
        assert str(err), "an error without a message"
        return type(err).__name__
    return "ok"


@pytest.fixture(scope="module")
def source_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One camera + LiDAR frame in a small mcap bag (short metadata: YAML parsing is slow)."""
    root = tmp_path_factory.mktemp("fuzz")
    full = write_eval_bag(root, num_frames=1).bag
    keep = {layout.IMAGE_TOPIC, layout.CAMERA_INFO_TOPIC, layout.POINT_CLOUD_TOPIC}
    with Reader(full) as reader, Writer(root / "small", version=9,
                                        storage_plugin=STORAGES["mcap"]) as writer:
        kept = [c for c in reader.connections if c.topic in keep]
        # Only the image keeps its recorded QoS: enough to fuzz the QoS parser too.
        out = {c.id: writer.add_connection(
            c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
            offered_qos_profiles=c.ext.offered_qos_profiles if c.topic == layout.IMAGE_TOPIC
            else ()) for c in kept}
        for connection, stamp_ns, data in reader.messages(kept):
            writer.write(out[connection.id], stamp_ns, data)
    return root / "small"


def test_mutated_metadata_and_storage_give_only_project_errors(source_bag: Path,
                                                              tmp_path: Path) -> None:
    rng = random.Random(SEED)
    metadata = (source_bag / "metadata.yaml").read_text()
    storage = source_bag / "small.mcap"
    bag = tmp_path / "small"
    bag.mkdir()
    os.link(storage, bag / storage.name)
    outcomes: Counter[str] = Counter()
    for case in range(METADATA_MUTATIONS):
        text = mutate_text(metadata, rng)
        raw = text.encode()
        if case % 10 == 0:  # non-UTF-8 bytes somewhere in the file
            at = rng.randrange(len(raw))
            raw = raw[:at] + bytes(rng.randrange(128, 256) for _ in range(3)) + raw[at:]
        (bag / "metadata.yaml").write_bytes(raw)
        try:
            outcomes[outcome(lambda: read_everything(bag))] += 1
        except Exception as err:
            raise AssertionError(f"metadata case {case} raised {err!r}; input:\n{raw!r}") from err
    data = storage.read_bytes()
    (bag / "metadata.yaml").write_text(metadata)
    for case in range(STORAGE_MUTATIONS):
        (bag / storage.name).unlink()
        damaged = bytearray(data[:rng.randrange(len(data))] if case % 2 else data)
        for _ in range(rng.randint(1, 8)):  # flips in the header and schema records
            if damaged:
                damaged[rng.randrange(min(len(damaged), 4096))] = rng.randrange(256)
        (bag / storage.name).write_bytes(bytes(damaged))
        try:
            outcomes[outcome(lambda: read_everything(bag))] += 1
        except Exception as err:
            raise AssertionError(f"storage case {case} raised {err!r}") from err
    assert sum(outcomes.values()) == METADATA_MUTATIONS + STORAGE_MUTATIONS
    assert outcomes["BagError"] > METADATA_MUTATIONS // 2, outcomes  # most damage is noticed
    assert outcomes["ok"] > 0, outcomes  # harmless edits (a reordered key) still read


def test_type_strings_are_refused_without_importing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.-:; \\\0é"
    refused = 0
    for case in range(TYPE_STRINGS):
        if case < len(TYPE_TOKENS):
            msgtype = TYPE_TOKENS[case]
        else:
            base = rng.choice(TYPE_TOKENS)
            at = rng.randrange(len(base) + 1)
            msgtype = base[:at] + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
            msgtype += base[at:]
        try:
            message_class(msgtype)
        except MonotakdError:
            refused += 1
        except Exception as err:
            raise AssertionError(f"type string {msgtype!r} raised {err!r}") from err
    assert refused > TYPE_STRINGS * 0.8


def test_damaged_ros1_bags_give_only_project_errors(tmp_path: Path) -> None:
    """Gzipped, truncated and bit-flipped ROS 1 bags (including a non-UTF-8 first line)."""
    header = b"#ROSBAG V2.0\n"
    rng = random.Random(SEED)
    seeds = [gzip.compress(header + b"\0" * 64), header, b"\x89PNG\r\n\x1a\n", b"",
             header + bytes(rng.randrange(256) for _ in range(256))]
    outcomes: Counter[str] = Counter()
    for case in range(ROS1_MUTATIONS):
        raw = bytearray(seeds[case % len(seeds)])
        for _ in range(case // len(seeds)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        src = tmp_path / f"case{case}.bag"
        src.write_bytes(bytes(raw))
        dst = tmp_path / f"out{case}"
        for read in (lambda src=src, dst=dst: convert_ros1_bag(src, dst),
                     lambda src=src: recorded_topics(src),
                     lambda src=src: list(iter_bag_frames(src, calib=CALIB))):
            try:
                outcomes[outcome(read)] += 1
            except Exception as err:
                raise AssertionError(f"ROS 1 case {case} raised {err!r}; input {raw[:40]!r}"
                                     ) from err
        shutil.rmtree(dst, ignore_errors=True)
    assert outcomes == {"BagError": 3 * ROS1_MUTATIONS}


def test_the_gzipped_bag_error_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "drive.bag"
    src.write_bytes(gzip.compress(b"#ROSBAG V2.0\n" + b"\0" * 64))
    with pytest.raises(MonotakdError, match=f"{src}.*cannot"):
        recorded_topics(src)
    with pytest.raises(MonotakdError, match=f"{src}.*cannot convert the ROS 1 bag"):
        convert_ros1_bag(src, tmp_path / "out")


def test_a_huge_recorded_depth_is_capped(source_bag: Path, tmp_path: Path) -> None:
    """A damaged QoS depth must not size the replay's publisher history."""
    bag = tmp_path / "small"
    bag.mkdir()
    os.link(source_bag / "small.mcap", bag / "small.mcap")
    metadata = (source_bag / "metadata.yaml").read_text()
    assert metadata.count("depth: 10\n") == 1  # the image's recorded QoS
    (bag / "metadata.yaml").write_text(metadata.replace("depth: 10\n", f"depth: {10**25}\n"))
    with BagSource(bag) as source:
        depths = {topic.name: topic.qos.depth for topic in source.topics}
    assert depths[layout.IMAGE_TOPIC] == 1000
