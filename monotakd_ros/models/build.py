"""Assemble the three models of MonoTAKD from one :class:`ModelConfig`."""

from __future__ import annotations

from torch import nn

from monotakd_ros.models.camera_detector import CameraBevDetector
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.models.teacher import LidarTeacher


def build_teacher(cfg: ModelConfig) -> LidarTeacher:
    """PointPillars-style LiDAR teacher producing F_T."""
    return LidarTeacher(cfg)


def build_assistant(cfg: ModelConfig) -> CameraBevDetector:
    """Teaching assistant: the camera detector fed with one-hot LiDAR depth (F_TA)."""
    return CameraBevDetector(cfg, depth_source="lidar")


def build_student(cfg: ModelConfig) -> CameraBevDetector:
    """Monocular student: predicts its depth distribution (F_S, F_S_spa)."""
    return CameraBevDetector(cfg, depth_source="predicted")


def freeze(model: nn.Module) -> nn.Module:
    """Frozen target model for distillation: eval mode and no parameter gradients."""
    model.eval()
    model.requires_grad_(False)
    return model
