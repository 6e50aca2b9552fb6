"""KITTI difficulty levels, class thresholds and the rules for what counts and what is ignored.

Every object gets one of three flags for a given (class, difficulty), as the official devkit does:

- ``COUNTED`` (0): takes part in the evaluation (a GT adds to the recall denominator, an unmatched
  detection is a false positive);
- ``IGNORED`` (1): may absorb a match but never counts as TP, FP or FN (GT of a neighbouring class
  or outside the difficulty, detection smaller than the level's minimum height);
- ``UNRELATED`` (-1): another class; never looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COUNTED = 0
IGNORED = 1
UNRELATED = -1

DONTCARE = "dontcare"


@dataclass(frozen=True)
class DifficultyLevel:
    """One KITTI difficulty: which ground truth boxes are hard enough to count."""

    name: str
    min_height_px: float
    max_occlusion: int
    max_truncation: float


DIFFICULTIES: tuple[DifficultyLevel, ...] = (
    DifficultyLevel("Easy", 40.0, 0, 0.15),
    DifficultyLevel("Moderate", 25.0, 1, 0.30),
    DifficultyLevel("Hard", 25.0, 2, 0.50),
)

# Minimum overlap of a true positive; the devkit uses the same value for 2D, BEV and 3D.
CLASS_MIN_OVERLAP: dict[str, float] = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}

# Ground truth of a neighbouring class absorbs detections without being a miss when unmatched.
NEIGHBOUR_CLASSES: dict[str, tuple[str, ...]] = {
    "Car": ("Van",),
    "Pedestrian": ("Person_sitting",),
    "Cyclist": (),
}

EVALUATED_CLASSES: tuple[str, ...] = tuple(CLASS_MIN_OVERLAP)


def box_heights_px(bbox: np.ndarray) -> np.ndarray:
    """(N, 4) image boxes ``[x1, y1, x2, y2]`` -> (N,) heights in pixels."""
    return bbox[:, 3] - bbox[:, 1]


def gt_class_flags(names_lower: np.ndarray, cls: str) -> np.ndarray:
    """(N,) ground truth flags by class alone: COUNTED (same), IGNORED (neighbour), UNRELATED."""
    flags = np.full(len(names_lower), UNRELATED, dtype=np.int8)
    for neighbour in NEIGHBOUR_CLASSES[cls]:
        flags[names_lower == neighbour.lower()] = IGNORED
    flags[names_lower == cls.lower()] = COUNTED
    return flags


def gt_flags(
    names_lower: np.ndarray,
    truncated: np.ndarray,
    occluded: np.ndarray,
    bbox: np.ndarray,
    cls: str,
    level: DifficultyLevel,
) -> np.ndarray:
    """(N,) COUNTED/IGNORED/UNRELATED flags of ground truth for one class and difficulty."""
    flags = gt_class_flags(names_lower, cls)
    # The devkit drops boxes whose height equals the minimum (<=), unlike detections (<).
    too_hard = (
        (occluded > level.max_occlusion)
        | (truncated > level.max_truncation)
        | (box_heights_px(bbox) <= level.min_height_px)
    )
    flags[(flags == COUNTED) & too_hard] = IGNORED
    return flags


def detection_flags(
    names_lower: np.ndarray, bbox: np.ndarray, cls: str, level: DifficultyLevel
) -> np.ndarray:
    """(N,) flags of detections for one class and difficulty.

    A box lower than the level's minimum height is IGNORED whatever its class: the devkit (and
    OpenPCDet after it) lets such a detection absorb a ground truth match, so we do the same.
    """
    flags = np.where(names_lower == cls.lower(), COUNTED, UNRELATED).astype(np.int8)
    flags[np.abs(box_heights_px(bbox)) < level.min_height_px] = IGNORED
    return flags


def may_take_part(names_lower: np.ndarray, bbox: np.ndarray, cls: str) -> np.ndarray:
    """(N,) detections that are not UNRELATED to ``cls`` at one difficulty level at least."""
    tallest_min_height_px = max(level.min_height_px for level in DIFFICULTIES)
    return (names_lower == cls.lower()) | (np.abs(box_heights_px(bbox)) < tallest_min_height_px)
