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
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Empty
from vision_msgs.msg import Detection3DArray

from monotakd_ros.bags.ground_truth import labels_from_detections
from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.eval.detection_frames import OutputFrame, detection_frame_of, stamp_ns_of
from monotakd_ros.eval.label_stamps import stamped_label_files
from monotakd_ros.eval.plots import draw_overlay, write_overlay
from monotakd_ros.eval.stream import (
    DEFAULT_CLASSES,
    StreamEvaluation,
    StreamEvaluator,
    exit_status,
)
from monotakd_ros.eval.stream_report import write_stream_report
from monotakd_ros.geometry.frames import T_body_from_optical
from monotakd_ros.ros.image_conversion import image_msg_to_bgr8
from monotakd_ros.ros.param_checks import check_parameter_overrides, parameter_type_errors

_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("detections_topic", "/monotakd_detector/detections", "detector output (Detection3DArray)"),
    ("detections_reliability", "reliable", "QoS of the detections subscription: reliable or "
                                           "best_effort (best_effort also hears best_effort "
                                           "publishers)"),
    ("ground_truth_topic", "/kitti/ground_truth/detections", "ground truth Detection3DArray "
                                                             "(used unless gt_label_dir is set)"),
    ("gt_label_dir", "", "folder of label_2 files <index>.txt; replaces ground_truth_topic"),
    ("gt_timestamps", "", "timestamps.txt giving the stamp of each label file's frame"),
    ("camera_info_topic", "/kitti/camera_color_left/camera_info", "P and size for 2D boxes"),
    ("image_topic", "/kitti/camera_color_left/image_raw", "images for overlays"),
    ("overlay_count", 0, "draw boxes on this many of the first images (0: none)"),
    ("report_dir", "", "folder for report.json, report.md and the figures (required)"),
    ("classes", list(DEFAULT_CLASSES), "KITTI classes to evaluate"),
    ("stamp_tolerance_s", 0.005, "max stamp difference between detections and ground truth"),
    ("idle_timeout_s", 10.0, "evaluate after this long without any message (0: never)"),
    ("replay_finished_topic", "/monotakd_replay/finished", "std_msgs/Empty end-of-replay signal"),
    ("end_grace_s", 5.0, "after the end signal, wait this long for outstanding detections"),
    ("box_axes", "optical", "local box axes of the detector output: optical or body"),
    ("T_output_from_optical", [0.0], "row-major 4x4 from the optical frame to the detector's "
                                     "output frame; [0.0]: identity (optical) or the level "
                                     "camera body rotation (body)"),
    ("exit_after_report", True, "shut down once the report is written"),
    ("expected_ground_truth", 0, "ground truth messages the replay sends (the bag's count); "
                                 "fewer arriving fails the run (0: not checked)"),
)


class EvaluatorNode(Node):
    """Collects ground truth, detections and cameras; writes the report when the run ends."""

    def __init__(self) -> None:
        super().__init__("monotakd_evaluator")
        with parameter_type_errors(self.get_name()):
            for name, default, text in _PARAMETERS:
                self.declare_parameter(name, default, ParameterDescriptor(description=text))
        p = {name: self.get_parameter(name).value for name, _, _ in _PARAMETERS}
        if not p["report_dir"]:
            raise ConfigError("parameter report_dir is empty: name the report folder")
        self.report_dir = Path(p["report_dir"]).expanduser()
        self.evaluator = StreamEvaluator(p["stamp_tolerance_s"], p["classes"], _output_frame(p),
                                         _non_negative(p, "expected_ground_truth"))
        self.idle_timeout_s = float(p["idle_timeout_s"])
        self.end_grace_s = float(p["end_grace_s"])
        self.exit_after_report = bool(p["exit_after_report"])
        self.overlay_count = int(p["overlay_count"])
        self.settings = {key: value for key, value in p.items()}
        self.evaluation: StreamEvaluation | None = None
        self.done = False
        self._images: dict[int, np.ndarray] = {}
        self._last_message_s: float | None = None
        self._finished_at_s: float | None = None
        self._subscribe(p)
        self.create_timer(0.2, self._check_end)

    def _subscribe(self, p: dict[str, Any]) -> None:
        reliability = {"reliable": ReliabilityPolicy.RELIABLE,
                       "best_effort": ReliabilityPolicy.BEST_EFFORT}.get(
                           p["detections_reliability"])
        if reliability is None:
            raise ConfigError("parameter detections_reliability must be reliable or best_effort, "
                              f"got {p['detections_reliability']!r}")
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self.create_subscription(Detection3DArray, p["detections_topic"], self._on_detections,
                                 QoSProfile(depth=100, reliability=reliability),
                                 event_callbacks=events)
        if p["gt_label_dir"]:
            if not p["gt_timestamps"]:
                raise ConfigError("parameter gt_timestamps is empty but gt_label_dir is set")
            for stamp_ns, labels in stamped_label_files(Path(p["gt_label_dir"]),
                                                        Path(p["gt_timestamps"])).items():
                self.evaluator.add_ground_truth(stamp_ns, labels)
            source = f"{self.evaluator.num_ground_truth} label files in {p['gt_label_dir']}"
        else:
            self.create_subscription(Detection3DArray, p["ground_truth_topic"],
                                     self._on_ground_truth, QoSProfile(depth=100),
                                     event_callbacks=events)
            source = p["ground_truth_topic"]
        self.create_subscription(CameraInfo, p["camera_info_topic"], self._on_camera_info,
                                 qos_profile_sensor_data)
        if self.overlay_count > 0:
            self.create_subscription(Image, p["image_topic"], self._on_image,
                                     qos_profile_sensor_data)
        self.create_subscription(Empty, "~/trigger", lambda _msg: self.evaluate_now("trigger"),
                                 10)
        if p["replay_finished_topic"]:
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.create_subscription(Empty, p["replay_finished_topic"], self._on_finished,
                                     latched)
        self.get_logger().info(
            f"scoring {p['detections_topic']} ({p['detections_reliability']}) against {source}; "
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
        if len(self._images) >= self.overlay_count:
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
                or now - self._finished_at_s > self.end_grace_s):
            self.evaluate_now("replay finished")
        elif (self.idle_timeout_s > 0.0 and self._last_message_s is not None
              and now - self._last_message_s > self.idle_timeout_s):
            self.evaluate_now(f"no message for {self.idle_timeout_s:.1f} s")

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
        self.done = self.exit_after_report

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


def _non_negative(p: dict[str, Any], name: str) -> int:
    if int(p[name]) < 0:
        raise ConfigError(f"parameter {name} must be >= 0, got {p[name]}")
    return int(p[name])


def _output_frame(p: dict[str, Any]) -> OutputFrame:
    values = [float(v) for v in p["T_output_from_optical"]]
    if values == [0.0]:
        T = T_body_from_optical() if p["box_axes"] == "body" else None
    elif len(values) == 16:
        T = np.array(values).reshape(4, 4)
    else:
        raise ConfigError(f"parameter T_output_from_optical needs 16 numbers (row-major 4x4) or "
                          f"[0.0], got {len(values)}")
    try:
        return OutputFrame(box_axes=p["box_axes"], T_output_from_optical=T)
    except MonotakdError as err:
        raise ConfigError(f"parameters box_axes / T_output_from_optical: {err}") from err


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
