"""Replay a KITTI-layout bag through the detector and score its output against ground truth.

    ros2 launch monotakd_ros replay_eval.launch.py bag:=/data/drive_0005.bag report_dir:=/tmp/rep
    ros2 launch monotakd_ros replay_eval.launch.py bag:=... report_dir:=... rate:=0.5 device:=cpu

Starts the evaluator, the detector and ``monotakd_replay``; the launch ends once the evaluator
has written its report. ``monotakd-replay-eval`` does the same without ros2 launch.
"""

from __future__ import annotations

from pathlib import Path

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from monotakd_ros.bags.kitti_layout import (
    CAMERA_INFO_TOPIC,
    GROUND_TRUTH_TOPIC,
    IMAGE_TOPIC,
    TF_STATIC_TOPIC,
)
from monotakd_ros.eval.evaluator_config import DETECTIONS_TOPIC
from monotakd_ros.nodes.replay_eval import topic_message_counts

PACKAGE = "monotakd_ros"


def generate_launch_description() -> LaunchDescription:
    """Evaluator, detector and replay, with the parameters monotakd-replay-eval passes."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 folder in the kitti2bag layout"),
        DeclareLaunchArgument("report_dir", description="folder for the evaluation report"),
        DeclareLaunchArgument("rate", default_value="1.0", description="replay speed factor"),
        DeclareLaunchArgument(
            "detector_params",
            default_value=PathJoinSubstitution([share, "config", "detector.yaml"]),
            description="parameter file of the detector"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="student checkpoint; empty = the shipped one"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cuda | cpu"),
        DeclareLaunchArgument("overlay_count", default_value="5",
                              description="overlay images to write"),
        DeclareLaunchArgument("stamp_tolerance_s", default_value="0.005",
                              description="seconds between detection and ground truth stamps"),
        DeclareLaunchArgument("end_grace_s", default_value="5.0",
                              description="seconds to wait for the detector after the replay"),
        DeclareLaunchArgument("start_delay_s", default_value="2.0",
                              description="seconds between subscribers matching and playing"),
    ]

    def text(name: str) -> ParameterValue:
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    def number(name: str, kind: type) -> ParameterValue:
        return ParameterValue(LaunchConfiguration(name), value_type=kind)

    def evaluator_and_stop(context: object) -> list:
        """The evaluator (told the bag's ground-truth count) and the shutdown once it reports."""
        bag = Path(LaunchConfiguration("bag").perform(context))
        expected = topic_message_counts(bag).get(GROUND_TRUTH_TOPIC, 0)
        evaluator = Node(
            package=PACKAGE, executable="monotakd_evaluator", name="monotakd_evaluator",
            output="screen",
            parameters=[{
                "report_dir": text("report_dir"),
                "detections_topic": DETECTIONS_TOPIC,
                "ground_truth_topic": GROUND_TRUTH_TOPIC,
                "camera_info_topic": CAMERA_INFO_TOPIC,
                "image_topic": IMAGE_TOPIC,
                "stamp_tolerance_s": number("stamp_tolerance_s", float),
                "end_grace_s": number("end_grace_s", float),
                "overlay_count": number("overlay_count", int),
                # Ground truth known to be in the bag: the evaluator fails the run if less arrives.
                "expected_ground_truth": expected,
            }])
        return [evaluator, RegisterEventHandler(OnProcessExit(
            target_action=evaluator,
            on_exit=[EmitEvent(event=Shutdown(reason="report written"))]))]

    detector = LifecycleNode(
        package=PACKAGE, executable="monotakd_detector", name="monotakd_detector",
        namespace="", output="screen",
        parameters=[LaunchConfiguration("detector_params"), {
            "model_path": text("model_path"),
            "device": text("device"),
            "image_topic": IMAGE_TOPIC,
            "camera_info_topic": CAMERA_INFO_TOPIC,
            "autostart": True,
        }])
    # "<image topic>:2" with overlays (the evaluator reads images too), else ":1".
    image_readers = PythonExpression(
        [f"'{IMAGE_TOPIC}:' + str(1 + int(int('", LaunchConfiguration("overlay_count"),
         "') > 0))"])
    # The detector reads images and CameraInfo; the evaluator reads CameraInfo, ground truth and
    # (for overlays) images. Playing starts once they all listen, so no frame is lost.
    replay = Node(
        package=PACKAGE, executable="monotakd_replay", name="monotakd_replay", output="screen",
        arguments=[
            LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate"),
            "--topics", IMAGE_TOPIC, CAMERA_INFO_TOPIC, GROUND_TRUTH_TOPIC, TF_STATIC_TOPIC,
            "--wait-for-subscribers", image_readers, f"{CAMERA_INFO_TOPIC}:2",
            f"{GROUND_TRUTH_TOPIC}:1", "--wait-timeout", "120",
            "--delay", LaunchConfiguration("start_delay_s"),
        ])
    return LaunchDescription([*arguments, OpaqueFunction(function=evaluator_and_stop), detector,
                              replay])
