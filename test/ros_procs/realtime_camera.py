"""Helper process: a camera driver publishing CameraInfo + Image pairs at a fixed rate.

Usage: realtime_camera.py IMAGE_TOPIC INFO_TOPIC RATE_HZ SECONDS ENCODING [reliable]

Waits for a subscriber on both topics, then publishes for SECONDS on a fixed schedule (stamps
are the send time, as a driver stamps at capture) with sensor-data QoS (best effort, keep last
1) unless ``reliable``. Prints ``SENT <count> <first_stamp_ns> <last_stamp_ns>`` at the end.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from monotakd_ros.ros.image_conversion import array_to_image_msg

# KITTI object training/calib/000000.txt P2 (design §3) for 1242 x 375 images.
KITTI_P2 = [721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791,
            0.0, 0.0, 1.0, 0.002745884]


def road_pixels(encoding: str) -> np.ndarray:
    """(375, 1242, 3) uint8 sky-over-road picture in ``encoding`` channel order."""
    rows = np.arange(375)[:, None, None]
    bgr = np.where(rows < 170, np.array([200, 170, 140]), np.array([90, 95, 100]))
    noise = np.random.default_rng(0).integers(-8, 9, (375, 1242, 3))
    image = np.clip(bgr + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., ::-1]) if encoding == "rgb8" else image


def main() -> int:
    image_topic, info_topic = sys.argv[1], sys.argv[2]
    rate_hz, seconds, encoding = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    reliable = len(sys.argv) > 6 and sys.argv[6] == "reliable"
    rclpy.init()
    node = rclpy.create_node("realtime_camera")
    qos = QoSProfile(depth=1) if reliable else qos_profile_sensor_data
    image_pub = node.create_publisher(Image, image_topic, qos)
    info_pub = node.create_publisher(CameraInfo, info_topic, qos)
    deadline = time.monotonic() + 60.0
    while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
        time.sleep(0.05)
        if time.monotonic() > deadline:
            print("SENT 0 0 0 (no subscriber within 60 s)", flush=True)
            return 2
    time.sleep(1.0)  # the reverse discovery
    image = array_to_image_msg(road_pixels(encoding), encoding, Image())
    image.header.frame_id = "camera_color_left"
    info = CameraInfo(width=1242, height=375, p=KITTI_P2)
    info.header.frame_id = image.header.frame_id
    start, sent, first_ns, last_ns = time.monotonic(), 0, 0, 0
    while time.monotonic() - start < seconds:
        now = node.get_clock().now()
        image.header.stamp = info.header.stamp = now.to_msg()
        info_pub.publish(info)
        image_pub.publish(image)
        first_ns, last_ns = first_ns or now.nanoseconds, now.nanoseconds
        sent += 1
        time.sleep(max(0.0, start + sent / rate_hz - time.monotonic()))
    print(f"SENT {sent} {first_ns} {last_ns}", flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
