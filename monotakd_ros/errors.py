"""Exception hierarchy of monotakd_ros: every error a user can cause names what went wrong."""

from __future__ import annotations


class MonotakdError(Exception):
    """Base class of every error raised on purpose by monotakd_ros."""


class ConfigError(MonotakdError):
    """A configuration file or parameter is invalid (names the key and the bad value)."""


class KittiFormatError(MonotakdError):
    """A KITTI file is malformed (names the file and, where known, the line)."""


class CalibrationError(MonotakdError):
    """A calibration is missing keys or holds unusable values."""


class CheckpointError(MonotakdError):
    """A checkpoint is missing, corrupt or incompatible with the requested model."""


class TrainingError(MonotakdError):
    """Training cannot go on (e.g. too many non-finite steps in a row); names the cause."""


class BagError(MonotakdError):
    """A rosbag is unreadable, corrupt or lacks the required topics."""


class ImageEncodingError(MonotakdError):
    """An image message has an unsupported encoding or inconsistent sizes."""


class CameraInfoError(MonotakdError):
    """A CameraInfo message is missing, all-zero or does not fit its image."""


class DatasetError(MonotakdError):
    """A dataset directory is incomplete or inconsistent."""


class GeometryError(MonotakdError):
    """Boxes, poses or transforms have unusable shapes or values (names the argument)."""


class EvaluationError(MonotakdError):
    """Evaluation inputs are inconsistent (frame counts, missing scores, unknown classes)."""
