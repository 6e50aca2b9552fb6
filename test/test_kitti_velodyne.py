"""KITTI velodyne scans: float32 (x, y, z, reflectance) records, round trips and errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from monotakd_ros.data.kitti.velodyne import read_velodyne_bin, write_velodyne_bin
from monotakd_ros.errors import KittiFormatError


def test_reads_little_endian_records_written_independently(tmp_path):
    path = tmp_path / "000000.bin"
    records = [(10.5, -2.25, -1.73, 0.5), (0.0, 1.0, 2.0, 0.0), (-3.0, 40.0, 0.125, 1.0)]
    path.write_bytes(b"".join(struct.pack("<4f", *record) for record in records))
    points = read_velodyne_bin(path)
    assert points.dtype == np.float32
    assert points.shape == (3, 4)
    np.testing.assert_array_equal(points, np.array(records, dtype=np.float32))
    points[0, 0] = 1.0  # the result is an ordinary writable array


def test_round_trip_is_byte_exact(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 20.0, (1000, 4)).astype(np.float32)
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    write_velodyne_bin(first, points)
    assert first.stat().st_size == 1000 * 16
    back = read_velodyne_bin(first)
    np.testing.assert_array_equal(back, points)
    write_velodyne_bin(second, back)
    assert first.read_bytes() == second.read_bytes()
    assert struct.unpack("<4f", first.read_bytes()[16:32]) == tuple(points[1].tolist())


def test_float64_input_is_stored_as_float32(tmp_path):
    path = tmp_path / "sub" / "scan.bin"
    write_velodyne_bin(path, np.array([[1.0, 2.0, 3.0, 0.1]]))
    np.testing.assert_array_equal(read_velodyne_bin(path), np.float32([[1.0, 2.0, 3.0, 0.1]]))


def test_empty_scan(tmp_path):
    path = tmp_path / "empty.bin"
    write_velodyne_bin(path, np.zeros((0, 4), np.float32))
    assert read_velodyne_bin(path).shape == (0, 4)


def test_errors_name_the_file_and_size(tmp_path):
    path = tmp_path / "000007.bin"
    path.write_bytes(b"\0" * 20)
    pattern = r"000007\.bin: size 20 bytes is not a multiple of 16"
    with pytest.raises(KittiFormatError, match=pattern):
        read_velodyne_bin(path)
    with pytest.raises(KittiFormatError, match=r"nothere\.bin: cannot read velodyne scan"):
        read_velodyne_bin(tmp_path / "nothere.bin")
    pattern = r"out\.bin: points must have shape \(N, 4\), got \(5, 3\)"
    with pytest.raises(KittiFormatError, match=pattern):
        write_velodyne_bin(tmp_path / "out.bin", np.zeros((5, 3)))
