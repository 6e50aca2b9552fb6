"""README main job (interim): camera frames -> pairing -> Detection3DArray across processes.

Until the detector node lands this runs the foundation's cross-process pipeline on synthetic
frames: one process publishes Image + CameraInfo, another pairs them and publishes a
Detection3DArray, and this process receives and prints them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the interim demo and report what was received."""
    import rclpy
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection3DArray

    procs = ROOT / "test" / "ros_procs"
    rclpy.init()
    node = rclpy.create_node("monotakd_demo_receiver")
    received: list[Detection3DArray] = []
    node.create_subscription(Detection3DArray, "detections", received.append, QoSProfile(depth=50))
    children = [subprocess.Popen([sys.executable, str(procs / "pair_and_publish.py")])]
    try:
        while node.count_publishers("detections") == 0:
            rclpy.spin_once(node, timeout_sec=0.1)
        children.append(subprocess.Popen(
            [sys.executable, str(procs / "camera_publisher.py"), "10", "camera_optical"]))
        deadline = time.monotonic() + 30.0
        while len(received) < 10 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        for child in children:
            child.terminate()
            child.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
    for msg in received:
        det = msg.detections[0]
        sys.stdout.write(
            f"stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} frame "
            f"{msg.header.frame_id}: {det.results[0].hypothesis.class_id} "
            f"score {det.results[0].hypothesis.score:.2f}\n")
    sys.stdout.write(f"received {len(received)}/10 Detection3DArray messages over DDS\n")
    return 0 if len(received) >= 8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
