"""The student's LiDAR depth loss with extra weight on the cells that show a labelled object."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_models import tiny_config

from monotakd_ros.distill import DistillConfig, distill_preset, student_losses
from monotakd_ros.errors import ConfigError
from monotakd_ros.models import build_student
from monotakd_ros.models.config import DepthBinsConfig
from monotakd_ros.models.detection_loss import depth_supervision_loss
from monotakd_ros.models.lifting import depth_bin_indices

BINS = DepthBinsConfig(num_bins=4, min_m=2.0, max_m=10.0)


def _two_cells() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits and an 8 x 24 depth map over 1 x 3 stride-8 cells: returns in cells 0 and 2."""
    depth = torch.zeros(1, 8, 24)
    depth[0, 3, 2] = 3.0
    depth[0, 5, 20] = 9.0
    logits = torch.zeros(1, BINS.num_bins + 1, 1, 3)
    bins = depth_bin_indices(torch.tensor([[[3.0, 5.0, 9.0]]]), BINS)[0, 0]
    logits[0, bins[0], 0, 0] = 2.0  # cell 0 mostly right, cell 2 uniform
    return logits, depth, bins


def test_the_weighted_loss_is_the_weighted_mean_of_the_cells_with_depth() -> None:
    logits, depth, _ = _two_cells()
    classes = BINS.num_bins + 1
    ce_right = -math.log(math.exp(2.0) / (math.exp(2.0) + classes - 1))
    ce_uniform = math.log(classes)
    plain = depth_supervision_loss(logits, depth, 8, BINS)
    assert plain.item() == pytest.approx((ce_right + ce_uniform) / 2, rel=1e-6)
    # Cell 1 has no return: its weight does not count; cell 2 weighs 13, cell 0 weighs 1.
    weights = torch.tensor([[[1.0, 50.0, 13.0]]])
    weighted = depth_supervision_loss(logits, depth, 8, BINS, weights)
    assert weighted.item() == pytest.approx((ce_right + 13 * ce_uniform) / 14, rel=1e-6)


def test_student_losses_weigh_the_object_cells() -> None:
    cfg = tiny_config()
    student = build_student(cfg).eval()
    h, w = cfg.image.input_hw
    torch.manual_seed(0)
    depth = torch.where(torch.rand(1, h, w) < 0.3, 2.0 + 12.0 * torch.rand(1, h, w), 0.0)
    with torch.no_grad():
        out = student(torch.randn(1, 3, h, w), torch.tensor([[[80.0, 0.0, w / 2, 0.0],
                                                             [0.0, 80.0, h / 2, 0.0],
                                                             [0.0, 0.0, 1.0, 0.0]]]))
    cells = torch.zeros(1, h // 8, w // 8, dtype=torch.bool)
    cells[0, 4:8, 6:12] = True
    loss_cfg = distill_preset("none", gt_weight=0.0, depth_weight=2.0,
                              depth_foreground_weight=12.0)
    got = student_losses(loss_cfg, out, depth_maps=depth, depth_bins=cfg.depth,
                         object_cells=cells).depth
    want = 2.0 * depth_supervision_loss(out.features.depth_logits, depth, 8, cfg.depth,
                                        1.0 + 12.0 * cells.float())
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    plain = 2.0 * depth_supervision_loss(out.features.depth_logits, depth, 8, cfg.depth)
    assert abs(got.item() - plain.item()) > 1e-3
    with pytest.raises(ConfigError, match="object cells"):
        student_losses(loss_cfg, out, depth_maps=depth, depth_bins=cfg.depth)


def test_a_foreground_weight_without_the_depth_loss_is_refused() -> None:
    with pytest.raises(ConfigError, match="depth_weight"):
        DistillConfig(depth_foreground_weight=12.0)
    with pytest.raises(ConfigError, match="depth_foreground_weight"):
        DistillConfig(depth_weight=1.0, depth_foreground_weight=-1.0)
