"""Loss configuration: detection weights and the distillation switches, with ablation presets.

Presets (``distill_preset``); "response" = the three response terms, "GT" = the detection loss
on labelled frames. docs/method.md gives the reasons for every deviation from upstream.

- ``upstream``: the released upstream student loss: 0.2 · CMRD + response at upstream weights
  (QFL 2.0, Smooth-L1 2.0, direction 0.4), no GT term (upstream's IMD is detached: weight 0).
- ``takd``: the project's full MonoTAKD: IMD + 0.2 · CMRD + response (1.0, 1.0, 0.2) + GT.
- the factorial around it, response and GT always on: ``response`` (neither feature term),
  ``imd_response`` (TAKD without CMRD), ``cmrd_response`` (TAKD without IMD), ``takd``.
- ``none``: GT detection loss only (a plain monocular student).
- ``imd``: IMD + GT with no response terms (the first release's "IMD only" row).
- ``cmkd``: CMKD as published, no TA: raw MSE(F_S, F_T) at upstream's weight 32 + response at
  upstream weights + GT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.detection_loss import DetectionLossWeights

DistillMode = Literal["none", "cmkd", "imd", "takd", "upstream", "response", "imd_response",
                      "cmrd_response"]
DISTILL_MODES: tuple[str, ...] = DistillMode.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DistillConfig:
    """Weights of every student loss term; a weight of 0 switches the term off."""

    detection: DetectionLossWeights = field(default_factory=DetectionLossWeights)
    gt_weight: float = bounded(1.0, ge=0)  # scales the GT detection terms; 0 = teacher only
    # optional CE on LiDAR depth bins (CaDDN-style); needs depth maps
    depth_weight: float = bounded(0.0, ge=0)
    # extra depth-loss weight on cells inside a labelled object's projected 2D box: per-cell
    # weight 1 + w (CaDDN's 13 : 1 is w = 12), the CE averaged over the weights
    depth_foreground_weight: float = bounded(0.0, ge=0)
    imd_weight: float = bounded(1.0, ge=0)  # MSE(F_S, F_TA)
    cmrd_weight: float = bounded(0.2, ge=0)  # MSE(F_S_spa, R), R = |F_T - F_TA| thresholded
    # R entries below ratio · max(R) (per sample) → 0
    cmrd_threshold_ratio: float = bounded(0.6, ge=0, lt=1)
    cmrd_signed: bool = False  # R = F_T - F_TA (threshold on |R|) instead of |F_T - F_TA|
    # extra CMRD weight on cells the teacher scores above response_score_threshold:
    # per-cell weight 1 + w·foreground, the MSE averaged over the weights
    cmrd_foreground_weight: float = bounded(0.0, ge=0)
    cmkd_weight: float = bounded(0.0, ge=0)  # MSE(F_S, F_T), CMKD-style (no TA)
    normalize_features: bool = True  # compare maps each divided by its own RMS
    response_cls_weight: float = bounded(1.0, ge=0)  # quality focal loss vs teacher scores
    # Smooth-L1 vs teacher residuals where its score > response_score_threshold
    response_box_weight: float = bounded(1.0, ge=0)
    response_dir_weight: float = bounded(0.2, ge=0)  # soft CE vs the teacher's directions
    response_score_threshold: float = bounded(0.1, ge=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self, "distill")
        if self.depth_foreground_weight > 0 and self.depth_weight == 0:
            raise ConfigError("distill.depth_foreground_weight > 0 weighs the depth loss, "
                              "which is off: set distill.depth_weight > 0 too")

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


_NO_RESPONSE = {"response_cls_weight": 0.0, "response_box_weight": 0.0,
                "response_dir_weight": 0.0}
_UPSTREAM_RESPONSE = {"response_cls_weight": 2.0, "response_box_weight": 2.0,
                      "response_dir_weight": 0.4}
_NO_FEATURES = {"imd_weight": 0.0, "cmrd_weight": 0.0, "cmkd_weight": 0.0}
_PRESETS: dict[str, dict[str, float | bool]] = {
    "upstream": {**_NO_FEATURES, "cmrd_weight": 0.2, "gt_weight": 0.0, **_UPSTREAM_RESPONSE},
    "takd": {**_NO_FEATURES, "imd_weight": 1.0, "cmrd_weight": 0.2},
    "imd_response": {**_NO_FEATURES, "imd_weight": 1.0},
    "cmrd_response": {**_NO_FEATURES, "cmrd_weight": 0.2},
    "response": {**_NO_FEATURES},
    "none": {**_NO_FEATURES, **_NO_RESPONSE},
    "imd": {**_NO_FEATURES, "imd_weight": 1.0, **_NO_RESPONSE},
    "cmkd": {**_NO_FEATURES, "cmkd_weight": 32.0, "normalize_features": False,
             **_UPSTREAM_RESPONSE},
}


def distill_preset(mode: DistillMode, **overrides: Any) -> DistillConfig:
    """The ablation named ``mode``, with optional field overrides."""
    if mode not in _PRESETS:
        raise ConfigError(f"distill mode {mode!r} is not one of {sorted(_PRESETS)}")
    return DistillConfig(**{**_PRESETS[mode], **overrides})
