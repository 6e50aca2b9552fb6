"""monotakd-synth --image-size/--intrinsics: the same scenes through another camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from monotakd_ros.data.kitti.calib import read_object_calib
from monotakd_ros.data.synth.cli import main, synth_config_from_args
from monotakd_ros.data.synth.generator import generate_object_frame
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.kitti_camera import KITTI_P2


def test_object_set_through_a_640x480_camera(tmp_path: Path) -> None:
    code = main(["object", "--out", str(tmp_path), "--frames", "1", "--seed", "3",
                 "--test-fraction", "0", "--image-size", "640x480",
                 "--intrinsics", "500", "500", "320", "240"])
    assert code == 0
    image = cv2.imread(str(tmp_path / "training/image_2/000000.png"))
    assert image.shape == (480, 640, 3)
    P2 = read_object_calib(tmp_path / "training/calib/000000.txt").P2
    assert P2[:, :3] == pytest.approx(np.array([[500, 0, 320], [0, 500, 240], [0, 0, 1]]))
    # Same optical centre as KITTI's camera 2: P2[:, 3] = K t with KITTI's t.
    t_kitti = np.linalg.solve(KITTI_P2[:, :3], KITTI_P2[:, 3])
    assert P2[:, 3] == pytest.approx(P2[:, :3] @ t_kitti, abs=1e-6)


def test_the_scene_does_not_depend_on_the_camera() -> None:
    kitti = generate_object_frame(3, 0)
    vga = generate_object_frame(3, 0, synth_config_from_args("640x480", [500, 500, 320, 240]))
    np.testing.assert_array_equal(kitti.points, vga.points)  # same world, pose and LiDAR
    assert vga.image_bgr.shape == (480, 640, 3)


@pytest.mark.parametrize(("size", "intrinsics", "message"), [
    ("640-480", [500, 500, 320, 240], "--image-size: expected WIDTHxHEIGHT.*'640-480'"),
    ("640x480", None, "--image-size 640x480 needs --intrinsics"),
    (None, [500, 500, 320, 240], "--intrinsics needs --image-size"),
    ("640x480", [0, 500, 320, 240], "synth intrinsics: need .* fx, fy > 0"),
])
def test_bad_camera_options_name_the_option(size: str | None, intrinsics: list[float] | None,
                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synth_config_from_args(size, intrinsics)
