"""The decode as it was before issue 19: a per-class loop and NMS over the full IoU matrix.

Kept as the straightforward reference that ``models.postprocess`` must reproduce, and as the
"before" of ``bench/bench_decode.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.geometry.iou import bev_iou_matrix
from monotakd_ros.models.config import HeadConfig, PostprocessConfig
from monotakd_ros.models.outputs import Detections, HeadOutput
from monotakd_ros.models.postprocess import decode_anchor_boxes


def reference_nms(boxes_bev: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                  max_keep: int) -> torch.Tensor:
    """Greedy NMS reading the full (N, N) IoU matrix: best first, drop what it overlaps."""
    order = torch.sort(scores, descending=True, stable=True).indices
    ranked = boxes_bev[order]
    suppresses = (bev_iou_matrix(ranked, ranked) > iou_threshold).cpu().numpy()
    alive = np.ones(order.shape[0], dtype=bool)
    kept: list[int] = []
    while len(kept) < max_keep and alive.any():
        best = int(np.argmax(alive))
        kept.append(best)
        alive[best] = False
        alive &= ~suppresses[best]
    return order[torch.tensor(kept, dtype=torch.long)]


def reference_frame_detections(head: HeadOutput, anchors: torch.Tensor, head_cfg: HeadConfig,
                               cfg: PostprocessConfig, frame: int = 0) -> Detections:
    """Per class: threshold, top-k, decode, NMS; then the best ``max_detections`` overall."""
    scores = torch.sigmoid(head.cls_logits[frame].float())
    residuals, dir_logits = head.box_residuals[frame], head.dir_logits[frame]
    boxes_out, scores_out, classes_out = [], [], []
    for c in range(scores.shape[1]):
        class_scores = scores[:, c]
        candidates = (class_scores > cfg.score_threshold).nonzero(as_tuple=True)[0]
        if candidates.numel() > cfg.pre_nms_max:
            candidates = candidates[class_scores[candidates].topk(cfg.pre_nms_max).indices]
        if candidates.numel() == 0:
            continue
        boxes = decode_anchor_boxes(residuals[candidates], dir_logits[candidates],
                                    anchors[candidates], head_cfg)
        kept = reference_nms(boxes[:, [0, 1, 3, 4, 6]], class_scores[candidates],
                             cfg.nms_iou_threshold, cfg.max_detections)
        boxes_out.append(boxes[kept])
        scores_out.append(class_scores[candidates][kept])
        classes_out.append(torch.full_like(kept, c))
    if not boxes_out:
        return Detections(boxes_lidar=anchors.new_zeros(0, 7), scores=anchors.new_zeros(0),
                          classes=torch.zeros(0, dtype=torch.long))
    all_scores = torch.cat(scores_out)
    order = all_scores.argsort(descending=True, stable=True)[: cfg.max_detections]
    return Detections(boxes_lidar=torch.cat(boxes_out)[order], scores=all_scores[order],
                      classes=torch.cat(classes_out)[order])
