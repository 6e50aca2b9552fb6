"""A KITTI split is checked when its dataset is built: bad frames are named before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monotakd_ros.data.datasets import KittiFrameDataset
from monotakd_ros.data.kitti import dataset_check
from monotakd_ros.data.kitti.calib import object_calib_from_camera_calib
from monotakd_ros.data.kitti.dataset_check import check_object_frames
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset, KittiObjectWriter
from monotakd_ros.errors import DatasetError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.model_io.input_spec import InputSpec

P2 = np.array([[721.5377, 0, 609.5593, 44.85728], [0, 721.5377, 172.854, 0.2163791],
               [0, 0, 1, 2.745884e-03]])
IDS = [f"{i:06d}" for i in range(3)]
SPEC = InputSpec(input_hw=(64, 192))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three valid frames (tiny images, one car each) and ImageSets/train.txt."""
    root = tmp_path / "kitti"
    writer = KittiObjectWriter(root, "training")
    calib = object_calib_from_camera_calib(CameraCalib(P2=P2, R0_rect=np.eye(3),
                                                       T_cam_from_lidar=np.eye(4)[:3]))
    car = KittiLabels(names=np.array(["Car"]), truncated=np.zeros(1), occluded=np.zeros(1, int),
                      alpha=np.zeros(1), bbox=np.array([[10.0, 5.0, 30.0, 15.0]]),
                      boxes_cam=np.array([[0.0, 1.6, 20.0, 3.9, 1.56, 1.6, 0.0]]))
    for frame_id in IDS:
        writer.write_frame(frame_id, np.zeros((20, 60, 3), np.uint8), calib,
                           np.ones((5, 4), np.float32), car)
    writer.write_image_sets({"train": IDS})
    return root


def split_dir(root: Path) -> Path:
    return root / "training"


def drop_line(path: Path, key: str) -> None:
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()
                            if not line.startswith(key)))


def test_valid_split_builds(root: Path) -> None:
    assert len(KittiFrameDataset(root, "train", SPEC)) == 3


def test_missing_p2_in_one_calib_file_stops_the_dataset_build(root: Path) -> None:
    calib = split_dir(root) / "calib" / "000001.txt"
    drop_line(calib, "P2:")
    with pytest.raises(DatasetError, match=r"1 of 3 frames are unusable .*\n  .*calib/000001"
                                           r"\.txt: missing key 'P2'"):
        KittiFrameDataset(root, "train", SPEC)


def test_every_bad_frame_is_reported_at_once(root: Path) -> None:
    labels = split_dir(root) / "label_2" / "000000.txt"
    labels.write_text(labels.read_text().replace("Car 0.00 0 ", "Car 0.00 7 "))
    (split_dir(root) / "velodyne" / "000002.bin").write_bytes(b"\0" * 17)
    (split_dir(root) / "image_2" / "000001.png").unlink()
    with pytest.raises(DatasetError) as caught:
        KittiFrameDataset(root, "train", SPEC)
    message = str(caught.value)
    assert "3 of 3 frames are unusable" in message
    assert "label_2/000000.txt:1: occluded (field 3) must be 0, 1, 2 or 3" in message
    assert "image_2/000001.png: image of frame '000001' does not exist" in message
    assert "velodyne/000002.bin: size 17 bytes is not a multiple of 16" in message


def test_only_the_files_a_dataset_reads_are_checked(root: Path) -> None:
    (split_dir(root) / "label_2" / "000000.txt").write_text("Car 1 2 3\n")
    (split_dir(root) / "velodyne" / "000001.bin").unlink()
    dataset = KittiFrameDataset(root, "train", SPEC, with_labels=False, with_lidar=False)
    assert dataset.frame_ids == IDS


def test_long_reports_are_cut_and_counted(root: Path) -> None:
    kitti = KittiObjectDataset(root)
    ids = [f"{i:06d}" for i in range(12)]  # frames 3..11 have no files at all
    # 9 frames x 4 problems (image, calib, scan, label) = 36, of which 10 are spelled out
    with pytest.raises(DatasetError, match=r"(?s)9 of 12 frames .*\n  \.\.\. and 26 more$"):
        check_object_frames(kitti, ids)


def test_progress_bar_only_for_large_splits(root: Path, capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    check_object_frames(KittiObjectDataset(root), IDS)
    assert "checking" not in capsys.readouterr().err
    monkeypatch.setattr(dataset_check, "PROGRESS_MIN_FRAMES", 3)
    check_object_frames(KittiObjectDataset(root), IDS)
    err = capsys.readouterr().err
    assert "checking" in err and "| 0/3 [" in err
