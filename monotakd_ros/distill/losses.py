"""Total losses of each training stage, as typed, already-weighted terms.

- teacher / TA stages: :func:`detector_losses` (GT detection loss only);
- student stage: :func:`student_losses`, the GT terms where labels exist plus the distillation
  terms switched on in :class:`DistillConfig` (targets from a frozen teacher and TA).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import torch

from monotakd_ros.distill.config import DetectionLossWeights, DistillConfig
from monotakd_ros.distill.feature_distill import (
    cmkd_loss,
    cmrd_loss,
    cmrd_target,
    foreground_cells,
    imd_loss,
)
from monotakd_ros.distill.response_distill import response_loss
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import DepthBinsConfig
from monotakd_ros.models.detection_loss import depth_supervision_loss, detection_loss
from monotakd_ros.models.outputs import CameraDetectorOutput, HeadOutput, TeacherOutput
from monotakd_ros.models.target_assigner import AnchorTargets
from monotakd_ros.models.trunks import STRIDE

T = TypeVar("T")


@dataclass
class LossTerms:
    """Weighted loss terms of one step; a term that is switched off stays None."""

    det_cls: torch.Tensor | None = None
    det_box: torch.Tensor | None = None
    det_dir: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    imd: torch.Tensor | None = None
    cmrd: torch.Tensor | None = None
    cmkd: torch.Tensor | None = None
    resp_cls: torch.Tensor | None = None
    resp_box: torch.Tensor | None = None
    resp_dir: torch.Tensor | None = None

    def present(self) -> dict[str, torch.Tensor]:
        """The terms that were computed, by field name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    @property
    def total(self) -> torch.Tensor:
        """Sum of the present terms (raises when none was computed)."""
        terms = list(self.present().values())
        if not terms:
            raise ValueError("no loss term was computed: every weight is zero or lacks inputs")
        return torch.stack(terms).sum()

    def scalars(self) -> dict[str, float]:
        """Plain floats for logging, including ``total``."""
        values = {name: float(term.detach()) for name, term in self.present().items()}
        values["total"] = sum(values.values())
        return values


def _add_detection(terms: LossTerms, head: HeadOutput, targets: AnchorTargets,
                   weights: DetectionLossWeights, scale: float = 1.0) -> None:
    det = detection_loss(head, targets, weights)
    terms.det_cls = scale * weights.cls_weight * det.cls
    terms.det_box = scale * weights.box_weight * det.box
    terms.det_dir = scale * weights.dir_weight * det.dir


def detector_losses(head: HeadOutput, targets: AnchorTargets,
                    weights: DetectionLossWeights) -> LossTerms:
    """GT detection loss of the teacher or the TA stage."""
    terms = LossTerms()
    _add_detection(terms, head, targets, weights)
    return terms


def _given(value: T | None, message: str) -> T:
    """``value``, or a ConfigError when a switched-on term lacks its input."""
    if value is None:
        raise ConfigError(message)
    return value


def student_losses(cfg: DistillConfig, student: CameraDetectorOutput, *,
                   targets: AnchorTargets | None = None, teacher: TeacherOutput | None = None,
                   assistant: CameraDetectorOutput | None = None,
                   depth_maps: torch.Tensor | None = None,
                   depth_bins: DepthBinsConfig | None = None,
                   object_cells: torch.Tensor | None = None) -> LossTerms:
    """Every student term switched on in ``cfg``; GT terms only when ``targets`` is given.

    ``object_cells`` (B, h, w) bool marks the feature cells inside a labelled object's 2D box
    (``models.object_cells``); needed when ``cfg.depth_foreground_weight`` > 0.
    """
    terms = LossTerms()
    features = student.features
    need_ta = "distill.imd_weight/cmrd_weight > 0 need the TA output"
    need_teacher = "distill cmrd/cmkd/response weights > 0 need the teacher output"
    if targets is not None and cfg.gt_weight > 0:
        _add_detection(terms, student.head, targets, cfg.detection, cfg.gt_weight)
    if cfg.depth_weight > 0:
        message = "distill.depth_weight > 0 needs depth maps, depth bins and predicted depth"
        cell_weights = None
        if cfg.depth_foreground_weight > 0:
            foreground = _given(object_cells, "distill.depth_foreground_weight > 0 needs the "
                                              "object cells of the batch")
            cell_weights = 1.0 + cfg.depth_foreground_weight * foreground.float()
        terms.depth = cfg.depth_weight * depth_supervision_loss(
            _given(features.depth_logits, message), _given(depth_maps, message), STRIDE,
            _given(depth_bins, message), cell_weights)
    if cfg.imd_weight > 0:
        ta = _given(assistant, need_ta)
        terms.imd = cfg.imd_weight * imd_loss(features.bev_visual, ta.features.bev_visual,
                                              cfg.normalize_features)
    if cfg.cmrd_weight > 0:
        ta, lidar = _given(assistant, need_ta), _given(teacher, need_teacher)
        residual = cmrd_target(lidar.features.bev, ta.features.bev_visual,
                               cfg.cmrd_threshold_ratio, cfg.normalize_features, cfg.cmrd_signed)
        weights = None
        if cfg.cmrd_foreground_weight > 0:
            foreground = foreground_cells(lidar.head.cls_logits, residual.shape[-2:],
                                          cfg.response_score_threshold)
            weights = 1.0 + cfg.cmrd_foreground_weight * foreground
        terms.cmrd = cfg.cmrd_weight * cmrd_loss(features.bev_spatial, residual, weights)
    if cfg.cmkd_weight > 0:
        lidar = _given(teacher, need_teacher)
        terms.cmkd = cfg.cmkd_weight * cmkd_loss(features.bev_visual, lidar.features.bev,
                                                 cfg.normalize_features)
    if cfg.uses_response:
        lidar = _given(teacher, need_teacher)
        response = response_loss(student.head, lidar.head, cfg.response_score_threshold,
                                 cfg.detection.smooth_l1_beta)
        terms.resp_cls = cfg.response_cls_weight * response.cls
        terms.resp_box = cfg.response_box_weight * response.box
        terms.resp_dir = cfg.response_dir_weight * response.dir
    return terms
