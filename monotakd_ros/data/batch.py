"""Network input geometry (InputSpec, prepare_image) and typed frame samples and batches.

Image preparation, shared by training and the ROS detector node so both see identical inputs:

1. resize with one ``cv2.resize`` by the width scale ``sx = W / w0`` to ``(round(h0 * sx), W)``,
   keeping the aspect ratio (``sy = round(h0 * sx) / h0``, equal to ``sx`` up to rounding);
2. the top rows stay where they are: the bottom is padded with the mean colour (0 after
   normalisation) or cropped, to reach ``H`` rows (``placed_image`` pastes at any integer
   offset instead; the detector's virtual camera, ``inference.virtual_camera``, uses it);
3. BGR -> RGB, scale to [0, 1], subtract ``mean`` and divide by ``std`` (per RGB channel).

Pixel coordinates follow OpenCV: pixel centres at integers. ``cv2.resize`` maps a source
coordinate ``u`` to ``sx * (u + 0.5) - 0.5``, so the scaled projection is ``A @ P2`` with
``A = [[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]]``; a LiDAR point projected with
it lands exactly where the resize put the pixel it hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np
import torch

from monotakd_ros.errors import DatasetError, ImageEncodingError
from monotakd_ros.model_io.input_spec import InputSpec


def resized_hw(original_hw: tuple[int, int], spec: InputSpec) -> tuple[int, int]:
    """(rows, cols) of the image after the aspect-keeping resize, before bottom pad/crop."""
    h0, w0 = original_hw
    width = spec.input_hw[1]
    return max(1, round(h0 * width / w0)), width


def scaled_projection(P2: np.ndarray, original_hw: tuple[int, int],
                      new_hw: tuple[int, int]) -> np.ndarray:
    """P2 of an image resized by ``cv2.resize`` from ``original_hw`` to ``new_hw``."""
    sx = new_hw[1] / original_hw[1]
    sy = new_hw[0] / original_hw[0]
    A = np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)], [0.0, 0.0, 1.0]])
    return A @ np.asarray(P2, dtype=np.float64)


def placed_projection(P2: np.ndarray, original_hw: tuple[int, int], new_hw: tuple[int, int],
                      offset_yx: tuple[int, int]) -> np.ndarray:
    """P2 of an image resized to ``new_hw`` and pasted with its top-left pixel at ``offset_yx``."""
    P = scaled_projection(P2, original_hw, new_hw)
    shift = np.array([[1.0, 0.0, offset_yx[1]], [0.0, 1.0, offset_yx[0]], [0.0, 0.0, 1.0]])
    return shift @ P


def prepare_image(image_bgr: np.ndarray, P2: np.ndarray,
                  spec: InputSpec) -> tuple[torch.Tensor, np.ndarray, tuple[float, float]]:
    """Fit-to-width resize, top-aligned pad/crop and normalise; returns (image, P2, scale_xy)."""
    check_bgr_image(image_bgr)
    original_hw = (int(image_bgr.shape[0]), int(image_bgr.shape[1]))
    new_hw = resized_hw(original_hw, spec)
    image = placed_image(image_bgr, new_hw, (0, 0), spec)
    scale_xy = (new_hw[1] / original_hw[1], new_hw[0] / original_hw[0])
    return image, placed_projection(P2, original_hw, new_hw, (0, 0)), scale_xy


def resized_image(image_bgr: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """``image_bgr`` at ``new_hw``: INTER_AREA shrinks (no aliasing), INTER_LINEAR enlarges."""
    original_hw = (int(image_bgr.shape[0]), int(image_bgr.shape[1]))
    if new_hw == original_hw:
        return image_bgr
    shrinking = new_hw[1] < original_hw[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image_bgr, (new_hw[1], new_hw[0]), interpolation=interpolation)


def check_bgr_image(image_bgr: np.ndarray) -> None:
    """ImageEncodingError unless ``image_bgr`` is an (H, W, 3) uint8 array."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ImageEncodingError(f"prepare_image needs an (H, W, 3) uint8 BGR image, got "
                                 f"shape {image_bgr.shape} dtype {image_bgr.dtype}")


def placed_image(image_bgr: np.ndarray, new_hw: tuple[int, int], offset_yx: tuple[int, int],
                 spec: InputSpec) -> torch.Tensor:
    """(3, H, W) network input: the image resized to ``new_hw`` and pasted at ``offset_yx``.

    Negative offsets crop; uncovered input is the mean colour (0 after normalising).
    """
    check_bgr_image(image_bgr)
    height, width = spec.input_hw
    top, left = offset_yx
    # Source rows/columns of the resized image that land on the canvas.
    row0, row1 = max(0, -top), min(new_hw[0], height - top)
    col0, col1 = max(0, -left), min(new_hw[1], width - left)
    normalised = np.zeros((3, height, width), dtype=np.float32)  # (3, H, W), pad = mean colour
    if row1 <= row0 or col1 <= col0:
        return torch.from_numpy(normalised)
    resized = resized_image(image_bgr, new_hw)
    visible = resized[row0:row1, col0:col1]
    for rgb_channel in range(3):
        gain = 1.0 / (255.0 * spec.std[rgb_channel])
        target = normalised[rgb_channel, top + row0:top + row1, left + col0:left + col1]
        np.multiply(visible[:, :, 2 - rgb_channel], np.float32(gain), out=target,
                    casting="unsafe")
        target -= np.float32(spec.mean[rgb_channel] / spec.std[rgb_channel])
    return torch.from_numpy(normalised)


@dataclass
class FrameSample:
    """One frame ready for the network (numpy arrays or tensors); see FrameBatch for meanings."""

    frame_id: str
    image: torch.Tensor | np.ndarray  # (3, H, W) float32, normalised
    P2: np.ndarray  # (3, 4) projection at the network input resolution
    T_rect_from_lidar: np.ndarray  # (4, 4)
    points: np.ndarray  # (N, 4) x, y, z, intensity in the LiDAR frame, inside point_range
    depth_map: np.ndarray  # (H, W) LiDAR depth in metres at input resolution, 0 = none
    gt_boxes_lidar: np.ndarray  # (M, 7) [x, y, z, l, w, h, yaw], geometric centre
    gt_classes: np.ndarray  # (M,) int64 class index, -1 = ignore
    has_labels: bool
    original_hw: tuple[int, int]
    scale_xy: tuple[float, float]  # input / original


@dataclass
class FrameBatch:
    """A batch of frames as tensors; per-frame variable-size data stays in lists."""

    images: torch.Tensor  # (B, 3, H, W) float32, normalised
    P2: torch.Tensor  # (B, 3, 4) at the network input resolution
    T_rect_from_lidar: torch.Tensor  # (B, 4, 4)
    points: list[torch.Tensor]  # B x (Ni, 4) x, y, z, intensity (LiDAR frame)
    depth_maps: torch.Tensor  # (B, H, W) LiDAR depth in metres, 0 = none
    gt_boxes_lidar: list[torch.Tensor]  # B x (Mi, 7) [x, y, z, l, w, h, yaw]
    gt_classes: list[torch.Tensor]  # B x (Mi,) int64, -1 = ignore region
    has_labels: torch.Tensor  # (B,) bool
    frame_ids: list[str]
    original_hw: torch.Tensor  # (B, 2) int64 (rows, cols) of the source image
    scale_xy: torch.Tensor  # (B, 2) float32, input / original

    def __len__(self) -> int:
        return len(self.frame_ids)

    def to(self, device: torch.device | str, non_blocking: bool = True) -> FrameBatch:
        """Copy of the batch with every tensor on ``device``."""
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> FrameBatch:
        """Copy in page-locked memory (called by DataLoader(pin_memory=True))."""
        if not torch.cuda.is_available():
            return self
        return self._map_tensors(lambda t: t.pin_memory())

    def _map_tensors(self, move: Callable[[torch.Tensor], torch.Tensor]) -> FrameBatch:
        changes = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, torch.Tensor):
                changes[item.name] = move(value)
            elif value and isinstance(value[0], torch.Tensor):
                changes[item.name] = [move(t) for t in value]
        return replace(self, **changes)


def collate_frames(samples: list[FrameSample]) -> FrameBatch:
    """Stack samples of the same input size into a FrameBatch (DataLoader ``collate_fn``)."""
    if not samples:
        raise DatasetError("collate_frames: empty list of samples")
    shapes = {tuple(s.image.shape) for s in samples}
    if len(shapes) != 1:
        raise DatasetError(f"collate_frames: samples have different image shapes {shapes}")

    def stacked(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.stack([torch.as_tensor(getattr(s, name), dtype=dtype) for s in samples])

    def listed(name: str, dtype: torch.dtype) -> list[torch.Tensor]:
        return [torch.as_tensor(getattr(s, name), dtype=dtype) for s in samples]

    return FrameBatch(
        images=stacked("image", torch.float32),
        P2=stacked("P2", torch.float32),
        T_rect_from_lidar=stacked("T_rect_from_lidar", torch.float32),
        points=listed("points", torch.float32),
        depth_maps=stacked("depth_map", torch.float32),
        gt_boxes_lidar=listed("gt_boxes_lidar", torch.float32),
        gt_classes=listed("gt_classes", torch.int64),
        has_labels=torch.tensor([s.has_labels for s in samples], dtype=torch.bool),
        frame_ids=[s.frame_id for s in samples],
        original_hw=torch.tensor([s.original_hw for s in samples], dtype=torch.int64),
        scale_xy=torch.tensor([s.scale_xy for s in samples], dtype=torch.float32),
    )
