"""KITTI images: lossless PNG round trips and errors naming the path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from monotakd_ros.data.kitti.images import read_image_bgr, write_image_png
from monotakd_ros.errors import KittiFormatError


def test_png_round_trip_is_lossless_and_keeps_bgr_order(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (15, 31, 3), dtype=np.uint8)
    path = tmp_path / "image_2" / "000000.png"
    write_image_png(path, image)
    np.testing.assert_array_equal(read_image_bgr(path), image)
    # Another decoder (Pillow, shipped with matplotlib) sees RGB: BGR channel 0 is its blue.
    pil_image = pytest.importorskip("PIL.Image")
    with pil_image.open(path) as decoded:
        assert decoded.mode == "RGB"
        rgb = np.asarray(decoded)
    np.testing.assert_array_equal(rgb[..., ::-1], image)


def test_grey_images_become_three_channels(tmp_path):
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((4, 5), 77, np.uint8))
    image = read_image_bgr(path)
    assert image.shape == (4, 5, 3)
    assert np.all(image == 77)


def test_errors_name_the_path(tmp_path):
    with pytest.raises(KittiFormatError, match=r"missing\.png: image file does not exist"):
        read_image_bgr(tmp_path / "missing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(KittiFormatError, match=r"broken\.png: OpenCV cannot decode"):
        read_image_bgr(broken)
    with pytest.raises(KittiFormatError, match=r"out\.png: image must be \(H, W, 3\) uint8"):
        write_image_png(tmp_path / "out.png", np.zeros((4, 5, 3), np.float32))
    with pytest.raises(KittiFormatError, match=r"out\.jpg: write_image_png needs a \.png path"):
        write_image_png(tmp_path / "out.jpg", np.zeros((4, 5, 3), np.uint8))
