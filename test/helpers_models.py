"""Shared fixtures of the model and loss tests: a toy-sized config of the real architecture."""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.models.config import (
    BevBackboneConfig,
    BevGridConfig,
    DepthBinsConfig,
    DepthHeadConfig,
    ImageConfig,
    ModelConfig,
    SpatialCueConfig,
    TeacherConfig,
    TrunkConfig,
)

# LiDAR x forward, y left, z up → camera x right, y down, z forward (camera 1 m above LiDAR)
T_RECT_FROM_LIDAR = np.array([[0, -1, 0, 0], [0, 0, -1, -1.0], [1, 0, 0, 0], [0, 0, 0, 1.0]])


def tiny_config(**overrides: object) -> ModelConfig:
    """20 x 20 BEV cells of 0.64 m, 96 x 160 images, a few channels; the real architecture."""
    base = dict(
        grid=BevGridConfig(x_range_m=(2.0, 14.8), y_range_m=(-6.4, 6.4), z_range_m=(-3.0, 1.0),
                           cell_m=0.64, height_slices=4),
        image=ImageConfig(input_hw=(96, 160)),
        trunk=TrunkConfig(name="small", small_channels=(8, 8, 16)),
        depth=DepthBinsConfig(num_bins=16, min_m=2.0, max_m=14.8),
        depth_head=DepthHeadConfig(aspp_channels=8, aspp_rates=(2,)),
        image_channels=8, bev_channels=16,
        spatial_cue=SpatialCueConfig(aspp_rates=(2,), se_reduction=4),
        fusion_convs=1,
        bev_backbone=BevBackboneConfig(layer_nums=(1, 1), layer_strides=(1, 2),
                                       num_filters=(16, 32), upsample_strides=(1, 2),
                                       upsample_filters=(16, 16)),
        teacher=TeacherConfig(pfn_channels=8, stem_convs=1),
        nominal_T_rect_from_lidar=tuple(tuple(r) for r in T_RECT_FROM_LIDAR.tolist()),
    )
    base.update(overrides)
    return ModelConfig(**base)  # type: ignore[arg-type]


def camera_P2(focal: float, hw: tuple[int, int]) -> torch.Tensor:
    """(3, 4) pinhole projection with the principal point at the image centre."""
    return torch.tensor([[focal, 0.0, hw[1] / 2, 0.0], [0.0, focal, hw[0] / 2, 0.0],
                         [0.0, 0.0, 1.0, 0.0]])
