"""SECOND-style BEV backbone: strided conv blocks, each upsampled back and concatenated."""

from __future__ import annotations

import torch
from torch import nn

from monotakd_ros.models.config import BevBackboneConfig
from monotakd_ros.models.layers import ConvBnRelu


def _upsample(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Bring a block's output back to the input resolution (1x1 conv when stride is 1)."""
    if stride == 1:
        return ConvBnRelu(in_channels, out_channels, 1)
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, stride, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BevBackbone(nn.Module):
    """Multi-scale BEV features at the input resolution; ``out_channels`` = sum of upsamples."""

    def __init__(self, in_channels: int, cfg: BevBackboneConfig) -> None:
        super().__init__()
        blocks, ups = [], []
        channels = in_channels
        for count, stride, filters, up_stride, up_filters in zip(
                cfg.layer_nums, cfg.layer_strides, cfg.num_filters, cfg.upsample_strides,
                cfg.upsample_filters, strict=True):
            layers = [ConvBnRelu(channels, filters, 3, stride=stride)]
            layers += [ConvBnRelu(filters, filters, 3) for _ in range(count)]
            blocks.append(nn.Sequential(*layers))
            ups.append(_upsample(filters, up_filters, up_stride))
            channels = filters
        self.blocks = nn.ModuleList(blocks)
        self.ups = nn.ModuleList(ups)
        self.out_channels = sum(cfg.upsample_filters)

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        """(B, C_in, ny, nx) → (B, out_channels, ny, nx)."""
        height, width = bev.shape[-2:]
        outputs = []
        x = bev
        for block, up in zip(self.blocks, self.ups, strict=True):
            x = block(x)
            # Odd grid sizes round up under stride 2; crop the upsampled map back to the grid.
            outputs.append(up(x)[..., :height, :width])
        return torch.cat(outputs, dim=1)
