"""Camera BEV detector: the student (predicted depth) and the TA (one-hot LiDAR depth).

image → trunk (stride 8) → 1x1 reduce ─┐
                         → depth head ─┴→ frustum (softmax depth ⊗ features) → voxels
voxels → collapse_visual → SCNet (optional) → F_S ───────────┐
       → collapse_spatial → spatial-cue block → F_S_spa ───────┴→ sum → fusion convs
       → BEV backbone → anchor head
(spatial-cue block and fusion: models/spatial_alignment.py; SCNet: models/scnet.py)
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from monotakd_ros.models.bev_backbone import BevBackbone
from monotakd_ros.models.config import DepthHeadConfig, ModelConfig
from monotakd_ros.models.head import AnchorHead
from monotakd_ros.models.layers import ASPP, ConvBnRelu
from monotakd_ros.models.lifting import (
    FrustumToVoxel,
    HeightCollapse,
    frustum_features,
    lidar_depth_one_hot,
    pad_to_multiple,
)
from monotakd_ros.models.outputs import CameraDetectorOutput, CameraFeatures
from monotakd_ros.models.scnet import build_scnet
from monotakd_ros.models.spatial_alignment import build_fusion, build_spatial_cue
from monotakd_ros.models.trunks import STRIDE, build_trunk

DepthSource = Literal["predicted", "lidar"]


class DepthHead(nn.Module):
    """ASPP on the deepest trunk features → logits over N LID bins + "beyond"."""

    def __init__(self, in_channels: int, cfg: DepthHeadConfig, num_outputs: int) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, cfg.aspp_channels, cfg.aspp_rates)
        self.refine = ConvBnRelu(cfg.aspp_channels, cfg.aspp_channels, 3)
        self.logits = nn.Conv2d(cfg.aspp_channels, num_outputs, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) → (B, N + 1, h, w) depth logits."""
        return self.logits(self.refine(self.aspp(features)))


class CameraBevDetector(nn.Module):
    """Monocular BEV detector; ``depth_source`` picks student ("predicted") or TA ("lidar")."""

    def __init__(self, cfg: ModelConfig, depth_source: DepthSource) -> None:
        super().__init__()
        if depth_source not in ("predicted", "lidar"):
            raise ValueError(f"depth_source must be 'predicted' or 'lidar', got {depth_source!r}")
        self.depth_source = depth_source
        self.depth_cfg = cfg.depth
        bev = cfg.bev_channels
        self.trunk = build_trunk(cfg.trunk, with_depth_stage=depth_source == "predicted")
        self.reduce = ConvBnRelu(self.trunk.image_channels, cfg.image_channels, 1)
        self.depth_head = (DepthHead(self.trunk.depth_channels, cfg.depth_head,
                                     cfg.depth.num_bins + 1)
                           if depth_source == "predicted" else None)
        self.to_voxels = FrustumToVoxel(cfg.grid, cfg.depth)
        slices = cfg.grid.height_slices
        self.collapse_visual = HeightCollapse(cfg.image_channels, slices, bev)
        self.collapse_spatial = HeightCollapse(cfg.image_channels, slices, bev)
        self.scnet = build_scnet(bev, cfg.scnet)  # identity unless scnet.blocks > 0
        self.spatial_cue = build_spatial_cue(bev, cfg.spatial_cue)
        self.fusion = build_fusion(cfg)
        self.backbone = BevBackbone(bev, cfg.bev_backbone)
        self.head = AnchorHead(self.backbone.out_channels, cfg.grid, cfg.head)
        nominal = torch.tensor(cfg.nominal_T_rect_from_lidar, dtype=torch.float32)
        self.register_buffer("nominal_T_rect_from_lidar", nominal, persistent=False)

    def _check_inputs(self, images: torch.Tensor, P2: torch.Tensor,
                      depth_maps: torch.Tensor | None) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if P2.shape != (images.shape[0], 3, 4):
            raise ValueError(f"P2 must be (B, 3, 4) = ({images.shape[0]}, 3, 4), "
                             f"got {tuple(P2.shape)}")
        if self.depth_source == "lidar" and depth_maps is None:
            raise ValueError("the LiDAR-depth assistant needs depth_maps (B, H, W)")

    def depth_probabilities(self, deep: torch.Tensor | None, depth_maps: torch.Tensor | None,
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(probabilities (B, N + 1, h, w), logits or None) from the head or from LiDAR."""
        if self.depth_head is not None and deep is not None:
            logits = self.depth_head(deep)
            return logits.softmax(dim=1), logits
        if depth_maps is None:
            raise ValueError("the LiDAR-depth assistant needs depth_maps (B, H, W)")
        return lidar_depth_one_hot(depth_maps, STRIDE, self.depth_cfg), None

    def forward_features(self, images: torch.Tensor, P2: torch.Tensor,
                         T_rect_from_lidar: torch.Tensor | None = None,
                         depth_maps: torch.Tensor | None = None) -> CameraFeatures:
        """BEV features from normalised images (B, 3, H, W) and P2 (B, 3, 4) at input scale.

        ``T_rect_from_lidar`` (B, 4, 4) defaults to the nominal extrinsic from the config;
        ``depth_maps`` (B, H, W), metres with 0 = no return, is needed only by the assistant.
        """
        self._check_inputs(images, P2, depth_maps)
        if T_rect_from_lidar is None:
            T_rect_from_lidar = self.nominal_T_rect_from_lidar.expand(images.shape[0], 4, 4)
        trunk = self.trunk(pad_to_multiple(images, STRIDE))
        image_features = self.reduce(trunk.image)  # (B, C_img, h, w)
        probs, logits = self.depth_probabilities(trunk.depth, depth_maps)
        frustum = frustum_features(image_features, probs.to(image_features.dtype))
        input_hw = (image_features.shape[2] * STRIDE, image_features.shape[3] * STRIDE)
        voxels = self.to_voxels(frustum, P2, T_rect_from_lidar, input_hw)
        visual = self.scnet(self.collapse_visual(voxels))
        spatial = self.spatial_cue(self.collapse_spatial(voxels))
        fused = self.fusion(visual + spatial)
        return CameraFeatures(bev_visual=visual, bev_spatial=spatial, bev_fused=fused,
                              depth_logits=logits)

    def forward(self, images: torch.Tensor, P2: torch.Tensor,
                T_rect_from_lidar: torch.Tensor | None = None,
                depth_maps: torch.Tensor | None = None) -> CameraDetectorOutput:
        """BEV features and anchor-head predictions (same type in training and evaluation)."""
        features = self.forward_features(images, P2, T_rect_from_lidar, depth_maps)
        head = self.head(self.backbone(features.bev_fused))
        return CameraDetectorOutput(features=features, head=head)
