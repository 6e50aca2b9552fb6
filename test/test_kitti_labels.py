"""KITTI label_2 files: parsing real lines, writing them back, helpers and errors."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.data.kitti.labels import (
    KittiLabels,
    concat_labels,
    labels_from_lines,
    labels_to_lines,
    read_label_file,
    select_labels,
    write_label_file,
)
from monotakd_ros.errors import KittiFormatError

# Real lines from KITTI training/label_2 (000000.txt and 000001.txt).
REAL_LABELS = (
    "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n"
    "Truck 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
    "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57\n"
    "Cyclist 0.00 3 -1.65 676.60 163.95 688.98 193.93 1.86 0.60 2.02 4.59 1.32 45.84 -1.55\n"
    "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
)


def test_real_label_lines_parse_field_by_field(tmp_path):
    path = tmp_path / "000001.txt"
    path.write_text(REAL_LABELS)
    labels = read_label_file(path)
    assert len(labels) == 5
    assert labels.names.tolist() == ["Pedestrian", "Truck", "Car", "Cyclist", "DontCare"]
    assert labels.score is None
    assert labels.occluded.tolist() == [0, 0, 0, 3, -1]
    assert labels.occluded.dtype == np.int64
    assert labels.truncated[4] == -1.0
    assert labels.alpha[4] == -10.0
    np.testing.assert_array_equal(labels.boxes_cam[4], [-1000, -1000, -1000, -1, -1, -1, -10])
    assert labels.alpha[2] == 1.85
    np.testing.assert_array_equal(labels.bbox[0], [712.40, 143.00, 810.73, 307.92])
    # file: h w l = 1.89 0.48 1.20, x y z = 1.84 1.47 8.41, ry = 0.01 -> [x, y, z, l, h, w, ry]
    np.testing.assert_array_equal(labels.boxes_cam[0], [1.84, 1.47, 8.41, 1.20, 1.89, 0.48, 0.01])
    np.testing.assert_array_equal(
        labels.boxes_cam[2], [-16.53, 2.39, 58.49, 3.69, 1.67, 1.87, 1.57]
    )


def test_standard_precision_reproduces_real_object_lines_byte_for_byte(tmp_path):
    # Real DontCare lines write integers ("-1 -1 -10"); every other line is two-decimal.
    objects = "".join(REAL_LABELS.splitlines(keepends=True)[:4])
    path, out = tmp_path / "in.txt", tmp_path / "out.txt"
    path.write_text(objects)
    write_label_file(out, read_label_file(path))
    assert out.read_text() == objects


def test_prediction_files_carry_a_score_column(tmp_path):
    lines = [line + " 0.9512" for line in REAL_LABELS.splitlines()[:3]]
    labels = labels_from_lines(lines, "pred.txt")
    np.testing.assert_array_equal(labels.score, [0.9512, 0.9512, 0.9512])
    out = tmp_path / "pred.txt"
    write_label_file(out, labels)
    written = out.read_text().splitlines()
    assert [line.split()[-1] for line in written] == ["0.9512"] * 3
    assert all(len(line.split()) == 16 for line in written)
    without = KittiLabels(**{**labels.__dict__, "score": None})
    assert all(len(line.split()) == 15 for line in labels_to_lines(without))


def test_lossless_precision_round_trips_arbitrary_floats(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    boxes_cam = rng.normal(0, 10, (n, 7))
    boxes_cam[:, 3:6] = np.abs(boxes_cam[:, 3:6])  # dimensions l, h, w are >= 0
    labels = KittiLabels(
        names=np.array(["Car", "Pedestrian", "Cyclist", "Van", "Car", "Person_sitting"]),
        truncated=rng.uniform(0, 1, n),
        occluded=rng.integers(0, 4, n),
        alpha=rng.uniform(-np.pi, np.pi, n),
        bbox=np.sort(rng.uniform(0, 1242, (n, 2, 2)), axis=1).reshape(n, 4),  # x1 y1 <= x2 y2
        boxes_cam=boxes_cam,
        score=rng.uniform(0, 1, n),
    )
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    write_label_file(first, labels, precision=None)
    back = read_label_file(first)
    for name in ("truncated", "occluded", "alpha", "bbox", "boxes_cam", "score"):
        np.testing.assert_array_equal(getattr(back, name), getattr(labels, name))
    assert back.names.tolist() == labels.names.tolist()
    write_label_file(second, back, precision=None)
    assert first.read_bytes() == second.read_bytes()
    # With KITTI's two decimals the values are rounded, not exact.
    write_label_file(second, labels)
    rounded = read_label_file(second)
    np.testing.assert_allclose(rounded.boxes_cam, labels.boxes_cam, atol=0.005 + 1e-9)
    assert not np.array_equal(rounded.boxes_cam, labels.boxes_cam)


def test_empty_file_means_no_objects(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    labels = read_label_file(path)
    assert len(labels) == 0
    assert labels.boxes_cam.shape == (0, 7)
    assert labels.bbox.shape == (0, 4)
    write_label_file(tmp_path / "out.txt", labels)
    assert (tmp_path / "out.txt").read_text() == ""


def test_select_and_concat():
    labels = labels_from_lines(REAL_LABELS.splitlines())
    cars_and_peds = select_labels(labels, np.isin(labels.names, ["Car", "Pedestrian"]))
    assert cars_and_peds.names.tolist() == ["Pedestrian", "Car"]
    np.testing.assert_array_equal(cars_and_peds.boxes_cam[1], labels.boxes_cam[2])
    reordered = select_labels(labels, np.array([3, 0]))
    assert reordered.names.tolist() == ["Cyclist", "Pedestrian"]
    joined = concat_labels([reordered, KittiLabels(), cars_and_peds])
    assert joined.names.tolist() == ["Cyclist", "Pedestrian", "Pedestrian", "Car"]
    np.testing.assert_array_equal(joined.bbox[3], labels.bbox[2])
    assert joined.score is None
    scored = KittiLabels(**{**reordered.__dict__, "score": np.array([0.5, 0.25])})
    assert concat_labels([scored, KittiLabels(), scored]).score.tolist() == [0.5, 0.25] * 2
    with pytest.raises(ValueError, match="with and without scores"):
        concat_labels([scored, reordered])
    assert len(concat_labels([])) == 0


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49",
            r"labels\.txt:2: expected 15 fields \(or 16 with a score\), got 14",
        ),
        (
            "Car 0.00 0 1.85 387.63 abc 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: field 6 is not a number: 'abc'",
        ),
        (
            "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 nan 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: field 9 is not finite: 'nan'",
        ),
        (
            "Car 0.00 0.5 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: occluded \(field 3\) is not an integer: '0.5'",
        ),
        (
            "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.5 0.9",
            r"labels\.txt:2: 16 fields, but earlier lines have 15",
        ),
        # Values outside KITTI's ranges (each of these changed the AP before it was refused).
        (
            "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 -1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: dimensions h w l \(fields 9-11\) must be >= 0 .*got 1.67 -1.87 3.69",
        ),
        (
            "Car -1 -1 1.85 387.63 181.54 423.81 203.12 -1 -1 -1 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: dimensions .* \(only DontCare may give -1 -1 -1\)",
        ),
        (
            "Car 5.0 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: truncated \(field 2\) must lie in \[0, 1\] \(or be -1\), got '5.0'",
        ),
        (
            "Car -0.5 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: truncated \(field 2\) must lie in \[0, 1\]",
        ),
        (
            "Car 0.00 7 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: occluded \(field 3\) must be 0, 1, 2 or 3 \(or -1\), got '7'",
        ),
        (
            "Car 0.00 0 1.85 423.81 181.54 387.63 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: bbox \(fields 5-8\) needs x1 <= x2 and y1 <= y2, got 423.81 181.54",
        ),
        (
            "Car 0.00 0 1.85 387.63 203.12 423.81 181.54 1.67 1.87 3.69 -16.53 2.39 58.49 1.57",
            r"labels\.txt:2: bbox \(fields 5-8\) needs x1 <= x2 and y1 <= y2",
        ),
    ],
)
def test_malformed_lines_name_file_line_and_field(tmp_path, line, pattern):
    path = tmp_path / "labels.txt"
    path.write_text(REAL_LABELS.splitlines()[0] + "\n" + line + "\n")
    with pytest.raises(KittiFormatError, match=pattern):
        read_label_file(path)


def test_kitti_markers_for_not_given_values_still_read():
    """DontCare's -1 / -1000 fillers and the -1 truncation/occlusion of result files are valid."""
    dont_care = labels_from_lines(REAL_LABELS.splitlines()[4:])
    assert dont_care.truncated.tolist() == [-1.0] and dont_care.occluded.tolist() == [-1]
    assert dont_care.boxes_cam.tolist() == [[-1000.0, -1000.0, -1000.0, -1.0, -1.0, -1.0, -10.0]]
    result = labels_from_lines(
        ["Car -1 -1 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57 0.9",
         "Car 0 3 1.85 5.0 6.0 5.0 6.0 0 0 0 -16.53 2.39 58.49 1.57 0.8"])  # degenerate, legal
    assert result.truncated.tolist() == [-1.0, 0.0] and result.occluded.tolist() == [-1, 3]
    assert result.score.tolist() == [0.9, 0.8]


def test_io_and_write_errors(tmp_path):
    with pytest.raises(KittiFormatError, match=r"absent\.txt: cannot read label file"):
        read_label_file(tmp_path / "absent.txt")
    labels = labels_from_lines(REAL_LABELS.splitlines()[:2])
    broken = KittiLabels(**{**labels.__dict__, "bbox": labels.bbox[:1]})
    with pytest.raises(KittiFormatError, match=r"out\.txt: labels\.bbox has shape \(1, 4\)"):
        write_label_file(tmp_path / "out.txt", broken)
    spaced = KittiLabels(**{**labels.__dict__, "names": np.array(["Big car", "Truck"])})
    with pytest.raises(KittiFormatError, match=r"class name 'Big car' is empty or has spaces"):
        write_label_file(tmp_path / "out.txt", spaced)
    nan_box = labels.boxes_cam.copy()
    nan_box[0, 2] = np.nan
    with pytest.raises(KittiFormatError, match=r"labels\.boxes_cam holds non-finite values"):
        write_label_file(
            tmp_path / "out.txt", KittiLabels(**{**labels.__dict__, "boxes_cam": nan_box})
        )
