"""Head outputs → detections: score threshold, decoding, direction, per-class rotated NMS.

Only anchors that pass the score threshold (at most ``pre_nms_max`` per class, the best by
score) are decoded, and all classes go through one rotated NMS call in which a box can only
suppress boxes of its own class. Work per frame is a handful of tensor operations on the
(A, C) scores plus work on the few candidates; nothing loops over anchors or boxes in Python.
"""

from __future__ import annotations

import torch

from monotakd_ros.geometry.nms import rotated_nms
from monotakd_ros.models.box_coder import decode_boxes, yaw_with_direction
from monotakd_ros.models.config import HeadConfig, PostprocessConfig
from monotakd_ros.models.outputs import Detections, HeadOutput

_BEV_COLUMNS = [0, 1, 3, 4, 6]  # LiDAR box [x, y, z, l, w, h, yaw] -> BEV [x, y, l, w, yaw]


def decode_anchor_boxes(residuals: torch.Tensor, dir_logits: torch.Tensor,
                        anchors: torch.Tensor, cfg: HeadConfig) -> torch.Tensor:
    """(…, 7) residuals and (…, 2) direction logits on (…, 7) anchors → (…, 7) LiDAR boxes."""
    boxes = decode_boxes(residuals.float(), anchors)
    yaw = yaw_with_direction(boxes[..., 6], dir_logits.argmax(dim=-1), cfg.dir_offset_rad,
                             cfg.num_dir_bins)
    return torch.cat([boxes[..., :6], yaw.unsqueeze(-1)], dim=-1)


def candidate_anchors(scores: torch.Tensor, score_threshold: float,
                      pre_nms_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor, class) indices of the (A, C) scores above the threshold, capped per class.

    A class with more than ``pre_nms_max`` keeps its best by score; others keep anchor order.
    """
    anchor_idx, class_idx = (scores > score_threshold).nonzero(as_tuple=True)
    per_class = torch.bincount(class_idx, minlength=scores.shape[1])
    crowded = (per_class > pre_nms_max).nonzero(as_tuple=True)[0].tolist()
    if not crowded:
        return anchor_idx, class_idx
    keep = torch.isin(class_idx, torch.tensor(crowded, device=class_idx.device), invert=True)
    parts_anchor, parts_class = [anchor_idx[keep]], [class_idx[keep]]
    for c in crowded:  # at most one pass per class
        top = torch.where(scores[:, c] > score_threshold, scores[:, c], -1.0).topk(pre_nms_max)
        parts_anchor.append(top.indices)
        parts_class.append(torch.full_like(top.indices, c))
    return torch.cat(parts_anchor), torch.cat(parts_class)


def _frame_detections(cls_logits: torch.Tensor, residuals: torch.Tensor,
                      dir_logits: torch.Tensor, anchors: torch.Tensor, head_cfg: HeadConfig,
                      cfg: PostprocessConfig) -> Detections:
    """Detections of one frame from (A, C), (A, 7), (A, 2) predictions."""
    scores = torch.sigmoid(cls_logits.float())  # (A, C)
    anchor_idx, class_idx = candidate_anchors(scores, cfg.score_threshold, cfg.pre_nms_max)
    candidate_scores = scores[anchor_idx, class_idx]  # (N,)
    boxes = decode_anchor_boxes(residuals[anchor_idx], dir_logits[anchor_idx],
                                anchors[anchor_idx], head_cfg)  # (N, 7)
    # One NMS for all classes: kept boxes come by descending score, so the cap keeps the best
    # max_detections over all classes.
    kept = rotated_nms(boxes[:, _BEV_COLUMNS], candidate_scores, cfg.nms_iou_threshold,
                       cfg.max_detections, groups=class_idx)
    return Detections(boxes_lidar=boxes[kept], scores=candidate_scores[kept],
                      classes=class_idx[kept])


def detections_from_head(head: HeadOutput, anchors: torch.Tensor, head_cfg: HeadConfig,
                         cfg: PostprocessConfig) -> list[Detections]:
    """One :class:`Detections` per frame of the batch (boxes in the LiDAR frame)."""
    with torch.no_grad():
        return [
            _frame_detections(head.cls_logits[b], head.box_residuals[b], head.dir_logits[b],
                              anchors, head_cfg, cfg)
            for b in range(head.cls_logits.shape[0])
        ]
