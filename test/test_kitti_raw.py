"""KITTI raw drives: timestamps, OXTS, the drive reader and writer, and incomplete drives."""

from __future__ import annotations

import shutil
from dataclasses import astuple, replace

import numpy as np
import pytest
from helpers_kitti_raw import DATE, FIRST_STAMP_NS, oxts_packet, write_synthetic_drive

from monotakd_ros.data.kitti.oxts import (
    OXTS_FIELD_NAMES,
    OxtsPacket,
    parse_oxts_line,
    read_oxts_file,
    write_oxts_file,
)
from monotakd_ros.data.kitti.raw_drive import (
    RawDrive,
    RawDriveWriter,
    format_stamp_ns,
    parse_stamp_ns,
    read_timestamps,
    write_timestamps,
)
from monotakd_ros.errors import DatasetError, KittiFormatError

# First line of 2011_09_26_drive_0001_sync/oxts/data/0000000000.txt.
REAL_OXTS_LINE = (
    "49.015003823272 8.4342971002335 116.43032836914 0.035752 0.00903 -2.6087069803847 "
    "-7.2424744869071 -0.38147634817269 7.2637745916317 0.014786455017072 0.03226069888638 "
    "-1.2312665484158 -0.51568902657574 9.8312549285859 -1.1877532617655 -0.58416722296097 "
    "9.8232032209006 0.0078081812299308 -0.020094434707001 0.036133767418302 "
    "0.0085658449048101 -0.018937981063024 0.035865931015658 0.33031658087102 "
    "0.087945651193855 4 11 4 4 0"
)


def _ns(text: str) -> int:
    """Independent reference: numpy's nanosecond datetime of an ISO string (UTC)."""
    return int(np.datetime64(text, "ns").astype(np.int64))


def test_parse_stamp_keeps_all_nine_fractional_digits() -> None:
    assert parse_stamp_ns("2011-09-26 13:02:25.964389445") == _ns("2011-09-26T13:02:25.964389445")
    assert parse_stamp_ns("2011-09-26 13:02:25.5") == _ns("2011-09-26T13:02:25.500000000")
    assert parse_stamp_ns("2011-09-26 13:02:25") == _ns("2011-09-26T13:02:25")


def test_format_stamp_writes_kitti_text_and_round_trips() -> None:
    assert format_stamp_ns(FIRST_STAMP_NS) == "2011-09-26 13:02:25.964389445"
    stamp_ns = _ns("2011-12-31T23:59:59.000000007")
    assert format_stamp_ns(stamp_ns) == "2011-12-31 23:59:59.000000007"
    for value in (stamp_ns, stamp_ns + 999_999_993, FIRST_STAMP_NS + 1):
        assert parse_stamp_ns(format_stamp_ns(value)) == value


def test_timestamps_file_round_trip(tmp_path) -> None:
    stamps = [FIRST_STAMP_NS + k * 103_586_931 for k in range(4)]
    path = tmp_path / "timestamps.txt"
    write_timestamps(path, stamps)
    assert path.read_text().splitlines()[0] == "2011-09-26 13:02:25.964389445"
    assert read_timestamps(path) == stamps


def test_bad_timestamp_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\n2011-09-26 13:02\n")
    with pytest.raises(KittiFormatError, match=r"timestamps\.txt:2: timestamp '2011-09-26 13:02'"):
        read_timestamps(path)
    path.write_text("2011-09-26 13:02:25.9643894451\n")
    with pytest.raises(KittiFormatError, match=r"timestamps\.txt:1"):
        read_timestamps(path)


def test_parse_real_oxts_line() -> None:
    packet = parse_oxts_line(REAL_OXTS_LINE)
    assert packet.lat == 49.015003823272
    assert packet.yaw == -2.6087069803847
    assert packet.vel_accuracy == 0.087945651193855
    assert (packet.navstat, packet.numsats, packet.posmode, packet.velmode, packet.orimode) == (
        4, 11, 4, 4, 0)
    assert all(isinstance(v, int) for v in astuple(packet)[25:])
    assert len(OXTS_FIELD_NAMES) == 30


def test_oxts_file_round_trip_is_exact(tmp_path) -> None:
    rng = np.random.default_rng(3)
    floats = list(rng.normal(size=25) * 10.0 ** rng.integers(-8, 4, size=25))
    packet = OxtsPacket(*floats, 4, 9, 5, 5, 1)
    write_oxts_file(tmp_path / "0.txt", packet)
    assert read_oxts_file(tmp_path / "0.txt") == packet
    assert (tmp_path / "0.txt").read_text().endswith(" 4 9 5 5 1\n")


def test_oxts_errors_name_the_file_and_field(tmp_path) -> None:
    path = tmp_path / "0000000007.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(KittiFormatError, match=r"07\.txt:1: expected 30 OXTS values, got 3"):
        read_oxts_file(path)
    path.write_text(REAL_OXTS_LINE.replace(" 4 11 ", " 4.5 11 ") + "\n")
    with pytest.raises(KittiFormatError, match="field 'navstat' must be an integer"):
        read_oxts_file(path)
    path.write_text(REAL_OXTS_LINE.replace("0.035752", "abc") + "\n")
    with pytest.raises(KittiFormatError, match="field 'roll' is not a number: 'abc'"):
        read_oxts_file(path)
    with pytest.raises(KittiFormatError, match="'lat' is not finite"):
        write_oxts_file(path, replace(oxts_packet(0), lat=float("nan")))


def test_written_drive_reads_back_identically(tmp_path) -> None:
    written = write_synthetic_drive(tmp_path, num_frames=3)
    assert written.drive_dir == tmp_path / DATE / f"{DATE}_drive_0005_sync"
    drive = RawDrive(written.drive_dir)
    assert drive.num_frames == 3
    assert drive.image_stamps_ns == written.image_stamps_ns
    assert drive.velodyne_stamps_ns == written.velodyne_stamps_ns
    assert drive.oxts_stamps_ns == written.image_stamps_ns  # the writer's default
    for index in range(3):
        np.testing.assert_array_equal(drive.image(index), written.images[index])
        assert drive.points(index).dtype == np.float32
        np.testing.assert_array_equal(drive.points(index), written.points[index])
        assert drive.oxts(index) == written.oxts[index]
    assert drive.calib == written.calib
    assert drive.image_hw == written.images[0].shape[:2]
    assert [t.object_type for t in drive.tracklets()] == [
        "Car", "Pedestrian", "Cyclist", "Person (sitting)"]
    assert list(drive.frame_labels(1).names[:2]) == ["Car", "Pedestrian"]
    with pytest.raises(IndexError, match=r"frame 3 out of range \[0, 3\)"):
        drive.image(3)


def test_unlabelled_drive_has_no_tracklets(tmp_path) -> None:
    written = write_synthetic_drive(tmp_path, num_frames=1, with_tracklets=False)
    drive = RawDrive(written.drive_dir)
    assert not drive.has_tracklets
    assert drive.tracklets() == []
    with pytest.raises(DatasetError, match=r"tracklet_labels\.xml: missing"):
        drive.frame_labels(0)


def test_missing_data_file_is_named(tmp_path) -> None:
    written = write_synthetic_drive(tmp_path, num_frames=3)
    (written.drive_dir / "velodyne_points" / "data" / "0000000001.bin").unlink()
    with pytest.raises(DatasetError, match=r"velodyne_points/data/0+1\.bin: missing frame 1"):
        RawDrive(written.drive_dir)


def test_missing_timestamps_file_is_named(tmp_path) -> None:
    written = write_synthetic_drive(tmp_path, num_frames=2)
    (written.drive_dir / "oxts" / "timestamps.txt").unlink()
    with pytest.raises(DatasetError, match=r"oxts/timestamps\.txt: missing file"):
        RawDrive(written.drive_dir)
    with pytest.raises(DatasetError, match="drive directory does not exist"):
        RawDrive(tmp_path / "nowhere")


def test_unequal_sensor_counts_are_rejected(tmp_path) -> None:
    written = write_synthetic_drive(tmp_path, num_frames=3)
    stamps = written.velodyne_stamps_ns[:2]
    write_timestamps(written.drive_dir / "velodyne_points" / "timestamps.txt", stamps)
    with pytest.raises(DatasetError, match="velodyne has 2 timestamps but image_02 has 3"):
        RawDrive(written.drive_dir)


def test_interrupted_writer_leaves_an_incomplete_drive(tmp_path) -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(RuntimeError, match="generator crashed"):
        with RawDriveWriter(tmp_path, DATE, 2) as writer:
            writer.add_frame(image, np.zeros((1, 4)), oxts_packet(0), 10, 9)
            raise RuntimeError("generator crashed")
    with pytest.raises(DatasetError, match=r"image_02/timestamps\.txt: missing file"):
        RawDrive(writer.drive_dir)


def test_writer_rejects_bad_input(tmp_path) -> None:
    writer = RawDriveWriter(tmp_path, DATE, 1)
    with pytest.raises(DatasetError, match=r"image must be \(H, W, 3\) uint8 BGR"):
        writer.add_frame(np.zeros((4, 5), np.uint8), np.zeros((1, 4)), oxts_packet(0), 1, 1)
    with pytest.raises(DatasetError, match=r"points must be \(N, 4\)"):
        writer.add_frame(np.zeros((4, 5, 3), np.uint8), np.zeros((1, 3)), oxts_packet(0), 1, 1)
    with pytest.raises(DatasetError, match="exists already"):
        RawDriveWriter(tmp_path, DATE, 1)
    with pytest.raises(DatasetError, match="date '2011-09-26' must look like 'YYYY_MM_DD'"):
        RawDriveWriter(tmp_path, "2011-09-26", 1)
    writer.close()
    with pytest.raises(DatasetError, match="writer is closed"):
        writer.add_frame(np.zeros((4, 5, 3), np.uint8), np.zeros((1, 4)), oxts_packet(0), 1, 1)
    shutil.rmtree(writer.drive_dir)
