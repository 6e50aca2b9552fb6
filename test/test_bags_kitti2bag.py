"""KITTI raw drive -> rosbag2 (mcap, sqlite3) in the kitti2bag layout, read back frame by frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers_kitti_raw import write_synthetic_drive
from rosbags.highlevel import AnyReader

from monotakd_ros.bags.cli import kitti2bag_main
from monotakd_ros.bags.frame_reader import iter_bag_frames
from monotakd_ros.bags.ground_truth import parse_label_metadata
from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.errors import BagError
from monotakd_ros.geometry.rotations import quat_to_matrix

EXPECTED_TOPICS = {
    "/kitti/camera_color_left/image_raw": "sensor_msgs/msg/Image",
    "/kitti/camera_color_left/camera_info": "sensor_msgs/msg/CameraInfo",
    "/kitti/velo/pointcloud": "sensor_msgs/msg/PointCloud2",
    "/kitti/oxts/imu": "sensor_msgs/msg/Imu",
    "/kitti/oxts/gps/fix": "sensor_msgs/msg/NavSatFix",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/kitti/ground_truth/detections": "vision_msgs/msg/Detection3DArray",
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("raw")
    written = write_synthetic_drive(root, num_frames=3)
    bags = {storage: root / f"drive_{storage}" for storage in ("mcap", "sqlite3")}
    summaries = {s: convert_drive_to_bag(written.drive_dir, bags[s], storage=s) for s in bags}
    return {"written": written, "drive": RawDrive(written.drive_dir), "bags": bags,
            "summaries": summaries}


def _messages(bag: Path) -> dict[str, list[tuple[int, object, bytes]]]:
    """topic -> [(log time, deserialized message, raw CDR bytes)]."""
    result: dict[str, list] = {}
    with AnyReader([bag], default_typestore=monotakd_typestore()) as reader:
        for connection, log_ns, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            result.setdefault(connection.topic, []).append((log_ns, message, bytes(raw)))
    return result


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_frames_read_back_identically(converted, storage) -> None:
    written, drive = converted["written"], converted["drive"]
    reader = iter_bag_frames(converted["bags"][storage])
    frames = list(reader)
    assert len(frames) == 3 and not reader.skipped and not reader.no_labels
    camera = drive.calib.camera_calib(cam=2)
    for index, frame in enumerate(frames):
        assert frame.stamp_ns == written.image_stamps_ns[index]
        np.testing.assert_array_equal(frame.image_bgr, written.images[index])
        np.testing.assert_array_equal(frame.points, written.points[index])
        np.testing.assert_array_equal(frame.P, camera.P2)
        # Quaternions in /tf_static carry the rig; KITTI's 7-digit matrices are nearly orthonormal.
        np.testing.assert_allclose(frame.T_cam_from_lidar, camera.T_rect_from_lidar[:3],
                                   atol=1e-6)
        expected, got = drive.frame_labels(index), frame.gt_labels
        assert list(got.names) == list(expected.names)
        np.testing.assert_array_equal(got.occluded, expected.occluded)
        np.testing.assert_allclose(got.boxes_cam, expected.boxes_cam, atol=1e-9)
        # Detection3D.id carries label_2's two decimals.
        np.testing.assert_allclose(got.truncated, expected.truncated, atol=0.005 + 1e-12)
        np.testing.assert_allclose(got.bbox, expected.bbox, atol=0.005 + 1e-9)
        np.testing.assert_allclose(got.alpha, expected.alpha, atol=0.005 + 1e-12)


def test_summary_and_topics(converted) -> None:
    summary = converted["summaries"]["mcap"]
    written = converted["written"]
    assert summary.num_frames == 3 and summary.has_ground_truth
    assert summary.start_ns == written.velodyne_stamps_ns[0]
    assert summary.end_ns == written.image_stamps_ns[-1]
    assert summary.message_counts["/tf_static"] == 1
    assert summary.message_counts["/kitti/velo/pointcloud"] == 3
    with AnyReader([converted["bags"]["sqlite3"]]) as reader:
        assert {name: info.msgtype for name, info in reader.topics.items()} == EXPECTED_TOPICS


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_tf_static_is_offered_transient_local(converted, storage) -> None:
    metadata = yaml.safe_load((converted["bags"][storage] / "metadata.yaml").read_text())
    topics = {t["topic_metadata"]["name"]: t["topic_metadata"]
              for t in metadata["rosbag2_bagfile_information"]["topics_with_message_count"]}
    assert topics["/tf_static"]["offered_qos_profiles"][0]["durability"] == "transient_local"
    assert topics["/kitti/velo/pointcloud"]["offered_qos_profiles"][0]["durability"] == "volatile"


def test_message_contents(converted) -> None:
    messages = _messages(converted["bags"]["mcap"])
    written = converted["written"]
    camera = converted["drive"].calib.camera_calib(cam=2)
    image_log, image, _ = messages["/kitti/camera_color_left/image_raw"][0]
    _, info, _ = messages["/kitti/camera_color_left/camera_info"][0]
    assert image_log == written.image_stamps_ns[0]
    assert (image.encoding, image.header.frame_id, image.step) == ("bgr8", "camera_color_left",
                                                                   3 * image.width)
    assert info.header.stamp == image.header.stamp
    np.testing.assert_array_equal(info.k.reshape(3, 3), camera.P2[:, :3])
    assert (info.height, info.width) == written.images[0].shape[:2]
    _, cloud, _ = messages["/kitti/velo/pointcloud"][0]
    assert cloud.header.frame_id == "velo_link"
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("i", 12, 7)]
    (_, tf_static, _), = messages["/tf_static"]
    edges = [(t.header.frame_id, t.child_frame_id) for t in tf_static.transforms]
    assert edges == [("base_link", "imu_link"), ("imu_link", "velo_link"),
                     ("velo_link", "camera_color_left")]
    _, truth, _ = messages["/kitti/ground_truth/detections"][1]
    assert truth.header.frame_id == "camera_color_left"
    assert [d.results[0].hypothesis.class_id for d in truth.detections] == [
        "car", "pedestrian", "cyclist", "person_sitting"]
    assert all(len(d.results) == 1 and d.results[0].hypothesis.score == 1.0
               for d in truth.detections)
    trunc, occ, _, _ = parse_label_metadata(truth.detections[1].id)
    assert (trunc, occ) == (0.0, 3)


def _rotation_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    c, s = math.cos, math.sin
    Rx = np.array([[1, 0, 0], [0, c(roll), -s(roll)], [0, s(roll), c(roll)]])
    Ry = np.array([[c(pitch), 0, s(pitch)], [0, 1, 0], [-s(pitch), 0, c(pitch)]])
    Rz = np.array([[c(yaw), -s(yaw), 0], [s(yaw), c(yaw), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def test_oxts_messages(converted) -> None:
    messages = _messages(converted["bags"]["sqlite3"])
    packets = converted["written"].oxts
    _, imu, _ = messages["/kitti/oxts/imu"][1]
    q = imu.orientation
    np.testing.assert_allclose(quat_to_matrix(np.array([[q.x, q.y, q.z, q.w]]))[0],
                               _rotation_zyx(packets[1].roll, packets[1].pitch, packets[1].yaw),
                               atol=1e-12)
    assert (imu.angular_velocity.x, imu.linear_acceleration.z) == (packets[1].wf, packets[1].au)
    _, fix, _ = messages["/kitti/oxts/gps/fix"][1]
    assert (fix.latitude, fix.longitude, fix.altitude) == (packets[1].lat, packets[1].lon,
                                                           packets[1].alt)
    assert fix.position_covariance[0] == pytest.approx(packets[1].pos_accuracy ** 2)
    poses = [m.transforms[0] for _, m, _ in messages["/tf"]]
    assert (poses[0].header.frame_id, poses[0].child_frame_id) == ("world", "base_link")
    # Independent check of the map: metres per degree on a sphere of the WGS84 radius.
    step = [poses[1].transform.translation.x - poses[0].transform.translation.x,
            poses[1].transform.translation.y - poses[0].transform.translation.y]
    lat_rad = math.radians(packets[0].lat)
    east_m = math.radians(packets[1].lon - packets[0].lon) * 6378137.0 * math.cos(lat_rad)
    north_m = math.radians(packets[1].lat - packets[0].lat) * 6378137.0 / math.cos(lat_rad)
    np.testing.assert_allclose(step, [east_m, north_m * math.cos(lat_rad)], rtol=1e-3)


def test_rclpy_deserializes_what_was_written(converted) -> None:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    messages = _messages(converted["bags"]["mcap"])
    written = converted["written"]
    _, _, raw = messages["/kitti/camera_color_left/image_raw"][2]
    image = deserialize_message(raw, Image)
    assert (image.height, image.width, image.encoding) == (*written.images[2].shape[:2], "bgr8")
    pixels = np.asarray(image.data, np.uint8).reshape(written.images[2].shape)
    np.testing.assert_array_equal(pixels, written.images[2])
    _, _, raw = messages["/kitti/velo/pointcloud"][2]
    cloud = deserialize_message(raw, PointCloud2)
    points = np.frombuffer(bytes(cloud.data), dtype="<f4").reshape(-1, 4)
    np.testing.assert_array_equal(points, written.points[2])
    _, _, raw = messages["/kitti/camera_color_left/camera_info"][2]
    info = deserialize_message(raw, CameraInfo)
    np.testing.assert_array_equal(np.reshape(info.p, (3, 4)),
                                  converted["drive"].calib.camera_calib(2).P2)


def test_rclpy_deserializes_ground_truth(converted) -> None:
    from rclpy.serialization import deserialize_message
    from vision_msgs.msg import Detection3DArray
    messages = _messages(converted["bags"]["mcap"])
    _, message, raw = messages["/kitti/ground_truth/detections"][1]
    truth = deserialize_message(raw, Detection3DArray)
    assert [d.results[0].hypothesis.class_id for d in truth.detections] == [
        d.results[0].hypothesis.class_id for d in message.detections]
    assert truth.detections[0].bbox.size.x == message.detections[0].bbox.size.x
    assert truth.detections[2].id == message.detections[2].id


def test_compressed_bags_read_back(tmp_path, converted) -> None:
    written = converted["written"]
    for storage in ("mcap", "sqlite3"):
        bag = tmp_path / f"zstd_{storage}"
        convert_drive_to_bag(written.drive_dir, bag, storage=storage, compress=True)
        frames = list(iter_bag_frames(bag))
        assert [f.stamp_ns for f in frames] == written.image_stamps_ns
        np.testing.assert_array_equal(frames[1].image_bgr, written.images[1])


def test_interrupted_conversion_leaves_no_bag(tmp_path, converted) -> None:
    def fail_on_second_frame(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    out = tmp_path / "bags" / "drive"
    with pytest.raises(KeyboardInterrupt):
        convert_drive_to_bag(converted["written"].drive_dir, out, on_frame=fail_on_second_frame)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging folder left behind


def test_conversion_errors(tmp_path, converted) -> None:
    drive_dir = converted["written"].drive_dir
    with pytest.raises(BagError, match="exists already, not overwriting"):
        convert_drive_to_bag(drive_dir, converted["bags"]["mcap"])
    with pytest.raises(BagError, match=r"storage must be one of \['mcap', 'sqlite3'\], got 'db3'"):
        convert_drive_to_bag(drive_dir, tmp_path / "x", storage="db3")


def test_cli_converts_and_reports_errors(tmp_path, converted, capsys) -> None:
    out = tmp_path / "cli_bag"
    drive_dir = str(converted["written"].drive_dir)
    assert kitti2bag_main([drive_dir, "--out", str(out), "--storage", "sqlite3", "--quiet"]) == 0
    assert "3 frames" in capsys.readouterr().out
    assert len(list(iter_bag_frames(out))) == 3
    assert kitti2bag_main([str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                           "--quiet"]) == 1
