"""Live pairing of Image, CameraInfo and PointCloud2, and conversion of the triples to frames."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers_distill import CLOUD, IMAGE, INFO, bag_frames, write_bag
from rosbags.highlevel import AnyReader

from monotakd_ros.bags.frame_reader import iter_bag_frames
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.ros.sensor_frames import Rejection, SensorFrameBuilder
from monotakd_ros.ros.sensor_sync import SensorFrameSync

MS = 1_000_000


def msg(stamp_ns: int, name: str = "") -> SimpleNamespace:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec),
                                                  frame_id=name), name=name)


def test_image_pairs_once_both_partners_arrive_in_any_order() -> None:
    sync = SensorFrameSync(slop_s=0.02)
    assert sync.add_point_cloud(msg(990 * MS, "cloud")) == []
    assert sync.add_image(msg(1000 * MS, "image")) == []
    (frame,) = sync.add_camera_info(msg(1000 * MS, "info"))
    assert (frame.stamp_ns, frame.image.name, frame.camera_info.name, frame.point_cloud.name) == (
        1000 * MS, "image", "info", "cloud")
    assert sync.waiting == 0 and sync.paired == 1 and not sync.skipped


def test_nearest_partner_within_slop_is_chosen() -> None:
    sync = SensorFrameSync(slop_s=0.05)
    sync.add_camera_info(msg(1000 * MS, "info"))
    sync.add_point_cloud(msg(960 * MS, "far"))
    sync.add_point_cloud(msg(1010 * MS, "near"))
    (frame,) = sync.add_image(msg(1000 * MS))
    assert frame.point_cloud.name == "near"


def test_image_without_partner_is_given_up_when_newer_messages_pass() -> None:
    sync = SensorFrameSync(slop_s=0.02)
    sync.add_image(msg(1000 * MS))
    sync.add_camera_info(msg(1000 * MS))
    sync.add_point_cloud(msg(970 * MS))  # 30 ms before: outside the slop
    assert sync.waiting == 1  # a cloud inside the window might still come
    sync.add_point_cloud(msg(1025 * MS))  # the stream passed the window without a match
    assert sync.skipped == {"no_point_cloud": 1} and sync.waiting == 0
    sync.add_image(msg(1200 * MS))
    sync.add_point_cloud(msg(1200 * MS))
    assert sync.waiting == 1
    sync.add_camera_info(msg(1300 * MS))
    assert sync.skipped["no_camera_info"] == 1 and sync.paired == 0


def test_waiting_images_are_bounded() -> None:
    sync = SensorFrameSync(slop_s=0.01, max_waiting=3)
    for index in range(5):
        sync.add_image(msg(index * 100 * MS))
    assert sync.waiting == 3 and sync.skipped == {"no_partner_in_time": 2}
    with pytest.raises(ValueError, match="max_waiting >= 1"):
        SensorFrameSync(max_waiting=0)


def _messages(bag: Path) -> list[tuple[str, object]]:
    with AnyReader([bag], default_typestore=monotakd_typestore()) as reader:
        return [(c.topic, reader.deserialize(raw, c.msgtype))
                for c, _, raw in reader.messages()]


def test_live_frames_equal_the_bag_readers_frames(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", bag_frames(4))
    sync, builder = SensorFrameSync(slop_s=0.05), SensorFrameBuilder()
    built = []
    add = {IMAGE: sync.add_image, INFO: sync.add_camera_info, CLOUD: sync.add_point_cloud}
    for topic, message in _messages(bag):
        if topic == "/tf_static":
            builder.add_tf_static(message)
            continue
        built += [builder.build(synced) for synced in add[topic](message)]
    expected = list(iter_bag_frames(bag))
    assert len(built) == len(expected) == 4
    for got, want in zip(built, expected, strict=True):
        assert got.stamp_ns == want.stamp_ns
        np.testing.assert_array_equal(got.image_bgr, want.image_bgr)
        np.testing.assert_array_equal(got.points, want.points)
        np.testing.assert_array_equal(got.P, want.P)
        np.testing.assert_allclose(got.T_cam_from_lidar, want.T_cam_from_lidar, atol=1e-12)


def test_frames_without_extrinsic_or_with_bad_data_are_rejected(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", bag_frames(1))
    sync, builder = SensorFrameSync(), SensorFrameBuilder()
    frames = []
    add = {IMAGE: sync.add_image, INFO: sync.add_camera_info, CLOUD: sync.add_point_cloud}
    for topic, message in _messages(bag):
        if topic != "/tf_static":
            frames += add[topic](message)
    rejection = builder.build(frames[0])
    assert isinstance(rejection, Rejection) and rejection.reason == "no_extrinsic"
    assert "calib_file" in rejection.detail and "/tf_static" in rejection.detail
    frames[0].image.encoding = "yuv422"
    assert builder.build(frames[0]).reason == "bad_image"
    frames[0].image.encoding = "mono8"  # a grey camera on the colour topic (topic mode)
    grey = builder.build(frames[0])
    assert grey.reason == "grey_image" and "trained on colour frames only" in grey.detail
