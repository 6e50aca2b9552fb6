"""Overlaps of same-frame (ground truth, detection) pairs for the 2D, BEV and 3D metrics.

Only pairs from the same frame can match, so instead of one IoU matrix per frame we list every
same-frame pair once and compute each metric over all pairs of all frames in one vectorised call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.geometry.coord_frames import boxes_cam_to_bev
from monotakd_ros.geometry.iou import bev_iou_pairs

METRICS: tuple[str, ...] = ("bbox", "bev", "3d")


@dataclass(frozen=True)
class PairOverlaps:
    """Overlaps of P same-frame (ground truth, detection) pairs, one array per metric."""

    gt: np.ndarray  # (P,) flat ground truth index
    det: np.ndarray  # (P,) flat detection index
    by_metric: dict[str, np.ndarray]  # metric name -> (P,) IoU


def same_frame_pairs(
    frame_a: np.ndarray, index_a: np.ndarray, frame_b: np.ndarray, index_b: np.ndarray,
    num_frames: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, b) of ``index_a`` x ``index_b`` sharing a frame; both lists sorted by frame."""
    count_b = np.bincount(frame_b[index_b], minlength=num_frames)
    start_b = np.cumsum(count_b) - count_b
    partners = count_b[frame_a[index_a]]  # (A,) how many b share each a's frame
    pair_a = np.repeat(index_a, partners)
    first_of_run = np.repeat(np.cumsum(partners) - partners, partners)
    rank_in_run = np.arange(len(pair_a)) - first_of_run
    pair_b = index_b[np.repeat(start_b[frame_a[index_a]], partners) + rank_in_run]
    return pair_a, pair_b


def _image_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, 4) x (P, 4) image boxes -> (P,) intersection areas (pixel areas, no +1 convention)."""
    width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.where((width > 0) & (height > 0), width * height, 0.0)


def _areas(boxes: np.ndarray) -> np.ndarray:
    """(P, 4) image boxes -> (P,) areas."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """The ratio, and 0 where nothing intersects (degenerate boxes give 0, not NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return np.where(numerator > 0, ratio, 0.0)


def image_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, 4) x (P, 4) image boxes -> (P,) intersection over union."""
    inter = _image_intersection(a, b)
    return _safe_ratio(inter, _areas(a) + _areas(b) - inter)


def image_overlap_of_first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, 4) x (P, 4) image boxes -> (P,) intersection over the area of ``a`` alone."""
    return _safe_ratio(_image_intersection(a, b), _areas(a))


def bev_and_3d_iou_pairs(a_cam: np.ndarray, b_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 7) x (P, 7) camera boxes -> ((P,) BEV IoU, (P,) 3D IoU); height spans [y - h, y]."""
    bev_iou = np.asarray(bev_iou_pairs(boxes_cam_to_bev(a_cam), boxes_cam_to_bev(b_cam)))
    # IoU = I / (A + B - I) gives the footprint intersection I back without a second clipping.
    footprint_a, footprint_b = a_cam[:, 3] * a_cam[:, 5], b_cam[:, 3] * b_cam[:, 5]
    inter_area = bev_iou * (footprint_a + footprint_b) / (1.0 + bev_iou)
    top_a, top_b = a_cam[:, 1] - a_cam[:, 4], b_cam[:, 1] - b_cam[:, 4]  # y points down
    overlap_h = np.minimum(a_cam[:, 1], b_cam[:, 1]) - np.maximum(top_a, top_b)
    inter_volume = inter_area * np.clip(overlap_h, 0.0, None)
    volume_a, volume_b = footprint_a * a_cam[:, 4], footprint_b * b_cam[:, 4]
    return bev_iou, _safe_ratio(inter_volume, volume_a + volume_b - inter_volume)


def pair_overlaps(
    gt_bbox: np.ndarray, gt_boxes_cam: np.ndarray, det_bbox: np.ndarray,
    det_boxes_cam: np.ndarray, pair_gt: np.ndarray, pair_det: np.ndarray,
) -> PairOverlaps:
    """The three metrics' IoU for the given (ground truth, detection) pairs."""
    bev_iou, iou_3d = bev_and_3d_iou_pairs(gt_boxes_cam[pair_gt], det_boxes_cam[pair_det])
    bbox_iou = image_iou_pairs(gt_bbox[pair_gt], det_bbox[pair_det])
    return PairOverlaps(pair_gt, pair_det, {"bbox": bbox_iou, "bev": bev_iou, "3d": iou_3d})


def dontcare_overlap_per_detection(
    det_frame: np.ndarray, det_bbox: np.ndarray, dc_frame: np.ndarray, dc_bbox: np.ndarray,
    num_frames: int,
) -> np.ndarray:
    """(N_det,) largest share of each detection's image box covered by one DontCare box.

    The devkit frees a detection from being a false positive when this share exceeds the class
    IoU threshold. It measures it on image boxes only: DontCare rows carry no 3D box (location
    -1000), so their BEV/3D overlap is 0 and the rule only changes the 2D bbox metric.
    """
    best = np.zeros(len(det_frame))
    pair_det, pair_dc = same_frame_pairs(
        det_frame, np.arange(len(det_frame)), dc_frame, np.arange(len(dc_frame)), num_frames
    )
    if len(pair_det):
        share = image_overlap_of_first(det_bbox[pair_det], dc_bbox[pair_dc])
        np.maximum.at(best, pair_det, share)
    return best
