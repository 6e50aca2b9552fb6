"""Anchor ↔ ground-truth matching per class (SECOND's axis-aligned assigner).

For the anchors of class c and the GT boxes of class c, IoU is the BEV IoU with yaws snapped to
the nearest axis. An anchor is positive when its best IoU reaches ``match_iou`` or when it is the
best anchor of some GT (forced match, IoU > 0); negative below ``unmatch_iou``; ignored between.
Anchors overlapping an ignore box (class −1, e.g. DontCare / Van) by ``unmatch_iou`` or more are
ignored rather than negative. Frames without labels are ignored entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monotakd_ros.geometry.iou import iou2d_matrix_aligned_bev
from monotakd_ros.models.box_coder import direction_bins, encode_boxes
from monotakd_ros.models.config import HeadConfig

IGNORE = -1
BACKGROUND = 0


@dataclass
class AnchorTargets:
    """Per-anchor training targets of a batch."""

    labels: torch.Tensor  # (B, A) int64: -1 ignore, 0 background, c + 1 positive of class c
    box_residuals: torch.Tensor  # (B, A, 7), meaningful where labels > 0
    dir_bins: torch.Tensor  # (B, A) int64, meaningful where labels > 0
    labelled: torch.Tensor | None = None  # (B,) bool frames with labels; None: every frame

    @property
    def positives(self) -> torch.Tensor:
        """(B, A) bool mask of positive anchors."""
        return self.labels > 0


def _bev(boxes_lidar: torch.Tensor) -> torch.Tensor:
    """(N, 7) LiDAR boxes → (N, 5) ``[x, y, l, w, yaw]``."""
    return boxes_lidar[:, [0, 1, 3, 4, 6]]


def _match_class(anchors: torch.Tensor, gt: torch.Tensor, match_iou: float,
                 unmatch_iou: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (A_c,) in {-1, 0, 1}, matched GT index (A_c,)) for one class of one frame."""
    labels = torch.full((anchors.shape[0],), IGNORE, dtype=torch.long, device=anchors.device)
    gt_index = torch.zeros(anchors.shape[0], dtype=torch.long, device=anchors.device)
    if gt.shape[0] == 0:
        labels.fill_(BACKGROUND)
        return labels, gt_index
    iou = iou2d_matrix_aligned_bev(_bev(anchors), _bev(gt))  # (A_c, M)
    best_iou, gt_index = iou.max(dim=1)
    labels[best_iou < unmatch_iou] = BACKGROUND
    best_per_gt = iou.max(dim=0).values  # (M,)
    forced = (iou == best_per_gt.unsqueeze(0)) & (best_per_gt.unsqueeze(0) > 0)
    forced_anchor, forced_gt = forced.nonzero(as_tuple=True)
    gt_index[forced_anchor] = forced_gt
    positive = best_iou >= match_iou
    positive[forced_anchor] = True
    labels[positive] = 1
    return labels, gt_index


def _frame_targets(anchors: torch.Tensor, anchor_classes: torch.Tensor, gt_boxes: torch.Tensor,
                   gt_classes: torch.Tensor, cfg: HeadConfig
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels (A,), residuals (A, 7) and direction bins (A,) of one labelled frame."""
    labels = torch.full_like(anchor_classes, IGNORE)
    matched = torch.zeros_like(anchors)
    ignore_boxes = gt_boxes[gt_classes == IGNORE]
    for c, spec in enumerate(cfg.anchors):
        idx = (anchor_classes == c).nonzero(as_tuple=True)[0]
        class_labels, gt_index = _match_class(anchors[idx], gt_boxes[gt_classes == c],
                                              spec.match_iou, spec.unmatch_iou)
        if ignore_boxes.shape[0] > 0:
            near_ignored = iou2d_matrix_aligned_bev(_bev(anchors[idx]), _bev(ignore_boxes))
            to_ignore = (near_ignored.max(dim=1).values >= spec.unmatch_iou)
            class_labels[to_ignore & (class_labels == BACKGROUND)] = IGNORE
        positive = class_labels > 0
        class_labels[positive] = c + 1
        labels[idx] = class_labels
        if positive.any():
            matched[idx[positive]] = gt_boxes[gt_classes == c][gt_index[positive]]
    positive = labels > 0
    residuals = torch.zeros_like(anchors)
    residuals[positive] = encode_boxes(matched[positive], anchors[positive])
    dirs = torch.zeros_like(labels)
    dirs[positive] = direction_bins(matched[positive, 6], cfg.dir_offset_rad, cfg.num_dir_bins)
    return labels, residuals, dirs


def assign_targets(anchors: torch.Tensor, anchor_classes: torch.Tensor,
                   gt_boxes_list: list[torch.Tensor], gt_classes_list: list[torch.Tensor],
                   cfg: HeadConfig, has_labels: torch.Tensor | None = None) -> AnchorTargets:
    """Batch targets from (M_i, 7) LiDAR GT boxes and (M_i,) classes in −1..C−1 per frame."""
    batch = len(gt_boxes_list)
    labels = torch.full((batch, anchors.shape[0]), IGNORE, dtype=torch.long,
                        device=anchors.device)
    residuals = anchors.new_zeros(batch, anchors.shape[0], 7)
    dirs = torch.zeros_like(labels)
    for i in range(batch):
        if has_labels is not None and not bool(has_labels[i]):
            continue  # unlabeled frame: every anchor stays ignored
        boxes = gt_boxes_list[i].to(anchors.device, anchors.dtype)
        classes = gt_classes_list[i].to(anchors.device).long()
        labels[i], residuals[i], dirs[i] = _frame_targets(anchors, anchor_classes, boxes,
                                                          classes, cfg)
    labelled = (torch.ones(batch, dtype=torch.bool, device=anchors.device) if has_labels is None
                else has_labels.to(anchors.device, torch.bool))
    return AnchorTargets(labels=labels, box_residuals=residuals, dir_bins=dirs,
                         labelled=labelled)
