"""KITTI 3D object evaluation (2D bbox, BEV, 3D and AOS; R40 and R11) on in-memory labels.

The protocol is the official devkit's (``evaluate_object_3d_offline``), which OpenPCDet's
``kitti_object_eval_python`` reproduces: per class, difficulty and metric, collect the scores of
true positives, sample 41 score thresholds from them, count TP/FP/FN at each, and average the
interpolated precision over 40 (or 11) recall positions. AOS is measured on the 2D matches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.average_precision import (
    PrCurve,
    average_precision_percent,
    pr_curve,
    score_thresholds,
)
from monotakd_ros.eval.difficulty import (
    CLASS_MIN_OVERLAP,
    DIFFICULTIES,
    DONTCARE,
    EVALUATED_CLASSES,
    NEIGHBOUR_CLASSES,
    detection_flags,
    gt_flags,
    may_take_part,
)
from monotakd_ros.eval.flat_labels import FlatLabels, flatten_labels
from monotakd_ros.eval.matching import GreedyMatcher, MatchProblem
from monotakd_ros.eval.overlaps import (
    METRICS,
    dontcare_overlap_per_detection,
    pair_overlaps,
    same_frame_pairs,
)

logger = logging.getLogger(__name__)

ALL_METRICS: tuple[str, ...] = ("bbox", "bev", "3d", "aos")
UNKNOWN_ALPHA = -10.0  # the devkit's "no orientation given" marker; disables AOS


@dataclass(frozen=True)
class KittiEvalResult:
    """Interpolated PR curves per class and metric, and the APs derived from them.

    ``precision[cls][metric]`` is (3, 41): Easy/Moderate/Hard at recall 0, 1/40, ..., 1; for
    ``"aos"`` it is the orientation-similarity curve. ``recall`` has the same layout for the
    bbox/BEV/3D metrics. ``"aos"`` is absent when a detection has alpha = -10 (the devkit's rule).
    """

    classes: tuple[str, ...]
    precision: dict[str, dict[str, np.ndarray]]
    recall: dict[str, dict[str, np.ndarray]]
    num_counted_gt: dict[str, np.ndarray]  # cls -> (3,) ground truth counted per difficulty
    min_overlap: dict[str, float]
    num_frames: int

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics present, in table order."""
        first = self.precision[self.classes[0]] if self.classes else {}
        return tuple(metric for metric in ALL_METRICS if metric in first)

    def average_precision(self, cls: str, metric: str, recall_points: int = 40) -> np.ndarray:
        """(3,) Easy/Moderate/Hard AP in percent; ``recall_points`` is 40 (R40) or 11 (R11)."""
        curves = self.precision[cls][metric]
        return np.array([average_precision_percent(curve, recall_points) for curve in curves])

    def to_json_dict(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        """``{cls: {metric: {"R40": [e, m, h], "R11": [e, m, h]}}}`` with AP in percent."""
        return {
            cls: {
                metric: {
                    f"R{points}": self.average_precision(cls, metric, points).tolist()
                    for points in (40, 11)
                }
                for metric in ("3d", "bev", "bbox", "aos")
                if metric in self.precision[cls]
            }
            for cls in self.classes
        }

    def format_table(self) -> str:
        """The KITTI/OpenPCDet-style text table (per class: R11 block, then R40 block)."""
        from monotakd_ros.eval.report import format_table  # report depends on this class

        return format_table(self)


def _canonical_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """Class names spelled as in the devkit tables; unknown names raise EvaluationError."""
    spelled = {cls.lower(): cls for cls in EVALUATED_CLASSES}
    canonical = []
    for cls in classes:
        if cls.lower() not in spelled:
            raise EvaluationError(
                f"cannot evaluate class {cls!r}: "
                f"the KITTI protocol defines {list(EVALUATED_CLASSES)}"
            )
        canonical.append(spelled[cls.lower()])
    return tuple(dict.fromkeys(canonical))


def _class_candidates(gt: FlatLabels, dt: FlatLabels, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of ground truth and detections that can ever match for ``cls``."""
    gt_names = [cls.lower(), *(n.lower() for n in NEIGHBOUR_CLASSES[cls])]
    gt_index = np.flatnonzero(np.isin(gt.names_lower, gt_names))
    dt_index = np.flatnonzero(may_take_part(dt.names_lower, dt.bbox, cls))
    return gt_index, dt_index


def _evaluate_class(
    gt: FlatLabels, dt: FlatLabels, cls: str, dontcare_share: np.ndarray, with_aos: bool
) -> tuple[dict[str, list[PrCurve]], np.ndarray]:
    """Curves per metric (one per difficulty) and the counted ground truth per difficulty."""
    gt_index, dt_index = _class_candidates(gt, dt, cls)
    pair_gt, pair_dt = same_frame_pairs(gt.frame, gt_index, dt.frame, dt_index, gt.num_frames)
    overlaps = pair_overlaps(gt.bbox, gt.boxes_cam, dt.bbox, dt.boxes_cam, pair_gt, pair_dt)
    similarity = (1.0 + np.cos(gt.alpha[pair_gt] - dt.alpha[pair_dt])) / 2.0
    min_overlap = CLASS_MIN_OVERLAP[cls]
    no_dontcare = np.zeros(len(dt), dtype=bool)
    curves: dict[str, list[PrCurve]] = {metric: [] for metric in METRICS}
    num_counted = np.zeros(len(DIFFICULTIES), dtype=np.int64)
    for metric in METRICS:
        above = np.flatnonzero(overlaps.by_metric[metric] > min_overlap)
        for level_index, level in enumerate(DIFFICULTIES):
            problem = MatchProblem(
                edge_gt=pair_gt[above],
                edge_det=pair_dt[above],
                edge_overlap=overlaps.by_metric[metric][above],
                edge_similarity=similarity[above],
                gt_flags=gt_flags(gt.names_lower, gt.truncated, gt.occluded, gt.bbox, cls, level),
                gt_frame=gt.frame,
                det_flags=detection_flags(dt.names_lower, dt.bbox, cls, level),
                det_score=dt.score,
                det_on_dontcare=dontcare_share > min_overlap if metric == "bbox" else no_dontcare,
            )
            matcher = GreedyMatcher(problem)
            thresholds = score_thresholds(matcher.true_positive_scores(), matcher.num_counted_gt)
            curves[metric].append(pr_curve(matcher.counts(thresholds)))
            num_counted[level_index] = matcher.num_counted_gt
    if with_aos:
        curves["aos"] = curves["bbox"]
    return curves, num_counted


def evaluate_kitti(
    gt: Sequence[KittiLabels],
    dt: Sequence[KittiLabels],
    classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
) -> KittiEvalResult:
    """Evaluate detections ``dt`` (with scores) against ground truth ``gt``, frame by frame.

    Frames without ground truth or without detections are fine; a class with no counted ground
    truth at some difficulty gets AP 0 there, as in the devkit.
    """
    if len(gt) != len(dt):
        raise EvaluationError(
            f"ground truth has {len(gt)} frames but detections have {len(dt)}; "
            "pass one (possibly empty) KittiLabels per frame for both"
        )
    canonical = _canonical_classes(classes)
    gt_flat = flatten_labels(gt, "ground truth")
    dt_flat = flatten_labels(dt, "detections")
    with_aos = not bool(np.any(dt_flat.alpha == UNKNOWN_ALPHA))
    if not with_aos:
        logger.warning("some detections have alpha = -10 (unknown): AOS is not computed")
    is_dontcare = gt_flat.names_lower == DONTCARE
    dontcare_share = dontcare_overlap_per_detection(
        dt_flat.frame, dt_flat.bbox, gt_flat.frame[is_dontcare], gt_flat.bbox[is_dontcare],
        len(gt),
    )
    precision: dict[str, dict[str, np.ndarray]] = {}
    recall: dict[str, dict[str, np.ndarray]] = {}
    num_counted_gt: dict[str, np.ndarray] = {}
    for cls in canonical:
        curves, num_counted_gt[cls] = _evaluate_class(
            gt_flat, dt_flat, cls, dontcare_share, with_aos
        )
        precision[cls] = {
            metric: np.stack(
                [c.orientation_similarity if metric == "aos" else c.precision for c in per_level]
            )
            for metric, per_level in curves.items()
        }
        recall[cls] = {metric: np.stack([c.recall for c in curves[metric]]) for metric in METRICS}
        if not np.all(num_counted_gt[cls]):
            logger.warning("no counted %s ground truth at some difficulty (%s): AP there is 0",
                           cls, num_counted_gt[cls].tolist())
    return KittiEvalResult(
        classes=canonical,
        precision=precision,
        recall=recall,
        num_counted_gt=num_counted_gt,
        min_overlap={cls: CLASS_MIN_OVERLAP[cls] for cls in canonical},
        num_frames=len(gt),
    )
