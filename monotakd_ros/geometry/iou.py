"""Rotated BEV, 3D and 2D IoU, vectorised over box pairs for numpy arrays and torch tensors.

Every function returns the kind of array it was given (numpy in, numpy float64 out; torch in,
torch out on the same device, float32 or float64). The rotated intersection of two rectangles
is the convex polygon whose vertices are the corners of each rectangle inside the other plus
the crossings of their edges; those up to 24 candidates are ordered by angle about their mean
and measured with the shoelace formula. Pairs whose circumscribed circles do not touch are
skipped, which is what makes whole-dataset evaluation cheap.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.coord_frames import boxes_cam_to_bev

Array = Any  # np.ndarray or torch.Tensor; functions return what they are given

_CHUNK_PAIRS = 65536  # bounds the (chunk, 4, 4, 2) temporaries to a few tens of MB
_NEXT_CORNER = [1, 2, 3, 0]


def _namespace(*arrays: Array) -> ModuleType:
    """The torch module when every input is a tensor, numpy when none is; mixing raises."""
    is_tensor = [isinstance(array, torch.Tensor) for array in arrays]
    if all(is_tensor):
        return torch
    if any(is_tensor):
        raise GeometryError("IoU inputs mix numpy arrays and torch tensors; pass one kind")
    return np


def _prepare(boxes: Array, name: str, columns: int, xp: ModuleType) -> Array:
    """Boxes as a float (N, columns) array of the given kind; bad shapes raise GeometryError."""
    if xp is torch:
        if boxes.dtype not in (torch.float32, torch.float64):
            boxes = boxes.float()
    else:
        boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != columns:
        raise GeometryError(f"{name} must have shape (N, {columns}), got {tuple(boxes.shape)}")
    return boxes


def _prepare_pair(a: Array, b: Array, columns: int) -> tuple[ModuleType, Array, Array]:
    """The namespace of both inputs and both as float boxes of one dtype."""
    xp = _namespace(a, b)
    a, b = _prepare(a, "a", columns, xp), _prepare(b, "b", columns, xp)
    if xp is torch:
        b = b.to(a.dtype)
    return xp, a, b


def _zeros(xp: ModuleType, shape: tuple[int, ...], like: Array) -> Array:
    """Zeros with the dtype (and device) of ``like``."""
    if xp is torch:
        return like.new_zeros(shape)
    return np.zeros(shape, dtype=like.dtype)


def _constant(xp: ModuleType, values: list[float], like: Array) -> Array:
    """A small constant vector with the dtype (and device) of ``like``."""
    if xp is torch:
        return torch.tensor(values, dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=like.dtype)


def _take_last(xp: ModuleType, values: Array, index: Array) -> Array:
    """values[k, index[k, j]] for 2-D arrays."""
    if xp is torch:
        return torch.gather(values, 1, index)
    return np.take_along_axis(values, index, axis=1)


def _nonzero(xp: ModuleType, mask: Array) -> tuple[Array, Array]:
    """Row and column indices of a 2-D boolean mask."""
    if xp is torch:
        return torch.nonzero(mask, as_tuple=True)
    return np.nonzero(mask)


def _safe_ratio(xp: ModuleType, numerator: Array, denominator: Array) -> Array:
    """The ratio clipped to [0, 1], and 0 where the denominator is ~0 (so never NaN)."""
    usable = denominator > 1e-12
    ratio = numerator / xp.where(usable, denominator, 1.0)
    return xp.where(usable, ratio, 0.0).clip(0.0, 1.0)


def _rectangle_corners(xp: ModuleType, boxes: Array, offset: Array | None) -> Array:
    """(K, 5) BEV boxes -> (K, 4, 2) counter-clockwise corners about centre ``offset`` or 0."""
    half_l = 0.5 * boxes[:, 2:3]  # (K, 1)
    half_w = 0.5 * boxes[:, 3:4]
    along = half_l * _constant(xp, [1.0, -1.0, -1.0, 1.0], boxes)  # (K, 4)
    across = half_w * _constant(xp, [1.0, 1.0, -1.0, -1.0], boxes)
    cos_yaw, sin_yaw = xp.cos(boxes[:, 4:5]), xp.sin(boxes[:, 4:5])
    x = along * cos_yaw - across * sin_yaw
    y = along * sin_yaw + across * cos_yaw
    if offset is not None:
        x = x + offset[:, 0:1]
        y = y + offset[:, 1:2]
    return xp.stack([x, y], 2)


def _corners_inside(xp: ModuleType, corners: Array, boxes: Array, centres: Array,
                    tolerance: float) -> Array:
    """(K, 4) True where a corner of (K, 4, 2) lies in the matching (K, 5) box at ``centres``."""
    dx = corners[..., 0] - centres[:, 0:1]
    dy = corners[..., 1] - centres[:, 1:2]
    cos_yaw, sin_yaw = xp.cos(boxes[:, 4:5]), xp.sin(boxes[:, 4:5])
    along = dx * cos_yaw + dy * sin_yaw
    across = -dx * sin_yaw + dy * cos_yaw
    return ((xp.abs(along) <= 0.5 * boxes[:, 2:3] + tolerance)
            & (xp.abs(across) <= 0.5 * boxes[:, 3:4] + tolerance))


def _edge_crossings(xp: ModuleType, corners_a: Array, corners_b: Array,
                    tolerance: float) -> tuple[Array, Array]:
    """Crossings of the 4 x 4 edge pairs: ((K, 16, 2) points, (K, 16) valid)."""
    start_a = corners_a[:, :, None, :]  # (K, 4, 1, 2)
    edge_a = corners_a[:, _NEXT_CORNER][:, :, None, :] - start_a
    start_b = corners_b[:, None, :, :]  # (K, 1, 4, 2)
    edge_b = corners_b[:, _NEXT_CORNER][:, None, :, :] - start_b
    gap = start_b - start_a  # (K, 4, 4, 2)
    denominator = edge_a[..., 0] * edge_b[..., 1] - edge_a[..., 1] * edge_b[..., 0]
    lengths_sq = ((edge_a * edge_a).sum(-1) * (edge_b * edge_b).sum(-1))
    # Parallel (or degenerate) edges cross nowhere useful: the corner tests cover overlaps.
    crossing = denominator * denominator > (tolerance * tolerance) * lengths_sq
    safe = xp.where(crossing, denominator, 1.0)
    t_a = (gap[..., 0] * edge_b[..., 1] - gap[..., 1] * edge_b[..., 0]) / safe
    t_b = (gap[..., 0] * edge_a[..., 1] - gap[..., 1] * edge_a[..., 0]) / safe
    crossing = (crossing & (t_a >= -tolerance) & (t_a <= 1.0 + tolerance)
                & (t_b >= -tolerance) & (t_b <= 1.0 + tolerance))
    points = start_a + t_a[..., None] * edge_a  # (K, 4, 4, 2)
    return points.reshape(-1, 16, 2), crossing.reshape(-1, 16)


def _intersection_area_chunk(xp: ModuleType, a: Array, b: Array) -> Array:
    """(K,) intersection areas of matching rows of (K, 5) BEV boxes."""
    tolerance = 1e-9 if a.dtype in (np.float64, torch.float64) else 2e-5
    offset = b[:, :2] - a[:, :2]  # work about a's centre so float32 keeps its precision
    corners_a = _rectangle_corners(xp, a, None)
    corners_b = _rectangle_corners(xp, b, offset)
    a_in_b = _corners_inside(xp, corners_a, b, offset, tolerance)
    b_in_a = _corners_inside(xp, corners_b, a, offset * 0.0, tolerance)
    crossings, crossing_valid = _edge_crossings(xp, corners_a, corners_b, tolerance)
    points = xp.concatenate([corners_a, corners_b, crossings], axis=1)  # (K, 24, 2)
    valid = xp.concatenate([a_in_b, b_in_a, crossing_valid], axis=1)  # (K, 24)
    count = valid.sum(-1)
    mean = (points * valid[..., None]).sum(1) / count.clip(1, None)[:, None]
    rel_x = points[..., 0] - mean[:, 0:1]
    rel_y = points[..., 1] - mean[:, 1:2]
    # Invalid candidates get an angle past pi so that they sort to the end.
    angle = xp.where(valid, xp.atan2(rel_y, rel_x), 10.0)
    order = angle.argsort(-1)
    sorted_valid = _take_last(xp, valid, order)
    sorted_x, sorted_y = _take_last(xp, rel_x, order), _take_last(xp, rel_y, order)
    # Padding repeats the first vertex: its shoelace terms are zero and the polygon closes.
    sorted_x = xp.where(sorted_valid, sorted_x, sorted_x[:, :1])
    sorted_y = xp.where(sorted_valid, sorted_y, sorted_y[:, :1])
    next_index = list(range(1, 24)) + [0]
    twice_area = (sorted_x * sorted_y[:, next_index] - sorted_x[:, next_index] * sorted_y).sum(-1)
    return xp.where(count >= 3, 0.5 * twice_area, 0.0).clip(0.0, None)


def _may_overlap(xp: ModuleType, a: Array, b: Array) -> Array:
    """True where the circumscribed circles of broadcast BEV boxes touch."""
    radius_a = 0.5 * xp.sqrt(a[..., 2] ** 2 + a[..., 3] ** 2)
    radius_b = 0.5 * xp.sqrt(b[..., 2] ** 2 + b[..., 3] ** 2)
    distance_sq = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
    return distance_sq <= (radius_a + radius_b) ** 2 * (1.0 + 1e-6) + 1e-12


def _intersection_area_pairs(xp: ModuleType, a: Array, b: Array) -> Array:
    """(K,) intersection areas of matching rows, computing only pairs that may overlap."""
    area = _zeros(xp, (a.shape[0],), a)
    candidates = _may_overlap(xp, a, b)
    a_near, b_near = a[candidates], b[candidates]
    parts = [_intersection_area_chunk(xp, a_near[start:start + _CHUNK_PAIRS],
                                      b_near[start:start + _CHUNK_PAIRS])
             for start in range(0, a_near.shape[0], _CHUNK_PAIRS)]
    if parts:
        area[candidates] = xp.concatenate(parts, axis=0)
    return area


def _intersection_area_matrix(xp: ModuleType, a: Array, b: Array) -> Array:
    """(N, M) intersection areas of (N, 5) and (M, 5) BEV boxes."""
    area = _zeros(xp, (a.shape[0], b.shape[0]), a)
    rows, cols = _nonzero(xp, _may_overlap(xp, a[:, None, :], b[None, :, :]))
    area[rows, cols] = _intersection_area_pairs(xp, a[rows], b[cols])
    return area


def bev_iou_pairs(a: Array, b: Array) -> Array:
    """(K, 5) and (K, 5) BEV boxes [cx, cy, l, w, yaw] -> (K,) IoU of matching rows."""
    xp, a, b = _prepare_pair(a, b, 5)
    if a.shape[0] != b.shape[0]:
        raise GeometryError(f"bev_iou_pairs needs as many rows in a as in b: "
                            f"{a.shape[0]} != {b.shape[0]}")
    intersection = _intersection_area_pairs(xp, a, b)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - intersection
    return _safe_ratio(xp, intersection, union)


def bev_iou_matrix(a: Array, b: Array) -> Array:
    """(N, 5) and (M, 5) BEV boxes [cx, cy, l, w, yaw] -> (N, M) rotated IoU."""
    xp, a, b = _prepare_pair(a, b, 5)
    intersection = _intersection_area_matrix(xp, a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - intersection
    return _safe_ratio(xp, intersection, union)


def _iou3d(xp: ModuleType, bev_a: Array, bev_b: Array, bottom_a: Array, top_a: Array,
           bottom_b: Array, top_b: Array) -> Array:
    """(N, M) 3D IoU from BEV footprints and vertical extents [bottom, top] (N,), (M,)."""
    intersection = _intersection_area_matrix(xp, bev_a, bev_b)
    overlap = (xp.minimum(top_a[:, None], top_b[None, :])
               - xp.maximum(bottom_a[:, None], bottom_b[None, :])).clip(0.0, None)
    volume_a = bev_a[:, 2] * bev_a[:, 3] * (top_a - bottom_a)
    volume_b = bev_b[:, 2] * bev_b[:, 3] * (top_b - bottom_b)
    shared = intersection * overlap
    return _safe_ratio(xp, shared, volume_a[:, None] + volume_b[None, :] - shared)



def bev_iou_matrix_cam(a: Array, b: Array) -> Array:
    """(N, 7) and (M, 7) camera boxes [x, y, z, l, h, w, ry] -> (N, M) ground-plane IoU."""
    xp, a, b = _prepare_pair(a, b, 7)
    return bev_iou_matrix(boxes_cam_to_bev(a), boxes_cam_to_bev(b))


def iou3d_matrix_cam(a: Array, b: Array) -> Array:
    """(N, 7) and (M, 7) camera boxes -> (N, M) 3D IoU; each spans [y - h, y] vertically."""
    xp, a, b = _prepare_pair(a, b, 7)
    return _iou3d(xp, boxes_cam_to_bev(a), boxes_cam_to_bev(b),
                  a[:, 1] - a[:, 4], a[:, 1], b[:, 1] - b[:, 4], b[:, 1])


def iou2d_matrix(a: Array, b: Array) -> Array:
    """(N, 4) and (M, 4) axis-aligned boxes [x1, y1, x2, y2] -> (N, M) IoU."""
    xp, a, b = _prepare_pair(a, b, 4)
    width = (xp.minimum(a[:, None, 2], b[None, :, 2])
             - xp.maximum(a[:, None, 0], b[None, :, 0])).clip(0.0, None)
    height = (xp.minimum(a[:, None, 3], b[None, :, 3])
              - xp.maximum(a[:, None, 1], b[None, :, 1])).clip(0.0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0.0, None) * (a[:, 3] - a[:, 1]).clip(0.0, None)
    area_b = (b[:, 2] - b[:, 0]).clip(0.0, None) * (b[:, 3] - b[:, 1]).clip(0.0, None)
    shared = width * height
    return _safe_ratio(xp, shared, area_a[:, None] + area_b[None, :] - shared)


def _nearest_axis_aligned(xp: ModuleType, boxes: Array) -> Array:
    """(N, 5) BEV boxes -> (N, 4) [x1, y1, x2, y2] with yaw snapped to the nearest 0 or 90 deg."""
    turned = xp.abs(xp.sin(boxes[:, 4])) > xp.abs(xp.cos(boxes[:, 4]))
    extent_x = xp.where(turned, boxes[:, 3], boxes[:, 2])
    extent_y = xp.where(turned, boxes[:, 2], boxes[:, 3])
    return xp.stack([boxes[:, 0] - extent_x / 2.0, boxes[:, 1] - extent_y / 2.0,
                     boxes[:, 0] + extent_x / 2.0, boxes[:, 1] + extent_y / 2.0], 1)


def iou2d_matrix_aligned_bev(a: Array, b: Array) -> Array:
    """(N, 5) and (M, 5) BEV boxes -> (N, M) axis-aligned IoU with yaws snapped to 0/90 deg."""
    xp, a, b = _prepare_pair(a, b, 5)
    return iou2d_matrix(_nearest_axis_aligned(xp, a), _nearest_axis_aligned(xp, b))
