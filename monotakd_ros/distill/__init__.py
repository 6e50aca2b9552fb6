"""Distillation and detection losses of the teacher, TA and student stages."""

from monotakd_ros.distill.config import (
    DetectionLossWeights,
    DistillConfig,
    DistillMode,
    distill_preset,
)
from monotakd_ros.distill.losses import LossTerms, detector_losses, student_losses

__all__ = [
    "DetectionLossWeights",
    "DistillConfig",
    "DistillMode",
    "LossTerms",
    "detector_losses",
    "distill_preset",
    "student_losses",
]
