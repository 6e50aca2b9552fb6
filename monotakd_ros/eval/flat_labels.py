"""All frames' labels concatenated into flat arrays, so the evaluator can vectorise over frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels, concat_labels
from monotakd_ros.errors import EvaluationError


@dataclass(frozen=True)
class FlatLabels:
    """Objects of many frames (N in total), in frame order and file order within a frame."""

    frame: np.ndarray  # (N,) int64 index of the frame each object belongs to
    names_lower: np.ndarray  # (N,) str, lower case (the devkit compares classes case-blind)
    truncated: np.ndarray  # (N,)
    occluded: np.ndarray  # (N,)
    alpha: np.ndarray  # (N,) observation angle in radians
    bbox: np.ndarray  # (N, 4) image box [x1, y1, x2, y2] in pixels
    boxes_cam: np.ndarray  # (N, 7) [x, y, z, l, h, w, ry], bottom centre, camera frame
    score: np.ndarray  # (N,) detection score; zeros for ground truth
    num_frames: int

    def __len__(self) -> int:
        return int(len(self.frame))


def flatten_labels(frames: Sequence[KittiLabels], role: str) -> FlatLabels:
    """Concatenate ``frames``; ``role`` is "ground truth" or "detections" (these need scores)."""
    needs_score = role == "detections"
    for index, labels in enumerate(frames):
        if needs_score and len(labels) and labels.score is None:
            raise EvaluationError(
                f"detections of frame {index} have no score column (16th field of a label line)"
            )
        for name in ("truncated", "occluded", "alpha", "bbox", "boxes_cam"):
            if len(np.asarray(getattr(labels, name))) != len(labels):
                raise EvaluationError(
                    f"{role} of frame {index}: labels.{name} has "
                    f"{len(np.asarray(getattr(labels, name)))} rows for {len(labels)} names"
                )
    merged = concat_labels(frames) if needs_score else concat_labels(
        [KittiLabels(labels.names, labels.truncated, labels.occluded, labels.alpha, labels.bbox,
                     labels.boxes_cam) for labels in frames]
    )
    counts = np.array([len(labels) for labels in frames], dtype=np.int64)
    num = int(counts.sum())
    score = merged.score if merged.score is not None else np.zeros(num)
    return FlatLabels(
        frame=np.repeat(np.arange(len(frames), dtype=np.int64), counts),
        names_lower=np.char.lower(np.asarray(merged.names, dtype=np.str_)),
        truncated=np.asarray(merged.truncated, dtype=np.float64),
        occluded=np.asarray(merged.occluded, dtype=np.int64),
        alpha=np.asarray(merged.alpha, dtype=np.float64),
        bbox=np.asarray(merged.bbox, dtype=np.float64).reshape(num, 4),
        boxes_cam=np.asarray(merged.boxes_cam, dtype=np.float64).reshape(num, 7),
        score=np.asarray(score, dtype=np.float64),
        num_frames=len(frames),
    )
