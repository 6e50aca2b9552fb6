"""KITTI label_2 files: one object per line, 15 fields plus an optional score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class KittiLabels:
    """All objects of one frame as arrays (N objects).

    ``boxes_cam`` is (N, 7) ``[x, y, z, l, h, w, ry]`` in the rectified camera frame with
    (x, y, z) the bottom centre, exactly as KITTI stores location/dimensions/rotation_y.
    """

    names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U16"))  # (N,) str
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # (N,)
    occluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,)
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # (N,)
    bbox: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))  # (N, 4)
    boxes_cam: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), np.float64))
    score: np.ndarray | None = None  # (N,) for predictions, None for ground truth

    def __len__(self) -> int:
        return int(len(self.names))
