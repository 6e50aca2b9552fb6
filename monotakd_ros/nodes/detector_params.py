"""Parameters of the detector node: declared with descriptions, read into one config object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from monotakd_ros.errors import ConfigError, GeometryError
from monotakd_ros.geometry.coord_frames import T_body_from_optical, rigid_transform
from monotakd_ros.inference.device import DEVICE_CHOICES
from monotakd_ros.inference.fast_paths import parse_network_path
from monotakd_ros.resources import default_model_path
from monotakd_ros.ros.diagnostics import DiagnosticThresholds
from monotakd_ros.ros.spinning import EXECUTOR_CHOICES

RELIABILITY_CHOICES = ("best_effort", "reliable")

# name -> (default, description). The default's type fixes the parameter type.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "model_path": (str(default_model_path()), "Student checkpoint (directory or "
                                              ".safetensors); empty: models/default_student."),
    "device": ("auto", f"Inference device: one of {list(DEVICE_CHOICES)} or cuda:N."),
    "fp16": (False, "Run the network in float16 autocast (CUDA only; ignored on the CPU)."),
    "network_path": ("auto", "Network call: auto (CUDA: the fastest of half/cuda_graph/eager "
                             "that passes parity with fp32, timed at configure; CPU: eager), "
                             "eager, or a '+'-joined set of half, compile, cuda_graph."),
    "cpu_threads": (0, "torch CPU threads for the network; 0 = auto: OMP_NUM_THREADS if set, "
                       "else every CPU the node may use (threads wait passively: "
                       "OMP_WAIT_POLICY=PASSIVE)."),
    "executor": ("single_threaded", f"ROS executor: one of {list(EXECUTOR_CHOICES)}; events "
                                    "(rclpy's experimental C++ EventsExecutor) falls back to "
                                    "single_threaded where rclpy lacks it."),
    "score_threshold": (0.3, "Minimum detection score in [0, 1)."),
    "nms_iou": (0.1, "BEV IoU above which rotated NMS suppresses the weaker box, in (0, 1]."),
    "max_detections": (100, "Most boxes published per frame."),
    "image_topic": ("/kitti/camera_color_left/image_raw",
                    "Rectified colour image (rgb8, bgr8, rgba8, bgra8 or mono8)."),
    "camera_info_topic": ("/kitti/camera_color_left/camera_info",
                          "CameraInfo of the image; its P (not K/D) is used."),
    "sync_slop": (0.02, "Largest stamp difference (s) pairing an Image with a CameraInfo."),
    "qos_reliability": ("best_effort", "Input QoS reliability: best_effort (sensor data; "
                                       "matches any publisher) or reliable."),
    "output_frame": ("", "Empty: boxes in the image's optical frame. Otherwise a body frame "
                         "(x fwd, y left, z up): TF when available, else "
                         "T_output_from_optical."),
    "T_output_from_optical": (T_body_from_optical().ravel().tolist(),
                              "Row-major 4x4 static extrinsic optical -> output_frame, used "
                              "without TF. Default: the REP-103 optical -> body rotation."),
    "use_tf": (True, "Look output_frame up in TF when tf2_ros is importable."),
    "publish_markers": (True, "Publish ~/markers (MarkerArray) for rviz."),
    "publish_debug_image": (False, "Publish ~/debug_image with the projected 3D boxes."),
    "marker_lifetime": (0.5, "Marker lifetime (s); 0 = forever."),
    "log_throttle_s": (5.0, "Smallest interval (s) between repeats of one kind of warning."),
    "diagnostics_period": (1.0, "Period (s) of /diagnostics and of the input checks."),
    "diag_processing_warn_ms": (100.0, "Median processing time (ms) above which: WARN."),
    "diag_processing_error_ms": (500.0, "Median processing time (ms) above which: ERROR."),
    "diag_drop_rate_warn": (0.5, "Fraction of frames dropped (newest-only) above which: WARN."),
    "diag_drop_rate_error": (0.9, "Fraction of frames dropped above which: ERROR."),
    "diag_input_rate_warn_hz": (5.0, "Input rate (Hz) below which: WARN."),
    "diag_input_rate_error_hz": (0.5, "Input rate (Hz) below which: ERROR."),
    "autostart": (True, "When started standalone, configure and activate at once."),
    "camera_mode": ("virtual", "Input step: virtual (resample any camera to the training "
                               "focal length and place its principal point) or fit_width (the "
                               "training step: fit the width, keep the top rows)."),
    "virtual_camera_placement": ("principal_point", "Where the virtual camera puts the image: "
                                                    "principal_point, or horizon (horizon row, "
                                                    "columns centred)."),
    "horizon_row_px": (-1.0, "Horizon row (px) of a pitched camera for placement horizon; "
                             "< 0: P's principal row (a level camera)."),
    "class_ids": ("", "results[].hypothesis.class_id per checkpoint class, e.g. "
                      "'Car:vehicle,Pedestrian:person'; unlisted classes (and the default "
                      "''): the lowercase class name (car, pedestrian, cyclist)."),
}


@dataclass(frozen=True)
class DetectorParams:
    """Everything the node reads from its parameters, validated."""

    model_path: Path
    device: str
    fp16: bool
    cpu_threads: int  # resolved: >= 1
    score_threshold: float
    nms_iou: float
    max_detections: int
    image_topic: str
    camera_info_topic: str
    sync_slop_s: float
    reliable_input: bool
    output_frame: str
    T_output_from_optical: np.ndarray  # (4, 4)
    use_tf: bool
    publish_markers: bool
    publish_debug_image: bool
    marker_lifetime_s: float
    log_throttle_s: float
    diagnostics_period_s: float
    thresholds: DiagnosticThresholds
    executor: str = "single_threaded"
    camera_mode: str = "virtual"
    virtual_camera_placement: str = "principal_point"
    horizon_row_px: float | None = None  # None: P's principal row
    class_ids: dict[str, str] | None = None  # checkpoint class name -> class_id; None: lower()
    network_path: str = "auto"  # inference.fast_paths


def declare_detector_parameters(node: Node) -> None:
    """Declare every parameter with its description (call once, in ``__init__``)."""
    for name, (default, description) in PARAMETERS.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description))


def detector_params_from_node(node: Node) -> DetectorParams:
    """Read and validate the parameters; ConfigError names the parameter and its value."""
    value = {name: node.get_parameter(name).value for name in PARAMETERS}
    reliability = str(value["qos_reliability"]).strip().lower()
    if reliability not in RELIABILITY_CHOICES:
        raise ConfigError(f"parameter qos_reliability: expected one of "
                          f"{list(RELIABILITY_CHOICES)}, got '{value['qos_reliability']}'")
    for name in ("sync_slop", "log_throttle_s", "diagnostics_period"):
        if not float(value[name]) > 0.0:
            raise ConfigError(f"parameter {name}: must be > 0, got {value[name]}")
    if float(value["marker_lifetime"]) < 0.0 or int(value["cpu_threads"]) < 0:
        raise ConfigError(f"parameters marker_lifetime / cpu_threads: must be >= 0, got "
                          f"{value['marker_lifetime']} / {value['cpu_threads']}")
    extrinsic = list(value["T_output_from_optical"])
    if len(extrinsic) != 16:
        raise ConfigError(f"parameter T_output_from_optical: needs 16 values (row-major 4x4), "
                          f"got {len(extrinsic)}")
    try:
        T_output_from_optical = rigid_transform(np.array(extrinsic, dtype=np.float64)
                                                .reshape(4, 4), "T_output_from_optical")
    except GeometryError as err:
        raise ConfigError(f"parameter {err}") from err
    for name in ("image_topic", "camera_info_topic"):
        if not str(value[name]).strip():
            raise ConfigError(f"parameter {name}: must not be empty")
    model_path = str(value["model_path"]).strip()
    horizon_row_px = float(value["horizon_row_px"])
    return DetectorParams(
        model_path=Path(model_path).expanduser() if model_path else default_model_path(),
        device=str(value["device"]),
        fp16=bool(value["fp16"]),
        cpu_threads=torch_threads(int(value["cpu_threads"])),
        score_threshold=float(value["score_threshold"]),
        nms_iou=float(value["nms_iou"]),
        max_detections=int(value["max_detections"]),
        image_topic=str(value["image_topic"]),
        camera_info_topic=str(value["camera_info_topic"]),
        sync_slop_s=float(value["sync_slop"]),
        reliable_input=reliability == "reliable",
        output_frame=str(value["output_frame"]).strip(),
        T_output_from_optical=T_output_from_optical,
        use_tf=bool(value["use_tf"]),
        publish_markers=bool(value["publish_markers"]),
        publish_debug_image=bool(value["publish_debug_image"]),
        marker_lifetime_s=float(value["marker_lifetime"]),
        log_throttle_s=float(value["log_throttle_s"]),
        diagnostics_period_s=float(value["diagnostics_period"]),
        thresholds=DiagnosticThresholds(
            processing_warn_ms=float(value["diag_processing_warn_ms"]),
            processing_error_ms=float(value["diag_processing_error_ms"]),
            drop_rate_warn=float(value["diag_drop_rate_warn"]),
            drop_rate_error=float(value["diag_drop_rate_error"]),
            input_rate_warn_hz=float(value["diag_input_rate_warn_hz"]),
            input_rate_error_hz=float(value["diag_input_rate_error_hz"]),
        ),
        executor=executor_choice(value["executor"]),
        camera_mode=str(value["camera_mode"]).strip(),
        virtual_camera_placement=str(value["virtual_camera_placement"]).strip(),
        horizon_row_px=horizon_row_px if horizon_row_px >= 0.0 else None,
        class_ids=parse_class_ids(str(value["class_ids"])),
        network_path=checked_network_path(str(value["network_path"])),
    )


def checked_network_path(text: str) -> str:
    """The network_path parameter, validated (ConfigError names it and the choices)."""
    parse_network_path(text)
    return text.strip().lower()


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


def executor_choice(value: object) -> str:
    """The ``executor`` parameter, validated."""
    choice = str(value).strip().lower()
    if choice not in EXECUTOR_CHOICES:
        raise ConfigError(f"parameter executor: expected one of {list(EXECUTOR_CHOICES)}, got "
                          f"'{value}'")
    return choice


def parse_class_ids(text: str) -> dict[str, str] | None:
    """'Car:vehicle, Pedestrian:person' -> {'Car': 'vehicle', ...}; '' -> None (lowercase)."""
    if not text.strip():
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
