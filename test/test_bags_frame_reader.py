"""Reading frames from bags: ROS 1 kitti2bag bags, their ROS 2 conversion, pairing and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers_kitti_raw import kitti_camera_calib, write_synthetic_drive
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from monotakd_ros.bags.decoding import image_to_bgr, point_cloud_to_array
from monotakd_ros.bags.frame_messages import (
    camera_info_message,
    image_message,
    point_cloud_message,
    tf_message,
    transform_stamped_message,
)
from monotakd_ros.bags.frame_reader import iter_bag_frames
from monotakd_ros.bags.ground_truth import detections_message
from monotakd_ros.bags.ros1 import convert_ros1_bag
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.errors import BagError, ImageEncodingError
from monotakd_ros.geometry.rotations import matrix_to_quat

IMAGE = "/kitti/camera_color_left/image_raw"
INFO = "/kitti/camera_color_left/camera_info"
CLOUD = "/kitti/velo/pointcloud"
ROS1 = get_typestore(Stores.ROS1_NOETIC)
# rosbags' Noetic store has no tf2_msgs; kitti2bag records /tf_static as tf2_msgs/TFMessage.
ROS1.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                 "tf2_msgs/msg/TFMessage"))


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    written = write_synthetic_drive(tmp_path_factory.mktemp("raw"), num_frames=3,
                                    with_tracklets=False)
    return written, RawDrive(written.drive_dir)


def _ros1(msgtype: str, /, **fields):
    return ROS1.types[msgtype](**fields)


def _ros1_header(stamp_ns: int, frame_id: str, seq: int):
    sec, nanosec = divmod(stamp_ns, 10**9)
    return _ros1("std_msgs/msg/Header", seq=seq,
                 stamp=_ros1("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec),
                 frame_id=frame_id)


def _ros1_transform(T: np.ndarray, parent: str, child: str, stamp_ns: int):
    qx, qy, qz, qw = matrix_to_quat(T[None, :3, :3])[0]
    transform = _ros1("geometry_msgs/msg/Transform",
                      translation=_ros1("geometry_msgs/msg/Vector3", x=T[0, 3], y=T[1, 3],
                                        z=T[2, 3]),
                      rotation=_ros1("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw))
    return _ros1("geometry_msgs/msg/TransformStamped", header=_ros1_header(stamp_ns, parent, 0),
                 child_frame_id=child, transform=transform)


def _homogeneous(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3] = T
    return out


def write_kitti2bag_ros1(path: Path, written, drive: RawDrive) -> None:
    """A ROS 1 bag as kitti2bag writes it: camera and LiDAR both hang off imu_link, and the
    colour camera frame sits P_rect_02[0, 3] / fx from the reference camera (pykitti)."""
    camera = drive.calib.camera_calib(cam=2)
    shift = np.eye(4)
    shift[0, 3] = camera.P2[0, 3] / camera.P2[0, 0]
    T_velo_from_imu = _homogeneous(drive.calib.imu_to_velo.matrix)
    T_cam2_from_imu = shift @ camera.T_rect_from_lidar @ T_velo_from_imu
    T_base_from_imu = np.eye(4)
    T_base_from_imu[:3, 3] = [-1.405, 0.32, 0.93]
    stamp0 = written.image_stamps_ns[0]
    rig = [_ros1_transform(T_base_from_imu, "base_link", "imu_link", stamp0),
           _ros1_transform(np.linalg.inv(T_velo_from_imu), "imu_link", "velo_link", stamp0),
           _ros1_transform(np.linalg.inv(T_cam2_from_imu), "imu_link", "camera_color_left",
                           stamp0)]
    with Writer1(path) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=ROS1) for topic, msgtype in
                 [("/tf_static", "tf2_msgs/msg/TFMessage"), (IMAGE, "sensor_msgs/msg/Image"),
                  (INFO, "sensor_msgs/msg/CameraInfo"), (CLOUD, "sensor_msgs/msg/PointCloud2")]}

        def write(topic, stamp_ns, message):
            writer.write(conns[topic], stamp_ns, ROS1.serialize_ros1(message, message.__msgtype__))

        write("/tf_static", stamp0, _ros1("tf2_msgs/msg/TFMessage", transforms=rig))
        for i, image in enumerate(written.images):
            stamp_ns, velo_ns = written.image_stamps_ns[i], written.velodyne_stamps_ns[i]
            height, width = image.shape[:2]
            header = _ros1_header(stamp_ns, "camera_color_left", i)
            write(IMAGE, stamp_ns, _ros1(
                "sensor_msgs/msg/Image", header=header, height=height, width=width,
                encoding="bgr8", is_bigendian=0, step=3 * width, data=image.reshape(-1)))
            roi = _ros1("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0,
                        width=0, do_rectify=False)
            write(INFO, stamp_ns, _ros1(
                "sensor_msgs/msg/CameraInfo", header=header, height=height, width=width,
                distortion_model="plumb_bob", D=np.zeros(5), K=camera.P2[:, :3].reshape(-1),
                R=np.eye(3).reshape(-1), P=camera.P2.reshape(-1), binning_x=0, binning_y=0,
                roi=roi))
            fields = [_ros1("sensor_msgs/msg/PointField", name=n, offset=4 * k, datatype=7,
                            count=1) for k, n in enumerate("xyzi")]
            points = written.points[i]
            write(CLOUD, velo_ns, _ros1(
                "sensor_msgs/msg/PointCloud2", header=_ros1_header(velo_ns, "velo_link", i),
                height=1, width=len(points), fields=fields, is_bigendian=False, point_step=16,
                row_step=16 * len(points), data=points.reshape(-1).view(np.uint8),
                is_dense=True))


def _assert_frames_match(frames, written, drive: RawDrive) -> None:
    camera = drive.calib.camera_calib(cam=2)
    assert [f.stamp_ns for f in frames] == written.image_stamps_ns
    for frame, image, points in zip(frames, written.images, written.points, strict=True):
        np.testing.assert_array_equal(frame.image_bgr, image)
        np.testing.assert_array_equal(frame.points, points)
        np.testing.assert_array_equal(frame.P, camera.P2)
        np.testing.assert_allclose(frame.T_cam_from_lidar, camera.T_rect_from_lidar[:3],
                                   atol=1e-5)
        assert frame.gt_labels is None


def test_ros1_kitti2bag_bag_is_read_directly(tmp_path, drive) -> None:
    written, raw_drive = drive
    bag = tmp_path / "kitti.bag"
    write_kitti2bag_ros1(bag, written, raw_drive)
    reader = iter_bag_frames(bag)
    _assert_frames_match(list(reader), written, raw_drive)
    assert not reader.skipped


def test_ros1_bag_converted_to_ros2(tmp_path, drive) -> None:
    written, raw_drive = drive
    bag = tmp_path / "kitti.bag"
    write_kitti2bag_ros1(bag, written, raw_drive)
    converted = convert_ros1_bag(bag, tmp_path / "kitti_ros2", storage="mcap")
    _assert_frames_match(list(iter_bag_frames(converted)), written, raw_drive)
    with AnyReader([converted]) as reader:
        connection = next(c for c in reader.connections if c.topic == INFO)
        _, _, raw = next(reader.messages([connection]))
        info = reader.deserialize(raw, connection.msgtype)
    assert hasattr(info, "p") and not hasattr(info, "P")  # Kilted field names
    metadata = yaml.safe_load((converted / "metadata.yaml").read_text())
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in metadata["rosbag2_bagfile_information"]["topics_with_message_count"]}
    assert qos["/tf_static"][0]["durability"] == "transient_local"
    with pytest.raises(BagError, match="exists already"):
        convert_ros1_bag(bag, converted)


def write_ros2_bag(path: Path, entries: list[tuple[str, int, object]]) -> None:
    """Entries are (topic, log stamp, message or raw bytes of the type given by the topic)."""
    store = monotakd_typestore()
    types = {IMAGE: "sensor_msgs/msg/Image", INFO: "sensor_msgs/msg/CameraInfo",
             CLOUD: "sensor_msgs/msg/PointCloud2", "/tf_static": "tf2_msgs/msg/TFMessage",
             "/detector/detections": "vision_msgs/msg/Detection3DArray"}
    with Writer2(path, version=9) as writer:
        conns = {}
        for topic, stamp_ns, message in entries:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, types[topic], typestore=store)
            data = message if isinstance(message, bytes) else store.serialize_cdr(
                message, types[topic])
            writer.write(conns[topic], stamp_ns, data)


def _sensor_entries(written, index: int, cloud_offset_ns: int = 0) -> list:
    store = monotakd_typestore()
    stamp_ns = written.image_stamps_ns[index]
    P = kitti_camera_calib().P2
    image = written.images[index]
    return [
        (IMAGE, stamp_ns, image_message(store, image, stamp_ns, "camera_color_left")),
        (INFO, stamp_ns, camera_info_message(store, P, image.shape[:2], stamp_ns,
                                             "camera_color_left")),
        (CLOUD, stamp_ns + cloud_offset_ns,
         point_cloud_message(store, written.points[index], stamp_ns + cloud_offset_ns,
                             "velo_link")),
    ]


def test_missing_topics_are_listed(tmp_path, drive) -> None:
    written, _ = drive
    entries = [e for e in _sensor_entries(written, 0) if e[0] != CLOUD]
    write_ros2_bag(tmp_path / "no_cloud", entries)
    with pytest.raises(BagError, match=r"no sensor_msgs/msg/PointCloud2 topic\(s\) \(expected "
                       r"/kitti/velo/pointcloud\); topics found: "
                       r"/kitti/camera_color_left/camera_info \[sensor_msgs/msg/CameraInfo\]"):
        iter_bag_frames(tmp_path / "no_cloud")
    write_ros2_bag(tmp_path / "no_info", [e for e in _sensor_entries(written, 0) if e[0] != INFO])
    with pytest.raises(BagError, match="no sensor_msgs/msg/CameraInfo topic"):
        iter_bag_frames(tmp_path / "no_info")
    with pytest.raises(BagError, match="no topic '/camera/image'; topics found"):
        iter_bag_frames(tmp_path / "no_info", image_topic="/camera/image")
    with pytest.raises(BagError, match="cannot open bag"):
        iter_bag_frames(tmp_path / "does_not_exist")


def test_without_tf_static_a_calibration_is_required(tmp_path, drive) -> None:
    written, _ = drive
    write_ros2_bag(tmp_path / "bag", _sensor_entries(written, 0) + _sensor_entries(written, 1))
    with pytest.raises(BagError, match=r"no /tf_static topic .*pass calib=CameraCalib"):
        iter_bag_frames(tmp_path / "bag")
    calib = kitti_camera_calib()
    frames = list(iter_bag_frames(tmp_path / "bag", calib=calib))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[1].T_cam_from_lidar, calib.T_rect_from_lidar[:3])


def test_unconnected_tf_static_is_reported(tmp_path, drive) -> None:
    written, _ = drive
    store = monotakd_typestore()
    stamp_ns = written.image_stamps_ns[0]
    rig = tf_message(store, [transform_stamped_message(store, np.eye(4), "imu_link", "velo_link",
                                                       stamp_ns)])
    write_ros2_bag(tmp_path / "bag", [("/tf_static", stamp_ns, rig)]
                   + _sensor_entries(written, 0))
    with pytest.raises(BagError, match=r"does not connect 'velo_link' to 'camera_color_left'; "
                                       r"frames found: \['imu_link', 'velo_link'\]"):
        list(iter_bag_frames(tmp_path / "bag"))


def test_pairing_respects_slop(tmp_path, drive) -> None:
    written, _ = drive
    offset_ns = 30_000_000
    entries = [e for i in range(3) for e in _sensor_entries(written, i, cloud_offset_ns=offset_ns)]
    write_ros2_bag(tmp_path / "bag", entries)
    calib = kitti_camera_calib()
    assert len(list(iter_bag_frames(tmp_path / "bag", slop_s=0.05, calib=calib))) == 3
    reader = iter_bag_frames(tmp_path / "bag", slop_s=0.02, calib=calib)
    assert list(reader) == []
    assert reader.skipped == {"no_point_cloud": 3}


def test_corrupt_messages_are_skipped_and_counted(tmp_path, drive) -> None:
    written, _ = drive
    store = monotakd_typestore()
    entries = [e for i in range(3) for e in _sensor_entries(written, i)]
    image_1 = bytes(store.serialize_cdr(entries[3][2], "sensor_msgs/msg/Image"))
    entries[3] = (IMAGE, entries[3][1], image_1[: len(image_1) // 2])  # frame 1's image
    cloud_2 = bytes(store.serialize_cdr(entries[8][2], "sensor_msgs/msg/PointCloud2"))
    entries[8] = (CLOUD, entries[8][1], cloud_2[:60])  # frame 2's cloud
    write_ros2_bag(tmp_path / "bag", entries)
    reader = iter_bag_frames(tmp_path / "bag", calib=kitti_camera_calib())
    frames = list(reader)
    assert [f.stamp_ns for f in frames] == written.image_stamps_ns[:1]
    assert reader.skipped == {"corrupt_image": 1, "corrupt_point_cloud": 1, "no_point_cloud": 1}


def test_grey_images_on_the_colour_topic_are_skipped_and_counted(tmp_path, drive) -> None:
    """A mono8 camera on the colour topic must not train the colour student: skipped by reason."""
    written, _ = drive
    entries = [e for i in range(3) for e in _sensor_entries(written, i)]
    for index in (0, 6):  # frames 0 and 2 come from a grey camera
        image = entries[index][2]
        image.data = np.ascontiguousarray(written.images[index // 3][:, :, 1]).reshape(-1)
        image.encoding, image.step = "mono8", image.width
    write_ros2_bag(tmp_path / "bag", entries)
    reader = iter_bag_frames(tmp_path / "bag", calib=kitti_camera_calib())
    assert [f.stamp_ns for f in reader] == written.image_stamps_ns[1:2]
    assert reader.skipped == {"grey_image": 2}


def test_image_decoding_handles_common_encodings() -> None:
    store = monotakd_typestore()
    bgr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    message = image_message(store, bgr, 0, "cam")
    message.encoding = "rgb8"
    np.testing.assert_array_equal(image_to_bgr(message), bgr[:, :, ::-1])
    mono = store.types["sensor_msgs/msg/Image"](
        header=message.header, height=2, width=3, encoding="mono8", is_bigendian=0, step=4,
        data=np.array([1, 2, 3, 0, 4, 5, 6, 0], np.uint8))  # rows padded to 4 bytes
    np.testing.assert_array_equal(image_to_bgr(mono)[:, :, 0], [[1, 2, 3], [4, 5, 6]])
    message.encoding = "16UC1"
    with pytest.raises(ImageEncodingError, match="image encoding '16UC1' unsupported"):
        image_to_bgr(message)
    message.encoding, message.step = "bgr8", 100
    with pytest.raises(ImageEncodingError, match="needs 200 bytes, got 18"):
        image_to_bgr(message)


def test_point_cloud_decoding_with_other_layouts() -> None:
    store = monotakd_typestore()
    records = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("pad", "<f4"),
                                 ("intensity", "<f4"), ("ring", "<u2"), ("rest", "V10")])
    records["x"], records["y"], records["z"] = [1, np.nan, 3], [4, 5, 6], [7, 8, 9]
    records["intensity"] = [0.1, 0.2, 0.3]
    fields = [store.types["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=t, count=1)
              for n, o, t in [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 16, 7),
                              ("ring", 20, 4)]]
    message = point_cloud_message(store, np.zeros((0, 4)), 0, "velo_link")
    message.fields, message.point_step, message.width = fields, 32, 3
    message.row_step, message.data = 96, records.view(np.uint8).reshape(-1)
    points = point_cloud_to_array(message)
    np.testing.assert_array_equal(points, np.array([[1, 4, 7, 0.1], [3, 6, 9, 0.3]], np.float32))
    message.fields = fields[1:]
    with pytest.raises(BagError, match=r"lacks field\(s\) \['x'\]"):
        point_cloud_to_array(message)


def test_ground_truth_only_from_its_topic_or_an_explicit_one(tmp_path, drive) -> None:
    written, _ = drive
    stamp_ns = written.image_stamps_ns[0]
    labels = KittiLabels(names=np.array(["Van"]), truncated=np.array([0.25]),
                         occluded=np.array([2]), alpha=np.array([-0.5]),
                         bbox=np.array([[10.0, 20.0, 50.0, 40.0]]),
                         boxes_cam=np.array([[1.0, 1.6, 12.0, 4.8, 2.0, 1.9, 0.3]]))
    message = detections_message(monotakd_typestore(), labels, stamp_ns, "camera_color_left")
    write_ros2_bag(tmp_path / "bag", _sensor_entries(written, 0)
                   + [("/detector/detections", stamp_ns, message)])
    calib = kitti_camera_calib()
    (frame,) = iter_bag_frames(tmp_path / "bag", calib=calib)
    assert frame.gt_labels is None  # a detector's output is not taken for ground truth
    (frame,) = iter_bag_frames(tmp_path / "bag", calib=calib,
                               ground_truth_topic="/detector/detections")
    got = frame.gt_labels
    assert list(got.names) == ["Van"] and list(got.occluded) == [2]
    np.testing.assert_allclose(got.boxes_cam, labels.boxes_cam, atol=1e-12)
    np.testing.assert_array_equal(got.bbox, labels.bbox)
    assert (got.truncated[0], got.alpha[0]) == (0.25, -0.5)
