"""Image + CameraInfo published by one process are paired by another, over real DDS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile
from vision_msgs.msg import Detection3DArray

PROCS = Path(__file__).parent / "ros_procs"


def test_detection_header_matches_image_across_processes() -> None:
    rclpy.init()
    node = rclpy.create_node("test_receiver")
    received: list[Detection3DArray] = []
    node.create_subscription(Detection3DArray, "detections", received.append, QoSProfile(depth=50))
    pairer = subprocess.Popen([sys.executable, str(PROCS / "pair_and_publish.py")])
    publisher = None
    try:
        deadline = time.monotonic() + 20.0
        while node.count_publishers("detections") == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert node.count_publishers("detections") == 1, "pairing process never came up"
        publisher = subprocess.Popen(
            [sys.executable, str(PROCS / "camera_publisher.py"), "5", "camera_optical"]
        )
        deadline = time.monotonic() + 30.0
        while len(received) < 5 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert publisher.wait(timeout=30) == 0
    finally:
        for proc in (pairer, publisher):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
    # sensor-data QoS is best effort: allow a lost frame, but most must arrive intact.
    assert len(received) >= 4
    for msg in received:
        assert msg.header.frame_id == "camera_optical"
        assert msg.header.stamp.nanosec == 123_456_789
        assert 1000 <= msg.header.stamp.sec < 1005
        det = msg.detections[0]
        assert det.header.stamp == msg.header.stamp
        assert det.results[0].hypothesis.class_id == "car"
        assert abs(det.bbox.center.position.z - 100.0) < 1e-9  # P[0] of the CameraInfo
        assert 100.0 < det.bbox.center.position.x < 155.0  # mean of uniform 0..254 pixels
    assert len({m.header.stamp.sec for m in received}) == len(received)
