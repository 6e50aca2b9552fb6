"""sensor_msgs/Image <-> numpy without cv_bridge (the real cv_bridge is used when importable)."""

from __future__ import annotations

import array as pyarray
from typing import Any

import cv2
import numpy as np

from monotakd_ros.errors import ImageEncodingError

try:  # a real ROS install's cv_bridge does the pixel copy; our checks run first either way
    from cv_bridge import CvBridge as _CvBridge
except ImportError:  # pip-only installs: PyPI's cv-bridge is the ROS 1 one
    _CvBridge = None

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "16UC1": (np.dtype(np.uint16), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3")


def image_msg_to_array(msg: Any) -> np.ndarray:
    """Image message -> (H, W[, C]) array in the message's own encoding, without copying data."""
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise ImageEncodingError(
            f"unsupported image encoding '{encoding}'; supported: {sorted(ENCODINGS)}"
        )
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if height <= 0 or width <= 0:
        raise ImageEncodingError(f"image has zero size: {width}x{height} ({encoding})")
    if step < row_bytes:
        raise ImageEncodingError(
            f"image step {step} < width {width} x {channels} ch x {dtype.itemsize} B "
            f"= {row_bytes} ({encoding})"
        )
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    buffer = buffer.reshape(-1).view(np.uint8)
    if buffer.size != height * step:
        raise ImageEncodingError(
            f"image data has {buffer.size} bytes but height {height} x step {step} = "
            f"{height * step} ({encoding}, {width}x{height})"
        )
    if _CvBridge is not None:
        return np.asarray(_CvBridge().imgmsg_to_cv2(msg, desired_encoding="passthrough"))
    # A view of the message's own buffer: padded rows (step > row bytes) stay a row-strided
    # view, which numpy and OpenCV read as they are.
    rows = buffer.reshape(height, step)[:, :row_bytes].view(dtype)  # (H, W * C)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != (np.little_endian is False):
        rows = rows.byteswap()
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rows.reshape(shape)


def image_msg_to_bgr8(msg: Any) -> np.ndarray:
    """Colour or mono Image message -> (H, W, 3) uint8 BGR array, with at most one copy.

    bgr8 is a view of the message's buffer (rows may be strided when ``step`` pads them);
    other encodings are converted by one ``cv2.cvtColor`` pass into a new contiguous array.
    """
    array = image_msg_to_array(msg)
    encoding = str(msg.encoding)
    if encoding not in COLOR_ENCODINGS:
        raise ImageEncodingError(
            f"encoding '{encoding}' is not a colour image; expected one of {list(COLOR_ENCODINGS)}"
        )
    if encoding in ("bgr8", "8UC3"):
        return array
    # cv2 swaps channels ~30x faster than a numpy reversed-stride copy.
    if encoding == "rgb8":
        return cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if encoding == "bgra8":
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if encoding == "rgba8":
        return cv2.cvtColor(array, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)  # mono8



def array_to_image_msg(array: np.ndarray, encoding: str, msg: Any) -> Any:
    """Fill ``msg`` (a sensor_msgs/Image) from ``array`` in ``encoding``; returns ``msg``."""
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f"unsupported image encoding '{encoding}'")
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageEncodingError(
            f"array of shape {array.shape} does not fit encoding '{encoding}' ({channels} ch)"
        )
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0 if np.little_endian or dtype.itemsize == 1 else 1
    msg.step = int(array.shape[1] * channels * dtype.itemsize)
    # The generated setter checks numpy input element by element (~60 ms for 1242x375x3);
    # an array.array('B') is taken as one buffer (< 1 ms including the copy).
    buffer = pyarray.array("B")
    buffer.frombytes(array.tobytes())
    msg.data = buffer
    return msg
