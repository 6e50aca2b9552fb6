"""The network input prepared on the device: what ``data.batch.placed_image`` does, in torch.

The uint8 image is uploaded once (from a reused pinned buffer when the device is CUDA), then
resized, rounded back to uint8 levels, pasted at its offset and normalised there. The resize
reproduces OpenCV's two modes as separable taps (gathers, not dense matrices):

- ``INTER_AREA`` (shrinking): output pixel ``j`` averages source ``[j·s, (j + 1)·s)`` with
  ``s = source / target``, each source pixel weighted by its overlap, as OpenCV's area tables;
- ``INTER_LINEAR`` (enlarging): source ``(j + 0.5)·s − 0.5``, two taps, indices clamped at the
  borders as OpenCV does.

OpenCV's uint8 bilinear path uses 11-bit fixed-point weights, so a pixel may differ by one grey
level after rounding (1/(255·std) ≈ 0.017 after normalisation); area averages match to float
rounding. The tests bound both against ``placed_image``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from monotakd_ros.data.batch import InputSpec
from monotakd_ros.errors import ImageEncodingError


@lru_cache(maxsize=16)
def resampling_taps(source: int, target: int, area: bool) -> tuple[np.ndarray, np.ndarray]:
    """(index, weight), both (target, K): output j = Σ_k weight[j, k] · input[index[j, k]]."""
    scale = source / target
    if area and scale >= 1.0:
        taps = math.ceil(scale) + 1
        index = np.zeros((target, taps), np.int64)
        weight = np.zeros((target, taps), np.float64)
        for j in range(target):
            start, end = j * scale, (j + 1) * scale
            first = math.floor(start)
            for k in range(taps):
                i = min(first + k, source - 1)
                overlap = min(end, first + k + 1) - max(start, first + k)
                index[j, k] = i
                weight[j, k] = max(overlap, 0.0) / scale if first + k < source else 0.0
        return index, weight
    if area:
        raise ValueError(f"area resampling of {source} -> {target} enlarges; use bilinear")
    centre = (np.arange(target) + 0.5) * scale - 0.5
    left = np.floor(centre).astype(np.int64)
    frac = centre - left
    frac[left < 0] = 0.0
    left = np.clip(left, 0, source - 1)
    frac[left >= source - 1] = 0.0
    index = np.stack([left, np.minimum(left + 1, source - 1)], axis=1)
    weight = np.stack([1.0 - frac, frac], axis=1)
    return index, weight


@lru_cache(maxsize=16)
def _device_taps(source: int, target: int, area: bool,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``resampling_taps`` on ``device``, uploaded once per size (no per-frame copies)."""
    index, weight = resampling_taps(source, target, area)
    return (torch.as_tensor(index, device=device),
            torch.as_tensor(weight, dtype=torch.float32, device=device))


@lru_cache(maxsize=8)
def _normalisation(mean: tuple[float, ...], std: tuple[float, ...],
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(gain, bias), each (3, 1, 1) float32 on ``device``: x * gain - bias, as the CPU step."""
    gain = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32)
    bias = torch.tensor([m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32)
    return gain.to(device)[:, None, None], bias.to(device)[:, None, None]


def _resampled(values: torch.Tensor, source: int, target: int, area: bool,
               dim: int) -> torch.Tensor:
    """Taps applied along ``dim`` of a float32 tensor."""
    index_t, weight_t = _device_taps(source, target, area, values.device)
    shape = [1] * values.dim()
    shape[dim] = weight_t.shape[0]
    total = None
    for k in range(index_t.shape[1]):
        term = values.index_select(dim, index_t[:, k]) * weight_t[:, k].reshape(shape)
        total = term if total is None else total + term
    assert total is not None  # every table has at least one tap
    return total


def resized_uint8_levels(image_bgr: torch.Tensor, new_hw: tuple[int, int]) -> torch.Tensor:
    """(h, w, 3) float32 of whole grey levels: the image resized as ``cv2.resize`` would."""
    original_hw = (int(image_bgr.shape[0]), int(image_bgr.shape[1]))
    values = image_bgr.float()
    if tuple(new_hw) == original_hw:
        return values
    shrinking = new_hw[1] < original_hw[1]  # the CPU step's choice of interpolation
    for dim, (source, target) in ((1, (original_hw[1], new_hw[1])),
                                  (0, (original_hw[0], new_hw[0]))):
        if source != target:
            area = shrinking and target < source
            values = _resampled(values, source, target, area, dim=dim)
    return values.round_().clamp_(0.0, 255.0)


def placed_image_tensor(image_bgr: torch.Tensor, new_hw: tuple[int, int],
                        offset_yx: tuple[int, int], spec: InputSpec) -> torch.Tensor:
    """(3, H, W) float32 network input on ``image_bgr``'s device, as ``placed_image`` makes it."""
    if image_bgr.dim() != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != torch.uint8:
        raise ImageEncodingError(f"placed_image_tensor needs an (H, W, 3) uint8 BGR tensor, got "
                                 f"shape {tuple(image_bgr.shape)} dtype {image_bgr.dtype}")
    height, width = spec.input_hw
    top, left = offset_yx
    row0, row1 = max(0, -top), min(new_hw[0], height - top)
    col0, col1 = max(0, -left), min(new_hw[1], width - left)
    canvas = torch.zeros(3, height, width, device=image_bgr.device)  # pad = mean colour
    if row1 <= row0 or col1 <= col0:
        return canvas
    resized = resized_uint8_levels(image_bgr, new_hw)[row0:row1, col0:col1]  # (h, w, 3)
    rgb = resized.flip(2).permute(2, 0, 1)  # (3, h, w)
    gain, bias = _normalisation(tuple(spec.mean), tuple(spec.std), rgb.device)
    target = canvas[:, top + row0:top + row1, left + col0:left + col1]
    target.copy_(rgb * gain - bias)
    return canvas


class DeviceImagePreparer:
    """Uploads uint8 images through one reused pinned buffer and prepares them on the device."""

    def __init__(self, spec: InputSpec, device: torch.device) -> None:
        self.spec = spec
        self.device = device
        self._pinned: torch.Tensor | None = None
        self._uploaded: torch.cuda.Event | None = None

    def upload(self, image_bgr: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 tensor on the device (one host copy into pinned memory, one upload)."""
        host = torch.from_numpy(np.ascontiguousarray(image_bgr))
        if self.device.type != "cuda":
            return host.to(self.device)
        if self._pinned is None or self._pinned.shape != host.shape:
            self._pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
            self._uploaded = None
        if self._uploaded is not None:
            self._uploaded.synchronize()  # the previous upload still reads the buffer
        self._pinned.copy_(host)
        on_device = self._pinned.to(self.device, non_blocking=True)
        self._uploaded = torch.cuda.Event()
        self._uploaded.record()
        return on_device

    def prepare(self, image_bgr: np.ndarray, new_hw: tuple[int, int],
                offset_yx: tuple[int, int]) -> torch.Tensor:
        """(1, 3, H, W) normalised network input on the device."""
        placed = placed_image_tensor(self.upload(image_bgr), new_hw, offset_yx, self.spec)
        return placed[None]
