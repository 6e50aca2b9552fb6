"""Lifecycle node: camera Image + CameraInfo in, Detection3DArray + MarkerArray out.

configure loads the student, activate subscribes and publishes, deactivate unsubscribes,
cleanup/shutdown free the model. Callbacks only store the newest image pair; one worker thread
processes it, so a slow model drops frames instead of building a queue.
"""

# ruff: noqa: E402 -- OMP_WAIT_POLICY must be set before the first torch import
from __future__ import annotations

import os

# torch's OpenMP threads spin-wait between operations by default. Beside the executor, DDS and
# the camera driver on 2 cores that spinning took 8-10x the CPU per frame and ran the network
# ~20x slower; passive threads cost no more CPU than one thread (docs/benchmarks.md). libgomp
# reads this once, when torch loads it; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.impl.logging_severity import LoggingSeverity
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64, Header
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from monotakd_ros.errors import MonotakdError
from monotakd_ros.inference.drawing import draw_boxes_cam
from monotakd_ros.inference.predictor import PredictorTiming, StudentPredictor
from monotakd_ros.nodes.detector_inputs import CameraInputs, CameraNotes, describe_qos
from monotakd_ros.nodes.detector_params import (
    NODE_NAME,
    DetectorConfig,
    declare_detector_parameters,
    detector_config_from_node,
    executor_choice,
    predictor_from_config,
)
from monotakd_ros.ros.camera_input import projection_from_camera_info
from monotakd_ros.ros.diagnostics import (
    PipelineCounters,
    diagnostic_array_msg,
    pipeline_level,
    window_values,
)
from monotakd_ros.ros.image_conversion import array_to_image_msg, image_msg_to_bgr8
from monotakd_ros.ros.latest_slot import LatestSlot
from monotakd_ros.ros.log_throttle import KindThrottle
from monotakd_ros.ros.messages import detection_array_msg, marker_array_msg
from monotakd_ros.ros.output_frames import TfLookup, boxes_in_output_frame, tf2_ros
from monotakd_ros.ros.pairing import stamp_to_ns
from monotakd_ros.ros.param_checks import check_parameter_overrides
from monotakd_ros.ros.spinning import make_executor, spin_until_shutdown


@dataclass
class _Outputs:
    """Publishers created at activate."""

    detections: Any
    markers: Any | None
    debug_image: Any | None
    processing_ms: Any
    latency_ms: Any
    diagnostics: Any


class DetectorNode(LifecycleNode):
    """MonoTAKD student as a ROS 2 lifecycle node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params: DetectorConfig | None = None
        self._predictor: StudentPredictor | None = None
        self._tf: TfLookup | None = None
        self._slot: LatestSlot[tuple[Image, CameraInfo, int]] = LatestSlot()  # + arrival ns
        self._counters = PipelineCounters(time.monotonic())
        self._inputs: CameraInputs | None = None
        self._outputs: _Outputs | None = None
        self._timer: Any = None
        self._worker: threading.Thread | None = None
        self._running = threading.Event()
        self._dropped_reported = 0
        self._unmatched_reported = 0
        self._problem_loggers: dict[str, RcutilsLogger] = {}
        self._throttle = KindThrottle(DetectorConfig.log_throttle_s)  # configure sets it
        self._class_ids: dict[str, str] = {}
        self._static_T_output: np.ndarray | None = None  # checked at configure
        self._camera_notes = CameraNotes(self.get_logger())
        declare_detector_parameters(self)  # last: destroy_node needs the attributes

    # --- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters and load the student; a bad model path is an ERROR."""
        try:
            params = detector_config_from_node(self)
            predictor = predictor_from_config(params)  # sets torch threads from cpu_threads
            class_ids = params.published_class_ids(predictor.class_names)
        except (MonotakdError, RuntimeError, OSError) as err:  # RuntimeError: CUDA OOM
            self.get_logger().error(f"configure failed: {err}")
            return TransitionCallbackReturn.ERROR
        self.params, self._predictor, self._class_ids = params, predictor, class_ids
        self._static_T_output = params.output_transform() if params.output_frame else None
        self._throttle = KindThrottle(params.log_throttle_s)
        self._camera_notes = CameraNotes(self.get_logger())
        if params.output_frame and params.use_tf and tf2_ros is not None:
            self._tf = TfLookup(self)
        self.get_logger().info(
            f"loaded {params.checkpoint_path()} on {predictor.device} (fp16={predictor.fp16}, "
            f"network path {predictor.network_path}, {predictor.num_parameters / 1e6:.2f} M "
            f"parameters, class ids {class_ids}, input step {params.camera_mode})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Create publishers, subscriptions, the diagnostics timer and the worker thread."""
        params = self._loaded_params()
        reliable_10 = QoSProfile(depth=10)
        self._outputs = _Outputs(
            detections=self.create_publisher(Detection3DArray, "~/detections", reliable_10),
            markers=(self.create_publisher(MarkerArray, "~/markers", reliable_10)
                     if params.publish_markers else None),
            debug_image=(self.create_publisher(Image, "~/debug_image", QoSProfile(depth=1))
                         if params.publish_debug_image else None),
            processing_ms=self.create_publisher(Float64, "~/debug/processing_time_ms",
                                                reliable_10),
            latency_ms=self.create_publisher(Float64, "~/debug/pipeline_latency_ms",
                                             reliable_10),
            diagnostics=self.create_publisher(DiagnosticArray, "/diagnostics", reliable_10),
        )
        self._slot.reopen()
        self._counters.take_window(time.monotonic())
        self._dropped_reported, self._unmatched_reported = self._slot.dropped, 0
        self._inputs = CameraInputs(self, params.image_topic, params.camera_info_topic,
                                    params.reliable_input, params.sync_slop_s, self._counters,
                                    self._store_pair)
        self._timer = self.create_timer(params.diagnostics_period_s, self._check_pipeline)
        self._running.set()
        self._worker = threading.Thread(target=self._work, name="monotakd_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"waiting for {params.image_topic} + {params.camera_info_topic} "
            f"({describe_qos(self._inputs.qos)}, paired by {self._inputs.backend}); boxes in "
            f"'{params.output_frame or '<image frame>'}' on "
            f"{self.get_fully_qualified_name()}/detections")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker and remove subscriptions, publishers and the timer."""
        self._stop_io()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model (and its GPU memory)."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything and free the model."""
        self._stop_io()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Back to unconfigured with nothing held, so configure can be retried."""
        self._stop_io()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def start(self) -> bool:
        """Configure and activate (standalone use); False when either transition fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Join the worker before the publishers it uses disappear."""
        self._stop_io()
        self._release()
        super().destroy_node()

    # --- input side (executor thread) ------------------------------------------------------

    def _store_pair(self, image: Image, info: CameraInfo) -> None:
        self._slot.put((image, info, self.get_clock().now().nanoseconds))

    def _check_pipeline(self) -> None:
        """Publish diagnostics and say what is missing when the input is incomplete."""
        params, inputs, outputs = self._loaded_params(), self._inputs, self._outputs
        if inputs is None or outputs is None:
            return
        dropped_total = self._slot.dropped + inputs.dropped
        self._counters.add_dropped(dropped_total - self._dropped_reported)
        self._dropped_reported = dropped_total
        window = self._counters.take_window(time.monotonic())
        level, message = pipeline_level(window, params.diagnostics)
        values = window_values(window)
        values.update(dropped_total=str(dropped_total), model_path=str(params.checkpoint_path()),
                      device=str(self._predictor.device if self._predictor else "none"))
        outputs.diagnostics.publish(diagnostic_array_msg(
            self.get_clock().now().to_msg(), f"{self.get_name()}: pipeline", params.image_topic,
            level, message, values))
        missing = inputs.missing_input_warning(window)
        if missing is not None:
            self._warn(*missing)
        if inputs.unmatched > self._unmatched_reported:
            new = inputs.unmatched - self._unmatched_reported
            self._unmatched_reported = inputs.unmatched
            self._warn("unmatched", f"{new} image(s) in the last {window.duration_s:.1f} s "
                       f"({inputs.unmatched} in all) found no CameraInfo within sync_slop_s = "
                       f"{params.sync_slop_s} s of their stamp; the last CameraInfo was "
                       f"{inputs.last_unmatched_offset_ns / 1e6:+.1f} ms from its image's "
                       "stamp")

    # --- worker thread ----------------------------------------------------------------------

    def _work(self) -> None:
        while self._running.is_set():
            pair = self._slot.take(timeout_s=0.2)
            if pair is None:
                continue
            image, info, arrived_ns = pair
            try:
                self._process(image, info, arrived_ns)
            except MonotakdError as err:
                self._counters.add_bad_input()
                self._warn(type(err).__name__, f"skipping frame {_stamp_text(image)} from "
                           f"'{image.header.frame_id}': {err}")
            except Exception as err:  # noqa: BLE001 -- a model or code failure, not bad input
                if self._counters.add_internal_error(type(err).__name__):  # first of its kind
                    self.get_logger().error(f"internal error:\n{traceback.format_exc()}")
                self._warn("internal", f"frame {_stamp_text(image)} failed: "
                           f"{type(err).__name__}: {err}")

    def _process(self, image_msg: Image, info: CameraInfo, arrived_ns: int) -> None:
        """One frame: convert, check P, detect, publish; errors name the problem."""
        params, outputs, predictor = self._loaded_params(), self._outputs, self._predictor
        if outputs is None or predictor is None:
            return
        taken_ns = self.get_clock().now().nanoseconds
        start = time.perf_counter()
        image_bgr = image_msg_to_bgr8(image_msg)
        converted = time.perf_counter()
        P = projection_from_camera_info(info, image_bgr.shape[:2])
        self._camera_notes.note(info, P, image_bgr.shape[:2],
                                predictor if params.camera_mode == "virtual" else None)
        detections = predictor.predict(image_bgr, P)
        header = Header(stamp=image_msg.header.stamp,
                        frame_id=params.output_frame or image_msg.header.frame_id)
        boxes = boxes_in_output_frame(detections.boxes_cam, self._T_output_from_optical(image_msg))
        class_ids = [self._class_ids[name] for name in detections.class_names]
        outputs.detections.publish(detection_array_msg(
            header, boxes.center, boxes.quat_xyzw, boxes.size, detections.scores, class_ids))
        # Latency ends when the detections are out; markers and debug image are extras.
        latency_ms = (self.get_clock().now().nanoseconds - stamp_to_ns(header.stamp)) / 1e6
        if outputs.markers is not None:
            outputs.markers.publish(marker_array_msg(
                header, boxes.center, boxes.quat_xyzw, boxes.size, detections.scores, class_ids,
                lifetime_s=params.marker_lifetime_s))
        if outputs.debug_image is not None:
            canvas = draw_boxes_cam(image_bgr, detections.boxes_cam, P, class_ids,
                                    detections.scores)
            outputs.debug_image.publish(
                array_to_image_msg(canvas, "bgr8", Image(header=image_msg.header)))
        processing_ms = (time.perf_counter() - start) * 1e3
        outputs.processing_ms.publish(Float64(data=processing_ms))
        outputs.latency_ms.publish(Float64(data=latency_ms))
        self._counters.add_processed(processing_ms, latency_ms)
        if self.get_logger().is_enabled_for(LoggingSeverity.DEBUG):
            self._log_timeline(image_msg, arrived_ns, taken_ns, (converted - start) * 1e3,
                               detections.timing, latency_ms)

    def _log_timeline(self, image_msg: Image, arrived_ns: int, taken_ns: int, convert_ms: float,
                      timing: PredictorTiming, latency_ms: float) -> None:
        """One debug line per frame: where its stamp -> publish time went."""
        stamp_ns = stamp_to_ns(image_msg.header.stamp)
        received_ms, waited_ms = (arrived_ns - stamp_ns) / 1e6, (taken_ns - arrived_ns) / 1e6
        other_ms = (latency_ms - received_ms - waited_ms - convert_ms - timing.prepare_ms
                    - timing.network_ms - timing.decode_ms)  # CameraInfo, frames, messages
        self.get_logger().debug(
            f"timeline {_stamp_text(image_msg)}: stamp->callback {received_ms:.1f} ms, waited "
            f"{waited_ms:.1f}, convert {convert_ms:.1f}, prepare {timing.prepare_ms:.1f}, "
            f"network {timing.network_ms:.1f}, decode {timing.decode_ms:.1f}, other "
            f"{other_ms:.1f} -> stamp->publish {latency_ms:.1f} ms")

    def _T_output_from_optical(self, image_msg: Image) -> np.ndarray | None:
        """None for optical output; TF when it answers, else the configured extrinsic."""
        params = self._loaded_params()
        if not params.output_frame:
            return None
        if self._tf is not None:
            T = self._tf.matrix(params.output_frame, image_msg.header.frame_id,
                                image_msg.header.stamp)
            if T is not None:
                return T
            self._warn("tf", f"no TF {params.output_frame} <- {image_msg.header.frame_id} at "
                       f"{_stamp_text(image_msg)}; using parameter T_output_from_optical")
        return self._static_T_output

    # --- helpers ----------------------------------------------------------------------------

    def _warn(self, kind: str, text: str) -> None:
        """Warning throttled per kind of problem; says how many of its kind were held back."""
        line = self._throttle.admit(kind, text, time.monotonic())
        if line is None:
            return
        logger = self._problem_loggers.get(kind)
        if logger is None:
            logger = self._problem_loggers.setdefault(kind, self.get_logger().get_child(kind))
        logger.warning(line)

    def _loaded_params(self) -> DetectorConfig:
        if self.params is None:
            raise RuntimeError("DetectorNode is not configured")
        return self.params

    def _stop_io(self) -> None:
        self._running.clear()
        self._slot.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        self._worker = None
        if self._inputs is not None:
            self._inputs.destroy()
            self._inputs = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._outputs is not None:
            for publisher in vars(self._outputs).values():
                if publisher is not None:
                    self.destroy_publisher(publisher)
            self._outputs = None

    def _release(self) -> None:
        if self._predictor is not None:
            self._predictor.release()
            self._predictor = None
        if self._tf is not None:
            self._tf.close()
            self._tf = None
        self.params = None


def _stamp_text(image: Image) -> str:
    return f"{image.header.stamp.sec}.{image.header.stamp.nanosec:09d}"


def main(args: list[str] | None = None) -> int:
    """Run the detector standalone: configure and activate it (parameter autostart), spin."""
    rclpy.init(args=args)
    node: DetectorNode | None = None
    code = 0
    try:
        node = DetectorNode()
        check_parameter_overrides(node, sys.argv if args is None else args)
        if node.get_parameter("autostart").value and not node.start():
            code = 1  # configure/activate already logged why
        else:
            executor = make_executor(executor_choice(node), NODE_NAME)
            executor.add_node(node)
            node.get_logger().info(f"spinning with {type(executor).__name__}, torch "
                                   f"{torch.get_num_threads()} thread(s)")
            spin_until_shutdown(executor)
    except MonotakdError as err:  # unknown or mistyped parameters
        rclpy.logging.get_logger(NODE_NAME).error(str(err))
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
