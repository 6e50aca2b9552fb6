"""Head outputs → detections: score threshold, decoding, direction, per-class rotated NMS."""

from __future__ import annotations

import torch

from monotakd_ros.geometry.nms import rotated_nms
from monotakd_ros.models.box_coder import decode_boxes, yaw_with_direction
from monotakd_ros.models.config import HeadConfig, PostprocessConfig
from monotakd_ros.models.outputs import Detections, HeadOutput


def decode_anchor_boxes(residuals: torch.Tensor, dir_logits: torch.Tensor,
                        anchors: torch.Tensor, cfg: HeadConfig) -> torch.Tensor:
    """(…, 7) residuals and (…, 2) direction logits on (…, 7) anchors → (…, 7) LiDAR boxes."""
    boxes = decode_boxes(residuals.float(), anchors)
    yaw = yaw_with_direction(boxes[..., 6], dir_logits.argmax(dim=-1), cfg.dir_offset_rad,
                             cfg.num_dir_bins)
    return torch.cat([boxes[..., :6], yaw.unsqueeze(-1)], dim=-1)


def _frame_detections(cls_logits: torch.Tensor, residuals: torch.Tensor,
                      dir_logits: torch.Tensor, anchors: torch.Tensor, head_cfg: HeadConfig,
                      cfg: PostprocessConfig) -> Detections:
    """Detections of one frame from (A, C), (A, 7), (A, 2) predictions."""
    scores = torch.sigmoid(cls_logits.float())
    boxes_out, scores_out, classes_out = [], [], []
    for c in range(scores.shape[1]):
        class_scores = scores[:, c]
        candidates = (class_scores > cfg.score_threshold).nonzero(as_tuple=True)[0]
        if candidates.numel() > cfg.pre_nms_max:
            top = class_scores[candidates].topk(cfg.pre_nms_max).indices
            candidates = candidates[top]
        if candidates.numel() == 0:
            continue
        boxes = decode_anchor_boxes(residuals[candidates], dir_logits[candidates],
                                    anchors[candidates], head_cfg)
        kept = rotated_nms(boxes[:, [0, 1, 3, 4, 6]], class_scores[candidates],
                           cfg.nms_iou_threshold, cfg.max_detections)
        boxes_out.append(boxes[kept])
        scores_out.append(class_scores[candidates][kept])
        classes_out.append(torch.full_like(kept, c))
    if not boxes_out:
        return Detections(boxes_lidar=anchors.new_zeros(0, 7), scores=anchors.new_zeros(0),
                          classes=torch.zeros(0, dtype=torch.long, device=anchors.device))
    all_scores = torch.cat(scores_out)
    order = all_scores.argsort(descending=True)[: cfg.max_detections]
    return Detections(boxes_lidar=torch.cat(boxes_out)[order], scores=all_scores[order],
                      classes=torch.cat(classes_out)[order])


def detections_from_head(head: HeadOutput, anchors: torch.Tensor, head_cfg: HeadConfig,
                         cfg: PostprocessConfig) -> list[Detections]:
    """One :class:`Detections` per frame of the batch (boxes in the LiDAR frame)."""
    with torch.no_grad():
        return [
            _frame_detections(head.cls_logits[b], head.box_residuals[b], head.dir_logits[b],
                              anchors, head_cfg, cfg)
            for b in range(head.cls_logits.shape[0])
        ]
