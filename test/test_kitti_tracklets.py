"""tracklet_labels.xml round trips and the per-frame camera labels derived from tracklets."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers_kitti_raw import IMAGE_HW, kitti_camera_calib, sample_tracklets

from monotakd_ros.data.kitti.tracklets import (
    Tracklet,
    read_tracklets,
    tracklets_to_frame_labels,
    write_tracklets,
)
from monotakd_ros.errors import KittiFormatError

# Two tracklets as the KITTI devkit's files hold them (tabs, class ids on first use only).
DEVKIT_XML = """<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>
<!DOCTYPE boost_serialization>
<boost_serialization signature="serialization::archive" version="9">
<tracklets class_id="0" tracking_level="0" version="0">
\t<count>2</count>
\t<item_version>1</item_version>
\t<item class_id="1" tracking_level="0" version="1">
\t\t<objectType>Van</objectType>
\t\t<h>2.0</h>
\t\t<w>1.9</w>
\t\t<l>4.8</l>
\t\t<first_frame>3</first_frame>
\t\t<poses class_id="2" tracking_level="0" version="0">
\t\t\t<count>1</count>
\t\t\t<item_version>2</item_version>
\t\t\t<item class_id="3" tracking_level="0" version="2">
\t\t\t\t<tx>25.212516037456261</tx>
\t\t\t\t<ty>8.6033915444744817</ty>
\t\t\t\t<tz>-1.7921571450416216</tz>
\t\t\t\t<rx>0</rx>
\t\t\t\t<ry>0</ry>
\t\t\t\t<rz>-3.1842001424562025</rz>
\t\t\t\t<state>2</state>
\t\t\t\t<occlusion>0</occlusion>
\t\t\t\t<occlusion_kf>1</occlusion_kf>
\t\t\t\t<truncation>0</truncation>
\t\t\t\t<amt_occlusion>0</amt_occlusion>
\t\t\t\t<amt_occlusion_kf>1</amt_occlusion_kf>
\t\t\t\t<amt_border_l>0</amt_border_l>
\t\t\t\t<amt_border_r>1</amt_border_r>
\t\t\t\t<amt_border_kf>-1</amt_border_kf>
\t\t\t</item>
\t\t</poses>
\t\t<finished>1</finished>
\t</item>
\t<item>
\t\t<objectType>Pedestrian</objectType>
\t\t<h>1.7</h>
\t\t<w>0.5</w>
\t\t<l>0.9</l>
\t\t<first_frame>0</first_frame>
\t\t<poses>
\t\t\t<count>0</count>
\t\t\t<item_version>2</item_version>
\t\t</poses>
\t\t<finished>1</finished>
\t</item>
</tracklets>
</boost_serialization>
"""


def test_reads_devkit_layout(tmp_path) -> None:
    path = tmp_path / "tracklet_labels.xml"
    path.write_text(DEVKIT_XML)
    van, pedestrian = read_tracklets(path)
    assert (van.object_type, van.h, van.w, van.l, van.first_frame) == ("Van", 2.0, 1.9, 4.8, 3)
    np.testing.assert_array_equal(
        van.poses, [[25.212516037456261, 8.6033915444744817, -1.7921571450416216, 0.0, 0.0,
                     -3.1842001424562025]])
    assert (van.state[0], van.occlusion[0], van.occlusion_kf[0], van.truncation[0]) == (2, 0, 1, 0)
    assert (van.amt_border_r[0], van.amt_border_kf[0]) == (1.0, -1)
    assert pedestrian.num_poses == 0 and pedestrian.poses.shape == (0, 6)


def test_write_then_read_is_exact(tmp_path) -> None:
    rng = np.random.default_rng(7)
    tracklets = sample_tracklets()
    tracklets[0].poses[:, :3] += rng.normal(size=(3, 3)) * 1e-3  # values with long expansions
    tracklets[0].amt_occlusion[:] = [0.1 + 0.2, 0.5, -1.0]
    path = tmp_path / "tracklet_labels.xml"
    write_tracklets(path, tracklets)
    back = read_tracklets(path)
    assert back == tracklets
    assert back[0] != tracklets[1]


def test_written_file_has_boost_layout(tmp_path) -> None:
    path = tmp_path / "tracklet_labels.xml"
    write_tracklets(path, sample_tracklets())
    lines = path.read_text().splitlines()
    assert lines[1] == "<!DOCTYPE boost_serialization>"
    root = ET.parse(path).getroot()
    assert root.tag == "boost_serialization"
    assert root.attrib == {"signature": "serialization::archive", "version": "9"}
    tracklets = root.find("tracklets")
    assert tracklets.attrib["class_id"] == "0"
    assert tracklets.findtext("count") == "4"
    items = tracklets.findall("item")
    assert items[0].attrib == {"class_id": "1", "tracking_level": "0", "version": "1"}
    assert items[1].attrib == {}
    poses = items[0].find("poses")
    assert poses.attrib["class_id"] == "2" and poses.findtext("count") == "3"
    assert poses.findall("item")[0].attrib["class_id"] == "3"
    assert poses.findall("item")[1].attrib == {}
    pose_tags = [child.tag for child in poses.find("item")]
    assert pose_tags == ["tx", "ty", "tz", "rx", "ry", "rz", "state", "occlusion", "occlusion_kf",
                         "truncation", "amt_occlusion", "amt_occlusion_kf", "amt_border_l",
                         "amt_border_r", "amt_border_kf"]
    assert items[3].findtext("objectType") == "Person (sitting)"


def test_malformed_files_are_reported(tmp_path) -> None:
    path = tmp_path / "tracklet_labels.xml"
    path.write_text(DEVKIT_XML.replace("<count>2</count>", "<count>3</count>"))
    with pytest.raises(KittiFormatError, match="tracklets: <count> says 3 items, found 2"):
        read_tracklets(path)
    path.write_text(DEVKIT_XML.replace("<tx>25.212516037456261</tx>", "<tx>far</tx>"))
    with pytest.raises(KittiFormatError, match=r"item\[0\]/poses/item\[0\]: <tx> is not a number"):
        read_tracklets(path)
    path.write_text(DEVKIT_XML.replace("\t\t<h>1.7</h>\n", ""))
    with pytest.raises(KittiFormatError, match=r"tracklets/item\[1\]: missing <h>"):
        read_tracklets(path)
    path.write_text(DEVKIT_XML[:300])
    with pytest.raises(KittiFormatError, match="malformed XML"):
        read_tracklets(path)
    with pytest.raises(KittiFormatError, match="occlusion has 1 entries for 2 poses"):
        Tracklet("Car", 1.5, 1.6, 3.9, 0, np.zeros((2, 6)), occlusion=np.zeros(1))


def _devkit_box2d(tracklet: Tracklet, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: the devkit's corners (bottom centre, yaw about LiDAR z) projected
    with P2 @ R0_rect @ Tr_velo_to_cam; returns (clipped box, unclipped box)."""
    calib = kitti_camera_calib()
    tx, ty, tz, _, _, rz = tracklet.poses[k]
    length, w, h = tracklet.l, tracklet.w, tracklet.h
    x = [length / 2, length / 2, -length / 2, -length / 2] * 2
    y = [w / 2, -w / 2, -w / 2, w / 2, w / 2, -w / 2, -w / 2, w / 2]
    z = [0, 0, 0, 0, h, h, h, h]
    rotation = np.array([[math.cos(rz), -math.sin(rz), 0], [math.sin(rz), math.cos(rz), 0],
                         [0, 0, 1]])
    corners = (rotation @ np.array([x, y, z])).T + [tx, ty, tz]
    rect = (calib.R0_rect @ (calib.T_cam_from_lidar[:, :3] @ corners.T
                             + calib.T_cam_from_lidar[:, 3:])).T
    uvw = np.hstack([rect, np.ones((8, 1))]) @ calib.P2.T
    uv = uvw[:, :2] / uvw[:, 2:]
    full = np.array([*uv.min(axis=0), *uv.max(axis=0)])
    height, width = IMAGE_HW
    clipped = full.copy()
    clipped[[0, 2]] = np.clip(clipped[[0, 2]], 0, width - 1)
    clipped[[1, 3]] = np.clip(clipped[[1, 3]], 0, height - 1)
    return clipped, full


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def test_frame_labels_match_devkit_projection() -> None:
    tracklets = sample_tracklets()
    calib = kitti_camera_calib()
    labels = tracklets_to_frame_labels(tracklets, 3, calib, IMAGE_HW)
    assert [list(frame.names) for frame in labels] == [
        ["Car", "Cyclist"],  # the sitting person is marked out of the image in frame 0
        ["Car", "Pedestrian", "Cyclist", "Person_sitting"],
        ["Car", "Pedestrian", "Cyclist"],
    ]
    car, cyclist = tracklets[0], tracklets[2]
    for frame in range(3):
        box = labels[frame].boxes_cam[0]
        tx, ty, tz, _, _, rz = car.poses[frame]
        bottom = calib.lidar_to_rect(np.array([[tx, ty, tz]]))[0]
        np.testing.assert_allclose(box[:3], bottom, atol=0.02)  # tilt of the rig: < 2 cm
        np.testing.assert_allclose(box[3:6], [car.l, car.h, car.w])
        assert abs(box[6] - (-rz - math.pi / 2)) < 0.02
        assert labels[frame].alpha[0] == pytest.approx(box[6] - math.atan2(box[0], box[2]))
        clipped, _ = _devkit_box2d(car, frame)
        np.testing.assert_allclose(labels[frame].bbox[0], clipped, atol=0.3)
        assert labels[frame].truncated[0] == 0.0
    assert list(labels[0].occluded) == [0, 0]
    assert list(labels[1].occluded) == [1, 3, 0, 0]  # unset occlusion -> 3 (unknown)
    assert list(labels[2].occluded) == [2, 0, 0]
    clipped, full = _devkit_box2d(cyclist, 0)
    assert clipped[0] == 0.0 and full[0] < 0.0  # really cut by the left edge
    expected_truncation = 1.0 - _area(clipped) / _area(full)
    assert labels[0].truncated[1] == pytest.approx(expected_truncation, abs=0.02)
    assert 0.05 < labels[0].truncated[1] < 0.9


def test_objects_outside_the_image_are_dropped() -> None:
    behind = Tracklet("Car", 1.5, 1.6, 3.9, 0, np.array([[-10.0, 0.0, -1.73, 0, 0, 0]]),
                      truncation=np.zeros(1))
    far_left = Tracklet("Car", 1.5, 1.6, 3.9, 0, np.array([[5.0, 30.0, -1.73, 0, 0, 0]]),
                        truncation=np.zeros(1))
    labels = tracklets_to_frame_labels([behind, far_left], 2, kitti_camera_calib(), IMAGE_HW)
    assert len(labels) == 2 and len(labels[0]) == 0 and len(labels[1]) == 0
    assert labels[0].boxes_cam.shape == (0, 7)
