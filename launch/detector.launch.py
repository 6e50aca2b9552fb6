"""Launch the MonoTAKD detector (a lifecycle node) and, optionally, rviz2.

Examples:
``ros2 launch monotakd_ros detector.launch.py``,
``ros2 launch monotakd_ros detector.launch.py model_path:=/path/to/student device:=cuda``,
``ros2 launch monotakd_ros detector.launch.py params_file:=my.yaml use_rviz:=false``,
``ros2 launch monotakd_ros detector.launch.py start:=managed`` (launch drives the transitions),
``ros2 launch monotakd_ros detector.launch.py start:=manual`` (a lifecycle manager or
``ros2 lifecycle set /monotakd_detector configure`` / ``activate`` does).
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

PACKAGE = "monotakd_ros"
# Launch arguments that override the parameter file only when given (empty = keep the file's).
OVERRIDES = {
    "model_path": "student checkpoint (the file's default: the shipped models/default_student)",
    "device": "auto | cuda | cpu",
    "image_topic": "rectified colour image topic",
    "camera_info_topic": "CameraInfo topic of the image (its P is used)",
}


START_MODES = ("auto", "managed", "manual")


def detector_node(context: LaunchContext) -> list:
    """The detector with the parameter file plus the overrides that were given.

    start:=auto: the node configures and activates itself (parameter autostart), which works
    with every launch_ros version. start:=managed: autostart off, and this launch file sends
    configure, then activate once the node is inactive. start:=manual: autostart off and
    nothing sent (a lifecycle manager owns the node). It answers `ros2 lifecycle` in every mode.
    """
    given = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in given.items() if value}
    start = LaunchConfiguration("start").perform(context)
    if start not in START_MODES:
        raise ValueError(f"launch argument start: one of {list(START_MODES)}, got {start!r}")
    node = LifecycleNode(
        package=PACKAGE, executable="monotakd_detector", name="monotakd_detector",
        namespace="", output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    {**overrides, "autostart": start == "auto"}])
    if start != "managed":
        return [node]

    def transition(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    activate_when_inactive = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
        entities=[transition(Transition.TRANSITION_ACTIVATE)]))
    return [node, activate_when_inactive, transition(Transition.TRANSITION_CONFIGURE)]


def generate_launch_description() -> LaunchDescription:
    """Arguments, the detector and rviz2."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([share, "config", "detector.yaml"]),
            description="ROS parameter file of the monotakd_detector node"),
        *[DeclareLaunchArgument(name, default_value="", description=f"{text}; empty = from "
                                "params_file") for name, text in OVERRIDES.items()],
        DeclareLaunchArgument("start", default_value="auto",
                              description="auto (the node starts itself) | managed (this launch "
                              "file configures and activates it) | manual (left unconfigured)"),
        DeclareLaunchArgument("use_rviz", default_value="true",
                              description="start rviz2 with config/monotakd.rviz"),
    ]
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", PathJoinSubstitution([share, "config", "monotakd.rviz"])],
                condition=IfCondition(LaunchConfiguration("use_rviz")))
    return LaunchDescription([*arguments, OpaqueFunction(function=detector_node), rviz])
