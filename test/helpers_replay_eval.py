"""A small labelled drive bag for the replay and evaluation tests, and process helpers."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from helpers_kitti_raw import FIRST_STAMP_NS, FRAME_PERIOD_NS, P2_KITTI, R0_KITTI, TR_KITTI
from helpers_kitti_raw import oxts_packet as kitti_oxts_packet

from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.data.kitti.calib import raw_calib_from_camera_calib
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter
from monotakd_ros.data.kitti.tracklets import Tracklet
from monotakd_ros.geometry.calib import CameraCalib

PROCS = Path(__file__).parent / "ros_procs"
SCALE = 1.0 / 3.0  # cars 8-14 m ahead stay taller than 25 px, so they count as Moderate
IMAGE_HW = (125, 414)


@dataclass
class EvalBag:
    """A bag written from a drive with cars ahead, and what went into it."""

    bag: Path
    drive_dir: Path
    image_stamps_ns: list[int]


def _tracklets(num_frames: int) -> list[Tracklet]:
    """Six cars ahead in two rows, clearly visible in every frame.

    More than 40 counted cars over the drive matter: the devkit's R40 curve has one point per
    true-positive score it samples, so a perfect detector only reaches AP 100 with >= 40 of them.
    """
    frames = np.arange(num_frames, dtype=np.float64)
    tracklets = []
    for row_x, speed in ((8.0, 0.2), (12.0, 0.1)):
        for lateral_y, heading in ((-3.5, 0.1), (0.5, -0.05), (4.0, 0.2)):
            poses = np.zeros((num_frames, 6))
            poses[:, 0] = row_x + speed * frames
            poses[:, 1] = lateral_y
            poses[:, 2] = -1.73  # on the road, the LiDAR is 1.73 m up
            poses[:, 5] = heading
            tracklets.append(Tracklet("Car", h=1.5, w=1.6, l=3.9, first_frame=0, poses=poses,
                                      occlusion=np.zeros(num_frames),
                                      truncation=np.zeros(num_frames)))
    return tracklets


def write_eval_bag(root: Path, num_frames: int = 8, seed: int = 0) -> EvalBag:
    """A labelled drive of ``num_frames`` frames and its kitti2bag bag under ``root``."""
    rng = np.random.default_rng(seed)
    camera = CameraCalib(P2=P2_KITTI, R0_rect=R0_KITTI, T_cam_from_lidar=TR_KITTI).scaled(
        SCALE, SCALE)
    stamps = [FIRST_STAMP_NS + index * FRAME_PERIOD_NS for index in range(num_frames)]
    with RawDriveWriter(root / "raw", "2011_09_26", 1) as writer:
        writer.write_calib(raw_calib_from_camera_calib(camera, IMAGE_HW))
        for index, stamp_ns in enumerate(stamps):
            points = np.hstack([rng.uniform(-20.0, 20.0, (64, 3)), rng.uniform(0, 1, (64, 1))])
            writer.add_frame(rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8),
                             points.astype(np.float32), kitti_oxts_packet(index), stamp_ns,
                             stamp_ns - 5_000_000)
        writer.write_tracklets(_tracklets(num_frames))
    bag = root / "bag"
    convert_drive_to_bag(writer.drive_dir, bag)
    return EvalBag(bag=bag, drive_dir=writer.drive_dir, image_stamps_ns=stamps)


def start(*args: str) -> subprocess.Popen:
    """A Python subprocess inheriting this test's ROS environment."""
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop(*procs: subprocess.Popen | None) -> None:
    """Terminate the processes this test started (only those) and reap them."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def wait_for_exit(proc: subprocess.Popen, timeout_s: float) -> tuple[int | None, str]:
    """(return code or None on timeout, output so far) of a started process."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is None:
        return None, ""
    return proc.returncode, proc.stdout.read() if proc.stdout else ""
