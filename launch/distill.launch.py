"""Launch the MonoTAKD distiller: bag mode (it reads the bags) or topic mode (a replay feeds it).

Examples::

    ros2 launch monotakd_ros distill.launch.py teacher:=/ckpt/teacher assistant:=/ckpt/ta \
        student_init:=/ckpt/student out_dir:=/runs/raw bags:=/bags/drive_0001,/bags/drive_0002
    ros2 launch monotakd_ros distill.launch.py mode:=topic idle_timeout_s:=5.0 ...
    # and in another terminal (ros2 bag play replays /tf_static latched only with an override):
    ros2 bag play BAG --qos-profile-overrides-path tf_static_transient_local.yaml

Launch arguments left empty keep the value of the parameter file.
"""

from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

_STRING_ARGUMENTS = ("mode", "out_dir", "teacher", "assistant", "student_init", "model_config",
                     "calib_file", "eval_data", "labelled_data")
_FLOAT_ARGUMENTS = ("idle_timeout_s",)
_INT_ARGUMENTS = ("labelled_per_step",)


def _distiller(context: LaunchContext) -> list[Node]:
    """The node, with only the launch arguments that were given on top of the file."""
    overrides: dict[str, object] = {}
    for name in (*_STRING_ARGUMENTS, *_FLOAT_ARGUMENTS, *_INT_ARGUMENTS, "bags", "resume"):
        value = LaunchConfiguration(name).perform(context)
        if value == "":
            continue
        if name == "bags":
            overrides[name] = [bag for bag in value.split(",") if bag]
        elif name == "resume":
            overrides[name] = value.lower() in ("true", "1", "yes")
        elif name in _FLOAT_ARGUMENTS:
            overrides[name] = float(value)
        elif name in _INT_ARGUMENTS:
            overrides[name] = int(value)
        else:
            overrides[name] = value
    return [Node(
        package="monotakd_ros",
        executable="monotakd_distiller",
        name="monotakd_distiller",
        output="screen",
        emulate_tty=True,  # keeps the tqdm bar of bag mode readable
        parameters=[LaunchConfiguration("params_file").perform(context), overrides],
    )]


def generate_launch_description() -> LaunchDescription:
    """config/distill.yaml plus the launch arguments, into the distiller node."""
    share = Path(get_package_share_directory("monotakd_ros"))
    arguments = [DeclareLaunchArgument(
        "params_file", default_value=str(share / "config" / "distill.yaml"),
        description="parameter file of the distiller")]
    arguments += [DeclareLaunchArgument(name, default_value="",
                                        description=f"distiller parameter {name}")
                  for name in (*_STRING_ARGUMENTS, *_FLOAT_ARGUMENTS, *_INT_ARGUMENTS,
                               "resume")]
    arguments.append(DeclareLaunchArgument(
        "bags", default_value="", description="bag mode: comma-separated bag paths"))
    return LaunchDescription([*arguments, OpaqueFunction(function=_distiller)])
