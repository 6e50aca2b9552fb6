"""Score thresholds, precision/recall curves and R40/R11 average precision, as the KITTI devkit.

The devkit samples the precision-recall curve at 41 recall positions 0, 1/40, ..., 1. It picks,
from the sorted scores of all true positives, the score whose recall is nearest to each position,
counts TP/FP/FN at those scores, and replaces each precision by the best precision at any higher
recall (the usual interpolation). R40 averages positions 1/40..1, R11 positions 0, 0.1, ..., 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.matching import PrCounts

NUM_SAMPLE_POINTS = 41  # recall 0, 1/40, ..., 1
R11_POSITIONS = slice(0, NUM_SAMPLE_POINTS, 4)  # recall 0, 0.1, ..., 1.0
R40_POSITIONS = slice(1, NUM_SAMPLE_POINTS)  # recall 1/40, ..., 1.0


def score_thresholds(tp_scores: np.ndarray, num_counted_gt: int) -> np.ndarray:
    """(T <= 41,) descending scores whose recall best approximates each sampled recall position.

    Walks the true positives from the highest score; at the i-th one the recall is
    (i + 1) / num_gt. A score is kept for the current target recall unless the next score's
    recall is strictly closer to the target; the last score is always kept. The float
    arithmetic follows the devkit exactly so that ties resolve the same way.
    """
    scores = np.sort(np.asarray(tp_scores, dtype=np.float64))[::-1]
    if num_counted_gt == 0 or len(scores) == 0:
        return np.zeros(0)
    rank = np.arange(len(scores))
    recall_here = (rank + 1) / num_counted_gt
    recall_next = np.where(rank < len(scores) - 1, (rank + 2) / num_counted_gt, recall_here)
    step = 1.0 / (NUM_SAMPLE_POINTS - 1.0)
    chosen: list[int] = []
    target = 0.0
    start = 0
    while start < len(scores):
        keep = ~((recall_next[start:] - target) < (target - recall_here[start:]))
        keep[-1] = True
        start += int(np.argmax(keep))  # the first rank the devkit does not skip
        chosen.append(start)
        start += 1
        target += step  # accumulated, not k * step, to round exactly as the devkit
    # More than 41 cannot happen when each TP has its own GT; keep the array shape regardless.
    return scores[chosen[:NUM_SAMPLE_POINTS]]


@dataclass(frozen=True)
class PrCurve:
    """Interpolated curves at the 41 recall positions (zero past the last threshold)."""

    precision: np.ndarray  # (41,)
    recall: np.ndarray  # (41,)
    orientation_similarity: np.ndarray  # (41,) AOS curve; meaningful for the 2D metric only


def _best_to_the_right(values: np.ndarray) -> np.ndarray:
    """Each entry replaced by the maximum of itself and every later entry."""
    return np.maximum.accumulate(values[::-1])[::-1]


def pr_curve(counts: PrCounts) -> PrCurve:
    """Interpolated precision, recall and AOS from the counts at the chosen thresholds."""
    num = len(counts.tp)
    precision, recall, similarity = (np.zeros(NUM_SAMPLE_POINTS) for _ in range(3))
    detected = (counts.tp + counts.fp).astype(np.float64)
    relevant = (counts.tp + counts.fn).astype(np.float64)
    # An empty denominator cannot occur at a TP's own score; 0 keeps a degenerate input finite.
    with np.errstate(divide="ignore", invalid="ignore"):
        precision[:num] = np.where(detected > 0, counts.tp / detected, 0.0)
        recall[:num] = np.where(relevant > 0, counts.tp / relevant, 0.0)
        similarity[:num] = np.where(detected > 0, counts.similarity / detected, 0.0)
    return PrCurve(
        precision=_best_to_the_right(precision),
        recall=_best_to_the_right(recall),
        orientation_similarity=_best_to_the_right(similarity),
    )


def average_precision_percent(curve: np.ndarray, recall_points: int) -> float:
    """AP in percent from a (41,) interpolated curve; ``recall_points`` is 40 or 11."""
    if recall_points == 40:
        return float(curve[R40_POSITIONS].sum() / 40.0 * 100.0)
    if recall_points == 11:
        return float(curve[R11_POSITIONS].sum() / 11.0 * 100.0)
    raise EvaluationError(f"recall_points must be 40 or 11, got {recall_points}")
