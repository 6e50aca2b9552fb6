"""``monotakd-distill``: the distiller node with plain command-line flags (no ros2 CLI needed).

Every flag becomes the node parameter of the same meaning (``-p name:=value`` after the
optional ``--params-file``), so the console command and ``ros2 launch monotakd_ros
distill.launch.py`` run the same node with the same parameter file. Relative paths are taken
from the current directory here and passed on as absolute paths.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monotakd_ros.distill.config import DISTILL_MODES
from monotakd_ros.distiller.run_config import SourceMode
from monotakd_ros.nodes.distiller import run_node
from monotakd_ros.training.config import DevicePreference, Schedule

# flag destination -> node parameter
_PATH_FLAGS = {"out": "out_dir", "teacher": "teacher", "assistant": "assistant",
               "student_init": "student_init", "model_config": "model_config",
               "calib_file": "calib_file", "eval_data": "eval_data",
               "labelled_data": "labelled_data"}
_VALUE_FLAGS = {"mode": "mode", "passes": "passes", "slop_s": "slop_s",
                "idle_timeout_s": "idle_timeout_s", "eval_split": "eval_split",
                "eval_max_frames": "eval_max_frames", "max_steps": "train.max_steps",
                "batch_size": "train.batch_size", "lr": "train.lr", "device": "train.device",
                "schedule": "train.schedule", "warmup_steps": "train.warmup_steps",
                "ckpt_interval": "train.ckpt_interval", "distill": "train.distill",
                "seed": "train.seed", "labelled_split": "labelled_split",
                "labelled_per_step": "labelled_per_step"}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of monotakd-distill."""
    parser = argparse.ArgumentParser(
        prog="monotakd-distill",
        description="Distil the MonoTAKD student on unlabelled KITTI-style bags from a frozen "
        "LiDAR teacher and TA (IMD, CMRD and response terms), then evaluate before and after.")
    parser.add_argument("--params-file", type=Path, default=None,
                        help="ROS 2 parameter file, e.g. config/distill.yaml")
    parser.add_argument("--mode", choices=typing.get_args(SourceMode), default=None)
    parser.add_argument("--bags", type=Path, nargs="+", default=None,
                        help="bag mode: rosbag2 folders or ROS 1 .bag files")
    parser.add_argument("--out", type=Path, default=None, help="run folder")
    parser.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint")
    parser.add_argument("--assistant", type=Path, default=None, help="TA checkpoint")
    parser.add_argument("--student-init", type=Path, default=None,
                        help="student checkpoint to start from")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="model YAML (default: the teacher checkpoint's)")
    parser.add_argument("--calib-file", type=Path, default=None,
                        help="KITTI object calib file or raw date folder (instead of /tf_static)")
    parser.add_argument("--eval-data", type=Path, default=None, metavar="DIR|BAG",
                        help="labelled KITTI object root or bag with ground truth; evaluated "
                        "before and after distillation")
    parser.add_argument("--eval-split", default=None, help="ImageSets name of --eval-data")
    parser.add_argument("--eval-max-frames", type=int, default=None)
    parser.add_argument("--labelled-data", type=Path, default=None, metavar="DIR",
                        help="KITTI object root whose labelled frames join every step (replay)")
    parser.add_argument("--labelled-split", default=None,
                        help="ImageSets name of --labelled-data (default: train)")
    parser.add_argument("--labelled-per-step", type=int, default=None,
                        help="labelled frames added to every step")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--passes", type=int, default=None, help="reads of every bag")
    parser.add_argument("--slop-s", type=float, default=None)
    parser.add_argument("--idle-timeout-s", type=float, default=None,
                        help="topic mode: finish after this long without frames")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--schedule", choices=typing.get_args(Schedule), default=None,
                        help="learning-rate schedule; bag mode knows the run length")
    parser.add_argument("--warmup-steps", type=int, default=None, help="cosine warm-up steps")
    parser.add_argument("--ckpt-interval", type=int, default=None)
    # "none" has no distillation term, and unlabelled frames give no detection loss.
    parser.add_argument("--distill", choices=[m for m in DISTILL_MODES if m != "none"],
                        default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", choices=typing.get_args(DevicePreference), default=None)
    parser.add_argument("--no-progress-bar", action="store_true")
    return parser


def _yaml_value(value: Any) -> str:
    """A parameter value as YAML text; JSON is YAML, and it keeps strings strings."""
    return json.dumps(value)


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """``--ros-args`` equivalent of the parsed flags."""
    ros_args = ["--ros-args"]
    if args.params_file is not None:
        ros_args += ["--params-file", str(args.params_file.resolve())]
    overrides: dict[str, Any] = {}
    for flag, name in _PATH_FLAGS.items():
        if getattr(args, flag) is not None:
            overrides[name] = str(getattr(args, flag).resolve())
    for flag, name in _VALUE_FLAGS.items():
        if getattr(args, flag) is not None:
            overrides[name] = getattr(args, flag)
    if args.bags is not None:
        overrides["bags"] = [str(bag.resolve()) for bag in args.bags]
    if args.resume:
        overrides["resume"] = True
    if args.no_progress_bar:
        overrides["show_progress_bar"] = False
    for name, value in overrides.items():
        ros_args += ["-p", f"{name}:={_yaml_value(value)}"]
    return ros_args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``monotakd-distill``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_node(["monotakd-distill", *ros_arguments(args)])


if __name__ == "__main__":
    sys.exit(main())
