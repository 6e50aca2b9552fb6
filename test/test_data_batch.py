"""Network input preparation (resize, pad, normalise, scaled P2) and frame batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monotakd_ros.configuration import dataclass_from_dict
from monotakd_ros.data.batch import (
    FrameBatch,
    FrameSample,
    InputSpec,
    collate_frames,
    prepare_image,
    resized_hw,
)
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW, kitti_camera_calib
from monotakd_ros.errors import ConfigError, DatasetError, ImageEncodingError
from monotakd_ros.geometry.calib import CameraCalib

KITTI_CALIB = kitti_camera_calib()  # the real KITTI calibration of design.md section 3
KITTI_P2, KITTI_R0, KITTI_TR = KITTI_CALIB.P2, KITTI_CALIB.R0_rect, KITTI_CALIB.T_cam_from_lidar


def gaussian_blob_image(hw: tuple[int, int], center_uv: tuple[float, float],
                        sigma_px: float = 4.0) -> np.ndarray:
    """BGR image, black but for a bright Gaussian spot centred at sub-pixel ``center_uv``."""
    rows, cols = np.mgrid[0:hw[0], 0:hw[1]]
    spot = np.exp(-((cols - center_uv[0]) ** 2 + (rows - center_uv[1]) ** 2) / (2 * sigma_px**2))
    grey = np.round(250.0 * spot).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def intensity_centroid(plane: np.ndarray) -> tuple[float, float]:
    """(u, v) centroid of a non-negative image plane, pixel centres at integers."""
    rows, cols = np.mgrid[0:plane.shape[0], 0:plane.shape[1]]
    total = plane.sum()
    return float((plane * cols).sum() / total), float((plane * rows).sum() / total)


@pytest.mark.parametrize("input_hw", [(192, 640), (384, 1248), (768, 2496)])
def test_point_projected_with_scaled_p2_lands_on_the_resized_pixel(
        input_hw: tuple[int, int]) -> None:
    spec = InputSpec(input_hw=input_hw)
    point_lidar = np.array([[14.0, 2.3, -0.4]])
    uv, _ = KITTI_CALIB.rect_to_image(KITTI_CALIB.lidar_to_rect(point_lidar))
    image = gaussian_blob_image(KITTI_IMAGE_HW, (float(uv[0, 0]), float(uv[0, 1])))
    tensor, P2_input, scale_xy = prepare_image(image, KITTI_P2, spec)
    # Undo the normalisation of the red channel to get the intensity back.
    rows = resized_hw(KITTI_IMAGE_HW, spec)[0]  # the rows below are mean-colour padding
    red = tensor[0, :rows].numpy() * spec.std[0] + spec.mean[0]
    measured_uv = intensity_centroid(red)
    scaled = CameraCalib(P2=P2_input, R0_rect=KITTI_R0, T_cam_from_lidar=KITTI_TR)
    uv_input, _ = scaled.rect_to_image(scaled.lidar_to_rect(point_lidar))
    assert uv_input[0] == pytest.approx(measured_uv, abs=0.05)
    # OpenCV's resize maps a pixel centre u to sx * (u + 0.5) - 0.5, not sx * u.
    sx, sy = scale_xy
    assert uv_input[0, 0] == pytest.approx(sx * (uv[0, 0] + 0.5) - 0.5, abs=1e-9)
    assert uv_input[0, 1] == pytest.approx(sy * (uv[0, 1] + 0.5) - 0.5, abs=1e-9)
    assert sx == input_hw[1] / KITTI_IMAGE_HW[1]
    assert sy == pytest.approx(sx, rel=2e-3)


def test_many_points_map_like_the_resize() -> None:
    spec = InputSpec(input_hw=(192, 640))
    rng = np.random.default_rng(0)
    points_rect = rng.uniform([-10, -2, 4], [10, 2, 60], size=(200, 3))
    uv, depth = KITTI_CALIB.rect_to_image(points_rect)
    _, P2_input, (sx, sy) = prepare_image(np.zeros((*KITTI_IMAGE_HW, 3), np.uint8), KITTI_P2, spec)
    uvw = points_rect @ P2_input[:, :3].T + P2_input[:, 3]
    assert np.allclose(uvw[:, 2], depth)  # depth is untouched by the resize
    assert np.allclose(uvw[:, 0] / uvw[:, 2], sx * (uv[:, 0] + 0.5) - 0.5)
    assert np.allclose(uvw[:, 1] / uvw[:, 2], sy * (uv[:, 1] + 0.5) - 0.5)


def test_normalisation_and_padding_of_a_constant_image() -> None:
    spec = InputSpec(input_hw=(400, 1242), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    image = np.empty((*KITTI_IMAGE_HW, 3), np.uint8)
    image[:] = (30, 120, 210)  # B, G, R
    tensor, P2_input, scale_xy = prepare_image(image, KITTI_P2, spec)
    assert tensor.shape == (3, 400, 1242) and tensor.dtype == torch.float32
    expected_rgb = [(210 / 255 - 0.5) / 0.2, (120 / 255 - 0.4) / 0.25, (30 / 255 - 0.3) / 0.5]
    for channel, value in enumerate(expected_rgb):
        assert torch.allclose(tensor[channel, :375], torch.tensor(value), atol=1e-6)
    assert torch.count_nonzero(tensor[:, 375:]) == 0  # padding is the mean colour
    assert scale_xy == (1.0, 1.0)
    assert np.array_equal(P2_input, KITTI_P2)  # same width, pad only: P2 unchanged


def test_bottom_is_cropped_when_the_resized_image_is_taller() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*KITTI_IMAGE_HW, 3), dtype=np.uint8)
    tall, P2_tall, _ = prepare_image(image, KITTI_P2, InputSpec(input_hw=(400, 1242)))
    short, P2_short, _ = prepare_image(image, KITTI_P2, InputSpec(input_hw=(320, 1242)))
    assert short.shape == (3, 320, 1242)
    assert torch.equal(short, tall[:, :320])  # the top rows are kept, the bottom is cut
    assert np.array_equal(P2_short, P2_tall)


def test_resized_hw_keeps_aspect() -> None:
    assert resized_hw((375, 1242), InputSpec(input_hw=(384, 1248))) == (377, 1248)
    assert resized_hw((370, 1224), InputSpec(input_hw=(192, 640))) == (193, 640)


def test_prepare_image_rejects_non_bgr_input() -> None:
    with pytest.raises(ImageEncodingError, match=r"\(H, W, 3\) uint8 BGR.*shape \(10, 12\)"):
        prepare_image(np.zeros((10, 12), np.uint8), KITTI_P2, InputSpec())
    with pytest.raises(ImageEncodingError, match="dtype float32"):
        prepare_image(np.zeros((10, 12, 3), np.float32), KITTI_P2, InputSpec())


def test_input_spec_validation_and_yaml_loading() -> None:
    spec = dataclass_from_dict(InputSpec, {"input_hw": [192, 640], "class_names": ["Car"]})
    assert spec.input_hw == (192, 640) and spec.class_names == ("Car",)
    with pytest.raises(ConfigError, match="input_hw"):
        InputSpec(input_hw=(0, 640))
    with pytest.raises(ConfigError, match="std > 0"):
        InputSpec(std=(0.2, 0.0, 0.2))
    with pytest.raises(ConfigError, match="distinct names"):
        InputSpec(class_names=("Car", "Car"))
    with pytest.raises(ConfigError, match="point_range"):
        InputSpec(point_range=(2.0, -30.0, -3.0, 1.0, 30.0, 1.0))


def make_sample(frame_id: str, n_points: int, n_boxes: int, hw: tuple[int, int]) -> FrameSample:
    rng = np.random.default_rng(n_points)
    return FrameSample(
        frame_id=frame_id,
        image=torch.from_numpy(rng.normal(size=(3, *hw)).astype(np.float32)),
        P2=KITTI_P2 * 0.5,
        T_rect_from_lidar=KITTI_CALIB.T_rect_from_lidar,
        points=rng.normal(size=(n_points, 4)).astype(np.float32),
        depth_map=rng.uniform(0, 50, size=hw).astype(np.float32),
        gt_boxes_lidar=rng.normal(size=(n_boxes, 7)),
        gt_classes=np.arange(n_boxes) % 3 - (n_boxes > 2),
        has_labels=n_boxes > 0,
        original_hw=(375, 1242),
        scale_xy=(0.5, 0.5),
    )


def test_collate_shapes_and_types() -> None:
    hw = (16, 40)
    samples = [make_sample("a", 10, 3, hw), make_sample("b", 0, 0, hw),
               make_sample("c", 7, 1, hw)]
    batch = collate_frames(samples)
    assert isinstance(batch, FrameBatch) and len(batch) == 3
    assert batch.images.shape == (3, 3, 16, 40) and batch.images.dtype == torch.float32
    assert batch.P2.shape == (3, 3, 4) and batch.T_rect_from_lidar.shape == (3, 4, 4)
    assert batch.depth_maps.shape == (3, 16, 40)
    assert [p.shape for p in batch.points] == [(10, 4), (0, 4), (7, 4)]
    assert [b.shape for b in batch.gt_boxes_lidar] == [(3, 7), (0, 7), (1, 7)]
    assert all(b.dtype == torch.float32 for b in batch.gt_boxes_lidar)
    assert [c.dtype for c in batch.gt_classes] == [torch.int64] * 3
    assert batch.gt_classes[0].tolist() == [-1, 0, 1]
    assert batch.has_labels.tolist() == [True, False, True]
    assert batch.frame_ids == ["a", "b", "c"]
    assert batch.original_hw.tolist() == [[375, 1242]] * 3
    assert batch.scale_xy.shape == (3, 2)
    assert torch.equal(batch.images[1], samples[1].image)
    assert torch.allclose(batch.P2[0], torch.from_numpy(KITTI_P2 * 0.5).float())


def test_batch_to_device_moves_every_tensor() -> None:
    batch = collate_frames([make_sample("a", 5, 2, (8, 8))])
    moved = batch.to("cpu", non_blocking=False).to(torch.device("meta"))
    assert moved.images.device.type == "meta"
    assert moved.points[0].device.type == "meta" and moved.gt_classes[0].device.type == "meta"
    assert moved.frame_ids == ["a"]
    assert batch.images.device.type == "cpu"  # the original is untouched
    pinned = batch.pin_memory()
    assert torch.equal(pinned.images, batch.images)


def test_collate_refuses_mixed_sizes() -> None:
    with pytest.raises(DatasetError, match="different image shapes"):
        collate_frames([make_sample("a", 1, 0, (8, 8)), make_sample("b", 1, 0, (8, 9))])
    with pytest.raises(DatasetError, match="empty list"):
        collate_frames([])
