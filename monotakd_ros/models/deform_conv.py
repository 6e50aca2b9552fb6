"""Deformable 3x3 convolution (DCNv1) in plain PyTorch: learnt offsets + bilinear sampling.

No torchvision here. For every kernel tap k at output pixel p the input is sampled at
``p + p_k + Δp_k`` by ``grid_sample`` (bilinear, zeros outside the map), the K samples are
stacked as channels and contracted with the (out, in, K) weight. With all offsets zero this is
exactly an ordinary 3x3 convolution with zero padding 1.
Offset layout, (B, 2K, H, W): channel ``2k`` is Δy and ``2k + 1`` is Δx of tap k, taps in
row-major order over the kernel (as torchvision's ``deform_conv2d``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from monotakd_ros.models.sampling import grid_sample_threads


def kernel_taps(kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """(K, 2) (dy, dx) of the kernel taps around the centre, row-major."""
    half = (kernel_size - 1) // 2
    steps = (torch.arange(kernel_size, dtype=torch.float32) - half) * dilation
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dy.flatten(), dx.flatten()], dim=1)


def deform_conv2d(x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, dilation: int = 1) -> torch.Tensor:
    """Stride-1, same-size deformable convolution of (B, C, H, W) with a (O, C, k, k) weight."""
    batch, channels, height, width = x.shape
    out_channels, _, k, _ = weight.shape
    taps = kernel_taps(k, dilation).to(x.device, x.dtype)  # (K, 2)
    num_taps = taps.shape[0]
    if offsets.shape != (batch, 2 * num_taps, height, width):
        raise ValueError(f"offsets must be (B, 2K, H, W) = {(batch, 2 * num_taps, height, width)}"
                         f", got {tuple(offsets.shape)}")
    ys = torch.arange(height, device=x.device, dtype=x.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, device=x.device, dtype=x.dtype).view(1, 1, 1, width)
    delta = offsets.view(batch, num_taps, 2, height, width)
    sample_y = ys + taps[:, 0].view(1, -1, 1, 1) + delta[:, :, 0]  # (B, K, H, W) pixels
    sample_x = xs + taps[:, 1].view(1, -1, 1, 1) + delta[:, :, 1]
    # align_corners=True: -1 and +1 are the centres of the first and last pixels.
    grid = torch.stack([sample_x * 2.0 / max(width - 1, 1) - 1.0,
                        sample_y * 2.0 / max(height - 1, 1) - 1.0], dim=-1)
    grid = grid.view(batch, num_taps * height, width, 2)
    sampled = grid_sample_threads(x, grid, split_dim=1, align_corners=True)  # (B, C, K·H, W)
    # (B, C·K, H·W) without a copy: one matrix product with the (O, C·K) weight.
    columns = sampled.reshape(batch, channels * num_taps, height * width)
    out = torch.matmul(weight.reshape(out_channels, channels * num_taps), columns)
    out = out.view(batch, out_channels, height, width)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """3x3 deformable conv whose offsets come from a zero-initialised 3x3 conv on the input."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 bias: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        taps = kernel_size * kernel_size
        self.offset = nn.Conv2d(in_channels, 2 * taps, kernel_size, padding=kernel_size // 2)
        # Start as an ordinary convolution; the offsets are learnt from there.
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) → (B, C_out, H, W)."""
        return deform_conv2d(x, self.offset(x), self.weight, self.bias)
