"""Writing the synthetic world as a KITTI object set and as KITTI raw drives (and the CLI)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.data.synth import cli
from monotakd_ros.data.synth.drive import generate_drive
from monotakd_ros.data.synth.generator import generate_object_frame
from monotakd_ros.data.synth.writer import write_object_dataset, write_raw_drives
from monotakd_ros.errors import DatasetError


def test_object_dataset_reads_back_with_kitti_layout(tmp_path: Path):
    sets = write_object_dataset(tmp_path, frames=5, seed=2, val_fraction=0.5, test_fraction=0.2)
    assert sorted(sets["train"] + sets["val"]) == sets["trainval"] == [f"{i:06d}" for i in
                                                                      range(4)]
    assert not set(sets["train"]) & set(sets["val"]) and len(sets["val"]) == 2
    assert sets["test"] == ["000000"]
    training = KittiObjectDataset(tmp_path, "training")
    assert training.frame_ids("trainval") == sets["trainval"]
    assert training.frame_ids("val") == sets["val"]
    expected = generate_object_frame(2, 3)
    labels = training.labels("000003")
    assert list(labels.names) == list(expected.labels.names)
    assert np.allclose(labels.boxes_cam, expected.labels.boxes_cam, atol=0.006)
    assert np.allclose(labels.bbox, expected.labels.bbox, atol=0.006)
    assert np.array_equal(training.points("000003"), expected.points)
    assert np.array_equal(training.image("000003"), expected.image_bgr)
    assert np.allclose(training.plane("000003"), expected.plane, rtol=1e-5)
    assert np.allclose(training.calib("000003").camera_calib().P2, expected.calib.P2)
    testing = KittiObjectDataset(tmp_path, "testing")
    assert not testing.has_labels
    assert np.array_equal(testing.image("000000"), generate_object_frame(2, 4).image_bgr)


def test_labelled_test_split_is_held_out_with_labels(tmp_path: Path):
    sets = write_object_dataset(tmp_path, frames=5, seed=2, val_fraction=0.5, test_fraction=0.4,
                                labelled_test=True)
    assert sets["trainval"] == ["000000", "000001", "000002"]
    assert sets["test"] == ["000003", "000004"]  # the same frames as testing/ would hold
    training = KittiObjectDataset(tmp_path, "training")
    assert training.frame_ids("test") == sets["test"]
    expected = generate_object_frame(2, 4)
    assert list(training.labels("000004").names) == list(expected.labels.names)
    assert np.array_equal(training.image("000004"), expected.image_bgr)
    assert not (tmp_path / "testing").exists()


def test_non_empty_output_is_refused_unless_overwrite(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match=f"{tmp_path}.*not empty"):
        write_object_dataset(tmp_path, frames=2, seed=0)
    with pytest.raises(DatasetError, match=f"{tmp_path}.*not empty"):
        write_raw_drives(tmp_path, 1, 2, seed=0)
    write_object_dataset(tmp_path, frames=2, seed=0, test_fraction=0.0, overwrite=True)
    write_object_dataset(tmp_path, frames=3, seed=1, test_fraction=0.0, overwrite=True)
    assert KittiObjectDataset(tmp_path, "training").frame_ids("trainval") == [
        "000000", "000001", "000002"]
    assert (tmp_path / "notes.txt").read_text() == "keep me"  # not ours: left alone


def test_bad_counts_are_refused(tmp_path: Path):
    with pytest.raises(DatasetError, match="frames must be at least 1, got 0"):
        write_object_dataset(tmp_path / "a", frames=0, seed=0)
    with pytest.raises(DatasetError, match="val_fraction must lie in"):
        write_object_dataset(tmp_path / "b", frames=2, seed=0, val_fraction=1.5)
    with pytest.raises(DatasetError, match="need at least one drive"):
        write_raw_drives(tmp_path / "c", 0, 3, seed=0)


def test_raw_drives_read_back_with_tracklet_labels(tmp_path: Path):
    folders = write_raw_drives(tmp_path, num_drives=2, frames_per_drive=3, seed=4)
    assert [f.name for f in folders] == ["2011_09_26_drive_0001_sync",
                                         "2011_09_26_drive_0002_sync"]
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        assert (tmp_path / "2011_09_26" / name).is_file()
    raw = RawDrive(folders[1])
    frames = list(generate_drive(4, 3, drive=1))
    assert raw.num_frames == 3
    assert np.array_equal(raw.image(2), frames[2].image_bgr)
    assert np.array_equal(raw.points(2), frames[2].points)
    assert raw.oxts(1).lat == pytest.approx(frames[1].oxts.lat, abs=1e-9)
    assert np.allclose(raw.calib.camera_calib(2).P2, frames[0].calib.P2)
    from_tracklets = raw.frame_labels(2)
    ours = frames[2].labels
    keep = ours.names != "DontCare"
    assert sorted(from_tracklets.names) == sorted(ours.names[keep])
    # Tracklets hold LiDAR-frame boxes; going back to the camera through the box centre (half a
    # height up in the LiDAR frame, tilted ~1 deg from the camera's) moves a bottom by ~1 cm.
    for box in from_tracklets.boxes_cam:
        assert np.min(np.abs(ours.boxes_cam[keep, :3] - box[:3]).max(axis=1)) < 0.03


def test_cli_writes_and_refuses(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    out = tmp_path / "synth"
    assert cli.main(["object", "--out", str(out), "--frames", "2", "--seed", "1"]) == 0
    assert (out / "training" / "label_2" / "000000.txt").is_file()
    with caplog.at_level(logging.ERROR):
        assert cli.main(["raw", "--out", str(out), "--frames", "2", "--seed", "1"]) == 2
    assert str(out) in caplog.text and "--overwrite" in caplog.text
    assert cli.main(["raw", "--out", str(out), "--frames", "2", "--drives", "1",
                     "--overwrite"]) == 0
    assert (out / "2011_09_26" / "2011_09_26_drive_0001_sync" / "tracklet_labels.xml").is_file()


def test_worker_processes_write_the_same_files(tmp_path: Path):
    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file()}

    write_object_dataset(tmp_path / "one", frames=3, seed=6)
    write_object_dataset(tmp_path / "two", frames=3, seed=6, workers=2)
    assert contents(tmp_path / "one") == contents(tmp_path / "two")
    write_raw_drives(tmp_path / "raw1", 2, 2, seed=6)
    write_raw_drives(tmp_path / "raw2", 2, 2, seed=6, workers=2)
    one, two = contents(tmp_path / "raw1"), contents(tmp_path / "raw2")
    assert one.keys() == two.keys() and one == two
