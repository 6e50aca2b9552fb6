"""Greedy non-maximum suppression of rotated BEV boxes.

Greedy NMS only ever reads the overlaps of the boxes it keeps, so the rotated IoU is computed
row by row for kept boxes, against the boxes still alive, never as a full (N, N) matrix. Cheap
exact bounds decide most pairs before the polygon clipping runs:

- circumscribed circles apart: IoU = 0;
- the boxes' axis-aligned bounding boxes overlap little: IoU <= that overlap / union, an
  upper bound, so the pair is surely kept when the bound is below the threshold;
- the inscribed circles overlap a lot: a disk inside both boxes gives a lower bound, so the
  pair is surely suppressed when the bound is above the threshold.

Only pairs between the bounds (by a margin far above float error) get the exact polygon IoU,
all in one vectorised call per kept box. The result is the same greedy NMS as with the full
matrix: the loop runs once per *kept* box (at most ``max_keep``), never once per candidate.
"""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.iou import bev_iou_pairs

# Bounds decide a pair only when they clear the threshold by this much IoU; the exact IoU's
# float error (float32 corner tolerance 2e-5 m on metre-sized boxes) is far below it.
_BOUND_MARGIN = 1e-3
# Up to this many pairs (N <= 91 boxes) all overlaps are decided at once; above, row by row.
_ONE_CALL_PAIRS = 4096


def rotated_nms(boxes_bev: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                max_keep: int | None = None, groups: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Indices (LongTensor, on the input's device) of the boxes kept, by descending score.

    Standard greedy NMS: visit boxes from the highest score (ties: lower index first), keep one
    unless a kept box of the same group (class) overlaps it with BEV IoU > iou_threshold; stop
    after ``max_keep``. ``groups=None`` puts every box in one group.
    """
    if boxes_bev.ndim != 2 or boxes_bev.shape[1] != 5:
        raise GeometryError(f"boxes_bev must have shape (N, 5), got {tuple(boxes_bev.shape)}")
    if scores.shape != (boxes_bev.shape[0],):
        raise GeometryError(f"scores must have shape ({boxes_bev.shape[0]},), "
                            f"got {tuple(scores.shape)}")
    if groups is not None and groups.shape != scores.shape:
        raise GeometryError(f"groups must have shape ({boxes_bev.shape[0]},), "
                            f"got {tuple(groups.shape)}")
    if max_keep is not None and max_keep < 0:
        raise GeometryError(f"max_keep must be >= 0, got {max_keep}")
    device = boxes_bev.device
    order = torch.sort(scores, descending=True, stable=True).indices
    count = int(order.shape[0])
    limit = count if max_keep is None else min(max_keep, count)
    if limit == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    ranked = boxes_bev[order].detach().cpu().double().numpy()  # (N, 5)
    ranked_groups = None if groups is None else groups[order].cpu().numpy()
    kept = _greedy_kept_ranks(ranked, ranked_groups, float(iou_threshold), limit)
    return order[torch.from_numpy(kept).to(device)]


def _greedy_kept_ranks(ranked: np.ndarray, groups: np.ndarray | None, iou_threshold: float,
                       limit: int) -> np.ndarray:
    """(K,) int64 ranks kept by greedy NMS over (N, 5) boxes sorted by descending score."""
    shape = _BoxShape(ranked)
    count = ranked.shape[0]
    if count * (count - 1) // 2 <= _ONE_CALL_PAIRS:
        return _kept_ranks_all_pairs(shape, ranked, groups, iou_threshold, limit)
    return _kept_ranks_row_by_row(shape, ranked, groups, iou_threshold, limit)


def _kept_ranks_all_pairs(shape: _BoxShape, ranked: np.ndarray, groups: np.ndarray | None,
                          iou_threshold: float, limit: int) -> np.ndarray:
    """Few boxes: decide every pair (i < j) in one vectorised call, then walk the matrix."""
    count = ranked.shape[0]
    rows, cols = np.triu_indices(count, 1)
    if groups is not None:
        same = groups[rows] == groups[cols]
        rows, cols = rows[same], cols[same]
    suppresses = np.zeros((count, count), dtype=bool)
    hit = _suppressing_pairs(shape, ranked, rows, cols, iou_threshold)
    suppresses[rows[hit], cols[hit]] = True
    alive = np.ones(count, dtype=bool)
    kept: list[int] = []
    while len(kept) < limit and alive.any():
        best = int(np.argmax(alive))  # first alive rank = highest remaining score
        kept.append(best)
        alive[best] = False
        alive &= ~suppresses[best]
    return np.asarray(kept, dtype=np.int64)


def _kept_ranks_row_by_row(shape: _BoxShape, ranked: np.ndarray, groups: np.ndarray | None,
                           iou_threshold: float, limit: int) -> np.ndarray:
    """Many boxes: overlaps of kept boxes only, one row per kept box.

    Pairs the bounds leave open wait in ``pending`` until their candidate comes up; then every
    open pair of a still-alive candidate is settled in one call (a kept box never changes, so
    settling early is never wrong).
    """
    count = ranked.shape[0]
    alive = np.ones(count, dtype=bool)
    waiting = np.zeros(count, dtype=bool)  # alive candidates with an open pair
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    kept: list[int] = []
    while len(kept) < limit:
        alive_ranks = np.flatnonzero(alive)
        if alive_ranks.size == 0:
            break
        best = int(alive_ranks[0])
        if waiting[best]:
            pending = _settle(shape, ranked, pending, alive, iou_threshold)
            waiting[:] = False
            continue
        kept.append(best)
        alive[best] = False
        others = alive_ranks[1:]
        if groups is not None:
            others = others[groups[others] == groups[best]]
        rows = np.full(others.shape, best)
        surely, maybe = _bounded_pairs(shape, rows, others, iou_threshold)
        alive[others[surely]] = False
        if maybe.size:
            pending.append((rows[maybe], others[maybe]))
            waiting[others[maybe]] = True
    return np.asarray(kept, dtype=np.int64)


def _settle(shape: _BoxShape, ranked: np.ndarray, pending: list[tuple[np.ndarray, np.ndarray]],
            alive: np.ndarray, iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact IoU of the open (kept, candidate) pairs of alive candidates; clears ``pending``."""
    rows = np.concatenate([pair[0] for pair in pending])
    cols = np.concatenate([pair[1] for pair in pending])
    open_pairs = alive[cols]
    rows, cols = rows[open_pairs], cols[open_pairs]
    if rows.size:
        alive[cols[bev_iou_pairs(ranked[rows], ranked[cols]) > iou_threshold]] = False
    return []


class _BoxShape:
    """Per-box quantities the bounds need, computed once for all (N, 5) boxes."""

    def __init__(self, boxes: np.ndarray) -> None:
        length, width, yaw = boxes[:, 2], boxes[:, 3], boxes[:, 4]
        cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
        self.centre = boxes[:, :2]  # (N, 2)
        self.outer_radius = 0.5 * np.sqrt(length**2 + width**2)
        self.inner_radius = 0.5 * np.minimum(length, width)
        # Every disk of the inner radius centred on this segment lies inside the box.
        half_spine = 0.5 * np.abs(length - width)
        long_axis = np.where(length >= width, 1.0, 0.0)
        axis = np.stack([long_axis * cos_yaw - (1.0 - long_axis) * sin_yaw,
                         long_axis * sin_yaw + (1.0 - long_axis) * cos_yaw], 1)  # (N, 2)
        self.spine_axis, self.half_spine = axis, half_spine
        self.length, self.width, self.cos_yaw, self.sin_yaw = length, width, cos_yaw, sin_yaw
        self.area = length * width

    def spine_point(self, index: np.ndarray, towards: np.ndarray) -> np.ndarray:
        """(M, 2) point of each box's spine nearest to its projection of ``towards``."""
        offset = towards - self.centre[index]
        along = (offset * self.spine_axis[index]).sum(1).clip(-self.half_spine[index],
                                                             self.half_spine[index])
        return self.centre[index] + along[:, None] * self.spine_axis[index]

    def overlap_in_frame(self, a: np.ndarray, b: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """(M,) area of box a intersected with box b's bounding rectangle in a's own axes."""
        cos_a, sin_a = self.cos_yaw[a], self.sin_yaw[a]
        along = gap[:, 0] * cos_a + gap[:, 1] * sin_a  # centre of b in a's frame
        across = -gap[:, 0] * sin_a + gap[:, 1] * cos_a
        cos_d = np.abs(self.cos_yaw[b] * cos_a + self.sin_yaw[b] * sin_a)  # |cos(yaw_b - yaw_a)|
        sin_d = np.abs(self.sin_yaw[b] * cos_a - self.cos_yaw[b] * sin_a)
        half_along = 0.5 * (self.length[b] * cos_d + self.width[b] * sin_d)
        half_across = 0.5 * (self.length[b] * sin_d + self.width[b] * cos_d)
        overlap_along = (np.minimum(0.5 * self.length[a], along + half_along)
                         - np.maximum(-0.5 * self.length[a], along - half_along)).clip(0.0)
        overlap_across = (np.minimum(0.5 * self.width[a], across + half_across)
                          - np.maximum(-0.5 * self.width[a], across - half_across)).clip(0.0)
        return overlap_along * overlap_across


def _suppressing_pairs(shape: _BoxShape, ranked: np.ndarray, rows: np.ndarray,
                       cols: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(M,) bool, True where box ``rows[k]`` overlaps ``cols[k]`` with IoU > iou_threshold."""
    result = np.zeros(rows.shape, dtype=bool)
    surely, maybe = _bounded_pairs(shape, rows, cols, iou_threshold)
    result[surely] = True
    if maybe.size:
        result[maybe] = bev_iou_pairs(ranked[rows[maybe]], ranked[cols[maybe]]) > iou_threshold
    return result


def _bounded_pairs(shape: _BoxShape, rows: np.ndarray, cols: np.ndarray,
                   iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(pairs surely over the IoU threshold, pairs the bounds leave open) as index arrays.

    Every other pair (rows[k], cols[k]) is surely at or under the threshold.
    """
    gap = shape.centre[cols] - shape.centre[rows]  # (M, 2)
    # The circle test of geometry.iou (same tolerance): pairs it rejects have IoU exactly 0.
    reach = shape.outer_radius[cols] + shape.outer_radius[rows]
    near = np.flatnonzero((gap**2).sum(1) <= reach**2 * (1.0 + 1e-6) + 1e-12)
    if near.size == 0:
        return near, near
    a, b, gap = rows[near], cols[near], gap[near]
    area_a, area_b = shape.area[a], shape.area[b]
    # Upper bound: the intersection lies in a and in b's bounding rectangle in a's axes (and
    # the other way round); exact for parallel boxes.
    upper = np.minimum(shape.overlap_in_frame(a, b, gap), shape.overlap_in_frame(b, a, -gap))
    # Lower bound: disks of the inscribed radius on each box's spine, placed near the middle
    # of the two centres; a disk of diameter (r_a + r_b - d) fits in both of them.
    middle = shape.centre[a] + 0.5 * gap
    spine_gap = shape.spine_point(b, middle) - shape.spine_point(a, middle)
    r_a, r_b = shape.inner_radius[a], shape.inner_radius[b]
    diameter = np.minimum(r_a + r_b - np.sqrt((spine_gap**2).sum(1)),
                          2.0 * np.minimum(r_a, r_b)).clip(0.0)
    lower = 0.25 * np.pi * diameter**2
    surely = _ratio(lower, area_a + area_b - lower) > iou_threshold + _BOUND_MARGIN
    maybe = ~surely & (_ratio(upper, area_a + area_b - upper) > iou_threshold - _BOUND_MARGIN)
    return near[surely], near[maybe]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """The ratio, 0 where the denominator is ~0 (degenerate boxes)."""
    usable = denominator > 1e-12
    return np.where(usable, numerator / np.where(usable, denominator, 1.0), 0.0)
