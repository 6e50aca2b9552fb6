"""Loss configuration: detection weights and the distillation switches, with ablation presets.

Presets (``distill_preset``), the ablations of the paper:

- ``none``: GT detection loss only (a plain monocular student).
- ``cmkd``: CMKD-style, no TA: MSE(F_S, F_T) plus response distillation from the teacher.
- ``imd``: IMD only: MSE(F_S, F_TA) plus the GT detection loss.
- ``takd``: full MonoTAKD: IMD + 0.2 · CMRD + response distillation (+ GT when labelled).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from monotakd_ros.errors import ConfigError

DistillMode = Literal["none", "cmkd", "imd", "takd"]


@dataclass(frozen=True)
class DetectionLossWeights:
    """GT detection loss: sigmoid focal on classes, Smooth-L1 on residuals, CE on direction."""

    cls_weight: float = 2.0
    box_weight: float = 2.0
    dir_weight: float = 0.4
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    smooth_l1_beta: float = 1.0 / 9.0

    def __post_init__(self) -> None:
        _non_negative(self, "detection")


@dataclass(frozen=True)
class DistillConfig:
    """Weights of every student loss term; a weight of 0 switches the term off."""

    detection: DetectionLossWeights = field(default_factory=DetectionLossWeights)
    depth_weight: float = 0.0  # optional CE on LiDAR depth bins (CaDDN-style); needs depth maps
    imd_weight: float = 1.0  # MSE(F_S, F_TA)
    cmrd_weight: float = 0.2  # MSE(F_S_spa, R), R = |F_T - F_TA| thresholded
    cmrd_threshold_ratio: float = 0.6  # R entries below ratio · max(R) (per sample) → 0
    cmkd_weight: float = 0.0  # MSE(F_S, F_T), CMKD-style (no TA)
    normalize_features: bool = True  # compare maps each divided by its own RMS
    response_cls_weight: float = 1.0  # quality focal loss vs the teacher's sigmoid scores
    response_box_weight: float = 1.0  # Smooth-L1 vs teacher residuals where its score > thr
    response_dir_weight: float = 0.2  # soft CE vs the teacher's direction distribution
    response_score_threshold: float = 0.1

    def __post_init__(self) -> None:
        _non_negative(self, "distill")
        if not 0.0 <= self.cmrd_threshold_ratio < 1.0:
            raise ConfigError(f"distill.cmrd_threshold_ratio: must lie in [0, 1), got "
                              f"{self.cmrd_threshold_ratio}")
        if not 0.0 <= self.response_score_threshold < 1.0:
            raise ConfigError(f"distill.response_score_threshold: must lie in [0, 1), got "
                              f"{self.response_score_threshold}")

    @property
    def uses_response(self) -> bool:
        """Whether any response-distillation term is on."""
        return (self.response_cls_weight > 0 or self.response_box_weight > 0
                or self.response_dir_weight > 0)

    @property
    def needs_teacher(self) -> bool:
        """Whether the LiDAR teacher must run for these losses."""
        return self.cmrd_weight > 0 or self.cmkd_weight > 0 or self.uses_response

    @property
    def needs_assistant(self) -> bool:
        """Whether the TA must run for these losses."""
        return self.imd_weight > 0 or self.cmrd_weight > 0


def _non_negative(cfg: Any, where: str) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and value < 0:
            raise ConfigError(f"{where}.{f.name}: must be >= 0, got {value}")


_NO_RESPONSE = {"response_cls_weight": 0.0, "response_box_weight": 0.0,
                "response_dir_weight": 0.0}
_PRESETS: dict[str, dict[str, float]] = {
    "none": {"imd_weight": 0.0, "cmrd_weight": 0.0, "cmkd_weight": 0.0, **_NO_RESPONSE},
    "cmkd": {"imd_weight": 0.0, "cmrd_weight": 0.0, "cmkd_weight": 1.0},
    "imd": {"imd_weight": 1.0, "cmrd_weight": 0.0, "cmkd_weight": 0.0, **_NO_RESPONSE},
    "takd": {"imd_weight": 1.0, "cmrd_weight": 0.2, "cmkd_weight": 0.0},
}


def distill_preset(mode: DistillMode, **overrides: Any) -> DistillConfig:
    """The ablation named ``mode``, with optional field overrides."""
    if mode not in _PRESETS:
        raise ConfigError(f"distill mode {mode!r} is not one of {sorted(_PRESETS)}")
    return DistillConfig(**{**_PRESETS[mode], **overrides})
