"""Response distillation from the LiDAR teacher's soft predictions on the shared anchors.

- classes: quality focal loss against the teacher's sigmoid scores, on every anchor;
- boxes: Smooth-L1 on residuals (sin difference for yaw) where the teacher's best score > thr;
- direction: cross-entropy against the teacher's direction distribution on the same anchors.
Each term is summed per frame, divided by that frame's confident-anchor count (at least 1) and
averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from monotakd_ros.models.detection_loss import residual_difference, smooth_l1
from monotakd_ros.models.outputs import HeadOutput


@dataclass
class ResponseTerms:
    """Unweighted response-distillation terms (scalars)."""

    cls: torch.Tensor
    box: torch.Tensor
    dir: torch.Tensor


def quality_focal_loss(logits: torch.Tensor, soft_targets: torch.Tensor,
                       beta: float = 2.0) -> torch.Tensor:
    """Element-wise QFL: BCE to a soft target, scaled by |sigmoid(logit) − target|^beta."""
    ce = F.binary_cross_entropy_with_logits(logits, soft_targets, reduction="none")
    return ce * (torch.sigmoid(logits) - soft_targets).abs().pow(beta)


def response_loss(student: HeadOutput, teacher: HeadOutput, score_threshold: float = 0.1,
                  smooth_l1_beta: float = 1.0 / 9.0) -> ResponseTerms:
    """Terms pulling the student's head outputs towards the (detached) teacher's."""
    if student.cls_logits.shape != teacher.cls_logits.shape:
        raise ValueError(f"student and teacher anchors differ: {tuple(student.cls_logits.shape)}"
                         f" vs {tuple(teacher.cls_logits.shape)}")
    batch = student.cls_logits.shape[0]
    teacher_scores = torch.sigmoid(teacher.cls_logits.detach().float())  # (B, A, C)
    confident = (teacher_scores.amax(dim=-1) > score_threshold).float()  # (B, A)
    per_frame = confident.sum(dim=1, keepdim=True).clamp(min=1.0)
    qfl = quality_focal_loss(student.cls_logits.float(), teacher_scores).sum(dim=-1)
    cls = (qfl / per_frame).sum() / batch
    diff = residual_difference(student.box_residuals.float(),
                               teacher.box_residuals.detach().float())
    box = (smooth_l1(diff, smooth_l1_beta).sum(dim=-1) * confident / per_frame).sum() / batch
    teacher_dir = teacher.dir_logits.detach().float().softmax(dim=-1)
    dir_ce = -(teacher_dir * student.dir_logits.float().log_softmax(dim=-1)).sum(dim=-1)
    direction = (dir_ce * confident / per_frame).sum() / batch
    return ResponseTerms(cls=cls, box=box, dir=direction)
