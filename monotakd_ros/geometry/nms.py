"""Greedy non-maximum suppression of rotated BEV boxes."""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.iou import bev_iou_matrix


def rotated_nms(boxes_bev: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                max_keep: int | None = None) -> torch.Tensor:
    """Indices (LongTensor, on the input's device) of the boxes kept, by descending score.

    Standard greedy NMS: visit boxes from the highest score (ties: lower index first), keep one
    unless a kept box overlaps it with BEV IoU > iou_threshold; stop after ``max_keep``.
    """
    if boxes_bev.ndim != 2 or boxes_bev.shape[1] != 5:
        raise GeometryError(f"boxes_bev must have shape (N, 5), got {tuple(boxes_bev.shape)}")
    if scores.shape != (boxes_bev.shape[0],):
        raise GeometryError(f"scores must have shape ({boxes_bev.shape[0]},), "
                            f"got {tuple(scores.shape)}")
    if max_keep is not None and max_keep < 0:
        raise GeometryError(f"max_keep must be >= 0 or None, got {max_keep}")
    device = boxes_bev.device
    order = torch.sort(scores, descending=True, stable=True).indices
    count = int(order.shape[0])
    limit = count if max_keep is None else min(max_keep, count)
    if count == 0 or limit == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    ranked = boxes_bev[order]
    # Row i holds what box i (by rank) suppresses; only columns ranked below i are ever read,
    # because everything ranked above the current box is already decided. Memory is (N, N):
    # callers cap N with a pre-NMS top-k.
    suppresses = (bev_iou_matrix(ranked, ranked) > iou_threshold).cpu().numpy()
    alive = np.ones(count, dtype=bool)
    kept: list[int] = []
    while len(kept) < limit and alive.any():
        best = int(np.argmax(alive))  # first alive rank = highest remaining score
        kept.append(best)
        alive[best] = False
        alive &= ~suppresses[best]
    return order[torch.tensor(kept, dtype=torch.long, device=device)]


def rotated_nms_numpy(boxes_bev: np.ndarray, scores: np.ndarray, iou_threshold: float,
                      max_keep: int | None = None) -> np.ndarray:
    """``rotated_nms`` on numpy arrays: (K,) int64 indices of the kept boxes."""
    kept = rotated_nms(torch.from_numpy(np.asarray(boxes_bev, dtype=np.float64)),
                       torch.from_numpy(np.asarray(scores, dtype=np.float64)),
                       iou_threshold, max_keep)
    return kept.numpy()
