"""Repeat-factor sampling: frames holding rare classes appear more often in an epoch.

The rule of LVIS (Gupta et al., 2019): with ``f_c`` the share of training frames that hold
class ``c``, the class repeat factor is ``r_c = max(1, sqrt(t / f_c))`` for a threshold ``t``,
and a frame's factor is the largest ``r_c`` of the classes it holds (1 for a frame without any).
Factors become whole repeats once per run, by rounding each fractional part up with that
probability under the run's seed, so an epoch's length is fixed and resumable. Augmentation
draws are seeded by (seed, epoch, frame), so the copies of a frame in one epoch share them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset

LOG = logging.getLogger(__name__)


def frame_repeat_factors(frame_classes: Sequence[frozenset[str]], class_names: Sequence[str],
                         threshold: float) -> np.ndarray:
    """(N,) float repeat factor of each frame; all 1 when ``threshold`` is 0."""
    if threshold <= 0.0 or not frame_classes:
        return np.ones(len(frame_classes))
    class_factor = {}
    for name in class_names:
        share = sum(name in classes for classes in frame_classes) / len(frame_classes)
        class_factor[name] = max(1.0, math.sqrt(threshold / share)) if share > 0 else 1.0
    return np.array([max((class_factor[c] for c in classes if c in class_factor), default=1.0)
                     for classes in frame_classes])


def integer_repeats(factors: np.ndarray, seed: int) -> np.ndarray:
    """(N,) int64: floor(factor), plus 1 with probability equal to the fractional part."""
    whole = np.floor(factors)
    draws = np.random.default_rng([seed, 0x5EED]).random(len(factors))
    return (whole + (draws < factors - whole)).astype(np.int64)


def split_repeats(data_root: Path, frame_ids: Sequence[str], class_names: Sequence[str],
                  threshold: float, seed: int, unlabelled_frames: int = 0) -> np.ndarray:
    """Whole repeats of a labelled split's frames (label files read), then 1 per extra frame."""
    kitti = KittiObjectDataset(data_root)
    frame_classes = [frozenset(str(n) for n in kitti.labels(f).names) for f in frame_ids]
    factors = frame_repeat_factors(frame_classes, class_names, threshold)
    repeats = np.concatenate([integer_repeats(factors, seed),
                              np.ones(unlabelled_frames, dtype=np.int64)])
    for name in class_names:
        holding = [i for i, classes in enumerate(frame_classes) if name in classes]
        LOG.info("repeat factors (t = %g): %s in %d of %d frames, %d of %d sampled places",
                 threshold, name, len(holding), len(frame_ids), int(repeats[holding].sum()),
                 int(repeats.sum()))
    return repeats
