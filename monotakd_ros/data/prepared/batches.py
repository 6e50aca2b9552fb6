"""Batches gathered by index from a prepared split, augmented on the batch's device.

``PreparedFrames`` holds a prepared split either resident on one device (torch tensors; the
GPU-resident mode, or RAM on the CPU) or as memory maps read per batch. Augmentation follows
``data.augment`` but acts on the input-resolution arrays: a horizontal flip mirrors the image,
the sparse depth pixels, P2 (``F P2 M`` with the input width), ``T_rect_from_lidar``
(``M T N``), the points and the boxes; colour jitter blends the valid rows towards their mean grey
and scales them. Per-frame draws come from a seeded generator, so a batch is a pure function of
(rows, seeds) on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from monotakd_ros.data.augment import AugmentConfig, flip_boxes_lidar
from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.data.predictions import boxes_inside_range
from monotakd_ros.data.prepared.store import OpenedStore, format_bytes
from monotakd_ros.errors import DatasetError
from monotakd_ros.model_io.input_spec import InputSpec

_GREY_RGB = (0.299, 0.587, 0.114)  # luma weights of cv2.COLOR_BGR2GRAY
_RESIDENT = ("images", "valid_rows", "P2", "T_rect_from_lidar", "original_hw", "scale_xy",
             "has_labels", "points", "depth_pixel", "depth_m")


@dataclass
class PreparedBatch(FrameBatch):
    """A FrameBatch that knows its rows in the prepared split and which frames are mirrored."""

    rows: torch.Tensor  # (B,) int64 frame index in the prepared split
    flipped: torch.Tensor  # (B,) bool


@dataclass(frozen=True)
class FrameAugmentation:
    """Per-frame draws of one batch: mirror flag and brightness / contrast factors."""

    flipped: np.ndarray  # (B,) bool
    brightness: np.ndarray  # (B,) float
    contrast: np.ndarray  # (B,) float

    @staticmethod
    def none(count: int) -> FrameAugmentation:
        """No flip, no jitter."""
        return FrameAugmentation(np.zeros(count, bool), np.ones(count), np.ones(count))

    @staticmethod
    def fixed_flip(count: int, flipped: bool) -> FrameAugmentation:
        """Every frame mirrored (or not), no jitter: the frozen-target cache's two states."""
        return FrameAugmentation(np.full(count, flipped), np.ones(count), np.ones(count))


def draw_augmentation(config: AugmentConfig | None, seeds: Sequence[int]) -> FrameAugmentation:
    """Draws of ``augment_frame`` (same order: flip, brightness, contrast) per frame seed."""
    if config is None:
        return FrameAugmentation.none(len(seeds))
    flips, brightness, contrast = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        flips.append(rng.random() < config.hflip_probability)
        brightness.append(rng.uniform(1 - config.brightness_jitter, 1 + config.brightness_jitter))
        contrast.append(rng.uniform(1 - config.contrast_jitter, 1 + config.contrast_jitter))
    return FrameAugmentation(np.array(flips), np.array(brightness), np.array(contrast))


def resident_bytes(store: OpenedStore) -> int:
    """Device bytes the resident mode needs for ``store``."""
    return sum(int(store.arrays[name].nbytes) for name in _RESIDENT)


class PreparedFrames:
    """A prepared split as batches on ``device``; ``resident`` keeps every array there."""

    def __init__(self, store: OpenedStore, spec: InputSpec, device: torch.device,
                 resident: bool) -> None:
        self.store, self.spec, self.device, self.resident = store, spec, device, resident
        self.frame_ids: list[str] = list(store.metadata["frame_ids"])
        arrays = store.arrays
        self.offsets = {name: np.asarray(arrays[name]) for name in
                        ("point_offsets", "depth_offsets", "box_offsets")}
        self.boxes = np.asarray(arrays["boxes_lidar"])  # few: always on the host
        self.classes = np.asarray(arrays["classes"])
        self.tensors: dict[str, torch.Tensor] = {}
        if resident:
            self.tensors = {name: _to_device(arrays[name], device, name) for name in _RESIDENT}
        height, width = spec.input_hw
        self._gain = torch.tensor([1.0 / (255.0 * s) for s in spec.std],
                                  device=device).view(1, 3, 1, 1)
        self._shift = torch.tensor([m / s for m, s in zip(spec.mean, spec.std, strict=True)],
                                   device=device).view(1, 3, 1, 1)
        self._grey = torch.tensor(_GREY_RGB, device=device).view(1, 3, 1, 1)
        self._row_index = torch.arange(height, device=device).view(1, 1, height, 1)
        self._width = width

    def __len__(self) -> int:
        """Frames in the split."""
        return len(self.frame_ids)

    def _rows_of(self, name: str, rows: np.ndarray) -> torch.Tensor:
        if self.resident:
            return self.tensors[name][torch.as_tensor(rows, device=self.device)]
        return torch.from_numpy(np.ascontiguousarray(self.store.arrays[name][rows])).to(
            self.device, non_blocking=True)

    def _ragged(self, name: str, offsets: str, rows: np.ndarray) -> list[torch.Tensor]:
        bounds = self.offsets[offsets]
        if self.resident:
            return [self.tensors[name][bounds[r]:bounds[r + 1]] for r in rows]
        return [torch.from_numpy(np.array(self.store.arrays[name][bounds[r]:bounds[r + 1]])).to(
            self.device, non_blocking=True) for r in rows]

    def batch(self, rows: Sequence[int], augmentation: FrameAugmentation) -> PreparedBatch:
        """Frames ``rows`` as a batch on the device, with the given per-frame augmentation."""
        rows_np = np.asarray(rows, dtype=np.int64)
        flipped = torch.as_tensor(augmentation.flipped, dtype=torch.bool, device=self.device)
        valid_rows = self._rows_of("valid_rows", rows_np).long()
        images = self._images(self._rows_of("images", rows_np), valid_rows, flipped,
                              augmentation)
        P2 = self._rows_of("P2", rows_np).float()
        T = self._rows_of("T_rect_from_lidar", rows_np).float()
        P2, T = _flip_calibration(P2, T, flipped, self._width)
        points = [self._points(p, bool(f)) for p, f in
                  zip(self._ragged("points", "point_offsets", rows_np), augmentation.flipped,
                      strict=True)]
        boxes, classes = self._boxes(rows_np, augmentation.flipped)
        return PreparedBatch(
            images=images, P2=P2, T_rect_from_lidar=T, points=points,
            depth_maps=self._depth_maps(rows_np, flipped), gt_boxes_lidar=boxes,
            gt_classes=classes, has_labels=self._rows_of("has_labels", rows_np).bool(),
            frame_ids=[self.frame_ids[r] for r in rows_np],
            original_hw=self._rows_of("original_hw", rows_np).long(),
            scale_xy=self._rows_of("scale_xy", rows_np).float(),
            rows=torch.as_tensor(rows_np, device=self.device), flipped=flipped)

    def _images(self, images_u8: torch.Tensor, valid_rows: torch.Tensor, flipped: torch.Tensor,
                augmentation: FrameAugmentation) -> torch.Tensor:
        """(B, 3, H, W) uint8 -> jittered, mirrored, normalised float32 with a zero pad."""
        if bool(flipped.any()):
            images_u8 = images_u8.clone()
            images_u8[flipped] = images_u8[flipped].flip(-1)  # exact on uint8
        pixels = images_u8.float()
        valid = self._row_index < valid_rows.view(-1, 1, 1, 1)  # (B, 1, H, 1)
        if np.any(augmentation.brightness != 1.0) or np.any(augmentation.contrast != 1.0):
            gain = torch.as_tensor(augmentation.brightness * augmentation.contrast,
                                   dtype=torch.float32, device=self.device)
            grey = (pixels * self._grey).sum(1, keepdim=True)  # (B, 1, H, W)
            count = valid_rows.float() * self._width
            mean_grey = (grey * valid).sum(dim=(1, 2, 3)) / count.clamp_min(1.0)
            offset = torch.as_tensor(augmentation.brightness * (1.0 - augmentation.contrast),
                                     dtype=torch.float32, device=self.device) * mean_grey
            pixels = pixels.mul_(gain.view(-1, 1, 1, 1)).add_(offset.view(-1, 1, 1, 1))
            pixels = pixels.round_().clamp_(0.0, 255.0)
        normalised = pixels.mul_(self._gain).sub_(self._shift)
        if bool((valid_rows < pixels.shape[2]).any()):
            normalised = normalised.mul_(valid)
        return normalised

    def _points(self, points: torch.Tensor, flipped: bool) -> torch.Tensor:
        """Points of one frame, mirrored if flipped, inside the point range."""
        if flipped:
            points = points * points.new_tensor([1.0, -1.0, 1.0, 1.0])
        low = points.new_tensor(self.spec.point_range[:3])
        high = points.new_tensor(self.spec.point_range[3:])
        inside = ((points[:, :3] >= low) & (points[:, :3] < high)).all(dim=1)
        return points[inside]

    def _depth_maps(self, rows: np.ndarray, flipped: torch.Tensor) -> torch.Tensor:
        """(B, H, W) depth in metres from the sparse pixels, mirrored per frame."""
        height, width = self.spec.input_hw
        pixels = self._ragged("depth_pixel", "depth_offsets", rows)
        depths = self._ragged("depth_m", "depth_offsets", rows)
        depth = torch.zeros(len(rows) * height * width, device=self.device)
        for b, (pixel, value) in enumerate(zip(pixels, depths, strict=True)):
            pixel = pixel.long()
            if bool(flipped[b]):
                pixel = pixel - pixel % width + (width - 1 - pixel % width)
            depth[b * height * width + pixel] = value
        return depth.view(len(rows), height, width)

    def _boxes(self, rows: np.ndarray, flipped: np.ndarray
               ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        bounds = self.offsets["box_offsets"]
        boxes, classes = [], []
        for row, flip in zip(rows, flipped, strict=True):
            frame_boxes = self.boxes[bounds[row]:bounds[row + 1]]
            frame_classes = self.classes[bounds[row]:bounds[row + 1]]
            if flip:
                frame_boxes = flip_boxes_lidar(frame_boxes)
            inside = boxes_inside_range(frame_boxes, self.spec.point_range)
            boxes.append(torch.from_numpy(np.array(frame_boxes[inside], np.float32)).to(
                self.device))
            classes.append(torch.from_numpy(np.array(frame_classes[inside], np.int64)).to(
                self.device))
        return boxes, classes


def _flip_calibration(P2: torch.Tensor, T: torch.Tensor, flipped: torch.Tensor,
                      width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``F P2 M`` and ``M T N`` (data.augment) for the mirrored frames of the batch."""
    F = P2.new_tensor([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    M4 = P2.new_tensor([-1.0, 1.0, 1.0, 1.0])
    N4 = P2.new_tensor([1.0, -1.0, 1.0, 1.0])
    P2_flipped = (F @ P2) * M4  # right-multiplying by a diagonal scales the columns
    T_flipped = M4.view(4, 1) * T * N4
    mirror = flipped.view(-1, 1, 1)
    return torch.where(mirror, P2_flipped, P2), torch.where(mirror, T_flipped, T)


def _to_device(array: np.ndarray, device: torch.device, name: str) -> torch.Tensor:
    """A copy of a memory-mapped array on ``device`` (DatasetError naming the size if full)."""
    try:
        return torch.from_numpy(np.array(array)).to(device)
    except (RuntimeError, MemoryError) as err:  # torch.OutOfMemoryError is a RuntimeError
        raise DatasetError(f"array {name!r} of the prepared split ({format_bytes(array.nbytes)})"
                           f" does not fit on {device}: {err}") from err
