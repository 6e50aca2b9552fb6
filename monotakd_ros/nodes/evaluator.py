"""``monotakd_evaluator``: score a detector's Detection3DArray stream against ground truth.

Ground truth comes from a Detection3DArray topic (the bag's ``/kitti/ground_truth/detections``)
or from label_2 files stamped by a drive's ``timestamps.txt``. Frames are matched by stamp. The
evaluation runs once the replay announces its end (``replay_finished_topic``; then up to
``end_grace_s`` for the detector's last answers), after ``idle_timeout_s`` without any message,
or on a std_msgs/Empty on ``~/trigger`` (std_srvs, the usual service type, is not on PyPI).
The report goes to ``report_dir`` (see ``eval/stream_report.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Empty
from vision_msgs.msg import Detection3DArray

from monotakd_ros.bags.ground_truth import labels_from_detections
from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import MonotakdError
from monotakd_ros.eval.detection_frames import detection_frame_of, stamp_ns_of
from monotakd_ros.eval.evaluator_config import EvaluatorConfig
from monotakd_ros.eval.label_stamps import stamped_label_files
from monotakd_ros.eval.plots import draw_overlay, write_overlay
from monotakd_ros.eval.stream import (
    StreamEvaluation,
    StreamEvaluator,
    exit_status,
)
from monotakd_ros.eval.stream_report import write_stream_report
from monotakd_ros.ros.dataclass_params import (
    ParameterSpec,
    config_from_node,
    declare_parameters,
    parameter_specs,
)
from monotakd_ros.ros.image_conversion import image_msg_to_bgr8
from monotakd_ros.ros.param_checks import check_parameter_overrides, parameter_type_errors

# Names, types, defaults, descriptions and ranges, all from EvaluatorConfig.
PARAMETERS: list[ParameterSpec] = parameter_specs(EvaluatorConfig)


class EvaluatorNode(Node):
    """Collects ground truth, detections and cameras; writes the report when the run ends."""

    def __init__(self) -> None:
        super().__init__("monotakd_evaluator")
        with parameter_type_errors(self.get_name()):
            declare_parameters(self, PARAMETERS)
        self.config: EvaluatorConfig = config_from_node(self, EvaluatorConfig, PARAMETERS)
        cfg = self.config
        self.report_dir = cfg.report_dir.expanduser()
        self.evaluator = StreamEvaluator(cfg.stamp_tolerance_s, cfg.classes, cfg.output_frame(),
                                         cfg.expected_ground_truth)
        self.settings = dataclass_to_dict(cfg)
        self.evaluation: StreamEvaluation | None = None
        self.done = False
        self._images: dict[int, np.ndarray] = {}
        self._last_message_s: float | None = None
        self._finished_at_s: float | None = None
        self._subscribe(cfg)
        self.create_timer(0.2, self._check_end)

    def _subscribe(self, cfg: EvaluatorConfig) -> None:
        reliability = {"reliable": ReliabilityPolicy.RELIABLE,
                       "best_effort": ReliabilityPolicy.BEST_EFFORT}[cfg.detections_reliability]
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self.create_subscription(Detection3DArray, cfg.detections_topic, self._on_detections,
                                 QoSProfile(depth=100, reliability=reliability),
                                 event_callbacks=events)
        if cfg.gt_label_dir is not None and cfg.gt_timestamps is not None:
            for stamp_ns, labels in stamped_label_files(cfg.gt_label_dir,
                                                        cfg.gt_timestamps).items():
                self.evaluator.add_ground_truth(stamp_ns, labels)
            source = f"{self.evaluator.num_ground_truth} label files in {cfg.gt_label_dir}"
        else:
            self.create_subscription(Detection3DArray, cfg.ground_truth_topic,
                                     self._on_ground_truth, QoSProfile(depth=100),
                                     event_callbacks=events)
            source = cfg.ground_truth_topic
        self.create_subscription(CameraInfo, cfg.camera_info_topic, self._on_camera_info,
                                 qos_profile_sensor_data)
        if cfg.overlay_count > 0:
            self.create_subscription(Image, cfg.image_topic, self._on_image,
                                     qos_profile_sensor_data)
        self.create_subscription(Empty, "~/trigger", lambda _msg: self.evaluate_now("trigger"),
                                 10)
        if cfg.use_replay_finished:
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.create_subscription(Empty, cfg.replay_finished_topic, self._on_finished,
                                     latched)
        self.get_logger().info(
            f"scoring {cfg.detections_topic} ({cfg.detections_reliability}) against {source}; "
            f"report in {self.report_dir}")

    def _on_incompatible_qos(self, event: Any) -> None:
        self.get_logger().error(
            f"a publisher's QoS is incompatible with this subscription (policy "
            f"{event.last_policy_kind}); its messages will not arrive")

    def _heard(self) -> None:
        self._last_message_s = time.monotonic()

    def _on_ground_truth(self, message: Detection3DArray) -> None:
        self._heard()
        try:
            labels = labels_from_detections(message)
        except MonotakdError as err:
            self.evaluator.count_unreadable("ground_truth")
            self.get_logger().warning(f"ground truth message not usable: {err}")
            return
        self.evaluator.add_ground_truth(stamp_ns_of(message.header.stamp), labels)

    def _on_detections(self, message: Detection3DArray) -> None:
        self._heard()
        try:
            self.evaluator.add_detections(detection_frame_of(message))
        except MonotakdError as err:
            self.evaluator.count_unreadable("detections")
            self.get_logger().warning(f"detection message not usable: {err}")

    def _on_camera_info(self, message: CameraInfo) -> None:
        P = np.asarray(message.p, dtype=np.float64).reshape(3, 4)
        if abs(P[0, 0]) > 0.0 and message.height > 0 and message.width > 0:
            self.evaluator.cameras.add(stamp_ns_of(message.header.stamp), P,
                                       (message.height, message.width))

    def _on_image(self, message: Image) -> None:
        if len(self._images) >= self.config.overlay_count:
            return
        try:
            self._images[stamp_ns_of(message.header.stamp)] = image_msg_to_bgr8(message)
        except MonotakdError as err:
            self.get_logger().warning(f"image not usable for overlays: {err}")

    def _on_finished(self, _message: Empty) -> None:
        if self._finished_at_s is None:
            self.get_logger().info("replay finished; waiting for the detector's last answers")
            self._finished_at_s = time.monotonic()

    def _check_end(self) -> None:
        now = time.monotonic()
        if self._finished_at_s is not None and (
                (self.evaluator.all_ground_truth_answered()
                 and self.evaluator.ground_truth_complete)
                or now - self._finished_at_s > self.config.end_grace_s):
            self.evaluate_now("replay finished")
        elif (self.config.idle_timeout_s > 0.0 and self._last_message_s is not None
              and now - self._last_message_s > self.config.idle_timeout_s):
            self.evaluate_now(f"no message for {self.config.idle_timeout_s:.1f} s")

    def evaluate_now(self, reason: str) -> None:
        """Evaluate what has arrived, write the report, and (optionally) finish."""
        if self.done:
            return
        self._finished_at_s = self._last_message_s = None
        self.get_logger().info(f"evaluating ({reason})")
        evaluation = self.evaluator.evaluate()
        overlays = self._write_overlays(evaluation)
        write_stream_report(self.report_dir, evaluation, self.settings, overlays)
        self.evaluation = evaluation
        counts = evaluation.counts
        table = evaluation.result.format_table() if evaluation.result else "nothing evaluated\n"
        self.get_logger().info(
            f"{counts.matched_frames} frames evaluated, "
            f"{counts.ground_truth_frames_without_detection_message} dropped, "
            f"{counts.detection_messages_without_ground_truth} without ground truth; "
            f"report in {self.report_dir}\n{table}")
        self.done = self.config.exit_after_report

    def _write_overlays(self, evaluation: StreamEvaluation) -> list[Path]:
        paths = []
        frames = dict(zip(evaluation.stamps_ns,
                          zip(evaluation.ground_truth, evaluation.detections, strict=True),
                          strict=True))
        for stamp_ns, image in sorted(self._images.items()):
            nearest = min(frames, key=lambda s: abs(s - stamp_ns), default=None)
            if nearest is None or abs(nearest - stamp_ns) > self.evaluator.tolerance_ns:
                continue
            camera = self.evaluator.cameras.nearest(stamp_ns)
            path = self.report_dir / "overlays" / f"{stamp_ns}.png"
            write_overlay(path, draw_overlay(image, *frames[nearest], camera.P))
            paths.append(path)
        return paths


def main(args: list[str] | None = None) -> int:
    """Entry point of ``monotakd_evaluator``: 0 with a report, 3 nothing evaluated, 4 GT lost."""
    rclpy.init(args=args)
    node = None
    status = 1
    try:
        node = EvaluatorNode()
        check_parameter_overrides(node, sys.argv if args is None else args)
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
        if node.evaluation is not None:
            status = exit_status(node.evaluation)
    except MonotakdError as err:
        if node is None:
            get_logger("monotakd_evaluator").error(str(err))
        else:
            node.get_logger().error(str(err))
    except (KeyboardInterrupt, ExternalShutdownException):
        status = 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
