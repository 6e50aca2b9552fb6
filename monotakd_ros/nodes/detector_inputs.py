"""Camera input of the detector: Image + CameraInfo subscriptions paired by stamp.

Pairs go to a callback that only stores them (see ``ros.latest_slot``): nothing here queues.
The real ``message_filters`` synchroniser is used when importable, else ``LatestPairer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from monotakd_ros.ros.camera_input import distortion_warning
from monotakd_ros.ros.diagnostics import PipelineCounters, PipelineWindow
from monotakd_ros.ros.pairing import LatestPairer

if TYPE_CHECKING:
    from monotakd_ros.inference.predictor import StudentPredictor

try:  # a ROS install's message_filters; PyPI has none
    import message_filters
except ImportError:
    message_filters = None

PairCallback = Callable[[Any, Any], None]


def input_qos(reliable: bool) -> QoSProfile:
    """Keep-last-1, volatile camera QoS; best effort (sensor data) also hears reliable senders."""
    reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def describe_qos(qos: QoSProfile) -> str:
    """Short words for log lines, e.g. 'sensor-data QoS (best effort, keep last 1)'."""
    if qos.reliability == ReliabilityPolicy.RELIABLE:
        return f"reliable QoS (keep last {qos.depth})"
    return f"sensor-data QoS (best effort, keep last {qos.depth})"


class CameraInputs:
    """Subscribes to the image and its CameraInfo and hands each matched pair to ``on_pair``."""

    def __init__(self, node: Node, image_topic: str, camera_info_topic: str, reliable: bool,
                 slop_s: float, counters: PipelineCounters, on_pair: PairCallback) -> None:
        self._node = node
        self._counters = counters
        self._on_pair = on_pair
        self.image_topic, self.camera_info_topic = image_topic, camera_info_topic
        self.qos = input_qos(reliable)
        self._pairer = LatestPairer(slop_s=slop_s)
        self._subscriptions: list[Any] = []
        self.backend = "LatestPairer"
        if message_filters is not None and self._subscribe_message_filters(
                image_topic, camera_info_topic, slop_s):
            return
        self._subscriptions = [
            node.create_subscription(Image, image_topic, self._on_image, self.qos),
            node.create_subscription(CameraInfo, camera_info_topic, self._on_info, self.qos),
        ]

    @property
    def dropped(self) -> int:
        """Images that never became a pair (replaced while waiting, or no CameraInfo in slop)."""
        stats = self._pairer.stats
        return stats.images_replaced + stats.images_unmatched

    @property
    def unmatched(self) -> int:
        """Images given up on because no CameraInfo came within the slop."""
        return self._pairer.stats.images_unmatched

    @property
    def last_unmatched_offset_ns(self) -> int:
        """CameraInfo stamp minus image stamp when an image was last given up on."""
        return self._pairer.stats.last_unmatched_offset_ns

    def publishers_report(self, topic: str) -> str:
        """What this node expects on ``topic`` and whether its publishers can deliver that."""
        expects = f"expects {describe_qos(self.qos)}"
        publishers = self._node.get_publishers_info_by_topic(topic)
        if not publishers:
            return f"{expects}; nobody publishes {topic}: check the topic name"
        best_effort = [p for p in publishers
                       if p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT]
        if best_effort and self.qos.reliability == ReliabilityPolicy.RELIABLE:
            # ROS drops an incompatible QoS pair silently: say it here.
            return (f"{expects}, but {len(best_effort)} of {len(publishers)} publisher(s) of "
                    f"{topic} are best effort and cannot reach a reliable subscriber; set "
                    "qos_reliability:=best_effort")
        return f"{expects}; {len(publishers)} publisher(s) of {topic}"

    def missing_input_warning(self, window: PipelineWindow) -> tuple[str, str] | None:
        """(kind, text) saying which half of the input is missing and who publishes; or None."""
        image_topic, info_topic = self.image_topic, self.camera_info_topic
        if window.images and not window.camera_infos:
            return "no_camera_info", (
                f"receiving images on {image_topic} but no CameraInfo on {info_topic} for "
                f"{window.duration_s:.1f} s; waiting for CameraInfo "
                f"({self.publishers_report(info_topic)})")
        if window.camera_infos and not window.images:
            return "no_image", (
                f"receiving CameraInfo on {info_topic} but no images on {image_topic} for "
                f"{window.duration_s:.1f} s; waiting for images "
                f"({self.publishers_report(image_topic)})")
        if not window.images and not window.camera_infos:
            return "no_input", (f"no messages on {image_topic} "
                                f"({self.publishers_report(image_topic)}) or {info_topic}")
        return None

    def destroy(self) -> None:
        """Remove the subscriptions (deactivate)."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def _on_image(self, msg: Image) -> None:
        self._counters.add_image()
        pair = self._pairer.add_image(msg)
        if pair is not None:
            self._on_pair(*pair)

    def _on_info(self, msg: CameraInfo) -> None:
        self._counters.add_camera_info()
        pair = self._pairer.add_camera_info(msg)
        if pair is not None:
            self._on_pair(*pair)

    def _subscribe_message_filters(self, image_topic: str, camera_info_topic: str,
                                   slop_s: float) -> bool:
        """Use message_filters' ApproximateTimeSynchronizer; False if its API does not fit."""
        created: list[Any] = []
        try:
            image_sub = message_filters.Subscriber(self._node, Image, image_topic,
                                                   qos_profile=self.qos)
            created.append(image_sub)
            info_sub = message_filters.Subscriber(self._node, CameraInfo, camera_info_topic,
                                                  qos_profile=self.qos)
            created.append(info_sub)
            image_sub.registerCallback(lambda _msg: self._counters.add_image())
            info_sub.registerCallback(lambda _msg: self._counters.add_camera_info())
            # queue_size 2: a pair can form when the CameraInfo lags its image by one message.
            self._sync = message_filters.ApproximateTimeSynchronizer(
                [image_sub, info_sub], queue_size=2, slop=slop_s)
            self._sync.registerCallback(self._on_pair)
            self._subscriptions = [image_sub.sub, info_sub.sub]
        except (AttributeError, TypeError) as err:
            for subscriber in created:
                self._node.destroy_subscription(subscriber.sub)
            self._node.get_logger().warning(
                f"message_filters present but unusable ({err}); pairing with LatestPairer")
            return False
        self.backend = "message_filters.ApproximateTimeSynchronizer"
        return True


class CameraNotes:
    """Logs the virtual camera's mapping once per camera and warns once about D != 0."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._camera_key: tuple[bytes, tuple[int, int]] | None = None
        self._distortion_warned = False

    def note(self, info: CameraInfo, P: np.ndarray, image_hw: tuple[int, int],
             predictor: StudentPredictor | None) -> None:
        """Log for a new camera (``predictor`` None: no virtual camera) and check D."""
        key = (P.tobytes(), (int(image_hw[0]), int(image_hw[1])))
        if predictor is not None and key != self._camera_key:
            self._camera_key = key
            mapping = predictor.camera_mapping(P, image_hw)
            self._logger.info(mapping.summary())
            for warning in mapping.warnings():
                self._logger.warning(f"camera '{info.header.frame_id}': {warning}")
        if not self._distortion_warned:
            warning = distortion_warning(info)
            if warning is not None:
                self._distortion_warned = True
                self._logger.warning(warning)
