"""Labelled replay: a few labelled frames join every distillation step.

Fine-tuning on unlabelled frames alone lets the student drift away from what its labelled
training taught it (the head then only follows the teacher's soft predictions, and BatchNorm
statistics follow the new frames). Mixing labelled frames into every step keeps the ground-truth
detection loss acting, as joint labelled + unlabelled training does in MonoTAKD and CMKD.

The frames of step ``k`` depend only on ``(seed, k)``, so a resumed run draws the same frames
as an uninterrupted one without storing any state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monotakd_ros.data.batch import FrameSample
from monotakd_ros.data.datasets import KittiFrameDataset
from monotakd_ros.errors import ConfigError
from monotakd_ros.model_io.input_spec import InputSpec


class LabelledReplay:
    """Draws ``per_step`` distinct labelled frames (with LiDAR) of a KITTI object split."""

    def __init__(self, root: Path, split: str, spec: InputSpec, per_step: int,
                 seed: int) -> None:
        if per_step < 1:
            raise ConfigError(f"labelled_per_step: must be >= 1 with labelled_data, got "
                              f"{per_step}")
        self.dataset = KittiFrameDataset(Path(root), split or None, spec, with_lidar=True,
                                         with_labels=True)
        if len(self.dataset) < per_step:
            raise ConfigError(f"labelled_data {root} (split {split!r}): {len(self.dataset)} "
                              f"frames, fewer than labelled_per_step = {per_step}")
        self.per_step = per_step
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def indices_for_step(self, step: int) -> list[int]:
        """Dataset indices mixed into optimiser step ``step`` (0-based)."""
        rng = np.random.default_rng([self.seed, step])
        return [int(i) for i in rng.choice(len(self.dataset), self.per_step, replace=False)]

    def samples_for_step(self, step: int) -> list[FrameSample]:
        """The labelled samples of optimiser step ``step``."""
        return [self.dataset[i] for i in self.indices_for_step(step)]
