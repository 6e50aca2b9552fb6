"""``monotakd_distiller``: distil the student from a frozen LiDAR teacher and TA, offline.

- **bag mode**: reads the ``bags`` parameter's bags itself at full speed (tqdm progress bar);
- **topic mode**: learns from ``image_topic`` + ``camera_info_topic`` + ``point_cloud_topic``
  paired by stamp within ``slop_s`` while a bag is replayed (``ros2 bag play`` or
  ``monotakd_replay``); the extrinsic comes from ``/tf_static`` (transient_local) or
  ``calib_file``.

Progress goes to ``~/progress`` (std_msgs/String, JSON) and the log. The learning itself is the
core's ``DistillSession``; this node only declares parameters and moves messages. ``monotakd-
distill`` starts the same node with friendlier flags (see ``distiller_cli``).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from monotakd_ros.distill.config import DistillConfig
from monotakd_ros.distiller.bag_mode import StopRequested
from monotakd_ros.distiller.run_config import NODE_NAME, TRAIN_PARAMETER_HELP, DistillerConfig
from monotakd_ros.distiller.session import DistillSession, DistillSummary, format_evaluations
from monotakd_ros.errors import MonotakdError
from monotakd_ros.ros.dataclass_params import (
    ParameterSpec,
    config_from_node,
    declare_parameters,
    parameter_specs,
)
from monotakd_ros.ros.param_checks import check_parameter_overrides, parameter_type_errors
from monotakd_ros.ros.sensor_frames import Rejection, SensorFrameBuilder
from monotakd_ros.ros.sensor_sync import SensorFrameSync, SyncedFrame

# Names, types, defaults, descriptions and ranges, all from DistillerConfig (run_config.py).
PARAMETERS: list[ParameterSpec] = parameter_specs(
    DistillerConfig, select={"train": {name.split(".", 1)[1] for name in TRAIN_PARAMETER_HELP}},
    entries={"train.distill_overrides": DistillConfig}, descriptions=TRAIN_PARAMETER_HELP)


def sensor_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last QoS for the sensor topics, reliable or best effort."""
    policy = (ReliabilityPolicy.RELIABLE if reliability == "reliable"
              else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


TF_STATIC_WAIT_S = 5.0  # how long early frames wait for the first /tf_static message
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class DistillerNode(Node):
    """Declares the parameters, owns the DistillSession and, in topic mode, the subscriptions."""

    def __init__(self, argv: Sequence[str] = ()) -> None:
        super().__init__(NODE_NAME)
        with parameter_type_errors(NODE_NAME):
            declare_parameters(self, PARAMETERS)
        check_parameter_overrides(self, argv)
        self.config: DistillerConfig = config_from_node(self, DistillerConfig, PARAMETERS)
        self.progress_pub = self.create_publisher(String, "~/progress", 10)
        self.session = DistillSession(self.config)
        self._frames: queue.Queue[SyncedFrame] = queue.Queue(maxsize=self.config.queue_size)
        self._skips: Counter[str] = Counter()  # counted on the executor thread
        self._skips_lock = threading.Lock()
        self._last_frame: float | None = None  # the idle timeout runs from the first frame
        self._first_frame: float | None = None
        self._stop = threading.Event()
        self.summary: DistillSummary | None = None

    def publish_progress(self, report: dict[str, Any]) -> None:
        """Publish the progress report on ~/progress and log its headline."""
        if self.context.ok():  # after Ctrl-C the context is gone; the log still works
            self.progress_pub.publish(String(data=json.dumps(report, sort_keys=True)))
        losses = report.get("losses_mean") or {}
        self.get_logger().info(
            f"step {report['step']} pass {report['pass']}: {report['frames_used']} frames used, "
            f"{report['frames_skipped']} skipped {report['skipped']}, "
            f"{report['frames_per_s']:.1f} frames/s, loss {losses.get('total', float('nan')):.4f}")

    # --- bag mode ---------------------------------------------------------------------------

    def run_bags(self) -> DistillSummary:
        """Read every bag into the session, then evaluate and save."""
        # rclpy turns SIGINT/SIGTERM into a shutdown of the context; stop at a frame boundary.
        self.session.run_bags(self.publish_progress, should_stop=lambda: not self.context.ok())
        return self.finish()

    def finish(self) -> DistillSummary:
        """Final flush, evaluation and checkpoint; publishes the final report."""
        self.summary = self.session.finish()
        self.publish_progress(self.summary.report)
        self.get_logger().info(f"final checkpoint: {self.summary.checkpoint}")
        return self.summary

    # --- topic mode -------------------------------------------------------------------------

    def start_topics(self) -> threading.Thread:
        """Subscribe and start the training thread; returns it (it ends when training ends)."""
        cfg = self.config
        self.sync = SensorFrameSync(cfg.slop_s)
        self.builder = SensorFrameBuilder(self.session.calib)
        if cfg.calib_file is None:  # first, so that the latched rig is matched early
            self.create_subscription(TFMessage, "/tf_static", self.on_tf_static, TF_STATIC_QOS)
        qos = sensor_qos(cfg.reliability, depth=10)
        self.create_subscription(Image, cfg.image_topic, self.on_image, qos)
        self.create_subscription(CameraInfo, cfg.camera_info_topic, self.on_camera_info, qos)
        self.create_subscription(PointCloud2, cfg.point_cloud_topic, self.on_point_cloud, qos)
        self.get_logger().info(
            f"topic mode: expecting Image {cfg.image_topic}, CameraInfo {cfg.camera_info_topic}, "
            f"PointCloud2 {cfg.point_cloud_topic} ({cfg.reliability}, volatile) and "
            + ("/tf_static (reliable, transient_local)" if cfg.calib_file is None
               else f"extrinsic from {cfg.calib_file}"))
        worker = threading.Thread(target=self._train_from_queue, name="distiller", daemon=True)
        worker.start()
        return worker

    def stop(self) -> None:
        """Ask the training thread to finish (it saves and evaluates first)."""
        self._stop.set()

    def on_image(self, message: Image) -> None:
        """Image callback: pair, then queue what completed."""
        self._enqueue(self.sync.add_image(message))

    def on_camera_info(self, message: CameraInfo) -> None:
        """CameraInfo callback."""
        self._enqueue(self.sync.add_camera_info(message))

    def on_point_cloud(self, message: PointCloud2) -> None:
        """PointCloud2 callback."""
        self._enqueue(self.sync.add_point_cloud(message))

    def on_tf_static(self, message: TFMessage) -> None:
        """/tf_static callback: the rig's transforms."""
        self.builder.add_tf_static(message)

    def _enqueue(self, frames: list[SyncedFrame]) -> None:
        """Queue completed frames for the trainer (executor thread); collect the sync's skips."""
        if self.sync.skipped:
            with self._skips_lock:
                self._skips.update(self.sync.skipped)
            self.sync.skipped.clear()
        for frame in frames:
            if self._frames.full():
                try:
                    self._frames.get_nowait()
                    self._count_skip("dropped_backlog")
                except queue.Empty:
                    pass
            self._frames.put_nowait(frame)

    def _count_skip(self, reason: str) -> None:
        with self._skips_lock:
            self._skips[reason] += 1

    def _drain_skips(self) -> None:
        """Move the skip counts of the executor thread into the engine (trainer thread)."""
        with self._skips_lock:
            counts, self._skips = self._skips, Counter()
        for reason, count in counts.items():
            self.session.engine.skip(reason, count)

    def _log_rejection(self, stamp_ns: int, rejection: Rejection) -> None:
        logger = self.get_logger()
        if rejection.reason == "no_extrinsic":  # a set-up error: say what to provide
            logger.error(rejection.detail, throttle_duration_sec=5.0)
        else:
            logger.warning(f"frame {stamp_ns} skipped: {rejection.detail}",
                           throttle_duration_sec=5.0)

    def _waiting_for_tf_static(self, now: float) -> bool:
        """Frames wait for the first /tf_static: a replay's latched rig may arrive after them."""
        if self.config.calib_file is not None or self.builder.static_transforms > 0:
            return False
        return self._first_frame is not None and now - self._first_frame < TF_STATIC_WAIT_S

    def _learn(self, synced: SyncedFrame) -> None:
        frame = self.builder.build(synced)
        if isinstance(frame, Rejection):
            self.session.engine.skip(frame.reason)
            self._log_rejection(synced.stamp_ns, frame)
            return
        self.session.engine.offer(f"topic:{self.config.image_topic}", frame)

    def _train_from_queue(self) -> None:
        engine = self.session.engine
        next_report = time.monotonic() + self.config.progress_period_s
        held: list[SyncedFrame] = []  # frames that came before the first /tf_static
        try:
            while not self._stop.is_set() and not engine.finished:
                try:
                    synced = self._frames.get(timeout=0.1)
                except queue.Empty:
                    synced = None
                now = time.monotonic()
                self._drain_skips()
                if now >= next_report:
                    next_report = now + self.config.progress_period_s
                    self.publish_progress(engine.report())
                if synced is not None:
                    self._last_frame = now
                    self._first_frame = self._first_frame or now
                    held.append(synced)
                if self._waiting_for_tf_static(now):
                    if len(held) > self.config.queue_size:
                        held.pop(0)
                        engine.skip("dropped_backlog")
                    continue
                for frame in held:
                    self._learn(frame)
                held.clear()
                timeout = self.config.idle_timeout_s
                if synced is None and timeout > 0 and self._last_frame is not None and (
                        now - self._last_frame > timeout):
                    self.get_logger().info(f"no frame for {timeout:.1f} s: finishing")
                    break
            self._drain_skips()
            self.finish()
        except MonotakdError as err:
            self.get_logger().error(f"distillation stopped: {err}")


def run_node(args: Sequence[str] | None) -> int:
    """Init rclpy, run the node in its mode, shut down; returns the exit status."""
    rclpy.init(args=args)
    node: DistillerNode | None = None
    status = 0
    try:
        node = DistillerNode(sys.argv if args is None else args)
        if node.config.mode == "bag":
            node.run_bags()
        else:
            _spin_until_done(node, node.start_topics())
        if node.summary is not None:
            tables = format_evaluations(node.summary)
            if tables:
                print(tables, flush=True)
        else:
            status = 1
    except MonotakdError as err:
        (node.get_logger() if node is not None else get_logger(NODE_NAME)).error(str(err))
        status = 2
    except (KeyboardInterrupt, ExternalShutdownException, StopRequested):
        get_logger(NODE_NAME).warning("interrupted; resume:=true continues from the last "
                                      "checkpoint in out_dir/checkpoints")
        status = 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


def _spin_until_done(node: DistillerNode, worker: threading.Thread) -> None:
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and worker.is_alive():
            executor.spin_once(timeout_sec=0.1)
    finally:
        # Ctrl-C or shutdown: let the trainer save its checkpoint before the node goes.
        node.stop()
        worker.join()
        executor.remove_node(node)


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``monotakd_distiller`` (parameters via ``--ros-args``)."""
    return run_node(sys.argv if args is None else args)


if __name__ == "__main__":
    sys.exit(main())
