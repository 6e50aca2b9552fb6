"""Anchor head: per-anchor class logits, 7 box residuals and 2 direction logits (1x1 convs)."""

from __future__ import annotations

import math

import torch
from torch import nn

from monotakd_ros.models.anchors import anchor_grid
from monotakd_ros.models.config import BevGridConfig, HeadConfig
from monotakd_ros.models.outputs import HeadOutput

BOX_CODE_SIZE = 7
# Focal-loss prior: every anchor starts at p(object) = 0.01 so early training is stable.
_PRIOR_PROBABILITY = 0.01


class AnchorHead(nn.Module):
    """Dense anchor predictions on the BEV grid; owns the matching anchors as a buffer."""

    def __init__(self, in_channels: int, grid: BevGridConfig, cfg: HeadConfig) -> None:
        super().__init__()
        self.num_classes = len(cfg.anchors)
        self.anchors_per_cell = cfg.anchors_per_cell
        self.cls = nn.Conv2d(in_channels, self.anchors_per_cell * self.num_classes, 1)
        self.box = nn.Conv2d(in_channels, self.anchors_per_cell * BOX_CODE_SIZE, 1)
        self.dir = nn.Conv2d(in_channels, self.anchors_per_cell * cfg.num_dir_bins, 1)
        nn.init.constant_(self.cls.bias, -math.log((1 - _PRIOR_PROBABILITY) / _PRIOR_PROBABILITY))
        nn.init.normal_(self.box.weight, std=0.001)
        nn.init.zeros_(self.box.bias)
        anchors, anchor_classes = anchor_grid(grid, cfg)
        self.register_buffer("anchors", anchors, persistent=False)  # (A, 7)
        self.register_buffer("anchor_classes", anchor_classes, persistent=False)  # (A,)

    def _per_anchor(self, x: torch.Tensor, values: int) -> torch.Tensor:
        """(B, cell_anchors·values, ny, nx) → (B, ny·nx·cell_anchors, values)."""
        b = x.shape[0]
        return x.permute(0, 2, 3, 1).reshape(b, -1, values)

    def forward(self, bev: torch.Tensor) -> HeadOutput:
        """Predictions for every anchor of the (ny, nx) grid."""
        return HeadOutput(
            cls_logits=self._per_anchor(self.cls(bev), self.num_classes),
            box_residuals=self._per_anchor(self.box(bev), BOX_CODE_SIZE),
            dir_logits=self._per_anchor(self.dir(bev), 2),
        )
