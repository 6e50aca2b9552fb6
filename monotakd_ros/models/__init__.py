"""Models: image trunks, depth lifting, LiDAR teacher, camera student/TA, anchor head."""

from monotakd_ros.models.build import build_assistant, build_student, build_teacher, freeze
from monotakd_ros.models.camera_detector import CameraBevDetector
from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.models.outputs import (
    BevFeatures,
    CameraDetectorOutput,
    CameraFeatures,
    Detections,
    HeadOutput,
    TeacherOutput,
)
from monotakd_ros.models.teacher import LidarTeacher

__all__ = [
    "BevFeatures",
    "CameraBevDetector",
    "CameraDetectorOutput",
    "CameraFeatures",
    "Detections",
    "HeadOutput",
    "LidarTeacher",
    "ModelConfig",
    "TeacherOutput",
    "build_assistant",
    "build_student",
    "build_teacher",
    "freeze",
    "load_model_config",
]
