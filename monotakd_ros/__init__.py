"""MonoTAKD monocular 3D object detection for ROS 2: training core plus thin rclpy nodes."""

__version__ = "0.1.0"
