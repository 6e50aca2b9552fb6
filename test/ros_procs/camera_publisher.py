"""Test helper process: publishes N synthetic Image + CameraInfo pairs once a subscriber exists."""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from monotakd_ros.ros.image_conversion import array_to_image_msg


def main() -> int:
    count, frame_id = int(sys.argv[1]), sys.argv[2]
    rclpy.init()
    node = rclpy.create_node("test_camera_publisher")
    image_pub = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "camera/camera_info", qos_profile_sensor_data)
    deadline = time.monotonic() + 20.0
    while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
        if time.monotonic() > deadline:
            return 2
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    for i in range(count):
        stamp = node.get_clock().now().to_msg()
        stamp.sec, stamp.nanosec = 1000 + i, 123_456_789
        image = array_to_image_msg(rng.integers(0, 255, (48, 160, 3), dtype=np.uint8), "rgb8",
                                   Image())
        image.header.stamp, image.header.frame_id = stamp, frame_id
        info = CameraInfo(width=160, height=48)
        info.header.stamp, info.header.frame_id = stamp, frame_id
        info.p = [100.0, 0.0, 80.0, 0.0, 0.0, 100.0, 24.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        info_pub.publish(info)
        image_pub.publish(image)
        time.sleep(0.2)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
