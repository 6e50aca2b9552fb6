"""KITTI camera images (``image_2/*.png``) read and written as BGR uint8 arrays with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from monotakd_ros.errors import KittiFormatError

# OpenCV's fastest zlib level: PNG stays lossless, and writing keeps pace with data generation.
DEFAULT_PNG_COMPRESSION = 1


def read_image_bgr(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR image; grey images are expanded to three channels."""
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(f"{path}: image file does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise KittiFormatError(f"{path}: OpenCV cannot decode this image")
    return image


def write_image_png(
    path: Path, image_bgr: np.ndarray, compression: int = DEFAULT_PNG_COMPRESSION
) -> None:
    """Write an (H, W, 3) uint8 BGR image as PNG (zlib level ``compression``)."""
    path = Path(path)
    image_bgr = np.asarray(image_bgr)
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise KittiFormatError(
            f"{path}: image must be (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}"
        )
    if path.suffix.lower() != ".png":
        raise KittiFormatError(f"{path}: write_image_png needs a .png path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot create the image folder ({err})") from err
    try:
        written = cv2.imwrite(str(path), image_bgr, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    except cv2.error as err:
        raise KittiFormatError(f"{path}: OpenCV failed to write the image ({err})") from err
    if not written:
        raise KittiFormatError(f"{path}: OpenCV failed to write the image")
