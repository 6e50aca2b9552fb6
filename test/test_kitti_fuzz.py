"""Fuzzing the KITTI readers: mutated label and calibration files give a project error or a
valid result, never a raw traceback.

Each case starts from real KITTI-format text and applies one seeded mutation: a byte flipped,
inserted (also invalid UTF-8 and NUL), deleted or cut, or a field replaced, dropped, repeated or
moved. Readers must either succeed with values inside KITTI's ranges or raise a MonotakdError.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from monotakd_ros.data.kitti.calib import (
    object_calib_from_camera_calib,
    raw_calib_from_camera_calib,
    read_object_calib,
    read_raw_calib,
    write_object_calib,
    write_raw_calib,
)
from monotakd_ros.data.kitti.labels import DONT_CARE, KittiLabels, read_label_file
from monotakd_ros.data.kitti.raw_calib import CAM_TO_CAM_FILE, VELO_TO_CAM_FILE
from monotakd_ros.errors import MonotakdError
from monotakd_ros.geometry.calib import CameraCalib

# Real lines from KITTI training/label_2 000000.txt / 000001.txt, and a result file's lines.
GROUND_TRUTH = (
    "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n"
    "Truck 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
    "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57\n"
    "Cyclist 0.00 3 -1.65 676.60 163.95 688.98 193.93 1.86 0.60 2.02 4.59 1.32 45.84 -1.55\n"
    "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
)
PREDICTIONS = (
    "Car -1 -1 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57 0.9132\n"
    "Pedestrian 0.12 -1 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01 "
    "0.4410\n"
)
# the real calibration of object training/calib/000000.txt
P2 = np.array([7.215377e02, 0, 6.095593e02, 4.485728e01, 0, 7.215377e02, 1.728540e02,
               2.163791e-01, 0, 0, 1, 2.745884e-03]).reshape(3, 4)
R0_RECT = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01,
                    -4.278459e-03, 7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
TR_VELO_TO_CAM = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03,
                           1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02,
                           9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]).reshape(3, 4)

# Field replacements: non-numbers, non-finite, out of range, Python-only spellings, key damage.
TOKENS = ["nan", "-nan", "inf", "-inf", "1e999", "9" * 400, "abc", "", "-1", "7", "5.0", "-1000",
          "1e-3", "0x10", "\u0663", "1_0", "--1", "+", ".", "1e", "DontCare", "P2:", ":",
          "R0_rect:", "\x00", "\u00ff", "\u2028", "Car"]
CASES_PER_FORMAT = {"label": 360, "prediction": 180, "object_calib": 360, "raw_cam": 160,
                    "raw_velo": 60}


def mutate(text: str, rng: np.random.Generator) -> bytes:
    """``text`` with one random byte-level or field-level change."""
    data = bytearray(text.encode())
    kind = int(rng.integers(8))
    at = int(rng.integers(len(data) + 1))
    if kind == 0 and data:
        data[min(at, len(data) - 1)] = int(rng.integers(256))
    elif kind == 1:
        data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 5))).tolist())
    elif kind == 2:
        del data[at:at + int(rng.integers(1, 21))]
    elif kind == 3:
        del data[at:]
    else:
        lines = text.splitlines()
        row = int(rng.integers(len(lines)))
        tokens = lines[row].split(" ")
        col = int(rng.integers(len(tokens)))
        if kind == 4:
            tokens[col] = TOKENS[int(rng.integers(len(TOKENS)))]
        elif kind == 5:
            del tokens[col]
        elif kind == 6:
            tokens.insert(col, tokens[col])
        else:
            lines.insert(int(rng.integers(len(lines) + 1)), lines.pop(row) if row % 2 else
                         lines[row])
        if kind != 7:
            lines[row] = " ".join(tokens)
        return ("\n".join(lines) + "\n").encode()
    return bytes(data)


def check_labels(labels: KittiLabels) -> None:
    """What a successful read promises: finite values inside KITTI's ranges."""
    for name in ("truncated", "alpha", "bbox", "boxes_cam"):
        assert np.all(np.isfinite(getattr(labels, name))), name
    assert np.all((labels.truncated == -1) | ((labels.truncated >= 0) & (labels.truncated <= 1)))
    assert set(labels.occluded.tolist()) <= {-1, 0, 1, 2, 3}
    assert np.all(labels.bbox[:, 2] >= labels.bbox[:, 0])
    assert np.all(labels.bbox[:, 3] >= labels.bbox[:, 1])
    dims = labels.boxes_cam[:, 3:6]
    filler = (labels.names == DONT_CARE) & np.all(dims == -1, axis=1)
    assert np.all(filler | np.all(dims >= 0, axis=1))


def check_matrices(calib: Any) -> None:
    for name, value in vars(calib).items():
        if isinstance(value, np.ndarray):
            assert np.all(np.isfinite(value)), name


def seed_texts(tmp_path: Path) -> dict[str, tuple[str, str, Callable[[Path], Any]]]:
    """Format -> (file name, real text, reader of a folder holding that file)."""
    camera = CameraCalib(P2=P2, R0_rect=R0_RECT, T_cam_from_lidar=TR_VELO_TO_CAM)
    write_object_calib(tmp_path / "calib.txt", object_calib_from_camera_calib(camera))
    write_raw_calib(tmp_path / "raw", raw_calib_from_camera_calib(camera, (375, 1242)))

    def raw_reader(folder: Path) -> Any:
        for name in (CAM_TO_CAM_FILE, VELO_TO_CAM_FILE, "calib_imu_to_velo.txt"):
            if not (folder / name).exists():
                (folder / name).write_bytes((tmp_path / "raw" / name).read_bytes())
        return read_raw_calib(folder)

    return {
        "label": ("000000.txt", GROUND_TRUTH, lambda d: read_label_file(d / "000000.txt")),
        "prediction": ("000000.txt", PREDICTIONS, lambda d: read_label_file(d / "000000.txt")),
        "object_calib": ("000000.txt", (tmp_path / "calib.txt").read_text(),
                         lambda d: read_object_calib(d / "000000.txt")),
        "raw_cam": (CAM_TO_CAM_FILE, (tmp_path / "raw" / CAM_TO_CAM_FILE).read_text(),
                    raw_reader),
        "raw_velo": (VELO_TO_CAM_FILE, (tmp_path / "raw" / VELO_TO_CAM_FILE).read_text(),
                     raw_reader),
    }


def test_seed_texts_read_back(tmp_path: Path) -> None:
    for kind, (name, text, reader) in seed_texts(tmp_path).items():
        folder = tmp_path / f"seed_{kind}"
        folder.mkdir()
        (folder / name).write_text(text)
        result = reader(folder)
        if kind in ("label", "prediction"):
            assert len(result) == text.count("\n")


def test_mutated_kitti_files_never_raise_raw_exceptions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "refused": 0}
    raw: list[str] = []
    for kind, (name, text, reader) in seed_texts(tmp_path).items():
        for case in range(CASES_PER_FORMAT[kind]):
            folder = tmp_path / f"{kind}_{case}"
            folder.mkdir()
            mutated = mutate(text, rng)
            (folder / name).write_bytes(mutated)
            try:
                result = reader(folder)
            except MonotakdError:
                outcomes["refused"] += 1
                continue
            except Exception:  # noqa: BLE001 - the point of the test is to catch them all
                raw.append(f"{kind} {mutated!r}\n{traceback.format_exc(limit=-2)}")
                continue
            outcomes["ok"] += 1
            if kind in ("label", "prediction"):
                check_labels(result)
            else:
                check_matrices(result)
    assert raw == []
    assert sum(outcomes.values()) == sum(CASES_PER_FORMAT.values()) >= 1000
    # Both outcomes are frequent: the mutations reach the parsers' checks and their happy paths.
    assert outcomes["refused"] > 300 and outcomes["ok"] > 100, outcomes
