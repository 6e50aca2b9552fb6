"""Device-side input preparation equals the numpy/OpenCV step (run here on CPU tensors)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers_detector import KITTI_P2, LOW_SCORE, road_image, write_test_checkpoint

from monotakd_ros.data.batch import InputSpec, placed_image, resized_hw
from monotakd_ros.errors import ImageEncodingError
from monotakd_ros.inference import StudentPredictor
from monotakd_ros.inference.device_prepare import (
    DeviceImagePreparer,
    placed_image_tensor,
    resampling_taps,
)

# One grey level after normalisation: OpenCV's uint8 bilinear resize rounds 11-bit fixed-point
# weights, the device path float ones, so a pixel may land one level apart.
ONE_LEVEL = 1.0 / (255.0 * min(InputSpec().std)) + 1e-6


def textured_image(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Blurred noise: every resampling weight matters, unlike flat test patterns."""
    rng = np.random.default_rng(seed)
    noise = (rng.random((*hw, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 1.0)


def test_taps_match_hand_computed_weights() -> None:
    # Area 5 -> 2: output 0 covers source [0, 2.5): pixels 0, 1 whole and half of 2.
    index, weight = resampling_taps(5, 2, area=True)
    dense = np.zeros((2, 5))
    np.add.at(dense, (np.arange(2)[:, None].repeat(index.shape[1], 1), index), weight)
    np.testing.assert_allclose(dense, [[0.4, 0.4, 0.2, 0.0, 0.0], [0.0, 0.0, 0.2, 0.4, 0.4]])
    # Bilinear 2 -> 4: centres at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
    index, weight = resampling_taps(2, 4, area=False)
    dense = np.zeros((4, 2))
    np.add.at(dense, (np.arange(4)[:, None].repeat(2, 1), index), weight)
    np.testing.assert_allclose(dense, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


@pytest.mark.parametrize(("image_hw", "input_hw", "offset_yx"), [
    ((375, 1242), (96, 320), (0, 0)),  # KITTI shrunk (INTER_AREA, non-integer factor)
    ((375, 1242), (96, 320), (5, -7)),  # pasted lower and cropped on the left
    ((120, 400), (96, 320), (-3, 0)),  # area, cropped at the top
])
def test_shrinking_matches_opencv_area_exactly(image_hw: tuple[int, int],
                                               input_hw: tuple[int, int],
                                               offset_yx: tuple[int, int]) -> None:
    spec = InputSpec(input_hw=input_hw)
    image = textured_image(image_hw, 1)
    new_hw = resized_hw(image_hw, spec)
    expected = placed_image(image, new_hw, offset_yx, spec).numpy()
    got = placed_image_tensor(torch.from_numpy(image), new_hw, offset_yx, spec).numpy()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("offset_yx", [(0, 0), (4, 6)])
def test_enlarging_matches_opencv_bilinear_within_one_level(offset_yx: tuple[int, int]) -> None:
    spec = InputSpec(input_hw=(128, 416))
    image = textured_image((90, 300), 2)
    new_hw = resized_hw((90, 300), spec)
    expected = placed_image(image, new_hw, offset_yx, spec).numpy()
    got = placed_image_tensor(torch.from_numpy(image), new_hw, offset_yx, spec).numpy()
    difference = np.abs(got - expected)
    assert difference.max() <= ONE_LEVEL
    assert 0.0 < np.mean(difference > 1e-6) < 0.2  # a few rounding ties, not a shifted grid
    assert np.all(got[:, :offset_yx[0]] == 0.0) and np.all(got[:, :, :offset_yx[1]] == 0.0)


def test_bad_tensors_are_rejected() -> None:
    spec = InputSpec(input_hw=(96, 320))
    with pytest.raises(ImageEncodingError, match=r"\(H, W, 3\) uint8 BGR tensor"):
        placed_image_tensor(torch.zeros(10, 10, 3), (10, 10), (0, 0), spec)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


@pytest.mark.parametrize("camera_mode", ["fit_width", "virtual"])
def test_predictor_hook_gives_the_cpu_path_boxes(checkpoint: Path, camera_mode: str) -> None:
    cpu = StudentPredictor.from_checkpoint(checkpoint, device="cpu", camera_mode=camera_mode,
                                           score_threshold=LOW_SCORE)
    device = StudentPredictor.from_checkpoint(checkpoint, device="cpu", camera_mode=camera_mode,
                                              score_threshold=LOW_SCORE)
    device._device_preparer = DeviceImagePreparer(device.spec, torch.device("cpu"))  # as CUDA
    device.warm_up_device()  # what a CUDA predictor runs at construction
    image = road_image(3)
    on_device, P_device = device.prepared_input_on_device(image, KITTI_P2)
    on_host, P_host = cpu.prepared_input(image, KITTI_P2)
    np.testing.assert_array_equal(P_device, P_host)
    np.testing.assert_array_equal(on_device[0].numpy(), on_host.numpy())  # area: exact
    expected, got = cpu.predict(image, KITTI_P2), device.predict(image, KITTI_P2)
    assert len(expected) > 0
    np.testing.assert_array_equal(got.boxes_cam, expected.boxes_cam)
