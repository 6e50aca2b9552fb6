"""Test helper process: pairs Image + CameraInfo and publishes one Detection3D per pair."""

from __future__ import annotations

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection3DArray

from monotakd_ros.ros.image_conversion import image_msg_to_bgr8
from monotakd_ros.ros.messages import detection_array_msg
from monotakd_ros.ros.pairing import LatestPairer


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("test_pair_and_publish")
    pairer = LatestPairer(slop_s=0.01)
    pub = node.create_publisher(Detection3DArray, "detections", 10)

    def on_pair(pair: tuple[Image, CameraInfo] | None) -> None:
        if pair is None:
            return
        image, info = pair
        bgr = image_msg_to_bgr8(image)
        # A box whose x centre encodes the mean pixel and z the focal length, so the receiver
        # can tell the image and the CameraInfo were both really used.
        centre = np.array([[float(bgr.mean()), 0.0, float(info.p[0])]])
        msg = detection_array_msg(image.header, centre, np.array([[0.0, 0.0, 0.0, 1.0]]),
                                  np.array([[4.0, 1.5, 1.6]]), np.array([0.9]), ["car"])
        pub.publish(msg)

    node.create_subscription(Image, "camera/image_raw",
                             lambda m: on_pair(pairer.add_image(m)), qos_profile_sensor_data)
    node.create_subscription(CameraInfo, "camera/camera_info",
                             lambda m: on_pair(pairer.add_camera_info(m)), qos_profile_sensor_data)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
