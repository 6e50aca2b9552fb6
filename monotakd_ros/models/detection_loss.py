"""Supervised losses of the anchor head: GT detection loss, optional LiDAR depth-bin loss.

Normalisation follows SECOND/OpenPCDet: per frame, each term is summed over anchors and divided
by that frame's number of positive anchors (at least 1), then averaged over the frames that
carry labels. Unlabelled frames of a mixed batch (distillation only) therefore do not dilute the
ground-truth gradient: 2 labelled frames give the same GT terms alone or beside 2 unlabelled
ones, and a batch without a labelled frame gives exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import DepthBinsConfig
from monotakd_ros.models.head import BOX_CODE_SIZE
from monotakd_ros.models.lifting import depth_bin_indices, pooled_lidar_depth_m
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.models.target_assigner import AnchorTargets

NO_CODE_WEIGHTING = (1.0,) * BOX_CODE_SIZE


@dataclass(frozen=True)
class DetectionLossWeights:
    """GT detection loss: sigmoid focal on classes, Smooth-L1 on residuals, CE on direction."""

    cls_weight: float = bounded(2.0, ge=0)
    box_weight: float = bounded(2.0, ge=0)
    dir_weight: float = bounded(0.4, ge=0)
    focal_alpha: float = bounded(0.25, ge=0, le=1)
    focal_gamma: float = bounded(2.0, ge=0)
    smooth_l1_beta: float = bounded(1.0 / 9.0, ge=0)
    # Per-residual weights of the Smooth-L1 term, in the coder's order (x, y, z, l, w, h, yaw);
    # OpenPCDet's code_weights. All 1 as in SECOND / PointPillars.
    code_weights: tuple[float, ...] = bounded(NO_CODE_WEIGHTING, ge=0)

    def __post_init__(self) -> None:
        check_fields(self, "detection")
        if len(self.code_weights) != BOX_CODE_SIZE:
            raise ConfigError(f"detection.code_weights: need {BOX_CODE_SIZE} weights (x, y, z, l, "
                              f"w, h, yaw), got {len(self.code_weights)}")


@dataclass
class DetectionTerms:
    """Unweighted detection loss terms (scalars)."""

    cls: torch.Tensor
    box: torch.Tensor
    dir: torch.Tensor


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Element-wise focal loss of sigmoid logits against {0, 1} targets."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def residual_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(…, 7) residual error with the yaw entry replaced by sin(Δyaw) (a half-turn is free)."""
    yaw = torch.sin(pred[..., 6:7] - target[..., 6:7])
    return torch.cat([pred[..., :6] - target[..., :6], yaw], dim=-1)


def smooth_l1(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Element-wise Smooth-L1 of an error ``x``."""
    return F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none", beta=beta)


def detection_loss(head: HeadOutput, targets: AnchorTargets,
                   weights: DetectionLossWeights) -> DetectionTerms:
    """Focal / Smooth-L1 / direction-CE terms against assigned anchor targets."""
    cls_logits = head.cls_logits.float()
    batch, _, num_classes = cls_logits.shape
    frames = labelled_frame_count(targets, batch)
    labels = targets.labels
    positives = targets.positives.float()  # (B, A)
    cared = (labels >= 0).float()
    per_frame = positives.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1)
    one_hot = F.one_hot(labels.clamp(min=0), num_classes + 1)[..., 1:].float()  # (B, A, C)
    focal = sigmoid_focal_loss(cls_logits, one_hot, weights.focal_alpha, weights.focal_gamma)
    cls = (focal.sum(dim=-1) * cared / per_frame).sum() / frames
    diff = residual_difference(head.box_residuals.float(), targets.box_residuals)
    box_per_anchor = smooth_l1(diff, weights.smooth_l1_beta)
    if weights.code_weights != NO_CODE_WEIGHTING:
        box_per_anchor = box_per_anchor * diff.new_tensor(weights.code_weights)
    box_per_anchor = box_per_anchor.sum(dim=-1)
    box = (box_per_anchor * positives / per_frame).sum() / frames
    ce = F.cross_entropy(head.dir_logits.float().flatten(0, 1), targets.dir_bins.flatten(),
                         reduction="none").view(batch, -1)
    direction = (ce * positives / per_frame).sum() / frames
    return DetectionTerms(cls=cls, box=box, dir=direction)


def labelled_frame_count(targets: AnchorTargets, batch: int) -> torch.Tensor | float:
    """Frames the GT terms are averaged over: the labelled ones (at least 1, so 0 gives 0)."""
    if targets.labelled is None:
        return float(batch)
    return targets.labelled.sum().clamp(min=1).float()  # a tensor: no device sync


def depth_supervision_loss(depth_logits: torch.Tensor, depth_maps_m: torch.Tensor,
                           stride: int, cfg: DepthBinsConfig,
                           cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of (B, N + 1, h, w) depth logits vs pooled LiDAR bins (cells with depth).

    ``cell_weights`` (B, h, w), if given, weighs each cell; the loss is the weighted mean over
    the cells with depth.
    """
    depth_m, has_depth = pooled_lidar_depth_m(depth_maps_m, stride, cfg.lidar_pooling)
    bins = depth_bin_indices(depth_m, cfg)  # (B, h, w)
    ce = F.cross_entropy(depth_logits.float(), bins, reduction="none")
    weights = has_depth.float()
    if cell_weights is not None:
        weights = weights * cell_weights.float()
    return (ce * weights).sum() / weights.sum().clamp(min=1e-6)
