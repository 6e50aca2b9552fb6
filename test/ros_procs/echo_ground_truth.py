"""Test helper process: a stand-in detector that republishes ground truth as detections.

Each ground truth Detection3DArray comes back on the detections topic, rebuilt the way a
detector builds its output (score 1.0, no KITTI metadata in ``id``), except the arrival indices
listed with ``--drop``, which get no answer at all (a detector skipping frames).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile
from vision_msgs.msg import Detection3DArray

from monotakd_ros.ros.messages import detection_array_msg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ground-truth", default="/kitti/ground_truth/detections")
    parser.add_argument("--detections", default="/monotakd_detector/detections")
    parser.add_argument("--drop", type=int, nargs="*", default=[])
    parser.add_argument("--listeners", type=int, default=1,
                        help="detection subscribers to wait for (the evaluator, any test node)")
    args, _ros_args = parser.parse_known_args()
    rclpy.init()
    node = rclpy.create_node("echo_ground_truth")
    publisher = node.create_publisher(Detection3DArray, args.detections, QoSProfile(depth=50))
    # Subscribe only once every listener is matched, so no answer can go out unheard.
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() < args.listeners and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    arrivals = [0]

    def on_ground_truth(message: Detection3DArray) -> None:
        index = arrivals[0]
        arrivals[0] += 1
        if index in args.drop:
            return
        dets = message.detections
        centers = np.array([[d.bbox.center.position.x, d.bbox.center.position.y,
                             d.bbox.center.position.z] for d in dets]).reshape(-1, 3)
        quats = np.array([[d.bbox.center.orientation.x, d.bbox.center.orientation.y,
                           d.bbox.center.orientation.z, d.bbox.center.orientation.w]
                          for d in dets]).reshape(-1, 4)
        sizes = np.array([[d.bbox.size.x, d.bbox.size.y, d.bbox.size.z]
                          for d in dets]).reshape(-1, 3)
        class_ids = [d.results[0].hypothesis.class_id for d in dets]
        publisher.publish(detection_array_msg(message.header, centers, quats, sizes,
                                              np.ones(len(dets)), class_ids))

    node.create_subscription(Detection3DArray, args.ground_truth, on_ground_truth,
                             QoSProfile(depth=50))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
