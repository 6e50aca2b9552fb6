"""``monotakd-replay-eval``: replay a bag through the detector, evaluate, print the AP table.

The pip-only twin of ``launch/replay_eval.launch.py``: it starts the same three processes with
the same parameters (evaluator, detector, replay) and waits for the evaluator's report. Each
process logs into ``<report_dir>/logs/``. Exit status: 0 with a report over at least one frame,
3 when no frame could be evaluated, 4 when ground truth in the bag did not reach the evaluator,
1 when a process failed or the run timed out.

Children run as ``python -P -m ...`` so the current folder is not on their ``sys.path`` (a
folder named like a module there must not be imported), and on Linux they get SIGKILL when
this process dies (``PR_SET_PDEATHSIG``), so a killed run leaves no detector behind.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import IO

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.recorded_stream import BagSource
from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.eval.stream import EXIT_GROUND_TRUTH_LOST, EXIT_NOTHING_EVALUATED
from monotakd_ros.eval.stream_report import JSON_NAME, TABLE_NAME
from monotakd_ros.resources import share_path

LOGGER = logging.getLogger("monotakd-replay-eval")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
DETECTIONS_TOPIC = "/monotakd_detector/detections"
# Topics the run needs; point clouds, OXTS and /tf stay in the bag (large or unused).
_REPLAYED_TOPICS = (layout.IMAGE_TOPIC, layout.CAMERA_INFO_TOPIC, layout.TF_STATIC_TOPIC,
                    layout.GROUND_TRUTH_TOPIC)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (each maps to a node parameter or a replay option)."""
    parser = argparse.ArgumentParser(prog="monotakd-replay-eval",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder in the kitti2bag layout")
    parser.add_argument("--report-dir", type=Path, required=True, help="report folder")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor")
    parser.add_argument("--detector-params", type=Path, default=share_path("config/detector.yaml"),
                        help="parameter file of the detector (default: %(default)s)")
    parser.add_argument("--detector-param", nargs="*", default=[], metavar="NAME:=VALUE",
                        help="extra detector parameters, e.g. model_path:=/m device:=cpu")
    parser.add_argument("--detector-command", default=None,
                        help="run this command instead of the detector (it must publish "
                             "Detection3DArray on --detections-topic)")
    parser.add_argument("--wait-for-subscribers", nargs="+", default=None, metavar="TOPIC:N",
                        help="replace the replay's start condition (default: the detector and "
                             "the evaluator on the image, CameraInfo and ground truth topics)")
    parser.add_argument("--detections-topic", default=DETECTIONS_TOPIC)
    parser.add_argument("--gt-label-dir", type=Path, default=None,
                        help="label_2 folder to use instead of the bag's ground truth")
    parser.add_argument("--gt-timestamps", type=Path, default=None,
                        help="timestamps.txt of the labelled images (with --gt-label-dir)")
    parser.add_argument("--classes", nargs="+", default=["Car", "Pedestrian", "Cyclist"])
    parser.add_argument("--overlays", type=int, default=5, help="overlay images to write")
    parser.add_argument("--stamp-tolerance", type=float, default=0.005, help="seconds")
    parser.add_argument("--end-grace", type=float, default=5.0,
                        help="seconds to wait for the detector after the replay ends")
    parser.add_argument("--start-delay", type=float, default=2.0,
                        help="seconds between all subscribers matching and the first message")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="seconds for the detector to load its model and subscribe")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    return parser


def python_module_command(module: str, *args: str) -> list[str]:
    """``python -P -m module args``: the current folder stays off the child's ``sys.path``."""
    return [sys.executable, "-P", "-m", module, *args]


def evaluator_command(args: argparse.Namespace, expected_ground_truth: int = 0) -> list[str]:
    """The evaluator process with its parameters (``expected_ground_truth``: GT messages sent)."""
    params = {
        "report_dir": str(args.report_dir.resolve()),
        "detections_topic": args.detections_topic,
        "stamp_tolerance_s": repr(float(args.stamp_tolerance)),
        "end_grace_s": repr(float(args.end_grace)),
        "overlay_count": str(int(args.overlays)),
        "classes": "[" + ",".join(args.classes) + "]",
        "expected_ground_truth": str(int(expected_ground_truth)),
    }
    if args.gt_label_dir is not None:
        if args.gt_timestamps is None:
            raise ConfigError("--gt-label-dir needs --gt-timestamps (the drive's timestamps.txt)")
        params["gt_label_dir"] = str(args.gt_label_dir.resolve())
        params["gt_timestamps"] = str(args.gt_timestamps.resolve())
    ros_args = [item for name, value in params.items() for item in ("-p", f"{name}:={value}")]
    return python_module_command("monotakd_ros.nodes.evaluator", "--ros-args", *ros_args)


def detector_command(args: argparse.Namespace) -> list[str]:
    """The detector process (or the user's stand-in) with its parameter file and overrides."""
    if args.detector_command:
        return shlex.split(args.detector_command)
    if not args.detector_params.is_file():
        raise ConfigError(f"--detector-params {args.detector_params} does not exist")
    overrides = [item for value in args.detector_param for item in ("-p", value)]
    return python_module_command(
        "monotakd_ros.nodes.detector", "--ros-args", "--params-file", str(args.detector_params),
        "-p", f"image_topic:={layout.IMAGE_TOPIC}",
        "-p", f"camera_info_topic:={layout.CAMERA_INFO_TOPIC}", *overrides)


def replay_command(args: argparse.Namespace, topics: list[str]) -> list[str]:
    """The replay process: only the needed topics, started once every reader listens."""
    image_readers = 1 + int(args.overlays > 0)  # the detector, and the evaluator for overlays
    waits = [f"{layout.IMAGE_TOPIC}:{image_readers}", f"{layout.CAMERA_INFO_TOPIC}:2"]
    if layout.GROUND_TRUTH_TOPIC in topics and args.gt_label_dir is None:
        waits.append(f"{layout.GROUND_TRUTH_TOPIC}:1")
    if args.wait_for_subscribers is not None:
        waits = list(args.wait_for_subscribers)
    return python_module_command(
        "monotakd_ros.nodes.replay", str(args.bag), "--rate", repr(float(args.rate)),
        "--topics", *topics, "--wait-for-subscribers", *waits,
        "--wait-for-links", args.detections_topic, "--wait-timeout", repr(args.startup_timeout),
        "--delay", repr(float(args.start_delay)))


def topic_message_counts(bag: Path) -> dict[str, int]:
    """Topic -> recorded message count, from the bag's index."""
    with BagSource(bag) as source:
        return {topic.name: topic.message_count for topic in source.topics}


def replayed_topics(bag: Path, with_bag_ground_truth: bool) -> list[str]:
    """The needed topics this bag has; BagError when the camera topics are missing."""
    available = topic_message_counts(bag)
    needed = [layout.IMAGE_TOPIC, layout.CAMERA_INFO_TOPIC]
    if with_bag_ground_truth:
        needed.append(layout.GROUND_TRUTH_TOPIC)
    missing = [topic for topic in needed if topic not in available]
    if missing:
        raise ConfigError(f"{bag}: lacks topic(s) {missing} needed for the evaluation; "
                          f"has {sorted(available)}")
    return [topic for topic in _REPLAYED_TOPICS if topic in available]


# Looked up before any fork: the child must not take the dynamic loader's lock.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(parent_pid: int) -> None:
    """In a child before exec: SIGKILL when the parent dies (Linux); exit if it already has."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Processes:
    """Started children, each logging into its own file; stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, tuple[subprocess.Popen, IO[str]]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        LOGGER.info("starting %s: %s", name, shlex.join(command))
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=partial(die_with_parent, os.getpid()))
        LOGGER.info("%s has pid %d", name, proc.pid)
        self.started[name] = (proc, log)
        return proc

    def failed(self) -> str | None:
        """Name of a child that exited with an error, if any."""
        for name, (proc, _) in self.started.items():
            if proc.poll() not in (None, 0) and name != "evaluator":
                return name
        return None

    def stop_all(self) -> None:
        for proc, log in reversed(list(self.started.values())):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            log.close()


def _run(args: argparse.Namespace) -> int:
    with_bag_ground_truth = args.gt_label_dir is None
    topics = replayed_topics(args.bag, with_bag_ground_truth)
    expected = (topic_message_counts(args.bag)[layout.GROUND_TRUTH_TOPIC]
                if with_bag_ground_truth else 0)
    commands = {"evaluator": evaluator_command(args, expected),
                "detector": detector_command(args),
                "replay": replay_command(args, topics)}
    log_dir = args.report_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / JSON_NAME).unlink(missing_ok=True)  # a stale report must not pass
    children = _Processes(log_dir)
    try:
        evaluator = children.start("evaluator", commands["evaluator"])
        children.start("detector", commands["detector"])
        children.start("replay", commands["replay"])
        deadline = time.monotonic() + args.timeout
        while evaluator.poll() is None:
            broken = children.failed()
            if broken is not None:
                LOGGER.error("%s exited with status %s; last lines of %s:\n%s", broken,
                             children.started[broken][0].returncode,
                             log_dir / f"{broken}.log", _tail(log_dir / f"{broken}.log"))
                return 1
            if time.monotonic() > deadline:
                LOGGER.error("no report after %.0f s; see the logs in %s", args.timeout, log_dir)
                return 1
            time.sleep(0.2)
    finally:
        children.stop_all()
    return _print_report(args.report_dir, evaluator.returncode, log_dir)


def _print_report(report_dir: Path, evaluator_status: int, log_dir: Path) -> int:
    report_path = report_dir / JSON_NAME
    if not report_path.is_file():
        LOGGER.error("the evaluator exited with status %s without a report; last lines:\n%s",
                     evaluator_status, _tail(log_dir / "evaluator.log"))
        return 1
    report = json.loads(report_path.read_text())
    table = report_dir / TABLE_NAME
    if table.is_file():
        sys.stdout.write(table.read_text())
    counts = report["counts"]
    lost = int(counts.get("ground_truth_messages_lost", 0))
    sys.stdout.write(
        f"evaluated frames: {report['evaluated_frames']} of {counts['ground_truth_frames']} "
        f"ground truth frames; dropped by the detector: "
        f"{counts['ground_truth_frames_without_detection_message']}; detection messages "
        f"without ground truth: {counts['detection_messages_without_ground_truth']}; "
        f"empty detection arrays: {counts['matched_frames_without_detections']}\n"
        f"report: {report_dir / 'report.md'}\n")
    if lost:
        LOGGER.error("%d of %d ground truth messages in the bag never reached the evaluator; "
                     "the scores above miss those frames", lost,
                     counts["ground_truth_messages_expected"])
        return EXIT_GROUND_TRUTH_LOST
    if report["evaluated_frames"] == 0:
        LOGGER.error("no frame was evaluated (see %s)", report_dir / "report.md")
        return EXIT_NOTHING_EVALUATED
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``monotakd-replay-eval``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except MonotakdError as err:
        LOGGER.error("%s", err)
        return 1
    except KeyboardInterrupt:
        LOGGER.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
