"""Inference: a trained student checkpoint turned into camera-frame detections of one image."""

from monotakd_ros.inference.predictor import CameraDetections, StudentPredictor
from monotakd_ros.inference.random_checkpoint import make_random_student_checkpoint

__all__ = ["CameraDetections", "StudentPredictor", "make_random_student_checkpoint"]
