"""Settings of the stream evaluator node: one frozen dataclass; its parameters come from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.configuration import bounded, check_fields, described
from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.eval.detection_frames import OutputFrame
from monotakd_ros.eval.stream import DEFAULT_CLASSES
from monotakd_ros.geometry.coord_frames import T_body_from_optical

DETECTIONS_TOPIC = "/monotakd_detector/detections"  # the detector node's ~/detections
REPLAY_FINISHED_TOPIC = "/monotakd_replay/finished"  # the replay node's ~/finished
Reliability = Literal["reliable", "best_effort"]
BoxAxes = Literal["optical", "body"]


@dataclass(frozen=True)
class EvaluatorConfig:
    """Topics, ground-truth source, matching, end-of-run rules and report of one evaluation."""

    report_dir: Path = described(help="folder for report.json, report.md and the figures")
    detections_topic: str = described(DETECTIONS_TOPIC,
                                      help="detector output (Detection3DArray)")
    detections_reliability: Reliability = described(
        "reliable", help="QoS of the detections subscription (best_effort also hears "
        "best_effort publishers)")
    ground_truth_topic: str = described(
        layout.GROUND_TRUTH_TOPIC, help="ground truth Detection3DArray (used unless "
        "gt_label_dir is set)")
    gt_label_dir: Path | None = described(
        None, help="folder of label_2 files <index>.txt; replaces ground_truth_topic; empty: "
        "use the topic")
    gt_timestamps: Path | None = described(
        None, help="timestamps.txt giving the stamp of each label file's frame (with "
        "gt_label_dir)")
    camera_info_topic: str = described(layout.CAMERA_INFO_TOPIC,
                                       help="P and size for 2D boxes")
    image_topic: str = described(layout.IMAGE_TOPIC, help="images for overlays")
    overlay_count: int = bounded(0, ge=0, help="draw boxes on this many of the first images "
                                 "(0: none)")
    classes: tuple[str, ...] = described(DEFAULT_CLASSES, help="KITTI classes to evaluate")
    stamp_tolerance_s: float = bounded(0.005, ge=0, help="max stamp difference (s) between "
                                       "detections and ground truth")
    idle_timeout_s: float = bounded(10.0, ge=0, help="evaluate after this long (s) without "
                                    "any message (0: never)")
    replay_finished_topic: str = described(REPLAY_FINISHED_TOPIC,
                                           help="std_msgs/Empty end-of-replay signal")
    use_replay_finished: bool = described(True, help="evaluate when replay_finished_topic "
                                          "announces the end (false: idle timeout or trigger)")
    end_grace_s: float = bounded(5.0, ge=0, help="after the end signal, wait this long (s) "
                                 "for outstanding detections")
    box_axes: BoxAxes = described("optical", help="local box axes of the detector output")
    T_output_from_optical: tuple[float, ...] | None = described(
        None, help="row-major 4x4 from the optical frame to the detector's output frame; not "
        "set: identity (optical) or the level-camera body rotation (body)")
    exit_after_report: bool = described(True, help="shut down once the report is written")
    expected_ground_truth: int = bounded(0, ge=0, help="ground truth messages the replay sends "
                                         "(the bag's count); fewer arriving fails the run "
                                         "(0: not checked)")

    def __post_init__(self) -> None:
        check_fields(self, "evaluator")
        if str(self.report_dir) in ("", "."):
            raise ConfigError("evaluator.report_dir: empty; name the report folder")
        if (self.gt_label_dir is None) != (self.gt_timestamps is None):
            raise ConfigError(f"evaluator.gt_label_dir and gt_timestamps go together: got "
                              f"{self.gt_label_dir} and {self.gt_timestamps}")
        self.output_frame()  # a wrong matrix fails at start, not at the end of a replay

    def output_frame(self) -> OutputFrame:
        """How detector boxes map back to the optical frame."""
        if self.T_output_from_optical is None:
            T = T_body_from_optical() if self.box_axes == "body" else None
        elif len(self.T_output_from_optical) == 16:
            T = np.array(self.T_output_from_optical, dtype=np.float64).reshape(4, 4)
        else:
            raise ConfigError(f"evaluator.T_output_from_optical: needs 16 numbers (row-major "
                              f"4x4), got {len(self.T_output_from_optical)}")
        try:
            return OutputFrame(box_axes=self.box_axes, T_output_from_optical=T)
        except MonotakdError as err:
            raise ConfigError(f"evaluator.box_axes / T_output_from_optical: {err}") from err
