"""Inference: a trained student checkpoint turned into camera-frame detections of one image."""

from monotakd_ros.inference.predictor import CameraDetections, StudentPredictor

__all__ = ["CameraDetections", "StudentPredictor"]
