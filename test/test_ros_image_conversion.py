from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from monotakd_ros.errors import ImageEncodingError
from monotakd_ros.ros.image_conversion import (
    array_to_image_msg,
    image_msg_to_array,
    image_msg_to_bgr8,
)

RNG = np.random.default_rng(7)


def depth_msg_to_metres(msg: Image) -> np.ndarray:
    """16UC1 (millimetres) or 32FC1 (metres) depth Image -> (H, W) float32 metres, 0 = none."""
    array = image_msg_to_array(msg)
    if msg.encoding == "16UC1":
        return array.astype(np.float32) / 1000.0
    if msg.encoding == "32FC1":
        return np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    raise ImageEncodingError(f"encoding '{msg.encoding}' is not a depth image")
BGR = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def roundtrip(msg: Image) -> Image:
    return deserialize_message(serialize_message(msg), Image)


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("bgr8", BGR),
        ("rgb8", BGR[..., ::-1]),
        ("bgra8", np.dstack([BGR, np.full((5, 7), 9, np.uint8)])),
        ("rgba8", np.dstack([BGR[..., ::-1], np.full((5, 7), 9, np.uint8)])),
    ],
)
def test_colour_encodings_give_the_same_bgr(encoding: str, pixels: np.ndarray) -> None:
    msg = roundtrip(array_to_image_msg(pixels, encoding, Image()))
    assert msg.encoding == encoding
    np.testing.assert_array_equal(image_msg_to_bgr8(msg), BGR)


def test_mono8_is_replicated_to_three_channels() -> None:
    grey = BGR[..., 0]
    bgr = image_msg_to_bgr8(roundtrip(array_to_image_msg(grey, "mono8", Image())))
    assert bgr.shape == (5, 7, 3)
    np.testing.assert_array_equal(bgr[..., 2], grey)


def test_row_padding_in_step_is_skipped() -> None:
    msg = array_to_image_msg(BGR, "bgr8", Image())
    padded = np.zeros((5, 7 * 3 + 3), np.uint8)
    padded[:, :21] = BGR.reshape(5, 21)
    msg.step = 24
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(image_msg_to_bgr8(roundtrip(msg)), BGR)


def test_depth_16uc1_is_millimetres_and_32fc1_metres() -> None:
    mm = np.array([[0, 1500], [65535, 20]], np.uint16)
    np.testing.assert_allclose(
        depth_msg_to_metres(roundtrip(array_to_image_msg(mm, "16UC1", Image()))),
        mm / 1000.0, rtol=1e-6)
    metres = np.array([[np.nan, 2.5], [np.inf, 0.25]], np.float32)
    out = depth_msg_to_metres(roundtrip(array_to_image_msg(metres, "32FC1", Image())))
    np.testing.assert_array_equal(out, [[0.0, 2.5], [0.0, 0.25]])


def test_unsupported_encoding_is_refused_with_its_name() -> None:
    msg = array_to_image_msg(BGR, "bgr8", Image())
    msg.encoding = "yuv422"
    with pytest.raises(ImageEncodingError, match="unsupported image encoding 'yuv422'"):
        image_msg_to_array(msg)


def test_data_length_mismatch_names_the_sizes() -> None:
    msg = array_to_image_msg(BGR, "bgr8", Image())
    msg.data = msg.data[:-4]
    with pytest.raises(ImageEncodingError, match=r"101 bytes but height 5 x step 21 = 105"):
        image_msg_to_array(msg)


def test_step_smaller_than_a_row_is_refused() -> None:
    msg = array_to_image_msg(BGR, "bgr8", Image())
    msg.step = 20
    with pytest.raises(ImageEncodingError, match="step 20 < width 7"):
        image_msg_to_array(msg)


def test_depth_image_is_not_a_colour_image() -> None:
    msg = array_to_image_msg(np.zeros((2, 2), np.uint16), "16UC1", Image())
    with pytest.raises(ImageEncodingError, match="not a colour image"):
        image_msg_to_bgr8(msg)


def padded_msg(pixels: np.ndarray, encoding: str, pad_bytes: int) -> Image:
    """A deserialised Image of ``pixels`` whose rows carry ``pad_bytes`` of padding."""
    msg = array_to_image_msg(pixels, encoding, Image())
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    padded = np.full((rows.shape[0], rows.shape[1] + pad_bytes), 77, np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return roundtrip(msg)


@pytest.mark.parametrize("pad_bytes", [0, 2])
def test_bgr8_is_a_view_of_the_message_buffer(pad_bytes: int) -> None:
    # No copy between the message and the model's resize, padded rows or not.
    msg = padded_msg(BGR, "bgr8", pad_bytes)
    bgr = image_msg_to_bgr8(msg)
    np.testing.assert_array_equal(bgr, BGR)
    assert np.shares_memory(bgr, np.frombuffer(msg.data, np.uint8))
    assert bgr.strides == (21 + pad_bytes, 3, 1)


@pytest.mark.parametrize("encoding", ["rgb8", "rgba8", "mono8"])
def test_padded_rows_convert_in_one_pass(encoding: str) -> None:
    pixels = {"rgb8": BGR[..., ::-1],
              "rgba8": np.dstack([BGR[..., ::-1], np.full((5, 7), 9, np.uint8)]),
              "mono8": BGR[..., 1]}[encoding]
    msg = padded_msg(np.ascontiguousarray(pixels), encoding, pad_bytes=3)
    bgr = image_msg_to_bgr8(msg)
    expected = BGR if encoding != "mono8" else np.repeat(BGR[..., 1:2], 3, axis=2)
    np.testing.assert_array_equal(bgr, expected)
    assert bgr.flags.c_contiguous and not np.shares_memory(bgr, np.frombuffer(msg.data,
                                                                              np.uint8))


def test_big_endian_16uc1_with_padding_reads_the_right_values() -> None:
    mm = np.array([[1, 258], [4097, 65535]], np.uint16)
    msg = padded_msg(mm.astype(">u2"), "16UC1", pad_bytes=2)
    msg.is_bigendian = 1
    np.testing.assert_array_equal(image_msg_to_array(msg), mm)
