"""SCNet refinement of the visual BEV map: self-calibrated bottleneck blocks (Liu et al., 2020).

A block reduces the channels to ``width`` (split in two halves), runs a plain 3x3 conv on one
half and a self-calibrated conv on the other, concatenates, expands back and adds the input.
The self-calibrated conv gates a 3x3 conv of its input with
``sigmoid(x + up(conv(avgpool_r(x))))``: a coarse, r-times pooled view calibrates each cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monotakd_ros.models.config import ScnetConfig
from monotakd_ros.models.layers import ConvBnRelu


class SelfCalibratedConv(nn.Module):
    """3x3 conv gated by a context map computed at 1/``pooling`` resolution."""

    def __init__(self, channels: int, pooling: int) -> None:
        super().__init__()
        self.pooling = pooling
        self.context = ConvBnRelu(channels, channels, 3, relu=False)
        self.value = ConvBnRelu(channels, channels, 3, relu=False)
        self.out = ConvBnRelu(channels, channels, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        coarse = F.avg_pool2d(x, self.pooling, ceil_mode=True)
        context = F.interpolate(self.context(coarse), size=x.shape[-2:], mode="nearest")
        return self.out(self.value(x) * torch.sigmoid(x + context))


class ScBottleneck(nn.Module):
    """Residual block: 1x1 reduce → (3x3 | self-calibrated 3x3) halves → 1x1 expand, + input."""

    def __init__(self, channels: int, width: int, pooling: int) -> None:
        super().__init__()
        half = width // 2
        self.reduce_a = ConvBnRelu(channels, half, 1)
        self.reduce_b = ConvBnRelu(channels, half, 1)
        self.plain = ConvBnRelu(half, half, 3)
        self.calibrated = SelfCalibratedConv(half, pooling)
        self.expand = ConvBnRelu(2 * half, channels, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x`` (B, C, H, W)."""
        a = self.plain(self.reduce_a(x))
        b = F.relu(self.calibrated(self.reduce_b(x)))
        return F.relu(x + self.expand(torch.cat([a, b], dim=1)))


def build_scnet(channels: int, cfg: ScnetConfig) -> nn.Module:
    """``cfg.blocks`` self-calibrated bottlenecks (identity when 0)."""
    if cfg.blocks == 0:
        return nn.Identity()
    width = cfg.bottleneck_width(channels)
    return nn.Sequential(*[ScBottleneck(channels, width, cfg.pooling) for _ in range(cfg.blocks)])
