"""Launch the MonoTAKD detector (a self-activating lifecycle node) and, optionally, rviz2.

Examples:
``ros2 launch monotakd_ros detector.launch.py``,
``ros2 launch monotakd_ros detector.launch.py model_path:=/path/to/student device:=cuda``,
``ros2 launch monotakd_ros detector.launch.py params_file:=my.yaml use_rviz:=false``.
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "monotakd_ros"
# Launch arguments that override the parameter file only when given (empty = keep the file's).
OVERRIDES = {
    "model_path": "student checkpoint (the file's default: the shipped models/default_student)",
    "device": "auto | cuda | cpu",
    "image_topic": "rectified colour image topic",
    "camera_info_topic": "CameraInfo topic of the image (its P is used)",
}


def detector_node(context: LaunchContext) -> list[LifecycleNode]:
    """The detector with the parameter file plus the overrides that were given."""
    given = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in given.items() if value}
    # The node configures and activates itself (parameter autostart), which works with every
    # launch_ros version; as a LifecycleNode it still answers `ros2 lifecycle`.
    return [LifecycleNode(
        package=PACKAGE, executable="monotakd_detector", name="monotakd_detector",
        namespace="", output="screen",
        parameters=[LaunchConfiguration("params_file"), {**overrides, "autostart": True}])]


def generate_launch_description() -> LaunchDescription:
    """Arguments, the detector and rviz2."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([share, "config", "detector.yaml"]),
            description="ROS parameter file of the monotakd_detector node"),
        *[DeclareLaunchArgument(name, default_value="", description=f"{text}; empty = from "
                                "params_file") for name, text in OVERRIDES.items()],
        DeclareLaunchArgument("use_rviz", default_value="true",
                              description="start rviz2 with config/monotakd.rviz"),
    ]
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", PathJoinSubstitution([share, "config", "monotakd.rviz"])],
                condition=IfCondition(LaunchConfiguration("use_rviz")))
    return LaunchDescription([*arguments, OpaqueFunction(function=detector_node), rviz])
