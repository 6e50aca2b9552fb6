"""KITTI object dataset layout: writing frames, reading them back by id, image sets, planes."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.data.kitti.calib import object_calib_from_camera_calib
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import (
    KittiObjectDataset,
    KittiObjectWriter,
    read_image_set,
    read_plane,
    write_image_set,
    write_plane,
)
from monotakd_ros.errors import DatasetError, KittiFormatError
from monotakd_ros.geometry.calib import CameraCalib

# A planes/*.txt file as distributed with the object set (note the trailing space).
REAL_PLANE = (
    "# Plane\nWidth 4\nHeight 1\n-7.051729e-03 -9.997791e-01 -1.980151e-02 1.680367e+00 \n"
)


def make_frame(seed: int):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    P2 = np.array(
        [
            [721.5377, 0, 609.5593, 44.85728],
            [0, 721.5377, 172.854, 0.2163791],
            [0, 0, 1, 2.745884e-03],
        ]
    )
    calib = object_calib_from_camera_calib(
        CameraCalib(P2=P2, R0_rect=np.eye(3), T_cam_from_lidar=rng.normal(size=(3, 4)))
    )
    points = rng.normal(0, 10, (50, 4)).astype(np.float32)
    labels = KittiLabels(
        names=np.array(["Car", "Pedestrian"]),
        truncated=np.array([0.0, 0.3]),
        occluded=np.array([0, 2]),
        alpha=rng.uniform(-3, 3, 2),
        bbox=np.sort(rng.uniform(0, 300, (2, 2, 2)), axis=1).reshape(2, 4),  # x1 y1 <= x2 y2
        boxes_cam=rng.normal(0, 5, (2, 7)) * [1, 1, 1, 0, 0, 0, 1] + [0, 0, 0, 3.9, 1.6, 1.5, 0],
    )
    plane = np.array([0.0, -1.0, 0.0, 1.65]) + rng.normal(0, 0.01, 4)
    return image, calib, points, labels, plane


@pytest.fixture
def dataset_root(tmp_path):
    root = tmp_path / "kitti"
    writer = KittiObjectWriter(root, "training", label_precision=None)
    for seed, frame_id in enumerate(["000000", "000001", "000003"]):
        image, calib, points, labels, plane = make_frame(seed)
        writer.write_frame(frame_id, image, calib, points, labels, plane if seed != 1 else None)
    writer.write_image_sets({"train": ["000000", "000003"], "val": ["000001"]})
    tester = KittiObjectWriter(root, "testing")
    image, calib, points, _, _ = make_frame(7)
    tester.write_frame("000002", image, calib, points, None, None)
    return root


def test_written_frames_read_back_exactly(dataset_root):
    dataset = KittiObjectDataset(dataset_root, "training")
    assert dataset.frame_ids() == ["000000", "000001", "000003"]
    for seed, frame_id in enumerate(dataset.frame_ids()):
        image, calib, points, labels, plane = make_frame(seed)
        np.testing.assert_array_equal(dataset.image(frame_id), image)
        assert dataset.calib(frame_id) == calib
        np.testing.assert_array_equal(dataset.points(frame_id), points)
        read = dataset.labels(frame_id)
        assert read.names.tolist() == labels.names.tolist()
        np.testing.assert_array_equal(read.boxes_cam, labels.boxes_cam)
        np.testing.assert_array_equal(read.bbox, labels.bbox)
        if seed == 1:
            assert dataset.plane(frame_id) is None
        else:
            np.testing.assert_array_equal(dataset.plane(frame_id), plane)


def test_layout_on_disk_matches_kitti(dataset_root):
    for sub in (
        "image_2/000000.png",
        "velodyne/000000.bin",
        "calib/000000.txt",
        "label_2/000000.txt",
        "planes/000000.txt",
    ):
        assert (dataset_root / "training" / sub).is_file(), sub
    assert not (dataset_root / "training" / "planes" / "000001.txt").exists()
    assert (dataset_root / "ImageSets" / "train.txt").read_text() == "000000\n000003\n"
    assert not (dataset_root / "testing" / "label_2").exists()
    calib_text = (dataset_root / "training" / "calib" / "000000.txt").read_text()
    assert calib_text.startswith("P0: 7.215377000000e+02 ")


def test_image_sets_select_frames(dataset_root):
    dataset = KittiObjectDataset(dataset_root)
    assert dataset.frame_ids("train") == ["000000", "000003"]
    assert dataset.frame_ids("val") == ["000001"]
    with pytest.raises(DatasetError, match=r"ImageSets/trainval\.txt: image set 'trainval'"):
        dataset.frame_ids("trainval")


def test_standard_label_precision_rounds_to_two_decimals(tmp_path):
    image, calib, points, labels, _ = make_frame(0)
    KittiObjectWriter(tmp_path).write_frame("000000", image, calib, points, labels)
    read = KittiObjectDataset(tmp_path).labels("000000")
    np.testing.assert_allclose(read.boxes_cam, np.round(labels.boxes_cam, 2), atol=1e-12)


def test_testing_split_has_no_labels(dataset_root):
    dataset = KittiObjectDataset(dataset_root, "testing")
    assert dataset.frame_ids() == ["000002"]
    assert not dataset.has_labels
    assert dataset.points("000002").shape == (50, 4)
    with pytest.raises(DatasetError, match=r"testing/label_2: split 'testing' has no labels"):
        dataset.labels("000002")


def test_missing_files_name_the_path(dataset_root):
    dataset = KittiObjectDataset(dataset_root)
    (dataset_root / "training" / "calib" / "000001.txt").unlink()
    (dataset_root / "training" / "velodyne" / "000003.bin").unlink()
    with pytest.raises(DatasetError, match=r"calib/000001\.txt: calibration of frame '000001'"):
        dataset.calib("000001")
    with pytest.raises(DatasetError, match=r"velodyne/000003\.bin: LiDAR scan of frame '000003'"):
        dataset.points("000003")
    with pytest.raises(DatasetError, match=r"image_2/000009\.png: image of frame '000009'"):
        dataset.image("000009")
    with pytest.raises(DatasetError, match=r"label_2/000009\.txt: label file of frame '000009'"):
        dataset.labels("000009")
    with pytest.raises(DatasetError, match=r"invalid frame id '\.\./x'"):
        dataset.calib("../x")
    with pytest.raises(DatasetError, match=r"nowhere/training: split folder does not exist"):
        KittiObjectDataset(dataset_root / "nowhere")


def test_jpeg_images_are_found_when_no_png_exists(dataset_root):
    images = dataset_root / "training" / "image_2"
    (images / "000001.png").rename(images / "000001.jpg")
    dataset = KittiObjectDataset(dataset_root)
    assert dataset.image_path("000001").name == "000001.jpg"
    assert dataset.frame_ids() == ["000000", "000001", "000003"]


def test_real_plane_file_parses_and_writes_back_exactly(tmp_path):
    path = tmp_path / "000000.txt"
    path.write_text(REAL_PLANE)
    plane = read_plane(path)
    np.testing.assert_array_equal(plane, [-7.051729e-03, -9.997791e-01, -1.980151e-02, 1.680367])
    out = tmp_path / "out.txt"
    write_plane(out, plane)
    assert out.read_text() == REAL_PLANE.replace(" \n", "\n")
    odd = np.array([1 / 3, -2 / 3, np.pi, 1.65])
    write_plane(out, odd)
    np.testing.assert_array_equal(read_plane(out), odd)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("# Plane\nWidth 4\nHeight 1\n", r"p\.txt: expected one line of 4 numbers, found 0"),
        ("# Plane\nWidth 4\nHeight 1\n1 2 3\n", r"p\.txt:4: expected 4 numbers, got 3"),
        ("# Plane\nWidth 4\nHeight 1\n1 2 x 4\n", r"p\.txt:4: non-numeric plane value"),
        ("# Plane\nWidth 4\nHeight 1\n1 2 inf 4\n", r"p\.txt:4: non-finite plane value"),
    ],
)
def test_malformed_plane_files(tmp_path, text, pattern):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(KittiFormatError, match=pattern):
        read_plane(path)


def test_image_set_round_trip_and_errors(tmp_path):
    path = tmp_path / "ImageSets" / "val.txt"
    write_image_set(path, ["000001", "000004", "007480"])
    assert path.read_text() == "000001\n000004\n007480\n"
    assert read_image_set(path) == ["000001", "000004", "007480"]
    path.write_text("000001\n\n000002 000003\n")
    with pytest.raises(DatasetError, match=r"val\.txt:3: expected one frame id"):
        read_image_set(path)
    with pytest.raises(DatasetError, match=r"absent\.txt: cannot read image set"):
        read_image_set(tmp_path / "absent.txt")
