"""Settings of the detector node: one frozen dataclass; its ROS parameters come from it.

Names, types, defaults, descriptions and ranges are written once, in :class:`DetectorConfig`
(``dataclass_params`` turns them into declared parameters and builds the config back through
the strict loader). Choices are the tuples of the modules that act on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from rclpy.node import Node

from monotakd_ros.bags import kitti_topics as layout
from monotakd_ros.configuration import bounded, check_fields, described
from monotakd_ros.errors import ConfigError, GeometryError
from monotakd_ros.geometry.coord_frames import T_body_from_optical, rigid_transform
from monotakd_ros.inference.device import DEVICE_CHOICES
from monotakd_ros.inference.fast_paths import parse_network_path
from monotakd_ros.inference.predictor import CAMERA_MODES, StudentPredictor
from monotakd_ros.inference.virtual_camera import PLACEMENTS
from monotakd_ros.resources import default_model_path
from monotakd_ros.ros.dataclass_params import (
    ParameterSpec,
    config_from_node,
    declare_parameters,
    parameter_specs,
)
from monotakd_ros.ros.diagnostics import DiagnosticThresholds
from monotakd_ros.ros.param_checks import parameter_type_errors
from monotakd_ros.ros.spinning import EXECUTOR_CHOICES

NODE_NAME = "monotakd_detector"
Reliability = Literal["best_effort", "reliable"]
# Literal over the choice tuples of the modules that act on them: the choices are written once.
CameraMode = Literal[CAMERA_MODES]  # type: ignore[valid-type]
Placement = Literal[PLACEMENTS]  # type: ignore[valid-type]
ExecutorKind = Literal[EXECUTOR_CHOICES]  # type: ignore[valid-type]
_BODY_FROM_OPTICAL = tuple(float(v) for v in T_body_from_optical().ravel())


@dataclass(frozen=True)
class DetectorConfig:
    """Model, post-processing, topics, frames, outputs and diagnostics of the detector node."""

    model_path: Path | None = described(
        None, help="student checkpoint (directory or .safetensors); empty: the shipped "
        "models/default_student")
    device: str = described("auto", help=f"inference device: one of {list(DEVICE_CHOICES)} "
                            "or cuda:N")
    fp16: bool = described(False, help="run the network in float16 autocast (CUDA only; "
                           "ignored on the CPU)")
    network_path: str = described(
        "auto", help="network call: auto (CUDA: the fastest of half/cuda_graph/eager that "
        "passes parity with fp32, timed at configure; CPU: freeze when it agrees with eager), "
        "eager, freeze (TorchScript-frozen at the input size), or a '+'-joined set of half, "
        "compile, cuda_graph")
    cpu_threads: int = bounded(
        0, ge=0, help="torch CPU threads for the network; 0: OMP_NUM_THREADS if set, else "
        "every CPU the node may use (threads wait passively: OMP_WAIT_POLICY=PASSIVE)")
    executor: ExecutorKind = described(
        "single_threaded", help="ROS executor; events (rclpy's experimental C++ "
        "EventsExecutor) falls back to single_threaded where rclpy lacks it")
    score_threshold: float = bounded(0.3, ge=0, lt=1, help="minimum detection score")
    nms_iou: float = bounded(0.1, gt=0, le=1, help="BEV IoU above which rotated NMS "
                             "suppresses the weaker box")
    max_detections: int = bounded(100, ge=1, help="most boxes published per frame")
    image_topic: str = described(layout.IMAGE_TOPIC, help="rectified colour image (rgb8, "
                                 "bgr8, rgba8, bgra8 or mono8)")
    camera_info_topic: str = described(layout.CAMERA_INFO_TOPIC, help="CameraInfo of the "
                                       "image; its P (not K/D) is used")
    sync_slop_s: float = bounded(0.02, gt=0, help="largest stamp difference (s) pairing an "
                                 "Image with a CameraInfo")
    qos_reliability: Reliability = described(
        "best_effort", help="input QoS reliability: best_effort (sensor data; matches any "
        "publisher) or reliable")
    output_frame: str | None = described(
        None, help="body frame (x fwd, y left, z up) of the boxes: TF when available, else "
        "T_output_from_optical; not set: the image's optical frame")
    T_output_from_optical: tuple[float, ...] = described(
        _BODY_FROM_OPTICAL, help="row-major 4x4 static extrinsic optical -> output_frame, "
        "used without TF; default: the REP-103 optical -> body rotation")
    use_tf: bool = described(True, help="look output_frame up in TF when tf2_ros is "
                             "importable")
    publish_markers: bool = described(True, help="publish ~/markers (MarkerArray) for rviz")
    publish_debug_image: bool = described(False, help="publish ~/debug_image with the "
                                          "projected 3D boxes")
    marker_lifetime_s: float = bounded(0.5, ge=0, help="marker lifetime (s); 0: forever")
    log_throttle_s: float = bounded(5.0, gt=0, help="smallest interval (s) between repeats "
                                    "of one kind of warning")
    diagnostics_period_s: float = bounded(1.0, gt=0, help="period (s) of /diagnostics and of "
                                          "the input checks")
    diagnostics: DiagnosticThresholds = field(default_factory=DiagnosticThresholds)
    autostart: bool = described(True, help="when started standalone, configure and activate "
                                "at once")
    camera_mode: CameraMode = described(
        "virtual", help="input step: virtual (resample any camera to the training focal "
        "length and place its principal point) or fit_width (the training step: fit the "
        "width, keep the top rows)")
    virtual_camera_placement: Placement = described(
        "principal_point", help="where the virtual camera puts the image: principal_point, "
        "or horizon (horizon row, columns centred)")
    horizon_row_px: float | None = bounded(
        None, ge=0, help="horizon row (px) of a pitched camera for placement horizon; not "
        "set: P's principal row (a level camera)")
    class_ids: str | None = described(
        None, help="results[].hypothesis.class_id per checkpoint class, e.g. "
        "'Car:vehicle,Pedestrian:person'; unlisted classes (and not set): the lowercase class "
        "name (car, pedestrian, cyclist)")

    def __post_init__(self) -> None:
        check_fields(self, NODE_NAME)
        for name in ("image_topic", "camera_info_topic", "output_frame", "class_ids"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                unset = " (leave it unset instead)" if name in ("output_frame", "class_ids") \
                    else ""
                raise ConfigError(f"{NODE_NAME}.{name}: must not be empty{unset}")
        parse_network_path(self.network_path)
        parse_class_ids(self.class_ids)
        self.output_transform()  # a wrong extrinsic fails at configure, not on the first frame

    @property
    def reliable_input(self) -> bool:
        """Whether the input subscriptions are reliable (else best effort)."""
        return self.qos_reliability == "reliable"

    def checkpoint_path(self) -> Path:
        """The student checkpoint: ``model_path`` (``~`` expanded) or the shipped model."""
        return default_model_path() if self.model_path is None else self.model_path.expanduser()

    def published_class_ids(self, class_names: tuple[str, ...]) -> dict[str, str]:
        """Checkpoint class name -> published class_id (``class_ids``, else lowercase)."""
        return output_class_ids(parse_class_ids(self.class_ids), class_names)

    def output_transform(self) -> np.ndarray:
        """``T_output_from_optical`` as a checked rigid 4x4 matrix."""
        if len(self.T_output_from_optical) != 16:
            raise ConfigError(f"{NODE_NAME}.T_output_from_optical: needs 16 values (row-major "
                              f"4x4), got {len(self.T_output_from_optical)}")
        matrix = np.array(self.T_output_from_optical, dtype=np.float64).reshape(4, 4)
        try:
            return rigid_transform(matrix, "T_output_from_optical")
        except GeometryError as err:
            raise ConfigError(f"{NODE_NAME}.{err}") from err


# Names, types, defaults, descriptions and ranges, all from DetectorConfig.
PARAMETERS: list[ParameterSpec] = parameter_specs(DetectorConfig)


def declare_detector_parameters(node: Node) -> None:
    """Declare every parameter with its descriptor (call once, in ``__init__``)."""
    with parameter_type_errors(node.get_name()):
        declare_parameters(node, PARAMETERS)


def detector_config_from_node(node: Node) -> DetectorConfig:
    """The node's parameters as a checked config; ConfigError names the parameter and value."""
    return config_from_node(node, DetectorConfig, PARAMETERS)


def predictor_from_config(cfg: DetectorConfig) -> StudentPredictor:
    """The configured student, after setting torch's CPU threads from ``cpu_threads``."""
    torch.set_num_threads(torch_threads(cfg.cpu_threads))
    return StudentPredictor.from_checkpoint(
        cfg.checkpoint_path(), device=cfg.device, fp16=cfg.fp16,
        score_threshold=cfg.score_threshold, nms_iou=cfg.nms_iou,
        max_detections=cfg.max_detections, camera_mode=cfg.camera_mode,
        placement=cfg.virtual_camera_placement, horizon_row_px=cfg.horizon_row_px,
        network_path=cfg.network_path)


def torch_threads(requested: int) -> int:
    """Intra-op threads for torch from ``cpu_threads``; 0: OMP_NUM_THREADS, else every CPU."""
    if requested > 0:
        return requested
    from_environment = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_environment.isdigit() and int(from_environment) > 0:
        return int(from_environment)
    # With passive OpenMP waiting (set by the detector before torch loads) two threads on two
    # shared cores used no more CPU per frame than one and halved the network time
    # (docs/benchmarks.md); spinning threads would need fewer.
    return len(os.sched_getaffinity(0))


def executor_choice(node: Node) -> str:
    """The node's ``executor`` parameter, checked (``main`` reads it before any configure)."""
    choice = node.get_parameter("executor").value
    if choice not in EXECUTOR_CHOICES:
        raise ConfigError(f"{node.get_name()}.executor: {choice!r} is not one of "
                          f"{list(EXECUTOR_CHOICES)}")
    return str(choice)


def parse_class_ids(text: str | None) -> dict[str, str] | None:
    """'Car:vehicle, Pedestrian:person' -> {'Car': 'vehicle', ...}; None -> None (lowercase)."""
    if text is None or not text.strip():
        return None
    mapping: dict[str, str] = {}
    for entry in text.split(","):
        name, sep, class_id = (part.strip() for part in entry.partition(":"))
        if not (sep and name and class_id) or name in mapping:
            raise ConfigError(f"parameter class_ids: expected 'ClassName:class_id' entries "
                              f"separated by commas, each class once; got entry {entry!r} in "
                              f"{text!r}")
        mapping[name] = class_id
    return mapping


def output_class_ids(class_ids: dict[str, str] | None,
                     class_names: tuple[str, ...]) -> dict[str, str]:
    """Checkpoint class name -> published class_id; ConfigError for names not in the model."""
    unknown = sorted(set(class_ids or {}) - set(class_names))
    if unknown:
        raise ConfigError(f"parameter class_ids: {unknown} are not classes of the model "
                          f"{list(class_names)}")
    return {name: (class_ids or {}).get(name, name.lower()) for name in class_names}
