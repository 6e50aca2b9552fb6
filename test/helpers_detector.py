"""Shared pieces of the detector tests: a tiny student, KITTI-like frames, a node subprocess."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# KITTI object training/calib/000000.txt P2 for 1242 x 375 images (design §3).
KITTI_P2 = np.array([[7.215377e02, 0.0, 6.095593e02, 4.485728e01],
                     [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
                     [0.0, 0.0, 1.0, 2.745884e-03]])
IMAGE_HW = (375, 1242)
# An untrained head scores every anchor at about 0.01: this threshold keeps boxes.
LOW_SCORE = 0.005


def detector_test_config() -> ModelConfig:
    """config/models/small.yaml shrunk further: 96 x 320 input, 16 channels, few NMS candidates."""
    cfg = load_model_config(ROOT / "config/models/small.yaml")
    return dataclasses.replace(
        cfg, image=dataclasses.replace(cfg.image, input_hw=(96, 320)), image_channels=16,
        bev_channels=16, postprocess=dataclasses.replace(cfg.postprocess, pre_nms_max=50))


def write_test_checkpoint(path: Path) -> Path:
    """A random-initialised student of ``detector_test_config`` at ``path``."""
    return make_random_student_checkpoint(path, detector_test_config(), seed=3)


def road_image(seed: int) -> np.ndarray:
    """(375, 1242, 3) uint8 BGR: sky, road, and a few dark car-like blocks with noise."""
    rng = np.random.default_rng(seed)
    height, width = IMAGE_HW
    image = np.empty((height, width, 3), dtype=np.uint8)
    rows = np.arange(height)[:, None]
    image[..., 0] = np.where(rows < 170, 200 - rows // 2, 90).astype(np.uint8)
    image[..., 1] = np.where(rows < 170, 170 - rows // 3, 95).astype(np.uint8)
    image[..., 2] = np.where(rows < 170, 140, 100)
    for _ in range(4):
        u, v = int(rng.integers(100, width - 200)), int(rng.integers(170, 260))
        image[v:v + 60, u:u + 120] = rng.integers(10, 60, 3)
    noise = rng.integers(-8, 9, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def half_size_frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``road_image(seed)`` at 188 x 621 and its P2. Full-size best-effort images are often
    lost by this machine's DDS (~1.4 MB messages); half size arrives reliably."""
    import cv2

    from monotakd_ros.data.batch import scaled_projection

    image = cv2.resize(road_image(seed), (621, 188), interpolation=cv2.INTER_AREA)
    return image, scaled_projection(KITTI_P2, IMAGE_HW, (188, 621))


def stamp_msg(total_ns: int) -> Any:
    """builtin_interfaces/Time of ``total_ns`` nanoseconds."""
    from builtin_interfaces.msg import Time

    return Time(sec=total_ns // 1_000_000_000, nanosec=total_ns % 1_000_000_000)


def camera_pair(image: np.ndarray, P: np.ndarray, stamp: Any, frame_id: str,
                encoding: str = "bgr8", info_hw: tuple[int, int] | None = None) -> Any:
    """(Image, CameraInfo) messages with the same header; ``info_hw`` overrides the size."""
    from sensor_msgs.msg import CameraInfo, Image

    from monotakd_ros.ros.image_conversion import array_to_image_msg

    msg = array_to_image_msg(image, encoding, Image())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    height, width = info_hw if info_hw is not None else image.shape[:2]
    info = CameraInfo(width=int(width), height=int(height))
    info.header.stamp, info.header.frame_id = stamp, frame_id
    info.p = [float(v) for v in np.asarray(P, dtype=np.float64).ravel()]
    return msg, info


class NodeProcess:
    """``python -m monotakd_ros.nodes.detector`` with parameters; stderr goes to a file."""

    def __init__(self, log_path: Path, params: dict[str, Any],
                 threads_from_params: bool = False, ros_args: tuple[str, ...] = ()) -> None:
        args = [sys.executable, "-m", "monotakd_ros.nodes.detector", "--ros-args", *ros_args]
        for name, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", f"{name}:={text}"]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   RCUTILS_COLORIZED_OUTPUT="0")
        if threads_from_params:  # the node's own thread plan, as a user would run it
            env.pop("OMP_NUM_THREADS")
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        """Everything the node printed so far."""
        return self.log_path.read_text()

    def stop(self) -> int:
        """Ctrl-C the node and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


def spin_until(executor: Any, done: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``executor`` until ``done()`` or the timeout; returns ``done()``."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return done()


class DetectorClient:
    """A test-side rclpy node in a context of its own: camera publishers, output subscribers."""

    OUTPUTS = {  # name -> (topic below the detector's name, module, type)
        "detections": ("detections", "vision_msgs.msg", "Detection3DArray"),
        "markers": ("markers", "visualization_msgs.msg", "MarkerArray"),
        "debug_image": ("debug_image", "sensor_msgs.msg", "Image"),
        "processing_ms": ("debug/processing_time_ms", "std_msgs.msg", "Float64"),
        "latency_ms": ("debug/pipeline_latency_ms", "std_msgs.msg", "Float64"),
        "diagnostics": ("/diagnostics", "diagnostic_msgs.msg", "DiagnosticArray"),
    }

    def __init__(self, image_topic: str, camera_info_topic: str,
                 detector: str = "/monotakd_detector", reliable: bool = False) -> None:
        import importlib

        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("detector_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.image_topic, self.camera_info_topic = image_topic, camera_info_topic
        camera_qos = QoSProfile(depth=1) if reliable else qos_profile_sensor_data
        self.image_pub = self.node.create_publisher(Image, image_topic, camera_qos)
        self.info_pub = self.node.create_publisher(CameraInfo, camera_info_topic, camera_qos)
        self.topics = {name: topic if topic.startswith("/") else f"{detector}/{topic}"
                       for name, (topic, _, _) in self.OUTPUTS.items()}
        self.received: dict[str, list[Any]] = {name: [] for name in self.OUTPUTS}
        for name, (_, module, type_name) in self.OUTPUTS.items():
            msg_type = getattr(importlib.import_module(module), type_name)
            self.node.create_subscription(msg_type, self.topics[name],
                                          self.received[name].append, QoSProfile(depth=500))

    def wait_for_detector(self, timeout_s: float = 40.0) -> bool:
        """True once the detector subscribes to the camera and publishes detections."""
        def connected() -> bool:
            return (self.image_pub.get_subscription_count() > 0
                    and self.info_pub.get_subscription_count() > 0
                    and self.node.count_publishers(self.topics["detections"]) > 0)

        ok = spin_until(self.executor, connected, timeout_s)
        spin_until(self.executor, lambda: False, 0.5)  # let the reverse matching finish
        return ok

    def send(self, image: Any, info: Any | None) -> None:
        """Publish a CameraInfo (if any) then its image."""
        if info is not None:
            self.info_pub.publish(info)
        if image is not None:
            self.image_pub.publish(image)

    def detections_at(self, stamp: Any) -> list[Any]:
        """Detection3DArrays received whose header stamp equals ``stamp``."""
        return [m for m in self.received["detections"] if m.header.stamp == stamp]

    def send_until_detected(self, make_pair: Callable[[Any], tuple[Any, Any]],
                            timeout_s: float = 20.0) -> tuple[Any, Any]:
        """Send fresh-stamped pairs every 0.4 s until one comes back; (stamp, detections)."""
        deadline = time.monotonic() + timeout_s
        sent: list[Any] = []
        while time.monotonic() < deadline:
            stamp = self.node.get_clock().now().to_msg()
            self.send(*make_pair(stamp))
            sent.append(stamp)
            if spin_until(self.executor, lambda: any(self.detections_at(s) for s in sent), 0.4):
                break
        for stamp in sent:
            found = self.detections_at(stamp)
            if found:
                return stamp, found[0]
        raise AssertionError(f"no detections for {len(sent)} frames sent over {timeout_s} s")

    def spin(self, seconds: float) -> None:
        """Process incoming messages for ``seconds``."""
        spin_until(self.executor, lambda: False, seconds)

    def close(self) -> None:
        """Destroy the node and shut its context down."""
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@contextmanager
def running_detector(log_path: Path, params: dict[str, Any]) -> Iterator[tuple[NodeProcess,
                                                                                DetectorClient]]:
    """A detector process on ``params`` plus a client on its topics; both closed on exit."""
    node = NodeProcess(log_path, params)
    client = DetectorClient(str(params["image_topic"]), str(params["camera_info_topic"]))
    try:
        assert client.wait_for_detector(), f"node never came up:\n{node.log()}"
        yield node, client
    finally:
        client.close()
        assert node.stop() == 0, node.log()
