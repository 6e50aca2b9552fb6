"""Spatial-cue branch (F_S_spa) and the fusion module of the camera detector.

Two spatial-cue blocks, chosen by ``spatial_cue.alignment``:
- ``aspp_se`` (first release): SE(ASPP(x)), channel-gated multi-rate context;
- ``sam`` (upstream's spatial alignment module): ``y = x · SE(ASPP(x)) + DCN(DCN(x))``, then
  ``out_convs`` 3x3 convs; the deformable convs let each cell gather from shifted positions.
Fusion (``fusion_style``): ``stack`` = ``fusion_convs`` 3x3 convs; ``ffm`` = upstream's FFM,
conv3x3 → conv1x1 → conv3x3 on the sum of the visual and spatial maps.
"""

from __future__ import annotations

import torch
from torch import nn

from monotakd_ros.models.config import ModelConfig, SpatialCueConfig
from monotakd_ros.models.deform_conv import DeformConv2d
from monotakd_ros.models.layers import ASPP, ConvBnRelu, SqueezeExcite


class SpatialCueAttention(nn.Module):
    """ASPP for multi-range BEV context, then squeeze-excitation channel gating (F_S_spa ≥ 0)."""

    def __init__(self, channels: int, cfg: SpatialCueConfig) -> None:
        super().__init__()
        self.aspp = ASPP(channels, channels, cfg.aspp_rates)
        self.se = SqueezeExcite(channels, cfg.se_reduction)

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        """(B, C, ny, nx) → (B, C, ny, nx)."""
        return self.se(self.aspp(bev))


class SpatialAlignmentModule(nn.Module):
    """Upstream SAM: x gated by SE(ASPP(x)), plus two stacked deformable 3x3 convs, then convs."""

    def __init__(self, channels: int, cfg: SpatialCueConfig) -> None:
        super().__init__()
        self.aspp = ASPP(channels, channels, cfg.aspp_rates)
        self.se = SqueezeExcite(channels, cfg.se_reduction)
        deformable: list[nn.Module] = []
        for _ in range(cfg.deformable_convs):
            deformable += [DeformConv2d(channels, channels), nn.BatchNorm2d(channels),
                           nn.ReLU(inplace=True)]
        self.deformable = nn.Sequential(*deformable)
        self.out = nn.Sequential(*[ConvBnRelu(channels, channels, 3)
                                   for _ in range(cfg.out_convs)])

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        """(B, C, ny, nx) → (B, C, ny, nx)."""
        gated = bev * self.se.gate(self.aspp(bev))
        return self.out(gated + self.deformable(bev))


def build_spatial_cue(channels: int, cfg: SpatialCueConfig) -> nn.Module:
    """The spatial-cue block named by ``cfg.alignment``."""
    if cfg.alignment == "sam":
        return SpatialAlignmentModule(channels, cfg)
    return SpatialCueAttention(channels, cfg)


def build_fusion(cfg: ModelConfig) -> nn.Module:
    """Convs after the sum of F_S and F_S_spa (``fusion_style``)."""
    bev = cfg.bev_channels
    if cfg.fusion_style == "ffm":
        return nn.Sequential(ConvBnRelu(bev, bev, 3), ConvBnRelu(bev, bev, 1),
                             ConvBnRelu(bev, bev, 3))
    return nn.Sequential(*[ConvBnRelu(bev, bev, 3) for _ in range(cfg.fusion_convs)])
