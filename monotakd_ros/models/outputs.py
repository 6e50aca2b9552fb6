"""Typed outputs of the models: the same types in training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class HeadOutput:
    """Raw anchor-head predictions; anchor order is (ny, nx, class, rotation) flattened."""

    cls_logits: torch.Tensor  # (B, A, C) sigmoid logits per class
    box_residuals: torch.Tensor  # (B, A, 7) residuals w.r.t. the anchors (see box_coder)
    dir_logits: torch.Tensor  # (B, A, 2) direction-bin logits


@dataclass
class BevFeatures:
    """LiDAR teacher's BEV map before its detection backbone: F_T."""

    bev: torch.Tensor  # (B, C_bev, ny, nx)


@dataclass
class CameraFeatures:
    """Camera detector (student or TA) BEV maps, all on the shared (ny, nx) grid."""

    bev_visual: torch.Tensor  # (B, C_bev, ny, nx)  F_S (student) / F_TA (assistant)
    bev_spatial: torch.Tensor  # (B, C_bev, ny, nx)  F_S_spa, the spatial-cue branch
    bev_fused: torch.Tensor  # (B, C_bev, ny, nx)  input of the BEV backbone
    depth_logits: torch.Tensor | None  # (B, N + 1, H/8, W/8); None when depth is from LiDAR


@dataclass
class TeacherOutput:
    """LiDAR teacher: F_T and its head predictions."""

    features: BevFeatures
    head: HeadOutput


@dataclass
class CameraDetectorOutput:
    """Student / TA: BEV features and head predictions."""

    features: CameraFeatures
    head: HeadOutput


@dataclass
class Detections:
    """Final boxes of one frame in the LiDAR frame ``[x, y, z, l, w, h, yaw]`` (centre)."""

    boxes_lidar: torch.Tensor  # (K, 7)
    scores: torch.Tensor  # (K,)
    classes: torch.Tensor  # (K,) int64, index into HeadConfig.class_names

    def __len__(self) -> int:
        return int(self.scores.shape[0])
